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
        self._cursor = -1  # the row last asked for (clicked or stepped to), shown or not
        placeholder = QPixmap(THUMB_SIDE, THUMB_SIDE)
        placeholder.fill(QColor("#101214"))
        self._placeholder = QIcon(placeholder)  # keeps the layout stable until the thumbnail arrives

    def set_files(self, files: Sequence[Path]) -> None:
        """Show these files and start rendering their thumbnails in the background."""
        self._generation += 1
        self._cursor = -1
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

    def select_path(self, path: str | Path | None, *, keep_cursor: bool = False) -> None:
        """Highlight ``path`` (None: nothing) without emitting ``fileActivated``: the film on screen.
        ``keep_cursor``: PgUp/PgDn still step from the file last asked for (one that failed to open), so
        that a bad file does not stop a walk through the folder."""
        row = self._row_of(path)
        self.setCurrentRow(row)
        if row >= 0:
            self.scrollToItem(self.item(row))
        if not keep_cursor:
            self._cursor = row

    def mark_failed(self, path: str | Path, message: str) -> None:
        """Dim ``path``'s entry and give it the reason it could not be opened as its tooltip."""
        row = self._row_of(path)
        if row >= 0:
            item = self.item(row)
            item.setToolTip(message)
            item.setForeground(QColor("#7a6a55"))

    def _row_of(self, path: str | Path | None) -> int:
        if path is not None:
            for i, candidate in enumerate(self.files()):
                if Path(candidate) == Path(path):
                    return i
        return -1

    def step(self, delta: int) -> None:
        """Activate the previous (-1) or next (+1) image, from the one last asked for."""
        if self.count():
            base = self._cursor if 0 <= self._cursor < self.count() else self.currentRow()
            row = min(max(base + delta, 0), self.count() - 1)
            if row != base:
                self.setCurrentRow(row)
                self._activated(self.item(row))

    def _activated(self, item: QListWidgetItem) -> None:
        self._cursor = self.row(item)
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
