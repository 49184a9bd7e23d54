"""Window/level panel: centre and width sliders with spin boxes, presets and a histogram with the window.

Like pyqtgraph's ImageView levels: state in (``set_image_state``, ``set_window``, ``drag``), one signal out
(``windowChanged``). Values are in modality units; the panel knows nothing of rendering or models.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from PySide6.QtCore import QRectF, QSignalBlocker, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from xrayviewer.imaging import windows
from xrayviewer.imaging.image import Window, XRayImage

SLIDER_STEPS = 2000
HISTOGRAM_BINS = 256
HISTOGRAM_SAMPLE_SIDE = 512
#: modality-unit change per screen pixel of right-drag, as a fraction of the image's value range
DRAG_SENSITIVITY = 1.0 / 600.0


@dataclass(frozen=True)
class WindowLevelState:
    """What the panel needs to know about an image: value range, histogram, default and preset windows."""

    low: float  # smallest modality value
    high: float  # largest modality value
    counts: np.ndarray  # histogram counts
    edges: np.ndarray  # histogram bin edges (len(counts) + 1), modality units
    default: Window  # the image's own window (header, or automatic)
    presets: tuple[Window, ...]  # header windows, chest presets, auto percentile, full range


def describe_levels(image: XRayImage) -> WindowLevelState:
    """Value range, histogram (of a strided sample) and preset windows of an image; no Qt, runs anywhere."""
    full = windows.full_range_window(image.pixels)
    low, high = full.center - full.width / 2.0, full.center + full.width / 2.0 - 1.0
    step = max(1, max(image.shape) // HISTOGRAM_SAMPLE_SIDE)
    sample = image.pixels[::step, ::step]
    counts, edges = np.histogram(
        sample[np.isfinite(sample)], bins=HISTOGRAM_BINS, range=(low, max(high, low + 1))
    )
    modality = image.metadata.get("Modality", "")
    presets = (
        *image.presets,
        *windows.chest_presets(image.pixels, invert=image.invert, modality=modality),
        windows.auto_window(image.pixels),
        full,
    )
    return WindowLevelState(low, high, counts, edges, image.window, presets)


class HistogramWidget(QWidget):
    """Log-scaled histogram of the image with the current window drawn as a band and a ramp."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("histogram")
        self.setMinimumHeight(110)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self._counts = np.zeros(0)
        self._edges = np.zeros(1)
        self._window: Window | None = None
        self._inverted = False

    def set_histogram(self, counts: np.ndarray, edges: np.ndarray) -> None:
        """Show these counts over these bin edges."""
        self._counts = np.log1p(np.asarray(counts, dtype=np.float64))
        self._edges = np.asarray(edges, dtype=np.float64)
        self.update()

    def set_window(self, window: Window | None, inverted: bool = False) -> None:
        """Draw this window over the histogram; ``inverted``: the display maps high values to black."""
        self._window, self._inverted = window, inverted
        self.update()

    def paintEvent(self, event) -> None:
        """Bars, then the window band and its linear ramp."""
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        rect = QRectF(self.rect()).adjusted(2, 4, -2, -2)
        painter.fillRect(self.rect(), QColor("#141414"))
        if self._counts.size == 0 or self._counts.max() <= 0:
            return
        lo, hi = float(self._edges[0]), float(self._edges[-1])
        span = max(hi - lo, 1e-9)

        def x_of(v: float) -> float:
            return rect.left() + (v - lo) / span * rect.width()

        path = QPainterPath()
        path.moveTo(rect.left(), rect.bottom())
        heights = self._counts / self._counts.max()
        for left, h in zip(self._edges[:-1], heights, strict=True):
            path.lineTo(x_of(left), rect.bottom() - h * rect.height())
        path.lineTo(rect.right(), rect.bottom())
        path.closeSubpath()
        painter.fillPath(path, QColor("#56606b"))
        if self._window is None:
            return
        left = x_of(self._window.center - self._window.width / 2)
        right = x_of(self._window.center + self._window.width / 2)
        painter.fillRect(QRectF(left, rect.top(), right - left, rect.height()), QColor(230, 170, 60, 45))
        painter.setPen(QPen(QColor("#e6aa3c"), 1.5))
        low_y, high_y = (rect.top(), rect.bottom()) if self._inverted else (rect.bottom(), rect.top())
        painter.drawLine(int(left), int(low_y), int(right), int(high_y))
        painter.drawLine(int(left), int(rect.top()), int(left), int(rect.bottom()))
        painter.drawLine(int(right), int(rect.top()), int(right), int(rect.bottom()))


class WindowLevelPanel(QWidget):
    """Centre/width controls, presets, histogram; emits ``windowChanged(Window)`` on every change."""

    windowChanged = Signal(object)  # Window

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("windowLevelPanel")
        self._state: WindowLevelState | None = None
        self._window: Window | None = None
        self._inverted = False

        self.presets = QComboBox()
        self.presets.setToolTip("Window presets: header windows from the file, chest presets, automatic")
        self.presets.activated.connect(self._preset_chosen)
        self.reset_button = QPushButton("Reset")
        self.reset_button.setToolTip("Back to the image's default window (R)")
        self.reset_button.clicked.connect(self.reset)
        self.center_slider, self.center_spin = QSlider(Qt.Orientation.Horizontal), QDoubleSpinBox()
        self.width_slider, self.width_spin = QSlider(Qt.Orientation.Horizontal), QDoubleSpinBox()
        for slider in (self.center_slider, self.width_slider):
            slider.setRange(0, SLIDER_STEPS)
            slider.valueChanged.connect(self._slider_moved)
        for spin in (self.center_spin, self.width_spin):
            spin.setKeyboardTracking(False)
            spin.setMinimumWidth(90)
            spin.valueChanged.connect(self._spin_changed)
        self.histogram = HistogramWidget()
        self.histogram.setToolTip("Image histogram (log scale) with the current window and its ramp")
        hint = QLabel("Right-drag on the image: ↔ width, ↕ centre")
        hint.setObjectName("hint")

        top = QHBoxLayout()
        top.addWidget(self.presets, 1)
        top.addWidget(self.reset_button)
        form = QFormLayout()
        form.addRow("Centre", self._row(self.center_slider, self.center_spin))
        form.addRow("Width", self._row(self.width_slider, self.width_spin))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(top)
        layout.addLayout(form)
        layout.addWidget(self.histogram)
        layout.addWidget(hint)
        layout.addStretch(1)
        self.setEnabled(False)

    @staticmethod
    def _row(slider: QSlider, spin: QDoubleSpinBox) -> QWidget:
        row = QWidget()
        box = QHBoxLayout(row)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(slider, 1)
        box.addWidget(spin)
        return row

    # -- state in --------------------------------------------------------------------------------
    def set_image_state(self, state: WindowLevelState) -> None:
        """Adopt a new image's value range, histogram and presets; show its default window (no signal)."""
        self._state = state
        span = max(state.high - state.low, 1.0)
        decimals = 0 if span >= 200 else 2
        with QSignalBlocker(self.center_spin), QSignalBlocker(self.width_spin):
            self.center_spin.setDecimals(decimals)
            self.width_spin.setDecimals(decimals)
            self.center_spin.setRange(state.low - span, state.high + span)
            self.width_spin.setRange(10.0**-decimals, 4 * span)
            step = 10 ** np.floor(np.log10(span / 100)) if span > 0 else 1
            self.center_spin.setSingleStep(step)
            self.width_spin.setSingleStep(step)
        with QSignalBlocker(self.presets):
            self.presets.clear()
            self.presets.addItem(f"Default — {self._label(state.default)}", state.default)
            for window in state.presets:
                self.presets.addItem(self._label(window), window)
        self.histogram.set_histogram(state.counts, state.edges)
        self.setEnabled(True)
        self._show(state.default)

    @staticmethod
    def _label(window: Window) -> str:
        name = window.name or window.source
        return f"{name} (C {window.center:g} / W {window.width:g})"

    def set_inverted(self, inverted: bool) -> None:
        """Whether the display is inverted (MONOCHROME1 or the user's Invert): flips the drawn ramp."""
        self._inverted = inverted
        self.histogram.set_window(self._window, inverted)

    def window(self) -> Window | None:
        """The current window, ``None`` before any image."""
        return self._window

    def set_window(self, window: Window) -> None:
        """Set the window (clamped to a positive width) and emit ``windowChanged``."""
        if self._state is None:
            return
        window = replace(window, width=max(window.width, self.width_spin.minimum()))
        self._show(window)
        self.windowChanged.emit(window)

    def drag(self, dx: float, dy: float) -> None:
        """Right-drag on the image: right widens, left narrows; down raises the centre, up lowers it."""
        if self._state is None or self._window is None:
            return
        step = (self._state.high - self._state.low) * DRAG_SENSITIVITY
        self.set_window(self._manual(self._window.center + dy * step, self._window.width + dx * step))

    def reset(self) -> None:
        """Back to the image's default window."""
        if self._state is not None:
            self.presets.setCurrentIndex(0)
            self.set_window(self._state.default)

    # -- internals -------------------------------------------------------------------------------
    def _manual(self, center: float, width: float) -> Window:
        base = self._window or Window(center, width)
        return replace(base, center=float(center), width=float(width), source="manual", name="Manual")

    def _show(self, window: Window) -> None:
        self._window = window
        assert self._state is not None
        lo, hi = self._state.low, self._state.high
        span = max(hi - lo, 1e-9)
        with (
            QSignalBlocker(self.center_slider),
            QSignalBlocker(self.width_slider),
            QSignalBlocker(self.center_spin),
            QSignalBlocker(self.width_spin),
        ):
            self.center_spin.setValue(window.center)
            self.width_spin.setValue(window.width)
            self.center_slider.setValue(round((window.center - lo) / span * SLIDER_STEPS))
            self.width_slider.setValue(round(window.width / (2 * span) * SLIDER_STEPS))
        self.histogram.set_window(window, self._inverted)

    def _slider_moved(self) -> None:
        if self._state is None:
            return
        lo, span = self._state.low, self._state.high - self._state.low
        center = lo + self.center_slider.value() / SLIDER_STEPS * span
        width = max(self.width_slider.value() / SLIDER_STEPS * 2 * span, self.width_spin.minimum())
        self.set_window(self._manual(center, width))

    def _spin_changed(self) -> None:
        self.set_window(self._manual(self.center_spin.value(), self.width_spin.value()))

    def _preset_chosen(self, index: int) -> None:
        window = self.presets.itemData(index)
        if isinstance(window, Window):
            self.set_window(window)
