"""Results sidebar: one row per finding (probability bar, threshold tick, wording), model facts, status.

State in (``show_busy``, ``show_prediction``, ``show_message``); it never computes anything itself.
"""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QLabel,
    QProgressBar,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

DISCLAIMER = "Second opinion — not a diagnosis. The reading radiologist decides."
POSITIVE_COLOUR = QColor("#e0793a")
NEGATIVE_COLOUR = QColor("#4f7fa8")


class ProbabilityBar(QWidget):
    """A horizontal bar for a score in [0, 1] with the operating threshold marked as a tick."""

    def __init__(self, score: float, threshold: float, positive: bool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.score, self.threshold, self.positive = float(score), float(threshold), bool(positive)
        self.setMinimumSize(90, 14)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setToolTip(f"score {self.score:.3f} · threshold {self.threshold:.3f}")

    def paintEvent(self, event) -> None:
        """Track, filled score, threshold tick."""
        painter = QPainter(self)
        rect = QRectF(self.rect()).adjusted(0, 3, -1, -3)
        painter.fillRect(rect, QColor("#2a2d31"))
        fill = QRectF(rect.left(), rect.top(), rect.width() * min(max(self.score, 0.0), 1.0), rect.height())
        painter.fillRect(fill, POSITIVE_COLOUR if self.positive else NEGATIVE_COLOUR)
        x = rect.left() + rect.width() * min(max(self.threshold, 0.0), 1.0)
        painter.setPen(QPen(QColor("#f2f2f2"), 2))
        painter.drawLine(int(x), int(rect.top()) - 3, int(x), int(rect.bottom()) + 3)


def finding_wording(positive: bool) -> str:
    """Plain wording of a finding's decision at the model card's operating point."""
    return "suggested" if positive else "not suggested"


def card_tooltip(card: Any) -> str:
    """Model card summary for the sidebar's tooltip: data, metrics, operating points, limits."""
    if card is None:
        return ""
    parts = [f"<b>{card.name}</b> v{card.version}: {card.summary()}"]
    if card.description:
        parts.append(card.description)
    if getattr(card, "limitations", ""):
        parts.append(f"<b>Limits:</b> {card.limitations}")
    if card.training_data:
        parts.append("<b>Data:</b> " + "; ".join(f"{k}: {v}" for k, v in card.training_data.items()))
    if card.metrics:
        parts.append("<b>Metrics:</b> " + "; ".join(f"{k}: {v}" for k, v in card.metrics.items()))
    parts.append(f"<b>Thresholds:</b> {card.threshold_method}")
    return "<br>".join(parts)


class ResultsPanel(QWidget):
    """The findings of the current image, or why there are none."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("resultsPanel")
        self.status = QLabel("Open an image to get a second opinion.")
        self.status.setObjectName("resultsStatus")
        self.status.setWordWrap(True)
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)
        self.busy.setTextVisible(False)
        self.busy.setMaximumHeight(6)
        self.busy.hide()
        self.table = QWidget()
        self.grid = QGridLayout(self.table)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.grid.setHorizontalSpacing(8)
        self.grid.setColumnStretch(1, 1)
        self.model_info = QLabel()
        self.model_info.setObjectName("modelInfo")
        self.model_info.setWordWrap(True)
        self.model_info.setTextFormat(Qt.TextFormat.RichText)
        self.disclaimer = QLabel(DISCLAIMER)
        self.disclaimer.setObjectName("disclaimer")
        self.disclaimer.setWordWrap(True)
        line = QFrame()
        line.setFrameShape(QFrame.Shape.HLine)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.status)
        layout.addWidget(self.busy)
        layout.addWidget(self.table)
        layout.addWidget(line)
        layout.addWidget(self.model_info)
        layout.addWidget(self.disclaimer)
        self.rows: dict[str, tuple[QLabel, ProbabilityBar, QLabel]] = {}

    def _clear_rows(self) -> None:
        while self.grid.count():
            widget = self.grid.takeAt(0).widget()
            if widget is not None:
                widget.deleteLater()
        self.rows.clear()

    def show_busy(self, text: str = "Analysing the image…") -> None:
        """Inference is running: busy indicator, no stale findings."""
        self._clear_rows()
        self.model_info.clear()
        self.status.setText(text)
        self.busy.show()

    def show_message(self, text: str) -> None:
        """No findings to show (no model installed, an error): say why, plainly."""
        self._clear_rows()
        self.model_info.clear()
        self.busy.hide()
        self.status.setText(text)

    def show_prediction(self, prediction: Any, card_tooltip: str = "", limitations: str = "") -> None:
        """One row per finding, highest score first, and the model's name, version, device and time."""
        self._clear_rows()
        self.busy.hide()
        classes = list(prediction.classes)
        order = sorted(classes, key=lambda c: -float(prediction.scores[c]))
        positives = set(prediction.positive)
        self.status.setText(
            f"{len(positives)} of {len(order)} findings above the model's threshold"
            if positives
            else f"No finding above the model's threshold ({len(order)} checked)"
        )
        for row, name in enumerate(order):
            score, threshold = float(prediction.scores[name]), float(prediction.thresholds[name])
            positive = name in positives
            label = QLabel(name)
            bar = ProbabilityBar(score, threshold, positive)
            verdict = QLabel(f"{score:.0%} · {finding_wording(positive)}")
            verdict.setObjectName("positive" if positive else "negative")
            verdict.setToolTip(f"threshold {threshold:.2f} (operating point from the model card)")
            for column, widget in enumerate((label, bar, verdict)):
                self.grid.addWidget(widget, row, column)
            self.rows[name] = (label, bar, verdict)
        total_ms = float(prediction.timings.get("total", 0.0))
        limits = (
            f"<br><span style='color:#e0a040'>Limits: {html.escape(limitations)}</span>"
            if limitations
            else ""
        )
        self.model_info.setText(
            f"<b>{prediction.model}</b> v{prediction.version} · {prediction.device} "
            f"({prediction.backend}) · {total_ms:.0f} ms"
            "<br><u>Model card</u> (hover for data, metrics, limits)"
            + limits
        )
        self.model_info.setToolTip(card_tooltip or "No model card details available.")
