"""Live training curves drawn with QPainter: train and validation loss per epoch (with the running loss of
the epoch in progress) and the validation ROC-AUC. Cheap to repaint (no figure to re-render), sharp at
any device pixel ratio."""

from __future__ import annotations

import math

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

TRAIN = QColor("#6fa8dc")
VAL = QColor("#e69138")
AUC = QColor("#93c47d")
GRID = QColor("#3a3e44")
TEXT = QColor("#b9bdc3")


class CurvesWidget(QWidget):
    """Two small plots: loss (train, validation) and validation AUC, against the epoch."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.epochs = 1
        self.train_loss: dict[int, float] = {}
        self.val_loss: dict[int, float] = {}
        self.val_auc: dict[int, float] = {}
        self.running: tuple[float, float] | None = None  # (fractional epoch, running train loss)
        self.setMinimumSize(360, 180)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAccessibleName("Training curves: loss and validation AUC per epoch")

    def sizeHint(self) -> QSize:
        """Room for two readable plots."""
        return QSize(560, 240)

    def reset(self, epochs: int) -> None:
        """Start over for a run of ``epochs`` epochs."""
        self.epochs = max(1, epochs)
        self.train_loss, self.val_loss, self.val_auc = {}, {}, {}
        self.running = None
        self.update()

    def add_epoch(self, epoch: int, train_loss: float, val_loss: float, val_auc: float | None) -> None:
        """One finished epoch."""
        self.train_loss[epoch], self.val_loss[epoch] = train_loss, val_loss
        if val_auc is not None and math.isfinite(val_auc):
            self.val_auc[epoch] = val_auc
        self.running = None
        self.update()

    def set_running(self, epoch_fraction: float, loss: float) -> None:
        """The running training loss of the epoch in progress (at ``epoch_fraction``, e.g. 3.4)."""
        self.running = (epoch_fraction, loss)
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        """Draw both plots."""
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        width, height = self.width(), self.height()
        gap = 16
        half = (width - gap) / 2
        losses = [*self.train_loss.values(), *self.val_loss.values()]
        if self.running is not None:
            losses.append(self.running[1])
        finite = [v for v in losses if math.isfinite(v)]
        top = max(finite) * 1.1 if finite else 1.0
        series = [("train", TRAIN, self.train_loss), ("validation", VAL, self.val_loss)]
        self._plot(painter, QRectF(0, 0, half, height), "Loss", 0.0, max(top, 1e-6), series, self.running)
        low = min([0.5, *self.val_auc.values()]) if self.val_auc else 0.5
        self._plot(
            painter,
            QRectF(half + gap, 0, half, height),
            "Validation AUC",
            math.floor(low * 10) / 10,
            1.0,
            [("AUC", AUC, self.val_auc)],
            None,
        )
        painter.end()

    def _plot(
        self, painter: QPainter, area: QRectF, title: str, y0: float, y1: float, series, running
    ) -> None:
        metrics = painter.fontMetrics()
        line = metrics.height()
        plot = area.adjusted(metrics.horizontalAdvance("0.000") + 8, 2 * line + 8, -10, -2 * line - 6)
        painter.setPen(TEXT)
        painter.drawText(
            QRectF(area.left(), area.top(), area.width(), line + 2), Qt.AlignmentFlag.AlignHCenter, title
        )
        painter.setPen(QPen(GRID, 1))
        for i in range(5):
            y = plot.bottom() - i * plot.height() / 4
            painter.drawLine(QPointF(plot.left(), y), QPointF(plot.right(), y))
            value = y0 + i * (y1 - y0) / 4
            painter.setPen(TEXT)
            painter.drawText(
                QRectF(area.left(), y - line / 2, plot.left() - area.left() - 4, line),
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                f"{value:.2f}",
            )
            painter.setPen(QPen(GRID, 1))
        painter.setPen(TEXT)
        step = max(1, math.ceil(self.epochs / 10))
        for epoch in range(step, self.epochs + 1, step):  # epoch ticks, at most ten
            x = plot.left() + epoch / self.epochs * plot.width()
            painter.drawText(
                QRectF(x - 20, plot.bottom() + 2, 40, line), Qt.AlignmentFlag.AlignHCenter, str(epoch)
            )
        painter.drawText(
            QRectF(plot.left(), plot.bottom() + line + 2, plot.width(), line),
            Qt.AlignmentFlag.AlignHCenter,
            "epoch",
        )

        def point(epoch: float, value: float) -> QPointF:
            x = plot.left() + (epoch / self.epochs) * plot.width()
            y = plot.bottom() - (value - y0) / max(y1 - y0, 1e-9) * plot.height()
            return QPointF(x, min(max(y, plot.top()), plot.bottom()))

        legend_x, legend_y = plot.left() + 6, plot.top() - line * 0.7  # above the plot: no overlap
        for name, colour, values in series:
            pen = QPen(colour, 2)
            painter.setPen(pen)
            path = QPainterPath()
            for i, (epoch, value) in enumerate(sorted(values.items())):
                p = point(epoch, value)
                path.moveTo(p) if i == 0 else path.lineTo(p)
                painter.drawEllipse(p, 2.5, 2.5)
            painter.drawPath(path)
            painter.drawLine(QPointF(legend_x, legend_y), QPointF(legend_x + 14, legend_y))
            painter.setPen(TEXT)
            painter.drawText(QPointF(legend_x + 18, legend_y + line * 0.35), name)
            legend_x += 26 + metrics.horizontalAdvance(name)
        if (
            running is not None
        ):  # the epoch in progress: its running training loss, dashed from the last point
            train = series[0][2]
            painter.setPen(QPen(TRAIN, 1.5, Qt.PenStyle.DashLine))
            if train:
                last = max(train)
                painter.drawLine(point(last, train[last]), point(*running))
            painter.drawEllipse(point(*running), 2.5, 2.5)
