"""`xrayviewer predict` adds the model's population warnings (prefixed with its name) to each file's
``warnings``: a pediatric AP model on an adult PA film says so; a matching film or a header-less PNG not.
The human table never flags a negative class ("normal") POSITIVE."""

from __future__ import annotations

import json
from dataclasses import replace

import cv2
import numpy as np
import pytest
from engine_helpers import make_bundle
from imaging_dicoms import dataset, ramp, write

from xrayviewer.cli.main import main
from xrayviewer.engine.applicability import NO_GATE
from xrayviewer.engine.bundle import write_card
from xrayviewer.engine.preprocess import PreprocessRecipe, preprocess
from xrayviewer.imaging import open_image


def _noise(n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [(rng.random((1, 64, 64), dtype=np.float32) * 2 - 1) * 1024 for _ in range(n)]


@pytest.fixture
def pediatric_ap(tmp_path, monkeypatch):
    return make_bundle(tmp_path / "peds", _noise(4), arch="tiny-densenet", recipe=PreprocessRecipe(size=64),
                       classes=("pneumonia",), task="binary",
                       card_fields={"views": ["AP"], "age_group": "child"})


def test_population_warnings_join_each_files_warnings(pediatric_ap, tmp_path, capsys):
    adult_pa = write(dataset(ramp(96, 80), bits_stored=12, ViewPosition="PA", PatientAge="045Y"),
                     tmp_path / "adult_pa.dcm")
    child_ap = write(dataset(ramp(96, 80), bits_stored=12, ViewPosition="AP", PatientAge="006Y"),
                     tmp_path / "child_ap.dcm")
    png = tmp_path / "film.png"
    cv2.imwrite(str(png), (ramp(96, 80, high=255, dtype="uint8")))
    paths = [str(p) for p in (adult_pa, child_ap, png)]
    options = ["--model", str(pediatric_ap.path), "--device", "cpu", "--gate", "none"]  # synthetic films
    assert main(["predict", *paths, *options, "--json"]) == 0
    adult, child, plain = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert adult["warnings"] == ["peds: Trained on AP films; this film is PA.",
                                 "peds: Trained on children's films; this patient is an adult.", NO_GATE]
    assert adult["scores"] and adult["error"] is None  # warned, still scored
    assert adult["gate"]["population"] == "adult" and adult["gate"]["population_from"] == "header"
    assert child["warnings"] == [NO_GATE] and plain["warnings"] == [NO_GATE]

    assert main(["predict", paths[0], *options]) == 0
    table = capsys.readouterr().out
    assert f"{paths[0]}: warning: peds: Trained on AP films; this film is PA." in table


def test_negative_class_is_never_flagged_positive_in_the_table(tmp_path, monkeypatch, capsys):
    film = write(dataset(ramp(96, 80), bits_stored=12), tmp_path / "film.dcm")
    recipe = PreprocessRecipe(size=64)
    inputs = [preprocess(open_image(film), recipe)[0], *_noise(3)]  # BN statistics that include the film
    types = make_bundle(tmp_path / "types", inputs, arch="tiny-densenet", recipe=recipe,
                        classes=("normal", "bacterial", "viral"), task="multiclass",
                        logit_offsets={"normal": 6.0}, card_fields={"negative_classes": ["normal"]})
    args = ["predict", str(film), "--model", str(types.path), "--device", "cpu", "--gate", "none"]  # a ramp
    assert main([*args, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["positive"] == ["normal"]  # the JSON contract is unchanged
    assert main(args) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.startswith("  ")}
    assert "POSITIVE" not in rows["normal"] and float(rows["normal"].split()[1]) > 0.5


def test_without_model_each_film_gets_the_strongest_model_whose_population_fits(tmp_path, monkeypatch,
                                                                                   capsys):
    models = tmp_path / "models"
    for name, age, auroc in (("peds", "child", 0.98), ("adults", "adult", 0.85)):
        bundle = make_bundle(models / name, _noise(4), arch="tiny-densenet", recipe=PreprocessRecipe(size=64),
                             classes=("pneumonia",), task="binary", card_fields={"age_group": age})
        write_card(bundle.path, replace(bundle.card, metrics={"split": "test", "auroc": auroc}))
    monkeypatch.setenv("XRAYVIEWER_MODELS_DIR", str(models))
    monkeypatch.setattr("xrayviewer.engine.paths.shipped_models_dir", lambda: tmp_path / "none")
    adult = write(dataset(ramp(96, 80), bits_stored=12, PatientAge="045Y"), tmp_path / "adult.dcm")
    child = write(dataset(ramp(96, 80), bits_stored=12, PatientAge="006Y"), tmp_path / "child.dcm")
    unknown = tmp_path / "film.png"
    cv2.imwrite(str(unknown), ramp(96, 80, high=255, dtype="uint8"))
    assert main(["predict", str(adult), str(child), str(unknown), "--json", "--device", "cpu",
                 "--gate", "none"]) == 0
    captured = capsys.readouterr()
    rows = [json.loads(line) for line in captured.out.splitlines()]
    assert [r["model"] for r in rows] == ["adults", "peds", "peds"]  # no age known: the strongest
    assert all(not any("Trained on" in w for w in r["warnings"]) for r in rows)
    assert "choosing per film the strongest of 2 installed models" in captured.err
