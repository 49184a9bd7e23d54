"""Window/level panel: centre and width sliders with spin boxes, presets and a histogram with the window.

Like pyqtgraph's ImageView levels: state in (``set_image_state``, ``set_window``, ``drag``), one signal out
(``windowChanged``). Values are in modality units; the panel knows nothing of rendering or models.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace

import numpy as np
from PySide6.QtCore import QLineF, QRectF, QSignalBlocker, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPen, QValidator
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
FLOAT32_MAX = float(np.finfo(np.float32).max)
COMPACT_FROM = 1e7  # spin boxes write values from this size on as 1.234e+07
_NUMBER_BEGINNING = re.compile(r"[+-]?(\d+\.?\d*|\.\d*)?([eE][+-]?\d*)?")


@dataclass(frozen=True)
class WindowLevelState:
    """What the panel needs to know about an image: value range, histogram, default and preset windows."""

    low: float  # smallest modality value
    high: float  # largest modality value
    counts: np.ndarray  # histogram counts
    edges: np.ndarray  # histogram bin edges (len(counts) + 1), modality units
    default: Window  # the image's own window (header, or automatic); full range when that is unusable
    presets: tuple[Window, ...]  # header windows, chest presets, auto percentile, full range

    @property
    def span(self) -> float:
        """The value range the sliders and right-drag cover: ``high - low``, or for a uniform image (all one
        value, 1 × 1...) one unit, or a millionth of the value when that is larger (±1e38: ulps are 1e31)."""
        span = self.high - self.low
        return span if span > 0 else max(1.0, 1e-6 * max(abs(self.low), abs(self.high)))


def usable(window: Window) -> bool:
    """A window that can be drawn and shown in the panel: finite centre, finite positive width."""
    return math.isfinite(window.center) and math.isfinite(window.width) and window.width > 0


def value_range(pixels: np.ndarray) -> tuple[float, float]:
    """(min, max) of the finite values as floats within float32's range; (0, 1) when none is finite."""
    low, high = float(np.min(pixels)), float(np.max(pixels))
    if not (math.isfinite(low) and math.isfinite(high)):  # NaN or infinity in an image built by hand
        finite = pixels[np.isfinite(pixels)]
        if finite.size == 0:
            return 0.0, 1.0
        low, high = float(finite.min()), float(finite.max())
    return max(low, -FLOAT32_MAX), min(high, FLOAT32_MAX)


def describe_levels(image: XRayImage) -> WindowLevelState:
    """Value range, histogram (of a strided sample) and preset windows of an image; no Qt, runs anywhere.
    Never raises for odd values: uniform images, ±1e38, NaN or infinity, a non-finite or zero-width window
    (the default is then the full range, and presets that are not :func:`usable` are left out)."""
    low, high = value_range(image.pixels)
    step = max(1, max(image.shape) // HISTOGRAM_SAMPLE_SIDE)
    sample = image.pixels[::step, ::step].astype(np.float64)
    sample = sample[np.isfinite(sample)]
    # a uniform image gets one bar in the middle; a relative pad, since 1e38 + 1 == 1e38
    pad = 0.0 if high > low else max(0.5, 1e-6 * abs(low))
    counts, edges = np.histogram(np.clip(sample, low, high), bins=HISTOGRAM_BINS,
                                 range=(low - pad, high + pad))
    full = windows.range_window(low, high, "full range", "Full range")
    modality = image.metadata.get("Modality", "")
    with np.errstate(all="ignore"):  # percentiles of ±3e38 overflow float32: such presets are dropped below
        computed = (
            *windows.chest_presets(image.pixels, invert=image.invert, modality=modality),
            windows.auto_window(image.pixels),
        )
    presets = tuple(w for w in (*image.presets, *computed, full) if usable(w))
    default = image.window if usable(image.window) else full
    return WindowLevelState(low, high, counts, edges, default, presets)


class ValueSpinBox(QDoubleSpinBox):
    """A spin box for modality values that writes values of 10 million and more in exponent form
    ("6.806e+38"), so a film of ±3e38 values keeps a narrow box, and reads that form back."""

    def textFromValue(self, value: float) -> str:
        """The text shown for ``value``."""
        return f"{value:.4g}" if abs(value) >= COMPACT_FROM else super().textFromValue(value)

    def valueFromText(self, text: str) -> float:
        """The value of a typed text, exponent form included."""
        try:
            return float(text.replace(self.locale().groupSeparator(), ""))
        except ValueError:
            return super().valueFromText(text)

    def validate(self, text: str, pos: int) -> object:
        """Accept a number in exponent form too, and its beginnings while it is typed (Qt's own check
        refuses "1e+38")."""
        try:
            float(text)
        except ValueError:
            if _NUMBER_BEGINNING.fullmatch(text.strip()):
                return QValidator.State.Intermediate, text, pos
            return super().validate(text, pos)
        return QValidator.State.Acceptable, text, pos


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
        """Show these counts over these bin edges (nothing is drawn unless the edges are finite and rise)."""
        counts = np.asarray(counts, dtype=np.float64)
        edges = np.asarray(edges, dtype=np.float64)
        if (edges.size != counts.size + 1 or not np.isfinite(edges).all() or not edges[-1] > edges[0]
                or not np.isfinite(counts).all()):
            counts, edges = np.zeros(0), np.zeros(1)
        self._counts = np.log1p(np.maximum(counts, 0.0))
        self._edges = edges
        self.update()

    def set_window(self, window: Window | None, inverted: bool = False) -> None:
        """Draw this window over the histogram; ``inverted``: the display maps high values to black."""
        self._window, self._inverted = window, inverted
        self.update()

    def paintEvent(self, event) -> None:
        """Bars, then the window band and its linear ramp (clipped to the widget: a window may reach far
        beyond the image's values)."""
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        rect = QRectF(self.rect()).adjusted(2, 4, -2, -2)
        painter.fillRect(self.rect(), QColor("#141414"))
        if self._counts.size == 0 or self._counts.max() <= 0:
            return
        lo, hi = float(self._edges[0]), float(self._edges[-1])
        span = hi - lo

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
        window = self._window
        if window is None or not usable(window):
            return
        with np.errstate(all="ignore"):
            left = x_of(window.center - window.width / 2)
            right = x_of(window.center + window.width / 2)
        if not (math.isfinite(left) and math.isfinite(right)):
            return
        visible_left, visible_right = max(left, rect.left() - 1), min(right, rect.right() + 1)
        if visible_right > visible_left:
            painter.fillRect(QRectF(visible_left, rect.top(), visible_right - visible_left, rect.height()),
                             QColor(230, 170, 60, 45))
        painter.setPen(QPen(QColor("#e6aa3c"), 1.5))
        low_y, high_y = (rect.top(), rect.bottom()) if self._inverted else (rect.bottom(), rect.top())
        if right > left and visible_right > visible_left:  # the visible part of the ramp, same slope

            def y_of(x: float) -> float:
                return low_y + (x - left) / (right - left) * (high_y - low_y)

            painter.drawLine(QLineF(visible_left, y_of(visible_left), visible_right, y_of(visible_right)))
        for edge in (left, right):
            if rect.left() - 1 <= edge <= rect.right() + 1:
                painter.drawLine(QLineF(edge, rect.top(), edge, rect.bottom()))


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
        self.center_slider, self.center_spin = QSlider(Qt.Orientation.Horizontal), ValueSpinBox()
        self.width_slider, self.width_spin = QSlider(Qt.Orientation.Horizontal), ValueSpinBox()
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
        """Adopt a new image's value range, histogram and presets; show its default window (no signal).

        The spin boxes cover the image's values with a span to spare on each side and every preset
        (CT presets on a radiograph included), so no preset is clipped; the sliders cover the values."""
        self._state = state
        span = max(state.span, 1.0)
        decimals = 0 if span >= 200 else 2
        windows_known = (state.default, *state.presets)
        low = min(state.low - span, *(w.center for w in windows_known))
        high = max(state.high + span, *(w.center for w in windows_known))
        widest = max(4 * span, *(w.width for w in windows_known))
        with QSignalBlocker(self.center_spin), QSignalBlocker(self.width_spin):
            self.center_spin.setDecimals(decimals)
            self.width_spin.setDecimals(decimals)
            self.center_spin.setRange(low, high)
            self.width_spin.setRange(10.0**-decimals, widest)
            step = float(10 ** np.floor(np.log10(span / 100)))
            self.center_spin.setSingleStep(step)
            self.width_spin.setSingleStep(step)
        with QSignalBlocker(self.presets):
            self.presets.clear()
            self.presets.addItem(f"Default — {self._label(state.default)}", state.default)
            for window in state.presets:
                self.presets.addItem(self._label(window), window)
        self.histogram.set_histogram(state.counts, state.edges)
        self.setEnabled(True)
        self._show(self._sane(state.default))

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
        """Set the window and emit ``windowChanged``; a width below the smallest the panel shows is raised
        to it, values beyond the spin boxes' ranges are clamped, a NaN or infinite value keeps the current
        one: what is emitted is always a window the panel shows as it is."""
        if self._state is None:
            return
        window = self._sane(window)
        self._show(window)
        self.windowChanged.emit(window)

    def drag(self, dx: float, dy: float) -> None:
        """Right-drag on the image: right widens, left narrows; down raises the centre, up lowers it."""
        if self._state is None or self._window is None:
            return
        step = self._state.span * DRAG_SENSITIVITY
        self.set_window(self._manual(self._window.center + dy * step, self._window.width + dx * step))

    def reset(self) -> None:
        """Back to the image's default window."""
        if self._state is not None:
            self.presets.setCurrentIndex(0)
            self.set_window(self._state.default)

    # -- internals -------------------------------------------------------------------------------
    def _sane(self, window: Window) -> Window:
        """``window`` with finite values within the spin boxes' ranges (see :meth:`set_window`); unchanged
        (the same object) when it already is."""
        assert self._state is not None
        fallback = self._window if self._window is not None and usable(self._window) else None
        if fallback is None:  # the default is usable (describe_levels sees to it) unless built by hand
            state = self._state
            middle = Window((state.low + state.high) / 2, state.span)
            fallback = state.default if usable(state.default) else middle
        center = window.center if math.isfinite(window.center) else fallback.center
        width = window.width if math.isfinite(window.width) else fallback.width
        center = min(max(center, self.center_spin.minimum()), self.center_spin.maximum())
        width = min(max(width, self.width_spin.minimum()), self.width_spin.maximum())
        if center == window.center and width == window.width:
            return window
        return replace(window, center=float(center), width=float(width))

    def _manual(self, center: float, width: float) -> Window:
        base = self._window or Window(center, width)
        return replace(base, center=float(center), width=float(width), source="manual", name="Manual")

    @staticmethod
    def _slider_position(fraction: float) -> int:
        """A slider value for a fraction of its range, clamped (a window may reach beyond the values)."""
        if not math.isfinite(fraction):
            return 0
        return round(min(max(fraction, 0.0), 1.0) * SLIDER_STEPS)

    def _show(self, window: Window) -> None:
        self._window = window
        assert self._state is not None
        lo, span = self._state.low, self._state.span
        with (
            QSignalBlocker(self.center_slider),
            QSignalBlocker(self.width_slider),
            QSignalBlocker(self.center_spin),
            QSignalBlocker(self.width_spin),
        ):
            self.center_spin.setValue(window.center)
            self.width_spin.setValue(window.width)
            with np.errstate(all="ignore"):
                self.center_slider.setValue(self._slider_position((window.center - lo) / span))
                self.width_slider.setValue(self._slider_position(window.width / (2 * span)))
        self.histogram.set_window(window, self._inverted)

    def _slider_moved(self) -> None:
        if self._state is None:
            return
        lo, span = self._state.low, self._state.span
        center = lo + self.center_slider.value() / SLIDER_STEPS * span
        width = max(self.width_slider.value() / SLIDER_STEPS * 2 * span, self.width_spin.minimum())
        self.set_window(self._manual(center, width))

    def _spin_changed(self) -> None:
        self.set_window(self._manual(self.center_spin.value(), self.width_spin.value()))

    def _preset_chosen(self, index: int) -> None:
        window = self.presets.itemData(index)
        if isinstance(window, Window):
            self.set_window(window)
