"""The main window: image canvas in the middle, window/level and findings docks, tags, folder strip.

It wires widgets (state in, signals out) to the background worker: each answer updates the
``ReadingSession`` (the film being read, its policy) and the widgets then render what it holds. Every
enabled model bundle runs on each image the applicability check lets through (or that the user asks to
score anyway); the findings sidebar has one section per bundle, folded for models outside the film's
population. Menus, toolbar and shortcuts are in ``gui.actions``.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent, QImage
from PySide6.QtWidgets import QDockWidget, QFileDialog, QLabel, QMainWindow, QVBoxLayout, QWidget

from xrayviewer.gui.actions import WindowMenus
from xrayviewer.gui.crash import CrashContext
from xrayviewer.gui.export import export_png
from xrayviewer.gui.heat_map_controls import HeatMapControls, faint_note
from xrayviewer.gui.image_view import ImageView
from xrayviewer.gui.metadata_panel import MetadataPanel
from xrayviewer.gui.results_panel import ResultsPanel, display_order, score_text
from xrayviewer.gui.session import OUTSIDE, ReadingSession
from xrayviewer.gui.settings import ViewerSettings
from xrayviewer.gui.thumbnails import ThumbnailStrip
from xrayviewer.gui.window_level import WindowLevelPanel
from xrayviewer.gui.workers import (
    ALL_TURNED_OFF,
    Background,
    BundleLister,
    EngineAccess,
    GateLoader,
    LoadedImage,
    ModelUnavailableError,
    PredictorFactory,
    installed_bundles,
    installed_gate,
    load_predictor,
)
from xrayviewer.imaging import lut
from xrayviewer.imaging.files import find_images, open_dialog_filter
from xrayviewer.imaging.image import Window
from xrayviewer.imaging.metadata import read_identifying_fields

if TYPE_CHECKING:
    from xrayviewer.engine.applicability import Applicability
    from xrayviewer.engine.bundle import Bundle, ModelCard
    from xrayviewer.engine.predictor import Prediction

OPEN_FILTER = open_dialog_filter()
ERROR_SECONDS = 10


class MainWindow(QMainWindow):
    """XRayViewer's main window."""

    imageShown = Signal(str)  # path of the image now displayed
    resultsShown = Signal(object)  # a Prediction now in the sidebar (one per model bundle)
    findingsComplete = Signal()  # every enabled model has answered for the image shown
    heatMapShown = Signal(str, str)  # model bundle and finding whose heat map is now on the image
    errorShown = Signal(str)
    # nothing more will change for the film asked for last: its findings are complete, it has none (no
    # model, a refusal, an error), or it could not be opened and the film shown (if any) is complete
    filmSettled = Signal()

    def __init__(
        self,
        settings: QSettings | None = None,
        predictor_factory: PredictorFactory = load_predictor,
        bundle_lister: BundleLister = installed_bundles,
        gate_loader: GateLoader = installed_gate,
    ) -> None:
        super().__init__()
        self.setWindowTitle("XRayViewer")
        self.setAcceptDrops(True)
        self.settings = ViewerSettings(settings)
        self.session = ReadingSession()
        self.opening: Path | None = None  # the file being opened, until it is shown or fails
        self._known_files: list[Path] = []  # the folder strip's files, for crash reports to leave out
        self.list_bundles = bundle_lister  # for the Model menu

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

        self.levels_panel = WindowLevelPanel()
        self.results = ResultsPanel()
        self.heat_map_controls = HeatMapControls()
        self.heat_map_controls.set_opacity(self.settings.heat_map_opacity)
        self.view.set_overlay_opacity(self.heat_map_controls.opacity_value())
        self.metadata = MetadataPanel()
        self.thumbnails = ThumbnailStrip()
        findings = QWidget()
        findings_box = QVBoxLayout(findings)
        findings_box.setContentsMargins(0, 0, 0, 0)
        findings_box.addWidget(self.results)
        findings_box.addWidget(self.heat_map_controls)
        findings_box.addStretch(1)
        area = Qt.DockWidgetArea
        self.findings_dock = self._dock("Second opinion", findings, area.RightDockWidgetArea)
        self.levels_dock = self._dock("Window / level", self.levels_panel, area.RightDockWidgetArea)
        self.tags_dock = self._dock("DICOM tags", self.metadata, area.LeftDockWidgetArea)
        self.strip_dock = self._dock("Folder", self.thumbnails, area.BottomDockWidgetArea)
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
        engine = EngineAccess(predictor_factory, bundle_lister, gate_loader)
        self.background = Background(self.session, engine, self)
        self._connect_worker()
        self.background.configure(self.settings.device)
        self.background.set_disabled(self.settings.models_off(self._installed_bundles()))
        self.menus = WindowMenus(self)
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
        self.view.windowDragged.connect(self.levels_panel.drag)
        self.view.zoomChanged.connect(lambda z: self.zoom_label.setText(f"zoom {z:.0%}"))
        self.levels_panel.windowChanged.connect(self._window_changed)
        self.heat_map_controls.visibilityChanged.connect(self.view.set_overlay_visible)
        self.heat_map_controls.opacityChanged.connect(self._opacity_changed)
        self.heat_map_controls.findingChosen.connect(self._finding_chosen)
        self.thumbnails.fileActivated.connect(self._thumbnail_chosen)
        self.results.scoreAnywayRequested.connect(self.score_anyway)
        self.results.foldToggled.connect(self.set_section_expanded)

    def _connect_worker(self) -> None:
        w = self.background.worker
        w.imageReady.connect(self._image_ready)
        w.imageFailed.connect(self._image_failed)
        w.applicabilityChecked.connect(self._applicability_checked)
        w.inferenceStarted.connect(self._inference_started)
        w.predictionReady.connect(self._prediction_ready)
        w.modelFailed.connect(self._model_failed)
        w.predictionFailed.connect(self._prediction_failed)
        w.inferenceFinished.connect(self._inference_finished)
        w.heatMapReady.connect(self._heat_map_ready)
        w.legendReady.connect(self.heat_map_controls.set_legend)

    # -- opening ------------------------------------------------------------------------------------
    def open_paths(self, paths: list[str]) -> None:
        """Open files and folders: several images fill the folder strip, the first one is shown."""
        files = find_images(paths)
        if not files:
            self.show_error("No image found in " + ", ".join(Path(p).name for p in paths))
            self._settle_if_idle()
            return
        if len(files) > 1 or any(os.path.isdir(p) for p in paths):  # never raises (a path too long...)
            self._known_files = [Path(f) for f in files]
            self.thumbnails.set_files(files)
            self.strip_dock.show()
        self.open_file(str(files[0]))

    def open_file(self, path: str) -> None:
        """Decode ``path`` in the background; the current image stays until the new one is ready."""
        self.opening = Path(path)
        self.background.request_open(self.session.new_request(), path)
        self.statusBar().showMessage(f"Opening {Path(path).name}…")

    def _thumbnail_chosen(self, path: str) -> None:
        loaded = self.session.loaded
        if loaded is None or Path(path) != loaded.path:
            self.open_file(path)
        elif self.session.request != self.session.shown_request:  # back to the film shown while another
            self.opening = None  # was being opened: that one is abandoned, this one keeps its state
            self.statusBar().clearMessage()
            self._back_to_shown()
            self._settle_if_idle()

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

    def crash_context(self) -> CrashContext:
        """What a crash report must not reveal (``gui.crash``): the film shown, the one being opened, the
        folder's files, and the identifying header values of the two films (read again from their files).
        Reads plain Python state only: safe from any thread."""
        loaded, opening = self.session.loaded, self.opening
        films = [(role, path) for role, path in (("shown", loaded.path if loaded else None),
                                                  ("being opened", opening)) if path is not None]
        values: list[str] = []
        for _, path in films:
            with contextlib.suppress(OSError):
                if stat.S_ISREG(os.stat(path).st_mode):  # never a FIFO or a device: reading could block
                    values.extend(read_identifying_fields(path).values())
        paths = [path for _, path in films] + list(self._known_files)
        return CrashContext(tuple(paths), tuple(v for v in values if v), tuple(films))

    # -- worker answers (stale request ids are dropped) --------------------------------------------
    @property
    def loaded(self) -> LoadedImage | None:
        """The image shown (``session.loaded``)."""
        return self.session.loaded

    @property
    def predictions(self) -> dict[str, Prediction]:
        """Model bundle name → the Prediction in the sidebar for the image shown, in sidebar order."""
        return dict(self.session.predictions)

    def _image_ready(self, request_id: int, loaded: LoadedImage) -> None:
        if request_id != self.session.request:
            return
        self.opening = None
        self.session.show_image(request_id, loaded)
        # what says which film this is, together, first: the picture, the title, the tags, the strip
        self.view.set_picture(loaded.picture)
        self.setWindowTitle(f"{loaded.path.name} — XRayViewer")
        self.metadata.set_image(loaded.image)
        self.thumbnails.select_path(loaded.path)
        self.menus.invert_action.setChecked(False)
        self._clear_heat_map()
        self.levels_panel.set_inverted(loaded.image.invert)
        self.levels_panel.set_image_state(loaded.levels)
        self.heat_map_controls.set_findings([])
        self.results.show_busy()
        self.error_banner.hide()
        self.settings.add_recent(str(loaded.path))
        self.settings.last_folder = str(loaded.path.parent)
        rows, cols = loaded.image.shape
        self.statusBar().showMessage(f"{loaded.path.name}: {cols} × {rows} {loaded.image.format}", 5000)
        for warning in loaded.image.warnings:
            self.statusBar().showMessage(warning, 8000)
        self.imageShown.emit(str(loaded.path))

    def _image_failed(self, request_id: int, message: str) -> None:
        session = self.session
        if request_id != session.request:
            return
        if self.opening is not None:
            self.thumbnails.mark_failed(self.opening, message)
        self.opening = None
        # the strip shows the film on screen again; PgUp/PgDn go on from the one that failed
        self.thumbnails.select_path(session.loaded.path if session.loaded else None, keep_cursor=True)
        self._back_to_shown()
        self.show_error(message)
        self._settle_if_idle()

    def _back_to_shown(self) -> None:
        """The film asked for last will not be shown (it failed, or the user went back): the film on screen
        is current again, its unfinished findings run again."""
        session = self.session
        if session.loaded is not None and not session.findings_complete:  # its inference was superseded
            self._rerun(session.unanswered() if session.models else None)
        else:  # its results stay current (e.g. for heat maps of other findings)
            session.request = session.shown_request

    def settled(self) -> bool:
        """Nothing is pending: no file being opened, and the film shown (if any) has all its findings."""
        session = self.session
        return session.request == session.shown_request and (session.loaded is None
                                                              or session.findings_complete)

    def _settle_if_idle(self) -> None:
        if self.settled():
            self.filmSettled.emit()

    def _rerun(self, only: list[str] | None, request_id: int | None = None) -> None:
        """Run the models again on the image shown (only those named in ``only``; None = all), also when
        it is refused if the user asked to score it anyway."""
        session = self.session
        assert session.loaded is not None
        request = session.rerun() if request_id is None else request_id
        self.background.request_prediction(request, session.loaded.image, only, session.scored_anyway)

    def score_anyway(self) -> None:
        """"Show findings anyway" on a refused film: run the models on it, for this film only."""
        session = self.session
        if session.loaded is None or not session.refused or session.request != session.shown_request:
            return
        self.results.show_busy()
        self._rerun(None, session.score_anyway())

    def _applicability_checked(self, request_id: int, verdict: Applicability, unchecked: tuple[str, ...],
                               ) -> None:
        if self.session.is_current(request_id):
            self.session.checked(verdict, unchecked)
            self.results.show_warnings(self.session.sidebar_warnings())

    def _inference_started(self, request_id: int, cards: list[ModelCard]) -> None:
        session = self.session
        if not session.is_current(request_id):
            return
        session.plan_models(cards)
        self.results.plan(cards)
        self._show_folding()
        self.results.show_warnings(session.sidebar_warnings())

    def _show_folding(self) -> None:
        session = self.session
        self.results.set_folding(session.outside, [name for name in session.models if session.folded(name)])

    def set_section_expanded(self, name: str, on: bool) -> None:
        """Unfold (or fold back) the section of a model outside the film's population: its scores, still
        greyed and not counted, and its findings offered for the heat map while unfolded."""
        session = self.session
        if name not in session.outside:
            return
        if session.set_expanded(name, on):  # its heat map was shown: the default one instead
            self._heat_map_back_to_default()
        self._show_folding()
        self._offer_heat_maps()

    def _prediction_ready(self, request_id: int, name: str, prediction: Prediction, card: ModelCard) -> None:
        if not self.session.is_current(request_id) or name not in self.session.models:
            return
        self.session.add_prediction(name, prediction)
        self.results.show_prediction(name, prediction)
        self._offer_heat_maps()
        self.resultsShown.emit(prediction)

    def _offer_heat_maps(self) -> None:
        """The heat-map choice: every finding of the sidebar, the session's choice selected."""
        self.heat_map_controls.set_findings(self.session.heat_map_findings(), self.session.heat_map_choice())

    def _model_failed(self, request_id: int, name: str, message: str) -> None:
        if self.session.is_current(request_id) and name in self.session.models:
            self.session.model_failed(name)
            self.results.show_model_error(name, message)

    def _prediction_failed(self, request_id: int, message: str) -> None:
        if request_id == self.session.request:
            refused = self.session.refused
            self._sidebar_message(message)
            if refused:  # the refusal, and the way to score the film anyway
                self.results.show_refusal(message)
            self.heat_map_controls.set_findings([])
            self.session.findings_complete = True
            self._settle_if_idle()

    def _inference_finished(self, request_id: int) -> None:
        if self.session.is_current(request_id):
            self.session.findings_complete = True
            self.findingsComplete.emit()
            self._settle_if_idle()

    def _sidebar_message(self, text: str) -> None:
        """No findings to show: the sidebar says why."""
        self.session.clear_findings()
        self.results.show_message(text)

    def _clear_heat_map(self) -> None:
        self.view.set_overlay(None)
        self.heat_map_controls.set_note("")

    def _heat_map_ready(self, request_id: int, model: str, finding: str, picture: QImage) -> None:
        session = self.session
        if (request_id != session.request or session.loaded is None or model not in session.models
                or session.folded(model)):  # folded back while its map was being drawn
            return
        self.view.set_overlay(picture)
        self.view.set_overlay_visible(self.heat_map_controls.toggle.isChecked())
        session.heat_map = (model, finding)
        self.heat_map_controls.select(model, finding)
        self.heat_map_controls.set_note(faint_note(session.predictions.get(model), finding))
        self.heatMapShown.emit(model, finding)

    def show_error(self, message: str) -> None:
        """Show a problem above the image (not modal); the current image stays."""
        self.error_banner.setText(message)
        self.error_banner.show()
        self._error_timer.start()
        self.statusBar().showMessage(message, ERROR_SECONDS * 1000)
        self.errorShown.emit(message)

    # -- display state -----------------------------------------------------------------------------
    def _window_changed(self, window: Window) -> None:
        if self.session.loaded is None:
            return
        self.session.set_window(window)
        self._render_timer.start()

    def set_inverted(self, on: bool) -> None:
        """View ▸ Invert: the user's inversion, on top of the image's own."""
        self.session.inverted = on
        if self.session.loaded is not None:
            self.levels_panel.set_inverted(self.session.display_inverted())
            self._render_timer.start()

    def displayed_pixels(self) -> np.ndarray:
        """The uint8 picture for the current window and inversion (rendered by ``imaging.lut``)."""
        assert self.session.loaded is not None
        image = self.session.loaded.image
        return lut.to_uint8(lut.render(image, self.session.window_override, self.session.display_inverted()))

    def _render(self) -> None:
        if self.session.loaded is not None:
            self.view.set_picture(self.displayed_pixels(), keep_view=True)

    def reset_view(self) -> None:
        """Undo zoom, pan, rotation, flips and inversion."""
        self.menus.invert_action.setChecked(False)
        self.view.reset_view()

    def _show_pixel(self, row: int, col: int) -> None:
        loaded = self.session.loaded
        if loaded is None or row < 0:
            self.pixel_label.clear()
            return
        value = float(loaded.image.pixels[row, col])
        unit = "" if loaded.image.format != "DICOM" else " (modality)"
        self.pixel_label.setText(f"x {col:>4}  y {row:>4}   value {value:g}{unit}")

    def _opacity_changed(self, opacity: float) -> None:
        self.view.set_overlay_opacity(opacity)
        self.settings.heat_map_opacity = opacity

    def _finding_chosen(self, model: str, finding: str) -> None:
        if self.session.choose_heat_map(model, finding):
            self.background.request_heat_map(self.session.request, model, finding)

    # -- model choice --------------------------------------------------------------------------------
    def _installed_bundles(self) -> list[Bundle]:
        try:
            return self.list_bundles()
        except ModelUnavailableError:
            return []  # the Model menu and the first run say so

    def set_model_enabled(self, name: str, enabled: bool, weak: bool = False) -> None:
        """Run model bundle ``name`` on every image, or not (remembered; ``weak``: a weak bundle, off until
        turned on). Turning one off removes its section and heat map and re-runs nothing; turning one on runs
        only that model on the image shown."""
        session = self.session
        self.settings.turn_model(name, enabled, weak)
        self.background.set_disabled(self.settings.models_off(self._installed_bundles()))
        if session.loaded is None or session.request != session.shown_request or session.refused:
            return  # nothing shown, an image being opened or a refusal: the next run follows the choice
        if enabled:
            self._rerun([name, *session.unanswered()])
            return
        session.remove_model(name)
        self.results.remove_model(name)
        self.results.show_warnings(session.sidebar_warnings())  # shared by fewer models now
        self._offer_heat_maps()
        if session.heat_map is not None and session.heat_map[0] == name:
            session.drop_heat_map()
            self._heat_map_back_to_default()
        if not session.models:
            self._sidebar_message(ALL_TURNED_OFF)
            self.heat_map_controls.set_findings([])

    def _heat_map_back_to_default(self) -> None:
        """The heat map on the image was dropped (its model turned off or folded): draw the default one."""
        self._clear_heat_map()
        choice = self.session.default_heat_map()
        if choice is not None:
            self.background.request_heat_map(self.session.request, *choice)

    def choose_device(self, device: str) -> None:
        """Model ▸ Device: run the models there from now on, and again on the image shown."""
        self.settings.device = device
        self.background.configure(device)
        self.refresh_models()

    def refresh_models(self) -> None:
        """Run the models again on the image shown (the device or the installed models changed: a bundle
        installed by the training wizard runs at once, no restart)."""
        if self.session.loaded is not None and self.session.request == self.session.shown_request:
            self.session.drop_heat_map()
            self._clear_heat_map()
            self.heat_map_controls.set_findings([])
            self.session.clear_findings()
            self.results.show_busy()
            self._rerun(None)

    # -- export and closing ----------------------------------------------------------------------------
    def findings_legend(self) -> list[str]:
        """Text lines describing every model's findings on the image shown, for the exported picture."""
        session = self.session
        if not session.predictions:
            return []
        lines = ["Second opinion, not a diagnosis"]
        if session.scored_anyway_note():
            lines.append(session.scored_anyway_note())
        for p in session.predictions.values():
            lines.append(f"{p.model} v{p.version}")
            lines.extend(f"  warning: {w}" for w in session.population.get(p.model, ()))
            outside = p.model in session.outside
            if outside:  # listed for the record, without a decision, as in the sidebar
                lines.append(f"  {OUTSIDE}: scores only, not counted")
            lines.extend(f"  {name}: {score_text(p, name, worded=not outside)}" for name in display_order(p))
        if self.view.overlay_item.isVisible() and session.heat_map is not None:
            model, finding = session.heat_map
            faint = " (faint: below its threshold)" if session.heat_map_faint() else ""
            lines.append(f"heat map: {model}: {finding}{faint}")
        return lines

    def export_dialog(self, annotated: bool = True) -> None:
        """File ▸ Export: the view as PNG, annotated (heat map if shown, findings legend) or image only."""
        loaded = self.session.loaded
        if loaded is None:
            self.show_error("Nothing to export: open an image first.")
            return
        default = str(Path(self.settings.last_folder) / (loaded.path.stem + "_view.png"))
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
        self.background.stop()
        super().closeEvent(event)
