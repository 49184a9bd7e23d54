"""The main window's menus, toolbar and keyboard shortcuts: File, View, Model (with Device).

Every action is also added to the window itself, so its shortcut works wherever the focus is; triggers
call the window's public slots. The Open recent and Model menus are filled each time they open.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QMenu

from xrayviewer.engine.bundle import is_weak
from xrayviewer.engine.devices import AUTO_ORDER, DEVICE_CHOICES
from xrayviewer.gui.workers import ModelUnavailableError

WEAK_LABEL = " (weak: a hint, off until turned on)"

if TYPE_CHECKING:
    from xrayviewer.gui.main_window import MainWindow

DEVICE_LABELS = {"auto": f"Auto ({AUTO_ORDER})", "cpu": "CPU", "cuda": "CUDA", "mps": "MPS (Apple)"}


class WindowMenus:
    """Builds ``window``'s menu bar, toolbar and shortcuts; keeps the actions other code needs."""

    def __init__(self, window: MainWindow) -> None:
        self._window = window
        self._model_actions: list[QAction] = []
        self._build_file_menu()
        self._build_view_menu()
        self._build_model_menu()
        self._build_toolbar()

    def _action(
        self,
        menu: QMenu,
        text: str,
        slot: Callable[..., object],
        shortcut: str | QKeySequence.StandardKey = "",
        tip: str = "",
        checkable: bool = False,
    ) -> QAction:
        action = QAction(text, self._window)
        if shortcut:
            action.setShortcut(QKeySequence(shortcut))
        action.setToolTip(f"{tip or text} ({action.shortcut().toString()})" if shortcut else tip or text)
        action.setCheckable(checkable)
        if checkable:
            action.toggled.connect(slot)
        else:  # not ``triggered.connect(slot)``: Qt would pass ``checked`` into the slot's first parameter
            action.triggered.connect(lambda: slot())
        menu.addAction(action)
        self._window.addAction(action)
        return action

    def _build_file_menu(self) -> None:
        window = self._window
        menu = window.menuBar().addMenu("&File")
        self.open_action = self._action(menu, "&Open…", window.open_dialog, QKeySequence.StandardKey.Open)
        self._action(menu, "Open &folder…", window.open_folder_dialog, "Ctrl+Shift+O")
        self.recent_menu = menu.addMenu("Open &recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        menu.addSeparator()
        self.export_action = self._action(
            menu,
            "&Export view as PNG…",
            window.export_dialog,
            "Ctrl+E",
            tip="Export the image as shown, with the heat map if shown and the findings",
        )
        self._action(
            menu,
            "Export &image only as PNG…",
            lambda: window.export_dialog(annotated=False),
            "Ctrl+Shift+E",
            tip="Export the image as shown, without heat map or findings",
        )
        menu.addSeparator()
        self._action(menu, "&Quit", window.close, QKeySequence.StandardKey.Quit)

    def _build_view_menu(self) -> None:
        window, view = self._window, self._window.view
        menu = window.menuBar().addMenu("&View")
        self.fit_action = self._action(menu, "&Fit to window", view.fit_to_window, "F")
        self._action(menu, "&Actual size (1:1)", view.actual_size, "1")
        self._action(menu, "Zoom &in", lambda: view.zoom_by(1), "+")
        self._action(menu, "Zoom &out", lambda: view.zoom_by(-1), "-")
        menu.addSeparator()
        self.rotate_action = self._action(menu, "&Rotate 90° clockwise", view.rotate_90, "R")
        self._action(menu, "Rotate 90° counter-clockwise", lambda: view.rotate_90(False), "Shift+R")
        self.flip_h_action = self._action(menu, "Flip &horizontal", view.flip_horizontal, "H")
        self.flip_v_action = self._action(menu, "Flip &vertical", view.flip_vertical, "V")
        self.invert_action = self._action(menu, "&Invert", window.set_inverted, "I", checkable=True)
        self._action(menu, "Reset &view", window.reset_view, "Home")
        menu.addSeparator()
        self._action(menu, "Reset &window/level", window.levels_panel.reset, "W")
        toggle = window.heat_map_controls.toggle
        self.heat_map_action = self._action(menu, "&Heat map", toggle.setChecked, "C", checkable=True)
        toggle.toggled.connect(self.heat_map_action.setChecked)
        self._action(menu, "&Previous image", lambda: window.thumbnails.step(-1), "PgUp")
        self._action(menu, "&Next image", lambda: window.thumbnails.step(1), "PgDown")
        menu.addSeparator()
        for dock in (window.findings_dock, window.levels_dock, window.tags_dock, window.strip_dock):
            menu.addAction(dock.toggleViewAction())

    def _build_model_menu(self) -> None:
        window = self._window
        self.model_menu = window.menuBar().addMenu("&Model")
        self.model_menu.aboutToShow.connect(self._fill_models)
        self._models_end = self.model_menu.addSeparator()
        device_menu = self.model_menu.addMenu("Device")
        group = QActionGroup(window)
        for device in DEVICE_CHOICES:
            action = device_menu.addAction(DEVICE_LABELS.get(device, device))
            action.setCheckable(True)
            action.setChecked(device == window.settings.device)
            action.triggered.connect(lambda _=False, d=device: window.choose_device(d))
            group.addAction(action)
        from xrayviewer.gui.wizard.menu import TrainingMenu  # Train a model…, Recalibrate…, Training runs

        self.training = TrainingMenu(window, self.model_menu, self._action)

    def _build_toolbar(self) -> None:
        toolbar = self._window.addToolBar("Tools")
        toolbar.setObjectName("tools")
        toolbar.setMovable(False)
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        for action in (
            self.open_action,
            None,
            self.fit_action,
            None,
            self.rotate_action,
            self.flip_h_action,
            self.flip_v_action,
            self.invert_action,
            None,
            self.heat_map_action,
            None,
            self.export_action,
        ):
            toolbar.addSeparator() if action is None else toolbar.addAction(action)

    def _fill_recent(self) -> None:
        window = self._window
        self.recent_menu.clear()
        for path in window.settings.recent_files:
            self.recent_menu.addAction(path, lambda p=path: window.open_paths([p]))
        if self.recent_menu.isEmpty():
            self.recent_menu.addAction("(none)").setEnabled(False)

    def _fill_models(self) -> None:
        """Model menu: one checkable "run this model" action per installed bundle, in search order."""
        window = self._window
        for action in self._model_actions:
            self.model_menu.removeAction(action)
            action.deleteLater()
        try:
            bundles = window.list_bundles()
        except ModelUnavailableError as exc:
            window.show_error(str(exc))
            bundles = []
        off = window.settings.models_off(bundles)
        self._model_actions = []
        for bundle in bundles:
            weak = is_weak(bundle.card)
            label = f"{bundle.name} v{bundle.card.version}" + (WEAK_LABEL if weak else "")
            action = QAction(label, self.model_menu)
            action.setCheckable(True)
            action.setChecked(bundle.name not in off)
            action.setToolTip(f"Run {bundle.name} on every image")
            action.toggled.connect(lambda on, n=bundle.name, w=weak: window.set_model_enabled(n, on, weak=w))
            self._model_actions.append(action)
        if not bundles:
            placeholder = QAction("(no model installed)", self.model_menu)
            placeholder.setEnabled(False)
            self._model_actions.append(placeholder)
        self.model_menu.insertActions(self._models_end, self._model_actions)
