"""Property-based fuzzing (hypothesis) of DICOM header fields, raster headers and file bytes: whatever the
input, ``open_image`` returns a 2-D finite image whose rendering is finite, or raises an ``ImageError``
subclass with one line that quotes no patient data. Nothing else escapes, nothing reaches stderr."""

from __future__ import annotations

import struct
import tempfile
import warnings
import zlib
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np
import pydicom
import pytest
from hostile_corpus import (
    SECRETS,
    base,
    compressed_stream,
    dicom,
    encapsulated,
    jpeg_stream,
    ramp,
    raw,
)
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pydicom import Dataset
from pydicom.uid import JPEG2000Lossless, JPEGBaseline8Bit, RLELossless

from xrayviewer.imaging import ImageError, UnsupportedImageError, open_image
from xrayviewer.imaging.guards import MAX_PIXELS
from xrayviewer.imaging.lut import render

# examples per property (derandomized: the same inputs on every run, so CI failures reproduce)
HEADER_EXAMPLES, PLAUSIBLE_EXAMPLES, DAMAGE_EXAMPLES = 300, 300, 400
RASTER_EXAMPLES, PALETTE_EXAMPLES = 200, 200


def _fuzz(examples: int) -> settings:
    return settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])
_FOLDER = Path(tempfile.mkdtemp(prefix="xrayviewer-fuzz-"))


class Outcome(NamedTuple):
    error: type[ImageError] | None
    message: str
    shape: tuple[int, int] | None


def _check(data: bytes, name: str = "fuzz.dcm") -> Outcome:
    path = _FOLDER / name
    path.write_bytes(data)
    with warnings.catch_warnings(record=True) as escaped:
        warnings.simplefilter("always")
        try:
            image = open_image(path)
        except ImageError as exc:
            message = str(exc)
            assert message and "\n" not in message, message
            assert not any(secret in message for secret in SECRETS), message
            return Outcome(type(exc), message, None)
    assert not escaped, [str(w.message) for w in escaped]
    assert image.pixels.ndim == 2 and np.isfinite(image.pixels).all()
    picture = render(image)
    assert np.isfinite(picture).all()
    assert not any(secret in " ".join(image.warnings) for secret in SECRETS)
    return Outcome(None, "", image.shape)


_US = st.one_of(st.integers(0, 65535), st.sampled_from([0, 1, 7, 8, 12, 16, 17, 32, 64, 65535]))
_NUMBER_TEXT = st.one_of(
    st.sampled_from(["NaN", "inf", "-inf", "1e999", "-1e999", "0", "-0", "1e-300", "abc", "", "1e38", "3"]),
    st.floats(allow_nan=True, allow_infinity=True, width=32).map(lambda f: f"{f:.6g}"),
)
_PHOTOMETRIC = st.sampled_from(["MONOCHROME1", "MONOCHROME2", "RGB", "YBR_FULL", "YBR_FULL_422",
                                "PALETTE COLOR", "CMYK", "FOO", "", "monochrome2", "DOE^JANE"])


@_fuzz(HEADER_EXAMPLES)
@given(rows=_US, cols=_US, allocated=_US, stored=_US, high=_US, representation=_US, samples=_US,
       photometric=_PHOTOMETRIC, planar=_US, frames=st.one_of(st.none(), _NUMBER_TEXT),
       slope=st.one_of(st.none(), _NUMBER_TEXT), intercept=st.one_of(st.none(), _NUMBER_TEXT),
       center=st.one_of(st.none(), _NUMBER_TEXT), width=st.one_of(st.none(), _NUMBER_TEXT),
       function=st.sampled_from([None, "LINEAR", "LINEAR_EXACT", "SIGMOID", "CUBIC"]),
       voi=st.one_of(st.none(), st.tuples(_US, _US, _US, st.integers(0, 5000))),
       length=st.one_of(st.none(), st.integers(0, 20000)))
def test_any_image_pixel_header_is_read_or_refused_cleanly(rows, cols, allocated, stored, high,
                                                           representation, samples, photometric, planar,
                                                           frames, slope, intercept, center, width, function,
                                                           voi, length):
    with warnings.catch_warnings():  # pydicom warns about the values written here: the test's own doing
        warnings.simplefilter("ignore")
        data = _header_file(rows, cols, allocated, stored, high, representation, samples, photometric, planar,
                            frames, slope, intercept, center, width, function, voi, length)
    outcome = _check(data)
    event("opened" if outcome.error is None else outcome.error.__name__)
    if outcome.error is None:
        assert outcome.shape == (rows, cols)
    elif rows * cols * max(samples, 1) > MAX_PIXELS and outcome.error is UnsupportedImageError:
        assert "image too large" in outcome.message


def _header_file(rows, cols, allocated, stored, high, representation, samples, photometric, planar, frames,
                 slope, intercept, center, width, function, voi, length, fill=0, pixel_bytes=None,
                 shape=None) -> bytes:
    ds = base()
    ds.Rows, ds.Columns, ds.BitsAllocated, ds.BitsStored, ds.HighBit = rows, cols, allocated, stored, high
    ds.PixelRepresentation, ds.SamplesPerPixel, ds.PhotometricInterpretation = representation, samples, \
        photometric
    ds.PlanarConfiguration = planar
    for tag, value in ((0x00280008, frames), (0x00281053, slope), (0x00281052, intercept),
                       (0x00281050, center), (0x00281051, width)):
        if value is not None:
            raw(ds, tag, "IS" if tag == 0x00280008 else "DS", value.encode())
    if function is not None:
        ds.VOILUTFunction = function
    if voi is not None:
        item = Dataset()
        item.add_new(0x00283002, "US", list(voi[:3]))
        item.add_new(0x00283006, "OW", np.arange(voi[3], dtype="<u2").tobytes())
        ds.VOILUTSequence = [item]
    if length is not None:
        ds.PixelData = (ramp(100, 100).tobytes() * 2)[:length]
    if pixel_bytes is not None:
        rng = np.random.default_rng(fill)
        ds.PixelData = rng.integers(0, 256, pixel_bytes, dtype=np.uint8).tobytes()
    if shape is not None:
        ds.PresentationLUTShape = shape
    return dicom(ds)


@_fuzz(PLAUSIBLE_EXAMPLES)
@given(rows=st.integers(1, 40), cols=st.integers(1, 40), allocated=st.sampled_from([1, 8, 16, 32]),
       stored_fraction=st.floats(0, 1), signed=st.booleans(),
       photometric=st.sampled_from(["MONOCHROME1", "MONOCHROME2"]),
       frames=st.one_of(st.none(), st.integers(1, 3).map(str)), extra=st.integers(-3, 40),
       slope=st.one_of(st.none(), _NUMBER_TEXT), intercept=st.one_of(st.none(), _NUMBER_TEXT),
       center=st.one_of(st.none(), _NUMBER_TEXT), width=st.one_of(st.none(), _NUMBER_TEXT),
       function=st.sampled_from([None, "LINEAR", "LINEAR_EXACT", "SIGMOID"]),
       voi=st.one_of(st.none(), st.tuples(st.integers(0, 300), st.integers(0, 70000).map(lambda v: v % 65536),
                                          st.integers(0, 20), st.integers(0, 300))),
       shape=st.sampled_from([None, "INVERSE", "IDENTITY"]), fill=st.integers(0, 255))
def test_any_plausible_header_decodes_to_finite_pixels_or_is_refused(rows, cols, allocated, stored_fraction,
                                                                     signed, photometric, frames, extra,
                                                                     slope, intercept, center, width,
                                                                     function, voi, shape, fill):
    """Headers a decoder accepts, with any calibration, windows and VOI LUT: the decode paths themselves."""
    stored = max(1, round(stored_fraction * allocated))
    count = int(frames or 1)
    expected = (rows * cols * allocated * count + 7) // 8
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = _header_file(rows, cols, allocated, stored, stored - 1, int(signed), 1, photometric, 0, frames,
                            slope, intercept, center, width, function, voi, None, fill=fill,
                            pixel_bytes=max(0, expected + extra), shape=shape)
    outcome = _check(data)
    event("opened" if outcome.error is None else outcome.error.__name__)
    if outcome.error is None:
        assert outcome.shape == (rows, cols)
    if extra >= 0 and all(v in (None, "0", "3", "-0") for v in (slope, intercept)) and allocated != 32:
        assert outcome.error is None, outcome.message  # nothing wrong with it: it must open


def _seeds() -> dict[str, bytes]:
    grey8 = ramp(64, 64, 255, "uint8")
    return {
        "native": dicom(base()),
        "j2k": dicom(encapsulated(base(), [compressed_stream(ramp(), JPEG2000Lossless)]), JPEG2000Lossless),
        "rle": dicom(encapsulated(base(), [compressed_stream(ramp(), RLELossless)]), RLELossless),
        "jpeg-dicom": dicom(encapsulated(base(grey8, bits=8), [jpeg_stream(grey8)]), JPEGBaseline8Bit),
        "png": cv2.imencode(".png", ramp(64, 64, 60000))[1].tobytes(),
        "jpeg": jpeg_stream(grey8),
        "tiff": cv2.imencode(".tif", ramp(64, 64, 60000))[1].tobytes(),
    }


SEEDS = _seeds()


@_fuzz(DAMAGE_EXAMPLES)
@given(seed=st.sampled_from(sorted(SEEDS)), edits=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)),
                                                           min_size=1, max_size=12),
       cut=st.one_of(st.none(), st.floats(0, 1)))
def test_any_damaged_file_is_read_or_refused_cleanly(seed, edits, cut):
    data = bytearray(SEEDS[seed])
    for where, value in edits:
        data[min(int(where * len(data)), len(data) - 1)] = value
    if cut is not None:
        data = data[: int(cut * len(data))]
    _check(bytes(data), "fuzz.bin")


def _png(width: int, height: int, depth: int, colour: int) -> bytes:
    def chunk(kind: bytes, payload: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + payload))
        return struct.pack(">I", len(payload)) + kind + payload + crc

    header = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(256))) + \
        chunk(b"IEND", b"")


@_fuzz(RASTER_EXAMPLES)
@given(width=st.integers(0, 2**32 - 1), height=st.integers(0, 2**32 - 1),
       depth=st.sampled_from([1, 2, 4, 8, 16, 3, 0, 255]), colour=st.sampled_from([0, 2, 3, 4, 6, 1, 7]),
       kind=st.sampled_from(["png", "jpeg"]))
def test_any_raster_size_in_a_header_is_budgeted_before_decoding(width, height, depth, colour, kind):
    if kind == "png":
        data = _png(width, height, depth, colour)
    else:
        width, height = width % 65536, height % 65536
        stream = bytearray(jpeg_stream(ramp(16, 16, 255, "uint8")))
        at = stream.index(b"\xff\xc0")
        stream[at + 5 : at + 9] = struct.pack(">HH", height, width)
        data = bytes(stream)
    outcome = _check(data, f"fuzz.{kind}")
    if width * height > MAX_PIXELS:
        assert outcome.error is UnsupportedImageError and "image too large" in outcome.message


def test_fuzzing_leaves_stderr_quiet(capfd):
    """One pass over every seed with heavy damage, under fd-level capture: native decoders say nothing."""
    rng = np.random.default_rng(11)
    for data in SEEDS.values():
        for _ in range(10):
            damaged = bytearray(data)
            for where in rng.integers(0, len(data), 20):
                damaged[where] = int(rng.integers(0, 256))
            _check(bytes(damaged), "quiet.bin")
    assert capfd.readouterr().err == ""


@pytest.fixture(scope="module", autouse=True)
def _clean_folder():
    yield
    for path in _FOLDER.iterdir():
        path.unlink()
    _FOLDER.rmdir()


_SEGMENT = st.one_of(
    st.lists(st.integers(0, 65535), max_size=5).map(lambda v: [0, len(v), *v]),  # discrete
    st.tuples(st.integers(1, 400), st.integers(0, 65535)).map(lambda t: [1, *t]),  # linear
    st.just([2, 1, 0, 0]),  # indirect: copy the first segment again
)


@_fuzz(PALETTE_EXAMPLES)
@given(first=st.integers(0, 65535), segments=st.lists(_SEGMENT, min_size=1, max_size=6))
def test_the_bounded_segmented_lut_expansion_gives_pydicoms_values(first, segments):
    """Valid segmented palette LUTs expand to exactly what pydicom's expansion gives (ours stops early on
    bombs, which pydicom grows into gigabytes)."""
    from pydicom.pixels.processing import _expand_segmented_lut

    from xrayviewer.imaging.lut import _expand_segmented

    words = [0, 1, first, *(w for segment in segments for w in segment)]
    ours = [int(v) for part in _expand_segmented(np.array(words, np.int64), 10**6, "LUT") for v in part]
    assert ours == list(_expand_segmented_lut(tuple(words), "<H"))


def test_palette_colour_gives_pydicoms_rgb():
    from pydicom.pixels.processing import apply_color_lut

    from xrayviewer.imaging.lut import palette_rgb

    ds = base(ramp(high=255, dtype="uint8"), "PALETTE COLOR", 8)
    for colour, table in (("Red", np.arange(256) * 257), ("Green", np.arange(256)[::-1] * 257),
                          ("Blue", np.full(256, 30000))):
        ds.add_new(f"{colour}PaletteColorLookupTableDescriptor", "US", [256, 0, 16])
        ds.add_new(f"{colour}PaletteColorLookupTableData", "OW", np.asarray(table, "<u2").tobytes())
    ds = pydicom.dcmread(pydicom.filebase.DicomBytesIO(dicom(ds)), force=True)
    np.testing.assert_array_equal(palette_rgb(ds.pixel_array, ds), apply_color_lut(ds.pixel_array, ds))
