"""Model cards say whom a model was trained on (views, age group) and which classes mean "no finding";
``population_warnings`` says when a film is outside that population."""

from __future__ import annotations

import json

import numpy as np
import pytest
from imaging_dicoms import dataset, ramp, write

from xrayviewer.engine.applicability import population_warnings
from xrayviewer.engine.bundle import BundleError, ModelCard, is_weak, read_bundle
from xrayviewer.engine.preprocess import PreprocessRecipe
from xrayviewer.imaging import open_image
from xrayviewer.imaging.image import Window, XRayImage
from xrayviewer.training.config import ConfigError, config_from_dict

TYPES = ["normal", "bacterial", "viral"]


def card(**population) -> ModelCard:
    return ModelCard(name="pneumonia-type", version="1", task="multiclass", classes=TYPES,
                     architecture="xrv-densenet121", thresholds=dict.fromkeys(TYPES, 0.5),
                     threshold_method="fixed", **population)


def film(view: str | None, age_group: str = "") -> XRayImage:
    return XRayImage(np.zeros((256, 256), np.float32), "MONOCHROME2", Window(0.5, 1.0), view_position=view,
                     age_group=age_group, format="DICOM")


def test_pediatric_ap_model_warns_on_an_adult_pa_film_read_from_dicom(tmp_path):
    adult_pa = dataset(ramp(256, 256), bits_stored=12, ViewPosition="PA", PatientAge="045Y")
    path = write(adult_pa, tmp_path / "a.dcm")
    assert population_warnings(open_image(path), card(views=["AP"], age_group="child")) == (
        "Trained on AP films; this film is PA.",
        "Trained on children's films; this patient is an adult.",
    )


@pytest.mark.parametrize(
    ("image", "population", "expected"),
    [
        (film("AP", "child"), {"views": ["AP"], "age_group": "child"}, ()),
        (film("ap "), {"views": ["AP"]}, ()),  # header spelling is normalised
        (film("LL"), {"views": ["PA", "AP"]}, ("Trained on PA and AP films; this film is LL.",)),
        (film("LL"), {"views": ["PA", "AP", "RL"]}, ("Trained on PA, AP and RL films; this film is LL.",)),
        (film("PA", "child"), {"age_group": "adult"},
         ("Trained on adults' films; this patient is a child.",)),
        (film(None, ""), {"views": ["AP"], "age_group": "child"}, ()),  # unknown film: no warning
        (film("PA", "adult"), {}, ()),  # unknown training population (old cards): no warning
    ],
)
def test_population_warnings(image, population, expected):
    assert population_warnings(image, card(**population)) == expected


def test_card_round_trip_and_old_cards_without_the_fields(tmp_path):
    new = card(views=["PA", "AP"], age_group="adult", negative_classes=["normal"])
    assert ModelCard.from_dict(json.loads(json.dumps(new.to_dict()))) == new
    old = {k: v for k, v in new.to_dict().items() if k not in ("views", "age_group", "negative_classes")}
    parsed = ModelCard.from_dict(old)
    assert (parsed.views, parsed.age_group, parsed.negative_classes) == ([], "", [])


@pytest.mark.parametrize(
    ("population", "message"),
    [
        ({"views": "AP"}, "views must be a list of DICOM ViewPosition codes"),
        ({"views": ["ap"]}, "upper case"),
        ({"views": ["AP", "AP"]}, "views must be distinct"),
        ({"age_group": "elderly"}, "age_group must be one of child, adult or empty"),
        ({"negative_classes": ["healthy"]}, r"negative_classes \['healthy'\] are not among the classes"),
        ({"negative_classes": TYPES}, "at least one class that is a finding"),
    ],
)
def test_invalid_population_fields_are_clear_errors(tmp_path, population, message):
    with pytest.raises(ValueError, match=message):
        card(**population)
    folder = tmp_path / "bundle"
    folder.mkdir()
    (folder / "model.json").write_text(json.dumps({**card().to_dict(), **population}))
    with pytest.raises(BundleError, match="invalid model card"):
        read_bundle(folder)


def _config(task="multiclass", classes=TYPES, **card_section):
    return config_from_dict({"task": task, "classes": classes, "data": {"folders": "films"},
                             "card": card_section})


def test_training_config_card_section():
    config = _config(views=["AP"], age_group="child", negative_classes=["normal"])
    config.validate()
    assert config.resolved()["card"]["negative_classes"] == ["normal"]
    with pytest.raises(ConfigError, match=r"card\.age_group must be one of"):
        _config(age_group="kids").validate()
    with pytest.raises(ConfigError, match=r"card\.views must be a list"):
        _config(views="AP")
    with pytest.raises(ConfigError, match=r"card\.negative_classes .* not among the classes"):
        _config(negative_classes=["healthy"]).validate()
    with pytest.raises(ConfigError, match="empty for a binary model"):
        _config("binary", ["normal", "pneumonia"], negative_classes=["normal"]).validate()
    with pytest.raises(ConfigError, match="needs the classes listed"):
        _config(classes=[], negative_classes=["normal"]).validate()


def test_a_film_coarser_than_the_model_reads_says_so():
    small = XRayImage(np.zeros((64, 80), np.float32), "MONOCHROME2", Window(0.5, 1.0), format="PNG")
    assert population_warnings(small, card(preprocessing=PreprocessRecipe(size=128))) == (
        "This film is 64 px on its short side; the model reads 128 px, so its findings rest on an enlarged, "
        "blurred copy.",
    )
    coarse_reader = card(preprocessing=PreprocessRecipe(size=128, detail=48))
    assert population_warnings(small, coarse_reader) == ()



def test_a_model_whose_card_states_a_test_auroc_below_the_bar_is_weak():
    assert is_weak(card(metrics={"auroc": 0.72}))
    assert not is_weak(card(metrics={"auroc": 0.836}))
    assert not is_weak(card())  # a card that states nothing is not called weak (its limits say what it is)
