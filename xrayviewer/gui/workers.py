"""Background work off the UI thread: decode an image, run every enabled model, render Grad-CAM overlays.

``ViewerWorker`` is a QObject moved to a QThread (see ``WorkerThread``); the UI sends it requests through
queued signals and it answers with signals tagged by request id. Every request carries an id and the UI
raises ``latest`` when the user opens another image: stale work is skipped here and stale answers are
dropped by the UI, so a result never lands on the wrong image. Files are decoded in a separate process
(``gui.decoding``): decoders hold the GIL.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QThread, QTimer, Signal, Slot
from PySide6.QtGui import QImage

from xrayviewer.gui.decoding import decode, warm_up_decoder
from xrayviewer.gui.image_view import overlay_qimage, picture_qimage
from xrayviewer.gui.window_level import WindowLevelState, describe_levels
from xrayviewer.imaging import lut
from xrayviewer.imaging.errors import ImageError
from xrayviewer.imaging.image import XRayImage

WARM_UP_DELAY_MS = 1000  # import torch and the engine this long after start-up unless an image is opened


class ModelUnavailableError(Exception):
    """No model bundle is installed (or the chosen one cannot be loaded)."""


@dataclass(frozen=True)
class LoadedImage:
    """An opened image with what the UI shows first: its default rendering and window/level state."""

    path: Path
    image: XRayImage
    picture: QImage  # default rendering, already in the screen's format (see image_view.picture_qimage)
    levels: WindowLevelState


def installed_bundles() -> list[Any]:
    """The engine's installed ``Bundle``s in search-path order (see ``engine.bundle.find_bundles``)."""
    from xrayviewer.engine.bundle import BundleError, find_bundles

    try:
        return find_bundles()
    except (BundleError, OSError) as exc:
        raise ModelUnavailableError(f"Model bundles could not be read: {exc}") from exc


def load_predictor(bundle: Any, device: str = "auto") -> Any:
    """The engine's ``Predictor`` for ``bundle``, loaded (weights verified, warmed up) on this thread."""
    from xrayviewer.engine.bundle import BundleError
    from xrayviewer.engine.devices import usable_cpus
    from xrayviewer.engine.predictor import Predictor

    try:
        # on the CPU, leave one core to the UI thread: inference stays in the background
        predictor = Predictor(bundle, device=device, threads=max(1, usable_cpus() - 1))
        predictor.load()
    except (BundleError, ValueError, OSError) as exc:  # ValueError: the chosen device is not available
        raise ModelUnavailableError(f"The model {bundle.name!r} could not be loaded: {exc}") from exc
    return predictor


def prepare(path: str | Path, image: XRayImage) -> LoadedImage:
    """Default rendering and window/level state for a decoded image."""
    picture = picture_qimage(lut.to_uint8(lut.render(image)))
    return LoadedImage(Path(path), image, picture, describe_levels(image))


PredictorFactory = Callable[[Any, str], Any]  # (engine Bundle, device) -> object with predict(image), card
BundleLister = Callable[[], list[Any]]  # -> engine Bundles in display order; may raise ModelUnavailableError
NO_MODEL = (
    "No model installed: no second opinion is available. Install a model bundle "
    "(see 'xrayviewer models') to get findings."
)
ALL_TURNED_OFF = "Every model is turned off in the Model menu: no findings computed."


class ViewerWorker(QObject):
    """Decodes, predicts and explains on its own thread; every answer carries the request id.

    Every installed bundle not in ``disabled`` runs on each image, one after the other in the lister's
    order; each answers on its own (``predictionReady`` or ``modelFailed``) as soon as it is done.
    """

    imageReady = Signal(int, object)  # request id, LoadedImage
    imageFailed = Signal(int, str)  # request id, message for the user
    applicabilityChecked = Signal(int, object)  # request id, engine Applicability (warnings to show)
    inferenceStarted = Signal(int, object)  # request id, ModelCards of the bundles that run, in order
    predictionReady = Signal(int, str, object, object)  # request id, bundle name, Prediction, ModelCard
    modelFailed = Signal(int, str, str)  # request id, bundle name, message: that bundle's error only
    predictionFailed = Signal(int, str)  # request id, why there are no findings at all (no model, refusal)
    inferenceFinished = Signal(int)  # request id: every bundle has answered
    overlayReady = Signal(int, str, str, object)  # request id, bundle, finding, QImage on the source grid
    legendReady = Signal(object)  # RGBA uint8 (1, 256, 4): the overlay colormap, low to high
    engineReady = Signal()  # torch and the engine are imported (the models themselves load on first use)

    def __init__(
        self,
        predictor_factory: PredictorFactory = load_predictor,
        bundle_lister: BundleLister = installed_bundles,
    ) -> None:
        super().__init__()
        self.latest = 0  # raised by the UI thread; work for older ids is skipped
        self.disabled: frozenset[str] = frozenset()  # set by the UI thread: bundles not to run
        self.overlay_chosen = 0  # request id for which the user chose a heat map: no automatic one then
        self._factory, self._lister = predictor_factory, bundle_lister
        self._device = "auto"
        self._predictors: dict[tuple[str, str, str], Any] = {}  # (name, version, weights sha256) -> predictor
        self._request = 0  # the request the predictions below belong to
        self._image: XRayImage | None = None
        self._predictions: dict[str, Any] = {}  # bundle name -> Prediction for ``_image``
        self._auto_overlay: tuple[str, str] | None = None
        self._legend_sent = False

    def _stale(self, request_id: int) -> bool:
        return request_id != self.latest

    @Slot()
    def warm_up(self) -> None:
        """Import torch, torchxrayvision and the engine now, on this thread, while no image is open.

        These imports hold the GIL for up to ~0.3 s at a time (native library initialisation), which
        would freeze the UI thread too; done while the viewer is idle at start-up, that hiccup does not
        hit a reading session (when the viewer starts with files, they are shown first, then it happens)."""
        import torchxrayvision  # noqa: F401  (imported lazily by the model registry)

        import xrayviewer.engine.cam
        import xrayviewer.engine.predictor  # noqa: F401

        self.engineReady.emit()

    @Slot(str)
    def configure(self, device: str) -> None:
        """Use another device from the next prediction on (the loaded models are released)."""
        if device != self._device:
            self._device, self._predictors = device, {}

    @Slot(int, str)
    def open_path(self, request_id: int, path: str) -> None:
        """Decode ``path``, report it, then run the models on it."""
        if self._stale(request_id):
            return
        try:
            image = decode(path)
            loaded = prepare(path, image)
        except ImageError as exc:
            self.imageFailed.emit(request_id, f"{Path(path).name}: {exc}")
            return
        except Exception as exc:  # a decoder bug must not kill the viewer
            self.imageFailed.emit(
                request_id, f"{Path(path).name} could not be opened ({type(exc).__name__})."
            )
            return
        if self._stale(request_id):
            return
        self.imageReady.emit(request_id, loaded)
        self.predict(request_id, image, None)

    def _predictor(self, bundle: Any) -> Any:
        card = bundle.card
        key = (bundle.name, card.version, card.weights_sha256)
        if key not in self._predictors:
            self._predictors[key] = self._factory(bundle, self._device)
        return self._predictors[key]

    @Slot(int, object, object)
    def predict(self, request_id: int, image: XRayImage, only: list[str] | None) -> None:
        """Check the image is a radiograph, then run every enabled bundle (or those named in ``only``,
        keeping the others' predictions of the same image), each answering as soon as it is done."""
        if self._stale(request_id):
            return
        from xrayviewer.engine.applicability import check_applicability
        from xrayviewer.engine.bundle import by_strength

        verdict = check_applicability(image)
        self.applicabilityChecked.emit(request_id, verdict)
        if verdict.refused:
            self.predictionFailed.emit(request_id, verdict.refusal)
            return
        try:
            bundles = self._lister()
        except ModelUnavailableError as exc:
            self.predictionFailed.emit(request_id, str(exc))
            return
        enabled = by_strength(b for b in bundles if b.name not in self.disabled)  # strongest section first
        if not enabled:
            self.predictionFailed.emit(request_id, ALL_TURNED_OFF if bundles else NO_MODEL)
            return
        installed = {(b.name, b.card.version, b.card.weights_sha256) for b in enabled}
        self._predictors = {k: v for k, v in self._predictors.items() if k in installed}
        if image is not self._image or only is None:
            self._image, self._predictions, self._auto_overlay = image, {}, None
        self._request = request_id
        self.inferenceStarted.emit(request_id, [b.card for b in enabled])
        for bundle in enabled:
            if self._stale(request_id):
                return
            if (only is not None and bundle.name not in only) or bundle.name in self.disabled:
                continue
            try:
                prediction = self._predictor(bundle).predict(image)
            except ModelUnavailableError as exc:
                prediction, error = None, str(exc)
            except Exception as exc:
                prediction, error = None, f"Inference failed: {exc}"
            if self._stale(request_id):
                return
            if prediction is None:
                self.modelFailed.emit(request_id, bundle.name, error)
                continue
            self._predictions[bundle.name] = prediction
            self.predictionReady.emit(request_id, bundle.name, prediction, bundle.card)
            self._update_default_overlay(request_id, enabled)
        if not self._stale(request_id):
            self.inferenceFinished.emit(request_id)

    def _update_default_overlay(self, request_id: int, order: list[Any]) -> None:
        """Show the heat map of ``engine.cam.explained_finding`` when it changed, unless the user chose
        one."""
        if self.overlay_chosen == request_id:
            return
        from xrayviewer.engine.cam import explained_finding

        shown = [self._predictions[b.name] for b in order if b.name in self._predictions]
        choice = explained_finding([p for p in shown if p.model not in self.disabled])
        if choice is not None and choice != self._auto_overlay:
            self._auto_overlay = choice
            self.explain(request_id, *choice)

    @Slot(int, str, str)
    def explain(self, request_id: int, model: str, finding: str) -> None:
        """Render the CAM of ``model``'s ``finding`` for the current image as an RGBA overlay."""
        if request_id != self._request or self._stale(request_id) or self._image is None:
            return
        from xrayviewer.engine.cam import compose_overlay, overlay_rgba

        prediction = self._predictions.get(model)
        if prediction is None or finding not in prediction.cams:
            return
        try:
            rgba = compose_overlay(prediction, finding)  # opacity is the view's: drawn at alpha 1
            if not self._legend_sent:
                ramp = np.linspace(0.0, 1.0, 256, dtype=np.float32)[None, :]
                self.legendReady.emit(overlay_rgba(ramp, alpha=1.0))
                self._legend_sent = True
        except Exception as exc:
            self.modelFailed.emit(request_id, model, f"The heat map could not be drawn: {exc}")
            return
        if rgba.shape[:2] != self._image.shape:
            self.modelFailed.emit(request_id, model, "The heat map does not match the image size.")
            return
        if not self._stale(request_id):
            self.overlayReady.emit(request_id, model, finding, overlay_qimage(rgba))


class WorkerThread(QObject):
    """Owns a ``ViewerWorker`` and the QThread it lives on; ``request_*`` are safe to call from the UI."""

    _open = Signal(int, str)
    _predict = Signal(int, object, object)
    _explain = Signal(int, str, str)
    _configure = Signal(str)
    _warm_up = Signal()

    def __init__(
        self,
        predictor_factory: PredictorFactory = load_predictor,
        bundle_lister: BundleLister = installed_bundles,
        parent=None,
    ) -> None:
        super().__init__(parent)
        self.thread = QThread()
        self.thread.setObjectName("xrayviewer-worker")
        self.worker = ViewerWorker(predictor_factory, bundle_lister)
        self.worker.moveToThread(self.thread)
        self._open.connect(self.worker.open_path)
        self._predict.connect(self.worker.predict)
        self._explain.connect(self.worker.explain)
        self._configure.connect(self.worker.configure)
        self._warm_up.connect(self.worker.warm_up)
        self._next_id = 0
        warm_up_decoder()
        self.thread.start()
        QTimer.singleShot(WARM_UP_DELAY_MS, self._warm_up_if_idle)

    def _warm_up_if_idle(self) -> None:
        # an image asked for at start-up goes first: it imports the engine itself, right after it is shown
        if self._next_id == 0:
            self._warm_up.emit()

    def _new_id(self) -> int:
        self._next_id += 1
        self.worker.latest = self._next_id
        return self._next_id

    def request_open(self, path: str | Path) -> int:
        """Queue opening ``path``; returns its request id (older requests become stale)."""
        request_id = self._new_id()
        self._open.emit(request_id, str(path))
        return request_id

    def request_prediction(
        self, image: XRayImage, only: Sequence[str] | None = None, keep_overlay: bool = False
    ) -> int:
        """Queue running the models on an already open image (only the bundles named in ``only``, keeping
        the other results; ``keep_overlay``: no automatic heat-map change); returns its request id."""
        request_id = self._new_id()
        if keep_overlay:
            self.worker.overlay_chosen = request_id
        self._predict.emit(request_id, image, None if only is None else list(only))
        return request_id

    def resume(self, request_id: int) -> None:
        """Make an earlier request current again (the one after it failed and is forgotten)."""
        self.worker.latest = request_id

    def request_overlay(self, request_id: int, model: str, finding: str, chosen: bool = True) -> None:
        """Queue rendering the overlay of ``model``'s ``finding`` for request ``request_id``; ``chosen``
        (by the user) stops automatic heat-map changes for that request."""
        if chosen:
            self.worker.overlay_chosen = request_id
        self._explain.emit(request_id, model, finding)

    def set_disabled(self, names: Sequence[str]) -> None:
        """Bundles not to run from now on (a run in progress skips them too)."""
        self.worker.disabled = frozenset(names)

    def configure(self, device: str) -> None:
        """Choose the device for the next predictions (models reload on first use)."""
        self._configure.emit(device)

    def stop(self) -> None:
        """Mark everything stale, let the current step finish and stop the thread."""
        self.worker.latest = -1
        self.thread.quit()
        self.thread.wait()
