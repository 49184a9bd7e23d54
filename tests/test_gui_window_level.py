"""Window/level: right-drag, typed values and presets change the window and the pixels per the formula."""

from __future__ import annotations

import numpy as np
import pytest
from gui_helpers import CHEST_DICOM, WAIT_MS, make_window, picture_pixels
from PySide6.QtCore import QPoint, Qt

from xrayviewer.gui.window_level import DRAG_SENSITIVITY, describe_levels
from xrayviewer.gui.workers import ModelUnavailableError
from xrayviewer.imaging import open_image, windows


def no_model(bundle, device):
    raise ModelUnavailableError("No model installed")


@pytest.fixture
def window(qtbot, tmp_path, shared_data):
    window = make_window(qtbot, tmp_path, no_model, [])  # no model bundle: these tests are about W/L
    with qtbot.waitSignal(window.imageShown, timeout=WAIT_MS):
        window.open_paths([str(shared_data / "dicom" / CHEST_DICOM)])
    return window


def linear_window(x, center, width):
    """PS3.3 C.11.2.1.2 LINEAR to 0..255, written out independently of imaging.lut."""
    y = ((x - (center - 0.5)) / (width - 1) + 0.5) * 255
    return np.clip(np.rint(y), 0, 255).astype(np.uint8)


def test_right_drag_changes_window_and_pixels(qtbot, window):
    levels = describe_levels(window.loaded.image)
    start = window.levels_panel.window()
    view = window.view.viewport()
    qtbot.mousePress(view, Qt.MouseButton.RightButton, pos=QPoint(300, 300))
    qtbot.mouseMove(view, QPoint(340, 280))
    qtbot.mouseRelease(view, Qt.MouseButton.RightButton, pos=QPoint(340, 280))
    step = (levels.high - levels.low) * DRAG_SENSITIVITY
    now = window.levels_panel.window()
    assert now.width == pytest.approx(start.width + 40 * step)
    assert now.center == pytest.approx(start.center - 20 * step)
    assert window.levels_panel.width_spin.value() == pytest.approx(now.width, abs=1)
    qtbot.waitUntil(lambda: not window._render_timer.isActive())
    pixels = window.loaded.image.pixels
    assert np.array_equal(picture_pixels(window), linear_window(pixels, now.center, now.width))


def test_typed_values_invert_and_reset(qtbot, window):
    window.levels_panel.center_spin.setValue(100)
    window.levels_panel.width_spin.setValue(50)
    qtbot.waitUntil(lambda: not window._render_timer.isActive())
    pixels = window.loaded.image.pixels
    assert np.array_equal(picture_pixels(window), linear_window(pixels, 100, 50))
    qtbot.keyClick(window, Qt.Key.Key_I)
    qtbot.waitUntil(lambda: not window._render_timer.isActive())
    assert np.array_equal(picture_pixels(window), 255 - linear_window(pixels, 100, 50))
    qtbot.keyClick(window, Qt.Key.Key_W)
    qtbot.waitUntil(lambda: not window._render_timer.isActive())
    assert window.levels_panel.window() == window.loaded.image.window
    assert window.session.window_override is None


def test_presets_offer_header_chest_auto_and_full_range(qtbot, window, shared_data):
    image = open_image(shared_data / "dicom" / CHEST_DICOM)
    names = [window.levels_panel.presets.itemText(i) for i in range(window.levels_panel.presets.count())]
    assert names[0].startswith("Default")
    for expected in ("Lung", "Mediastinum", "Bone", "Auto", "Full range"):
        assert any(n.startswith(expected) for n in names), expected
    lung_index = next(i for i, n in enumerate(names) if n.startswith("Lung"))
    with qtbot.waitSignal(window.levels_panel.windowChanged) as changed:
        window.levels_panel.presets.activated.emit(lung_index)
    lung = windows.chest_presets(image.pixels, image.invert, "CR")[0]
    assert changed.args[0] == lung
    assert window.session.window_override == lung


def test_status_bar_shows_modality_value_under_cursor(qtbot, window):
    pos = window.view.viewport_pos_of(500, 400)
    qtbot.mouseMove(window.view.viewport(), pos)
    row, col = window.view.pixel_at(pos)
    value = float(window.loaded.image.pixels[row, col])
    assert f"x {col:>4}  y {row:>4}   value {value:g}" in window.pixel_label.text()


def test_histogram_counts_the_image_values(window):
    levels = describe_levels(window.loaded.image)
    assert levels.counts.sum() > 0
    assert levels.edges[0] == pytest.approx(window.loaded.image.pixels.min())
    assert levels.edges[-1] == pytest.approx(window.loaded.image.pixels.max())
