"""``open_image``: an X-ray file (DICOM, PNG, JPEG, TIFF; detected by content) → XRayImage."""

from __future__ import annotations

import logging
from os import PathLike
from pathlib import Path

from xrayviewer.imaging.dicom import dicom_image, looks_like_dicom, read_dataset
from xrayviewer.imaging.errors import ImageError, UnreadableImageError, UnsupportedImageError
from xrayviewer.imaging.files import has_dicom_marker
from xrayviewer.imaging.image import XRayImage
from xrayviewer.imaging.raster import read_raster, sniff_raster

logger = logging.getLogger(__name__)

_NOT_AN_IMAGE = "file is not an image XRayViewer can open (expected DICOM, PNG, JPEG or TIFF)"


def _open(path: Path) -> XRayImage:
    if not path.is_file():
        raise UnreadableImageError("file not found" if not path.exists() else "not a file")
    with path.open("rb") as fh:
        head = fh.read(132)
    if not head:
        raise UnreadableImageError("file is empty (0 bytes)")
    fmt = sniff_raster(head)
    if fmt:
        return read_raster(path, path.read_bytes(), fmt)
    if has_dicom_marker(head):
        return dicom_image(read_dataset(path), path)
    try:  # DICOM without preamble: accept only if the parsed header makes sense
        ds = read_dataset(path)
    except UnreadableImageError:
        ds = None
    if ds is None or not looks_like_dicom(ds):
        raise UnsupportedImageError(_NOT_AN_IMAGE)
    return dicom_image(ds, path)


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
