"""Every installed model runs on each image: a sidebar section per bundle, the Model menu's on/off choice,
heat maps of any model's findings, one model's failure kept to its section, and the applicability gate."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from gui_helpers import (
    CHEST_DICOM,
    WAIT_MS,
    RecordingPredictor,
    choose_finding,
    make_tiny_bundle,
    make_window,
    open_all,
)
from imaging_dicoms import film_dicom
from PySide6.QtCore import QSettings, Qt

from xrayviewer.engine.bundle import read_bundle
from xrayviewer.engine.cam import explained_finding
from xrayviewer.gui.settings import ViewerSettings
from xrayviewer.gui.workers import load_predictor

TYPES = ("normal", "bacterial", "viral")
LIMITS = "Pediatric AP films of one hospital only."


@pytest.fixture(scope="module")
def two_bundles(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bundles")
    first = make_tiny_bundle(folder)
    second = make_tiny_bundle(folder, "tiny-type", classes=TYPES, task="multiclass", seed=1)
    return [first, replace(second, card=replace(second.card, limitations=LIMITS))]


@pytest.fixture
def predictors(two_bundles):
    return {b.name: RecordingPredictor(b) for b in two_bundles}


@pytest.fixture
def chest(shared_data):
    return shared_data / "dicom" / CHEST_DICOM


def menu_action(window, name):
    window.menus.model_menu.aboutToShow.emit()
    return next(a for a in window.menus.model_menu.actions() if a.text().split(" v")[0] == name)


def test_every_model_has_its_section_findings_heat_maps_and_legend(qtbot, tmp_path, two_bundles, predictors,
                                                                   chest):
    old = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    old.setValue("model/name", "tiny-type")  # the single choice of earlier versions: no longer limits
    old.sync()
    window = make_window(qtbot, tmp_path, lambda bundle, device: predictors[bundle.name], two_bundles)
    open_all(qtbot, window, chest)

    assert list(window.results.sections) == ["tiny-test", "tiny-type"]
    for bundle in two_bundles:
        section = window.results.sections[bundle.name]
        assert set(section.rows) == set(bundle.card.classes)
        assert section.header.text() == f"<b>{bundle.name}</b> v{bundle.card.version}"
        assert predictors[bundle.name].scored == [(1024, 1024)]
        assert section.limits.isHidden() != bool(bundle.card.limitations)
    assert window.results.sections["tiny-type"].limits.text() == f"Limits: {LIMITS}"
    pairs = [(b.name, c) for b in two_bundles for c in b.card.classes]
    combo = window.heat_map_controls.finding
    assert [tuple(combo.itemData(i)) for i in range(combo.count())] == pairs
    expected = explained_finding(list(window.predictions.values()))
    qtbot.waitUntil(lambda: window.heat_map_controls.current() == expected == window.session.heat_map,
                    timeout=WAIT_MS)
    qtbot.keyClick(window, Qt.Key.Key_C)  # the sidebar's new widgets left the window active: shortcuts work
    assert window.view.overlay_item.isVisible()
    legend = window.findings_legend()
    assert legend[0] == "Second opinion, not a diagnosis"
    assert "tiny-type v0.0-test" in legend and "tiny-test v0.0-test" in legend
    assert sum(line.startswith("  ") for line in legend) == 6

    before = window.view.overlay_item.pixmap().toImage()
    target = next(pair for pair in pairs if pair[0] == "tiny-type" and pair != expected)
    with qtbot.waitSignal(window.heatMapShown, timeout=WAIT_MS) as shown:
        choose_finding(window, *target)
    assert shown.args == list(target)
    assert window.view.overlay_item.pixmap().toImage() != before


def test_turning_a_model_off_and_on_in_the_model_menu(qtbot, tmp_path, two_bundles, predictors, chest):
    window = make_window(qtbot, tmp_path, lambda bundle, device: predictors[bundle.name], two_bundles)
    open_all(qtbot, window, chest)
    with qtbot.waitSignal(window.heatMapShown, timeout=WAIT_MS):
        choose_finding(window, "tiny-type", "viral")
    action = menu_action(window, "tiny-type")
    assert action.isCheckable() and action.isChecked()
    with qtbot.waitSignal(window.heatMapShown, timeout=WAIT_MS) as shown:
        action.trigger()  # off: its heat map gives way to the remaining model's default one
    assert shown.args == list(explained_finding([window.predictions["tiny-test"]]))
    assert list(window.results.sections) == ["tiny-test"]
    combo = window.heat_map_controls.finding
    assert {combo.itemData(i)[0] for i in range(combo.count())} == {"tiny-test"}
    qtbot.wait(300)  # nothing may run again
    assert [len(p.scored) for p in predictors.values()] == [1, 1]
    settings_file = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    assert ViewerSettings(settings_file).disabled_models == ["tiny-type"]
    window.close()

    reopened = make_window(qtbot, tmp_path, lambda bundle, device: predictors[bundle.name], two_bundles)
    open_all(qtbot, reopened, chest)
    assert list(reopened.results.sections) == ["tiny-test"]
    assert [len(p.scored) for p in predictors.values()] == [2, 1]  # the turned-off model did not run
    assert not menu_action(reopened, "tiny-type").isChecked()
    with qtbot.waitSignal(reopened.findingsComplete, timeout=WAIT_MS):
        menu_action(reopened, "tiny-type").trigger()  # on again: only it runs
    assert list(reopened.results.sections) == ["tiny-test", "tiny-type"]
    assert reopened.results.sections["tiny-type"].rows
    assert [len(p.scored) for p in predictors.values()] == [2, 2]
    assert ViewerSettings(settings_file).disabled_models == []


def test_a_model_with_damaged_weights_shows_its_error_and_the_other_still_shows(
    qtbot, tmp_path, two_bundles, chest, monkeypatch
):
    damaged = tmp_path / "damaged" / "tiny-test"
    shutil.copytree(two_bundles[0].path, damaged)
    weights = damaged / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    window = make_window(qtbot, tmp_path, load_predictor, [read_bundle(damaged), two_bundles[1]])
    open_all(qtbot, window, chest)
    broken, good = window.results.sections["tiny-test"], window.results.sections["tiny-type"]
    assert "could not be loaded" in broken.error.text() and "sha256" in broken.error.text()
    assert not broken.rows and broken.facts.text() == "failed"
    assert set(good.rows) == set(TYPES) and good.error.isHidden()
    assert list(window.predictions) == ["tiny-type"]
    combo = window.heat_map_controls.finding
    assert {combo.itemData(i)[0] for i in range(combo.count())} == {"tiny-type"}


def test_a_ct_is_refused_without_running_any_model(qtbot, tmp_path, two_bundles, predictors, shared_data):
    window = make_window(qtbot, tmp_path, lambda bundle, device: predictors[bundle.name], two_bundles)
    ct = shared_data / "dicom" / "nonchest_ct_signed_rescale_j2k_lossless.dcm"
    with qtbot.waitSignal(window.background.worker.predictionFailed, timeout=WAIT_MS) as refused:
        window.open_paths([str(ct)])
    message = "Not a chest radiograph (modality CT): no findings computed."
    assert refused.args[1] == message
    qtbot.waitUntil(lambda: window.results.status.text() == message, timeout=WAIT_MS)
    assert not window.results.sections and not window.heat_map_controls.isEnabled()
    assert window.view.has_picture()
    assert all(p.scored == [] for p in predictors.values())


def test_a_lateral_view_is_scored_with_a_warning(qtbot, tmp_path, two_bundles, predictors, kermany_rows):
    window = make_window(qtbot, tmp_path, lambda bundle, device: predictors[bundle.name], two_bundles)
    lateral = film_dicom(Path(kermany_rows[0]["path"]), tmp_path / "lateral.dcm", ViewPosition="LL")
    open_all(qtbot, window, lateral)
    warnings = window.results.warnings
    assert not warnings.isHidden() and "Lateral view (LL)" in warnings.text()
    assert list(window.results.sections) == ["tiny-test", "tiny-type"]


def test_opening_another_image_mid_way_drops_the_remaining_models(qtbot, tmp_path, two_bundles, chest,
                                                                   kermany_rows):
    slow = RecordingPredictor(two_bundles[0], delay_s=0.8)
    second = RecordingPredictor(two_bundles[1])
    predictors = {"tiny-test": slow, "tiny-type": second}
    window = make_window(qtbot, tmp_path, lambda bundle, device: predictors[bundle.name], two_bundles)
    shown = []
    window.resultsShown.connect(lambda p: shown.append((p.model, p.geometry.source_shape)))
    with qtbot.waitSignal(window.imageShown, timeout=WAIT_MS):
        window.open_paths([str(chest)])
    assert slow.started.wait(WAIT_MS / 1000)  # the first model is scoring the chest film
    small = kermany_rows[0]["path"]
    open_all(qtbot, window, small)
    shape = window.loaded.image.shape
    assert slow.scored == [(1024, 1024), shape]  # its chest result was computed, then dropped
    assert second.scored == [shape]  # the second model never ran on the chest film
    assert shown == [("tiny-test", shape), ("tiny-type", shape)]


def test_sections_put_the_model_with_the_best_stated_test_auc_first(qtbot, tmp_path, two_bundles, predictors,
                                                                    chest):
    weak, strong = (replace(b, card=replace(b.card, metrics={"auroc": auc}))
                    for b, auc in zip(two_bundles, (0.85, 0.95), strict=True))
    window = make_window(qtbot, tmp_path, lambda bundle, device: predictors[bundle.name], [weak, strong])
    open_all(qtbot, window, chest)
    assert list(window.results.sections) == [strong.name, weak.name]  # search order is the other way round
    window.menus.model_menu.aboutToShow.emit()  # the Model menu keeps the search order
    menu_order = [a.text().split(" v")[0] for a in window.menus.model_menu.actions()]
    assert menu_order[:2] == [weak.name, strong.name]


def test_a_weak_model_stays_off_until_turned_on_and_is_remembered(qtbot, tmp_path, two_bundles, predictors,
                                                                  chest):
    strong, weak = (replace(b, card=replace(b.card, metrics={"auroc": auc}))
                    for b, auc in zip(two_bundles, (0.9, 0.72), strict=True))
    bundles = [strong, weak]
    window = make_window(qtbot, tmp_path, lambda bundle, device: predictors[bundle.name], bundles)
    open_all(qtbot, window, chest)
    assert list(window.results.sections) == ["tiny-test"]  # the weak one did not speak unasked
    assert predictors["tiny-type"].scored == []
    action = menu_action(window, "tiny-type")
    assert not action.isChecked() and action.text().endswith("(weak: a hint, off until turned on)")
    with qtbot.waitSignal(window.findingsComplete, timeout=WAIT_MS):
        action.trigger()
    assert list(window.results.sections) == ["tiny-test", "tiny-type"]
    settings_file = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    assert ViewerSettings(settings_file).enabled_weak_models == ["tiny-type"]
    assert ViewerSettings(settings_file).disabled_models == []
    window.close()

    reopened = make_window(qtbot, tmp_path, lambda bundle, device: predictors[bundle.name], bundles)
    open_all(qtbot, reopened, chest)
    assert list(reopened.results.sections) == ["tiny-test", "tiny-type"]  # the user's choice holds
    menu_action(reopened, "tiny-type").trigger()  # off again: back to the default
    assert ViewerSettings(settings_file).enabled_weak_models == []
    assert ViewerSettings(settings_file).models_off(bundles) == {"tiny-type"}
