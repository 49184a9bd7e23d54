"""Display windows computed from pixels: automatic percentile window, full range, bit depth, chest presets."""

from __future__ import annotations

import numpy as np

from xrayviewer.imaging.image import Window

AUTO_PERCENTILES = (0.5, 99.5)
_SAMPLE_SIDE = 512  # percentiles are taken on a strided sample of at most ~512×512 pixels


def range_window(low: float, high: float, source: str, name: str = "") -> Window:
    """LINEAR window that maps ``low`` to 0 and ``high`` to 1 exactly (PS3.3 C.11.2.1.2)."""
    high = max(float(high), float(low))
    return Window(center=(low + high + 1.0) / 2.0, width=high - low + 1.0, source=source, name=name)


def _sample(pixels: np.ndarray) -> np.ndarray:
    step = max(1, int(np.ceil(max(pixels.shape[:2]) / _SAMPLE_SIDE)))
    sample = pixels[::step, ::step]
    return sample[np.isfinite(sample)]


def auto_window(pixels: np.ndarray) -> Window:
    """Robust default: the 0.5–99.5 percentile range of the pixel values."""
    sample = _sample(pixels)
    if sample.size == 0:
        return range_window(0.0, 1.0, "auto percentile", "Auto")
    low, high = np.percentile(sample, AUTO_PERCENTILES)
    return range_window(float(low), float(high), "auto percentile", "Auto")


def full_range_window(pixels: np.ndarray) -> Window:
    """Window spanning the minimum to the maximum pixel value."""
    finite = pixels[np.isfinite(pixels)]
    if finite.size == 0:
        return range_window(0.0, 1.0, "full range", "Full range")
    return range_window(float(finite.min()), float(finite.max()), "full range", "Full range")


def bit_depth_window(bits: int, signed: bool = False) -> Window:
    """Window spanning every value of a ``bits``-bit integer: 8-bit value v renders as v / 255."""
    low = -(2 ** (bits - 1)) if signed else 0
    return range_window(float(low), float(low + 2**bits - 1), "bit depth", f"{bits}-bit range")


# CT presets in Hounsfield units (centre, width).
_CT_PRESETS = {"Lung": (-600.0, 1500.0), "Mediastinum": (50.0, 350.0), "Bone": (400.0, 1800.0)}
# Radiograph presets as (centre, width) fractions of the auto range, in display brightness
# (0 = black, 1 = white): lung widens the dark field, mediastinum the bright soft tissue, bone the brightest.
_RADIOGRAPH_PRESETS = {"Lung": (0.40, 0.80), "Mediastinum": (0.65, 0.50), "Bone": (0.80, 0.45)}


def chest_presets(pixels: np.ndarray, invert: bool = False, modality: str = "") -> list[Window]:
    """Lung / Mediastinum / Bone windows for this image: HU presets for CT, else relative to the auto range.

    ``invert`` is the image's display inversion (MONOCHROME1): presets are defined on display brightness,
    so for inverted images the centre is mirrored in modality units.
    """
    if modality.upper() == "CT":
        return [Window(c, w, source="preset", name=n) for n, (c, w) in _CT_PRESETS.items()]
    auto = auto_window(pixels)
    low, span = auto.center - auto.width / 2.0, auto.width
    presets = []
    for name, (centre, width) in _RADIOGRAPH_PRESETS.items():
        brightness = 1.0 - centre if invert else centre
        presets.append(Window(low + brightness * span, max(width * span, 1.0), source="preset", name=name))
    return presets
