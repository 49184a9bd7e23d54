"""Colour → grey conversion shared by the DICOM and raster readers."""

from __future__ import annotations

import numpy as np

# ITU-R BT.601 luma weights (the same as OpenCV's and Pillow's RGB → L).
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)

COLOUR_WARNING = "colour image converted to grey: the model was trained on grey radiographs"
CHROMA_FRACTION = 0.1  # a pixel counts as coloured when its channels differ by 10 % of full scale


def rgb_to_grey(rgb: np.ndarray) -> np.ndarray:
    """(rows, cols, 3[+alpha]) RGB → (rows, cols) float32 luma in the input's value scale."""
    return np.asarray(rgb[..., :3], dtype=np.float32) @ _LUMA


def colour_fraction(rgb: np.ndarray, full_scale: float) -> float:
    """Share of pixels whose R, G, B differ by more than ``CHROMA_FRACTION`` of ``full_scale``: 0 for grey
    stored as RGB, small for a film with a coloured arrow, large for a photograph."""
    channels = np.asarray(rgb[..., :3])
    chroma = channels.max(axis=-1).astype(np.float32) - channels.min(axis=-1)
    return float(np.mean(chroma > CHROMA_FRACTION * full_scale)) if chroma.size else 0.0
