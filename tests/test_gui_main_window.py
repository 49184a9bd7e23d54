"""The viewer driven like a user: open real images, wait for the model, toggle the heat map, errors."""

from __future__ import annotations

import numpy as np
import pytest
from gui_helpers import (
    CHEST_DICOM,
    WAIT_MS,
    RecordingPredictor,
    choose_finding,
    make_tiny_bundle,
    make_window,
    picture_pixels,
)
from PySide6.QtCore import QSettings, Qt

from xrayviewer.gui.export import export_png
from xrayviewer.gui.metadata_panel import MASK
from xrayviewer.gui.results_panel import DISCLAIMER
from xrayviewer.gui.workers import NO_MODEL, installed_bundles
from xrayviewer.imaging import lut, open_image


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory):
    return make_tiny_bundle(tmp_path_factory.mktemp("bundles"))


@pytest.fixture
def chest(shared_data):
    return shared_data / "dicom" / CHEST_DICOM


@pytest.fixture
def small_png(kermany_rows):
    return kermany_rows[0]["path"]


def open_and_wait(qtbot, window, path):
    with qtbot.waitSignals([window.findingsComplete, window.heatMapShown], timeout=WAIT_MS):
        window.open_paths([str(path)])
    return window.predictions["tiny-test"]


def recording(tiny_bundle, **options):
    """A window factory argument: the same RecordingPredictor for every bundle asked for."""
    predictor = RecordingPredictor(tiny_bundle, **options)
    return lambda bundle, device: predictor


def test_open_shows_image_and_predicted_scores(qtbot, tmp_path, tiny_bundle, chest):
    predictor = RecordingPredictor(tiny_bundle)
    window = make_window(qtbot, tmp_path, lambda bundle, device: predictor, [tiny_bundle])
    prediction = open_and_wait(qtbot, window, chest)

    expected = lut.to_uint8(lut.render(open_image(chest)))
    assert np.array_equal(picture_pixels(window), expected)
    assert predictor.scored == [(1024, 1024)]
    section = window.results.sections["tiny-test"]
    assert set(section.rows) == set(prediction.classes)
    for name, (_, bar, verdict) in section.rows.items():
        assert bar.score == pytest.approx(prediction.scores[name])
        assert bar.threshold == pytest.approx(prediction.thresholds[name])
        wording = "suggested" if name in prediction.positive else "not suggested"
        assert verdict.text() == f"{prediction.scores[name]:.0%} · {wording}"
    assert "tiny-test" in section.header.text() and "cpu" in section.facts.text()
    assert window.results.disclaimer.text() == DISCLAIMER
    assert window.heat_map_controls.current() == ("tiny-test", prediction.top)
    assert window.metadata.values()["Modality"] == "CR"


def test_heat_map_toggle_opacity_and_finding(qtbot, tmp_path, tiny_bundle, chest):
    window = make_window(qtbot, tmp_path, recording(tiny_bundle), [tiny_bundle])
    with qtbot.waitSignal(window.heatMapShown, timeout=WAIT_MS) as shown:
        window.open_paths([str(chest)])
    prediction = window.predictions["tiny-test"]
    assert shown.args == ["tiny-test", prediction.top]
    overlay = window.view.overlay_item
    assert overlay.pixmap().size() == window.view.image_item.pixmap().size()
    assert not overlay.isVisible()

    qtbot.keyClick(window, Qt.Key.Key_C)
    assert overlay.isVisible() and window.heat_map_controls.toggle.isChecked()
    window.heat_map_controls.opacity.setValue(80)
    assert overlay.opacity() == pytest.approx(0.8)
    assert QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat).value("overlay/opacity") in (
        0.8,
        "0.8",
    )
    qtbot.mouseClick(window.heat_map_controls.toggle, Qt.MouseButton.LeftButton)
    assert not overlay.isVisible()

    before = overlay.pixmap().toImage()
    other = next(c for c in prediction.classes if c != prediction.top)
    with qtbot.waitSignal(window.heatMapShown, timeout=WAIT_MS) as shown:
        choose_finding(window, "tiny-test", other)
    assert shown.args == ["tiny-test", other]
    assert overlay.pixmap().toImage() != before


def test_second_image_during_inference_drops_the_first_result(qtbot, tmp_path, tiny_bundle, chest, small_png):
    predictor = RecordingPredictor(tiny_bundle, delay_s=0.8)
    window = make_window(qtbot, tmp_path, lambda bundle, device: predictor, [tiny_bundle])
    shown = []
    window.resultsShown.connect(lambda p: shown.append(p.geometry.source_shape))
    with qtbot.waitSignal(window.imageShown, timeout=WAIT_MS):
        window.open_paths([str(chest)])
    assert predictor.started.wait(WAIT_MS / 1000)  # the chest film is being scored now
    with qtbot.waitSignal(window.resultsShown, timeout=WAIT_MS):
        window.open_paths([small_png])
    small_shape = open_image(small_png).shape
    assert predictor.scored == [(1024, 1024), small_shape]  # the first result was computed, then dropped
    qtbot.wait(200)
    assert shown == [small_shape]
    assert window.loaded.image.shape == small_shape


def test_bad_file_shows_an_error_and_keeps_the_image(qtbot, tmp_path, tiny_bundle, chest):
    window = make_window(qtbot, tmp_path, recording(tiny_bundle), [tiny_bundle])
    open_and_wait(qtbot, window, chest)
    before = picture_pixels(window)
    bad = tmp_path / "broken.dcm"
    bad.write_bytes(b"\0" * 128 + b"DICM" + b"garbage" * 50)
    with qtbot.waitSignal(window.errorShown, timeout=WAIT_MS) as error:
        window.open_paths([str(bad)])
    assert "broken.dcm" in error.args[0]
    assert window.error_banner.isVisible() and window.error_banner.text() == error.args[0]
    assert np.array_equal(picture_pixels(window), before)
    assert window.loaded.path == chest
    assert window.results.sections["tiny-test"].rows  # the findings of the image still shown stay
    prediction = window.predictions["tiny-test"]
    other = next(c for c in prediction.classes if c != prediction.top)
    with qtbot.waitSignal(window.heatMapShown, timeout=WAIT_MS) as shown:  # and still work
        choose_finding(window, "tiny-test", other)
    assert shown.args == ["tiny-test", other]


def test_without_a_model_the_sidebar_says_so(qtbot, tmp_path, chest):
    def no_model(bundle, device):
        raise AssertionError("no bundle is installed: nothing may be loaded")

    window = make_window(qtbot, tmp_path, no_model, [])
    with qtbot.waitSignal(window.background.worker.predictionFailed, timeout=WAIT_MS):
        window.open_paths([str(chest)])
    qtbot.waitUntil(lambda: window.results.status.text() == NO_MODEL, timeout=WAIT_MS)
    assert not window.results.sections and not window.heat_map_controls.isEnabled()
    assert window.view.has_picture()


def test_closing_during_inference_quits_cleanly(qtbot, tmp_path, tiny_bundle, chest):
    predictor = RecordingPredictor(tiny_bundle, delay_s=0.5)
    window = make_window(qtbot, tmp_path, lambda bundle, device: predictor, [tiny_bundle])
    window.open_paths([str(chest)])
    assert predictor.started.wait(WAIT_MS / 1000)
    window.close()
    assert window.background.qthread.isFinished()
    assert QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat).value("window/geometry")


def test_patient_fields_are_masked_until_revealed(qtbot, tmp_path, tiny_bundle, chest):
    window = make_window(qtbot, tmp_path, recording(tiny_bundle), [tiny_bundle])
    with qtbot.waitSignal(window.imageShown, timeout=WAIT_MS):
        window.open_paths([str(chest)])
    assert window.metadata.values()["Patient ID"] == MASK
    qtbot.mouseClick(window.metadata.reveal, Qt.MouseButton.LeftButton)
    assert window.metadata.values()["Patient ID"] not in (MASK, "")  # never printed
    window.metadata.set_image(window.loaded.image)
    assert window.metadata.values()["Patient ID"] == MASK


def test_folder_strip_steps_with_page_keys(qtbot, tmp_path, tiny_bundle, kermany_rows):
    folder = tmp_path / "study"
    folder.mkdir()
    for row in kermany_rows[:3]:
        (folder / row["file"]).symlink_to(row["path"])
    (folder / "notes.txt").write_text("not an image")
    window = make_window(qtbot, tmp_path, recording(tiny_bundle), [tiny_bundle])
    with qtbot.waitSignal(window.imageShown, timeout=WAIT_MS) as first:
        window.open_paths([str(folder)])
    names = sorted(row["file"] for row in kermany_rows[:3])
    assert first.args[0].endswith(names[0])
    assert [p.split("/")[-1] for p in window.thumbnails.files()] == names
    with qtbot.waitSignal(window.imageShown, timeout=WAIT_MS) as second:
        qtbot.keyClick(window, Qt.Key.Key_PageDown)
    assert second.args[0].endswith(names[1])
    qtbot.waitUntil(lambda: not window.thumbnails.item(2).icon().isNull(), timeout=WAIT_MS)


def test_export_png_with_and_without_overlay(qtbot, tmp_path, tiny_bundle, small_png):
    window = make_window(qtbot, tmp_path, recording(tiny_bundle), [tiny_bundle])
    with qtbot.waitSignal(window.heatMapShown, timeout=WAIT_MS):
        window.open_paths([small_png])
    window.heat_map_controls.toggle.setChecked(True)
    plain = export_png(tmp_path / "plain.png", window.view, with_overlay=False)
    heat = export_png(tmp_path / "heat", window.view, with_overlay=True, legend=window.findings_legend())
    assert heat.name == "heat.png"
    from PySide6.QtGui import QImage

    a, b = QImage(str(plain)), QImage(str(heat))
    rows, cols = window.loaded.image.shape
    assert (a.width(), a.height()) == (b.width(), b.height()) == (cols, rows)
    assert a != b
    assert window.view.overlay_item.isVisible()  # export restored the on-screen state


def test_view_shortcuts_and_drop(qtbot, tmp_path, tiny_bundle, small_png, chest):
    from PySide6.QtCore import QMimeData, QPointF, QUrl
    from PySide6.QtGui import QDropEvent

    window = make_window(qtbot, tmp_path, recording(tiny_bundle), [tiny_bundle])
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(chest))])
    drop = QDropEvent(
        QPointF(50, 50),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
    )
    with qtbot.waitSignal(window.imageShown, timeout=WAIT_MS) as shown:
        window.dropEvent(drop)  # offscreen Qt delivers no drop without a real drag in progress
    assert shown.args[0] == str(chest)
    qtbot.keyClick(window, Qt.Key.Key_R)
    qtbot.keyClick(window, Qt.Key.Key_H)
    assert window.view.orientation() == (90, True, False)
    qtbot.keyClick(window, Qt.Key.Key_1)
    assert window.view.zoom() == pytest.approx(1.0 / window.view.devicePixelRatioF())
    qtbot.keyClick(window, Qt.Key.Key_Home)
    assert window.view.orientation() == (0, False, False)
    assert window.settings.recent_files[0] == str(chest)


def test_real_model_lookup_with_nothing_installed_says_so(qtbot, tmp_path, monkeypatch, chest):
    from xrayviewer.engine import bundle as bundle_mod

    monkeypatch.setattr(bundle_mod, "models_search_path", lambda extra=(): [tmp_path / "none", *extra])
    monkeypatch.setenv(bundle_mod.XRV_CACHE_ENV, str(tmp_path / "no-xrv-cache"))
    window = make_window(qtbot, tmp_path, lambda bundle, device: pytest.fail("nothing to load"))
    assert window.list_bundles is installed_bundles  # the real lookup
    with qtbot.waitSignal(window.background.worker.predictionFailed, timeout=WAIT_MS) as failed:
        window.open_paths([str(chest)])
    assert failed.args[1] == NO_MODEL
    qtbot.waitUntil(lambda: window.results.status.text() == failed.args[1], timeout=WAIT_MS)
    assert not window.results.sections and not window.predictions


def test_a_raster_films_tags_name_each_field_once(qtbot, tmp_path, tiny_bundle, small_png):
    predictor = RecordingPredictor(tiny_bundle)
    window = make_window(qtbot, tmp_path, lambda bundle, device: predictor, [tiny_bundle])
    open_and_wait(qtbot, window, small_png)
    tree = window.metadata.tree
    fields = [tree.topLevelItem(i).text(0) for i in range(tree.topLevelItemCount())]
    assert fields.count("Format") == 1 and len(fields) == len(set(fields))
    assert window.metadata.values()["Format"] == "JPEG"  # the Kermany films are JPEGs
