"""The image canvas: a QGraphicsView showing one grey picture and its heat-map overlay.

Zoom and pan live on the view; rotation and flips live on the image item; the overlay is a child of the
image item, so every transform applied to the picture applies to the overlay too and they never drift.
State in (``set_picture``, ``set_overlay``, orientation slots), signals out (cursor, right-drag W/L).
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPoint, QPointF, Qt, Signal
from PySide6.QtGui import QImage, QMouseEvent, QPainter, QPixmap, QTransform, QWheelEvent
from PySide6.QtWidgets import QGraphicsPixmapItem, QGraphicsScene, QGraphicsView, QWidget

ZOOM_STEP = 1.25
ZOOM_LIMITS = (0.02, 64.0)
PAN_MARGIN = 4.0  # the picture can be panned this many picture sizes away


def grey_qimage(pixels: np.ndarray) -> QImage:
    """A QImage (Grayscale8) that owns a copy of a 2-D uint8 array."""
    data = np.ascontiguousarray(pixels, dtype=np.uint8)
    rows, cols = data.shape
    return QImage(data.data, cols, rows, cols, QImage.Format.Format_Grayscale8).copy()


def rgba_qimage(rgba: np.ndarray) -> QImage:
    """A QImage (RGBA8888) that owns a copy of an (rows, cols, 4) uint8 array."""
    data = np.ascontiguousarray(rgba, dtype=np.uint8)
    rows, cols = data.shape[:2]
    return QImage(data.data, cols, rows, cols * 4, QImage.Format.Format_RGBA8888).copy()


def picture_qimage(pixels: np.ndarray) -> QImage:
    """A grey uint8 picture in the screen's native format (RGB32): turning it into a pixmap is then free,
    so the conversion can happen off the UI thread."""
    return grey_qimage(pixels).convertToFormat(QImage.Format.Format_RGB32)


def overlay_qimage(rgba: np.ndarray) -> QImage:
    """An RGBA uint8 overlay in the native format with alpha (ARGB32 premultiplied); see picture_qimage."""
    return rgba_qimage(rgba).convertToFormat(QImage.Format.Format_ARGB32_Premultiplied)


class ImageView(QGraphicsView):
    """Zoomable, pannable view of one image with an aligned overlay; right-drag reports W/L deltas."""

    cursorMoved = Signal(int, int)  # (row, col) of the source pixel under the cursor, (-1, -1) outside
    windowDragged = Signal(float, float)  # (dx, dy) screen pixels of a right-button drag
    zoomChanged = Signal(float)  # current zoom factor (1.0 = one image pixel per screen pixel)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("imageView")
        self.setScene(QGraphicsScene(self))
        self.image_item = QGraphicsPixmapItem()
        self.overlay_item = QGraphicsPixmapItem(self.image_item)
        self.overlay_item.setVisible(False)
        self.scene().addItem(self.image_item)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setMouseTracking(True)
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        self.setBackgroundBrush(Qt.GlobalColor.black)
        self.setFrameShape(QGraphicsView.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self._rotation = 0
        self._flip_h = False
        self._flip_v = False
        self._right_drag: QPoint | None = None
        self._fit_on_resize = True

    # -- content -----------------------------------------------------------------------------------
    def has_picture(self) -> bool:
        """True once a picture has been set."""
        return not self.image_item.pixmap().isNull()

    def set_picture(self, picture: QImage | np.ndarray, *, keep_view: bool = False) -> None:
        """Show a grey picture (QImage or uint8 array); unless ``keep_view`` (and same size), reset
        orientation and fit it in the window."""
        previous = self.image_item.pixmap().size()
        image = picture if isinstance(picture, QImage) else picture_qimage(picture)
        self.image_item.setPixmap(QPixmap.fromImage(image))
        if keep_view and previous == self.image_item.pixmap().size():
            return
        self.overlay_item.setPixmap(QPixmap())
        self.reset_view()

    def clear(self) -> None:
        """Remove the picture and the overlay."""
        self.image_item.setPixmap(QPixmap())
        self.overlay_item.setPixmap(QPixmap())
        self.overlay_item.setVisible(False)

    def set_overlay(self, overlay: QImage | np.ndarray | None) -> None:
        """Set the overlay (QImage or RGBA uint8 array on the source pixel grid); ``None`` removes it."""
        if overlay is None:
            self.overlay_item.setPixmap(QPixmap())
            return
        pixmap = QPixmap.fromImage(overlay if isinstance(overlay, QImage) else overlay_qimage(overlay))
        picture = self.image_item.pixmap()
        if pixmap.size() != picture.size():
            raise ValueError(f"overlay {pixmap.width()}x{pixmap.height()} does not match the image")
        self.overlay_item.setPixmap(pixmap)

    def set_overlay_visible(self, visible: bool) -> None:
        """Show or hide the overlay."""
        self.overlay_item.setVisible(visible)

    def set_overlay_opacity(self, opacity: float) -> None:
        """Overlay opacity in [0, 1]."""
        self.overlay_item.setOpacity(min(1.0, max(0.0, opacity)))

    # -- orientation (on the image item, inherited by the overlay) ------------------------------------
    def rotate_90(self, clockwise: bool = True) -> None:
        """Rotate the picture by 90 degrees."""
        self._rotation = (self._rotation + (90 if clockwise else -90)) % 360
        self._apply_orientation()

    def flip_horizontal(self) -> None:
        """Mirror left-right."""
        self._flip_h = not self._flip_h
        self._apply_orientation()

    def flip_vertical(self) -> None:
        """Mirror top-bottom."""
        self._flip_v = not self._flip_v
        self._apply_orientation()

    def orientation(self) -> tuple[int, bool, bool]:
        """(rotation degrees, flipped horizontally, flipped vertically)."""
        return self._rotation, self._flip_h, self._flip_v

    def _apply_orientation(self) -> None:
        rect = self.image_item.boundingRect()
        c = rect.center()
        t = QTransform()
        t.translate(c.x(), c.y())
        t.rotate(self._rotation)
        t.scale(-1.0 if self._flip_h else 1.0, -1.0 if self._flip_v else 1.0)
        t.translate(-c.x(), -c.y())
        self.image_item.setTransform(t)
        # a generous scene lets the user pan the picture anywhere and zoom around any point (as in PACS)
        rect = self.image_item.sceneBoundingRect()
        margin = PAN_MARGIN * max(rect.width(), rect.height())
        self.scene().setSceneRect(rect.adjusted(-margin, -margin, margin, margin))
        if self._fit_on_resize:
            self.fit_to_window()

    # -- zoom and pan (on the view) -----------------------------------------------------------------
    def zoom(self) -> float:
        """Device-independent screen pixels per image pixel."""
        return float(np.hypot(self.transform().m11(), self.transform().m12()))

    def set_zoom(self, factor: float) -> None:
        """Set an absolute zoom factor, keeping the view centre."""
        factor = min(max(factor, ZOOM_LIMITS[0]), ZOOM_LIMITS[1])
        anchor = self.transformationAnchor()
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setTransform(QTransform.fromScale(factor, factor))
        self.setTransformationAnchor(anchor)
        self._zoom_settled()

    def zoom_by(self, steps: float, anchor: QPointF | None = None) -> None:
        """Zoom by ``ZOOM_STEP ** steps`` around ``anchor`` (viewport position) or the view centre."""
        target = min(max(self.zoom() * ZOOM_STEP**steps, ZOOM_LIMITS[0]), ZOOM_LIMITS[1])
        factor = target / self.zoom()
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
        point = anchor.toPoint() if anchor is not None else self.viewport().rect().center()
        before = self.mapToScene(point)
        self.scale(factor, factor)
        drift = self.mapFromScene(before) - point  # scroll so that the same scene point is back under it
        self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() + drift.x())
        self.verticalScrollBar().setValue(self.verticalScrollBar().value() + drift.y())
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self._zoom_settled()

    def fit_to_window(self) -> None:
        """Show the whole picture, as large as the window allows."""
        self._fit_on_resize = True
        if self.has_picture():
            self.fitInView(self.image_item.sceneBoundingRect(), Qt.AspectRatioMode.KeepAspectRatio)
        self.zoomChanged.emit(self.zoom())

    def actual_size(self) -> None:
        """One image pixel per physical screen pixel (1:1, also on high-DPI screens)."""
        self.set_zoom(1.0 / self.devicePixelRatioF())

    def reset_view(self) -> None:
        """Undo rotation, flips, zoom and pan."""
        self._rotation, self._flip_h, self._flip_v = 0, False, False
        self._fit_on_resize = True
        self._apply_orientation()

    def _zoom_settled(self) -> None:
        self._fit_on_resize = False
        self.zoomChanged.emit(self.zoom())

    # -- events --------------------------------------------------------------------------------------
    def wheelEvent(self, event: QWheelEvent) -> None:
        """Zoom around the cursor."""
        delta = event.angleDelta().y()
        if delta and self.has_picture():
            self.zoom_by(delta / 120.0, event.position())
        event.accept()

    def resizeEvent(self, event) -> None:
        """Keep a fitted picture fitted when the window changes size."""
        super().resizeEvent(event)
        if self._fit_on_resize:
            self.fit_to_window()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        """Right button starts a window/level drag; left button pans."""
        if event.button() == Qt.MouseButton.RightButton:
            self._right_drag = event.position().toPoint()
            self.viewport().setCursor(Qt.CursorShape.SizeAllCursor)
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        """Report the pixel under the cursor and, during a right-drag, the W/L delta."""
        pos = event.position().toPoint()
        if self._right_drag is not None:
            delta = pos - self._right_drag
            self._right_drag = pos
            if delta.x() or delta.y():
                self.windowDragged.emit(float(delta.x()), float(delta.y()))
            event.accept()
        else:
            super().mouseMoveEvent(event)
        self.cursorMoved.emit(*self.pixel_at(pos))

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        """End a window/level drag."""
        if event.button() == Qt.MouseButton.RightButton and self._right_drag is not None:
            self._right_drag = None
            self.viewport().unsetCursor()
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def leaveEvent(self, event) -> None:
        """No pixel under the cursor once it leaves."""
        self.cursorMoved.emit(-1, -1)
        super().leaveEvent(event)

    def pixel_at(self, viewport_pos: QPoint) -> tuple[int, int]:
        """(row, col) of the source pixel under a viewport position, or (-1, -1) outside the image."""
        if not self.has_picture():
            return -1, -1
        p = self.image_item.mapFromScene(self.mapToScene(viewport_pos))
        col, row = int(np.floor(p.x())), int(np.floor(p.y()))
        pixmap = self.image_item.pixmap()
        if 0 <= row < pixmap.height() and 0 <= col < pixmap.width():
            return row, col
        return -1, -1

    def viewport_pos_of(self, row: float, col: float) -> QPoint:
        """Viewport position of a source pixel centre (inverse of ``pixel_at``)."""
        return self.mapFromScene(self.image_item.mapToScene(QPointF(col + 0.5, row + 0.5)))
