"""``open_image``: an X-ray file (DICOM, PNG, JPEG, TIFF; detected by content) → XRayImage."""

from __future__ import annotations

import logging
from os import PathLike
from pathlib import Path

from xrayviewer.imaging.dicom import looks_like_dicom, read_dataset, read_dicom
from xrayviewer.imaging.errors import ImageError, UnreadableImageError, UnsupportedImageError
from xrayviewer.imaging.image import XRayImage
from xrayviewer.imaging.raster import read_raster, sniff_raster

logger = logging.getLogger(__name__)

_NOT_AN_IMAGE = "file is not an image XRayViewer can open (expected DICOM, PNG, JPEG or TIFF)"


def _open(path: Path) -> XRayImage:
    if not path.is_file():
        raise UnreadableImageError("file not found" if not path.exists() else "not a file")
    data = path.read_bytes()
    if not data:
        raise UnreadableImageError("file is empty (0 bytes)")
    fmt = sniff_raster(data[:16])
    if fmt:
        return read_raster(path, data, fmt)
    if data[128:132] == b"DICM":
        return read_dicom(path)
    try:  # DICOM without preamble: accept only if the parsed header makes sense
        plausible = looks_like_dicom(read_dataset(path))
    except UnreadableImageError:
        plausible = False
    if not plausible:
        raise UnsupportedImageError(_NOT_AN_IMAGE)
    return read_dicom(path)


def open_image(path: str | PathLike[str]) -> XRayImage:
    """Open an image file; raises only ``ImageError`` subclasses (messages never contain patient data)."""
    try:
        return _open(Path(path))
    except ImageError:
        raise
    except MemoryError as exc:
        raise UnsupportedImageError("image is too large to open in the available memory") from exc
    except Exception as exc:  # a decoder bug must not crash the viewer: report it as unreadable
        logger.warning("unexpected %s while opening an image", type(exc).__name__)
        raise UnreadableImageError(f"file could not be read ({type(exc).__name__})") from exc
