"""What `xrayviewer predict` says about held-out films of each population, as a new user would get it.

Runs the product path (`xrayviewer predict --json`, with the installed applicability gate) over the test
split of ``runs/tables/staged.csv`` and over re-encoded copies of those films (64 px JPEG, 224 px squashed
JPEG, 512 px PNG: how other sites store films), and prints per data set and copy type: the share of films the
gate passed, the share called adult, and the share a pediatric bundle warns about ("Looks like an adult's
film"). Example (repository root, after scripts/stage_tables.py):

    .venv/bin/python scripts/evaluate_population.py --model pneumonia --limit 120
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
COPIES = {  # name -> (long side, squash to square, extension, encode parameters)
    "64 px JPEG q50": (64, False, ".jpg", [cv2.IMWRITE_JPEG_QUALITY, 50]),
    "224 px squashed JPEG q75": (224, True, ".jpg", [cv2.IMWRITE_JPEG_QUALITY, 75]),
    "512 px PNG": (512, False, ".png", []),
}


def copy_of(film: Path, out: Path, side: int, squash: bool, extension: str, params: list[int]) -> Path:
    """A resized, re-encoded copy of ``film`` written into ``out``."""
    picture = cv2.imread(str(film), cv2.IMREAD_GRAYSCALE)
    rows, cols = picture.shape
    scale = side / max(rows, cols)
    size = (side, side) if squash else (max(1, round(cols * scale)), max(1, round(rows * scale)))
    small = cv2.resize(picture, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    target = out / f"{film.stem}{extension}"
    cv2.imwrite(str(target), small, params)
    return target


def predict(files: list[Path], model: str) -> list[dict]:
    """One JSON row per file from the CLI."""
    command = [sys.executable, "-m", "xrayviewer", "predict", "--json", "--model", model, *map(str, files)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def main(argv: list[str] | None = None) -> int:
    """Print the table (markdown)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="pneumonia", help="a pediatric bundle (its population warnings)")
    parser.add_argument("--table", type=Path, default=ROOT / "runs" / "tables" / "staged.csv")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--limit", type=int, default=0,
                        help="at most this many test films per data set, spread evenly over its rows (the "
                             "table lists each data set's films by label: the first N would be one label)")
    args = parser.parse_args(argv)
    with open(args.table, newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["split"] == "test"]
    by_set: dict[str, list[Path]] = defaultdict(list)
    for row in rows:
        by_set[row["dataset"]].append(args.data / row["file"])
    if args.limit:
        spread = {name: np.linspace(0, len(films) - 1, min(args.limit, len(films))).astype(int)
                  for name, films in by_set.items()}
        by_set = {name: [films[i] for i in spread[name]] for name, films in by_set.items()}
    print("| films (test split) | copy | n | gate passed | called adult | pediatric model warns |")
    print("|---|---|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for dataset, films in sorted(by_set.items()):
            variants = {"original": films}
            for name, spec in COPIES.items():
                folder = Path(tmp) / dataset / name.replace(" ", "_")
                folder.mkdir(parents=True)
                variants[name] = [copy_of(f, folder, *spec) for f in films]
            for name, files in variants.items():
                records = predict(files, args.model)
                passed = [r for r in records if r["gate"]["ok"]]
                adult = sum(r["gate"]["population"] == "adult" for r in passed)
                warned = sum(any("Looks like an adult" in w for w in r["warnings"]) for r in passed)
                n = len(records)
                print(f"| {dataset} | {name} | {n} | {len(passed) / n:.1%} | "
                      f"{adult / max(len(passed), 1):.1%} | {warned / max(len(passed), 1):.1%} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
