"""The one place for LUT math: Modality LUT, VOI window/LUT (DICOM PS3.3 C.11), inversion, 8-bit output."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from pydicom.pixels.processing import apply_modality_lut

from xrayviewer.imaging.image import VoiLut, Window

if TYPE_CHECKING:
    from pydicom import Dataset

    from xrayviewer.imaging.image import XRayImage

WINDOW_FUNCTIONS = ("LINEAR", "LINEAR_EXACT", "SIGMOID")


def apply_modality(stored: np.ndarray, ds: Dataset) -> np.ndarray:
    """Stored values → modality units (Rescale Slope/Intercept or Modality LUT Sequence), float32."""
    return np.asarray(apply_modality_lut(stored, ds), dtype=np.float32)


def apply_window(pixels: np.ndarray, window: Window) -> np.ndarray:
    """VOI window → [0, 1] float32 (PS3.3 C.11.2.1.2 LINEAR, C.11.2.1.3 LINEAR_EXACT and SIGMOID)."""
    x = np.asarray(pixels, dtype=np.float32)
    center, width = float(window.center), float(window.width)
    function = window.function.upper()
    if function == "SIGMOID":
        exponent = np.clip(-4.0 * (x - center) / max(width, 1e-6), -80.0, 80.0)  # no float32 overflow
        return (1.0 / (1.0 + np.exp(exponent))).astype(np.float32)
    if function == "LINEAR":
        center, width = center - 0.5, max(width, 1.0) - 1.0
    elif function != "LINEAR_EXACT":
        raise ValueError(f"unknown VOI LUT function {window.function!r}")
    if width <= 0:  # LINEAR with width 1: a threshold at the centre
        return (x > center).astype(np.float32)
    return np.clip((x - center) / np.float32(width) + np.float32(0.5), 0.0, 1.0, dtype=np.float32)


def apply_voi_lut_table(pixels: np.ndarray, voi_lut: VoiLut) -> np.ndarray:
    """VOI LUT Sequence table (PS3.3 C.11.2.1.1) applied to modality values, scaled to [0, 1] float32."""
    index = np.rint(np.asarray(pixels, dtype=np.float64)) - voi_lut.first_mapped
    index = np.clip(index, 0, len(voi_lut.table) - 1).astype(np.intp)
    top = max(float(2**voi_lut.bits - 1), 1.0)
    return np.clip(voi_lut.table[index].astype(np.float32) / np.float32(top), 0.0, 1.0)


def render(image: XRayImage, window: Window | None = None, invert: bool | None = None) -> np.ndarray:
    """The displayed picture in [0, 1]: VOI LUT (default) or window, then MONOCHROME1/INVERSE inversion."""
    if window is None and image.voi_lut is not None:
        values = apply_voi_lut_table(image.pixels, image.voi_lut)
    else:
        values = apply_window(image.pixels, window or image.window)
    if image.invert if invert is None else invert:
        values = np.float32(1.0) - values
    return values


def to_uint8(values01: np.ndarray) -> np.ndarray:
    """[0, 1] floats → uint8 for display (rounded, clipped)."""
    return np.rint(np.clip(values01, 0.0, 1.0) * 255.0).astype(np.uint8)
