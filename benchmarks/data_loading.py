"""Training data loading and training speed on this machine (prints numbers and ratios; no asserts).

1. cache fill (decode + preprocess, cold) and cache load (warm) in img/s on real Kermany films;
2. per-batch loading as the training loop does it (``SplitData.batch``: index a float16 in-memory tensor,
   convert to float32) against a bare torch loop over an in-memory float32 tensor of the same size;
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

from xrayviewer.engine.augment import augment_batch
from xrayviewer.engine.image_cache import preload
from xrayviewer.engine.models import build_model
from xrayviewer.engine.preprocess import PreprocessRecipe
from xrayviewer.engine.train_config import AugmentConfig
from xrayviewer.engine.training_data import SplitData

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "kermany"


def _paths(n: int) -> list[Path]:
    with open(DATA / "labels.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["split"] == "train"]
    return [DATA / "images" / r["file"] for r in rows[:: max(1, len(rows) // n)][:n]]


def _rate(n: int, seconds: float) -> float:
    return n / max(seconds, 1e-9)


def loader_only(split: SplitData, bare: torch.Tensor, labels: torch.Tensor, batch: int, epochs: int) -> None:
    """Iterate whole epochs in random order, touching every batch; engine vs bare float32 tensors."""
    n, cpu = len(bare), torch.device("cpu")
    for name, fetch in (
        ("engine SplitData.batch", lambda idx: split.batch(idx, cpu)),
        ("bare in-memory tensors", lambda idx: (bare[idx], labels[idx])),
    ):
        start = time.perf_counter()
        for epoch in range(epochs):
            order = torch.randperm(n, generator=torch.Generator().manual_seed(epoch))
            for i in range(0, n, batch):
                x, _ = fetch(order[i : i + batch])
                x.sum()  # touch the data
        rate = _rate(n * epochs, time.perf_counter() - start)
        print(f"  loader only, {name:<24} {rate:12.0f} img/s")
        if name.startswith("engine"):
            engine_rate = rate
    print(f"  loader only ratio engine/bare: {engine_rate / rate:.3f}")


def train_speed(
    split: SplitData,
    bare: torch.Tensor,
    labels: torch.Tensor,
    arch: str,
    batch: int,
    steps: int,
    augment: bool,
) -> None:
    """Training steps of ``arch`` fed alternately by the engine's batches (+ augmentation) and by bare
    tensors, so that load from other processes hits both alike; the first pair warms up."""
    torch.manual_seed(0)
    model = build_model(arch, 1).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    generator = torch.Generator().manual_seed(0)
    cpu = torch.device("cpu")
    seconds = {"engine": 0.0, "bare": 0.0}
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
            seconds[name] += time.perf_counter() - start
    rates = {name: _rate(steps * batch, value) for name, value in seconds.items()}
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
            bare = loaded.images.float().clone()
            loader_only(split, bare, labels, args.batch, epochs=20)
            train_speed(split, bare, labels, args.arch, args.batch, args.steps, augment=False)
            train_speed(split, bare, labels, args.arch, args.batch, args.steps, augment=True)


if __name__ == "__main__":
    main()
