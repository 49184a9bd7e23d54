"""Class activation maps: closed-form for linear heads, autograd Grad-CAM otherwise, and their display.

For ``maps = relu(features(x))`` → global average pool → linear layer ``W``, the gradient of logit ``c``
with respect to ``maps`` is ``W[c] / (h·w)`` everywhere, so Grad-CAM at that layer is
``relu(Σ_k W[c, k] · maps_k) / (h·w)``: a weighted sum of the maps we already have from the forward pass,
no backward needed (:func:`linear_cams`). Other heads get true Grad-CAM (:func:`gradcam_from_maps`); it only
back-propagates through the pooling and the head, because the gradient at ``maps`` does not depend on the
backbone. Maps are returned at feature resolution; :func:`cam_to_image` puts one on the source pixel grid.

Which finding a heat map explains (:func:`explained_finding`), how strongly it is drawn
(:func:`heat_strength`, :func:`drawn_faint`) and the picture itself (:func:`compose_overlay`) are decided
here once, for the viewer, ``xrayviewer predict --cam-dir`` and the training report alike.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING

import cv2
import numpy as np
import torch
from matplotlib import colormaps
from torch import nn

from xrayviewer.engine.preprocess import Geometry

if TYPE_CHECKING:  # engine.predictor imports this module
    from xrayviewer.engine.predictor import Prediction

COLORMAP = "jet"  # matplotlib colormap of every heat map (viewer, predict --cam-dir, training report)


def linear_cams(maps: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Grad-CAM of every class of a linear head: (N, C, h, w) maps, (K, C) weight → (N, K, h, w), ≥ 0."""
    return torch.relu(torch.einsum("nchw,kc->nkhw", maps, weight.to(maps.dtype)))


def gradcam_from_maps(classifier: nn.Module, maps: torch.Tensor, classes: Sequence[int]) -> torch.Tensor:
    """Grad-CAM of the given class indices for any head on pooled maps: → (N, len(classes), h, w), ≥ 0."""
    with torch.inference_mode(False), torch.enable_grad():
        leaf = maps.detach().clone().float().requires_grad_(True)
        logits = classifier(torch.flatten(nn.functional.adaptive_avg_pool2d(leaf, 1), 1))
        out = []
        for k in classes:
            (grad,) = torch.autograd.grad(logits[:, k].sum(), leaf, retain_graph=True)
            alpha = grad.mean(dim=(2, 3), keepdim=True)
            out.append(torch.relu((alpha * leaf).sum(dim=1)))
        return torch.stack(out, dim=1).detach()


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
