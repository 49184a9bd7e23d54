"""Small widgets the wizard's pages share: sentences (problems, notes, the one-line "why" of a setting),
a picture that scales with the page, a path field with a Browse button."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QImage, QPixmap, QResizeEvent
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QWidget,
)

PROBLEM_COLOUR = "#e58a7b"
NOTE_COLOUR = "#b9bdc3"
GOOD_COLOUR = "#8fc79a"
WHY_COLOUR = "#8d9298"


def sentences_html(items: list[str], colour: str, mark: str) -> str:
    """Sentences as a small HTML list with a leading mark."""
    rows = "".join(
        f"<tr><td style='padding-right:6px;color:{colour}'>{mark}</td>"
        f"<td style='color:{colour}'>{html.escape(text)}</td></tr>"
        for text in items
    )
    return f"<table cellspacing='0' cellpadding='2'>{rows}</table>" if items else ""


class Sentences(QLabel):
    """A word-wrapped list of sentences (problems in red with ✗, notes with ›); hidden when empty."""

    def __init__(self, colour: str = NOTE_COLOUR, mark: str = "›", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.colour, self.mark = colour, mark
        self.items: list[str] = []
        self.setWordWrap(True)
        self.setTextFormat(Qt.TextFormat.RichText)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        self.hide()

    def set_items(self, items: list[str]) -> None:
        """Show these sentences (none: hide)."""
        self.items = list(items)
        self.setText(sentences_html(self.items, self.colour, self.mark))
        self.setVisible(bool(self.items))

    def plain(self) -> str:
        """The sentences as plain text (tests, accessibility)."""
        return "\n".join(self.items)


def problems_label() -> Sentences:
    """Sentences that stop the wizard from going on."""
    return Sentences(PROBLEM_COLOUR, "✗")


def why_label(text: str) -> QLabel:
    """The grey one-line reason beside a setting."""
    label = QLabel(text)
    label.setWordWrap(True)
    label.setStyleSheet(f"color:{WHY_COLOUR}")
    label.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
    return label


def grey_qimage(pixels: np.ndarray) -> QImage:
    """A deep copy of a uint8 (h, w) array as a Grayscale8 QImage."""
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    h, w = pixels.shape[:2]
    return QImage(pixels.data, w, h, w, QImage.Format.Format_Grayscale8).copy()


class PictureLabel(QLabel):
    """Shows an image file (or QImage) scaled to fit, sharp on high-DPI screens; a placeholder text until
    one is set."""

    def __init__(self, placeholder: str = "", parent: QWidget | None = None) -> None:
        super().__init__(placeholder, parent)
        self._source: QPixmap | None = None
        self.path = ""
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setMinimumSize(120, 90)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)

    def set_file(self, path: str | Path) -> bool:
        """Show the image at ``path``; False (and the placeholder) when it is missing."""
        pixmap = QPixmap(str(path))
        self.path = str(path) if not pixmap.isNull() else ""
        self.set_pixmap(None if pixmap.isNull() else pixmap)
        return not pixmap.isNull()

    def set_pixmap(self, pixmap: QPixmap | None) -> None:
        """Show ``pixmap`` scaled to fit (None: clear)."""
        self._source = pixmap
        if pixmap is None:
            self.clear()
        self._rescale()

    def mouseDoubleClickEvent(self, event) -> None:
        """Open the picture's file full size in the system's viewer."""
        if self.path:
            from PySide6.QtCore import QUrl
            from PySide6.QtGui import QDesktopServices

            QDesktopServices.openUrl(QUrl.fromLocalFile(self.path))

    def has_picture(self) -> bool:
        """A picture is shown."""
        return self._source is not None

    def resizeEvent(self, event: QResizeEvent) -> None:
        """Keep the picture fitted."""
        super().resizeEvent(event)
        self._rescale()

    def _rescale(self) -> None:
        if self._source is None:
            return
        ratio = self.devicePixelRatioF()
        target = QSize(max(1, int(self.width() * ratio)), max(1, int(self.height() * ratio)))
        scaled = self._source.scaled(
            target, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
        )
        scaled.setDevicePixelRatio(ratio)
        super().setPixmap(scaled)


def column_scroll(widget: QWidget) -> QScrollArea:
    """``widget`` in a frameless area that scrolls up and down only (its width follows the page)."""
    scroll = QScrollArea()
    scroll.setWidget(widget)
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QScrollArea.Shape.NoFrame)
    scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    return scroll


class PathField(QWidget):
    """A line edit with a Browse… button (folder or file); ``changed`` after editing or browsing."""

    changed = Signal(str)

    def __init__(self, kind: str = "folder", file_filter: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.kind, self.file_filter = kind, file_filter
        self.edit = QLineEdit()
        self.edit.setClearButtonEnabled(True)
        self.button = QPushButton("Browse…")
        self.button.clicked.connect(self.browse)
        box = QHBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self.edit, 1)
        box.addWidget(self.button)
        self.edit.editingFinished.connect(lambda: self.changed.emit(self.text()))
        self.setFocusProxy(self.edit)

    def text(self) -> str:
        """The path as typed (stripped)."""
        return self.edit.text().strip()

    def set_text(self, text: str, notify: bool = True) -> None:
        """Set the path (and say so unless ``notify`` is false)."""
        self.edit.setText(text)
        if notify:
            self.changed.emit(self.text())

    def browse(self) -> None:
        """Pick a folder or file with the platform dialog."""
        start = self.text() or str(Path.home())
        if self.kind == "folder":
            chosen = QFileDialog.getExistingDirectory(self, "Choose a folder", start)
        else:
            chosen, _ = QFileDialog.getOpenFileName(self, "Choose a file", start, self.file_filter)
        if chosen:
            self.set_text(chosen)
