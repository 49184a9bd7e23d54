"""The sidebar says, per model, when a film is outside the model's training population, and a card's
negative classes ("normal") are shown but never counted as findings nor chosen for the heat map."""

from __future__ import annotations

import pytest
from gui_helpers import WAIT_MS, make_tiny_bundle, make_window, open_all
from imaging_dicoms import dataset, ramp, write
from PySide6.QtCore import Qt

from xrayviewer.engine.cam import FAINTEST
from xrayviewer.engine.predictor import Predictor

TYPES = ("normal", "bacterial", "viral")
ADULT_PA_WARNINGS = (
    "Trained on AP films; this film is PA.",
    "Trained on children's films; this patient is an adult.",
)


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bundles")
    pediatric = make_tiny_bundle(folder, "pediatric-ap", classes=("pneumonia",), task="binary",
                                 card_fields={"views": ["AP"], "age_group": "child"})
    types = make_tiny_bundle(folder, "types", classes=TYPES, task="multiclass", seed=1,
                             logit_offsets={"normal": 6.0}, card_fields={"negative_classes": ["normal"]})
    pediatric_types = make_tiny_bundle(folder, "pediatric-types", classes=TYPES, task="multiclass", seed=2,
                                       card_fields={"views": ["AP"], "age_group": "child"})
    return {b.name: b for b in (pediatric, types, pediatric_types)}


def torch_predictor(bundle, device):
    return Predictor(bundle, device="cpu", backend="torch")


def film(tmp_path, name, view, age):
    pixels = ramp(160, 128, high=4095)
    return write(dataset(pixels, bits_stored=12, ViewPosition=view, PatientAge=age), tmp_path / name)


def test_each_section_warns_when_the_film_is_outside_its_training_population(qtbot, tmp_path, bundles):
    window = make_window(qtbot, tmp_path, torch_predictor, [bundles["pediatric-ap"], bundles["types"]])
    open_all(qtbot, window, film(tmp_path, "adult_pa.dcm", "PA", "045Y"))
    pediatric, types = window.results.sections["pediatric-ap"], window.results.sections["types"]
    assert pediatric.population.isVisible()
    assert pediatric.population.text() == "\n".join(ADULT_PA_WARNINGS)
    assert pediatric.population_warnings == ADULT_PA_WARNINGS
    assert not types.population.isVisible()  # its card names no population: nothing to say
    assert pediatric.outside and pediatric.folded  # an adult's film: folded below the warning
    assert pediatric.rows and pediatric.grid_box.isHidden() and not types.grid_box.isHidden()
    qtbot.mouseClick(pediatric.header, Qt.MouseButton.LeftButton)  # unfolded: its scores, without wording
    assert not pediatric.grid_box.isHidden()
    score = window.predictions["pediatric-ap"].scores["pneumonia"]
    assert pediatric.rows["pneumonia"][2].text() == f"{score:.0%}"
    legend = window.findings_legend()
    start = legend.index(f"pediatric-ap v{bundles['pediatric-ap'].card.version}")
    assert legend[start + 1 : start + 3] == [f"  warning: {w}" for w in ADULT_PA_WARNINGS]

    open_all(qtbot, window, film(tmp_path, "child_ap.dcm", "AP", "004Y"))
    assert window.results.sections["pediatric-ap"].population.isHidden()


def test_warnings_every_model_gives_are_said_once_above_the_sections(qtbot, tmp_path, bundles):
    both = [bundles["pediatric-ap"], bundles["pediatric-types"]]
    window = make_window(qtbot, tmp_path, torch_predictor, both)
    open_all(qtbot, window, film(tmp_path, "adult_pa.dcm", "PA", "045Y"))
    top = window.results.warnings
    assert top.isVisible()
    assert top.text() == "\n".join(["Every model:", *(f"• {w}" for w in ADULT_PA_WARNINGS)])
    for section in window.results.sections.values():
        assert section.population.isHidden()  # not repeated under each model...
        assert section.population_warnings == ADULT_PA_WARNINGS  # ...but still each model's own
        assert section.folded  # both are children's models: neither speaks on an adult's film
    assert window.results.status.text() == "No finding counted: 2 models outside the film's population"
    assert window.findings_legend().count(f"  warning: {ADULT_PA_WARNINGS[0]}") == 2  # the export names both

    open_all(qtbot, window, film(tmp_path, "child_ap.dcm", "AP", "004Y"))
    assert window.results.warnings.isHidden()


def test_warnings_some_models_share_are_said_once_with_their_names(qtbot, tmp_path, bundles):
    three = [bundles["pediatric-ap"], bundles["types"], bundles["pediatric-types"]]
    window = make_window(qtbot, tmp_path, torch_predictor, three)
    open_all(qtbot, window, film(tmp_path, "adult_pa.dcm", "PA", "045Y"))
    top = window.results.warnings
    assert top.text() == "\n".join(
        ["pediatric-ap and pediatric-types:", *(f"• {w}" for w in ADULT_PA_WARNINGS)]
    )  # "types" states no population: not "Every model"
    assert all(section.population.isHidden() for section in window.results.sections.values())

    window.menus.model_menu.aboutToShow.emit()
    turn_off = next(a for a in window.menus.model_menu.actions() if a.text().startswith("pediatric-types "))
    turn_off.trigger()  # one pediatric model left: its warnings go back into its own section
    assert top.isHidden()
    pediatric = window.results.sections["pediatric-ap"]
    assert pediatric.population.isVisible() and pediatric.population.text() == "\n".join(ADULT_PA_WARNINGS)


def test_negative_class_is_shown_but_never_a_finding_nor_the_default_heat_map(qtbot, tmp_path, bundles):
    window = make_window(qtbot, tmp_path, torch_predictor, [bundles["types"]])
    open_all(qtbot, window, film(tmp_path, "film.dcm", "AP", "004Y"))
    prediction = window.predictions["types"]
    assert prediction.top == "normal" and prediction.positive == ["normal"]  # normal scores highest
    section = window.results.sections["types"]
    assert list(section.rows)[-1] == "normal"  # listed after the findings
    assert section.rows["normal"][2].text() == f"{prediction.scores['normal']:.0%}"  # no "suggested"
    assert section.rows["bacterial"][2].text().endswith("· not suggested")
    assert window.results.status.text() == "No finding above its model's threshold (2 checked by 1 model)"
    finding = max(("bacterial", "viral"), key=prediction.scores.__getitem__)
    qtbot.waitUntil(lambda: window.session.heat_map == ("types", finding), timeout=WAIT_MS)
    assert window.heat_map_controls.current() == ("types", finding)
    score, threshold = prediction.scores[finding], prediction.thresholds[finding]
    assert score < threshold  # rejected: its heat map is drawn faint, and the controls say why
    assert window.heat_map_controls.note.isVisible()
    assert window.heat_map_controls.note.text() == (
        f"types: {finding} scores {score:.0%}, below its threshold {threshold:.0%}: "
        "the heat map is drawn faint."
    )
    overlay = window.view.overlay_item.pixmap().toImage()
    alphas = [overlay.pixelColor(x, y).alpha() for x in range(0, overlay.width(), 4)
              for y in range(0, overlay.height(), 4)]
    assert max(alphas) <= 255 * max(score / threshold, FAINTEST) + 2
    qtbot.keyClick(window, Qt.Key.Key_C)  # show it: the exported legend says it is faint
    assert window.findings_legend()[-1] == f"heat map: types: {finding} (faint: below its threshold)"
    assert f"  normal: {prediction.scores['normal']:.0%}" in window.findings_legend()
