"""The applicability gate in the viewer, driven like a user: a refused film shows its reason and "Show
findings anyway" (for that film only); a model outside the film's population is folded and greyed, not
counted, until unfolded; without a gate (or with a broken one) the sidebar says once that nothing checked
the film."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from engine_helpers import gate_bundle
from gui_helpers import WAIT_MS, RecordingPredictor, make_tiny_bundle, make_window, open_all
from imaging_dicoms import film_dicom
from PySide6.QtCore import QSettings, Qt

from xrayviewer.engine.applicability import NO_GATE
from xrayviewer.engine.cam import explained_finding
from xrayviewer.engine.gate import ADULT, CHEST, KIND_REASONS, OOD_FILE
from xrayviewer.gui.main_window import MainWindow
from xrayviewer.gui.results_panel import MUTED_COLOUR, POSITIVE_COLOUR, SCORE_ANYWAY
from xrayviewer.gui.workers import load_gate

PHOTOGRAPH = f"Not a chest radiograph ({KIND_REASONS['photograph']}): no findings computed."
SCORED_ANYWAY = ("Scored although refused: not a chest radiograph (looks like a photograph). "
                 "These findings may mean nothing.")
LOOKS_ADULT = "Looks like an adult's film; this model was trained on children's films."


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bundles")
    # the pediatric model suggests pneumonia on every film: folded away, it must not say so
    peds = make_tiny_bundle(folder, "peds", classes=("pneumonia",), task="binary",
                            logit_offsets={"pneumonia": 8.0}, card_fields={"age_group": "child"})
    adult = make_tiny_bundle(folder, "adult", classes=("cardiomegaly", "effusion"), seed=1,
                             card_fields={"age_group": "adult"})
    return {b.name: b for b in (peds, adult)}


@pytest.fixture(scope="module")
def gates(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gates")
    return {"photograph": gate_bundle(folder, {"photograph": 12}, name="photo-gate"),
            "adult": gate_bundle(folder, {CHEST: 12, ADULT: 12}, name="adult-gate")}


@pytest.fixture
def predictors(bundles):
    return {name: RecordingPredictor(b) for name, b in bundles.items()}


@pytest.fixture
def films(kermany_rows):
    return [Path(row["path"]) for row in kermany_rows[:2]]


def window_with(qtbot, tmp_path, predictors, bundles, gate=None, names=("peds", "adult")):
    return make_window(qtbot, tmp_path, lambda bundle, device: predictors[bundle.name],
                       [bundles[n] for n in names], gate)


def refused(qtbot, window, path):
    with qtbot.waitSignal(window.background.worker.predictionFailed, timeout=WAIT_MS) as failed:
        window.open_paths([str(path)])
    qtbot.waitUntil(lambda: window.results.score_anyway.isVisible(), timeout=WAIT_MS)
    return failed.args[1]


def shown(widget):
    """Not hidden: a section's widgets are shown by Qt an event loop turn after it joins the sidebar."""
    return not widget.isHidden()


def shown_verdicts(section):
    return {name: verdict.text() for name, (_, _, verdict) in section.rows.items()}


def test_a_refused_film_shows_the_reason_and_is_scored_only_when_asked(qtbot, tmp_path, bundles, predictors,
                                                                      gates, films):
    window = window_with(qtbot, tmp_path, predictors, bundles, gates["photograph"])
    results = window.results
    assert refused(qtbot, window, films[0]) == PHOTOGRAPH
    assert results.status.text() == PHOTOGRAPH and not results.sections
    button = results.score_anyway
    assert button.text() == SCORE_ANYWAY and button.focusPolicy() & Qt.FocusPolicy.TabFocus
    assert results.unchecked.isHidden() and results.refused_note.isHidden()
    assert all(p.scored == [] for p in predictors.values())  # no model ran
    assert not window.heat_map_controls.isEnabled() and window.findings_legend() == []

    with qtbot.waitSignals([window.findingsComplete, window.heatMapShown], timeout=WAIT_MS):
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert button.isHidden()
    assert results.refused_note.isVisible() and results.refused_note.text() == SCORED_ANYWAY
    assert list(results.sections) == ["peds", "adult"]
    assert all(len(p.scored) == 1 for p in predictors.values())
    # the gate refused the film, so it gave no age group: both models speak, as without a population
    assert not any(s.outside for s in results.sections.values())
    assert "suggested" in shown_verdicts(results.sections["peds"])["pneumonia"]
    expected = explained_finding(list(window.predictions.values()))
    qtbot.waitUntil(lambda: window.session.heat_map == expected, timeout=WAIT_MS)
    assert window.findings_legend()[:2] == ["Second opinion, not a diagnosis", SCORED_ANYWAY]

    assert refused(qtbot, window, films[1]) == PHOTOGRAPH  # the next film starts refused again
    assert not results.sections and results.refused_note.isHidden()
    assert all(len(p.scored) == 1 for p in predictors.values())
    for name in ("peds", "adult"):  # every model turned off: the refusal and its button stay
        window.set_model_enabled(name, False)
    assert results.status.text() == PHOTOGRAPH and results.score_anyway.isVisible()


def test_a_header_body_part_other_than_chest_is_refused_and_scored_from_the_keyboard(
    qtbot, tmp_path, bundles, predictors, films
):
    window = window_with(qtbot, tmp_path, predictors, bundles)  # no gate: the header rule alone refuses
    knee = film_dicom(films[0], tmp_path / "knee.dcm", BodyPartExamined="KNEE")
    reason = "Not a chest radiograph (body part KNEE): no findings computed."
    assert refused(qtbot, window, knee) == reason
    results = window.results
    assert results.status.text() == reason and not results.sections
    assert results.unchecked.isHidden()  # refused by its header: "nothing checked it" would be wrong
    results.score_anyway.setFocus()
    with qtbot.waitSignal(window.findingsComplete, timeout=WAIT_MS):
        qtbot.keyClick(results.score_anyway, Qt.Key.Key_Space)
    assert results.refused_note.text() == ("Scored although refused: not a chest radiograph (body part "
                                           "KNEE). These findings may mean nothing.")
    assert list(results.sections) == ["peds", "adult"] and results.sections["adult"].rows
    assert results.unchecked.isHidden()  # scored anyway, but the header rule did check it


def test_a_pediatric_model_is_folded_on_an_adult_film_and_unfolds_on_request(qtbot, tmp_path, bundles,
                                                                           predictors, gates, films):
    window = window_with(qtbot, tmp_path, predictors, bundles, gates["adult"])
    open_all(qtbot, window, films[0])
    results = window.results
    peds, adult = results.sections["peds"], results.sections["adult"]
    assert window.predictions["peds"].positive == ["pneumonia"]  # it ran, and would say "suggested"
    assert peds.outside and peds.folded and peds.property("outside")
    assert peds.grid_box.isHidden() and peds.limits.isHidden()
    assert shown(peds.population) and peds.population.text() == LOOKS_ADULT
    assert shown(peds.fold) and peds.fold.text().startswith("▸ show its scores")
    assert not adult.outside and shown(adult.grid_box) and adult.population.isHidden()
    assert results.warnings.isHidden() and results.unchecked.isHidden()  # a gate checked the film
    adult_prediction = window.predictions["adult"]
    positive = len(adult_prediction.positive)
    summary = (f"{positive} of 2 findings above their model's threshold (1 model)" if positive
               else "No finding above its model's threshold (2 checked by 1 model)")
    assert results.status.text() == f"{summary} · 1 model outside the film's population, not counted"
    combo = window.heat_map_controls.finding
    offered = {tuple(combo.itemData(i)) for i in range(combo.count())}
    assert offered == {("adult", "cardiomegaly"), ("adult", "effusion")}  # nothing of the folded model
    qtbot.waitUntil(lambda: window.session.heat_map == explained_finding([adult_prediction]), timeout=WAIT_MS)

    qtbot.mouseClick(peds.header, Qt.MouseButton.LeftButton)  # unfold: its scores, greyed, no decision
    assert not peds.folded and shown(peds.grid_box) and peds.fold.text().startswith("▾ hide")
    score = window.predictions["peds"].scores["pneumonia"]
    assert shown_verdicts(peds) == {"pneumonia": f"{score:.0%}"}
    _, bar, verdict = peds.rows["pneumonia"]
    assert verdict.objectName() == "outside" and bar.muted and not bar.positive
    drawn = bar.grab().toImage()
    colours = {drawn.pixelColor(x, y).name() for x in range(drawn.width()) for y in range(drawn.height())}
    assert MUTED_COLOUR.name() in colours and POSITIVE_COLOUR.name() not in colours  # grey, never orange
    assert results.status.text().endswith("1 model outside the film's population, not counted")
    offered = [tuple(combo.itemData(i)) for i in range(combo.count())]
    assert ("peds", "pneumonia") in offered
    legend = window.findings_legend()
    start = legend.index(f"peds v{bundles['peds'].card.version}")
    assert legend[start + 1:start + 4] == [
        f"  warning: {LOOKS_ADULT}",
        "  outside its population: scores only, not counted",
        f"  pneumonia: {score:.0%}",
    ]

    assert peds.header.focusPolicy() == Qt.FocusPolicy.StrongFocus  # reached by Tab
    assert adult.header.focusPolicy() == Qt.FocusPolicy.NoFocus  # nothing to fold: out of the tab order
    peds.header.setFocus()
    qtbot.keyClick(peds.header, Qt.Key.Key_Return)  # fold back from the keyboard
    assert peds.folded and peds.grid_box.isHidden()
    assert ("peds", "pneumonia") not in [tuple(combo.itemData(i)) for i in range(combo.count())]


def test_a_childs_age_in_the_header_wins_over_the_gates_adult_estimate(qtbot, tmp_path, bundles, predictors,
                                                                        gates, films):
    window = window_with(qtbot, tmp_path, predictors, bundles, gates["adult"])
    child = film_dicom(films[0], tmp_path / "child.dcm", PatientAge="005Y")
    open_all(qtbot, window, child)
    peds, adult = window.results.sections["peds"], window.results.sections["adult"]
    assert not peds.outside and shown(peds.grid_box)
    assert shown_verdicts(peds)["pneumonia"].endswith("· suggested")
    assert peds.rows["pneumonia"][2].objectName() == "positive"
    assert adult.outside and adult.folded
    assert adult.population.text() == "Trained on adults' films; this patient is a child."
    assert window.results.status.text().startswith("1 of 1 findings above their model's threshold (1 model)")
    qtbot.waitUntil(lambda: window.session.heat_map == ("peds", "pneumonia"), timeout=WAIT_MS)


def test_without_a_gate_the_sidebar_says_once_that_nothing_checked_the_film(qtbot, tmp_path, bundles,
                                                                            predictors, films):
    window = window_with(qtbot, tmp_path, predictors, bundles)
    open_all(qtbot, window, films[0])
    results = window.results
    assert results.unchecked.isVisible() and results.unchecked.text() == NO_GATE
    assert NO_GATE not in results.warnings.text()
    assert not any(s.outside for s in results.sections.values())  # no header age, no estimate: all speak
    assert [s.population.text() for s in results.sections.values()] == ["", ""]


def test_a_gate_is_loaded_once_off_the_ui_thread_and_a_broken_one_is_no_gate(qtbot, tmp_path, bundles,
                                                                             predictors, gates, films):
    broken = tmp_path / "broken-gate"
    gate = gate_bundle(broken, {CHEST: 12, ADULT: 12})
    (gate.path / OOD_FILE).write_bytes((gate.path / OOD_FILE).read_bytes()[:-4] + b"\0\0\0\0")
    loads = []

    def loader(device):
        loads.append(threading.current_thread() is threading.main_thread())
        return load_gate(gate, "cpu")

    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings, lambda bundle, device: predictors[bundle.name],
                        lambda: [bundles["peds"], bundles["adult"]], loader)
    qtbot.addWidget(window)
    window.show()
    for film in films:
        open_all(qtbot, window, film)
        unchecked = window.results.unchecked.text().split("\n")
        assert unchecked[0] == NO_GATE and "could not be loaded" in unchecked[1]
        assert "does not match the sha256" in unchecked[1]
        assert list(window.results.sections) == ["peds", "adult"]  # the findings still run
    assert loads == [False]  # once, on the worker thread


def test_a_gate_that_fails_on_a_film_leaves_it_unchecked_and_the_findings_still_run(qtbot, tmp_path, bundles,
                                                                                    predictors, films):
    class FailingGate:
        def check(self, image):
            raise RuntimeError("out of memory")

    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings, lambda bundle, device: predictors[bundle.name],
                        lambda: [bundles["peds"], bundles["adult"]], lambda device: FailingGate())
    qtbot.addWidget(window)
    window.show()
    open_all(qtbot, window, films[0])
    assert window.results.unchecked.text() == (
        f"{NO_GATE}\nThe applicability gate failed on this image: out of memory")
    assert list(window.predictions) == ["peds", "adult"]
