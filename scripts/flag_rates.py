"""How often a findings model says "suggested" on held-out films of each kind, through `xrayviewer predict`.

A model's AUC says how well it ranks the films it was trained to tell apart; a reader also needs to know what
it does on the others: films with a different finding, films from another site, children's films. This runs
the product path (`xrayviewer predict --json --model NAME`, the installed gate on) over the test split of
``runs/tables/staged.csv`` and prints, per group, the films, how many the gate refused, and the share of the
rest flagged positive for each class. Example (repository root, after scripts/stage_tables.py):

    .venv/bin/python scripts/flag_rates.py --model pneumonia-adult
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def group_of(row: dict) -> str:
    """The film's group: its data set, for NIH films which labels it carries and the copy's resolution."""
    labels = set(row["labels"].split("|")) - {"", "adult", "child"}
    if row["dataset"] == "covid":
        return "covid sites (COVID-19, nearly all positive)"
    if row["dataset"] == "kermany":
        return f"kermany children ({'|'.join(sorted(labels))})"
    copy = ", 64 px copy" if row["orig_w"] == "64" else ""
    if labels == {"no finding"}:
        return f"NIH no finding{copy}"
    if "pneumonia" in labels:
        return f"NIH pneumonia{copy}"
    if "cardiomegaly" in labels:
        return f"NIH cardiomegaly{copy}"
    return f"NIH other findings only{copy}"


def main(argv: list[str] | None = None) -> int:
    """Print the flag rate per group of the staged test films."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="an installed bundle name or a bundle folder")
    parser.add_argument("--split", default="test")
    parser.add_argument("--table", type=Path, default=ROOT / "runs" / "tables" / "staged.csv")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    args = parser.parse_args(argv)
    with open(args.table, newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["split"] == args.split]
    paths = [str(args.data / r["file"]) for r in rows]
    cmd = [sys.executable, "-m", "xrayviewer", "predict", "--json", "--model", args.model, *paths]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=ROOT).stdout
    records = {r["file"]: r for r in map(json.loads, out.splitlines())}
    tally: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    classes: list[str] = []
    for row, path in zip(rows, paths, strict=True):
        record, counts = records[path], tally[group_of(row)]
        counts["films"] += 1
        if not record["scores"]:
            counts["refused"] += 1
            continue
        classes = classes or list(record["scores"])
        for name in record["positive"]:
            counts[name] += 1
    print(f"\n{args.model}: share of gated {args.split} films flagged positive\n")
    print("| group | films | refused by the gate | " + " | ".join(f"flagged {c}" for c in classes) + " |")
    print("|---|---:|---:|" + "---:|" * len(classes))
    for group in sorted(tally):
        counts = tally[group]
        scored = counts["films"] - counts["refused"]
        shares = " | ".join(f"{counts[c] / scored:.0%} ({counts[c]})" if scored else "–" for c in classes)
        print(f"| {group} | {counts['films']} | {counts['refused']} | {shares} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
