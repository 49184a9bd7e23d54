"""Folder strip: the images of an opened folder as thumbnails, stepped through with PgUp/PgDn.

Thumbnails are decoded in the decoder process (``decoding.process_pool``) and arrive as small uint8 arrays;
the strip fills them in as they come, never blocking the UI.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future
from contextlib import suppress
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import QListView, QListWidget, QListWidgetItem, QWidget

from xrayviewer.gui.decoding import process_pool
from xrayviewer.gui.image_view import grey_qimage
from xrayviewer.imaging import lut, open_image

THUMB_SIDE = 112


def thumbnail_pixels(path: str, side: int = THUMB_SIDE) -> np.ndarray | None:
    """Default rendering shrunk by striding to at most ``side`` pixels; None when unreadable."""
    try:
        image = open_image(path)
    except Exception:
        return None
    step = max(1, int(np.ceil(max(image.shape) / side)))
    image.pixels = image.pixels[::step, ::step]
    return lut.to_uint8(lut.render(image))


class ThumbnailStrip(QListWidget):
    """A horizontal list of the folder's images; ``fileActivated`` when the user picks one."""

    fileActivated = Signal(str)
    _thumbReady = Signal(int, int, object)  # generation, row, uint8 array or None

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("thumbnails")
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setFlow(QListView.Flow.LeftToRight)
        self.setWrapping(False)
        self.setMovement(QListView.Movement.Static)
        self.setIconSize(QSize(THUMB_SIDE, THUMB_SIDE))
        self.setFixedHeight(THUMB_SIDE + 48)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.setGridSize(QSize(THUMB_SIDE + 24, THUMB_SIDE + 36))
        self.itemActivated.connect(self._activated)
        self.itemClicked.connect(self._activated)
        self._thumbReady.connect(self._set_thumb)
        self._generation = 0
        placeholder = QPixmap(THUMB_SIDE, THUMB_SIDE)
        placeholder.fill(QColor("#101214"))
        self._placeholder = QIcon(placeholder)  # keeps the layout stable until the thumbnail arrives

    def set_files(self, files: Sequence[Path]) -> None:
        """Show these files and start rendering their thumbnails in the background."""
        self._generation += 1
        self.clear()
        for path in files:
            item = QListWidgetItem(self._placeholder, path.name)
            item.setData(Qt.ItemDataRole.UserRole, str(path))
            item.setToolTip(str(path))
            self.addItem(item)
        generation = self._generation
        pool = process_pool("thumbnails")
        for row, path in enumerate(files):
            future = pool.submit(thumbnail_pixels, str(path))
            future.add_done_callback(lambda f, r=row: self._deliver(generation, r, f))

    def _deliver(self, generation: int, row: int, future: Future) -> None:
        """Runs on the pool's thread: hand the result to the UI thread through a queued signal."""
        pixels = None if future.cancelled() or future.exception() else future.result()
        with suppress(RuntimeError):  # the strip was deleted meanwhile
            self._thumbReady.emit(generation, row, pixels)

    def files(self) -> list[str]:
        """Paths in the strip, in order."""
        return [self.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.count())]

    def select_path(self, path: str | Path) -> None:
        """Highlight ``path`` without emitting ``fileActivated``."""
        for i, candidate in enumerate(self.files()):
            if Path(candidate) == Path(path):
                self.setCurrentRow(i)
                self.scrollToItem(self.item(i))

    def step(self, delta: int) -> None:
        """Activate the previous (-1) or next (+1) image."""
        if self.count():
            row = min(max(self.currentRow() + delta, 0), self.count() - 1)
            if row != self.currentRow():
                self.setCurrentRow(row)
                self._activated(self.item(row))

    def _activated(self, item: QListWidgetItem) -> None:
        self.fileActivated.emit(item.data(Qt.ItemDataRole.UserRole))

    def _set_thumb(self, generation: int, row: int, pixels: np.ndarray | None) -> None:
        if generation != self._generation or row >= self.count() or pixels is None:
            return
        picture = QPixmap.fromImage(grey_qimage(pixels)).scaled(
            THUMB_SIDE,
            THUMB_SIDE,
            Qt.AspectRatioMode.KeepAspectRatio,
            Qt.TransformationMode.SmoothTransformation,
        )
        square = self._placeholder.pixmap(THUMB_SIDE, THUMB_SIDE)
        painter = QPainter(square)
        painter.drawPixmap((THUMB_SIDE - picture.width()) // 2, (THUMB_SIDE - picture.height()) // 2, picture)
        painter.end()
        self.item(row).setIcon(QIcon(square))
