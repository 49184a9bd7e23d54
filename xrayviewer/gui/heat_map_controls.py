"""Heat-map controls: show/hide, opacity, which finding the heat map explains, and the colour legend.

State in (``set_findings``, ``set_legend``), signals out (``visibilityChanged``, ``opacityChanged``,
``findingChosen``). Findings are (model bundle, finding) pairs: several models may run on one image. Which
one is selected, and whether the map is faint, is decided elsewhere (``gui.session``, ``engine.cam``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QSignalBlocker, Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from xrayviewer.gui.image_view import rgba_qimage

if TYPE_CHECKING:
    from xrayviewer.engine.predictor import Prediction


def finding_label(model: str, finding: str) -> str:
    """How a model's finding is named in the combo: "model: finding", or just the finding when the model is
    named after it (a binary model)."""
    return finding if model.casefold() == finding.casefold() else f"{model}: {finding}"


def faint_note(prediction: Prediction | None, finding: str) -> str:
    """Why the heat map of ``prediction``'s ``finding`` is drawn faint (``engine.cam.drawn_faint``); ""
    when it is drawn at full strength."""
    from xrayviewer.engine.cam import drawn_faint  # engine.cam loads matplotlib: already loaded by the worker

    if not drawn_faint(prediction, finding):
        return ""
    assert prediction is not None
    score, threshold = float(prediction.scores[finding]), float(prediction.thresholds.get(finding, 0.0))
    return (
        f"{finding_label(prediction.model, finding)} scores {score:.0%}, below its threshold "
        f"{threshold:.0%}: the heat map is drawn faint."
    )


class HeatMapControls(QWidget):
    """Heat-map toggle, opacity slider, finding selector and legend."""

    visibilityChanged = Signal(bool)
    opacityChanged = Signal(float)  # [0, 1]
    findingChosen = Signal(str, str)  # model bundle, finding

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("heatMapControls")
        self.toggle = QPushButton("Show heat map")
        self.toggle.setCheckable(True)
        self.toggle.setToolTip("Heat map (Grad-CAM): where the model looked for the chosen finding (C)")
        self.toggle.toggled.connect(self._toggled)
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(45)
        self.opacity.valueChanged.connect(lambda v: self.opacityChanged.emit(v / 100.0))
        self.finding = QComboBox()
        self.finding.setToolTip(
            "Finding explained by the heat map (defaults to the highest-scoring suggested finding)"
        )
        self.finding.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.finding.setMinimumContentsLength(12)  # long names do not widen the dock
        self.finding.activated.connect(lambda i: self.findingChosen.emit(*self.finding.itemData(i)))
        self.note = QLabel()
        self.note.setObjectName("heatMapNote")
        self.note.setWordWrap(True)
        self.note.hide()
        self.legend = QLabel()
        self.legend.setObjectName("heatMapLegend")
        self.legend.setMinimumHeight(12)
        self.legend.setScaledContents(True)
        legend_row = QHBoxLayout()
        legend_row.addWidget(QLabel("low"))
        legend_row.addWidget(self.legend, 1)
        legend_row.addWidget(QLabel("high"))
        form = QFormLayout()
        form.addRow("Finding", self.finding)
        form.addRow("Opacity", self.opacity)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.toggle)
        layout.addLayout(form)
        layout.addLayout(legend_row)
        layout.addWidget(self.note)
        self.set_findings([])

    def _toggled(self, on: bool) -> None:
        self.toggle.setText("Hide heat map" if on else "Show heat map")
        self.visibilityChanged.emit(on)

    def opacity_value(self) -> float:
        """Current opacity in [0, 1]."""
        return self.opacity.value() / 100.0

    def set_opacity(self, opacity: float) -> None:
        """Set the opacity slider (emits ``opacityChanged``)."""
        self.opacity.setValue(round(min(max(opacity, 0.0), 1.0) * 100))

    def set_findings(
        self, findings: Sequence[tuple[str, str]], current: tuple[str, str] | None = None
    ) -> None:
        """Offer these (model, finding) pairs, keeping ``current`` (else the current choice) selected;
        enable the controls only when there is something to explain."""
        keep = current or self.current()
        with QSignalBlocker(self.finding):
            self.finding.clear()
            for model, finding in findings:
                self.finding.addItem(finding_label(model, finding), (model, finding))
            if keep in findings:
                self.finding.setCurrentIndex(list(findings).index(keep))
        self.setEnabled(bool(findings))

    def set_note(self, text: str) -> None:
        """A line under the legend about the map shown (e.g. why it is faint); "" hides it."""
        self.note.setText(text)
        self.note.setVisible(bool(text))

    def current(self) -> tuple[str, str] | None:
        """The (model, finding) selected, if any."""
        data = self.finding.currentData()
        return tuple(data) if data else None

    def index_of(self, model: str, finding: str) -> int:
        """Combo index of (model, finding); -1 when not offered (QComboBox.findData cannot match tuples)."""
        items = [tuple(self.finding.itemData(i)) for i in range(self.finding.count())]
        return items.index((model, finding)) if (model, finding) in items else -1

    def select(self, model: str, finding: str) -> None:
        """Select (model, finding) without emitting ``findingChosen`` (e.g. the heat map now shown)."""
        index = self.index_of(model, finding)
        if index >= 0:
            with QSignalBlocker(self.finding):
                self.finding.setCurrentIndex(index)

    def set_legend(self, ramp_rgba: np.ndarray) -> None:
        """Show the colormap as a horizontal ramp (RGBA uint8 of shape (1, N, 4), low to high)."""
        ramp = np.array(ramp_rgba, dtype=np.uint8)
        ramp[..., 3] = 255
        self.legend.setPixmap(QPixmap.fromImage(rgba_qimage(np.repeat(ramp, 8, axis=0))))
