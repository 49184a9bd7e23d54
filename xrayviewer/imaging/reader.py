"""``open_image``: an X-ray file (DICOM, PNG, JPEG, TIFF; detected by content) → XRayImage."""

from __future__ import annotations

import logging
from os import PathLike
from pathlib import Path

import numpy as np

from xrayviewer.imaging.dicom import dicom_image, looks_like_dicom, read_dataset
from xrayviewer.imaging.errors import ImageError, UnreadableImageError, UnsupportedImageError
from xrayviewer.imaging.files import has_dicom_marker, open_regular
from xrayviewer.imaging.guards import captured_warnings, check_file_size
from xrayviewer.imaging.image import XRayImage
from xrayviewer.imaging.raster import read_raster, sniff_raster

logger = logging.getLogger(__name__)

_NOT_AN_IMAGE = "file is not an image XRayViewer can open (expected DICOM, PNG, JPEG or TIFF)"
_HEAD = 132


def _open(path: Path) -> XRayImage:
    handle, size = open_regular(path)
    with handle:
        if size == 0:
            raise UnreadableImageError("file is empty (0 bytes)")
        check_file_size(size)
        head = handle.read(_HEAD)
        # "DICM" first: PS3.10 lets the 128-byte preamble be anything, a TIFF header included
        if has_dicom_marker(head):
            handle.seek(0)
            return dicom_image(read_dataset(handle), path)
        fmt = sniff_raster(head)
        if fmt:
            return read_raster(path, head + handle.read(), fmt)
        handle.seek(0)
        try:  # DICOM without preamble: accept only if the parsed header makes sense
            ds = read_dataset(handle)
        except UnreadableImageError:
            ds = None
        if ds is None or not looks_like_dicom(ds):
            raise UnsupportedImageError(_NOT_AN_IMAGE)
        return dicom_image(ds, path)


def _checked(image: XRayImage) -> XRayImage:
    """The layer's promise, checked once: 2-D float32 pixels, all finite, at least one pixel."""
    pixels = image.pixels
    if pixels.ndim != 2 or pixels.size == 0 or pixels.dtype != np.float32 or not np.isfinite(pixels).all():
        logger.warning("decoder returned %s %s pixels", pixels.shape, pixels.dtype)
        raise UnreadableImageError("pixel data could not be decoded into a 2-D picture of finite values")
    return image


def open_image(path: str | PathLike[str]) -> XRayImage:
    """Open an image file; raises only ``ImageError`` subclasses (messages never contain patient data).
    Warnings raised while reading are captured and logged scrubbed (``imaging.guards``)."""
    try:
        with captured_warnings():
            return _checked(_open(Path(path)))
    except ImageError:
        raise
    except MemoryError as exc:
        raise UnsupportedImageError("image is too large to open in the available memory") from exc
    except RecursionError as exc:
        raise UnreadableImageError("DICOM header nests sequences too deeply: the file is corrupt") from exc
    except Exception as exc:  # a decoder bug must not crash the viewer: report it as unreadable
        logger.warning("unexpected %s while opening an image", type(exc).__name__)
        raise UnreadableImageError(f"file could not be read ({type(exc).__name__})") from exc
