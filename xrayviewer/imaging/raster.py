"""PNG (8/16-bit), JPEG and TIFF files → XRayImage, decoded with OpenCV."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from xrayviewer.imaging.colour import COLOUR_WARNING, colour_fraction, rgb_to_grey
from xrayviewer.imaging.errors import UnreadableImageError
from xrayviewer.imaging.image import XRayImage
from xrayviewer.imaging.windows import bit_depth_window, full_range_window

logger = logging.getLogger(__name__)

# Magic numbers at the start of the file → format name.
SIGNATURES = {
    b"\x89PNG\r\n\x1a\n": "PNG",
    b"\xff\xd8\xff": "JPEG",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
}


def sniff_raster(head: bytes) -> str | None:
    """The raster format whose signature starts ``head``, or None."""
    return next((fmt for magic, fmt in SIGNATURES.items() if head.startswith(magic)), None)


def _significant_bits(grey: np.ndarray) -> int:
    """8 for 8-bit files; for 16-bit files the bits the values use (like DICOM Bits Stored), at least 8."""
    if grey.dtype == np.uint8:
        return 8
    return max(8, int(grey.max()).bit_length())


def read_raster(path: Path, data: bytes, fmt: str) -> XRayImage:
    """Decode a PNG/JPEG/TIFF; default window = the file's bit depth, so 8-bit value v renders as v / 255."""
    if fmt == "JPEG" and not data.rstrip(b"\x00").endswith(b"\xff\xd9"):
        raise UnreadableImageError("JPEG file is truncated (no end-of-image marker)")
    # ANYDEPTH keeps 16-bit, ANYCOLOR keeps grey as grey; both honour the EXIF orientation.
    array = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR)
    if array is None or array.size == 0:
        raise UnreadableImageError(f"{fmt} file is corrupt or truncated and could not be decoded")
    warnings = []
    coloured = 0.0
    if array.ndim == 3:
        rgb = cv2.cvtColor(array, cv2.COLOR_BGR2RGB if array.shape[2] == 3 else cv2.COLOR_BGRA2RGB)
        grey = np.rint(rgb_to_grey(rgb)).astype(array.dtype)
        coloured = colour_fraction(rgb, float(np.iinfo(array.dtype).max) if array.dtype.kind == "u" else 1.0)
        if coloured > 0:  # grey pictures stored as RGB (many JPEGs) are not colour images
            warnings.append(COLOUR_WARNING)
        photometric = "RGB"
    else:
        grey = array
        photometric = "MONOCHROME2"
    if np.issubdtype(grey.dtype, np.integer):
        window = bit_depth_window(_significant_bits(grey))
    else:
        window = full_range_window(grey)
    logger.debug("decoded %s %dx%d %s", fmt, grey.shape[0], grey.shape[1], grey.dtype)
    return XRayImage(
        pixels=grey.astype(np.float32),
        photometric=photometric,
        window=window,
        metadata={"Format": fmt, "Rows": str(grey.shape[0]), "Columns": str(grey.shape[1]),
                  "Bit depth": str(grey.dtype.itemsize * 8)},
        source=path,
        warnings=warnings,
        format=fmt,
        colour_fraction=coloured,
    )
