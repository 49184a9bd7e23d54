"""Start the Qt viewer (being built)."""

from __future__ import annotations

from collections.abc import Sequence


def run_viewer(files: Sequence[str]) -> int:
    """Open the main window with ``files`` and run the Qt event loop."""
    from PySide6.QtWidgets import QApplication, QLabel

    app = QApplication.instance() or QApplication([])
    label = QLabel("XRayViewer")
    label.show()
    return app.exec()
