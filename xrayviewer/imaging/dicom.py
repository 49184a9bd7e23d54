"""DICOM files → XRayImage with pydicom's pixel pipeline (pylibjpeg plugins for compressed syntaxes).

Order: read header → refuse non-images and absurd sizes → check the decoder → decode the first frame →
colour to grey → Modality LUT (rescale or LUT sequence) → header windows / VOI LUT → inversion flag.
"""

from __future__ import annotations

import logging
import re
import warnings
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pydicom
from pydicom import Dataset
from pydicom.pixels import get_decoder
from pydicom.pixels.processing import apply_color_lut
from pydicom.pixels.utils import get_expected_length
from pydicom.uid import UID, ImplicitVRLittleEndian

from xrayviewer.imaging import lut
from xrayviewer.imaging.colour import COLOUR_WARNING, colour_fraction, rgb_to_grey
from xrayviewer.imaging.errors import (
    DecoderMissingError,
    UnreadableImageError,
    UnsupportedImageError,
)
from xrayviewer.imaging.image import ADULT_AGE_YEARS, VoiLut, Window, XRayImage
from xrayviewer.imaging.metadata import display_metadata
from xrayviewer.imaging.windows import auto_window, bit_depth_window

logger = logging.getLogger(__name__)

MAX_FRAME_PIXELS = 2**27  # 134 M pixels in one frame (≈ 11 600 × 11 600): far above any radiograph
MAX_PIXEL_BYTES = 2**32  # 4 GiB of decoded pixel data over all frames
_SR_PREFIX = "1.2.840.10008.5.1.4.1.1.88."
_AGE = re.compile(r"(\d{1,3}) ?([DWMY]?)")  # Age String (PS3.5 6.2): "nnnD", "nnnW", "nnnM", "nnnY"
_AGE_UNITS_PER_YEAR = {"D": 365.25, "W": 365.25 / 7, "M": 12.0, "Y": 1.0}


def read_dataset(path: Path) -> Dataset:
    """Parse header and pixel data (preamble optional); pydicom warnings are silenced (they may quote PHI)."""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ds = pydicom.dcmread(path, force=True)
            list(ds)  # convert every top-level element now, while warnings are captured
    except Exception as exc:
        raise UnreadableImageError("DICOM header is truncated or corrupt") from exc
    if caught:
        logger.debug("pydicom raised %d warnings while reading (not shown: they may quote header values)",
                     len(caught))
    return ds


def looks_like_dicom(ds: Dataset) -> bool:
    """Sanity check for files read without the 'DICM' preamble: plausible SOP class or image tags."""
    try:
        sop = str(ds.get("SOPClassUID", ""))
        return sop.startswith("1.2.840.10008.") or ("PixelData" in ds and "Rows" in ds)
    except Exception:
        return False


def _refuse_non_images(ds: Dataset) -> None:
    meta = getattr(ds, "file_meta", None)
    sop = UID(str(ds.get("SOPClassUID") or getattr(meta, "MediaStorageSOPClassUID", "")))
    if sop.startswith(_SR_PREFIX):
        raise UnsupportedImageError("file is a DICOM Structured Report, not an image")
    if "PixelData" in ds:
        return
    if "Rows" in ds or "Image Storage" in sop.name:
        raise UnreadableImageError("DICOM image has no pixel data: the file is truncated or incomplete")
    kind = sop.name if sop.is_valid and sop.name != sop else "object"
    raise UnsupportedImageError(f"file is a DICOM {kind} without pixel data, not an image")


def _refuse_absurd_size(ds: Dataset) -> tuple[int, int, int]:
    try:
        rows, cols = int(ds.Rows), int(ds.Columns)
        frames = int(ds.get("NumberOfFrames") or 1)
        samples = int(ds.get("SamplesPerPixel") or 1)
        bits = int(ds.BitsAllocated)
    except (AttributeError, TypeError, ValueError) as exc:
        raise UnreadableImageError("DICOM header lacks a valid image size (Rows, Columns, Bits)") from exc
    if min(rows, cols, frames, samples, bits) <= 0:
        raise UnreadableImageError(f"DICOM header gives an empty image size: {rows} × {cols} × {frames}")
    if rows * cols > MAX_FRAME_PIXELS or rows * cols * frames * samples * bits // 8 > MAX_PIXEL_BYTES:
        raise UnsupportedImageError(
            f"DICOM header gives an implausible image size ({rows} × {cols} pixels × {frames} frames); "
            "refusing to decode it"
        )
    return rows, cols, frames


def _transfer_syntax(ds: Dataset) -> UID:
    meta = getattr(ds, "file_meta", None)
    syntax = getattr(meta, "TransferSyntaxUID", None)
    if syntax is None:  # no meta header: pydicom parsed it as implicit or explicit little endian
        syntax = ImplicitVRLittleEndian if ds.is_implicit_VR else UID("1.2.840.10008.1.2.1")
        ds.file_meta = getattr(ds, "file_meta", None) or pydicom.dataset.FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = syntax
    return syntax


def _check_decoder(ds: Dataset, syntax: UID) -> None:
    try:
        decoder = get_decoder(syntax)
    except NotImplementedError as exc:
        raise UnsupportedImageError(f"pixel data compression '{syntax.name}' is not supported") from exc
    if not decoder.is_available:
        raise DecoderMissingError(
            f"{syntax.name} decoder missing: reinstall XRayViewer (its pylibjpeg plugins are not installed)"
        )
    if not syntax.is_compressed:
        expected = get_expected_length(ds, "bytes")
        got = len(ds.PixelData)
        if got < expected:
            raise UnreadableImageError(f"truncated pixel data: expected {expected} bytes, got {got}")


def _decode_first_frame(ds: Dataset, frames: int) -> np.ndarray:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds.pixel_array_options(index=0 if frames > 1 else None)
            return ds.pixel_array
    except Exception as exc:
        logger.debug("pixel decoding failed: %s", type(exc).__name__)
        raise UnreadableImageError(
            "pixel data could not be decoded: the file is truncated or corrupt"
        ) from exc


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


def _lut_data(ds: Dataset, item: Dataset) -> np.ndarray:
    """LUT Data (US list or OW bytes, PS3.3 C.11.2.1.1) as an integer array."""
    value = item["LUTData"].value
    if isinstance(value, bytes):
        little = ds.original_encoding[1] is not False
        return np.frombuffer(value, dtype="<u2" if little else ">u2").astype(np.int64)
    return np.atleast_1d(np.asarray(value, dtype=np.int64))


def voi_lut(ds: Dataset) -> VoiLut | None:
    """The first VOI LUT Sequence item as a table (parsed here: pydicom 3.0's apply_voi overflows 8-bit LUTs
    longer than 256 entries)."""
    items = ds.get("VOILUTSequence")
    if not items:
        return None
    try:
        entries, first_mapped, bits = (int(v) for v in items[0].LUTDescriptor)
        table = _lut_data(ds, items[0])[: entries or 2**16]
    except Exception:
        logger.debug("ignoring unreadable VOI LUT Sequence")
        return None
    if table.size == 0:
        return None
    explanation = str(items[0].get("LUTExplanation", ""))
    return VoiLut(table=table, first_mapped=first_mapped, bits=bits, explanation=explanation)


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
    _refuse_non_images(ds)
    rows, cols, frames = _refuse_absurd_size(ds)
    syntax = _transfer_syntax(ds)
    _check_decoder(ds, syntax)
    stored = _decode_first_frame(ds, frames)
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    notes = []
    if frames > 1:
        notes.append(f"multi-frame image ({frames} frames): showing the first frame only")
    bits = int(ds.get("BitsStored") or 8)
    if photometric == "PALETTE COLOR":
        stored = apply_color_lut(stored, ds)
        bits = 8 * stored.dtype.itemsize
    coloured = 0.0
    if stored.ndim == 3:
        pixels = rgb_to_grey(stored)
        coloured = colour_fraction(stored, float(2**bits - 1))
        if coloured > 0:  # YBR/RGB files of grey pictures are not colour images
            notes.append(COLOUR_WARNING)
        windows = [bit_depth_window(bits)]
    else:
        pixels = lut.apply_modality(stored, ds)
        windows = header_windows(ds)
    table = voi_lut(ds) if stored.ndim == 2 else None
    default = windows[0] if windows else auto_window(pixels)
    shape = str(ds.get("PresentationLUTShape", "")).upper()
    invert = photometric == "MONOCHROME1" or shape == "INVERSE"
    for note in notes:
        logger.info("%s", note)
    logger.debug("decoded DICOM %dx%d %s %s", rows, cols, photometric, syntax.name)
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
