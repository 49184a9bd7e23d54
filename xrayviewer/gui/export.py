"""Export the current view as PNG: the whole image at native resolution with the current window/level,
orientation and inversion, optionally the heat map and a findings legend burnt in."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFont, QImage, QPainter

from xrayviewer.gui.image_view import ImageView


def render_view(view: ImageView, with_overlay: bool, legend: Sequence[str] = ()) -> QImage:
    """The picture as shown (orientation, W/L, overlay if asked and visible), one image pixel per pixel."""
    rect = view.image_item.sceneBoundingRect()
    out = QImage(round(rect.width()), round(rect.height()), QImage.Format.Format_RGB32)
    out.fill(Qt.GlobalColor.black)
    overlay_was_visible = view.overlay_item.isVisible()
    view.overlay_item.setVisible(with_overlay and overlay_was_visible)
    painter = QPainter(out)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    try:
        view.scene().render(painter, QRectF(out.rect()), rect)
        if legend:
            _draw_legend(painter, out, legend)
    finally:
        painter.end()
        view.overlay_item.setVisible(overlay_was_visible)
    return out


def _draw_legend(painter: QPainter, out: QImage, lines: Sequence[str]) -> None:
    font = QFont()
    font.setPixelSize(max(12, out.height() // 60))
    painter.setFont(font)
    metrics = painter.fontMetrics()
    pad = metrics.height() // 2
    width = max(metrics.horizontalAdvance(line) for line in lines) + 2 * pad
    height = metrics.height() * len(lines) + 2 * pad
    painter.fillRect(QRectF(pad, pad, width, height), QColor(0, 0, 0, 170))
    painter.setPen(QColor("#f0f0f0"))
    for i, line in enumerate(lines):
        painter.drawText(2 * pad, 2 * pad + metrics.ascent() + i * metrics.height(), line)


def export_png(path: str | Path, view: ImageView, with_overlay: bool, legend: Sequence[str] = ()) -> Path:
    """Write ``render_view`` to ``path`` (``.png`` added when missing); raises OSError when it cannot."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        path = path.with_suffix(".png")
    if not render_view(view, with_overlay, legend).save(str(path), "PNG"):
        raise OSError(f"could not write {path}")
    return path
