"""Imaging core: files (DICOM, PNG, JPEG, TIFF) to calibrated pixels and display windows. No Qt, no torch."""

from xrayviewer.imaging.errors import (
    DecoderMissingError,
    ImageError,
    UnreadableImageError,
    UnsupportedImageError,
)
from xrayviewer.imaging.image import VoiLut, Window, XRayImage
from xrayviewer.imaging.reader import open_image

__all__ = [
    "DecoderMissingError",
    "ImageError",
    "UnreadableImageError",
    "UnsupportedImageError",
    "VoiLut",
    "Window",
    "XRayImage",
    "open_image",
]
