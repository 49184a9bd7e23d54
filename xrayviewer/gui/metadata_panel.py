"""DICOM tag panel: the de-identified header subset, with patient-identifying fields masked until revealed.

Identifying fields never travel inside ``XRayImage``: they are read from the file (``imaging.metadata.
read_identifying_fields``) only when the user presses "Show patient details", and forgotten on the next image.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QPushButton, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from xrayviewer.imaging.image import XRayImage
from xrayviewer.imaging.metadata import IDENTIFYING_TAGS, read_identifying_fields

MASK = "••••••"


class MetadataPanel(QWidget):
    """Header fields of the current image; identifying ones masked unless revealed."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("metadataPanel")
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Field", "Value"])
        self.tree.setRootIsDecorated(False)
        self.tree.setAlternatingRowColors(True)
        self.reveal = QPushButton("Show patient details")
        self.reveal.setCheckable(True)
        self.reveal.setToolTip("Patient-identifying fields are hidden until you ask for them")
        self.reveal.toggled.connect(self._refresh)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.tree)
        layout.addWidget(self.reveal)
        self._image: XRayImage | None = None

    def set_image(self, image: XRayImage | None) -> None:
        """Show this image's fields, identifying ones masked again."""
        self._image = image
        self.reveal.setChecked(False)
        self.reveal.setEnabled(image is not None and image.format == "DICOM")
        self._refresh()

    def values(self) -> dict[str, str]:
        """What the panel currently shows, field → text (for tests and export)."""
        return {
            self.tree.topLevelItem(i).text(0): self.tree.topLevelItem(i).text(1)
            for i in range(self.tree.topLevelItemCount())
        }

    def _refresh(self) -> None:
        self.tree.clear()
        image = self._image
        if image is None:
            return
        rows = [("File", Path(image.source).name if image.source else ""), ("Format", image.format)]
        rows += [("Size", f"{image.shape[1]} × {image.shape[0]} px")]
        rows += [(field, value) for field, value in image.metadata.items() if field != "Format"]  # row 2
        if image.format == "DICOM":
            if self.reveal.isChecked() and image.source is not None:
                revealed = read_identifying_fields(image.source)
                rows += [(label, revealed.get(label, "")) for label, _ in IDENTIFYING_TAGS]
            else:
                rows += [(label, MASK) for label, _ in IDENTIFYING_TAGS]
        rows += [("Warning", text) for text in image.warnings]
        for field, value in rows:
            self.tree.addTopLevelItem(QTreeWidgetItem([field, str(value)]))
        self.tree.resizeColumnToContents(0)
