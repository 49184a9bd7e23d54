"""Persisted user settings (QSettings): window geometry, last folder, recent files, heat-map opacity, the
models turned off, device."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings

from xrayviewer.engine.bundle import Bundle, is_weak
from xrayviewer.engine.devices import DEVICE_CHOICES

MAX_RECENT = 10


class _SavedBytes:
    """A ``QByteArray`` setting such as Qt's saved window geometry: None until one is saved."""

    def __init__(self, key: str, doc: str) -> None:
        self.key, self.__doc__ = key, doc

    def __get__(self, settings: ViewerSettings | None, owner: type | None = None) -> QByteArray | None:
        if settings is None:  # looked up on the class (help(), introspection): no value to give
            return None
        value = settings.store.value(self.key)
        return value if isinstance(value, QByteArray) else None

    def __set__(self, settings: ViewerSettings, value: QByteArray) -> None:
        settings.store.setValue(self.key, value)


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

    geometry = _SavedBytes("window/geometry", "Saved main-window geometry.")
    window_state = _SavedBytes("window/state", "Saved dock layout.")

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
    def heat_map_opacity(self) -> float:
        """Heat-map opacity in [0, 1] (stored under its old key, ``overlay/opacity``)."""
        return min(max(self._get("overlay/opacity", 0.45, float), 0.0), 1.0)

    @heat_map_opacity.setter
    def heat_map_opacity(self, value: float) -> None:
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
    def enabled_weak_models(self) -> list[str]:
        """Names of weak bundles (``engine.bundle.is_weak``) the user turned on: each is off until then."""
        return self._get_list("model/enabled-weak")

    def models_off(self, bundles: Iterable[Bundle]) -> set[str]:
        """Names among ``bundles`` that do not run: turned off by the user, or weak and not turned on."""
        turned_on = set(self.enabled_weak_models)
        weak = {b.name for b in bundles if is_weak(b.card) and b.name not in turned_on}
        return set(self.disabled_models) | weak

    def turn_model(self, name: str, on: bool, weak: bool) -> None:
        """Remember the user's choice for bundle ``name`` (a weak one in its own opt-in list)."""
        key, names = (("model/enabled-weak", set(self.enabled_weak_models)) if weak
                      else ("model/disabled", set(self.disabled_models)))
        (names.add if on == weak else names.discard)(name)
        self.store.setValue(key, sorted(names))

    @property
    def device(self) -> str:
        """Inference device: one of ``engine.devices.DEVICE_CHOICES`` ("auto" when unset or unknown)."""
        value = self._get("model/device", "auto", str)
        return value if value in DEVICE_CHOICES else "auto"

    @device.setter
    def device(self, value: str) -> None:
        self.store.setValue("model/device", value if value in DEVICE_CHOICES else "auto")
