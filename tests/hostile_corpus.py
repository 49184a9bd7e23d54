"""A generated corpus of hostile inputs (no patient data: the names and IDs in it are made up), shared by
``tests/test_hostile_inputs.py`` and ``benchmarks/hostile_corpus.py``.

``build_corpus(folder)`` writes every case into ``folder`` and returns the :class:`Case` list: what
``open_image`` must do with each (open it, or raise exactly ``error`` with ``words`` in the message; for an
opened file, ``words`` must be in one of its warnings). Categories: every Image Pixel module attribute,
LUTs (Modality, VOI, palette, segmented palette bombs), float pixel data, transfer syntaxes and mislabelled
codestreams, encapsulation, RLE headers, truncations at many offsets of eight kinds of file, raster and
DICOM size bombs, damaged headers that carry patient-like data, and odd file-system objects (over-long
names, non-UTF-8 names, symbolic-link loops, FIFOs, sockets, devices, folders named ``x.dcm``).
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import warnings
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pydicom
from pydicom import Dataset
from pydicom.encaps import encapsulate
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.uid import (
    JPEG2000,
    MPEG2MPML,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    HTJ2KLossless,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    RLELossless,
    generate_uid,
)

from xrayviewer.imaging.errors import ImageError, UnreadableImageError, UnsupportedImageError

DX = "1.2.840.10008.5.1.4.1.1.1.1"  # Digital X-Ray Image Storage - For Presentation
# Made-up identifying values; no message, log line, warning or stderr byte may ever contain them.
SECRETS = ("Doe^Jane", "DOE^JANE", "JANE DOE", "PID-48213", "19450317", "ACC-99172", "Jane", "48213",
           "99172")
PHI = {"PatientName": "Doe^Jane", "PatientID": "PID-48213", "PatientBirthDate": "19450317",
       "AccessionNumber": "ACC-99172"}
Unreadable, Unsupported = UnreadableImageError, UnsupportedImageError


@dataclass(frozen=True)
class Case:
    """One hostile input and what ``open_image`` must do with it."""

    name: str
    path: Path
    error: type[ImageError] | None  # None: it opens (then ``words`` is in a warning, when given)
    words: str  # in the message (or a warning); "" when an opened file needs no warning
    category: str
    listed: bool = True  # False: a folder listing skips it (a FIFO, a link loop...): pass it explicitly


# ---------------------------------------------------------------- DICOM writing (below pydicom's checks)


def ramp(rows: int = 32, cols: int = 48, high: int = 4095, dtype: str = "uint16") -> np.ndarray:
    """A deterministic image sweeping 0..high."""
    return np.rint(np.linspace(0, high, rows * cols).reshape(rows, cols)).astype(dtype)


def base(pixels: np.ndarray | None = None, photometric: str = "MONOCHROME2", bits: int = 12,
         **tags: object) -> Dataset:
    """A chest DX dataset with made-up patient data around ``pixels`` (default: 32 × 48, 12 bits)."""
    pixels = ramp() if pixels is None else pixels
    ds = Dataset()
    ds.SOPClassUID = DX
    ds.SOPInstanceUID = generate_uid(prefix="1.2.826.0.1.3680043.10.54.")
    ds.Modality, ds.BodyPartExamined, ds.ViewPosition = "DX", "CHEST", "PA"
    for keyword, value in PHI.items():
        setattr(ds, keyword, value)
    ds.set_pixel_data(pixels, photometric, bits)
    for keyword, value in tags.items():
        setattr(ds, keyword, value)
    return ds


def raw(ds: Dataset, tag: int, vr: str, value: bytes) -> Dataset:
    """Put an element into ``ds`` as raw bytes (pydicom would refuse to hold the value: "abc" as IS...);
    written as they are in explicit VR little endian."""
    from pydicom.dataelem import RawDataElement
    from pydicom.tag import Tag

    if len(value) % 2:
        value += b" "
    ds.set_original_encoding(False, True, ds._character_set)
    ds[tag] = RawDataElement(Tag(tag), vr, len(value), value, 0, False, True)
    return ds


def _element(tag: int, vr: bytes, value: bytes) -> bytes:
    """One explicit-VR little-endian element."""
    if len(value) % 2:
        value += b"\0" if vr == b"UI" else b" "
    group, elem = tag >> 16, tag & 0xFFFF
    if vr in (b"OB", b"OW", b"SQ", b"UN", b"UT", b"OF", b"OD", b"OL", b"UC", b"UR"):
        return struct.pack("<HH", group, elem) + vr + b"\0\0" + struct.pack("<I", len(value)) + value
    return struct.pack("<HH", group, elem) + vr + struct.pack("<H", len(value)) + value


def meta(syntax: str | bytes, sop: str = DX) -> bytes:
    """A File Meta Information group (0002) naming ``syntax`` (any bytes: hostile ones too)."""
    syntax = syntax.encode() if isinstance(syntax, str) else syntax
    body = (_element(0x00020001, b"OB", b"\0\1") + _element(0x00020002, b"UI", sop.encode())
            + _element(0x00020003, b"UI", b"1.2.826.0.1.3680043.10.54.1")
            + _element(0x00020010, b"UI", syntax) + _element(0x00020012, b"UI", b"1.2.826.0.1.3680043.10.54"))
    return _element(0x00020000, b"UL", struct.pack("<I", len(body))) + body


def body(ds: Dataset, syntax: str = ExplicitVRLittleEndian) -> bytes:
    """The data set encoded as ``syntax`` says (pydicom's writer, no validation of values)."""
    fp = DicomBytesIO()
    fp.is_little_endian = syntax != ExplicitVRBigEndian
    fp.is_implicit_VR = syntax == ImplicitVRLittleEndian
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        write_dataset(fp, ds)
    return fp.getvalue()


def dicom(ds: Dataset, syntax: str | bytes = ExplicitVRLittleEndian, *, encoded_as: str | None = None,
          preamble: bytes = bytes(128)) -> bytes:
    """A Part 10 file: ``preamble``, "DICM", a meta group naming ``syntax``, the data set encoded as
    ``encoded_as`` (default: ``syntax`` when pydicom knows it, else explicit VR little endian)."""
    if encoded_as is None:
        known = (ImplicitVRLittleEndian, ExplicitVRBigEndian, DeflatedExplicitVRLittleEndian)
        encoded_as = syntax if syntax in known else ExplicitVRLittleEndian
    data = body(ds, ExplicitVRLittleEndian if encoded_as == DeflatedExplicitVRLittleEndian else encoded_as)
    if encoded_as == DeflatedExplicitVRLittleEndian:
        packer = zlib.compressobj(9, zlib.DEFLATED, -15)
        data = packer.compress(data) + packer.flush()
    return preamble + b"DICM" + meta(syntax, str(ds.get("SOPClassUID") or DX)) + data


def encapsulated(ds: Dataset, fragments: list[bytes]) -> Dataset:
    """``ds`` with its pixel data replaced by encapsulated ``fragments`` (one frame each)."""
    ds.PixelData = encapsulate(fragments)
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    return ds


def compressed_stream(pixels: np.ndarray, syntax: str, bits: int = 12) -> bytes:
    """The first frame's codestream of ``pixels`` compressed by pydicom's encoders (RLE, JPEG 2000)."""
    ds = base(pixels, bits=bits)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.compress(syntax)
    return next(pydicom.encaps.generate_frames(ds.PixelData, number_of_frames=1))


def jpeg_stream(pixels: np.ndarray) -> bytes:
    """An 8-bit baseline JPEG of ``pixels`` (OpenCV, quality 100)."""
    ok, stream = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, 100])
    assert ok
    return stream.tobytes()


def _lut_item(descriptor: list[int], data: bytes | None, explanation: str = "") -> Dataset:
    item = Dataset()
    item.add_new(0x00283002, "US", descriptor)
    if data is not None:
        item.add_new(0x00283006, "OW", data)
    if explanation:
        item.LUTExplanation = explanation
    return item


def _u16(values) -> bytes:
    return np.asarray(values, dtype="<u2").tobytes()


RAMP12 = _u16(np.arange(4096))  # LUT Data: a 12-bit identity table


# ---------------------------------------------------------------- the corpus


class _Builder:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.cases: list[Case] = []
        self.category = ""

    def add(self, name: str, data: bytes, error: type[ImageError] | None, words: str = "",
            listed: bool = True) -> None:
        path = self.folder / self.category / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        self.add_path(name, path, error, words, listed)

    def add_path(self, name: str, path: Path, error: type[ImageError] | None, words: str = "",
                 listed: bool = True) -> None:
        assert all(c.path != path for c in self.cases), path
        self.cases.append(Case(f"{self.category}/{name}", path, error, words, self.category, listed))

    def dataset(self, name: str, ds: Dataset, error: type[ImageError] | None, words: str = "",
                syntax: str | bytes = ExplicitVRLittleEndian, **options) -> None:
        self.add(name, dicom(ds, syntax, **options), error, words)


def _pixel_module(b: _Builder) -> None:
    """Every Image Pixel module attribute, absent and with bad values."""
    b.category = "pixel-module"
    b.dataset("good.dcm", base(), None)

    def variant(name: str, error, words: str, drop: tuple[str, ...] = (), **tags: object) -> None:
        ds = base()
        for keyword in drop:
            delattr(ds, keyword)
        for keyword, value in tags.items():
            setattr(ds, keyword, value)
        b.dataset(name, ds, error, words)

    variant("rows-absent.dcm", Unreadable, "no Rows", drop=("Rows",))
    variant("rows-0.dcm", Unreadable, "empty image size: 0 × 48", Rows=0)
    variant("rows-65535.dcm", Unreadable, "truncated pixel data", Rows=65535)
    variant("rows-16.dcm", None, "surplus is ignored", Rows=16)
    variant("rows-two-values.dcm", Unreadable, "Rows holds 2 values", Rows=[32, 48])
    variant("columns-absent.dcm", Unreadable, "no Columns", drop=("Columns",))
    variant("columns-0.dcm", Unreadable, "empty image size: 32 × 0", Columns=0)
    variant("columns-65535.dcm", Unreadable, "truncated pixel data", Columns=65535)
    variant("columns-24.dcm", None, "surplus is ignored", Columns=24)
    variant("bits-allocated-absent.dcm", Unreadable, "lacks Bits Allocated", drop=("BitsAllocated",))
    for bits in (0, 2, 7, 9, 15, 17, 31, 33, 63, 65, 128, 65535):
        variant(f"bits-allocated-{bits}.dcm", Unreadable, f"Bits Allocated is {bits} (1 or a multiple of 8",
                BitsAllocated=bits)
    variant("bits-allocated-12.dcm", Unsupported, "Bits Allocated is 12 (packed 12-bit", BitsAllocated=12)
    for bits in (24, 40, 48, 56):
        variant(f"bits-allocated-{bits}.dcm", Unsupported, f"Bits Allocated is {bits}: only 1, 8, 16",
                BitsAllocated=bits)
    variant("bits-allocated-8.dcm", None, "surplus is ignored", BitsAllocated=8, BitsStored=8)
    variant("bits-allocated-1.dcm", None, "surplus is ignored", BitsAllocated=1, BitsStored=1)
    variant("bits-allocated-32.dcm", Unreadable, "truncated pixel data: expected 6144 bytes",
            BitsAllocated=32)
    variant("bits-allocated-64.dcm", Unreadable, "truncated pixel data: expected 12288 bytes",
            BitsAllocated=64)
    variant("bits-stored-absent.dcm", Unreadable, "lacks Bits Stored", drop=("BitsStored",))
    for bits in (0, 17, 32, 65535):
        variant(f"bits-stored-{bits}.dcm", Unreadable, f"Bits Stored is {bits} (1 to Bits Allocated",
                BitsStored=bits)
    for bits in (1, 8, 16):
        variant(f"bits-stored-{bits}.dcm", None, "", BitsStored=bits)
    for high in (0, 15, 200):
        variant(f"high-bit-{high}.dcm", None, "", HighBit=high)
    variant("pixel-representation-absent.dcm", Unreadable, "lacks Pixel Representation",
            drop=("PixelRepresentation",))
    for value in (2, 5, 65535):
        variant(f"pixel-representation-{value}.dcm", Unreadable, f"Pixel Representation is {value}",
                PixelRepresentation=value)
    variant("pixel-representation-1.dcm", None, "", PixelRepresentation=1)
    variant("samples-absent.dcm", None, "", drop=("SamplesPerPixel",))
    for value in (0, 2, 5, 65535):
        variant(f"samples-{value}.dcm", Unreadable, f"Samples per Pixel is {value} (1 for grey or 3",
                SamplesPerPixel=value)
    variant("samples-3-grey.dcm", Unreadable, "Samples per Pixel is 3 but Photometric Interpretation "
            "MONOCHROME2 needs 1", SamplesPerPixel=3)
    variant("samples-4.dcm", Unsupported, "Samples per Pixel is 4", SamplesPerPixel=4)
    variant("photometric-absent.dcm", Unreadable, "lacks Photometric Interpretation",
            drop=("PhotometricInterpretation",))
    variant("photometric-empty.dcm", Unreadable, "lacks Photometric Interpretation",
            PhotometricInterpretation="")
    for value in ("FOO", "DOE^JANE", "MONOCHROME3", "YBR_FULL_444"):
        variant(f"photometric-{value.replace('^', '-').lower()}.dcm", Unsupported,
                "Photometric Interpretation is not one XRayViewer knows", PhotometricInterpretation=value)
    for value in ("CMYK", "ARGB", "HSV"):
        variant(f"photometric-{value.lower()}.dcm", Unsupported, f"Photometric Interpretation {value} is "
                "retired", PhotometricInterpretation=value)
    for value in ("RGB", "YBR_FULL", "YBR_ICT"):
        variant(f"photometric-{value.lower()}-one-sample.dcm", Unreadable, f"Samples per Pixel is 1 but "
                f"Photometric Interpretation {value} needs 3", PhotometricInterpretation=value)
    variant("photometric-monochrome1.dcm", None, "", PhotometricInterpretation="MONOCHROME1")
    variant("photometric-lower-case.dcm", None, "", PhotometricInterpretation="monochrome2")
    variant("photometric-palette-without-lut.dcm", Unreadable, "Palette Color LUT is invalid: it has no LUT "
            "Descriptor", PhotometricInterpretation="PALETTE COLOR")
    rgb = np.dstack([ramp(high=255, dtype="uint8")] * 3)
    b.dataset("rgb-good.dcm", base(rgb, "RGB", 8), None)
    for value in (2, 3, 65535):
        ds = base(rgb, "RGB", 8)
        ds.PlanarConfiguration = value
        b.dataset(f"planar-{value}.dcm", ds, Unreadable, f"Planar Configuration is {value} (0 or 1)")
    ds = base(rgb, "RGB", 8)
    del ds.PlanarConfiguration
    b.dataset("planar-absent.dcm", ds, None)
    ds = base(rgb, "RGB", 8)
    ds.PlanarConfiguration = 1
    b.dataset("planar-1.dcm", ds, None)
    for value, error, words in (("0", Unreadable, "Number of Frames is 0"),
                                ("-1", Unreadable, "Number of Frames is -1"),
                                ("abc", Unreadable, "Number of Frames is not a number"),
                                ("1.5", Unreadable, "Number of Frames is not a whole number"),
                                ("NaN", Unreadable, "Number of Frames is not a whole number"),
                                ("2", Unreadable, "truncated pixel data: expected 6144 bytes"),
                                ("1000000000", Unsupported, "image too large (1000000000 frames"),
                                ("1", None, "")):
        b.dataset(f"frames-{value}.dcm", raw(base(), 0x00280008, "IS", value.encode()), error, words)
    ds = base()
    ds.PixelData = b""
    b.dataset("pixel-data-empty.dcm", ds, Unreadable, "pixel data is empty (0 bytes)")
    ds = base()
    ds.PixelData = ds.PixelData[:-2]
    b.dataset("pixel-data-short.dcm", ds, Unreadable, "truncated pixel data: expected 3072 bytes, got 3070")
    ds = base()
    ds.PixelData = ds.PixelData * 3  # the case: surplus data, no Number of Frames
    b.dataset("pixel-data-surplus.dcm", ds, None, "6144 bytes more than 32 × 48 × 1 frame(s) need")
    ds = base(ramp(2, 32))
    ds.PixelData = ds.PixelData * 3
    b.dataset("pixel-data-surplus-strip.dcm", ds, None, "surplus is ignored")


def _modality_and_voi(b: _Builder) -> None:
    """Rescale, windows, Modality LUT and VOI LUT Sequences with bad values."""
    b.category = "lut"
    for keyword, label in (("RescaleSlope", "Rescale Slope"), ("RescaleIntercept", "Rescale Intercept")):
        for value in ("NaN", "inf", "-inf", "1e999"):
            ds = base(RescaleSlope="1", RescaleIntercept="0")
            setattr(ds, keyword, value)
            b.dataset(f"{keyword}-{value}.dcm", ds, Unreadable, f"{label} is not a finite number")
        tag = 0x00281053 if keyword == "RescaleSlope" else 0x00281052
        ds = raw(base(RescaleSlope="1", RescaleIntercept="0"), tag, "DS", b"abc")
        b.dataset(f"{keyword}-text.dcm", ds, Unreadable, f"{label} is not a number")
        ds = base(RescaleSlope="1", RescaleIntercept="0")
        setattr(ds, keyword, ["1", "2"])
        b.dataset(f"{keyword}-two-values.dcm", ds, Unreadable, f"{label} holds 2 values")
    b.dataset("rescale-overflow.dcm", base(RescaleSlope="1e38", RescaleIntercept="0"), Unreadable,
              "push pixel values beyond the range")
    b.dataset("rescale-intercept-overflow.dcm", base(RescaleSlope="1", RescaleIntercept="1e300"), Unreadable,
              "push pixel values beyond the range")
    b.dataset("rescale-slope-0.dcm", base(RescaleSlope="0", RescaleIntercept="0"), None)
    b.dataset("rescale-negative.dcm", base(RescaleSlope="-1", RescaleIntercept="4095"), None)
    voi = _lut_item([4096, 0, 12], _u16(np.arange(4096)[::-1]))
    nan_with_voi = base(RescaleSlope="NaN", RescaleIntercept="0")
    nan_with_voi.VOILUTSequence = [voi]
    b.dataset("voi-lut-with-nan-slope.dcm", nan_with_voi, Unreadable, "Rescale Slope is not a finite number")
    for center, width, function in (("NaN", "400", "LINEAR"), ("100", "NaN", "LINEAR"), ("inf", "400", ""),
                                    ("100", "inf", ""), ("100", "0", ""), ("100", "-5", ""),
                                    ("100", "1e-300", "LINEAR_EXACT"), ("1e300", "400", ""),
                                    ("100", "1e300", "SIGMOID"), ("100", "1e-45", "LINEAR_EXACT"),
                                    ("2048", "1", "LINEAR"), ("2048", "1e-40", "SIGMOID")):
        ds = base(WindowCenter=center, WindowWidth=width)
        if function:
            ds.VOILUTFunction = function
        b.dataset(f"window-{center}-{width}-{function or 'none'}.dcm", ds, None)
    b.dataset("voi-function-unknown.dcm", base(WindowCenter="2048", WindowWidth="4096",
                                               VOILUTFunction="CUBIC"), None)
    b.dataset("presentation-shape-unknown.dcm", base(PresentationLUTShape="SPIRAL"), None)
    ok_voi = base()
    ok_voi.VOILUTSequence = [_lut_item([4096, 0, 12], _u16(np.arange(4096)), "made-up curve")]
    b.dataset("voi-lut-good.dcm", ok_voi, None)
    ignored = "VOI LUT Sequence is invalid: "
    for name, item, words in (
        ("bits-0", _lut_item([4096, 0, 0], RAMP12), "its LUT Descriptor gives 0 bits an entry"),
        ("bits-7", _lut_item([4096, 0, 7], RAMP12), "its LUT Descriptor gives 7 bits an entry"),
        ("bits-17", _lut_item([4096, 0, 17], _u16(np.arange(4096))), "its LUT Descriptor gives 17 bits an "
                                                                      "entry (8–16 allowed)"),
        ("bits-200", _lut_item([4096, 0, 200], _u16(np.arange(4096))), "its LUT Descriptor gives 200 bits"),
        ("bits-65535", _lut_item([4096, 0, 65535], _u16(np.arange(4096))), "its LUT Descriptor gives 65535"),
        ("short-data", _lut_item([4096, 0, 12], _u16(np.arange(100))), "its LUT Data holds 100 entries, its "
                                                                        "descriptor says 4096"),
        ("no-data", _lut_item([4096, 0, 12], None), "it has no LUT Data"),
        ("two-values", _lut_item([4096, 0], _u16(np.arange(4096))), "its LUT Descriptor needs three whole "
                                                                      "numbers, has 2 values"),
        ("entries-0", _lut_item([0, 0, 16], _u16(np.arange(4096))), "its LUT Data holds 4096 entries, its "
                                                                     "descriptor says 65536"),
    ):
        ds = base()
        ds.VOILUTSequence = [item]
        b.dataset(f"voi-lut-{name}.dcm", ds, None, ignored + words)
    ds = base()
    ds.VOILUTSequence = [Dataset()]
    b.dataset("voi-lut-empty-item.dcm", ds, None, f"{ignored}it has no LUT Descriptor; it is ignored")
    good_mlut = base()
    good_mlut.ModalityLUTSequence = [_lut_item([4096, 0, 16], _u16(np.arange(4096) * 2))]
    good_mlut.ModalityLUTSequence[0].ModalityLUTType = "OD"
    b.dataset("modality-lut-good.dcm", good_mlut, None)
    for name, item, words in (
        ("bits-7", _lut_item([4096, 0, 7], RAMP12), "its LUT Descriptor gives 7 bits an entry"),
        ("bits-1000", _lut_item([4096, 0, 1000], RAMP12), "its LUT Descriptor gives 1000 bits"),
        ("short-data", _lut_item([4096, 0, 16], _u16(np.arange(10))), "its LUT Data holds 10 entries"),
        ("no-data", _lut_item([4096, 0, 16], None), "it has no LUT Data"),
        ("one-value", _lut_item([4096], RAMP12), "its LUT Descriptor needs three whole numbers, has 1 value"),
    ):
        ds = base()
        ds.ModalityLUTSequence = [item]
        b.dataset(f"modality-lut-{name}.dcm", ds, Unreadable, "Modality LUT Sequence is invalid: " + words)


def _palette(b: _Builder) -> None:
    """PALETTE COLOR images: plain and segmented LUTs, good and hostile (bombs: the issue's 12–63 KB)."""
    b.category = "palette"
    indices = ramp(high=255, dtype="uint8")

    def palette(red: bytes | None, green: bytes | None = None, blue: bytes | None = None,
                descriptor=(256, 0, 16), segmented: bool = False) -> Dataset:
        ds = base(indices, "PALETTE COLOR", 8)
        for colour, data in (("Red", red), ("Green", green if green is not None else red),
                             ("Blue", blue if blue is not None else red)):
            ds.add_new(f"{colour}PaletteColorLookupTableDescriptor", "US", list(descriptor))
            if data is None:
                continue
            keyword = f"Segmented{colour}PaletteColorLookupTableData" if segmented else \
                f"{colour}PaletteColorLookupTableData"
            ds.add_new(keyword, "OW", data)
        return ds

    table = _u16(np.arange(256) * 257)
    reverse, flat = _u16(np.arange(256)[::-1] * 257), _u16(np.full(256, 30000))
    b.dataset("plain-good.dcm", palette(table, reverse, flat), None, "colour image converted to grey")
    b.dataset("plain-grey.dcm", palette(table), None)
    grey = "colour image converted to grey"
    b.dataset("plain-8bit-entries.dcm", palette(bytes(range(256)), bytes(range(256))[::-1], bytes(256),
                                                descriptor=(256, 0, 8)), None, grey)
    b.dataset("plain-short.dcm", palette(table[:100]), Unreadable,
              "Palette Color LUT is invalid: its red data holds 50 entries")
    b.dataset("plain-missing.dcm", palette(None), Unreadable, "Palette Color LUT is missing")
    b.dataset("plain-bits-4.dcm", palette(table, descriptor=(256, 0, 4)), Unreadable, "gives 4 bits an entry")
    b.dataset("plain-entries-0.dcm", palette(table, descriptor=(0, 0, 16)), Unreadable,
              "holds 256 entries, its descriptor says 65536")
    good = _u16([0, 1, 0, 1, 255, 65535])  # discrete [0], linear to 65535 over 255 entries
    down = _u16([0, 1, 65535, 1, 255, 0])
    b.dataset("segmented-good.dcm", palette(good, down, segmented=True), None, grey)
    for kilobytes in (12, 63):  # the bombs: linear segments of 65535 entries each
        count = kilobytes * 1024 // 6
        words = _u16([0, 1, 0] + [1, 65535, 65535] * count)
        b.dataset(f"segmented-bomb-{kilobytes}kb.dcm", palette(words, segmented=True), Unreadable,
                  "segments expand to more than the 256 entries")
    # indirect segments that copy the segments before them, doubling at every step
    doubling = [0, 1, 0, 1, 255, 65535] + [2, 2, 0, 0] * 40
    b.dataset("segmented-indirect-bomb.dcm", palette(_u16(doubling), segmented=True), Unreadable,
              "Palette Color LUT is invalid")
    b.dataset("segmented-linear-first.dcm", palette(_u16([1, 10, 500]), segmented=True), Unreadable,
              "a linear segment has no start value")
    b.dataset("segmented-unknown-opcode.dcm", palette(_u16([0, 1, 0, 7, 3, 1, 2, 3]), segmented=True),
              Unreadable, "unknown segment type 7")
    b.dataset("segmented-indirect-first.dcm", palette(_u16([2, 1, 0, 0]), segmented=True), Unreadable,
              "an indirect segment points nowhere valid")
    b.dataset("segmented-empty.dcm", palette(_u16([0, 0]), segmented=True), Unreadable,
              "segments are empty")


def _float_pixels(b: _Builder) -> None:
    """Float and Double Float Pixel Data: finite, with NaN/infinity, all NaN, wrong Bits Allocated."""
    b.category = "float"

    def floats(values: np.ndarray, keyword: str = "FloatPixelData", bits: int | None = None) -> Dataset:
        ds = base()
        del ds.PixelData, ds.PixelRepresentation, ds.BitsStored, ds.HighBit
        dtype = "<f4" if keyword == "FloatPixelData" else "<f8"
        ds.add_new(keyword, "OF" if dtype == "<f4" else "OD", values.astype(dtype).tobytes())
        ds.BitsAllocated = bits or (32 if dtype == "<f4" else 64)
        return ds

    values = ramp().astype(np.float64) / 10.0
    b.dataset("float-finite.dcm", floats(values), None)
    b.dataset("double-finite.dcm", floats(values, "DoubleFloatPixelData"), None)
    for name, patch in (("nan", np.nan), ("inf", np.inf), ("-inf", -np.inf)):
        spoiled = values.copy()
        spoiled[3:7, 5:9] = patch
        b.dataset(f"float-{name}.dcm", floats(spoiled), None, "16 of 1536 pixels are not finite numbers")
        b.dataset(f"double-{name}.dcm", floats(spoiled, "DoubleFloatPixelData"), None,
                  "16 of 1536 pixels are not finite numbers")
    b.dataset("float-all-nan.dcm", floats(np.full((32, 48), np.nan)), Unreadable,
              "holds no finite values: every pixel is NaN or infinity")
    b.dataset("float-bits-16.dcm", floats(values, bits=16), Unreadable, "Float Pixel Data needs 32")
    b.dataset("double-bits-32.dcm", floats(values, "DoubleFloatPixelData", bits=32), Unreadable,
              "Double Float Pixel Data needs 64")
    b.dataset("float-short.dcm", floats(values[:10]), Unreadable, "truncated pixel data")
    b.dataset("float-huge-values.dcm", floats(np.where(values > 100, 3e38, -3e38)), None)


def _syntaxes(b: _Builder) -> None:
    """Transfer syntaxes: good ones, mislabelled codestreams, broken encapsulation, RLE headers."""
    b.category = "syntax"
    grey8 = ramp(64, 64, 255, "uint8")
    b.dataset("implicit-le.dcm", base(), None, syntax=ImplicitVRLittleEndian)
    b.dataset("explicit-le.dcm", base(), None)
    b.dataset("deflated.dcm", base(), None, syntax=DeflatedExplicitVRLittleEndian)
    big = base(ramp(dtype=">u2"))
    b.dataset("explicit-be.dcm", big, None, syntax=ExplicitVRBigEndian)
    j2k = compressed_stream(ramp(), JPEG2000Lossless)
    j2k8 = compressed_stream(grey8, JPEG2000Lossless, bits=8)
    rle = compressed_stream(ramp(), RLELossless)
    jpeg = jpeg_stream(grey8)
    b.dataset("j2k-lossless.dcm", encapsulated(base(), [j2k]), None, syntax=JPEG2000Lossless)
    b.dataset("j2k-under-j2k-lossy.dcm", encapsulated(base(), [j2k]), None, syntax=JPEG2000)
    b.dataset("j2k-under-htj2k.dcm", encapsulated(base(), [j2k]), None, syntax=HTJ2KLossless)
    b.dataset("rle.dcm", encapsulated(base(), [rle]), None, syntax=RLELossless)
    b.dataset("jpeg-baseline.dcm", encapsulated(base(grey8, bits=8), [jpeg]), None, syntax=JPEGBaseline8Bit)
    b.dataset("jpeg-under-extended.dcm", encapsulated(base(grey8, bits=8), [jpeg]), None,
              syntax=JPEGExtended12Bit)
    progressive = cv2.imencode(".jpg", grey8, [cv2.IMWRITE_JPEG_QUALITY, 100, cv2.IMWRITE_JPEG_PROGRESSIVE,
                                               1])[1].tobytes()
    b.dataset("jpeg-progressive-under-baseline.dcm", encapsulated(base(grey8, bits=8), [progressive]), None,
              syntax=JPEGBaseline8Bit)
    mislabelled = "the file is mislabelled"
    for syntax in (JPEGBaseline8Bit, JPEGExtended12Bit, JPEGLosslessSV1, JPEGLSLossless):
        b.dataset(f"j2k-as-{syntax}.dcm", encapsulated(base(), [j2k]), Unreadable,
                  f"pixel data is JPEG 2000 data but the transfer syntax says {syntax.name}: {mislabelled}",
                  syntax=syntax)
        b.dataset(f"j2k8-as-{syntax}.dcm", encapsulated(base(grey8, bits=8), [j2k8]), Unreadable,
                  f"JPEG 2000 data but the transfer syntax says {syntax.name}", syntax=syntax)
    for syntax in (JPEGLosslessSV1, JPEGLSLossless):
        b.dataset(f"jpeg-baseline-as-{syntax}.dcm", encapsulated(base(grey8, bits=8), [jpeg]), Unreadable,
                  f"pixel data is a JPEG baseline stream but the transfer syntax says {syntax.name}",
                  syntax=syntax)
    for syntax in (JPEG2000Lossless, JPEG2000, HTJ2KLossless):
        b.dataset(f"jpeg-as-{syntax}.dcm", encapsulated(base(grey8, bits=8), [jpeg]), Unreadable,
                  f"pixel data is JPEG baseline data but the transfer syntax says {syntax.name}",
                  syntax=syntax)
        b.dataset(f"rle-as-{syntax}.dcm", encapsulated(base(), [rle]), Unreadable,
                  f"pixel data is not a JPEG 2000 codestream, as {syntax.name} requires", syntax=syntax)
    b.dataset("rle-as-jpeg.dcm", encapsulated(base(), [rle]), Unreadable,
              "pixel data is not a JPEG stream (no start-of-image marker)", syntax=JPEGBaseline8Bit)
    b.dataset("jpeg-without-frame-header.dcm", encapsulated(base(grey8, bits=8), [b"\xff\xd8\xff\xd9"]),
              Unreadable, "pixel data is not a complete JPEG stream (no frame header)",
              syntax=JPEGBaseline8Bit)
    b.dataset("jpeg-as-rle.dcm", encapsulated(base(grey8, bits=8), [jpeg]), Unreadable,
              "RLE header lists", syntax=RLELossless)
    b.dataset("j2k-as-rle.dcm", encapsulated(base(), [j2k]), Unreadable, "RLE header lists",
              syntax=RLELossless)
    for syntax in (JPEGBaseline8Bit, JPEG2000Lossless, RLELossless):
        b.dataset(f"native-as-{syntax}.dcm", base(), Unreadable,
                  f"pixel data is not compressed although the transfer syntax says {syntax.name}",
                  syntax=syntax, encoded_as=ExplicitVRLittleEndian)
    for syntax in (ExplicitVRLittleEndian, ImplicitVRLittleEndian):
        b.dataset(f"encapsulated-as-{syntax}.dcm", encapsulated(base(), [j2k]), Unreadable,
                  "pixel data is compressed (encapsulated) although the transfer syntax says", syntax=syntax)
    b.dataset("syntax-unknown.dcm", base(), Unsupported, "transfer syntax XRayViewer does not know",
              syntax="1.2.3.4.5.6", encoded_as=ExplicitVRLittleEndian)
    b.dataset("syntax-phi.dcm", base(), Unreadable, "Transfer Syntax UID is malformed",
              syntax=b"Doe^Jane", encoded_as=ExplicitVRLittleEndian)
    b.dataset("syntax-sop-class.dcm", base(), Unreadable, "names a SOP Class, not a transfer syntax",
              syntax=DX, encoded_as=ExplicitVRLittleEndian)
    b.dataset("syntax-mpeg2.dcm", encapsulated(base(), [b"\0\0\1\xb3" + bytes(60)]), Unsupported,
              "MPEG2 Main Profile / Main Level' is not supported", syntax=MPEG2MPML)
    # codestream size and precision against the header
    b.dataset("jpeg-size-mismatch.dcm", encapsulated(base(), [jpeg_stream(ramp(20, 30, 255, "uint8"))]),
              Unreadable, "JPEG stream is 30 × 20 pixels but the header says 48 × 32",
              syntax=JPEGBaseline8Bit)
    b.dataset("j2k-size-mismatch.dcm", encapsulated(base(grey8, bits=8), [j2k]), Unreadable,
              "JPEG 2000 stream is 48 × 32 pixels but the header says 64 × 64", syntax=JPEG2000Lossless)
    j2k16 = compressed_stream(ramp(high=65535), JPEG2000Lossless, bits=16)
    b.dataset("j2k-16-bit-in-8.dcm", encapsulated(base(ramp(high=255, dtype="uint8"), bits=8), [j2k16]),
              Unreadable, "JPEG 2000 stream holds 16-bit samples but Bits Allocated is 8",
              syntax=JPEG2000Lossless)
    # encapsulation
    bot = b"\xfe\xff\x00\xe0\x00\x00\x00\x00"
    for name, value, words in (
        ("no-fragment", bot, "holds no image fragment"),
        ("empty-fragment", bot + b"\xfe\xff\x00\xe0\x00\x00\x00\x00", "holds an empty fragment"),
        ("stray-delimiter", bot + b"\xfe\xff\xdd\xe0\x00\x00\x00\x00",
         "DICOM header is truncated or corrupt"),
        ("bad-item-tag", bot + b"\x01\x02\x03\x04" + struct.pack("<I", len(j2k)) + j2k,
         "item tag is missing"),
    ):
        ds = base()
        ds.PixelData = value
        ds["PixelData"].VR = "OB"
        ds["PixelData"].is_undefined_length = True
        b.dataset(f"encapsulation-{name}.dcm", ds, Unreadable, words, syntax=JPEG2000Lossless)
    # RLE headers
    header = np.frombuffer(rle[:64], "<u4").copy()

    def rle_variant(name: str, change: Callable[[np.ndarray], bytes], words: str) -> None:
        h = header.copy()
        stream = change(h)
        b.dataset(f"rle-{name}.dcm", encapsulated(base(), [stream]), Unreadable, words, syntax=RLELossless)

    rle_variant("segments-1", lambda h: (h.__setitem__(0, 1), h.tobytes() + rle[64:])[1],
                "RLE header lists 1 segments; Bits Allocated 16 × Samples per Pixel 1 needs 2")
    rle_variant("segments-15", lambda h: (h.__setitem__(0, 15), h.tobytes() + rle[64:])[1],
                "RLE header lists 15 segments")
    rle_variant("segments-huge", lambda h: (h.__setitem__(0, 2**31), h.tobytes() + rle[64:])[1],
                "RLE header lists 2147483648 segments")
    rle_variant("offset-past-end", lambda h: (h.__setitem__(2, 10**6), h.tobytes() + rle[64:])[1],
                "segment offsets are out of order or past the end")
    rle_variant("offset-backwards", lambda h: (h.__setitem__(2, 10), h.tobytes() + rle[64:])[1],
                "segment offsets are out of order")
    rle_variant("first-offset-0", lambda h: (h.__setitem__(1, 0), h.tobytes() + rle[64:])[1],
                "segment offsets are out of order")
    rle_variant("header-cut", lambda h: h.tobytes()[:40], "RLE pixel data is truncated (its 64-byte header")
    # the panic: a replicate run that decodes past the end of the frame
    for count in (1, 3, 100):
        h = header.copy()
        h[2] = 64 + 2 * 3000
        stream = h.tobytes() + bytes([0x81, 0x00]) * 3000 + bytes([0x81, 0x00]) * count * 20
        b.dataset(f"rle-overlong-segment-{count}.dcm", encapsulated(base(), [stream]), Unreadable,
                  "RLE pixel data is corrupt: a segment decodes to more bytes than the frame holds",
                  syntax=RLELossless)


def _truncations(b: _Builder) -> None:
    """Eight kinds of file cut at many offsets: the preamble, the meta group, the header, the pixel data."""
    b.category = "truncated"
    grey8 = ramp(64, 64, 255, "uint8")
    files = {
        "native": dicom(base()),
        "implicit": dicom(base(), ImplicitVRLittleEndian),
        "j2k": dicom(encapsulated(base(), [compressed_stream(ramp(), JPEG2000Lossless)]), JPEG2000Lossless),
        "rle": dicom(encapsulated(base(), [compressed_stream(ramp(), RLELossless)]), RLELossless),
        "jpeg-dicom": dicom(encapsulated(base(grey8, bits=8), [jpeg_stream(grey8)]), JPEGBaseline8Bit),
        "deflated": dicom(base(), DeflatedExplicitVRLittleEndian),
    }
    for kind, data in files.items():
        for offset in sorted({1, 64, 131, 132, 140, 160, 200, 260, 300, 340, 400, 460, 520,
                              *(int(len(data) * f) for f in (0.2, 0.4, 0.5, 0.6, 0.75, 0.9, 0.97)),
                              len(data) - 30, len(data) - 2}):
            if offset >= len(data):
                continue
            if offset < 132:
                b.add(f"{kind}-{offset:05d}.dcm", data[:offset], Unsupported, "not an image")
            elif offset >= len(data) - 8 and kind in ("j2k", "rle", "jpeg-dicom"):
                # only the sequence delimiter is cut: every pixel is there, the picture is complete
                b.add(f"{kind}-{offset:05d}.dcm", data[:offset], None)
            else:
                b.add(f"{kind}-{offset:05d}.dcm", data[:offset], Unreadable, "truncat")
    rasters = {
        "png": cv2.imencode(".png", ramp(64, 64, 60000))[1].tobytes(),
        "jpeg": jpeg_stream(grey8),
        "tiff": cv2.imencode(".tif", ramp(64, 64, 60000))[1].tobytes(),
    }
    for kind, data in rasters.items():
        magic = {"png": 8, "jpeg": 3, "tiff": 4}[kind]
        for offset in sorted({1, magic - 1, magic, 12, 20, 30, 40, 100, 200, *(int(len(data) * f) for f in
                              (0.3, 0.5, 0.7, 0.9, 0.99)), len(data) - 1}):
            if offset >= len(data) or offset <= 0:
                continue
            error, words = (Unsupported, "not an image") if offset < magic else (Unreadable, "truncated")
            if kind == "tiff" and offset >= len(data) - 4:  # only the next-directory pointer is cut
                error, words = None, ""
            b.add(f"{kind}-{offset:05d}.{kind}", data[:offset], error, words)


def _png(width: int, height: int, bit_depth: int = 8, colour: int = 0, idat: bytes | None = None,
         extra: bytes = b"") -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour, 0, 0, 0)
    if idat is None:
        idat = zlib.compress(bytes(64))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + extra + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _jpeg_claiming(width: int, height: int) -> bytes:
    """A real small JPEG whose SOF0 frame header is rewritten to claim ``width`` × ``height``."""
    data = bytearray(jpeg_stream(ramp(16, 16, 255, "uint8")))
    at = data.index(b"\xff\xc0")
    data[at + 5 : at + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def _tiff_claiming(width: int, height: int, drop: int | None = None, ifd_offset: int | None = None) -> bytes:
    entries = [(256, 4, 1, width), (257, 4, 1, height), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1),
               (273, 4, 1, 8 + 2 + 12 * 9 + 4), (277, 3, 1, 1), (278, 4, 1, height), (279, 4, 1, 16)]
    entries = [e for e in entries if e[0] != drop]
    ifd = struct.pack("<H", len(entries)) + b"".join(
        struct.pack("<HHI", t, k, c) + (struct.pack("<HH", v, 0) if k == 3 else struct.pack("<I", v))
        for t, k, c, v in entries) + b"\0\0\0\0"
    return b"II*\x00" + struct.pack("<I", 8 if ifd_offset is None else ifd_offset) + ifd + bytes(16)


def _bombs(b: _Builder) -> None:
    """Sizes far beyond any radiograph, refused from the header; sizes at the limit, read."""
    b.category = "bombs"
    too_large = "image too large ("
    sizes = ((20000, 20000), (70000, 1000), (65535, 65535), (8193, 8193), (2**31 - 1, 2**31 - 1))
    for width, height in sizes:
        b.add(f"png-{width}x{height}.png", _png(width, height), Unsupported,
              f"{too_large}")
        if width < 65536 and height < 65536:
            b.add(f"jpeg-{width}x{height}.jpg", _jpeg_claiming(width, height), Unsupported, too_large)
        b.add(f"tiff-{width}x{height}.tif", _tiff_claiming(width, height), Unsupported, too_large)
    b.add("png-20000x20000-16bit-rgba.png", _png(20000, 20000, 16, 6), Unsupported,
          "image too large (400 MP, limit 67 MP): PNG header gives 20000 × 20000 pixels")
    b.add("jpeg-sof-20000.jpg", _jpeg_claiming(20000, 20000), Unsupported,
          "image too large (400 MP, limit 67 MP): JPEG header gives 20000 × 20000 pixels")
    b.add("png-width-0.png", _png(0, 100), Unreadable, "PNG header gives an empty image (0 × 100 pixels)")
    b.add("jpeg-height-0.jpg", _jpeg_claiming(100, 0), Unreadable, "gives no image height (DNL")
    b.add("tiff-no-width.tif", _tiff_claiming(100, 100, drop=256), Unreadable, "no image width or length")
    b.add("tiff-ifd-past-end.tif", _tiff_claiming(100, 100, ifd_offset=10**6), Unreadable,
          "TIFF header is truncated or corrupt")
    b.add("png-bad-crc.png", _png(64, 64)[:-5] + b"\0\0\0\0\0", Unreadable, "PNG file is corrupt")
    # an ancillary chunk with a bad CRC: libpng skips it with a warning (on stderr, captured)
    b.add("png-junk-iccp.png", _png(64, 64, idat=zlib.compress(bytes(64 * 65)),
                                    extra=b"\0\0\0\x05iCCPjunk!\0\0\0\0"), None)
    b.add("png-idat-garbage.png", _png(64, 64, idat=b"\x78\x9c" + bytes(range(200))), Unreadable,
          "PNG file is corrupt")
    at_limit = cv2.imencode(".png", np.zeros((8192, 8192), np.uint8))[1].tobytes()
    b.add("png-8192x8192-at-limit.png", at_limit, None)
    dicom_large = "DICOM header gives an implausible image size"
    for rows, cols, frames in ((65535, 65535, 1), (20000, 20000, 1), (8193, 8193, 1), (1024, 1024, 10**6)):
        ds = base()
        ds.Rows, ds.Columns = rows, cols
        if frames > 1:
            ds.NumberOfFrames = frames
        b.dataset(f"dicom-{rows}x{cols}x{frames}.dcm", ds, Unsupported, dicom_large)
    ds = encapsulated(base(), [_jpeg_claiming(20000, 20000)])
    ds.Rows = ds.Columns = 20000
    b.dataset("dicom-jpeg-sof-20000.dcm", ds, Unsupported, "image too large (400 MP", syntax=JPEGBaseline8Bit)
    ds = encapsulated(base(), [_jpeg_claiming(20000, 20000)])
    b.dataset("dicom-jpeg-sof-20000-header-small.dcm", ds, Unreadable,
              "JPEG stream is 20000 × 20000 pixels but the header says 48 × 32", syntax=JPEGBaseline8Bit)
    j2k = bytearray(compressed_stream(ramp(), JPEG2000Lossless))
    siz = j2k.index(b"\xff\x51") + 2
    j2k[siz + 4 : siz + 12] = struct.pack(">II", 20000, 20000)
    b.dataset("dicom-j2k-siz-20000.dcm", encapsulated(base(), [bytes(j2k)]), Unreadable,
              "JPEG 2000 stream is 20000 × 20000 pixels but the header says 48 × 32", syntax=JPEG2000Lossless)


def _headers(b: _Builder) -> None:
    """Damaged headers, non-DICOM content, preambles that look like other formats, patient-like text."""
    b.category = "header"
    good = dicom(base())
    b.add("text.dcm", b"Patient Doe^Jane PID-48213 has a cough. Please review.\n" * 30, Unsupported,
          "not an image")
    b.add("random.dcm", np.random.default_rng(7).integers(0, 256, 6000, dtype=np.uint8).tobytes(),
          Unsupported, "not an image")
    b.add("zeros.dcm", bytes(5000), Unsupported, "not an image")
    b.add("dicm-only.dcm", bytes(128) + b"DICM", Unreadable, "truncat")
    b.add("empty.dcm", b"", Unreadable, "file is empty (0 bytes)")
    b.add("empty.png", b"", Unreadable, "file is empty (0 bytes)")
    for name, preamble in (("tiff-le", b"II*\x00"), ("tiff-be", b"MM\x00*"), ("png", b"\x89PNG\r\n\x1a\n"),
                           ("jpeg", b"\xff\xd8\xff\xe0")):
        b.add(f"preamble-{name}.dcm", preamble + good[len(preamble):], None)
    b.add("no-preamble.dcm", body(base()), None)
    b.add("no-preamble-no-suffix", body(base()), None)
    # structure
    b.add("element-length-huge.dcm", good[:good.index(b"\x10\x00\x10\x00")] + b"\x10\x00\x10\x00PN"
          + b"\xf0\xff" + b"Doe^Jane", Unreadable, "truncat")
    nested = Dataset()
    inner = nested
    for _ in range(40):
        child = Dataset()
        child.PatientName = "Doe^Jane"
        inner.ReferencedImageSequence = [child]
        inner = child
    deep = base()
    deep.ReferencedImageSequence = nested.ReferencedImageSequence
    b.dataset("sequence-40-deep.dcm", deep, None)
    sq = b"\x08\x00\x40\x11SQ\0\0\xff\xff\xff\xff" + b"\xfe\xff\x00\xe0\xff\xff\xff\xff" * 3000
    b.add("sequence-3000-deep-undefined.dcm", bytes(128) + b"DICM" + meta(ExplicitVRLittleEndian)
          + body(_without_pixels(base())) + sq, Unreadable, "DICOM header")
    unclosed = bytes(128) + b"DICM" + meta(ExplicitVRLittleEndian) + body(_without_pixels(base())) + \
        b"\x08\x00\x40\x11SQ\0\0\xff\xff\xff\xff\xfe\xff\x00\xe0\xff\xff\xff\xff\x10\x00\x10\x00PN\x08\x00Doe^Jane"
    b.add("sequence-unclosed.dcm", unclosed, Unreadable, "truncat")
    # patient-like text where codes belong: never echoed
    for k, (keyword, value) in enumerate((
        ("Modality", "DOE^JANE"), ("Modality", "JANE DOE"), ("BodyPartExamined", "JANE DOE"),
        ("BodyPartExamined", "PID-48213"), ("ViewPosition", "DOE^JANE"),
        ("SpecificCharacterSet", "ISO_IR 999"), ("PatientAge", "Doe^Jane"), ("PatientBirthDate", "Doe^Jane"),
        ("StudyDate", "PID-48213"),
    )):
        b.dataset(f"phi-{keyword}-{k}.dcm", base(**{keyword: value}), None)  # never the value in a name
    ds = base()
    ds.add_new(0x00100010, "PN", b"Doe^Jane\xff\xfe\x80" + b"x" * 80)
    ds.SpecificCharacterSet = "ISO_IR 192"
    b.dataset("phi-name-bad-utf8.dcm", ds, None)
    ds = base()
    ds.PatientName = "Doe^Jane" * 20  # longer than PN allows
    ds.PatientID = "PID-48213" * 10
    b.dataset("phi-values-too-long.dcm", ds, None)
    ds = _without_pixels(base())
    b.dataset("phi-no-pixels.dcm", ds, Unreadable, "no pixel data: the file is truncated or incomplete")
    sr = base()
    del sr.PixelData
    sr.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.22"
    b.dataset("structured-report.dcm", sr, Unsupported, "Structured Report, not an image")
    pdf = _without_pixels(base())
    for keyword in ("Rows", "Columns", "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation",
                    "SamplesPerPixel", "PhotometricInterpretation"):
        delattr(pdf, keyword)
    pdf.SOPClassUID = "1.2.840.10008.5.1.4.1.1.104.1"
    b.dataset("encapsulated-pdf.dcm", pdf, Unsupported, "Encapsulated PDF Storage without pixel data")


def _without_pixels(ds: Dataset) -> Dataset:
    del ds.PixelData
    return ds


@contextlib.contextmanager
def _umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def _file_system(b: _Builder) -> list[socket.socket]:
    """Over-long names, non-UTF-8 names, link loops, broken links, FIFOs, sockets, devices, folders."""
    b.category = "fs"
    folder = b.folder / b.category
    folder.mkdir(parents=True, exist_ok=True)
    good = dicom(base())
    b.add_path("name-300-bytes.dcm", folder / ("x" * 296 + ".dcm"), Unreadable,
               "path too long for the file system", listed=False)
    b.add_path("path-5000-bytes.dcm", folder / "/".join(["d" * 200] * 25) / "x.dcm", Unreadable,
               "path too long for the file system", listed=False)
    if os.name == "posix":
        raw = os.fsencode(folder) + b"/film-\xff\xfe-\xe9.dcm"
        with open(raw, "wb") as fh:
            fh.write(good)
        b.add_path("non-utf8-name.dcm", Path(os.fsdecode(raw)), None)
        raw = os.fsencode(folder) + b"/broken-\x80.dcm"
        with open(raw, "wb") as fh:
            fh.write(good[:300])
        b.add_path("non-utf8-broken.dcm", Path(os.fsdecode(raw)), Unreadable, "truncat")
        b.add("new\nline.dcm", good, None)
        os.symlink("loop-b.dcm", folder / "loop-a.dcm")
        os.symlink("loop-a.dcm", folder / "loop-b.dcm")
        b.add_path("loop-a.dcm", folder / "loop-a.dcm", Unreadable, "symbolic link loop", listed=False)
        os.symlink("self.dcm", folder / "self.dcm")
        b.add_path("self.dcm", folder / "self.dcm", Unreadable, "symbolic link loop", listed=False)
        os.symlink("nowhere.dcm", folder / "dangling.dcm")
        b.add_path("dangling.dcm", folder / "dangling.dcm", Unreadable, "broken symbolic link", listed=False)
        (folder / "target.bin").write_bytes(good)
        os.symlink("target.bin", folder / "link-to-good.dcm")
        b.add_path("link-to-good.dcm", folder / "link-to-good.dcm", None)
        os.mkfifo(folder / "fifo.dcm")
        b.add_path("fifo.dcm", folder / "fifo.dcm", Unreadable, "not a file: a named pipe (FIFO)",
                   listed=False)
        os.symlink("/dev/null", folder / "devnull.dcm")
        b.add_path("devnull.dcm", folder / "devnull.dcm", Unreadable, "not a file: a character device",
                   listed=False)
        os.symlink("/dev/zero", folder / "devzero.dcm")
        b.add_path("devzero.dcm", folder / "devzero.dcm", Unreadable, "not a file: a character device",
                   listed=False)
        sockets = []
        with contextlib.suppress(OSError):
            server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            server.bind(str(folder / "sock.dcm"))
            sockets.append(server)
            b.add_path("sock.dcm", folder / "sock.dcm", Unreadable, "not a file: a socket", listed=False)
        (folder / "not-a-file.dcm").mkdir()
        b.add_path("not-a-file.dcm", folder / "not-a-file.dcm", Unreadable, "not a file: a folder",
                   listed=False)
        (folder / "folder.dcm" / "inner").mkdir(parents=True)
        (folder / "folder.dcm" / "inner" / "good.dcm").write_bytes(good)
        b.add_path("folder.dcm/inner/good.dcm", folder / "folder.dcm" / "inner" / "good.dcm", None)
        b.add_path("missing.dcm", folder / "missing.dcm", Unreadable, "file not found", listed=False)
        b.add_path("under-a-file.dcm", folder / "target.bin" / "x.dcm", Unreadable,
                   "a part of the path is not a folder", listed=False)
        return sockets
    return []


def _real_sizes(b: _Builder) -> None:
    """Films as large as real ones get (the benchmark's memory and time figures): they open and are scored."""
    b.category = "large"
    rng = np.random.default_rng(3)

    def film(rows: int, cols: int, high: int, dtype: str) -> np.ndarray:
        y, x = np.mgrid[0:rows, 0:cols]
        picture = (np.sin(x / 97.0) + np.cos(y / 131.0) + 2) / 4 * high
        return (picture + rng.integers(0, max(2, high // 50), (rows, cols))).clip(0, high).astype(dtype)

    b.dataset("dicom-4096x4096-16bit.dcm", base(film(4096, 4096, 4095, "uint16")), None)
    b.dataset("dicom-8192x8192-8bit-at-limit.dcm", base(film(8192, 8192, 255, "uint8"), bits=8), None)
    png = cv2.imencode(".png", film(7000, 3000, 60000, "uint16"))[1].tobytes()
    b.add("png-7000x3000-16bit.png", png, None)
    b.add("jpeg-4000x4000.jpg", jpeg_stream(film(4000, 4000, 255, "uint8")), None)


def build_corpus(folder: str | Path, large: bool = False) -> tuple[list[Case], list[socket.socket]]:
    """Write the corpus into ``folder``; returns the cases and the sockets to close when done. ``large``
    adds films of real radiograph sizes (4k × 4k to 8k × 8k: hundreds of MB to write and read)."""
    b = _Builder(Path(folder))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sections = [_pixel_module, _modality_and_voi, _palette, _float_pixels, _syntaxes, _truncations,
                    _bombs, _headers]
        for section in [*sections, *([_real_sizes] if large else [])]:
            section(b)
        sockets = _file_system(b)
    names = [c.name for c in b.cases]
    assert len(names) == len(set(names)), "case names must be unique"
    return b.cases, sockets
