"""Window/level: right-drag, typed values and presets change the window and the pixels per the formula;
odd values (uniform images, ±1e38, NaN, windows that cannot be drawn) never raise."""

from __future__ import annotations

import math

import numpy as np
import pytest
from gui_helpers import CHEST_DICOM, WAIT_MS, make_window, picture_pixels
from PySide6.QtCore import QPoint, Qt

from xrayviewer.gui.window_level import (
    DRAG_SENSITIVITY,
    HistogramWidget,
    WindowLevelPanel,
    describe_levels,
    usable,
)
from xrayviewer.gui.workers import ModelUnavailableError
from xrayviewer.imaging import lut, open_image, windows
from xrayviewer.imaging.image import Window, XRayImage


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


# -- odd values: uniform images, ±1e38, NaN and infinity, windows that cannot be drawn -------------------

F32_MAX = float(np.finfo(np.float32).max)
ODD_PIXELS = {
    "all black": np.zeros((64, 64), np.float32),
    "1 x 1": np.full((1, 1), 7.0, np.float32),
    "5000 x 1 constant": np.full((5000, 1), 3.0, np.float32),
    "1 x 5000 constant": np.full((1, 5000), -1024.0, np.float32),
    "uniform 1e38": np.full((4, 4), 1e38, np.float32),
    "uniform -1e38": np.full((4, 4), -1e38, np.float32),
    "-1e38 and 1e38": np.array([[-1e38, 1e38]], np.float32),
    "float32 extremes": np.array([[-F32_MAX, F32_MAX], [0.0, 1.0]], np.float32),
    "NaN and infinity among values": np.array([[np.nan, 1.0], [np.inf, -np.inf]], np.float32),
    "nothing finite": np.full((3, 3), np.nan, np.float32),
}
ODD_WINDOWS = [
    Window(float("nan"), 400.0),
    Window(40.0, float("nan")),
    Window(float("inf"), float("inf")),
    Window(float("-inf"), 1.0),
    Window(10.0, 0.0),
    Window(10.0, -5.0),
    Window(1e300, 1e300),
    Window(-1e300, 1e-300),
]


def assert_panel_sane(panel: WindowLevelPanel) -> None:
    """The window shown is finite with a positive width, the spin boxes show it, the sliders are in range."""
    window = panel.window()
    assert window is not None and usable(window), window
    assert panel.center_spin.minimum() <= window.center <= panel.center_spin.maximum()
    assert panel.width_spin.minimum() <= window.width <= panel.width_spin.maximum()
    assert math.isfinite(panel.center_spin.value()) and math.isfinite(panel.width_spin.value())
    for slider in (panel.center_slider, panel.width_slider):
        assert slider.minimum() <= slider.value() <= slider.maximum()
    panel.histogram.grab()  # paints: an exception there fails the test (pytest-qt)


@pytest.mark.parametrize("name", ODD_PIXELS)
def test_describe_levels_of_odd_values_is_finite(name):
    pixels = ODD_PIXELS[name]
    state = describe_levels(XRayImage(pixels, "MONOCHROME2", Window(float("nan"), 0.0)))
    assert math.isfinite(state.low) and math.isfinite(state.high) and state.low <= state.high
    assert state.span > 0 and math.isfinite(state.span)
    assert np.isfinite(state.edges).all() and np.all(np.diff(state.edges) > 0)
    assert (state.counts.sum() > 0) == bool(np.isfinite(pixels).any())
    assert usable(state.default) and state.default.source == "full range"
    assert state.presets and all(usable(w) for w in state.presets)


@pytest.mark.parametrize("name", ODD_PIXELS)
def test_panel_takes_odd_images_and_windows_without_raising(qtbot, name):
    panel = WindowLevelPanel()
    qtbot.addWidget(panel)
    panel.show()
    image = XRayImage(ODD_PIXELS[name], "MONOCHROME2", Window(0.0, 1.0))
    panel.set_image_state(describe_levels(image))
    assert_panel_sane(panel)
    emitted = []
    panel.windowChanged.connect(emitted.append)
    for window in ODD_WINDOWS:
        panel.set_window(window)
        assert_panel_sane(panel)
        assert emitted[-1] == panel.window()  # what is emitted is what the panel shows
    panel.drag(250.0, -400.0)
    assert_panel_sane(panel)
    for slider in (panel.center_slider, panel.width_slider):
        slider.setValue(slider.maximum())
        assert_panel_sane(panel)
        slider.setValue(slider.minimum())
        assert_panel_sane(panel)
    for spin in (panel.center_spin, panel.width_spin):
        spin.setValue(spin.maximum())
        spin.setValue(spin.minimum())
        assert_panel_sane(panel)
    for index in range(panel.presets.count()):
        panel.presets.activated.emit(index)
        assert_panel_sane(panel)
    panel.reset()
    assert_panel_sane(panel)
    assert all(usable(w) for w in emitted)


def test_histogram_draws_windows_far_beyond_the_values(qtbot):
    histogram = HistogramWidget()
    qtbot.addWidget(histogram)
    histogram.resize(300, 120)
    histogram.set_histogram(np.array([1, 5, 2]), np.array([0.0, 1.0, 2.0, 3.0]))
    for window in [*ODD_WINDOWS, Window(1.5, 1e-12), Window(1e30, 1e30)]:
        histogram.set_window(window, inverted=True)
        histogram.grab()
    histogram.set_histogram(np.array([1.0]), np.array([np.nan, np.inf]))  # nothing to draw, no error
    histogram.grab()


def test_a_normal_image_keeps_its_spin_ranges_and_header_window(window):
    """The ranges only widen for windows beyond them: a chest film's are as before."""
    levels = describe_levels(window.loaded.image)
    panel = window.levels_panel
    span = levels.high - levels.low
    assert panel.center_spin.minimum() == pytest.approx(levels.low - span)
    assert panel.center_spin.maximum() == pytest.approx(levels.high + span)
    assert panel.width_spin.maximum() == pytest.approx(4 * span)
    assert panel.window() == window.loaded.image.window == levels.default


ODD_FILES = {  # name: pixels written by OpenCV; all of them open (open_image repairs nothing here)
    "black.png": np.zeros((64, 64), np.uint8),
    "one-pixel.png": np.full((1, 1), 7, np.uint8),
    "strip-5000x1.png": np.full((5000, 1), 3, np.uint8),
    "huge-values.tif": np.where(np.arange(64).reshape(8, 8) % 2 == 0, 1e38, -1e38).astype(np.float32),
    "float32-extremes.tif": np.array([[-F32_MAX, F32_MAX]] * 4, np.float32),
    "uniform-1e38.tif": np.full((8, 8), 1e38, np.float32),
}


def settle(qtbot, window, action) -> None:
    with qtbot.waitSignal(window.filmSettled, timeout=WAIT_MS):
        action()


@pytest.mark.parametrize("name", ODD_FILES)
def test_the_viewer_shows_odd_files_with_sane_levels(qtbot, window, tmp_path, name):
    import cv2

    path = tmp_path / name
    assert cv2.imwrite(str(path), ODD_FILES[name])
    settle(qtbot, window, lambda: window.open_paths([str(path)]))
    assert window.loaded.path == path
    assert window.windowTitle() == f"{name} — XRayViewer"
    assert window.metadata.values()["File"] == name
    assert window.levels_panel.isEnabled()
    assert_panel_sane(window.levels_panel)
    window.levels_panel.drag(30.0, 30.0)
    qtbot.waitUntil(lambda: not window._render_timer.isActive())
    assert picture_pixels(window).shape == window.loaded.image.shape
    window.levels_panel.set_window(Window(float("nan"), float("inf")))
    assert_panel_sane(window.levels_panel)


@pytest.mark.parametrize(("name", "pixels", "reason"), [
    ("all-nan.tif", np.full((8, 8), np.nan, np.float32), "holds no finite values"),
    ("all-inf.tif", np.full((8, 8), np.inf, np.float32), "holds no finite values"),
    ("empty.png", None, "file is empty (0 bytes)"),
])
def test_a_refused_odd_file_shows_its_reason_and_keeps_the_film(qtbot, window, tmp_path, name, pixels,
                                                                reason):
    import cv2

    path = tmp_path / name
    if pixels is None:
        path.write_bytes(b"")
    else:
        assert cv2.imwrite(str(path), pixels)
    qtbot.waitUntil(window.settled, timeout=WAIT_MS)  # the film's findings (here: none) are in
    before = window.loaded
    title, tags, shown = window.windowTitle(), window.metadata.values(), picture_pixels(window)
    with qtbot.waitSignal(window.errorShown, timeout=WAIT_MS) as error:
        window.open_paths([str(path)])
    assert error.args[0].startswith(f"{name}: ") and reason in error.args[0]
    assert "\n" not in error.args[0] and "Traceback" not in error.args[0]
    assert window.error_banner.text() == error.args[0]
    assert window.loaded is before
    assert (window.windowTitle(), window.metadata.values()) == (title, tags)
    assert np.array_equal(picture_pixels(window), shown)
    assert window.settled()


def test_an_image_whose_window_cannot_be_drawn_gets_its_full_range(qtbot):
    from xrayviewer.gui.workers import UNUSABLE_WINDOW, prepare

    image = XRayImage(np.arange(12, dtype=np.float32).reshape(3, 4), "MONOCHROME2", Window(float("nan"), 0.0))
    loaded = prepare("hand-built.png", image)
    full = windows.range_window(0.0, 11.0, "full range", "Full range")
    assert image.window == loaded.levels.default == full
    assert UNUSABLE_WINDOW in image.warnings
    assert np.isfinite(lut.render(image)).all()


def test_spin_boxes_write_and_read_huge_values_compactly(qtbot):
    panel = WindowLevelPanel()
    qtbot.addWidget(panel)
    panel.show()
    unusable = Window(float("nan"), 0.0)  # so the default is the full range, 6.8e38 wide
    panel.set_image_state(describe_levels(XRayImage(ODD_PIXELS["float32 extremes"], "MONOCHROME2", unusable)))
    assert panel.width_spin.text() == "6.806e+38"
    assert panel.width_spin.sizeHint().width() < 160  # the slider keeps its room
    with qtbot.waitSignal(panel.windowChanged) as changed:
        panel.width_spin.lineEdit().selectAll()
        qtbot.keyClicks(panel.width_spin.lineEdit(), "2.5e+30")
        qtbot.keyClick(panel.width_spin.lineEdit(), Qt.Key.Key_Return)
    assert changed.args[0].width == pytest.approx(2.5e30)
    assert_panel_sane(panel)
