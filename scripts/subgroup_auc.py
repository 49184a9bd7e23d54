"""Test AUC of a training run within subgroups of its films (data set, resolution group, view, site).

A model that keys on how a data set looks (its resolution, its site) rather than on the finding shows it here:
its AUC inside each group falls well below the pooled one. Reads the run's ``predictions.csv`` and the staged
table (``scripts/stage_tables.py``). Example:

    .venv/bin/python scripts/subgroup_auc.py runs/cardiomegaly-20261201-... --by resolution --by dataset
"""

from __future__ import annotations

import argparse
import csv
from collections import defaultdict
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from xrayviewer.training.metrics import bootstrap_auc_ci

ROOT = Path(__file__).resolve().parents[1]
GROUPS = {  # name -> how a staged-table row is grouped
    "dataset": lambda row: row["dataset"],
    "resolution": lambda row: "64 px copies" if row["orig_w"] == "64" else "full resolution",
    "view": lambda row: row["view"] or "?",
    "site": lambda row: row["site"],
}


def main(argv: list[str] | None = None) -> int:
    """Print AUC with its 95 % bootstrap interval per group of the run's test films."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="a training run folder (with predictions.csv)")
    parser.add_argument("--by", action="append", choices=sorted(GROUPS), default=[])
    parser.add_argument("--split", default="test")
    parser.add_argument("--table", type=Path, default=ROOT / "runs" / "tables" / "staged.csv")
    args = parser.parse_args(argv)
    with open(args.table, newline="", encoding="utf-8") as fh:
        staged = {Path(r["file"]).name: r for r in csv.DictReader(fh)}
    with open(args.run / "predictions.csv", newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        finding = reader.fieldnames[-1]  # a binary run scores its positive class in the last column
        rows = [r for r in reader if r["split"] == args.split]
    for by in args.by or ["dataset"]:
        groups: dict[str, list[tuple[int, float]]] = defaultdict(list)
        for row in rows:
            group = GROUPS[by](staged[Path(row["path"]).name])
            groups[group].append((int(finding in row["labels"].split("|")), float(row[finding])))
        groups["all"] = [item for key in list(groups) for item in groups[key]]
        print(f"\n{finding} by {by} ({args.split} split)\n| group | films | positives | AUC (95 % CI) |")
        print("|---|---:|---:|---|")
        for group, items in groups.items():
            y, p = np.array([i[0] for i in items]), np.array([i[1] for i in items])
            if len(np.unique(y)) < 2:
                print(f"| {group} | {len(y)} | {int(y.sum())} | – (one class) |")
                continue
            low, high = bootstrap_auc_ci(y, p, 1000, 0)
            auc = roc_auc_score(y, p)
            print(f"| {group} | {len(y)} | {int(y.sum())} | {auc:.3f} ({low:.3f}–{high:.3f}) |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
