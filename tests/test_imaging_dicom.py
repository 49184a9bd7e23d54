"""Synthetic DICOMs built with pydicom, one per pipeline case; pixels checked against pydicom's functions."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pydicom
import pytest
from imaging_dicoms import dataset, ramp, write, write_jpeg_baseline
from pydicom import Dataset
from pydicom.pixels.processing import apply_modality_lut, apply_voi_lut, convert_color_space
from pydicom.uid import (
    JPEG2000,
    DeflatedExplicitVRLittleEndian,
    JPEG2000Lossless,
    RLELossless,
)

from xrayviewer.imaging import open_image
from xrayviewer.imaging.colour import COLOUR_WARNING
from xrayviewer.imaging.lut import apply_window, render


def pydicom_display(ds: Dataset, stored: np.ndarray) -> np.ndarray:
    """pydicom's Modality LUT then VOI (LUT or window), scaled to [0, 1] by the VOI output range."""
    values = apply_voi_lut(apply_modality_lut(stored, ds), ds)
    if "VOILUTSequence" in ds:
        return values / (2 ** int(ds.VOILUTSequence[0].LUTDescriptor[2]) - 1)
    if "ModalityLUTSequence" in ds:
        low, high = 0, 2 ** int(ds.ModalityLUTSequence[0].LUTDescriptor[2]) - 1
    elif ds.PixelRepresentation:
        low, high = -(2 ** (ds.BitsStored - 1)), 2 ** (ds.BitsStored - 1) - 1
    else:
        low, high = 0, 2**ds.BitsStored - 1
    if "RescaleSlope" in ds:
        # pydicom maps the output range through the rescale too (so it runs high → low for a negative slope)
        low, high = (v * ds.RescaleSlope + ds.RescaleIntercept for v in (low, high))
    return (values - low) / (high - low)


def roundtrip(ds: Dataset, tmp_path: Path, syntax: str | None = None):
    """Write ``ds``, open it with open_image and with pydicom; return (image, pydicom dataset, stored)."""
    path = write(ds, tmp_path / "image.dcm", syntax)
    reference = pydicom.dcmread(path)
    return open_image(path), reference, reference.pixel_array


def test_monochrome2_header_window_matches_pydicom(tmp_path: Path) -> None:
    ds = dataset(ramp(), bits_stored=12, WindowCenter=1800, WindowWidth=1200)
    image, ref, stored = roundtrip(ds, tmp_path)
    assert (image.window.center, image.window.width, image.window.source) == (1800.0, 1200.0, "header")
    assert not image.invert
    np.testing.assert_allclose(render(image), pydicom_display(ref, stored), atol=1e-5)


def test_monochrome1_is_inverted_after_voi(tmp_path: Path) -> None:
    ds = dataset(ramp(), "MONOCHROME1", bits_stored=12, WindowCenter=1000, WindowWidth=800)
    image, ref, stored = roundtrip(ds, tmp_path)
    assert image.invert
    windowed = pydicom_display(ref, stored)
    np.testing.assert_allclose(render(image), 1.0 - windowed, atol=1e-5)
    # the lowest stored values (bone in MONOCHROME1) are white, the highest black
    assert render(image)[0, 0] == 1.0 and render(image)[-1, -1] == 0.0
    np.testing.assert_allclose(render(image, invert=False), windowed, atol=1e-5)


def test_presentation_lut_shape_inverse_inverts_monochrome2(tmp_path: Path) -> None:
    ds = dataset(ramp(), bits_stored=12, PresentationLUTShape="INVERSE", WindowCenter=2048, WindowWidth=4096)
    image, ref, stored = roundtrip(ds, tmp_path)
    assert image.invert
    np.testing.assert_allclose(render(image), 1.0 - pydicom_display(ref, stored), atol=1e-5)


def test_monochrome1_with_inverse_shape_is_inverted_once(tmp_path: Path) -> None:
    ds = dataset(ramp(), "MONOCHROME1", bits_stored=12, PresentationLUTShape="INVERSE")
    image, _, _ = roundtrip(ds, tmp_path)
    assert image.invert
    assert render(image)[0, 0] == 1.0


def test_signed_pixels(tmp_path: Path) -> None:
    pixels = ramp(low=-2048, high=2047, dtype="int16")
    ds = dataset(pixels, bits_stored=12, WindowCenter=0, WindowWidth=2000)
    image, ref, stored = roundtrip(ds, tmp_path)
    assert ref.PixelRepresentation == 1
    np.testing.assert_array_equal(image.pixels, pixels.astype(np.float32))
    np.testing.assert_allclose(render(image), pydicom_display(ref, stored), atol=1e-5)


@pytest.mark.parametrize(("slope", "intercept"), [(0.5, -1024.0), (-2.0, 5000.0)])
def test_rescale_slope_and_intercept_including_negative_slope(tmp_path: Path, slope, intercept) -> None:
    ds = dataset(ramp(), bits_stored=12, RescaleSlope=slope, RescaleIntercept=intercept,
                 WindowCenter=500, WindowWidth=1500)
    image, ref, stored = roundtrip(ds, tmp_path)
    np.testing.assert_allclose(image.pixels, stored * slope + intercept, rtol=1e-6)
    np.testing.assert_allclose(render(image), pydicom_display(ref, stored), atol=1e-5)
    if slope < 0:  # negative slope: high stored values become low modality values, shown dark
        assert render(image)[-1, -1] < render(image)[0, 0]


def _lut_item(entries: int, first: int, bits: int, table: np.ndarray) -> Dataset:
    item = Dataset()
    item.LUTDescriptor = [entries, first, bits]
    item.add_new("LUTData", "US", [int(v) for v in table])
    return item


def test_modality_lut_sequence(tmp_path: Path) -> None:
    stored = ramp(high=1023)
    table = np.rint(np.sqrt(np.arange(1024) / 1023) * 40000).astype(np.uint16)  # non-linear
    ds = dataset(stored, bits_stored=10)
    ds.ModalityLUTSequence = [_lut_item(1024, 0, 16, table)]
    ds.ModalityLUTSequence[0].ModalityLUTType = "US"
    image, ref, raw = roundtrip(ds, tmp_path)
    np.testing.assert_array_equal(image.pixels, table[stored].astype(np.float32))
    np.testing.assert_array_equal(image.pixels, apply_modality_lut(raw, ref).astype(np.float32))


def test_voi_lut_sequence_is_default_and_matches_pydicom(tmp_path: Path) -> None:
    stored = ramp(high=4095)
    table = np.rint((np.arange(2048) / 2047) ** 0.5 * 65535).astype(np.uint16)  # gamma over 1000..3047
    ds = dataset(stored, bits_stored=12, WindowCenter=2048, WindowWidth=4096)
    ds.VOILUTSequence = [_lut_item(2048, 1000, 16, table)]
    ds.VOILUTSequence[0].LUTExplanation = "GAMMA"
    image, ref, raw = roundtrip(ds, tmp_path)
    assert image.voi_lut is not None and image.voi_lut.explanation == "GAMMA"
    assert image.voi_lut.first_mapped == 1000 and image.voi_lut.bits == 16
    np.testing.assert_allclose(render(image), apply_voi_lut(raw, ref, prefer_lut=True) / 65535.0, atol=1e-6)
    # the header window stays available for the W/L tools
    assert (image.window.center, image.window.width) == (2048.0, 4096.0)


def test_long_8_bit_voi_lut_is_read_in_full(tmp_path: Path) -> None:
    """2048 entries of 8 bits (legal per PS3.3 C.11.2.1.1); pydicom 3.0.2's apply_voi wraps such indices."""
    stored = ramp(high=4095)
    table = np.rint((np.arange(2048) / 2047) ** 0.5 * 255).astype(np.uint16)
    ds = dataset(stored, bits_stored=12)
    ds.VOILUTSequence = [_lut_item(2048, 1000, 8, table)]
    image, _, _ = roundtrip(ds, tmp_path)
    expected = table[np.clip(stored.astype(int) - 1000, 0, 2047)] / 255.0
    np.testing.assert_allclose(render(image), expected, atol=1e-6)


@pytest.mark.parametrize("function", ["LINEAR", "LINEAR_EXACT", "SIGMOID"])
def test_voi_lut_functions_match_pydicom(tmp_path: Path, function: str) -> None:
    ds = dataset(ramp(), bits_stored=12, WindowCenter=1500.5, WindowWidth=901, VOILUTFunction=function)
    image, ref, stored = roundtrip(ds, tmp_path)
    assert image.window.function == function
    np.testing.assert_allclose(render(image), pydicom_display(ref, stored), atol=1e-5)


def test_multi_valued_window_first_is_default_others_are_presets(tmp_path: Path) -> None:
    ds = dataset(ramp(), bits_stored=12, WindowCenter=[1000, 2500, 3000], WindowWidth=[500, 2000, 1000],
                 WindowCenterWidthExplanation=["SOFT", "LUNG", "BONE"])
    image, ref, stored = roundtrip(ds, tmp_path)
    assert (image.window.center, image.window.width, image.window.name) == (1000.0, 500.0, "SOFT")
    assert [(w.center, w.width, w.name, w.source) for w in image.presets] == [
        (2500.0, 2000.0, "LUNG", "header #2"), (3000.0, 1000.0, "BONE", "header #3")]
    for index, window in enumerate([image.window, *image.presets]):
        expected = apply_voi_lut(stored.astype(float), ref, index=index) / 4095
        np.testing.assert_allclose(apply_window(image.pixels, window), expected, atol=1e-5)


def test_no_window_falls_back_to_auto_percentile(tmp_path: Path) -> None:
    stored = ramp(high=4095)
    stored[0, :3] = [0, 65535, 65535]  # outliers must not stretch the window
    image, _, _ = roundtrip(dataset(stored), tmp_path)
    low, high = np.percentile(stored, [0.5, 99.5])
    assert image.window.source == "auto percentile"
    assert image.window.width == pytest.approx(high - low + 1, rel=0.02)
    assert image.window.width < 5000


def test_bits_stored_below_bits_allocated_masks_unused_high_bits(tmp_path: Path) -> None:
    values = ramp(high=4095)
    ds = dataset(values, bits_stored=12)
    ds.PixelData = (values | 0xF000).astype("<u2").tobytes()  # overlay/garbage in the 4 unused bits
    image, _, _ = roundtrip(ds, tmp_path)
    np.testing.assert_array_equal(image.pixels, values.astype(np.float32))


def test_multiframe_shows_first_frame_with_warning(tmp_path: Path) -> None:
    frames = np.stack([ramp(), ramp()[::-1], np.zeros((32, 48), np.uint16)])
    image, _, _ = roundtrip(dataset(frames, bits_stored=12), tmp_path)
    assert image.shape == (32, 48)
    np.testing.assert_array_equal(image.pixels, frames[0].astype(np.float32))
    assert image.warnings == ["multi-frame image (3 frames): showing the first frame only"]


def _colour() -> np.ndarray:
    rgb = np.zeros((16, 24, 3), np.uint8)
    rgb[..., 0] = 200
    rgb[..., 1] = np.arange(24, dtype=np.uint8)[None, :] * 10
    rgb[..., 2] = 50
    return rgb


def test_rgb_is_converted_to_grey_with_warning(tmp_path: Path) -> None:
    rgb = _colour()
    image, _, _ = roundtrip(dataset(rgb, "RGB"), tmp_path)
    luma = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    np.testing.assert_allclose(image.pixels, luma, atol=1e-3)
    assert image.photometric == "RGB" and COLOUR_WARNING in image.warnings
    np.testing.assert_allclose(render(image), luma / 255.0, atol=1e-5)  # 8-bit range window


def test_ybr_full_is_converted_to_grey(tmp_path: Path) -> None:
    rgb = _colour()
    ybr = convert_color_space(rgb, "RGB", "YBR_FULL")
    image, _, _ = roundtrip(dataset(ybr, "YBR_FULL"), tmp_path)
    assert COLOUR_WARNING in image.warnings
    # Y of YBR_FULL is the same BT.601 luma: grey equals the stored Y channel up to colour round-off
    np.testing.assert_allclose(image.pixels, ybr[..., 0], atol=1.5)


@pytest.mark.parametrize("syntax", [RLELossless, JPEG2000Lossless, DeflatedExplicitVRLittleEndian])
def test_lossless_syntaxes_pydicom_can_encode(tmp_path: Path, syntax: str) -> None:
    pixels = ramp(high=4095)
    ds = dataset(pixels, bits_stored=12, WindowCenter=2000, WindowWidth=3000)
    image, ref, _ = roundtrip(ds, tmp_path, syntax)
    assert ref.file_meta.TransferSyntaxUID == syntax
    assert image.metadata["Transfer syntax"] == pydicom.uid.UID(syntax).name
    np.testing.assert_array_equal(image.pixels, pixels.astype(np.float32))


def test_signed_rle(tmp_path: Path) -> None:
    pixels = ramp(low=-1000, high=3000, dtype="int16")
    image, _, _ = roundtrip(dataset(pixels, bits_stored=16), tmp_path, RLELossless)
    np.testing.assert_array_equal(image.pixels, pixels.astype(np.float32))


def test_jpeg2000_lossy(tmp_path: Path) -> None:
    pixels = ramp(rows=64, cols=64, high=4095)
    ds = dataset(pixels, bits_stored=12)
    ds.compress(JPEG2000, j2k_cr=[20])
    image, _, _ = roundtrip(ds, tmp_path)
    assert image.metadata["Transfer syntax"] == JPEG2000.name
    assert np.abs(image.pixels - pixels).mean() < 40  # lossy, but the same picture


def test_jpeg_baseline(tmp_path: Path) -> None:
    pixels = ramp(high=255, dtype="uint8")
    path = write_jpeg_baseline(pixels, tmp_path / "jpeg.dcm", WindowCenter=128, WindowWidth=256)
    image = open_image(path)
    stream = pydicom.encaps.generate_frames(pydicom.dcmread(path).PixelData, number_of_frames=1)
    expected = cv2.imdecode(np.frombuffer(next(stream), np.uint8), cv2.IMREAD_GRAYSCALE)
    np.testing.assert_allclose(image.pixels, expected, atol=1)
    np.testing.assert_allclose(render(image), image.pixels / 255.0, atol=1e-6)


def test_dicom_without_preamble_or_extension(tmp_path: Path) -> None:
    pixels = ramp(high=4095)
    path = write(dataset(pixels, bits_stored=12), tmp_path / "IM0001", preamble=False)
    assert path.read_bytes()[128:132] != b"DICM"
    image = open_image(path)
    assert image.format == "DICOM"
    np.testing.assert_array_equal(image.pixels, pixels.astype(np.float32))


def test_dicom_named_png_is_read_as_dicom(tmp_path: Path) -> None:
    path = write(dataset(ramp(), bits_stored=12), tmp_path / "scan.png")
    assert open_image(path).format == "DICOM"


def test_pixel_spacing_and_view_position(tmp_path: Path) -> None:
    ds = dataset(ramp(), bits_stored=12, ImagerPixelSpacing=[0.139, 0.14], ViewPosition="AP")
    image, _, _ = roundtrip(ds, tmp_path)
    assert image.pixel_spacing == (0.139, 0.14)
    assert image.view_position == "AP"


def test_palette_colour_is_converted_to_grey(tmp_path: Path) -> None:
    indices = ramp(high=255, dtype="uint8")
    ds = dataset(indices, "PALETTE COLOR")
    red, green, blue = (np.arange(256) * 257).astype("<u2"), np.zeros(256, "<u2"), np.full(256, 65535, "<u2")
    for colour, table in (("Red", red), ("Green", green), ("Blue", blue)):
        ds.add_new(f"{colour}PaletteColorLookupTableDescriptor", "US", [256, 0, 16])
        ds.add_new(f"{colour}PaletteColorLookupTableData", "OW", table.tobytes())
    image, _, _ = roundtrip(ds, tmp_path)
    assert COLOUR_WARNING in image.warnings
    expected = 0.299 * red[indices].astype(np.float32) + 0.114 * 65535
    np.testing.assert_allclose(image.pixels, expected, rtol=1e-5)
    np.testing.assert_allclose(render(image), expected / 65535, atol=1e-5)  # 16-bit palette range
