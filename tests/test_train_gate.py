"""Fitting the applicability gate end to end on a tiny backbone, and the images it is fitted against."""

from __future__ import annotations

import csv
import importlib.util
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from engine_helpers import make_bundle

from xrayviewer.engine.bundle import read_bundle
from xrayviewer.engine.gate import ADULT, CHEST, Gate
from xrayviewer.engine.preprocess import PreprocessRecipe
from xrayviewer.imaging import open_image
from xrayviewer.training.gate import GateConfig, fit_gate
from xrayviewer.training.gate_negatives import KINDS, generate, split_of

ROOT = Path(__file__).resolve().parents[1]


def stage_tables():
    spec = importlib.util.spec_from_file_location("stage_tables", ROOT / "scripts" / "stage_tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def staged(shared_data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tables") / "staged.csv"
    assert stage_tables().main(["--data", str(shared_data), "--out", str(out)]) == 0
    return out


def test_the_staged_table_holds_every_film_once_with_patient_level_splits(staged):
    with open(staged, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 5545 + 560 + 1398 + 269 and len({r["file"] for r in rows}) == len(rows)
    where: dict[str, set[str]] = {}
    for row in rows:
        where.setdefault(row["patient"], set()).add(row["split"])
    assert all(len(splits) == 1 for splits in where.values())  # no patient in two splits
    kermany = Counter(r["split"] for r in rows if r["dataset"] == "kermany")
    assert kermany == {"train": 4711, "val": 521, "test": 313}  # the pediatric model's own split
    covid = [r for r in rows if r["dataset"] == "covid"]
    assert all(r["labels"] == "adult" and "pneumonia" in r["unknown"] for r in covid)  # site, not disease
    assert {r["pneumonia_adult"] for r in rows if r["orig_w"] == "64"} == {""}  # no 64 px copy in that task


def test_negatives_are_deterministic_and_keep_their_sources_split(tmp_path, kermany_rows):
    films = {"train": [Path(r["path"]) for r in kermany_rows[:6]],
             "test": [Path(r["path"]) for r in kermany_rows[6:9]]}
    made = generate(tmp_path / "a", films, per_kind=4, seed=3)
    again = generate(tmp_path / "b", films, per_kind=4, seed=3)
    assert [n.source for n in made] == [n.source for n in again]
    assert Counter(n.kind for n in made) == dict.fromkeys(KINDS, 4)
    for negative in made:
        if negative.kind in ("cropped film", "rotated film"):
            trained = negative.source in {p.name for p in films["train"]}
            assert negative.split == ("train" if trained else "test")
        elif not negative.source.startswith("screenshot"):
            assert negative.split == split_of(negative.source)
        assert min(open_image(tmp_path / "a" / negative.file).shape) >= 64


def test_fit_gate_writes_a_gate_bundle_the_engine_runs_and_measures_it(staged, shared_data, tmp_path):
    with open(staged, newline="") as fh:
        rows = list(csv.DictReader(fh))
    picked = [r for dataset in ("kermany", "nih", "nih-extra", "covid") for split in ("train", "val", "test")
              for r in [r for r in rows if r["dataset"] == dataset and r["split"] == split][:6]]
    table = tmp_path / "table.csv"
    with open(table, "w", newline="") as fh:
        writer = csv.DictWriter(fh, list(rows[0]))
        writer.writeheader()
        writer.writerows(picked)
    rng = np.random.default_rng(0)
    inputs = [(rng.random((1, 64, 64), dtype=np.float32) * 2 - 1) * 1024 for _ in range(4)]
    backbone = make_bundle(tmp_path / "backbone", inputs, arch="tiny-densenet",
                           recipe=PreprocessRecipe(size=64))
    run = fit_gate(GateConfig(backbone=str(backbone.path), table=str(table), image_dir=str(shared_data),
                              negatives=str(tmp_path / "negatives"), out=str(tmp_path / "runs"), per_kind=10,
                              regularisation=[0.1]))
    bundle = read_bundle(run / "gate")
    card = bundle.card
    assert card.role == "gate" and card.classes == [CHEST, *KINDS, ADULT]
    assert 0 < card.thresholds[CHEST] < 1 and 0 < card.thresholds[ADULT] < 1
    assert card.gate["ood_threshold"] > 0 and "validation" in card.threshold_method
    metrics = json.loads((run / "metrics.json").read_text())
    with open(tmp_path / "negatives" / "negatives.csv", newline="") as fh:
        test_negatives = sum(r["split"] == "test" for r in csv.DictReader(fh))
    test_films = sum(r["split"] == "test" for r in picked)
    assert metrics["card"]["n"] == 2 * test_films + test_negatives  # films, their copies, the negatives
    assert set(metrics["kinds"]) == {CHEST, *KINDS}
    assert "| chest film |" in (run / "gate-report.md").read_text()
    gate = Gate(bundle, device="cpu")
    film = open_image(shared_data / picked[0]["file"])
    verdict = gate.check(film)
    assert verdict.kind in (CHEST, *KINDS) and 0 <= verdict.chest <= 1 and verdict.distance >= 0
