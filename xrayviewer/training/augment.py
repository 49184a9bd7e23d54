"""Training augmentation on batches of preprocessed tensors (xrv scale), driven by a seeded generator.

One affine warp per image combines rotation, random resized crop (zoom + aspect + shift) and the optional
horizontal flip; then brightness/contrast jitter, then (with probability ``degrade``) a blur to a random
resolution. Areas warped in from outside the film are black.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from xrayviewer.engine.preprocess import XRV_SCALE
from xrayviewer.training.config import AugmentConfig


def _uniform(n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator)


def augment_batch(x: torch.Tensor, config: AugmentConfig, generator: torch.Generator) -> torch.Tensor:
    """Randomly transformed copy of ``x`` (N, 1, S, S); the same generator state gives the same output."""
    n = x.shape[0]
    angle = _uniform(n, -config.rotation_deg, config.rotation_deg, generator) * (math.pi / 180)
    area = _uniform(n, *config.crop_scale, generator)
    log_ratio = _uniform(n, math.log(config.crop_ratio[0]), math.log(config.crop_ratio[1]), generator)
    ratio = log_ratio.exp()
    sx, sy = (area * ratio).sqrt().clamp(max=1.0), (area / ratio).sqrt().clamp(max=1.0)
    shift = _uniform(2 * n, -config.shift, config.shift, generator).view(2, n) * 2  # grid spans [-1, 1]
    flip = torch.rand(n, generator=generator) < 0.5 if config.hflip else torch.zeros(n, dtype=torch.bool)
    sx = torch.where(flip, -sx, sx)
    cos, sin = angle.cos(), angle.sin()
    theta = torch.stack(
        [torch.stack([cos * sx, -sin * sy, shift[0]], 1), torch.stack([sin * sx, cos * sy, shift[1]], 1)], 1
    ).to(x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    out = (
        F.grid_sample(x + XRV_SCALE, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        - XRV_SCALE
    )
    contrast = _uniform(n, 1 - config.contrast, 1 + config.contrast, generator).to(x.dtype).view(n, 1, 1, 1)
    brightness = _uniform(n, -config.brightness, config.brightness, generator).to(x.dtype).view(n, 1, 1, 1)
    mean = out.mean(dim=(1, 2, 3), keepdim=True)
    out = (out - mean) * contrast + mean + brightness * 2 * XRV_SCALE
    if config.degrade > 0:  # no draws otherwise: runs without it keep their random stream
        out = _degrade(out, config, generator)
    return out.clamp(-XRV_SCALE, XRV_SCALE)


def _degrade(out: torch.Tensor, config: AugmentConfig, generator: torch.Generator) -> torch.Tensor:
    """Blur each image with probability ``config.degrade``: area-down to a random side, bilinear back up."""
    n = out.shape[0]
    blurred = torch.rand(n, generator=generator) < config.degrade
    sides = _uniform(n, *config.degrade_size, generator).round().int()
    for i in torch.nonzero(blurred).flatten().tolist():
        side = min(int(sides[i]), out.shape[-1])
        small = F.interpolate(out[i : i + 1], size=(side, side), mode="area")
        out[i] = F.interpolate(small, size=out.shape[-2:], mode="bilinear", align_corners=False)[0]
    return out
