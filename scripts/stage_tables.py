"""Join the staged public data sets into one label table with fixed, patient-level splits.

Every shipped model that uses more than the Kermany set trains from ``runs/tables/staged.csv`` (written
here, never committed: it is derived from ``../shared/data``), so the pretrained backbone, the adult models,
the cardiomegaly model and the applicability gate all hold out the same patients. Example:

    .venv/bin/python scripts/stage_tables.py            # -> runs/tables/staged.csv (deterministic)

Rules (fixed before any model was trained):
- Kermany (children): the pediatric pneumonia model's own split, drawn by the engine from
  ``configs/kermany-pneumonia.toml`` (original test split; validation carved from train by patient).
- NIH ChestX-ray14 (``nih/`` + ``nih-extra/``, adults; some patients are in both, so one patient key):
  test 25 %, validation 15 % of the patients, stratified by finding group (cardiomegaly, pneumonia, other,
  none) and by resolution group (64 px copies vs full resolution).
- covid (adults, other sites): test 30 %, validation 15 % of the patients, stratified by site.

Columns: ``file`` (relative to the data folder), ``dataset``, ``patient``, ``split``, ``age_group``, ``site``,
``orig_w`` (width of the copy the file was made from), ``view``; ``labels`` / ``unknown`` for the pretraining
task (``|``-separated classes that are present / whose label the source does not give); and one column per
single task, empty where a film is not part of it: ``age``, ``pneumonia_adult``, ``cardiomegaly``.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from pathlib import Path

from xrayviewer.training.config import load_config
from xrayviewer.training.sources import SPLITS, Sample, read_samples
from xrayviewer.training.splits import assign_splits, carve

ROOT = Path(__file__).resolve().parents[1]
NIH_FINDINGS = {  # NIH label -> our class name
    "Atelectasis": "atelectasis", "Cardiomegaly": "cardiomegaly", "Consolidation": "consolidation",
    "Edema": "edema", "Effusion": "effusion", "Emphysema": "emphysema", "Fibrosis": "fibrosis",
    "Hernia": "hernia", "Infiltration": "infiltration", "Mass": "mass", "Nodule": "nodule",
    "Pleural_Thickening": "pleural thickening", "Pneumonia": "pneumonia", "Pneumothorax": "pneumothorax",
}
KERMANY_SUBTYPES = {"bacteria": "bacterial", "virus": "viral"}
PRETRAIN_CLASSES = ["adult", "no finding", "pneumonia", "bacterial", "viral", *sorted(
    set(NIH_FINDINGS.values()) - {"pneumonia"})]
COLUMNS = ["file", "dataset", "patient", "split", "age_group", "site", "orig_w", "view", "labels", "unknown",
           "age", "pneumonia_adult", "cardiomegaly"]


def shared_data_dir() -> Path:
    """``$XRAYVIEWER_SHARED_DATA``, else ``../shared/data`` beside the repository."""
    return Path(os.environ.get("XRAYVIEWER_SHARED_DATA") or ROOT.parent / "shared" / "data")


def _read(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _row(**values: str) -> dict[str, str]:
    return {column: values.get(column, "") for column in COLUMNS}


def _unknown(known: set[str]) -> str:
    return "|".join(c for c in PRETRAIN_CLASSES if c not in known)


def kermany_rows(data: Path) -> list[dict[str, str]]:
    """Children's films with the pediatric pneumonia model's own split."""
    config = load_config(ROOT / "configs" / "kermany-pneumonia.toml")
    config.data.csv = str(data / "kermany" / "labels.csv")
    config.data.image_dir = str(data / "kermany" / "images")
    samples, _, _ = read_samples(config.data, config.classes, config.task)
    split_of = {s.path.name: s.split for s in assign_splits(samples, config.split, config.seed)}
    unknown = _unknown({"adult", "no finding", "pneumonia", "bacterial", "viral"})  # no NIH findings given
    rows = []
    for r in _read(data / "kermany" / "labels.csv"):
        present = {"no finding"} if r["label"] == "normal" else {"pneumonia", KERMANY_SUBTYPES[r["subtype"]]}
        rows.append(_row(
            file=f"kermany/images/{r['file']}", dataset="kermany",
            patient=f"kermany:{r['split']}:{r['patient']}",  # Kermany ids are unique only within a split
            split=split_of[r["file"]], age_group="child", site="guangzhou", orig_w=r["src_w"], view="AP",
            labels="|".join(sorted(present)), unknown=unknown, age="child"))
    return rows


def nih_rows(data: Path) -> list[dict[str, str]]:
    """Adult NIH films of both staged copies, one patient key, with their findings."""
    rows = []
    for folder in ("nih", "nih-extra"):
        for r in _read(data / folder / "labels.csv"):
            findings = {NIH_FINDINGS[f] for f in r["findings"].split("|") if f in NIH_FINDINGS}
            present = {"adult", *findings} | ({"no finding"} if not findings else set())
            full = r["orig_w"] != "64"
            rows.append(_row(
                file=f"{folder}/images/{r['file']}", dataset=folder, patient=f"nih:{r['patient']}",
                age_group="adult", site="nih", orig_w=r["orig_w"], view=r["view"],
                labels="|".join(sorted(present)), unknown="bacterial|viral", age="adult",
                pneumonia_adult=("pneumonia" if "pneumonia" in findings else "no finding" if not findings
                                 else "") if full else "",
                cardiomegaly="cardiomegaly" if "cardiomegaly" in findings else "no cardiomegaly"))
    _carve(rows, {"test": 0.25, "val": 0.15}, _nih_stratum)
    return rows


def _nih_stratum(row: dict[str, str]) -> str:
    labels = set(row["labels"].split("|"))
    group = next((g for g in ("cardiomegaly", "pneumonia") if g in labels),
                 "none" if "no finding" in labels else "other")
    return f"{group}-{'64' if row['orig_w'] == '64' else 'full'}"


def covid_rows(data: Path) -> list[dict[str, str]]:
    """Adult films of other sites: in the pretraining only for the adult label (nearly all are positive,
    so their findings would teach the site, not the disease)."""
    rows = [_row(file=f"covid/images/{r['file']}", dataset="covid", patient=f"covid:{r['patient']}",
                 age_group="adult", site=r["site"], orig_w=r["orig_w"], view=r["view"], labels="adult",
                 unknown=_unknown({"adult"}), age="adult")
            for r in _read(data / "covid" / "labels.csv")]
    _carve(rows, {"test": 0.3, "val": 0.15}, lambda row: row["site"])
    return rows


def _carve(rows: list[dict[str, str]], fractions: dict[str, float], stratum) -> None:
    """Assign ``split`` by patient with the engine's own stratified carve (seed 0)."""
    pool = [Sample(Path(r["file"]), (), r["patient"], "train", stratum(r)) for r in rows]
    split_of = {str(s.path): s.split for s in carve(pool, fractions, seed=0)}
    for r in rows:
        r["split"] = split_of[r["file"]]


def main(argv: list[str] | None = None) -> int:
    """Write the table; prints counts per data set and split."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=shared_data_dir(), help="the shared data folder")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "tables" / "staged.csv")
    args = parser.parse_args(argv)
    if not (args.data / "kermany" / "labels.csv").is_file():
        print(f"stage_tables: no staged data in {args.data} (set XRAYVIEWER_SHARED_DATA)", file=sys.stderr)
        return 2
    rows = kermany_rows(args.data) + nih_rows(args.data) + covid_rows(args.data)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    for dataset in ("kermany", "nih", "nih-extra", "covid"):
        counts = [sum(r["dataset"] == dataset and r["split"] == s for r in rows) for s in SPLITS]
        print(f"{dataset:10} train {counts[0]:5}  val {counts[1]:5}  test {counts[2]:5}")
    print(f"wrote {len(rows)} rows to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
