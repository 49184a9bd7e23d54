"""Re-score a labelled split with `xrayviewer predict --json` and compare with the bundle's model card.

Proves that the numbers a card states come out of the shipped product path (CLI → Predictor), not only out
of the training run. Example (repository root, shared data beside it):

    .venv/bin/python scripts/check_card.py models/pneumonia --labels ../shared/data/kermany/labels.csv \\
        --images ../shared/data/kermany/images --split test --label-column label

Splits the engine drew itself (no split column, e.g. a cross-validation fold) are read from the training run:

    .venv/bin/python scripts/check_card.py models/cardiomegaly --run runs/cardiomegaly-.../cardiomegaly-...
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from xrayviewer.engine.bundle import load_bundle
from xrayviewer.training.metrics import evaluate


def _rows(args: argparse.Namespace) -> list[tuple[str, str]]:
    if args.run:  # the run's own record of its split: image path and true label
        with open(Path(args.run) / "predictions.csv", newline="") as fh:
            return [(r["path"], r["labels"]) for r in csv.DictReader(fh) if r["split"] == args.split]
    mapping = dict(item.split("=", 1) for item in args.map)
    with open(args.labels, newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if not args.split or r.get("split") == args.split]
    column = args.label_column
    return [(str(Path(args.images) / r["file"]), mapping.get(r[column], r[column])) for r in rows]


def main() -> int:
    """Print the card's test metrics beside the ones recomputed from `xrayviewer predict --json`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--labels", help="labels CSV (columns file, split and --label-column)")
    source.add_argument("--run", help="training run folder: its predictions.csv names the split's images")
    parser.add_argument("--images", help="image folder of --labels")
    parser.add_argument("--split", default="test")
    parser.add_argument("--label-column", default="label")
    parser.add_argument("--map", nargs="*", default=[], metavar="RAW=CLASS", help="label renames")
    args = parser.parse_args()
    card = load_bundle(args.bundle).card
    rows = _rows(args)
    # --score-refused: the card's metrics cover every test film, also the few the applicability gate refuses
    cmd = [sys.executable, "-m", "xrayviewer", "predict", "--json", "--score-refused", "--model", args.bundle]
    out = subprocess.run(cmd + [p for p, _ in rows], capture_output=True, text=True, check=False).stdout
    results = {Path(r["file"]).name: r for r in map(json.loads, out.splitlines())}
    errors = [r for r in results.values() if not r["scores"]]
    refused = sum(not r["gate"]["ok"] for r in results.values())
    classes = card.classes
    scores = np.array([[results[Path(p).name]["scores"][c] for c in classes] for p, _ in rows])
    if card.task == "binary":  # the engine's convention: labels 0/1, scores of the one (positive) class
        y, p = np.array([label == classes[0] for _, label in rows], dtype=int), scores[:, 0]
        classes = ["other", *classes]
    else:
        y, p = np.array([classes.index(label) for _, label in rows]), scores
    metrics = evaluate(card.task, classes, y, p, list(card.thresholds.values()), bootstrap=0)
    ours = {"auroc": metrics["auc_macro"], "accuracy": metrics["accuracy"]}
    if card.task == "binary":
        ours |= {"sensitivity": metrics["recall"], "specificity": metrics["specificity"]}
    print(f"{card.name} {card.version}: {len(rows)} images of split {args.split!r}, "
          f"{len(errors)} unreadable, {refused} refused by the gate (scored anyway)")
    for key, value in ours.items():
        stated = card.metrics.get(key)
        stated_text = f"{stated:.4f}" if isinstance(stated, (int, float)) else "-"
        print(f"  {key:<12} predict --json {value:.4f}   card {stated_text}")
    return 0 if not errors else 2


if __name__ == "__main__":
    sys.exit(main())
