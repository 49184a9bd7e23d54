"""The main window: image canvas in the middle, window/level and findings docks, tags, folder strip.

It wires widgets (state in, signals out) to the background worker and owns the "current image" state:
which request is current, the displayed window and inversion, the heat map shown. Every enabled model
bundle runs on each image; the findings sidebar has one section per bundle.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QSettings, Qt, QTimer, Signal
from PySide6.QtGui import (
    QAction,
    QActionGroup,
    QCloseEvent,
    QDragEnterEvent,
    QDropEvent,
    QImage,
    QKeySequence,
)
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMenu,
    QVBoxLayout,
    QWidget,
)

from xrayviewer.engine.applicability import population_warnings
from xrayviewer.gui.cam_controls import CamControls, faint_note
from xrayviewer.gui.export import export_png
from xrayviewer.gui.image_view import ImageView
from xrayviewer.gui.metadata_panel import MetadataPanel
from xrayviewer.gui.results_panel import ResultsPanel, display_order, score_text
from xrayviewer.gui.settings import DEVICES, ViewerSettings
from xrayviewer.gui.thumbnails import ThumbnailStrip
from xrayviewer.gui.window_level import WindowLevelPanel
from xrayviewer.gui.workers import (
    ALL_TURNED_OFF,
    BundleLister,
    LoadedImage,
    ModelUnavailableError,
    PredictorFactory,
    WorkerThread,
    installed_bundles,
    load_predictor,
)
from xrayviewer.imaging import lut
from xrayviewer.imaging.files import find_images, open_dialog_filter
from xrayviewer.imaging.image import Window

OPEN_FILTER = open_dialog_filter()
ERROR_SECONDS = 10


class MainWindow(QMainWindow):
    """XRayViewer's main window."""

    imageShown = Signal(str)  # path of the image now displayed
    resultsShown = Signal(object)  # a Prediction now in the sidebar (one per model bundle)
    findingsComplete = Signal()  # every enabled model has answered for the image shown
    overlayShown = Signal(str, str)  # model bundle and finding whose heat map is now on the image
    errorShown = Signal(str)

    def __init__(
        self,
        settings: QSettings | None = None,
        predictor_factory: PredictorFactory = load_predictor,
        bundle_lister: BundleLister = installed_bundles,
    ) -> None:
        super().__init__()
        self.setWindowTitle("XRayViewer")
        self.setAcceptDrops(True)
        self.settings = ViewerSettings(settings)
        self.loaded: LoadedImage | None = None
        self.invert_display = False  # user inversion on top of the image's own (MONOCHROME1)
        self.window_override: Window | None = None  # None = the image's default (header window or VOI LUT)
        self._request = 0
        self._shown_request = 0
        self._overlay: tuple[str, str] | None = None  # (model, finding) of the heat map on the image
        self._overlay_pinned = False  # the user chose the heat map: no automatic change for this image
        self._findings_complete = False  # every model answered for the image shown
        self._list_bundles = bundle_lister
        self._model_actions: list[QAction] = []

        self.view = ImageView()
        self.error_banner = QLabel()
        self.error_banner.setObjectName("errorBanner")
        self.error_banner.setWordWrap(True)
        self.error_banner.hide()
        self._error_timer = QTimer(self, singleShot=True, interval=ERROR_SECONDS * 1000)
        self._error_timer.timeout.connect(self.error_banner.hide)
        centre = QWidget()
        box = QVBoxLayout(centre)
        box.setContentsMargins(0, 0, 0, 0)
        box.setSpacing(0)
        box.addWidget(self.error_banner)
        box.addWidget(self.view, 1)
        self.setCentralWidget(centre)

        self.levels = WindowLevelPanel()
        self.results = ResultsPanel()
        self.cam = CamControls()
        self.cam.set_opacity(self.settings.overlay_opacity)
        self.view.set_overlay_opacity(self.cam.opacity_value())
        self.metadata = MetadataPanel()
        self.thumbnails = ThumbnailStrip()
        findings = QWidget()
        findings_box = QVBoxLayout(findings)
        findings_box.setContentsMargins(0, 0, 0, 0)
        findings_box.addWidget(self.results)
        findings_box.addWidget(self.cam)
        findings_box.addStretch(1)
        self.findings_dock = self._dock("Second opinion", findings, Qt.DockWidgetArea.RightDockWidgetArea)
        self.levels_dock = self._dock("Window / level", self.levels, Qt.DockWidgetArea.RightDockWidgetArea)
        self.tags_dock = self._dock("DICOM tags", self.metadata, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.strip_dock = self._dock("Folder", self.thumbnails, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.strip_dock.hide()
        self.resizeDocks([self.findings_dock], [330], Qt.Orientation.Horizontal)
        self.resizeDocks([self.tags_dock], [260], Qt.Orientation.Horizontal)
        # findings of every model first; window/level needs only its controls and histogram
        self.resizeDocks([self.findings_dock, self.levels_dock], [620, 260], Qt.Orientation.Vertical)

        self.pixel_label = QLabel()
        self.zoom_label = QLabel()
        self.statusBar().addPermanentWidget(self.pixel_label)
        self.statusBar().addPermanentWidget(self.zoom_label)

        self._render_timer = QTimer(self, singleShot=True, interval=0)  # coalesces W/L changes
        self._render_timer.timeout.connect(self._render)
        self._connect_widgets()
        self.worker = WorkerThread(predictor_factory, bundle_lister, self)
        self._connect_worker()
        self.worker.configure(self.settings.device)
        self.worker.set_disabled(self.settings.disabled_models)
        self._build_actions()
        if self.settings.geometry is not None:
            self.restoreGeometry(self.settings.geometry)
        else:
            self.resize(1500, 950)
        if self.settings.window_state is not None:
            self.restoreState(self.settings.window_state)

    # -- construction ------------------------------------------------------------------------------
    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(title.replace(" ", "").replace("/", ""))
        dock.setWidget(widget)
        dock.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetMovable | QDockWidget.DockWidgetFeature.DockWidgetClosable
        )
        self.addDockWidget(area, dock)
        return dock

    def _connect_widgets(self) -> None:
        self.view.cursorMoved.connect(self._show_pixel)
        self.view.windowDragged.connect(self.levels.drag)
        self.view.zoomChanged.connect(lambda z: self.zoom_label.setText(f"zoom {z:.0%}"))
        self.levels.windowChanged.connect(self._window_changed)
        self.cam.visibilityChanged.connect(self.view.set_overlay_visible)
        self.cam.opacityChanged.connect(self._opacity_changed)
        self.cam.findingChosen.connect(self._finding_chosen)
        self.thumbnails.fileActivated.connect(self._thumbnail_chosen)

    def _connect_worker(self) -> None:
        w = self.worker.worker
        w.imageReady.connect(self._image_ready)
        w.imageFailed.connect(self._image_failed)
        w.applicabilityChecked.connect(self._applicability_checked)
        w.inferenceStarted.connect(self._inference_started)
        w.predictionReady.connect(self._prediction_ready)
        w.modelFailed.connect(self._model_failed)
        w.predictionFailed.connect(self._prediction_failed)
        w.inferenceFinished.connect(self._inference_finished)
        w.overlayReady.connect(self._overlay_ready)
        w.legendReady.connect(self.cam.set_legend)

    def _action(
        self,
        menu: QMenu,
        text: str,
        slot,
        shortcut: str | QKeySequence.StandardKey = "",
        tip: str = "",
        checkable: bool = False,
    ) -> QAction:
        action = QAction(text, self)
        if shortcut:
            action.setShortcut(QKeySequence(shortcut))
        action.setToolTip(f"{tip or text} ({action.shortcut().toString()})" if shortcut else tip or text)
        action.setCheckable(checkable)
        if checkable:
            action.toggled.connect(slot)
        else:  # not ``triggered.connect(slot)``: Qt would pass ``checked`` into the slot's first parameter
            action.triggered.connect(lambda: slot())
        menu.addAction(action)
        self.addAction(action)
        return action

    def _build_actions(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self.open_action = self._action(file_menu, "&Open…", self.open_dialog, QKeySequence.StandardKey.Open)
        self._action(file_menu, "Open &folder…", self.open_folder_dialog, "Ctrl+Shift+O")
        self.recent_menu = file_menu.addMenu("Open &recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        file_menu.addSeparator()
        self.export_action = self._action(
            file_menu,
            "&Export view as PNG…",
            self.export_dialog,
            "Ctrl+E",
            tip="Export the image as shown, with the heat map if shown and the findings",
        )
        self._action(
            file_menu,
            "Export &image only as PNG…",
            lambda: self.export_dialog(annotated=False),
            "Ctrl+Shift+E",
            tip="Export the image as shown, without heat map or findings",
        )
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", self.close, QKeySequence.StandardKey.Quit)

        view_menu = self.menuBar().addMenu("&View")
        self.fit_action = self._action(view_menu, "&Fit to window", self.view.fit_to_window, "F")
        self._action(view_menu, "&Actual size (1:1)", self.view.actual_size, "1")
        self._action(view_menu, "Zoom &in", lambda: self.view.zoom_by(1), "+")
        self._action(view_menu, "Zoom &out", lambda: self.view.zoom_by(-1), "-")
        view_menu.addSeparator()
        self.rotate_action = self._action(view_menu, "&Rotate 90° clockwise", self.view.rotate_90, "R")
        self._action(view_menu, "Rotate 90° counter-clockwise", lambda: self.view.rotate_90(False), "Shift+R")
        self.flip_h_action = self._action(view_menu, "Flip &horizontal", self.view.flip_horizontal, "H")
        self.flip_v_action = self._action(view_menu, "Flip &vertical", self.view.flip_vertical, "V")
        self.invert_action = self._action(view_menu, "&Invert", self._invert_toggled, "I", checkable=True)
        self._action(view_menu, "Reset &view", self.reset_view, "Home")
        view_menu.addSeparator()
        self._action(view_menu, "Reset &window/level", self.levels.reset, "W")
        self.cam_action = self._action(
            view_menu, "&Heat map", self.cam.toggle.setChecked, "C", checkable=True
        )
        self.cam.toggle.toggled.connect(self.cam_action.setChecked)
        self._action(view_menu, "&Previous image", lambda: self.thumbnails.step(-1), "PgUp")
        self._action(view_menu, "&Next image", lambda: self.thumbnails.step(1), "PgDown")
        view_menu.addSeparator()
        for dock in (self.findings_dock, self.levels_dock, self.tags_dock, self.strip_dock):
            view_menu.addAction(dock.toggleViewAction())

        self.model_menu = self.menuBar().addMenu("&Model")
        self.model_menu.aboutToShow.connect(self._fill_models)
        self._models_end = self.model_menu.addSeparator()
        device_menu = self.model_menu.addMenu("Device")
        group = QActionGroup(self)
        for device in DEVICES:
            action = device_menu.addAction(
                {"auto": "Auto (CUDA if present)", "cpu": "CPU", "cuda": "CUDA"}[device]
            )
            action.setCheckable(True)
            action.setChecked(device == self.settings.device)
            action.triggered.connect(lambda _=False, d=device: self._choose_device(d))
            group.addAction(action)

        toolbar = self.addToolBar("Tools")
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
            self.cam_action,
            None,
            self.export_action,
        ):
            toolbar.addSeparator() if action is None else toolbar.addAction(action)

    # -- opening ------------------------------------------------------------------------------------
    def open_paths(self, paths: list[str]) -> None:
        """Open files and folders: several images fill the folder strip, the first one is shown."""
        files = find_images(paths)
        if not files:
            self.show_error("No image found in " + ", ".join(Path(p).name for p in paths))
            return
        if len(files) > 1 or any(Path(p).is_dir() for p in paths):
            self.thumbnails.set_files(files)
            self.strip_dock.show()
        self.open_file(str(files[0]))

    def open_file(self, path: str) -> None:
        """Decode ``path`` in the background; the current image stays until the new one is ready."""
        self._request = self.worker.request_open(path)
        self.statusBar().showMessage(f"Opening {Path(path).name}…")

    def _thumbnail_chosen(self, path: str) -> None:
        if (
            self.loaded is None or Path(path) != self.loaded.path
        ):  # a click on the shown image keeps its state
            self.open_file(path)

    def open_dialog(self) -> None:
        """File ▸ Open."""
        files, _ = QFileDialog.getOpenFileNames(self, "Open images", self.settings.last_folder, OPEN_FILTER)
        if files:
            self.open_paths(files)

    def open_folder_dialog(self) -> None:
        """File ▸ Open folder."""
        folder = QFileDialog.getExistingDirectory(self, "Open folder", self.settings.last_folder)
        if folder:
            self.open_paths([folder])

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for path in self.settings.recent_files:
            self.recent_menu.addAction(path, lambda p=path: self.open_paths([p]))
        if self.recent_menu.isEmpty():
            self.recent_menu.addAction("(none)").setEnabled(False)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        """Accept dragged files and folders."""
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        """Open dropped files and folders."""
        paths = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        if paths:
            self.open_paths(paths)
            event.acceptProposedAction()

    # -- worker answers (stale request ids are dropped) --------------------------------------------
    def _current(self, request_id: int) -> bool:
        return request_id == self._request == self._shown_request and self.loaded is not None

    def _image_ready(self, request_id: int, loaded: LoadedImage) -> None:
        if request_id != self._request:
            return
        self._shown_request = request_id
        self.loaded, self._overlay, self._overlay_pinned = loaded, None, False
        self._findings_complete = False
        self.window_override = None
        self.invert_display = False
        self.invert_action.setChecked(False)
        self.view.set_picture(loaded.picture)
        self._clear_overlay()
        self.levels.set_inverted(loaded.image.invert)
        self.levels.set_image_state(loaded.levels)
        self.metadata.set_image(loaded.image)
        self.cam.set_findings([])
        self.results.show_busy()
        self.error_banner.hide()
        self.thumbnails.select_path(loaded.path)
        self.settings.add_recent(str(loaded.path))
        self.settings.last_folder = str(loaded.path.parent)
        rows, cols = loaded.image.shape
        self.setWindowTitle(f"{loaded.path.name} — XRayViewer")
        self.statusBar().showMessage(f"{loaded.path.name}: {cols} × {rows} {loaded.image.format}", 5000)
        for warning in loaded.image.warnings:
            self.statusBar().showMessage(warning, 8000)
        self.imageShown.emit(str(loaded.path))

    def _image_failed(self, request_id: int, message: str) -> None:
        if request_id != self._request:
            return
        self.show_error(message)
        if self.loaded is None:
            return
        if not self._findings_complete:  # the shown image's inference was superseded: finish it
            self._rerun(self._unanswered() if self.results.sections else None)
        else:  # the shown image's results stay current (e.g. for heat maps of other findings)
            self._request = self._shown_request
            self.worker.resume(self._shown_request)

    def _unanswered(self) -> list[str]:
        return [name for name, section in self.results.sections.items() if not section.answered]

    def _rerun(self, only: list[str] | None) -> None:
        """Run the models again on the image shown (only those named in ``only``; None = all)."""
        assert self.loaded is not None
        self._request = self._shown_request = self.worker.request_prediction(
            self.loaded.image, only, keep_overlay=self._overlay_pinned
        )

    def _applicability_checked(self, request_id: int, verdict: Any) -> None:
        if self._current(request_id):
            self.results.set_warnings(verdict.warnings)

    def _inference_started(self, request_id: int, cards: list[Any]) -> None:
        if self._current(request_id):
            assert self.loaded is not None
            image = self.loaded.image
            self.results.plan(cards, {card.name: population_warnings(image, card) for card in cards})

    def _prediction_ready(self, request_id: int, name: str, prediction: Any, card: Any) -> None:
        if not self._current(request_id) or name not in self.results.sections:
            return
        self.results.show_prediction(name, prediction)
        self.cam.set_findings(self._cam_findings(), self._combo_choice())
        self.resultsShown.emit(prediction)

    def _combo_choice(self) -> tuple[str, str] | None:
        """The heat map chosen by the user, else the default one (shown next by the worker)."""
        from xrayviewer.engine.cam import explained_finding  # loaded by the worker before any prediction

        return self._overlay if self._overlay_pinned else explained_finding(self.results.predictions())

    def _cam_findings(self) -> list[tuple[str, str]]:
        return [(p.model, c) for p in self.results.predictions() for c in p.classes]

    def _model_failed(self, request_id: int, name: str, message: str) -> None:
        if self._current(request_id):
            self.results.show_model_error(name, message)

    def _prediction_failed(self, request_id: int, message: str) -> None:
        if request_id == self._request:
            self.results.show_message(message)
            self.cam.set_findings([])
            self._findings_complete = True

    def _inference_finished(self, request_id: int) -> None:
        if self._current(request_id):
            self._findings_complete = True
            self.findingsComplete.emit()

    def _clear_overlay(self) -> None:
        self.view.set_overlay(None)
        self.cam.set_note("")

    def _overlay_ready(self, request_id: int, model: str, finding: str, overlay: QImage) -> None:
        if request_id != self._request or self.loaded is None or model not in self.results.sections:
            return
        self.view.set_overlay(overlay)
        self.view.set_overlay_visible(self.cam.toggle.isChecked())
        self._overlay = (model, finding)
        self.cam.select(model, finding)
        self.cam.set_note(faint_note(self.predictions.get(model), finding))
        self.overlayShown.emit(model, finding)

    def show_error(self, message: str) -> None:
        """Show a problem above the image (not modal); the current image stays."""
        self.error_banner.setText(message)
        self.error_banner.show()
        self._error_timer.start()
        self.statusBar().showMessage(message, ERROR_SECONDS * 1000)
        self.errorShown.emit(message)

    # -- display state -----------------------------------------------------------------------------
    def displayed_window(self) -> Window | None:
        """The window used for rendering (None = the image's default, which may be its VOI LUT)."""
        return self.window_override

    def _window_changed(self, window: Window) -> None:
        if self.loaded is None:
            return
        self.window_override = None if window == self.loaded.levels.default else window
        self._render_timer.start()

    def _invert_toggled(self, on: bool) -> None:
        self.invert_display = on
        if self.loaded is not None:
            self.levels.set_inverted(self.loaded.image.invert != on)
            self._render_timer.start()

    def displayed_pixels(self) -> np.ndarray:
        """The uint8 picture for the current window and inversion (rendered by ``imaging.lut``)."""
        assert self.loaded is not None
        image = self.loaded.image
        return lut.to_uint8(lut.render(image, self.window_override, image.invert != self.invert_display))

    def _render(self) -> None:
        if self.loaded is not None:
            self.view.set_picture(self.displayed_pixels(), keep_view=True)

    def reset_view(self) -> None:
        """Undo zoom, pan, rotation, flips and inversion."""
        self.invert_action.setChecked(False)
        self.view.reset_view()

    def _show_pixel(self, row: int, col: int) -> None:
        if self.loaded is None or row < 0:
            self.pixel_label.clear()
            return
        value = float(self.loaded.image.pixels[row, col])
        unit = "" if self.loaded.image.format != "DICOM" else " (modality)"
        self.pixel_label.setText(f"x {col:>4}  y {row:>4}   value {value:g}{unit}")

    def _opacity_changed(self, opacity: float) -> None:
        self.view.set_overlay_opacity(opacity)
        self.settings.overlay_opacity = opacity

    def _finding_chosen(self, model: str, finding: str) -> None:
        if self.results.predictions() and (model, finding) != self._overlay:
            self._overlay_pinned = True
            self.worker.request_overlay(self._request, model, finding)

    @property
    def predictions(self) -> dict[str, Any]:
        """Model bundle name → the Prediction in the sidebar for the image shown, in sidebar order."""
        return {p.model: p for p in self.results.predictions()}

    # -- model choice --------------------------------------------------------------------------------
    def _fill_models(self) -> None:
        """Model menu: one checkable "run this model" action per installed bundle, in sidebar order."""
        for action in self._model_actions:
            self.model_menu.removeAction(action)
            action.deleteLater()
        try:
            bundles = self._list_bundles()
        except ModelUnavailableError as exc:
            self.show_error(str(exc))
            bundles = []
        disabled = set(self.settings.disabled_models)
        self._model_actions = []
        for bundle in bundles:
            action = QAction(f"{bundle.name} v{bundle.card.version}", self.model_menu)
            action.setCheckable(True)
            action.setChecked(bundle.name not in disabled)
            action.setToolTip(f"Run {bundle.name} on every image")
            action.toggled.connect(lambda on, n=bundle.name: self.set_model_enabled(n, on))
            self._model_actions.append(action)
        if not bundles:
            placeholder = QAction("(no model installed)", self.model_menu)
            placeholder.setEnabled(False)
            self._model_actions.append(placeholder)
        self.model_menu.insertActions(self._models_end, self._model_actions)

    def set_model_enabled(self, name: str, enabled: bool) -> None:
        """Run model bundle ``name`` on every image, or not (remembered). Turning one off removes its
        section and heat map and re-runs nothing; turning one on runs only that model on the image shown."""
        disabled = set(self.settings.disabled_models)
        (disabled.discard if enabled else disabled.add)(name)
        self.settings.disabled_models = sorted(disabled)
        self.worker.set_disabled(disabled)
        if self.loaded is None or self._request != self._shown_request:
            return  # nothing shown, or an image is being opened: its run already follows the new choice
        if enabled:
            self._rerun([name, *self._unanswered()])
            return
        self.results.remove_model(name)
        self.cam.set_findings(self._cam_findings(), self._combo_choice())
        if self._overlay is not None and self._overlay[0] == name:  # back to the default heat map
            self._clear_overlay()
            self._overlay, self._overlay_pinned = None, False
            from xrayviewer.engine.cam import explained_finding

            choice = explained_finding(self.results.predictions())
            if choice is not None:
                self.worker.request_overlay(self._request, *choice, chosen=False)
        if not self.results.sections:
            self.results.show_message(ALL_TURNED_OFF)
            self.cam.set_findings([])

    def _choose_device(self, device: str) -> None:
        self.settings.device = device
        self.worker.configure(device)
        if self.loaded is not None and self._request == self._shown_request:
            self._overlay, self._overlay_pinned = None, False
            self._clear_overlay()
            self.cam.set_findings([])
            self.results.show_busy()
            self._rerun(None)

    # -- export and closing ----------------------------------------------------------------------------
    def findings_legend(self) -> list[str]:
        """Text lines describing every model's findings on the image shown, for the exported picture."""
        predictions = self.results.predictions()
        if not predictions:
            return []
        lines = ["Second opinion, not a diagnosis"]
        for p in predictions:
            lines.append(f"{p.model} v{p.version}")
            lines.extend(f"  warning: {w}" for w in self.results.sections[p.model].population_warnings)
            lines.extend(f"  {name}: {score_text(p, name)}" for name in display_order(p))
        if self.view.overlay_item.isVisible() and self._overlay is not None:
            model, finding = self._overlay
            from xrayviewer.engine.cam import drawn_faint

            faint = drawn_faint(self.predictions.get(model), finding)
            lines.append(f"heat map: {model}: {finding}" + (" (faint: below its threshold)" if faint else ""))
        return lines

    def export_dialog(self, annotated: bool = True) -> None:
        """File ▸ Export: the view as PNG, annotated (heat map if shown, findings legend) or image only."""
        if self.loaded is None:
            self.show_error("Nothing to export: open an image first.")
            return
        default = str(Path(self.settings.last_folder) / (self.loaded.path.stem + "_view.png"))
        path, _ = QFileDialog.getSaveFileName(self, "Export view", default, "PNG image (*.png)")
        if path:
            try:
                legend = self.findings_legend() if annotated else []
                saved = export_png(path, self.view, annotated, legend)
            except OSError as exc:
                self.show_error(str(exc))
                return
            self.statusBar().showMessage(f"Saved {saved}", 5000)

    def closeEvent(self, event: QCloseEvent) -> None:
        """Save settings and stop the worker (waits for the step in progress, then quits)."""
        self.settings.geometry = self.saveGeometry()
        self.settings.window_state = self.saveState()
        self.settings.store.sync()
        self.worker.stop()
        super().closeEvent(event)
