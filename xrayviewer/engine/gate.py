"""The learned part of the applicability gate: is this a frontal chest film, and a child's or an adult's?

A gate bundle is a model bundle whose card says ``role = "gate"``. Its multilabel head scores image kinds
(``chest film`` and the kinds it is told apart from: photographs, documents, CT/MR slices, parts of films,
rotated films, other) and ``adult``; ``ood.safetensors`` beside the weights holds the mean and precision
matrix of the pooled features of the training chest films. A film passes when the chest score reaches its
threshold *and* its Mahalanobis distance to the chest films stays within the card's limit (a classifier
alone is confidently wrong on kinds it never saw; the distance catches those). Thresholds are fitted on
validation by ``xrayviewer.training.gate`` and stated in the card.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from xrayviewer.engine.applicability import refusal
from xrayviewer.engine.bundle import Bundle, BundleError, find_bundles, sha256_of
from xrayviewer.engine.predictor import Prediction, Predictor
from xrayviewer.imaging.image import XRayImage

OOD_FILE = "ood.safetensors"
CHEST = "chest film"
ADULT = "adult"
# why a film of each kind is not read, as the refusal says it ("Not a chest radiograph (...)")
KIND_REASONS = {
    "photograph": "looks like a photograph",
    "document": "looks like a document, chart or screenshot",
    "cross-section": "looks like a CT or MR slice",
    "cropped film": "looks like part of a film: open the whole film",
    "rotated film": "looks rotated or upside down: the models read upright frontal films",
    "other": "does not look like a chest film",
}
UNLIKE_ANY = "unlike the chest films the models were trained on"


@dataclass(frozen=True)
class GateSpec:
    """The card's ``gate`` section: what the thresholds mean and where the feature statistics are."""

    ood_threshold: float  # largest Mahalanobis distance of a film that passes
    ood_sha256: str
    ood_file: str = OOD_FILE
    fitted: dict[str, Any] = field(default_factory=dict)  # how the thresholds were chosen (shown in the card)

    @classmethod
    def from_card(cls, section: dict[str, Any]) -> GateSpec:
        """Parse and check the section; raises ``ValueError``."""
        threshold = float(section.get("ood_threshold", "nan"))
        if not np.isfinite(threshold) or threshold <= 0:
            raise ValueError("gate.ood_threshold must be a positive number")
        name = str(section.get("ood_file", OOD_FILE))
        if Path(name).name != name:
            raise ValueError("gate.ood_file must be a file name inside the bundle")
        return cls(threshold, str(section.get("ood_sha256", "")), name, dict(section.get("fitted", {})))


@dataclass(frozen=True)
class GateVerdict:
    """What the gate says about one image."""

    ok: bool
    reason: str  # "" when ok; else the refusal, e.g. "Not a chest radiograph (looks like a photograph): ..."
    kind: str  # the most likely kind (``chest film`` when ok)
    chest: float  # calibrated score of ``chest film``
    distance: float  # Mahalanobis distance over its limit (> 1: unlike the training films)
    adult: float  # calibrated score of ``adult`` (meaningful when ok)
    population: str  # "adult" | "child": the age group the pixels suggest (when ok), else ""


class Gate:
    """Runs a gate bundle: ``check(image)`` / ``check_batch(images)`` → :class:`GateVerdict`."""

    def __init__(self, bundle: Bundle, device: str = "auto", threads: int | None = None) -> None:
        card = bundle.card
        if card.role != "gate" or CHEST not in card.classes or ADULT not in card.classes:
            raise BundleError(f"{bundle.name}: not a gate bundle (needs role gate, classes {CHEST!r}, "
                              f"{ADULT!r})")
        try:
            self.spec = GateSpec.from_card(card.gate)
        except ValueError as exc:
            raise BundleError(f"{bundle.name}: invalid gate section ({exc})") from None
        self.bundle = bundle
        self.predictor = Predictor(bundle, device=device, threads=threads)
        self.kinds = [c for c in card.classes if c != ADULT]
        self._mean, self._precision = self._statistics()

    @property
    def name(self) -> str:
        """The gate bundle's name and version, for reports."""
        return f"{self.bundle.name} v{self.bundle.card.version}"

    def _statistics(self) -> tuple[np.ndarray, np.ndarray]:
        from safetensors.numpy import load_file

        path = self.bundle.path / self.spec.ood_file
        if not path.is_file():
            raise BundleError(f"{self.bundle.name}: {self.spec.ood_file} is missing")
        if sha256_of(path) != self.spec.ood_sha256:
            raise BundleError(f"{self.bundle.name}: {self.spec.ood_file} does not match the sha256 in its "
                              "card: refusing to use it")
        stats = load_file(str(path))
        mean, precision = stats["mean"].astype(np.float64), stats["precision"].astype(np.float64)
        if precision.shape != (mean.size, mean.size) or not np.isfinite(precision).all():
            raise BundleError(f"{self.bundle.name}: {self.spec.ood_file} holds no usable statistics")
        return mean, precision

    def distance(self, features: np.ndarray) -> np.ndarray:
        """Mahalanobis distance of pooled feature vectors (N, C) to the training chest films."""
        centred = np.atleast_2d(features).astype(np.float64) - self._mean
        return np.sqrt(np.maximum(np.einsum("nc,cd,nd->n", centred, self._precision, centred), 0.0))

    def load(self) -> None:
        """Read and verify the weights and warm the network up (idempotent)."""
        self.predictor.load()

    def check(self, image: XRayImage) -> GateVerdict:
        """The verdict for one image."""
        return self.check_batch([image])[0]

    def check_batch(self, images: Sequence[XRayImage]) -> list[GateVerdict]:
        """One forward pass for several images."""
        predictions = self.predictor.predict_batch(images, with_cams=False)
        return [self.verdict(p) for p in predictions]

    def verdict(self, prediction: Prediction) -> GateVerdict:
        """The verdict from the gate network's prediction for an image (scores and pooled features)."""
        card = self.bundle.card
        scores = prediction.scores
        assert prediction.features is not None
        ratio = float(self.distance(prediction.features)[0]) / self.spec.ood_threshold
        kind = max(self.kinds, key=scores.__getitem__)
        chest, adult = scores[CHEST], scores[ADULT]
        if chest >= card.thresholds[CHEST] and ratio <= 1.0:
            population = ADULT if adult >= card.thresholds[ADULT] else "child"
            return GateVerdict(True, "", CHEST, chest, ratio, adult, population)
        if kind == CHEST:  # the classifier would pass it; the distance does not
            kind = max((k for k in self.kinds if k != CHEST), key=scores.__getitem__)
            why = UNLIKE_ANY if chest >= card.thresholds[CHEST] else KIND_REASONS.get(kind, UNLIKE_ANY)
        else:
            why = KIND_REASONS.get(kind, UNLIKE_ANY)
        return GateVerdict(False, refusal(why), kind, chest, ratio, adult, "")


def find_gate(extra_dirs: Iterable[str | Path] = ()) -> Bundle | None:
    """The installed gate bundle (the last one on the search path wins), or None."""
    gates = find_bundles(extra_dirs, role="gate")
    return gates[-1] if gates else None
