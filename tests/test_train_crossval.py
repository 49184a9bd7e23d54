"""k-fold cross-validation through the CLI: every patient tested once, AUC pooled from the folds."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from sklearn.metrics import roc_auc_score

from xrayviewer.cli.main import main
from xrayviewer.engine.bundle import load_bundle


def _nih_subset(shared_data: Path, tmp_path: Path, positives: int, negatives: int) -> Path:
    """A CSV of real NIH films with one image per patient and no split column."""
    rows, seen = [], set()
    with open(shared_data / "nih" / "labels.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            want = positives if row["cardiomegaly"] == "1" else negatives
            if row["patient"] in seen or sum(r["cardiomegaly"] == row["cardiomegaly"] for r in rows) >= want:
                continue
            seen.add(row["patient"])
            rows.append({k: row[k] for k in ("file", "cardiomegaly", "patient")})
    table = tmp_path / "nih.csv"
    with open(table, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["file", "cardiomegaly", "patient"])
        writer.writeheader()
        writer.writerows(rows)
    return table


def test_cross_validation_tests_every_image_once_and_pools_the_auc(shared_data, tmp_path, capsys):
    table = _nih_subset(shared_data, tmp_path, positives=6, negatives=12)
    config = tmp_path / "cv.toml"
    config.write_text(
        f"""name = "cv"
task = "binary"
classes = ["no", "yes"]
epochs = 1
batch_size = 4
out = "{tmp_path / "runs"}"
[data]
csv = "{table}"
image_dir = "{shared_data / "nih" / "images"}"
label_column = "cardiomegaly"
label_map = {{ "0" = "no", "1" = "yes" }}
patient_column = "patient"
cache_dir = "{tmp_path / "cache"}"
workers = 0
[split]
val_fraction = 0.34
[preprocess]
size = 64
[model]
arch = "tiny-densenet"
[eval]
bootstrap = 50
cam_grid = 0
"""
    )
    assert main(["train", "--config", str(config), "--folds", "3", "--events", "json"]) == 0
    summary_path = next((tmp_path / "runs").glob("cv-cv3-*/crossval.json"))
    summary = json.loads(summary_path.read_text())
    tested, y, p = [], [], []
    for fold in summary["per_fold"]:
        with open(Path(fold["run"]) / "predictions.csv", newline="") as fh:
            for row in csv.DictReader(fh):
                if row["split"] == "test":
                    tested.append(row["path"])
                    y.append(row["labels"] == "yes")
                    p.append(float(row["yes"]))
    assert len(summary["per_fold"]) == 3 and summary["n"] == 18
    with open(table, newline="") as fh:
        assert sorted(Path(t).name for t in tested) == sorted(r["file"] for r in csv.DictReader(fh))
    pooled = summary["pooled"]["per_class"]["yes"]
    assert pooled["positives"] == 6
    assert abs(pooled["auc"] - roc_auc_score(y, p)) < 1e-9
    assert all(f["n"] == 6 for f in summary["per_fold"])  # 2 positive + 4 negative patients per fold
    card = load_bundle(Path(summary["per_fold"][1]["run"]) / "bundle").card  # still loads: weights untouched
    assert card.metrics["cross_validation"]["this_fold"] == 1
    assert card.metrics["cross_validation"]["pooled_auc"] == pytest.approx(roc_auc_score(y, p))
