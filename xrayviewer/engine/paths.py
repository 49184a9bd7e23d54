"""Where model bundles are looked for: shipped, per-user, then what the user points at."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from pathlib import Path

import platformdirs

MODELS_DIR_ENV = "XRAYVIEWER_MODELS_DIR"


def frozen() -> bool:
    """Whether this is the installer's executable (a PyInstaller build) rather than Python on the sources."""
    return bool(getattr(sys, "frozen", False)) and hasattr(sys, "_MEIPASS")


def app_root() -> Path:
    """The folder holding ``models/`` and ``resources/``: the PyInstaller bundle's data folder when frozen,
    else the repository root (an editable install or a source checkout)."""
    if frozen():
        return Path(sys._MEIPASS)
    return Path(__file__).resolve().parents[2]


def shipped_models_dir() -> Path:
    """``models/`` next to the package: the repository root (editable install) or the PyInstaller bundle."""
    return app_root() / "models"


def resources_dir() -> Path:
    """``resources/`` (the theme, the selftest's synthetic films), frozen or from source."""
    return app_root() / "resources"


def user_models_dir() -> Path:
    """The per-user models folder (e.g. ``~/.local/share/xrayviewer/models`` on Linux)."""
    return platformdirs.user_data_path("xrayviewer", appauthor=False) / "models"


def models_search_path(extra_dirs: Iterable[str | Path] = ()) -> list[Path]:
    """Folders searched in order; a bundle found later overrides one of the same name found earlier."""
    env = [Path(p) for p in os.environ.get(MODELS_DIR_ENV, "").split(os.pathsep) if p]
    return [shipped_models_dir(), user_models_dir(), *env, *(Path(p) for p in extra_dirs)]
