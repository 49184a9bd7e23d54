"""Training data loading and training speed on this machine (prints numbers and ratios; no asserts).

1. cache fill (decode + preprocess, cold) and cache load (warm) in img/s on real Kermany films;
2. per-batch loading as the training loop does it (``SplitData.batch``: index the in-memory tensor, move to
   the device) against a bare torch loop indexing an in-memory tensor of the same size;
3. training img/s (forward + backward + AdamW) of a model fed by each, and their ratio (goal >= 0.95).

    .venv/bin/python benchmarks/data_loading.py [--images 256] [--sizes 128 224] [--arch xrv-densenet121]
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from pathlib import Path

import torch

from xrayviewer.engine.models import build_model
from xrayviewer.engine.preprocess import PreprocessRecipe
from xrayviewer.training.augment import augment_batch
from xrayviewer.training.cache import preload
from xrayviewer.training.config import AugmentConfig
from xrayviewer.training.data import SplitData

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "kermany"


def _paths(n: int) -> list[Path]:
    with open(DATA / "labels.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["split"] == "train"]
    return [DATA / "images" / r["file"] for r in rows[:: max(1, len(rows) // n)][:n]]


def _rate(n: int, seconds: float) -> float:
    return n / max(seconds, 1e-9)


def loader_only(split: SplitData, bare: torch.Tensor, labels: torch.Tensor, batch: int, repeats: int) -> None:
    """One epoch in random order touching every batch, engine vs bare, alternating; best of ``repeats``
    (the minimum is what the code costs; the rest is other processes on a shared machine)."""
    n, cpu = len(bare), torch.device("cpu")
    fetch = {"engine": lambda idx: split.batch(idx, cpu)[0], "bare": lambda idx: bare[idx]}
    best = {name: float("inf") for name in fetch}
    for repeat in range(repeats):
        order = torch.randperm(n, generator=torch.Generator().manual_seed(repeat))
        for name, get in fetch.items():
            start = time.perf_counter()
            for i in range(0, n, batch):
                get(order[i : i + batch]).sum()
            best[name] = min(best[name], time.perf_counter() - start)
    rates = {name: _rate(n, value) for name, value in best.items()}
    print(
        f"  loader only: engine SplitData.batch {rates['engine']:.0f} img/s, bare in-memory tensors "
        f"{rates['bare']:.0f} img/s, ratio {rates['engine'] / rates['bare']:.3f}"
    )


def train_speed(
    split: SplitData,
    bare: torch.Tensor,
    labels: torch.Tensor,
    arch: str,
    batch: int,
    steps: int,
    augment: bool,
) -> None:
    """Training steps (forward, backward, AdamW) of ``arch`` fed alternately by the engine's batches
    (+ augmentation) and by bare tensors; best step of each after one warm-up pair."""
    torch.manual_seed(0)
    model = build_model(arch, 1).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    generator = torch.Generator().manual_seed(0)
    cpu = torch.device("cpu")
    best = {"engine": float("inf"), "bare": float("inf")}
    for step in range(2 * (steps + 1)):
        name = "engine" if step % 2 == 0 else "bare"
        start = time.perf_counter()
        idx = torch.randint(0, len(bare), (batch,), generator=generator)
        if name == "engine":
            x, y = split.batch(idx, cpu)
            if augment:
                x = augment_batch(x, AugmentConfig(), generator)
        else:
            x, y = bare[idx], labels[idx]
        loss = loss_fn(model(x)[:, 0], y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step >= 2:
            best[name] = min(best[name], time.perf_counter() - start)
    rates = {name: _rate(batch, value) for name, value in best.items()}
    what = "engine batches + augmentation" if augment else "engine batches"
    print(
        f"  train {arch} {bare.shape[-1]} px batch {batch}: {what} {rates['engine']:.1f} img/s, "
        f"bare {rates['bare']:.1f} img/s, ratio {rates['engine'] / rates['bare']:.3f}"
    )


def main() -> None:
    """Run the measurements and print them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 224])
    parser.add_argument("--arch", default="xrv-densenet121")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    paths = _paths(args.images)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {len(paths)} Kermany images")
    with tempfile.TemporaryDirectory() as cache:
        for size in args.sizes:
            recipe = PreprocessRecipe(size=size)
            start = time.perf_counter()
            loaded = preload(paths, recipe, cache, workers=args.workers)
            cold = _rate(len(paths), time.perf_counter() - start)
            start = time.perf_counter()
            loaded = preload(paths, recipe, cache, workers=args.workers)
            warm = _rate(len(paths), time.perf_counter() - start)
            print(
                f"{size} px: cache fill (decode + preprocess, {args.workers} workers) {cold:.0f} img/s, "
                f"warm cache load {warm:.0f} img/s"
            )
            labels = torch.randint(0, 2, (len(loaded.kept),)).float()
            split = SplitData([], loaded.images, labels)
            bare = loaded.images.clone()
            loader_only(split, bare, labels, args.batch, repeats=10)
            train_speed(split, bare, labels, args.arch, args.batch, args.steps, augment=False)
            train_speed(split, bare, labels, args.arch, args.batch, args.steps, augment=True)


if __name__ == "__main__":
    main()
