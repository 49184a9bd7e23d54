"""The selftest's one Qt check: the main window opens offscreen, reads a synthetic film through the spawned
decoder process, runs every enabled model on it and closes (``cli.selftest`` runs it after the Qt-free
checks of ``engine.selftest``)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from PySide6.QtCore import QLibraryInfo, QSettings

from xrayviewer.engine.selftest import CheckFailed

#: platform plugins a Linux installation must carry (the desktop's X11 or Wayland; offscreen for the selftest)
LINUX_PLATFORMS = ("xcb", "wayland", "offscreen")


def platform_plugins() -> list[str]:
    """The Qt platform plugins installed (``xcb``, ``wayland``, ``offscreen``, … without lib/suffix)."""
    folder = Path(QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath)) / "platforms"
    names = (p.name.split(".")[0] for p in folder.iterdir() if p.is_file())
    return sorted(name.removeprefix("libq").removeprefix("q") for name in names)


def settings_location() -> str:
    """Where the viewer keeps its settings for this user (a per-user file or the registry); fails when
    they cannot be written."""
    settings = QSettings("XRayViewer", "XRayViewer")
    if not settings.isWritable():
        raise CheckFailed(f"settings cannot be written: {settings.fileName()}")
    return settings.fileName()


def check_window(film: Path, timeout_s: float = 120.0) -> str:
    """Open the main window (QT_QPA_PLATFORM is the caller's: offscreen for the selftest), open ``film``,
    wait until every model has answered, close. Its settings go to a temporary file, not the user's."""
    import sys

    from xrayviewer.gui.app import create_application
    from xrayviewer.gui.main_window import MainWindow

    app = create_application()
    plugins = platform_plugins()
    if sys.platform.startswith("linux"):
        missing = [p for p in LINUX_PLATFORMS if p not in plugins]
        if missing:
            raise CheckFailed(f"Qt platform plugins missing: {', '.join(missing)} "
                              f"(found {', '.join(plugins)})")
    with tempfile.TemporaryDirectory(prefix="xrayviewer-selftest-") as scratch:
        store = QSettings(str(Path(scratch) / "settings.ini"), QSettings.Format.IniFormat)
        window = MainWindow(settings=store)
        settled: list[bool] = []
        window.filmSettled.connect(lambda: settled.append(True))
        window.show()
        window.open_paths([str(film)])
        start = time.monotonic()
        while not settled and time.monotonic() - start < timeout_s:
            app.processEvents()
            time.sleep(0.01)
        seconds = time.monotonic() - start
        models = len(window.session.predictions)
        shown = window.session.loaded is not None
        refused = window.session.refused
        window.close()
        app.processEvents()
        del window
    if not settled:
        raise CheckFailed(f"{film.name} not settled after {timeout_s:.0f} s")
    if not shown:
        raise CheckFailed(f"{film.name} was not shown")
    if models == 0 and not refused:
        raise CheckFailed(f"no model answered on {film.name}")
    what = "refused" if refused else f"{models} models answered"
    return (f"{app.platformName()}: {film.name} decoded in a spawned process, {what} in {seconds:.1f} s; "
            f"platforms {', '.join(plugins)}; settings {settings_location()}")
