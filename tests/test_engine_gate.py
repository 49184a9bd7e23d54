"""The applicability gate: rules on the header and the pixels, the learned gate's verdicts, its bundle checks,
and the population estimate it feeds into the per-model warnings."""

from __future__ import annotations

import json
from dataclasses import replace

import cv2
import numpy as np
import pytest
from engine_helpers import gate_bundle, make_bundle
from imaging_dicoms import dataset, ramp, write

from xrayviewer.engine.applicability import (
    check_applicability,
    outside_population,
    pixel_rule_refusal,
    population_warnings,
)
from xrayviewer.engine.bundle import (
    BundleError,
    ModelCard,
    read_bundle,
)
from xrayviewer.engine.gate import ADULT, CHEST, KIND_REASONS, OOD_FILE, UNLIKE_ANY, Gate, find_gate
from xrayviewer.engine.preprocess import PreprocessRecipe
from xrayviewer.imaging import open_image
from xrayviewer.imaging.image import Window, XRayImage
from xrayviewer.training.gate_negatives import KINDS

CLASSES = [CHEST, *KINDS, ADULT]


def chest_like(rows: int = 200, cols: int = 180) -> XRayImage:
    picture = cv2.GaussianBlur(np.random.default_rng(1).random((rows, cols)).astype(np.float32), (0, 0), 5)
    return XRayImage(picture * 1000, "MONOCHROME2", Window(500, 1000), format="PNG")


def test_the_gate_refuses_by_kind_with_a_reason_a_person_can_act_on(tmp_path):
    gate = Gate(gate_bundle(tmp_path, {"photograph": 12}), device="cpu")
    verdict = gate.check(chest_like())
    assert not verdict.ok and verdict.kind == "photograph"
    assert verdict.reason == f"Not a chest radiograph ({KIND_REASONS['photograph']}): no findings computed."
    applicability = check_applicability(chest_like(), gate)
    assert applicability.refused and applicability.refusal == verdict.reason and applicability.gate == verdict


def test_a_chest_film_passes_and_its_age_group_comes_from_the_pixels_unless_the_header_says(tmp_path):
    gate = Gate(gate_bundle(tmp_path, {CHEST: 12, ADULT: 12}), device="cpu")
    verdict = check_applicability(chest_like(), gate)
    assert not verdict.refused and verdict.gate.ok and verdict.gate.kind == CHEST
    assert (verdict.population, verdict.population_source) == ("adult", "pixels")
    child = replace(chest_like(), age_group="child", metadata={"Modality": "DX"}, format="DICOM")
    assert (check_applicability(child, gate).population,
            check_applicability(child, gate).population_source) == ("child", "header")


def test_a_film_far_from_every_training_film_is_refused_even_when_the_classifier_passes_it(tmp_path):
    gate = Gate(gate_bundle(tmp_path, {CHEST: 12}, spread=1e6), device="cpu")
    verdict = gate.check(chest_like())
    assert not verdict.ok and verdict.distance > 1 and UNLIKE_ANY in verdict.reason


def test_a_tampered_or_missing_feature_file_is_refused(tmp_path):
    bundle = gate_bundle(tmp_path, {CHEST: 12})
    (bundle.path / OOD_FILE).write_bytes((bundle.path / OOD_FILE).read_bytes()[:-4] + b"\0\0\0\0")
    with pytest.raises(BundleError, match="does not match the sha256"):
        Gate(read_bundle(bundle.path), device="cpu")
    (bundle.path / OOD_FILE).unlink()
    with pytest.raises(BundleError, match="is missing"):
        Gate(read_bundle(bundle.path), device="cpu")
    card = json.loads((bundle.path / "model.json").read_text())
    card["gate"]["ood_file"] = "../elsewhere.safetensors"
    (bundle.path / "model.json").write_text(json.dumps(card))
    with pytest.raises(BundleError, match="inside the bundle"):
        Gate(read_bundle(bundle.path), device="cpu")


def test_a_findings_bundle_is_not_a_gate_and_gates_are_not_findings_models(tmp_path, monkeypatch):
    findings = make_bundle(tmp_path / "models" / "peds", [np.zeros((1, 64, 64), np.float32)] * 2,
                           arch="tiny-densenet", recipe=PreprocessRecipe(size=64))
    with pytest.raises(BundleError, match="not a gate bundle"):
        Gate(findings, device="cpu")
    gate_bundle(tmp_path / "models", {CHEST: 12}, name="site-gate")
    monkeypatch.setenv("XRAYVIEWER_MODELS_DIR", str(tmp_path / "models"))
    assert find_gate().name == "site-gate"
    with pytest.raises(ValueError, match="role must be one of"):
        ModelCard.from_dict({**findings.card.to_dict(), "role": "oracle"})


@pytest.mark.parametrize(
    ("shape", "expected"),
    [((40, 300), "300 × 40 pixels: too small to read, at least 48 a side"),
     ((100, 400), "400 × 100 pixels: a strip, not a film")],
)
def test_pixel_rules_refuse_what_no_model_can_read(shape, expected):
    pixels = np.random.default_rng(0).random(shape).astype(np.float32)
    image = XRayImage(pixels, "MONOCHROME2", Window(0.5, 1))
    assert pixel_rule_refusal(image) == f"Not a chest radiograph ({expected}): no findings computed."


def test_blank_colour_and_non_chest_header_images_are_refused_before_any_network(tmp_path):
    blank = XRayImage(np.zeros((128, 128), np.float32), "MONOCHROME2", Window(0.5, 1))
    assert "a blank image" in check_applicability(blank).refusal
    photo = tmp_path / "photo.png"
    rgb = np.random.default_rng(2).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    cv2.imwrite(str(photo), rgb)
    assert "a colour picture" in check_applicability(open_image(photo)).refusal
    knee = dataset(ramp(96, 96), bits_stored=12, Modality="CR", BodyPartExamined="KNEE")
    knee = write(knee, tmp_path / "knee.dcm")
    assert check_applicability(open_image(knee)).refusal == (
        "Not a chest radiograph (body part KNEE): no findings computed.")


def test_population_warnings_from_the_pixels_say_what_the_film_looks_like(tmp_path):
    gate = Gate(gate_bundle(tmp_path, {CHEST: 12, ADULT: 12}), device="cpu")
    image = chest_like()
    verdict = check_applicability(image, gate)
    card = ModelCard(name="peds", version="1", task="binary", classes=["pneumonia"],
                     architecture="tiny-densenet", thresholds={"pneumonia": 0.5}, threshold_method="fixed",
                     age_group="child", preprocessing=PreprocessRecipe(size=128))  # the film is 180 px
    assert population_warnings(image, card, verdict) == (
        "Looks like an adult's film; this model was trained on children's films.",)
    assert outside_population(image, card, verdict)
    assert not outside_population(image, replace(card, age_group="adult"), verdict)
    assert population_warnings(image, card) == ()  # no estimate, no header: nothing to say
