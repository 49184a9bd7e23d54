"""Class activation maps in closed form from the forward pass's feature maps, and their display (numpy).

For ``maps = relu(features(x))`` → global average pool → linear layer ``W``, the gradient of logit ``c``
with respect to ``maps`` is ``W[c] / (h·w)`` everywhere, so Grad-CAM at that layer is
``relu(Σ_k W[c, k] · maps_k) / (h·w)``: a weighted sum of the maps we already have, no backward needed
(:func:`linear_cams`). The mlp head (BatchNorm → Dense → ReLU → Dropout → Dense) is piecewise linear in the
pooled features, so its gradient is closed-form too (:func:`mlp_gradcams`): true Grad-CAM without autograd,
and without torch (the ONNX Runtime path). Maps are returned at feature resolution; :func:`cam_to_image`
puts one on the source pixel grid.

Which finding a heat map explains (:func:`explained_finding`), how strongly it is drawn
(:func:`heat_strength`, :func:`drawn_faint`) and the picture itself (:func:`compose_overlay`) are decided
here once, for the viewer, ``xrayviewer predict --cam-dir`` and the training report alike.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np
from matplotlib import colormaps

from xrayviewer.engine.preprocess import Geometry

if TYPE_CHECKING:  # engine.predictor imports this module
    from xrayviewer.engine.predictor import Prediction

COLORMAP = "jet"  # matplotlib colormap of every heat map (viewer, predict --cam-dir, training report)


def linear_cams(maps: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Grad-CAM of every class of a linear head: (N, C, h, w) maps, (K, C) weight → (N, K, h, w), ≥ 0."""
    return np.maximum(np.einsum("nchw,kc->nkhw", maps, weight.astype(maps.dtype, copy=False)), 0)


BN_EPS = 1e-5  # torch.nn.BatchNorm1d's default, which the mlp head uses


@dataclass(frozen=True)
class HeadParams:
    """A head's tensors as numpy arrays: ``linear`` = (weight, bias); ``mlp`` = BatchNorm folded into
    (scale, shift), then the two dense layers."""

    head: str
    weight: np.ndarray  # linear: (K, C); mlp: the output layer (K, H)
    scale: np.ndarray | None = None  # mlp: BatchNorm's gamma / sqrt(var + eps), (C,)
    shift: np.ndarray | None = None  # mlp: beta - mean * scale, (C,)
    hidden_weight: np.ndarray | None = None  # mlp: (H, C)
    hidden_bias: np.ndarray | None = None  # mlp: (H,)

    @classmethod
    def from_state(cls, state: Mapping[str, np.ndarray], head: str) -> HeadParams:
        """From a state dict's ``classifier.*`` tensors (``engine.models``' layer numbering)."""
        if head == "linear":
            return cls("linear", state["classifier.weight"])
        scale = state["classifier.0.weight"] / np.sqrt(state["classifier.0.running_var"] + BN_EPS)
        shift = state["classifier.0.bias"] - state["classifier.0.running_mean"] * scale
        return cls("mlp", state["classifier.4.weight"], scale, shift, state["classifier.1.weight"],
                   state["classifier.1.bias"])


def mlp_gradcams(maps: np.ndarray, head: HeadParams) -> np.ndarray:
    """Grad-CAM of every class of the mlp head, from the closed-form gradient of each logit with respect to
    the pooled features (the ReLU's active units pick the rows): → (N, K, h, w), ≥ 0."""
    assert head.scale is not None and head.shift is not None
    assert head.hidden_weight is not None and head.hidden_bias is not None
    h, w = maps.shape[-2:]
    pooled = maps.mean(axis=(2, 3))
    active = ((pooled * head.scale + head.shift) @ head.hidden_weight.T + head.hidden_bias) > 0
    gradient = np.einsum("kh,nh,hc->nkc", head.weight, active.astype(maps.dtype), head.hidden_weight)
    alpha = gradient * head.scale / (h * w)  # d logit / d maps, the same at every position
    return np.maximum(np.einsum("nkc,nchw->nkhw", alpha.astype(maps.dtype), maps), 0)


def head_cams(maps: np.ndarray, head: HeadParams) -> np.ndarray:
    """CAMs (N, K, h, w) of every class of either head."""
    return linear_cams(maps, head.weight) if head.head == "linear" else mlp_gradcams(maps, head)


def cam_to_image(cam: np.ndarray, geometry: Geometry) -> np.ndarray:
    """A feature-resolution CAM upsampled onto the source pixel grid, scaled to [0, 1] (0 outside the box)."""
    rows, cols = geometry.source_shape
    top, left, height, width = geometry.box
    peak = float(np.max(cam)) if cam.size else 0.0
    scaled = (cam / peak if peak > 0 else np.zeros_like(cam)).astype(np.float32)
    inside = cv2.resize(scaled, (width, height), interpolation=cv2.INTER_LINEAR)
    out = np.zeros((rows, cols), np.float32)
    r0, c0 = max(top, 0), max(left, 0)
    r1, c1 = min(top + height, rows), min(left + width, cols)
    out[r0:r1, c0:c1] = inside[r0 - top : r1 - top, c0 - left : c1 - left]
    return np.clip(out, 0.0, 1.0)


def explained_finding(predictions: Sequence[Prediction]) -> tuple[str, str] | None:
    """(model, finding) whose heat map is shown by default: the highest-scoring positive finding over all
    predictions, else the top finding of the first one; None without predictions. A card's negative
    classes ("normal") are not findings: never chosen."""
    positives = [(p.scores[c], p.model, c) for p in predictions for c in p.positive
                 if c not in p.negative_classes]
    if positives:
        _, model, finding = max(positives, key=lambda item: item[0])
        return model, finding
    if not predictions:
        return None
    first = predictions[0]
    findings = [c for c in first.scores if c not in first.negative_classes]
    return first.model, max(findings, key=first.scores.__getitem__)


FAINTEST = 0.25  # heat_strength() floor: a map the user asks for stays visible


def heat_strength(score: float, threshold: float) -> float:
    """How strongly a finding's heat map is drawn, in [FAINTEST, 1]: full at or above the finding's
    threshold, fading with score / threshold below it. Maps are normalised per image, so without this a
    finding the model rejects would glow as brightly as one it suggests."""
    if threshold <= 0 or score >= threshold:
        return 1.0
    return max(FAINTEST, score / threshold)


def finding_strength(prediction: Prediction, finding: str) -> float:
    """:func:`heat_strength` of ``prediction``'s ``finding`` (no threshold on the card: full strength)."""
    return heat_strength(float(prediction.scores[finding]), float(prediction.thresholds.get(finding, 0.0)))


def drawn_faint(prediction: Prediction | None, finding: str) -> bool:
    """True when the heat map of ``prediction``'s ``finding`` is drawn below full strength (it scores under
    its threshold); False without a prediction or for a class it does not score."""
    if prediction is None or finding not in prediction.scores:
        return False
    return finding_strength(prediction, finding) < 1.0


def compose_overlay(
    prediction: Prediction, finding: str, colormap: str = COLORMAP, alpha: float = 1.0
) -> np.ndarray:
    """uint8 RGBA (rows, cols, 4) on the source pixel grid: ``finding``'s CAM at :func:`finding_strength`,
    coloured by ``colormap`` with opacity ``alpha`` × value. Raises ``KeyError`` without a CAM for it."""
    heat = cam_to_image(prediction.cams[finding], prediction.geometry) * finding_strength(prediction, finding)
    return overlay_rgba(heat, colormap, alpha)


def overlay_rgba(cam_on_source: np.ndarray, colormap: str = COLORMAP, alpha: float = 0.5) -> np.ndarray:
    """uint8 RGBA (rows, cols, 4): the colormap of a [0, 1] map, opacity ``alpha`` × value (cold = clear)."""
    index = np.rint(np.clip(cam_on_source, 0.0, 1.0) * 255.0).astype(np.uint8)
    return _overlay_table(colormap, float(alpha))[index]


@functools.lru_cache(maxsize=16)
def _overlay_table(colormap: str, alpha: float) -> np.ndarray:
    """256-entry RGBA lookup table: a table lookup is ~50× faster than evaluating the colormap per pixel."""
    levels = np.linspace(0.0, 1.0, 256)
    table = colormaps[colormap](levels)
    table[:, 3] = alpha * levels
    return np.rint(table * 255.0).astype(np.uint8)


def blend(display01: np.ndarray, rgba: np.ndarray) -> np.ndarray:
    """uint8 RGB: an RGBA overlay composited over a grey picture in [0, 1] of the same shape."""
    grey = np.repeat(np.clip(display01, 0.0, 1.0)[..., None], 3, axis=2)
    a = rgba[..., 3:4].astype(np.float32) / 255.0
    return np.rint((grey * (1.0 - a) + rgba[..., :3].astype(np.float32) / 255.0 * a) * 255.0).astype(np.uint8)
