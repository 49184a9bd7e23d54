"""The shipped applicability gate (models/gate) on real films and real non-films, through the engine and the
CLI: the claims its card makes must hold on data in front of a reader."""

from __future__ import annotations

import csv
import json

import cv2
import numpy as np
import pytest

from xrayviewer.cli.main import main
from xrayviewer.engine.applicability import check_applicability
from xrayviewer.engine.gate import CHEST, Gate, find_gate
from xrayviewer.imaging import open_image


@pytest.fixture(scope="module")
def gate() -> Gate:
    bundle = find_gate()
    assert bundle is not None and bundle.source == "package", "models/gate must ship"
    loaded = Gate(bundle, device="cpu")
    loaded.load()
    return loaded


def _films(shared_data, folder: str, n: int, **where: str) -> list:
    with open(shared_data / folder / "labels.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if all(r.get(k) == v for k, v in where.items())]
    return [shared_data / folder / "images" / r["file"] for r in rows[:: max(1, len(rows) // n)][:n]]


def test_childrens_and_adults_films_pass_and_get_their_age_group(gate, shared_data):
    children = _films(shared_data, "kermany", 24, split="test")
    adults = _films(shared_data, "nih-extra", 24) + _films(shared_data, "covid", 8)
    verdicts = {path: gate.check(open_image(path)) for path in children + adults}
    assert sum(v.ok for v in verdicts.values()) >= len(verdicts) - 1  # the card: 99.8 % of films pass
    called_adult = [verdicts[p].population == "adult" for p in children if verdicts[p].ok]
    assert sum(called_adult) <= 1
    assert all(verdicts[p].population == "adult" for p in adults if verdicts[p].ok)


def test_pictures_that_are_no_chest_film_are_refused_with_their_kind(gate, tmp_path):
    import skimage.data

    camera = tmp_path / "camera.png"  # a grey photograph: no colour rule can catch it
    cv2.imwrite(str(camera), skimage.data.camera())
    page = tmp_path / "page.png"
    cv2.imwrite(str(page), cv2.resize(skimage.data.page(), (600, 380)))
    noise = tmp_path / "noise.png"
    cv2.imwrite(str(noise), np.random.default_rng(0).integers(0, 255, (300, 300), dtype=np.uint8))
    for path in (camera, page, noise):
        verdict = check_applicability(open_image(path), gate)
        assert verdict.refused and verdict.gate is not None and verdict.gate.kind != CHEST, path.name
        assert verdict.refusal.startswith("Not a chest radiograph (")
        assert verdict.refusal.endswith("): no findings computed.")


def test_predict_warns_when_the_pediatric_model_is_given_an_adults_film(shared_data, capsys):
    adult, child = _films(shared_data, "nih-extra", 1)[0], _films(shared_data, "kermany", 1, split="test")[0]
    assert main(["predict", str(adult), str(child), "--model", "pneumonia", "--json", "--device", "cpu"]) == 0
    adult_row, child_row = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert adult_row["gate"]["ok"] and adult_row["gate"]["population"] == "adult"
    assert adult_row["gate"]["population_from"] == "pixels"
    assert "pneumonia: Looks like an adult's film; this model was trained on children's films." in (
        adult_row["warnings"])
    assert child_row["gate"]["population"] == "child" and child_row["warnings"] == []
