"""Background work off the UI thread: decode an image, check it may be read (header and pixel rules, the
installed applicability gate), run every enabled model, draw the heat map the session names.

``ViewerWorker`` is a QObject moved to a QThread (see ``Background``); the UI sends it requests through
queued signals and it answers with signals tagged by request id. The ids come from the ``ReadingSession``:
work for any request but the session's latest is skipped here, and stale answers are dropped by the UI,
so a result never lands on the wrong image. Files are decoded in a separate process (``gui.decoding``):
decoders hold the GIL.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
from PySide6.QtCore import QObject, QThread, QTimer, Signal, Slot
from PySide6.QtGui import QImage

from xrayviewer.gui.decoding import decode, warm_up_decoder
from xrayviewer.gui.image_view import overlay_qimage, picture_qimage
from xrayviewer.gui.session import STOPPED, HeatMap, ReadingSession, models_outside
from xrayviewer.gui.window_level import WindowLevelState, describe_levels
from xrayviewer.imaging import lut
from xrayviewer.imaging.errors import ImageError
from xrayviewer.imaging.image import XRayImage

if TYPE_CHECKING:
    from xrayviewer.engine.applicability import Applicability
    from xrayviewer.engine.bundle import Bundle
    from xrayviewer.engine.gate import GateVerdict
    from xrayviewer.engine.predictor import Prediction

WARM_UP_DELAY_MS = 1000  # import the engine this long after start-up unless an image is opened


class ModelUnavailableError(Exception):
    """No model bundle is installed (or the chosen one cannot be loaded)."""


@dataclass(frozen=True)
class LoadedImage:
    """An opened image with what the UI shows first: its default rendering and window/level state."""

    path: Path
    image: XRayImage
    picture: QImage  # default rendering, already in the screen's format (see image_view.picture_qimage)
    levels: WindowLevelState


class ImagePredictor(Protocol):
    """What the worker needs of a predictor: the engine's ``Predictor`` (or a stand-in in tests)."""

    def predict(self, image: XRayImage) -> Prediction:
        """Scores, positives and CAMs of one image."""
        ...


class ApplicabilityGate(Protocol):
    """What the worker needs of the learned gate: the engine's ``Gate`` (or a stand-in in tests)."""

    def check(self, image: XRayImage) -> GateVerdict:
        """Whether the image is a frontal chest film, and a child's or an adult's."""
        ...


# strings: the engine's types are imported only when the engine is (it loads ONNX Runtime, matplotlib)
PredictorFactory = Callable[["Bundle", str], ImagePredictor]  # (bundle, device) -> its loaded predictor
BundleLister = Callable[[], list["Bundle"]]  # installed bundles in search order, or ModelUnavailableError
# device -> the installed gate, loaded; None when none is installed; ModelUnavailableError when it is broken
GateLoader = Callable[[str], ApplicabilityGate | None]
NO_MODEL = (
    "No model installed: no second opinion is available. Install a model bundle "
    "(see 'xrayviewer models') to get findings."
)
ALL_TURNED_OFF = "Every model is turned off in the Model menu: no findings computed."
UNUSABLE_WINDOW = "The image's own window is not usable (not finite, or no width): shown with its full range."


def findings_failed(exc: BaseException) -> str:
    """The sidebar's line for an unexpected error while the findings were computed: its type, never its
    message (which may quote a file path or a header value)."""
    return f"Findings could not be computed: an internal error ({type(exc).__name__}) stopped them."


def installed_bundles() -> list[Bundle]:
    """The engine's installed ``Bundle``s in search-path order (see ``engine.bundle.find_bundles``)."""
    from xrayviewer.engine.bundle import BundleError, find_bundles

    try:
        return find_bundles()
    except (BundleError, OSError) as exc:
        raise ModelUnavailableError(f"Model bundles could not be read: {exc}") from exc


def load_predictor(bundle: Bundle, device: str = "auto") -> ImagePredictor:
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


def load_gate(bundle: Bundle | None, device: str = "auto") -> ApplicabilityGate | None:
    """The engine's ``Gate`` for ``bundle`` (None: none), loaded on this thread like a predictor."""
    if bundle is None:
        return None
    from xrayviewer.engine.bundle import BundleError
    from xrayviewer.engine.devices import usable_cpus
    from xrayviewer.engine.gate import Gate

    try:
        gate = Gate(bundle, device=device, threads=max(1, usable_cpus() - 1))
        gate.load()
    except (BundleError, ValueError, OSError) as exc:
        raise ModelUnavailableError(
            f"The applicability gate {bundle.name!r} could not be loaded: {exc}"
        ) from exc
    return gate


def installed_gate(device: str = "auto") -> ApplicabilityGate | None:
    """The installed gate bundle (``engine.gate.find_gate``), loaded; None when none is installed."""
    from xrayviewer.engine.bundle import BundleError
    from xrayviewer.engine.gate import find_gate

    try:
        bundle = find_gate()
    except (BundleError, OSError) as exc:
        raise ModelUnavailableError(f"The applicability gate could not be found: {exc}") from exc
    return load_gate(bundle, device)


@dataclass(frozen=True)
class EngineAccess:
    """How the worker reaches the engine: the installed bundles, their predictors and the gate (the real
    engine by default; stand-ins in tests)."""

    predictor_factory: PredictorFactory = load_predictor
    bundle_lister: BundleLister = installed_bundles
    gate_loader: GateLoader = installed_gate


def prepare(path: str | Path, image: XRayImage) -> LoadedImage:
    """Default rendering and window/level state for a decoded image. An image whose own window cannot be
    drawn (not finite, or no positive width: only an ``XRayImage`` built by hand, ``open_image`` skips
    such header windows) gets the full range instead, with a warning, so that the picture, the panel and
    the models' input agree."""
    levels = describe_levels(image)
    if image.window != levels.default:
        image.window = levels.default
        image.warnings.append(UNUSABLE_WINDOW)
    picture = picture_qimage(lut.to_uint8(lut.render(image)))
    return LoadedImage(Path(path), image, picture, levels)


class ViewerWorker(QObject):
    """Decodes, predicts and draws heat maps on its own thread; every answer carries the request id.

    Each image is first checked (``engine.applicability.check_applicability`` with the installed gate,
    loaded once per device): a refused one is not scored unless the request says ``force``. Then every
    installed bundle not in ``disabled`` runs on it, one after the other, strongest first
    (``engine.bundle.by_strength``); each answers on its own (``predictionReady`` or ``modelFailed``) as
    soon as it is done, and the heat map the session names is drawn as soon as it changes.
    """

    imageReady = Signal(int, object)  # request id, LoadedImage
    imageFailed = Signal(int, str)  # request id, message for the user
    # request id, engine Applicability, why no learned gate checked it (tuple of str: NO_GATE, its error)
    applicabilityChecked = Signal(int, object, object)
    inferenceStarted = Signal(int, object)  # request id, ModelCards of the bundles that run, in order
    predictionReady = Signal(int, str, object, object)  # request id, bundle name, Prediction, ModelCard
    modelFailed = Signal(int, str, str)  # request id, bundle name, message: that bundle's error only
    predictionFailed = Signal(int, str)  # request id, why there are no findings at all (no model, refusal)
    inferenceFinished = Signal(int)  # request id: every bundle has answered
    heatMapReady = Signal(int, str, str, object)  # request id, bundle, finding, QImage on the source grid
    legendReady = Signal(object)  # RGBA uint8 (1, 256, 4): the heat-map colormap, low to high
    engineReady = Signal()  # the engine is imported (the models themselves load on first use)

    def __init__(self, session: ReadingSession, engine: EngineAccess | None = None) -> None:
        super().__init__()
        self.disabled: frozenset[str] = frozenset()  # set by the UI thread: bundles not to run
        self._session = session  # read here for its latest request id and pinned heat map only
        engine = engine or EngineAccess()
        self._factory, self._lister, self._gate_loader = (
            engine.predictor_factory, engine.bundle_lister, engine.gate_loader)
        self._device = "auto"
        self._predictors: dict[tuple[str, str, str], ImagePredictor] = {}  # by (name, version, sha256)
        self._gate: tuple[ApplicabilityGate | None, str] | None = None  # (gate, load error); None: not tried
        self._outside: frozenset[str] = frozenset()  # models outside the population of ``_image``
        # what heat maps are drawn from: the image of request ``_request`` and its predictions
        self._request = 0
        self._image: XRayImage | None = None
        self._predictions: dict[str, Prediction] = {}  # bundle name -> Prediction for ``_image``
        self._automatic: HeatMap | None = None  # the last heat map drawn without the user asking
        self._legend_sent = False

    def _stale(self, request_id: int) -> bool:
        return request_id != self._session.request

    @Slot()
    def warm_up(self) -> None:
        """Import the inference engine and ONNX Runtime now, on this thread, while no image is open.

        These imports hold the GIL for up to ~0.3 s at a time (native library initialisation), which
        would freeze the UI thread too; done while the viewer is idle at start-up, that hiccup does not
        hit a reading session (when the viewer starts with files, they are shown first, then it happens).
        torch is not among them: the bundles' ONNX graphs need none, and a bundle without one imports it
        when it loads."""
        import onnxruntime  # noqa: F401

        import xrayviewer.engine.gate
        import xrayviewer.engine.predictor  # noqa: F401

        self.engineReady.emit()

    @Slot(str)
    def configure(self, device: str) -> None:
        """Use another device from the next prediction on (the loaded models are released)."""
        if device != self._device:
            self._device, self._predictors, self._gate = device, {}, None

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
        self.predict(request_id, image, None, False)

    def _predictor(self, bundle: Bundle) -> ImagePredictor:
        card = bundle.card
        key = (bundle.name, card.version, card.weights_sha256)
        if key not in self._predictors:
            self._predictors[key] = self._factory(bundle, self._device)
        return self._predictors[key]

    def _installed_gate(self) -> tuple[ApplicabilityGate | None, str]:
        """The gate for this device, loaded on first use (a broken one: None and why, tried once)."""
        if self._gate is None:
            try:
                self._gate = (self._gate_loader(self._device), "")
            except ModelUnavailableError as exc:
                self._gate = (None, str(exc))
            except Exception as exc:  # whatever breaks the gate must not keep the findings from running
                self._gate = (None, f"The applicability gate could not be loaded: {exc}")
        return self._gate

    def _check(self, image: XRayImage) -> tuple[Applicability, tuple[str, ...]]:
        """The verdict on ``image`` and why no learned gate looked at it (empty when one did)."""
        from xrayviewer.engine.applicability import NO_GATE, check_applicability

        gate, problem = self._installed_gate()
        if gate is not None:
            try:
                return check_applicability(image, gate), ()
            except Exception as exc:  # a gate that fails on one film leaves it unchecked, as without one
                problem = f"The applicability gate failed on this image: {exc}"
        return check_applicability(image), tuple(filter(None, (NO_GATE, problem)))

    @Slot(int, object, object, bool)
    def predict(self, request_id: int, image: XRayImage, only: list[str] | None, force: bool) -> None:
        """Check the image may be read, then run every enabled bundle (or those named in ``only``,
        keeping the others' predictions of the same image), each answering as soon as it is done. A
        refused image is scored only with ``force`` (the user's "Show findings anyway"). An unexpected
        error still answers (``predictionFailed``, naming its type) before it goes on to the crash handler:
        the sidebar never waits for findings that will not come."""
        try:
            self._predict(request_id, image, only, force)
        except Exception as exc:
            if not self._stale(request_id):
                self.predictionFailed.emit(request_id, findings_failed(exc))
            raise

    def _predict(self, request_id: int, image: XRayImage, only: list[str] | None, force: bool) -> None:
        if self._stale(request_id):
            return
        from xrayviewer.engine.bundle import by_strength

        verdict, unchecked = self._check(image)
        if self._stale(request_id):
            return
        self.applicabilityChecked.emit(request_id, verdict, unchecked)
        if verdict.refused and not force:
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
            self._image, self._predictions, self._automatic = image, {}, None
        self._request = request_id
        self._outside = models_outside(image, [b.card for b in enabled], verdict)
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
            self._draw_automatic_heat_map(request_id, enabled)
        if not self._stale(request_id):
            self.inferenceFinished.emit(request_id)

    def _draw_automatic_heat_map(self, request_id: int, order: Sequence[Bundle]) -> None:
        """Draw the heat map the session names for the predictions so far, when it changed."""
        shown = [self._predictions[b.name] for b in order
                 if b.name in self._predictions and b.name not in self.disabled]
        choice = self._session.automatic_heat_map(request_id, shown, self._outside)
        if choice is not None and choice != self._automatic:
            self._automatic = choice
            self.draw_heat_map(request_id, *choice)

    @Slot(int, str, str)
    def draw_heat_map(self, request_id: int, model: str, finding: str) -> None:
        """Draw the heat map of ``model``'s ``finding`` for the current image (``engine.cam.compose_overlay``,
        at the finding's strength)."""
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
            self.heatMapReady.emit(request_id, model, finding, overlay_qimage(rgba))


class Background(QObject):
    """Owns a ``ViewerWorker`` and the QThread it lives on; ``request_*`` are safe to call from the UI
    with request ids from the session (``ReadingSession.new_request``)."""

    _open = Signal(int, str)
    _predict = Signal(int, object, object, bool)
    _draw = Signal(int, str, str)
    _configure = Signal(str)
    _warm_up = Signal()

    def __init__(self, session: ReadingSession, engine: EngineAccess | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._session = session
        self.qthread = QThread()
        self.qthread.setObjectName("xrayviewer-worker")
        self.worker = ViewerWorker(session, engine)
        self.worker.moveToThread(self.qthread)
        self._open.connect(self.worker.open_path)
        self._predict.connect(self.worker.predict)
        self._draw.connect(self.worker.draw_heat_map)
        self._configure.connect(self.worker.configure)
        self._warm_up.connect(self.worker.warm_up)
        warm_up_decoder()
        self.qthread.start()
        QTimer.singleShot(WARM_UP_DELAY_MS, self._warm_up_if_idle)

    def _warm_up_if_idle(self) -> None:
        # an image asked for at start-up goes first: it imports the engine itself, right after it is shown
        if self._session.request == 0:
            self._warm_up.emit()

    def request_open(self, request_id: int, path: str | Path) -> None:
        """Queue opening ``path`` (then running the models on it)."""
        self._open.emit(request_id, str(path))

    def request_prediction(
        self, request_id: int, image: XRayImage, only: Sequence[str] | None = None, force: bool = False
    ) -> None:
        """Queue running the models on an already open image (only the bundles named in ``only``, keeping
        the other results; ``force``: even when it is refused)."""
        self._predict.emit(request_id, image, None if only is None else list(only), force)

    def request_heat_map(self, request_id: int, model: str, finding: str) -> None:
        """Queue drawing the heat map of ``model``'s ``finding`` for request ``request_id``."""
        self._draw.emit(request_id, model, finding)

    def set_disabled(self, names: Sequence[str]) -> None:
        """Bundles not to run from now on (a run in progress skips them too)."""
        self.worker.disabled = frozenset(names)

    def configure(self, device: str) -> None:
        """Choose the device for the next predictions (models reload on first use)."""
        self._configure.emit(device)

    def stop(self) -> None:
        """Make every request stale, let the current step finish and stop the thread."""
        self._session.request = STOPPED
        self.qthread.quit()
        self.qthread.wait()
