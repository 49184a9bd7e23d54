"""Background work off the UI thread: decode an image, run the model, render Grad-CAM overlays.

``ViewerWorker`` is a QObject moved to a QThread (see ``WorkerThread``); the UI sends it requests through
queued signals and it answers with signals tagged by request id. Every request carries an id and the UI
raises ``latest`` when the user opens another image: stale work is skipped here and stale answers are
dropped by the UI, so a result never lands on the wrong image.

Decoders such as OpenJPEG hold Python's GIL for the whole decode (~120 ms for a 2k×2k JPEG 2000), which
would freeze the UI thread too; so files are decoded in a separate process and only the pixels come back.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QThread, QTimer, Signal, Slot
from PySide6.QtGui import QImage

from xrayviewer.gui.image_view import overlay_qimage, picture_qimage
from xrayviewer.gui.window_level import WindowLevelState, describe_levels
from xrayviewer.imaging import lut, open_image
from xrayviewer.imaging.errors import ImageError
from xrayviewer.imaging.image import XRayImage

CAM_COLORMAP = "jet"
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


def load_predictor(model: str | None = None, device: str = "auto") -> Any:
    """The engine's ``Predictor`` for the installed bundle named ``model`` (or the first one found)."""
    from xrayviewer.engine.bundle import BundleError, find_bundles
    from xrayviewer.engine.devices import usable_cpus
    from xrayviewer.engine.predictor import Predictor

    try:
        bundles = find_bundles()
    except BundleError as exc:
        raise ModelUnavailableError(f"Model bundles could not be read: {exc}") from exc
    if not bundles:
        raise ModelUnavailableError(
            "No model installed: no second opinion is available. Install a model bundle "
            "(see 'xrayviewer models') to get findings."
        )
    chosen = next((b for b in bundles if model and b.name == model), bundles[0])
    try:
        # on the CPU, leave one core to the UI thread: inference stays in the background
        predictor = Predictor(chosen, device=device, threads=max(1, usable_cpus() - 1))
        predictor.load()
    except (BundleError, ValueError) as exc:  # ValueError: the chosen device is not available
        raise ModelUnavailableError(f"The model {chosen.name!r} could not be loaded: {exc}") from exc
    return predictor


_pools: dict[str, ProcessPoolExecutor] = {}


def _exit_with_parent(parent_pid: int) -> None:
    """Pool process initializer: end this process when the viewer is gone, even after a crash."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def process_pool(purpose: str = "decode") -> ProcessPoolExecutor:
    """A one-process pool per purpose ("decode" for opened images, "thumbnails" for the folder strip),
    started once and shared, so thumbnails never queue ahead of the image the user asked for."""
    if purpose not in _pools:
        _pools[purpose] = ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_exit_with_parent,
            initargs=(os.getpid(),),
        )
        atexit.register(_pools[purpose].shutdown, wait=False, cancel_futures=True)
    return _pools[purpose]


def warm_up_decoder() -> None:
    """Start the decoder process now so the first image opens without its start-up delay."""
    process_pool().submit(int)


def decode(path: str | Path) -> XRayImage:
    """``imaging.open_image`` run in the decoder process; raises its ``ImageError`` subclasses."""
    return process_pool().submit(open_image, str(path)).result()


def prepare(path: str | Path, image: XRayImage) -> LoadedImage:
    """Default rendering and window/level state for a decoded image."""
    picture = picture_qimage(lut.to_uint8(lut.render(image)))
    return LoadedImage(Path(path), image, picture, describe_levels(image))


PredictorFactory = Callable[[str, str], Any]  # (model name or "", device) -> object with predict(image)


class ViewerWorker(QObject):
    """Decodes, predicts and explains on its own thread; every answer carries the request id."""

    imageReady = Signal(int, object)  # request id, LoadedImage
    imageFailed = Signal(int, str)  # request id, message for the user
    inferenceStarted = Signal(int)
    predictionReady = Signal(int, object, object)  # request id, engine Prediction, ModelCard or None
    predictionFailed = Signal(int, str)  # request id, message (also: no model installed)
    overlayReady = Signal(int, str, object)  # request id, finding, QImage on the source grid (overlay_qimage)
    legendReady = Signal(object)  # RGBA uint8 (1, 256, 4): the overlay colormap, low to high
    engineReady = Signal()  # torch and the engine are imported (the model itself loads on first use)

    def __init__(self, predictor_factory: PredictorFactory = load_predictor) -> None:
        super().__init__()
        self.latest = 0  # raised by the UI thread; work for older ids is skipped
        self._factory = predictor_factory
        self._model, self._device = "", "auto"
        self._predictor: Any = None
        self._current: tuple[int, XRayImage, Any] | None = None
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

    @Slot(str, str)
    def configure(self, model: str, device: str) -> None:
        """Use another model or device from the next prediction on (the old model is released)."""
        if (model, device) != (self._model, self._device):
            self._model, self._device, self._predictor = model, device, None

    @Slot(int, str)
    def open_path(self, request_id: int, path: str) -> None:
        """Decode ``path``, report it, then run the model on it."""
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
        self.predict(request_id, image)

    @Slot(int, object)
    def predict(self, request_id: int, image: XRayImage) -> None:
        """Run the model (loaded once, lazily) and report the prediction and the top finding's overlay."""
        if self._stale(request_id):
            return
        self.inferenceStarted.emit(request_id)
        try:
            if self._predictor is None:
                self._predictor = self._factory(self._model, self._device)
            prediction = self._predictor.predict(image)
        except ModelUnavailableError as exc:
            self.predictionFailed.emit(request_id, str(exc))
            return
        except Exception as exc:
            self.predictionFailed.emit(request_id, f"Inference failed: {exc}")
            return
        if self._stale(request_id):
            return
        self._current = (request_id, image, prediction)
        self.predictionReady.emit(request_id, prediction, getattr(self._predictor, "card", None))
        if prediction.top:
            self.explain(request_id, prediction.top)

    @Slot(int, str)
    def explain(self, request_id: int, finding: str) -> None:
        """Render the CAM of ``finding`` for the current prediction as an RGBA overlay."""
        if self._current is None or self._current[0] != request_id or self._stale(request_id):
            return
        from xrayviewer.engine.cam import cam_to_image, overlay_rgba

        _, image, prediction = self._current
        cam = prediction.cams.get(finding)
        if cam is None:
            return
        try:
            rgba = np.asarray(overlay_rgba(cam_to_image(cam, prediction.geometry), CAM_COLORMAP, 1.0))
            if not self._legend_sent:
                ramp = np.linspace(0.0, 1.0, 256, dtype=np.float32)[None, :]
                self.legendReady.emit(np.asarray(overlay_rgba(ramp, CAM_COLORMAP, 1.0)))
                self._legend_sent = True
        except Exception as exc:
            self.predictionFailed.emit(request_id, f"The heat map could not be drawn: {exc}")
            return
        if rgba.shape[:2] != image.shape:
            self.predictionFailed.emit(request_id, "The heat map does not match the image size.")
            return
        if not self._stale(request_id):
            self.overlayReady.emit(request_id, finding, overlay_qimage(rgba))


class WorkerThread(QObject):
    """Owns a ``ViewerWorker`` and the QThread it lives on; ``request_*`` are safe to call from the UI."""

    _open = Signal(int, str)
    _predict = Signal(int, object)
    _explain = Signal(int, str)
    _configure = Signal(str, str)
    _warm_up = Signal()

    def __init__(self, predictor_factory: PredictorFactory = load_predictor, parent=None) -> None:
        super().__init__(parent)
        self.thread = QThread()
        self.thread.setObjectName("xrayviewer-worker")
        self.worker = ViewerWorker(predictor_factory)
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

    def request_prediction(self, image: XRayImage) -> int:
        """Queue a prediction for an already open image; returns its request id."""
        request_id = self._new_id()
        self._predict.emit(request_id, image)
        return request_id

    def resume(self, request_id: int) -> None:
        """Make an earlier request current again (the one after it failed and is forgotten)."""
        self.worker.latest = request_id

    def request_overlay(self, request_id: int, finding: str) -> None:
        """Queue rendering the overlay of ``finding`` for request ``request_id``."""
        self._explain.emit(request_id, finding)

    def configure(self, model: str, device: str) -> None:
        """Choose the model bundle ("" = first installed) and device for the next predictions."""
        self._configure.emit(model, device)

    def stop(self) -> None:
        """Mark everything stale, let the current step finish and stop the thread."""
        self.worker.latest = -1
        self.thread.quit()
        self.thread.wait()
