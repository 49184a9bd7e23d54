"""DICOM files → XRayImage with pydicom's pixel pipeline (pylibjpeg plugins for compressed syntaxes).

Order: read header → refuse non-images → check the pixel description (every Image Pixel module attribute,
with a message naming the bad one) and the pixel budget → check the transfer syntax against the data (native
or encapsulated; the codestream's own markers, size and precision) → decode the first frame (inside
``guards.native_decoder``) and check its shape → colour to grey → Modality LUT (rescale or LUT sequence,
checked finite) → header windows / VOI LUT → inversion flag.
"""

from __future__ import annotations

import logging
import re
import struct
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pydicom
from pydicom import Dataset
from pydicom.pixels import get_decoder
from pydicom.uid import UID, ImplicitVRLittleEndian, RLELossless

from xrayviewer.imaging import lut
from xrayviewer.imaging.colour import COLOUR_WARNING, colour_fraction, rgb_to_grey
from xrayviewer.imaging.errors import (
    DecoderMissingError,
    UnreadableImageError,
    UnsupportedImageError,
)
from xrayviewer.imaging.guards import MAX_PIXELS, finite_pixels, megapixels, native_decoder
from xrayviewer.imaging.image import ADULT_AGE_YEARS, VoiLut, Window, XRayImage
from xrayviewer.imaging.metadata import display_metadata
from xrayviewer.imaging.raster import jpeg_frame
from xrayviewer.imaging.windows import auto_window, bit_depth_window

logger = logging.getLogger(__name__)

MAX_FRAME_PIXELS = MAX_PIXELS  # one frame (Rows × Columns × Samples): guards.MAX_PIXELS says why
MAX_PIXEL_BYTES = 2**32  # 4 GiB of decoded pixel data over all frames
_SR_PREFIX = "1.2.840.10008.5.1.4.1.1.88."
_AGE = re.compile(r"(\d{1,3}) ?([DWMY]?)")  # Age String (PS3.5 6.2): "nnnD", "nnnW", "nnnM", "nnnY"
_AGE_UNITS_PER_YEAR = {"D": 365.25, "W": 365.25 / 7, "M": 12.0, "Y": 1.0}
PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
GREY = ("MONOCHROME1", "MONOCHROME2")
COLOUR = ("RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT", "YBR_PARTIAL_420")
RETIRED_PHOTOMETRIC = ("ARGB", "CMYK", "HSV", "YBR_PARTIAL_422")  # PS3.3 C.7.6.3.1.2: retired
_ITEM = b"\xfe\xff\x00\xe0"  # (FFFE,E000) Item tag, little endian
_SEQUENCE_END = b"\xfe\xff\xdd\xe0"
# transfer syntax → the SOF markers its streams may carry (ITU T.81 / ISO 14495-1): DCT (baseline,
# extended, progressive: the same decoders read them all right), lossless, JPEG-LS. Across families the
# label lies about the compression (lossy data called lossless...): refused.
_JPEG_FAMILY = {
    "1.2.840.10008.1.2.4.50": {0xC0, 0xC1, 0xC2}, "1.2.840.10008.1.2.4.51": {0xC0, 0xC1, 0xC2},
    "1.2.840.10008.1.2.4.57": {0xC3}, "1.2.840.10008.1.2.4.70": {0xC3},
    "1.2.840.10008.1.2.4.80": {0xF7}, "1.2.840.10008.1.2.4.81": {0xF7},
}
_J2K_FAMILY = {"1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91", "1.2.840.10008.1.2.4.92",
               "1.2.840.10008.1.2.4.93", "1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.4.202",
               "1.2.840.10008.1.2.4.203"}
_SOF_KIND = {0xC0: "JPEG baseline", 0xC1: "JPEG extended", 0xC2: "progressive JPEG", 0xC3: "lossless JPEG",
             0xF7: "JPEG-LS"}
_J2K_MAGIC = (b"\xff\x4f\xff\x51", b"\x00\x00\x00\x0cjP  ")


def read_dataset(source: Path | BinaryIO) -> Dataset:
    """Parse header and pixel data (preamble optional) from a path or an open binary file. Warnings are
    captured by the caller (``guards.captured_warnings``): they may quote header values."""
    try:
        ds = pydicom.dcmread(source, force=True)
        list(ds)  # convert every top-level element now, while warnings are captured
    except RecursionError:
        raise UnreadableImageError("DICOM header nests sequences too deeply: the file is corrupt") from None
    except (EOFError, struct.error) as exc:
        raise UnreadableImageError("DICOM header is truncated (the file ends inside an element)") from exc
    except Exception as exc:
        raise UnreadableImageError("DICOM header is truncated or corrupt") from exc
    return ds


def looks_like_dicom(ds: Dataset) -> bool:
    """Sanity check for files read without the 'DICM' preamble: plausible SOP class or image tags."""
    try:
        sop = str(ds.get("SOPClassUID", ""))
        return sop.startswith("1.2.840.10008.") or (_pixel_keyword(ds) is not None and "Rows" in ds)
    except Exception:
        return False


def _pixel_keyword(ds: Dataset) -> str | None:
    return next((k for k in PIXEL_KEYWORDS if k in ds), None)


def _refuse_non_images(ds: Dataset) -> str:
    meta = getattr(ds, "file_meta", None)
    stored_as = UID(str(getattr(meta, "MediaStorageSOPClassUID", "") or ""))
    sop = UID(str(ds.get("SOPClassUID") or stored_as))
    if sop.startswith(_SR_PREFIX):
        raise UnsupportedImageError("file is a DICOM Structured Report, not an image")
    keyword = _pixel_keyword(ds)
    if keyword is not None:
        return keyword
    if all(element.tag.group == 0x0002 for element in ds):
        raise UnreadableImageError("DICOM file holds no data set after its file meta header: the file is "
                                   "truncated or incomplete")
    if "Rows" in ds or "Image Storage" in sop.name or "Image Storage" in stored_as.name:
        raise UnreadableImageError("DICOM image has no pixel data: the file is truncated or incomplete")
    kind = sop.name if sop.is_valid and sop.name != sop else "object"
    raise UnsupportedImageError(f"file is a DICOM {kind} without pixel data, not an image")


@dataclass(frozen=True)
class PixelDescription:
    """The Image Pixel module (PS3.3 C.7.6.3), checked."""

    keyword: str  # PixelData | FloatPixelData | DoubleFloatPixelData
    rows: int
    cols: int
    frames: int
    samples: int
    bits_allocated: int
    bits_stored: int
    signed: bool
    photometric: str
    planar: int

    @property
    def native_bytes(self) -> int:
        """Bytes of native pixel data for every frame (1-bit data packed across frame boundaries)."""
        bits = self.rows * self.cols * self.samples * self.bits_allocated * self.frames
        if self.photometric == "YBR_FULL_422":
            bits = bits * 2 // 3
        return (bits + 7) // 8


def _invalid(text: str) -> UnreadableImageError:
    return UnreadableImageError(f"DICOM header is invalid: {text}")


def _whole(ds: Dataset, keyword: str, label: str, default: int | None = None) -> int:
    """A whole-number attribute (US, IS...): its one value, or ``default`` when absent; else a message."""
    value = ds.get(keyword)
    if value is None or value == "":
        if default is None:
            if keyword == "PixelRepresentation" or keyword.startswith("Bits"):
                raise UnreadableImageError(f"DICOM header lacks {label}: the pixel data cannot be read")
            raise UnreadableImageError(
                f"DICOM header lacks a valid image size (Rows, Columns, Bits): no {label}")
        return default
    if isinstance(value, (list, tuple, pydicom.multival.MultiValue)):
        raise _invalid(f"{label} holds {len(value)} values, one expected")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise _invalid(f"{label} is not a number") from None
    if not np.isfinite(number) or number != int(number):
        raise _invalid(f"{label} is not a whole number")
    return int(number)


def pixel_description(ds: Dataset, keyword: str) -> PixelDescription:
    """Every Image Pixel module attribute checked, in the order a reader needs them, with a message that
    names the bad one (values are numbers or defined terms: nothing else of the header is quoted)."""
    rows, cols = _whole(ds, "Rows", "Rows"), _whole(ds, "Columns", "Columns")
    frames = _whole(ds, "NumberOfFrames", "Number of Frames", default=1)
    if min(rows, cols) <= 0:
        raise UnreadableImageError(f"DICOM header gives an empty image size: {rows} × {cols} × {frames}")
    if frames <= 0:
        raise _invalid(f"Number of Frames is {frames} (at least 1)")
    samples = _whole(ds, "SamplesPerPixel", "Samples per Pixel", default=1)
    if samples not in (1, 3):
        if samples == 4:
            raise UnsupportedImageError("Samples per Pixel is 4 (a retired ARGB/CMYK image): not supported")
        raise _invalid(f"Samples per Pixel is {samples} (1 for grey or 3 for colour)")
    allocated = _whole(ds, "BitsAllocated", "Bits Allocated")
    if keyword == "PixelData":
        if allocated <= 0 or allocated > 64 or (allocated != 1 and allocated % 8):
            if allocated == 12:
                raise UnsupportedImageError("Bits Allocated is 12 (packed 12-bit pixels, retired): not "
                                            "supported")
            raise _invalid(f"Bits Allocated is {allocated} (1 or a multiple of 8 up to 64)")
        if allocated not in (1, 8, 16, 32, 64):
            raise UnsupportedImageError(f"Bits Allocated is {allocated}: only 1, 8, 16, 32 and 64 are "
                                        "supported")
        stored = _whole(ds, "BitsStored", "Bits Stored")
        if not 1 <= stored <= allocated:
            raise _invalid(f"Bits Stored is {stored} (1 to Bits Allocated, {allocated})")
        representation = _whole(ds, "PixelRepresentation", "Pixel Representation")
        if representation not in (0, 1):
            raise _invalid(f"Pixel Representation is {representation} (0 unsigned or 1 signed)")
    else:
        needed = 32 if keyword == "FloatPixelData" else 64
        if allocated != needed:
            label = "Float Pixel Data" if needed == 32 else "Double Float Pixel Data"
            raise _invalid(f"Bits Allocated is {allocated}, {label} needs {needed}")
        stored, representation = allocated, 1
    photometric = str(ds.get("PhotometricInterpretation") or "").strip().upper()
    if not photometric:
        raise UnreadableImageError("DICOM header lacks Photometric Interpretation: the pixel data cannot be "
                                   "read")
    if photometric in RETIRED_PHOTOMETRIC:
        raise UnsupportedImageError(f"Photometric Interpretation {photometric} is retired: not supported")
    if photometric not in (*GREY, "PALETTE COLOR", *COLOUR):
        raise UnsupportedImageError("Photometric Interpretation is not one XRayViewer knows (MONOCHROME1, "
                                    "MONOCHROME2, PALETTE COLOR, RGB, YBR_*)")
    needed = 3 if photometric in COLOUR else 1
    if samples != needed:
        raise _invalid(f"Samples per Pixel is {samples} but Photometric Interpretation {photometric} needs "
                       f"{needed}")
    planar = 0
    if samples == 3:
        planar = _whole(ds, "PlanarConfiguration", "Planar Configuration", default=0)
        if planar not in (0, 1):
            raise _invalid(f"Planar Configuration is {planar} (0 or 1)")
    # pydicom's decoders want these spelled out: the checked values, written back
    ds.SamplesPerPixel, ds.PhotometricInterpretation = samples, photometric
    if samples == 3:
        ds.PlanarConfiguration = planar
    return PixelDescription(keyword, rows, cols, frames, samples, allocated, stored, representation == 1,
                            photometric, planar)


def _refuse_absurd_size(pixel: PixelDescription) -> None:
    rows, cols, frames = pixel.rows, pixel.cols, pixel.frames
    size = f"DICOM header gives an implausible image size ({rows} × {cols} pixels × {frames} frames)"
    if rows * cols * pixel.samples > MAX_FRAME_PIXELS:
        raise UnsupportedImageError(f"image too large ({megapixels(rows * cols * pixel.samples)}, limit "
                                    f"{megapixels(MAX_FRAME_PIXELS)}): {size}; refusing to decode it")
    if rows * cols * frames * pixel.samples * pixel.bits_allocated // 8 > MAX_PIXEL_BYTES:
        raise UnsupportedImageError(f"image too large ({frames} frames of {megapixels(rows * cols)}, limit "
                                    f"{MAX_PIXEL_BYTES // 2**20} MB of pixels): {size}; refusing to decode "
                                    "it")


def _transfer_syntax(ds: Dataset) -> UID:
    meta = getattr(ds, "file_meta", None)
    syntax = getattr(meta, "TransferSyntaxUID", None)
    if syntax is None:  # no meta header: pydicom parsed it as implicit or explicit little endian
        syntax = ImplicitVRLittleEndian if ds.is_implicit_VR else UID("1.2.840.10008.1.2.1")
        ds.file_meta = getattr(ds, "file_meta", None) or pydicom.dataset.FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = syntax
    syntax = UID(str(syntax).strip("\x00 "))
    if not syntax.is_valid:
        raise UnreadableImageError("the file meta header's Transfer Syntax UID is malformed (not a UID)")
    if not syntax.is_private and str(syntax) in pydicom.uid.UID_dictionary and not syntax.is_transfer_syntax:
        raise UnreadableImageError(f"the file meta header's Transfer Syntax UID names a {syntax.type}, not a "
                                   "transfer syntax")
    return syntax


def _check_decoder(syntax: UID) -> None:
    if str(syntax) not in pydicom.uid.UID_dictionary:
        raise UnsupportedImageError("pixel data uses a transfer syntax XRayViewer does not know: not "
                                    "supported")
    try:
        decoder = get_decoder(syntax)
    except NotImplementedError as exc:
        raise UnsupportedImageError(f"pixel data compression '{syntax.name}' is not supported") from exc
    if not decoder.is_available:
        raise DecoderMissingError(
            f"{syntax.name} decoder missing: reinstall XRayViewer (its pylibjpeg plugins are not installed)"
        )


def first_fragment(data: bytes) -> bytes:
    """The first fragment of encapsulated pixel data (after the Basic Offset Table item)."""
    offset = 0
    for index in range(2):
        tag = data[offset : offset + 4]
        if tag == _SEQUENCE_END or (index == 1 and offset == len(data)):
            raise UnreadableImageError("encapsulated pixel data holds no image fragment: the file is "
                                       "incomplete")
        if len(data) < offset + 8:
            raise UnreadableImageError("encapsulated pixel data is truncated (it ends inside an item header)")
        if tag != _ITEM:
            raise UnreadableImageError("encapsulated pixel data is corrupt (an item tag is missing)")
        length = int.from_bytes(data[offset + 4 : offset + 8], "little")
        if index == 1:
            return bytes(data[offset + 8 : offset + 8 + length])
        offset += 8 + length
    raise AssertionError("unreachable")


def _jpeg_frame(stream: bytes) -> tuple[int, int, int, int] | None:
    """(SOF marker, precision, rows, cols) of a JPEG / JPEG-LS stream; None without a frame header."""
    try:
        return jpeg_frame(stream)
    except UnreadableImageError:
        return None


def _j2k_frame(stream: bytes) -> tuple[int, int, int] | None:
    """(precision, rows, cols) from a JPEG 2000 codestream's SIZ marker (ISO 15444-1 A.5.1), or None."""
    at = stream.find(b"\xff\x4f\xff\x51")
    if at < 0 or len(stream) < at + 4 + 38 + 1:
        return None
    siz = stream[at + 4 :]
    xsiz, ysiz, xo, yo = struct.unpack(">IIII", siz[4:20])
    precision = (siz[38] & 0x7F) + 1
    return precision, ysiz - yo, xsiz - xo


def _stream_kind(stream: bytes) -> str:
    if stream.startswith(b"\xff\xd8"):
        frame = _jpeg_frame(stream)
        return _SOF_KIND.get(frame[0], "JPEG") if frame else "JPEG"
    if stream.startswith(_J2K_MAGIC):
        return "JPEG 2000"
    return "unrecognised"


def check_pixel_data(ds: Dataset, pixel: PixelDescription, syntax: UID) -> list[str]:
    """The pixel data against the transfer syntax and the header, before decoding: native or encapsulated
    as the syntax says, native long enough, a codestream of the syntax's own kind whose size and precision
    fit the header. Returns notes (surplus native data)."""
    element = ds[pixel.keyword]
    data = element.value
    if data is None or len(data) == 0:
        raise UnreadableImageError("pixel data is empty (0 bytes): the file is truncated or incomplete")
    encapsulated = bytes(data[:4]) == _ITEM and element.is_undefined_length
    if syntax.is_compressed and not encapsulated:
        raise UnreadableImageError(f"pixel data is not compressed although the transfer syntax says "
                                   f"{syntax.name}: the transfer syntax is wrong")
    if not syntax.is_compressed:
        if encapsulated:
            raise UnreadableImageError(f"pixel data is compressed (encapsulated) although the transfer "
                                       f"syntax says {syntax.name}: the transfer syntax is wrong")
        expected = pixel.native_bytes
        got = len(data)
        if got < expected:
            raise UnreadableImageError(f"truncated pixel data: expected {expected} bytes, got {got}")
        if got > expected + 1 + expected % 2:
            return [f"pixel data holds {got - expected} bytes more than {pixel.rows} × {pixel.cols} × "
                    f"{pixel.frames} frame(s) need: the surplus is ignored"]
        return []
    stream = first_fragment(bytes(data))
    if not stream:
        raise UnreadableImageError("encapsulated pixel data holds an empty fragment: the file is incomplete")
    name = syntax.name
    if str(syntax) in _JPEG_FAMILY:
        frame = _jpeg_frame(stream) if stream.startswith(b"\xff\xd8") else None
        if frame is None:
            kind = _stream_kind(stream)
            if kind == "unrecognised":
                raise UnreadableImageError(f"pixel data is not a JPEG stream (no start-of-image marker), as "
                                           f"{name} requires: the file is corrupt or mislabelled")
            if kind != "JPEG":
                raise UnreadableImageError(f"pixel data is {kind} data but the transfer syntax says {name}: "
                                           "the file is mislabelled")
            raise UnreadableImageError(f"pixel data is not a complete JPEG stream (no frame header), as "
                                       f"{name} requires: the file is truncated or corrupt")
        marker, precision, rows, cols = frame
        if marker not in _JPEG_FAMILY[str(syntax)]:
            raise UnreadableImageError(f"pixel data is a {_SOF_KIND.get(marker, 'JPEG')} stream but the "
                                       f"transfer syntax says {name}: the file is mislabelled")
        _check_stream(pixel, "JPEG", precision, rows, cols)
    elif str(syntax) in _J2K_FAMILY:
        if not stream.startswith(_J2K_MAGIC):
            kind = _stream_kind(stream)
            raise UnreadableImageError(
                f"pixel data is {kind} data but the transfer syntax says {name}: the file is mislabelled"
                if kind != "unrecognised" else
                f"pixel data is not a JPEG 2000 codestream, as {name} requires: the file is corrupt")
        frame = _j2k_frame(stream)
        if frame is None:
            raise UnreadableImageError("JPEG 2000 codestream is truncated (it ends inside its header)")
        _check_stream(pixel, "JPEG 2000", *frame)
    elif syntax == RLELossless:
        _check_rle(stream, pixel)
    return []


def _check_stream(pixel: PixelDescription, kind: str, precision: int, rows: int, cols: int) -> None:
    if (rows, cols) != (pixel.rows, pixel.cols) and rows != 0:
        raise UnreadableImageError(f"{kind} stream is {cols} × {rows} pixels but the header says "
                                   f"{pixel.cols} × {pixel.rows}: the file is corrupt")
    if precision > pixel.bits_allocated:
        raise UnreadableImageError(f"{kind} stream holds {precision}-bit samples but Bits Allocated is "
                                   f"{pixel.bits_allocated}: the file is corrupt")


def _check_rle(stream: bytes, pixel: PixelDescription) -> None:
    if len(stream) < 64:
        raise UnreadableImageError("RLE pixel data is truncated (its 64-byte header is cut off)")
    header = struct.unpack("<16I", stream[:64])
    segments, offsets = header[0], header[1 : 1 + min(header[0], 15)]
    needed = pixel.samples * max(pixel.bits_allocated // 8, 1)
    if segments != needed:
        raise UnreadableImageError(f"RLE header lists {segments} segments; Bits Allocated "
                                   f"{pixel.bits_allocated} × Samples per Pixel {pixel.samples} needs "
                                   f"{needed}")
    if offsets[0] != 64 or list(offsets) != sorted(set(offsets)) or offsets[-1] >= len(stream):
        raise UnreadableImageError("RLE header is corrupt: its segment offsets are out of order or past the "
                                   "end of the data")


def _decode_first_frame(ds: Dataset, pixel: PixelDescription, syntax: UID) -> np.ndarray:
    panic = ("RLE pixel data is corrupt: a segment decodes to more bytes than the frame holds"
             if syntax == RLELossless else f"{syntax.name} pixel data is corrupt: its decoder failed")
    try:
        with native_decoder(panic):
            ds.pixel_array_options(index=0 if pixel.frames > 1 else None, allow_excess_frames=False)
            stored = ds.pixel_array
    except UnreadableImageError:
        raise
    except Exception as exc:
        logger.debug("pixel decoding failed: %s", type(exc).__name__)
        raise UnreadableImageError(
            f"pixel data could not be decoded: the file is truncated or corrupt ({syntax.name} data)"
        ) from exc
    expected = (pixel.rows, pixel.cols) if pixel.samples == 1 else (pixel.rows, pixel.cols, pixel.samples)
    if stored.shape != expected:
        shape = " × ".join(map(str, stored.shape))
        raise UnreadableImageError(f"decoded pixel data is {shape} but the header says "
                                   f"{' × '.join(map(str, expected))}: the file is corrupt")
    return stored


def _float(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if np.isfinite(number) else None


def _as_list(value: object) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple, pydicom.multival.MultiValue)) else [value]


def header_windows(ds: Dataset) -> list[Window]:
    """Window Center/Width pairs from the header in order (the first is the default), with their names."""
    centers = _as_list(ds.get("WindowCenter"))
    widths = _as_list(ds.get("WindowWidth"))
    names = _as_list(ds.get("WindowCenterWidthExplanation"))
    function = str(ds.get("VOILUTFunction") or "LINEAR").upper()
    if function not in lut.WINDOW_FUNCTIONS:
        function = "LINEAR"
    windows = []
    for i, (c, w) in enumerate(zip(centers, widths, strict=False)):
        center, width = _float(c), _float(w)
        if center is None or width is None or width <= 0:
            continue
        name = str(names[i]) if i < len(names) else ""
        source = "header" if not windows else f"header #{i + 1}"
        windows.append(Window(center, width, function=function, source=source, name=name))
    return windows


def voi_lut(ds: Dataset, notes: list[str] | None = None) -> VoiLut | None:
    """The first VOI LUT Sequence item as a table (parsed here: pydicom 3.0's apply_voi overflows 8-bit LUTs
    longer than 256 entries). A bad one is ignored, and a note says so: the header window (or the automatic
    one) is shown instead."""
    try:
        return lut.voi_lut_table(ds)
    except UnreadableImageError as exc:
        if notes is not None:
            notes.append(f"{exc}; it is ignored: the image is shown with its window instead")
        return None


def _pixel_spacing(ds: Dataset) -> tuple[float, float] | None:
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        values = [_float(v) for v in _as_list(ds.get(keyword))]
        if len(values) == 2 and all(v is not None and v > 0 for v in values):
            return values[0], values[1]  # type: ignore[return-value]
    return None


def age_group(ds: Dataset) -> str:
    """The patient's coarse age group: "child" under 18 years, "adult" from 18, "" when unknown. From
    Patient's Age ("nnnD", "nnnW", "nnnM", "nnnY"; a bare number, as many files write it, is years), else
    from Patient's Birth Date and the Study (or Acquisition) Date. Only the group leaves the header."""
    match = _AGE.fullmatch(str(ds.get("PatientAge") or "").strip().upper())
    if match is not None:
        years = int(match[1]) / _AGE_UNITS_PER_YEAR[match[2] or "Y"]
    else:
        born, seen = _date(ds, "PatientBirthDate"), _date(ds, "StudyDate") or _date(ds, "AcquisitionDate")
        if born is None or seen is None or seen < born:
            return ""
        years = seen.year - born.year - ((seen.month, seen.day) < (born.month, born.day))
    return "adult" if years >= ADULT_AGE_YEARS else "child"


def _date(ds: Dataset, keyword: str) -> date | None:
    try:
        return datetime.strptime(str(ds.get(keyword) or "").strip()[:8], "%Y%m%d").date()
    except ValueError:
        return None


def dicom_image(ds: Dataset, path: Path) -> XRayImage:
    """A dataset from ``read_dataset`` → XRayImage (pipeline order: see the module docstring)."""
    keyword = _refuse_non_images(ds)
    pixel = pixel_description(ds, keyword)
    _refuse_absurd_size(pixel)
    syntax = _transfer_syntax(ds)
    _check_decoder(syntax)
    notes = check_pixel_data(ds, pixel, syntax)
    stored = _decode_first_frame(ds, pixel, syntax)
    photometric = pixel.photometric
    if pixel.frames > 1:
        notes.insert(0, f"multi-frame image ({pixel.frames} frames): showing the first frame only")
    bits = pixel.bits_stored
    if photometric == "PALETTE COLOR":
        stored = lut.palette_rgb(stored, ds)
        bits = 8 * stored.dtype.itemsize
    stored = finite_pixels(stored, notes)
    coloured = 0.0
    table = None
    if stored.ndim == 3:
        pixels = rgb_to_grey(stored)
        coloured = colour_fraction(stored, float(2**bits - 1))
        if coloured > 0:  # YBR/RGB files of grey pictures are not colour images
            notes.append(COLOUR_WARNING)
        windows = [bit_depth_window(bits)]
    else:
        pixels = lut.apply_modality(stored, ds)
        windows = header_windows(ds)
        table = voi_lut(ds, notes)
    default = windows[0] if windows else auto_window(pixels)
    shape = str(ds.get("PresentationLUTShape", "")).upper()
    invert = photometric == "MONOCHROME1" or shape == "INVERSE"
    for note in notes:
        logger.info("%s", note)
    logger.debug("decoded DICOM %dx%d %s %s", pixel.rows, pixel.cols, photometric, syntax.name)
    return XRayImage(
        pixels=np.ascontiguousarray(pixels, dtype=np.float32),
        photometric=photometric,
        window=default,
        invert=invert,
        presets=windows[1:],
        voi_lut=table,
        pixel_spacing=_pixel_spacing(ds),
        view_position=str(ds.get("ViewPosition", "")).strip() or None,
        age_group=age_group(ds),
        metadata=display_metadata(ds),
        source=path,
        warnings=notes,
        format="DICOM",
        colour_fraction=coloured,
    )
