"""Colour → grey conversion shared by the DICOM and raster readers."""

from __future__ import annotations

import numpy as np

# ITU-R BT.601 luma weights (the same as OpenCV's and Pillow's RGB → L).
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)

COLOUR_WARNING = "colour image converted to grey: the model was trained on grey radiographs"


def rgb_to_grey(rgb: np.ndarray) -> np.ndarray:
    """(rows, cols, 3[+alpha]) RGB → (rows, cols) float32 luma in the input's value scale."""
    return np.asarray(rgb[..., :3], dtype=np.float32) @ _LUMA
