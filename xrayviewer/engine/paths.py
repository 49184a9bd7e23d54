"""Where model bundles are looked for: shipped, per-user, then what the user points at."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from pathlib import Path

import platformdirs

MODELS_DIR_ENV = "XRAYVIEWER_MODELS_DIR"


def shipped_models_dir() -> Path:
    """``models/`` next to the package: the repository root (editable install) or the PyInstaller bundle."""
    frozen_root = getattr(sys, "_MEIPASS", None)
    if frozen_root:
        return Path(frozen_root) / "models"
    return Path(__file__).resolve().parents[2] / "models"


def user_models_dir() -> Path:
    """The per-user models folder (e.g. ``~/.local/share/xrayviewer/models`` on Linux)."""
    return platformdirs.user_data_path("xrayviewer", appauthor=False) / "models"


def models_search_path(extra_dirs: Iterable[str | Path] = ()) -> list[Path]:
    """Folders searched in order; a bundle found later overrides one of the same name found earlier."""
    env = [Path(p) for p in os.environ.get(MODELS_DIR_ENV, "").split(os.pathsep) if p]
    return [shipped_models_dir(), user_models_dir(), *env, *(Path(p) for p in extra_dirs)]
