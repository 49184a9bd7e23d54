"""The one place for LUT math: Modality LUT, VOI window/LUT, palette colour (DICOM PS3.3 C.11, C.7.6.3,
C.7.9), inversion, 8-bit output.

LUT inputs come from file headers and are checked before use (:func:`lut_table`): a descriptor's bit depth,
its entry count against the data, a segmented palette LUT's expanded length (bounded while it is expanded,
so a 12 KB table cannot grow into gigabytes), Rescale Slope and Intercept finite. A bad LUT raises
``UnreadableImageError`` naming it (the caller may choose to ignore an optional one, with a warning).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pydicom

from xrayviewer.imaging.errors import UnreadableImageError
from xrayviewer.imaging.image import VoiLut, Window

if TYPE_CHECKING:
    from pydicom import Dataset

    from xrayviewer.imaging.image import XRayImage

WINDOW_FUNCTIONS = ("LINEAR", "LINEAR_EXACT", "SIGMOID")
MAX_LUT_ENTRIES = 2**16  # a LUT Descriptor's first value is a US: 0 means 65536 (PS3.3 C.11.1.1)
LUT_BITS = range(8, 17)  # PS3.3 C.11.1.1 / C.11.2.1.1: 8 to 16 bits an entry (10–16 for VOI, 8 kept: legacy)
_FLOAT32_MAX = float(np.finfo(np.float32).max)
_MAX_SEGMENT_DEPTH = 8  # nested indirect segments of a segmented palette LUT


@dataclass(frozen=True)
class LutTable:
    """A checked lookup table: ``out = table[clip(x - first_mapped, 0, len - 1)]``."""

    table: np.ndarray  # int64
    first_mapped: int
    bits: int


def _numbers(value: object, what: str, field: str) -> list[float]:
    values = list(value) if isinstance(value, (list, tuple, pydicom.multival.MultiValue)) else [value]
    try:
        return [float(v) for v in values]  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise UnreadableImageError(f"{what} is invalid: its {field} is not a list of numbers") from None


def descriptor(item: Dataset, keyword: str, what: str) -> tuple[int, int, int]:
    """(entries, first mapped, bits) of a LUT Descriptor, checked: three whole numbers, entries 1–65536
    (0 = 65536), bits 8–16."""
    if keyword not in item or item[keyword].value is None:
        raise UnreadableImageError(f"{what} is invalid: it has no LUT Descriptor")
    values = _numbers(item[keyword].value, what, "LUT Descriptor")
    if len(values) != 3 or not all(np.isfinite(v) and v == int(v) for v in values):
        raise UnreadableImageError(f"{what} is invalid: its LUT Descriptor needs three whole numbers, has "
                                   f"{len(values)} value{'' if len(values) == 1 else 's'}")
    entries, first, bits = (int(v) for v in values)
    entries = entries or MAX_LUT_ENTRIES
    if not 0 < entries <= MAX_LUT_ENTRIES:
        raise UnreadableImageError(f"{what} is invalid: its LUT Descriptor gives {entries} entries "
                                   f"(1 to {MAX_LUT_ENTRIES})")
    if bits not in LUT_BITS:
        raise UnreadableImageError(f"{what} is invalid: its LUT Descriptor gives {bits} bits an entry "
                                   f"({LUT_BITS.start}–{LUT_BITS.stop - 1} allowed)")
    if not -(2**15) <= first < 2**16:
        raise UnreadableImageError(f"{what} is invalid: its first mapped value {first} is out of range")
    return entries, first, bits


def _words(value: object, little_endian: bool, what: str) -> np.ndarray:
    if isinstance(value, (bytes, bytearray)):
        if len(value) % 2:
            value = bytes(value[:-1])
        return np.frombuffer(value, dtype="<u2" if little_endian else ">u2").astype(np.int64)
    values = _numbers(value, what, "LUT Data")
    if not all(np.isfinite(v) and 0 <= v < 2**16 for v in values):
        raise UnreadableImageError(f"{what} is invalid: its LUT Data holds values outside 0–65535")
    return np.asarray(values, dtype=np.int64)


def lut_table(item: Dataset, little_endian: bool, what: str) -> LutTable:
    """The Modality or VOI LUT of a sequence item, checked (see the module docstring). Data longer than the
    descriptor says is cut to it; shorter data is refused."""
    entries, first, bits = descriptor(item, "LUTDescriptor", what)
    if "LUTData" not in item or item["LUTData"].value is None:
        raise UnreadableImageError(f"{what} is invalid: it has no LUT Data")
    table = _words(item["LUTData"].value, little_endian, what)
    if table.size < entries:
        raise UnreadableImageError(f"{what} is invalid: its LUT Data holds {table.size} entries, its "
                                   f"descriptor says {entries}")
    return LutTable(table[:entries], first, bits)


def _look_up(values: np.ndarray, table: np.ndarray, first_mapped: int) -> np.ndarray:
    index = np.clip(values.astype(np.int64) - first_mapped, 0, len(table) - 1)
    return table[index]


def rescale(ds: Dataset) -> tuple[float, float] | None:
    """(Rescale Slope, Rescale Intercept) when the header gives either, checked finite; None otherwise."""
    present = [k for k in ("RescaleSlope", "RescaleIntercept") if ds.get(k) not in (None, "")]
    if not present:
        return None
    slope_intercept = []
    for keyword, default, label in (("RescaleSlope", 1.0, "Rescale Slope"),
                                    ("RescaleIntercept", 0.0, "Rescale Intercept")):
        value = ds.get(keyword)
        if value in (None, ""):
            slope_intercept.append(default)
            continue
        try:
            numbers = _numbers(value, "the Modality LUT", label)
        except UnreadableImageError:
            raise UnreadableImageError(f"{label} is not a number: the pixel values cannot be calibrated"
                                       ) from None
        if len(numbers) != 1:
            raise UnreadableImageError(f"{label} holds {len(numbers)} values, one expected: the pixel values "
                                       "cannot be calibrated")
        if not np.isfinite(numbers[0]):
            raise UnreadableImageError(f"{label} is not a finite number: the pixel values cannot be "
                                       "calibrated")
        slope_intercept.append(numbers[0])
    return slope_intercept[0], slope_intercept[1]


def apply_modality(stored: np.ndarray, ds: Dataset) -> np.ndarray:
    """Stored values → modality units (Modality LUT Sequence, else Rescale Slope/Intercept), float32; the
    same values as pydicom's ``apply_modality_lut``, with the header's inputs checked first."""
    items = ds.get("ModalityLUTSequence")
    if items:
        checked = lut_table(items[0], ds.original_encoding[1] is not False, "the Modality LUT Sequence")
        return _look_up(stored, checked.table, checked.first_mapped).astype(np.float32)
    linear = rescale(ds)
    if linear is None or linear == (1.0, 0.0):
        return np.asarray(stored, dtype=np.float32)
    slope, intercept = linear
    with np.errstate(over="ignore", invalid="ignore"):
        values = (stored.astype(np.float64) * slope + intercept).astype(np.float32)
    if not np.isfinite(values).all():
        raise UnreadableImageError("Rescale Slope and Intercept push pixel values beyond the range of "
                                   "numbers the viewer can hold: the header is corrupt")
    return values


def voi_lut_table(ds: Dataset) -> VoiLut | None:
    """The first VOI LUT Sequence item as a table, checked (``UnreadableImageError`` when it is bad)."""
    items = ds.get("VOILUTSequence")
    if not items:
        return None
    checked = lut_table(items[0], ds.original_encoding[1] is not False, "the VOI LUT Sequence")
    explanation = str(items[0].get("LUTExplanation", "") or "")
    return VoiLut(table=checked.table, first_mapped=checked.first_mapped, bits=checked.bits,
                  explanation=explanation)


# ---- palette colour (PS3.3 C.7.6.3, C.7.9)


def _expand_segmented(words: np.ndarray, limit: int, what: str, depth: int = 0,
                      previous: int | None = None, segments: int | None = None,
                      wide: int = 2) -> list[np.ndarray]:
    """Expand segmented LUT data (C.7.9.2: discrete 0, linear 1, indirect 2), refusing as soon as the output
    would pass ``limit`` entries: the expanded table never exceeds what its descriptor allows. An indirect
    segment's offset takes ``wide`` entries (2 sixteen-bit words, or 4 bytes for 8-bit data), read as
    pydicom's ``apply_color_lut`` reads it."""
    out: list[np.ndarray] = []
    size, offset, read = 0, 0, 0
    last = previous
    while offset + 1 < len(words) and (segments is None or read < segments):
        opcode, length = int(words[offset]), int(words[offset + 1])
        offset += 2
        if opcode == 0:
            part = words[offset : offset + length]
            offset += length
        elif opcode == 1:
            if last is None or offset >= len(words):
                raise UnreadableImageError(f"{what} is invalid: a linear segment has no start value")
            end = int(words[offset])
            offset += 1
            step = (end - last) / length if length else 0.0  # pydicom's formula, to the same values
            part = np.around(np.linspace(last + step, end, length)).astype(np.int64) if end != last \
                else np.full(length, end, np.int64)
        elif opcode == 2:
            if last is None or depth >= _MAX_SEGMENT_DEPTH or offset + wide > len(words):
                raise UnreadableImageError(f"{what} is invalid: an indirect segment points nowhere valid")
            parts = [int(w) for w in words[offset : offset + wide]]
            target = sum(p << (8 * k if wide == 4 else 16 * k) for k, p in enumerate(parts))
            offset += wide
            nested = _expand_segmented(words[target:], limit - size, what, depth + 1, last, length, wide)
            part = np.concatenate(nested) if nested else np.zeros(0, np.int64)
        else:
            raise UnreadableImageError(f"{what} is invalid: unknown segment type {opcode}")
        size += len(part)
        if size > limit:
            raise UnreadableImageError(f"{what} is invalid: its segments expand to more than the {limit} "
                                       "entries its descriptor gives")
        if len(part):
            out.append(part)
            last = int(part[-1])
        read += 1
    return out


def palette_tables(ds: Dataset) -> tuple[list[np.ndarray], int, int]:
    """The red, green and blue Palette Color LUTs (plain or segmented, checked), their first mapped value and
    bits an entry."""
    what = "the Palette Color LUT"
    little = ds.original_encoding[1] is not False
    entries, first, bits = descriptor(ds, "RedPaletteColorLookupTableDescriptor", what)
    tables = []
    for colour in ("Red", "Green", "Blue"):
        plain = f"{colour}PaletteColorLookupTableData"
        segmented = f"Segmented{plain}"
        if ds.get(plain) is not None:
            value = ds[plain].value
            if isinstance(value, (bytes, bytearray)) and len(value) in (entries, entries + 1) and bits == 8:
                table = np.frombuffer(bytes(value[:entries]), np.uint8).astype(np.int64)  # 8-bit entries
            else:
                table = _words(value, little, what)
                if table.size < entries:
                    raise UnreadableImageError(f"{what} is invalid: its {colour.lower()} data holds "
                                               f"{table.size} entries, its descriptor says {entries}")
                table = table[:entries]
        elif ds.get(segmented) is not None:
            value = ds[segmented].value
            words = (np.frombuffer(bytes(value), np.uint8).astype(np.int64) if bits == 8
                     else _words(value, little, what))
            parts = _expand_segmented(words, entries, what, wide=4 if bits == 8 else 2)
            table = np.concatenate(parts) if parts else np.zeros(0, np.int64)
            if table.size == 0:
                raise UnreadableImageError(f"{what} is invalid: its {colour.lower()} segments are empty")
        else:
            raise UnreadableImageError(f"{what} is missing: a PALETTE COLOR image needs red, green and blue "
                                       "tables")
        tables.append(table)
    return tables, first, bits


def palette_rgb(stored: np.ndarray, ds: Dataset) -> np.ndarray:
    """PALETTE COLOR indices → (rows, cols, 3) RGB, uint8 or uint16 by the LUT's bits (as pydicom's
    ``apply_color_lut``)."""
    tables, first, bits = palette_tables(ds)
    dtype = np.uint8 if bits <= 8 else np.uint16
    top = np.iinfo(dtype).max
    return np.stack([np.clip(_look_up(stored, t, first), 0, top).astype(dtype) for t in tables], axis=-1)


# ---- windows and rendering


def apply_window(pixels: np.ndarray, window: Window) -> np.ndarray:
    """VOI window → [0, 1] float32 (PS3.3 C.11.2.1.2 LINEAR, C.11.2.1.3 LINEAR_EXACT and SIGMOID). A width
    too small for float32 (e.g. 1e-300) acts as a threshold at the centre: never a division by zero."""
    x = np.asarray(pixels, dtype=np.float32)
    center, width = float(window.center), float(window.width)
    if not (abs(center) < _FLOAT32_MAX and width < _FLOAT32_MAX):  # e.g. the full range of ±3e38 values:
        x = x.astype(np.float64)  # in float32, inf - inf or inf / inf would give NaN
    function = window.function.upper()
    if function == "SIGMOID":
        with np.errstate(over="ignore"):  # ±inf from a huge centre is clipped like any other value
            exponent = np.clip(-4.0 * (x - center) / max(width, 1e-6), -80.0, 80.0)
        return (1.0 / (1.0 + np.exp(exponent))).astype(np.float32)
    if function == "LINEAR":
        center, width = center - 0.5, max(width, 1.0) - 1.0
    elif function != "LINEAR_EXACT":
        raise ValueError(f"unknown VOI LUT function {window.function!r}")
    if not width >= float(np.finfo(np.float32).tiny):  # LINEAR width 1, or a width float32 cannot hold
        return (x > center).astype(np.float32)
    with np.errstate(over="ignore"):  # a centre beyond float32 gives ±inf, clipped to 0 or 1 below
        values = (x - center) / x.dtype.type(width) + x.dtype.type(0.5)
    return np.clip(values, 0.0, 1.0, dtype=np.float32)


def apply_voi_lut_table(pixels: np.ndarray, voi_lut: VoiLut) -> np.ndarray:
    """VOI LUT Sequence table (PS3.3 C.11.2.1.1) applied to modality values, scaled to [0, 1] float32."""
    values = np.asarray(pixels, dtype=np.float64)  # finite: open_image guarantees it
    index = np.clip(np.rint(values) - voi_lut.first_mapped, 0, len(voi_lut.table) - 1).astype(np.intp)
    top = max(float(np.ldexp(1.0, min(int(voi_lut.bits), 64))) - 1.0, 1.0)
    return np.clip(voi_lut.table[index].astype(np.float32) / np.float32(top), 0.0, 1.0)


def render(image: XRayImage, window: Window | None = None, invert: bool | None = None) -> np.ndarray:
    """The displayed picture in [0, 1]: VOI LUT (default) or window, then MONOCHROME1/INVERSE inversion."""
    if window is None and image.voi_lut is not None:
        values = apply_voi_lut_table(image.pixels, image.voi_lut)
    else:
        values = apply_window(image.pixels, window or image.window)
    if image.invert if invert is None else invert:
        values = np.float32(1.0) - values
    return values


def to_uint8(values01: np.ndarray) -> np.ndarray:
    """[0, 1] floats → uint8 for display (rounded, clipped)."""
    return np.rint(np.clip(values01, 0.0, 1.0) * 255.0).astype(np.uint8)
