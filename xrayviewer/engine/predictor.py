"""Run a model bundle on X-ray images: calibrated scores, positives at the card's thresholds, CAMs, timings.

``Predictor`` loads lazily (first use or :meth:`Predictor.load`), so the GUI can create it on the UI thread
and let a worker pay the load and warm-up. One predictor serves one thread at a time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from xrayviewer.engine.applicability import Applicability, check_applicability, population_warnings
from xrayviewer.engine.bundle import Bundle, load_bundle, load_model
from xrayviewer.engine.calibration import probabilities
from xrayviewer.engine.cam import HeadParams, head_cams
from xrayviewer.engine.devices import configure_cpu_threads, device_name, pick_device, usable_cpus
from xrayviewer.engine.onnx_backend import BundleGraph, OnnxUnavailableError
from xrayviewer.engine.preprocess import Geometry, preprocess
from xrayviewer.imaging import ImageError, XRayImage, open_image

if TYPE_CHECKING:
    from xrayviewer.engine.bundle import ModelCard
    from xrayviewer.engine.gate import Gate


@dataclass
class Prediction:
    """What a model says about one image. ``cams`` are per class, float32 ≥ 0 at feature resolution."""

    model: str
    version: str
    classes: list[str]
    scores: dict[str, float]
    thresholds: dict[str, float]
    positive: list[str]
    top: str
    cams: dict[str, np.ndarray]
    geometry: Geometry
    device: str
    timings: dict[str, float] = field(default_factory=dict)  # ms: preprocess, forward, cam, total
    backend: str = "torch"  # "torch" or "onnxruntime"
    negative_classes: list[str] = field(default_factory=list)  # the card's "no finding" classes (e.g. normal)
    features: np.ndarray | None = None  # the pooled feature vector the head saw (the gate measures it)


@dataclass
class FileResult:
    """One file of a batch: its prediction, or the one-line reason it could not be scored (a refusal of
    ``engine.applicability`` included), the applicability verdict, and the warnings (those of
    ``population_warnings`` prefixed with the model's name, e.g. "pneumonia: Trained on AP films; this film
    is PA.")."""

    path: Path
    prediction: Prediction | None
    error: str | None = None
    image: XRayImage | None = None
    warnings: tuple[str, ...] = ()
    applicability: Applicability | None = None  # None when the file could not be read
    card: ModelCard | None = None  # the model that scored the file (or was to), when one was chosen


Chooser = Callable[[XRayImage, Applicability], "Predictor"]  # which predictor scores a checked film


class Predictor:
    """Scores images with one bundle on one device (``auto``: CUDA → MPS → CPU).

    ``backend``: ``auto`` runs the bundle's own ONNX graph in ONNX Runtime on the CPU (no torch needed:
    ``engine.onnx_backend``) and falls back to torch (channels_last on the CPU) for bundles without one or
    where onnxruntime is missing; ``torch`` forces torch. ``threads``: CPU threads for inference (default:
    every usable CPU). After :meth:`load`, ``backend`` says which runs and ``backend_note`` why ONNX Runtime
    does not, if it does not.
    """

    def __init__(self, bundle: Bundle | str | Path, device: str = "auto", backend: str = "auto",
                 threads: int | None = None) -> None:
        if backend not in ("auto", "torch"):
            raise ValueError(f"backend {backend!r} is not one of auto, torch")
        self.bundle = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
        self.card = self.bundle.card
        self.device = device_name(device)
        self.threads = threads
        self.backend = "torch"
        self.backend_note = "" if backend == "auto" else "torch asked for"
        self._want_graph = backend == "auto" and self.device == "cpu"
        self._runner: BundleGraph | _TorchRunner | None = None
        self._lock = threading.Lock()

    def load(self) -> None:
        """Read and verify the weights (and the graph), run one warm-up pass (idempotent)."""
        with self._lock:
            if self._runner is not None:
                return
            threads = max(1, self.threads or usable_cpus())
            runner: BundleGraph | _TorchRunner | None = None
            if self._want_graph:
                try:
                    runner = BundleGraph.open(self.bundle, threads)
                    self.backend = "onnxruntime"
                except OnnxUnavailableError as exc:
                    self.backend_note = str(exc)
            self._runner = runner or _TorchRunner(self.bundle, self.device, threads)
            size = self.card.input_size
            self._run(np.zeros((1, 1, size, size), np.float32), with_cams=True)

    def _run(self, batch: np.ndarray, with_cams: bool) -> tuple[np.ndarray, np.ndarray | None, np.ndarray,
                                                                dict]:
        """Scores (N, K), CAMs (N, K, h, w) and pooled features (N, C) for a preprocessed batch, with
        forward/cam ms."""
        runner = self._runner
        assert runner is not None
        start = time.perf_counter()
        logits, maps = runner(batch)
        scores = probabilities(self.card.task, logits, self.card.temperature or 1.0)
        pooled = maps.mean(axis=(2, 3))
        forward_done = time.perf_counter()
        cams = runner.cams(maps) if with_cams else None
        ms = {"forward": (forward_done - start) * 1e3, "cam": (time.perf_counter() - forward_done) * 1e3}
        return scores, cams, pooled, ms

    def predict(self, image: XRayImage, with_cams: bool = True) -> Prediction:
        """Scores, positives and CAMs for one image."""
        return self.predict_batch([image], with_cams)[0]

    def predict_batch(self, images: Sequence[XRayImage], with_cams: bool = True) -> list[Prediction]:
        """One forward pass for several images (timings are shared out evenly)."""
        self.load()
        start = time.perf_counter()
        prepared = [preprocess(image, self.card.preprocessing) for image in images]
        batch = np.stack([tensor for tensor, _ in prepared])
        preprocess_ms = (time.perf_counter() - start) * 1e3
        scores, cams, pooled, ms = self._run(batch, with_cams)
        n = len(images)
        timings = {"preprocess": preprocess_ms / n, "forward": ms["forward"] / n, "cam": ms["cam"] / n}
        timings["total"] = sum(timings.values())
        return [self._prediction(scores[i], None if cams is None else cams[i], pooled[i], prepared[i][1],
                                 timings) for i in range(n)]

    def _prediction(self, scores: np.ndarray, cams: np.ndarray | None, features: np.ndarray,
                    geometry: Geometry, timings: dict[str, float]) -> Prediction:
        card = self.card
        if not np.isfinite(scores).all():  # never a "nan%": the film gets an error instead
            raise ValueError("the model gave a non-finite score (NaN or infinity) for this image: no "
                             "findings")
        by_class = {c: float(s) for c, s in zip(card.classes, scores, strict=True)}
        return Prediction(
            model=card.name,
            version=card.version,
            classes=list(card.classes),
            scores=by_class,
            thresholds=dict(card.thresholds),
            positive=[c for c in card.classes if by_class[c] >= card.thresholds[c]],
            top=max(card.classes, key=by_class.__getitem__),
            cams={} if cams is None else {c: cams[i] for i, c in enumerate(card.classes)},
            geometry=geometry,
            device=self.device,
            timings=dict(timings),
            backend=self.backend,
            negative_classes=list(card.negative_classes),
            features=features,
        )

    def predict_many(self, paths: Iterable[str | Path], with_cams: bool = True, batch_size: int = 1,
                     gate: Gate | None = None, score_refused: bool = False) -> Iterator[FileResult]:
        """Open and score files with this model, in order (see :func:`predict_files`)."""
        return predict_files(paths, lambda image, verdict: self, with_cams, batch_size, gate, score_refused)

    def _checked(self, path: Path, image: XRayImage, verdict: Applicability, score_refused: bool,
                 ) -> FileResult:
        """The file's result before scoring: warnings with this model's population warnings; the image is
        kept only when it is to be scored."""
        if verdict.refused and not score_refused:
            return FileResult(path, None, verdict.refusal, None, verdict.warnings, verdict, self.card)
        population = population_warnings(image, self.card, verdict)
        warnings = verdict.warnings + tuple(f"{self.card.name}: {w}" for w in population)
        if verdict.refused:
            warnings = (f"scored although refused: {verdict.refusal}", *warnings)
        return FileResult(path, None, None, image, warnings, verdict, self.card)

    def _score(self, pending: list[FileResult], with_cams: bool) -> list[FileResult]:
        """Fill in the predictions of the readable files in ``pending`` (one batch)."""
        readable = [r for r in pending if r.image is not None]
        if not readable:
            return pending
        try:
            predictions = self.predict_batch([r.image for r in readable], with_cams)
        except (ValueError, RuntimeError, MemoryError) as exc:  # e.g. a picture too odd for the model
            if len(readable) > 1:  # find the culprit: score one by one
                return [scored for r in pending for scored in self._score([r], with_cams)]
            readable[0].error = _failure("scoring", readable[0].image, exc)
            return pending
        for result, prediction in zip(readable, predictions, strict=True):
            result.prediction = prediction
        return pending


class _TorchRunner:
    """The bundle's network in torch on its device: for bundles without an ONNX graph, and GPUs."""

    def __init__(self, bundle: Bundle, device: str, threads: int) -> None:
        import torch

        self.device = pick_device(device)
        if self.device.type == "cpu":
            configure_cpu_threads(threads)
        model = load_model(bundle).to(self.device)
        self.channels_last = self.device.type == "cpu"
        self.model = model.to(memory_format=torch.channels_last) if self.channels_last else model
        state = {k: v.detach().float().cpu().numpy() for k, v in model.classifier.state_dict().items()}
        self.head = HeadParams.from_state({f"classifier.{k}": v for k, v in state.items()}, bundle.card.head)

    def __call__(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Logits (N, K) and rectified feature maps (N, C, h, w)."""
        import torch

        x = torch.from_numpy(batch).to(self.device)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            logits, maps = self.model.forward_with_maps(x)
        return logits.float().cpu().numpy(), maps.float().cpu().contiguous().numpy()

    def cams(self, maps: np.ndarray) -> np.ndarray:
        """CAMs (N, K, h, w) of every class."""
        return head_cams(maps, self.head)


def predict_files(paths: Iterable[str | Path], choose: Chooser, with_cams: bool = True, batch_size: int = 1,
                  gate: Gate | None = None, score_refused: bool = False) -> Iterator[FileResult]:
    """Open, check and score files, in order, each with the predictor ``choose`` picks for it from the film
    and its applicability verdict. A file that cannot be read, is refused by ``check_applicability``
    (with ``gate``: its learned part too) or cannot be scored yields its error and is not scored.
    ``score_refused``: refused films are scored anyway, their refusal kept as a warning (research use; the
    verdict still says the film was refused). Films going to the same predictor in a row share batches."""
    pending: list[FileResult] = []
    current: Predictor | None = None
    for path in map(Path, paths):
        try:
            image = open_image(path)
        except ImageError as exc:
            pending.append(FileResult(path, None, _one_line(exc)))
            continue
        try:
            verdict = check_applicability(image, gate)
        except (ValueError, RuntimeError, MemoryError) as exc:  # the learned gate failed on it
            pending.append(FileResult(path, None, _failure("checking", image, exc)))
            continue
        predictor = choose(image, verdict)
        if current is not None and predictor is not current:  # the batch so far belongs to another model
            yield from current._score(pending, with_cams)
            pending = []
        current = predictor
        pending.append(predictor._checked(path, image, verdict, score_refused))
        if sum(r.image is not None for r in pending) >= batch_size:
            yield from predictor._score(pending, with_cams)
            pending = []
    yield from pending if current is None else current._score(pending, with_cams)


def _failure(doing: str, image: XRayImage | None, exc: BaseException) -> str:
    """One line for a file that was read but could not be checked or scored."""
    if isinstance(exc, MemoryError):
        size = "" if image is None else f" ({image.shape[1]} × {image.shape[0]} pixels)"
        return f"not enough memory for {doing} this image{size}"
    return _one_line(exc)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
