"""PNG (8/16-bit), JPEG and TIFF files → XRayImage, decoded with OpenCV.

The image size is read from the file's own header (PNG IHDR, JPEG SOF, TIFF IFD 0) and checked against
``guards.MAX_PIXELS`` before OpenCV sees the data; OpenCV runs inside ``guards.native_decoder`` (its and
libpng's / libtiff's messages on stderr are captured).
"""

from __future__ import annotations

import logging
import struct
from pathlib import Path

import cv2
import numpy as np

from xrayviewer.imaging.colour import COLOUR_WARNING, colour_fraction, rgb_to_grey
from xrayviewer.imaging.errors import UnreadableImageError
from xrayviewer.imaging.guards import check_pixel_budget, finite_pixels, native_decoder
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


# JPEG start-of-frame markers (ITU T.81 B.1.1.3: every SOFn but DHT C4, JPG C8, DAC CC; ISO 14495-1: F7)
SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF, 0xF7})
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})  # TEM, RSTn: no length field


def _png_size(data: bytes) -> tuple[int, int]:
    if len(data) < 33 or data[12:16] != b"IHDR":
        raise UnreadableImageError("PNG header is truncated or corrupt (no IHDR chunk)")
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def jpeg_frame(data: bytes) -> tuple[int, int, int, int]:
    """(SOF marker, sample precision, rows, columns) from a JPEG or JPEG-LS stream's frame header, walking its
    marker segments from the SOI; ``UnreadableImageError`` naming what is wrong when there is none."""
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            raise UnreadableImageError("JPEG file is corrupt (no marker where its header expects one)")
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in _STANDALONE:
            i += 2
            continue
        if marker in SOF_MARKERS:
            if i + 9 > len(data):
                break
            rows, cols = struct.unpack(">HH", data[i + 5 : i + 9])
            return marker, data[i + 4], rows, cols
        if marker in (0xDA, 0xD9):  # scan or end of image before any frame header
            raise UnreadableImageError("JPEG file is corrupt (no frame header before its image data)")
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        i += 2 + length
    raise UnreadableImageError("JPEG file is truncated (it ends inside its header)")


def _jpeg_size(data: bytes) -> tuple[int, int]:
    _, _, height, width = jpeg_frame(data)
    if height == 0:
        raise UnreadableImageError("JPEG frame header gives no image height (DNL streams are not supported)")
    return width, height


# TIFF tags read from the first directory: ImageWidth, ImageLength, StripOffsets, StripByteCounts,
# TileOffsets, TileByteCounts
_TIFF_TAGS = (256, 257, 273, 279, 324, 325)


def _tiff_values(data: bytes, order: str, kind: int, count: int, field: bytes) -> list[int]:
    """A SHORT or LONG entry's values (inline in ``field`` when they fit, else at the offset it holds)."""
    size = 2 if kind == 3 else 4
    if count * size <= 4:
        raw = field[: count * size]
    else:
        (at,) = struct.unpack(order + "I", field)
        raw = data[at : at + count * size]
        if len(raw) < count * size:
            raise struct.error("cut off")
    return list(struct.unpack(f"{order}{count}{'H' if kind == 3 else 'I'}", raw))


def _tiff_size(data: bytes) -> tuple[int, int]:
    order = "<" if data[:2] == b"II" else ">"
    tags: dict[int, list[int]] = {}
    try:
        (offset,) = struct.unpack(order + "I", data[4:8])
        (count,) = struct.unpack(order + "H", data[offset : offset + 2])
        for k in range(count):
            entry = data[offset + 2 + 12 * k : offset + 14 + 12 * k]
            tag, kind, number, field = struct.unpack(order + "HHI4s", entry)
            if tag in _TIFF_TAGS and kind in (3, 4) and 0 < number <= 2**20:  # SHORT or LONG
                tags[tag] = _tiff_values(data, order, kind, number, field)
    except struct.error:
        raise UnreadableImageError("TIFF header is truncated or corrupt (its first directory is cut off)"
                                   ) from None
    if 256 not in tags or 257 not in tags:
        raise UnreadableImageError("TIFF header is corrupt (no image width or length in its first directory)")
    offsets, counts = tags.get(273, tags.get(324)), tags.get(279, tags.get(325))
    if offsets and counts:
        end = max(o + c for o, c in zip(offsets, counts, strict=False))
        if end > len(data):  # libtiff would fill the missing rows with black without a word
            raise UnreadableImageError(f"TIFF file is truncated: its image data ends at byte {end}, the file "
                                       f"at {len(data)}")
    return tags[256][0], tags[257][0]


_SIZE_READERS = {"PNG": _png_size, "JPEG": _jpeg_size, "TIFF": _tiff_size}


def header_size(data: bytes, fmt: str) -> tuple[int, int]:
    """(width, height) from the file's own header (PNG IHDR, JPEG SOF, TIFF IFD 0), without decoding."""
    width, height = _SIZE_READERS[fmt](data)
    if width == 0 or height == 0:
        raise UnreadableImageError(f"{fmt} header gives an empty image ({width} × {height} pixels)")
    return width, height


def _significant_bits(grey: np.ndarray) -> int:
    """8 for 8-bit files; for 16-bit files the bits the values use (like DICOM Bits Stored), at least 8."""
    if grey.dtype == np.uint8:
        return 8
    return max(8, int(grey.max()).bit_length())


def read_raster(path: Path, data: bytes, fmt: str) -> XRayImage:
    """Decode a PNG/JPEG/TIFF; default window = the file's bit depth, so 8-bit value v renders as v / 255."""
    width, height = header_size(data, fmt)
    check_pixel_budget(width * height, f"{fmt} header gives {width} × {height} pixels")
    if fmt == "JPEG" and not data.rstrip(b"\x00").endswith(b"\xff\xd9"):
        raise UnreadableImageError("JPEG file is truncated (no end-of-image marker)")
    corrupt = f"{fmt} file is corrupt or truncated and could not be decoded"
    # ANYDEPTH keeps 16-bit, ANYCOLOR keeps grey as grey; both honour the EXIF orientation.
    with native_decoder(corrupt):
        try:
            array = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR)
        except cv2.error:
            array = None
    if array is None or array.size == 0:
        raise UnreadableImageError(corrupt)
    warnings: list[str] = []
    coloured = 0.0
    if array.ndim == 3 and array.shape[2] < 3:  # grey + alpha: the grey channel
        array = np.ascontiguousarray(array[..., 0])
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
        grey = finite_pixels(grey, warnings, f"{fmt} pixel data")
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
