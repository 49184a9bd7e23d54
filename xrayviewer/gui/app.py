"""Start the Qt viewer: the QApplication (high-DPI, Fusion, dark reading-room theme) and the main window."""

from __future__ import annotations

import signal
import sys
from collections.abc import Sequence

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

from xrayviewer.engine.paths import resources_dir

THEME_FILE = resources_dir() / "dark.qss"

_PALETTE = {
    QPalette.ColorRole.Window: "#1b1d20",
    QPalette.ColorRole.WindowText: "#c9ccd1",
    QPalette.ColorRole.Base: "#141618",
    QPalette.ColorRole.AlternateBase: "#1d2024",
    QPalette.ColorRole.ToolTipBase: "#262a2f",
    QPalette.ColorRole.ToolTipText: "#d8dadd",
    QPalette.ColorRole.Text: "#c9ccd1",
    QPalette.ColorRole.Button: "#24272b",
    QPalette.ColorRole.ButtonText: "#c9ccd1",
    QPalette.ColorRole.BrightText: "#ffffff",
    QPalette.ColorRole.Highlight: "#3d5f80",
    QPalette.ColorRole.HighlightedText: "#ffffff",
    QPalette.ColorRole.Link: "#7fb0dc",
    QPalette.ColorRole.PlaceholderText: "#6c7076",
}


def apply_theme(app: QApplication) -> None:
    """Fusion style, a dim palette and the dark style sheet (resources/dark.qss when present)."""
    app.setStyle("Fusion")
    palette = QPalette()
    for role, colour in _PALETTE.items():
        palette.setColor(role, QColor(colour))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor("#5d6167"))
    app.setPalette(palette)
    if THEME_FILE.is_file():
        app.setStyleSheet(THEME_FILE.read_text(encoding="utf-8"))


def create_application(argv: Sequence[str] = ()) -> QApplication:
    """The QApplication (created once), high-DPI aware and themed."""
    existing = QApplication.instance()
    if isinstance(existing, QApplication):
        return existing
    QGuiApplication.setHighDpiScaleFactorRoundingPolicy(Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
    app = QApplication([sys.argv[0] if sys.argv else "xrayviewer", *argv])
    app.setApplicationName("XRayViewer")
    app.setOrganizationName("XRayViewer")
    apply_theme(app)
    return app


def run_viewer(files: Sequence[str]) -> int:
    """Open the main window with ``files`` and run the Qt event loop, with the crash handler installed
    (``gui.crash``: a report without patient data and a dialog for any unexpected exception)."""
    app = create_application()
    from xrayviewer.gui.crash import CrashReporter
    from xrayviewer.gui.main_window import MainWindow

    # every unexpected exception from here on: a crash report without patient data, a dialog, and on
    reporter = CrashReporter().install()
    window = MainWindow()
    reporter.context = window.crash_context
    window.show()
    if files:
        window.open_paths(list(files))
    for sig in (signal.SIGINT, signal.SIGTERM):  # Ctrl+C / kill close the window cleanly
        signal.signal(sig, lambda *_: window.close())
    python_signals = QTimer(interval=200)  # lets Python run its signal handlers during the Qt loop
    python_signals.timeout.connect(lambda: None)
    python_signals.start()
    try:
        return app.exec()
    finally:
        reporter.uninstall()
