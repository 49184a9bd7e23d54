"""Persisted user settings (QSettings): window geometry, last folder, recent files, overlay, the models
turned off, device."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings

MAX_RECENT = 10
DEVICES = ("auto", "cpu", "cuda")


class ViewerSettings:
    """Typed access to the viewer's QSettings; pass a QSettings (e.g. an INI file) to isolate tests."""

    def __init__(self, store: QSettings | None = None) -> None:
        self.store = store if store is not None else QSettings("XRayViewer", "XRayViewer")

    def _get_list(self, key: str) -> list[str]:
        value = self.store.value(key, [])
        if isinstance(value, str):  # QSettings gives a one-item list back as a plain string
            value = [value]
        return [str(v) for v in value or [] if str(v)]

    def _get(self, key: str, default, kind):
        value = self.store.value(key, default)
        try:
            return kind(value) if value is not None else default
        except (TypeError, ValueError):
            return default

    @property
    def geometry(self) -> QByteArray | None:
        """Saved main-window geometry."""
        value = self.store.value("window/geometry")
        return value if isinstance(value, QByteArray) else None

    @geometry.setter
    def geometry(self, value: QByteArray) -> None:
        self.store.setValue("window/geometry", value)

    @property
    def window_state(self) -> QByteArray | None:
        """Saved dock layout."""
        value = self.store.value("window/state")
        return value if isinstance(value, QByteArray) else None

    @window_state.setter
    def window_state(self, value: QByteArray) -> None:
        self.store.setValue("window/state", value)

    @property
    def last_folder(self) -> str:
        """Folder of the last opened file (start of the Open dialog)."""
        return self._get("files/last_folder", str(Path.home()), str)

    @last_folder.setter
    def last_folder(self, value: str) -> None:
        self.store.setValue("files/last_folder", value)

    @property
    def recent_files(self) -> list[str]:
        """Most recent first."""
        return self._get_list("files/recent")[:MAX_RECENT]

    def add_recent(self, path: str) -> None:
        """Put ``path`` first in the recent files."""
        recent = [path] + [p for p in self.recent_files if p != path]
        self.store.setValue("files/recent", recent[:MAX_RECENT])

    @property
    def overlay_opacity(self) -> float:
        """Heat-map opacity in [0, 1]."""
        return min(max(self._get("overlay/opacity", 0.45, float), 0.0), 1.0)

    @overlay_opacity.setter
    def overlay_opacity(self, value: float) -> None:
        self.store.setValue("overlay/opacity", float(value))

    @property
    def disabled_models(self) -> list[str]:
        """Names of the installed model bundles the user turned off (every other one runs). The single
        ``model/name`` choice of earlier versions is not read: all models run by default now."""
        return self._get_list("model/disabled")

    @disabled_models.setter
    def disabled_models(self, names: list[str]) -> None:
        self.store.setValue("model/disabled", sorted(set(names)))

    @property
    def device(self) -> str:
        """Inference device: auto (CUDA if present, else CPU), cpu or cuda."""
        value = self._get("model/device", "auto", str)
        return value if value in DEVICES else "auto"

    @device.setter
    def device(self, value: str) -> None:
        self.store.setValue("model/device", value if value in DEVICES else "auto")
