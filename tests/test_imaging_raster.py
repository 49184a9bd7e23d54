"""PNG (8/16-bit), JPEG, TIFF: values kept, the default window shows them unchanged, parity with DICOM."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from imaging_dicoms import dataset, ramp, write

from xrayviewer.imaging import open_image
from xrayviewer.imaging.colour import COLOUR_WARNING
from xrayviewer.imaging.lut import render, to_uint8


def _save(path: Path, pixels: np.ndarray, *params: int) -> Path:
    assert cv2.imwrite(str(path), pixels, list(params))
    return path


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_8_bit_values_render_unchanged(tmp_path: Path, suffix: str) -> None:
    pixels = ramp(high=255, dtype="uint8")
    image = open_image(_save(tmp_path / f"grey{suffix}", pixels))
    assert image.format == {".png": "PNG", ".tif": "TIFF"}[suffix]
    assert image.pixels.dtype == np.float32
    np.testing.assert_array_equal(image.pixels, pixels)
    assert (image.window.center, image.window.width, image.window.source) == (128.0, 256.0, "bit depth")
    np.testing.assert_allclose(render(image), pixels / 255.0, atol=1e-6)
    np.testing.assert_array_equal(to_uint8(render(image)), pixels)


def test_jpeg_renders_its_decoded_values(tmp_path: Path) -> None:
    pixels = ramp(rows=64, cols=64, high=255, dtype="uint8")
    path = _save(tmp_path / "grey.jpg", pixels, cv2.IMWRITE_JPEG_QUALITY, 95)
    decoded = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    image = open_image(path)
    assert image.format == "JPEG"
    np.testing.assert_array_equal(to_uint8(render(image)), decoded)


@pytest.mark.parametrize(("high", "bits"), [(65535, 16), (4095, 12)])
def test_16_bit_png_uses_its_significant_bits(tmp_path: Path, high: int, bits: int) -> None:
    pixels = ramp(high=high)
    image = open_image(_save(tmp_path / "deep.png", pixels))
    np.testing.assert_array_equal(image.pixels, pixels.astype(np.float32))
    assert image.window.name == f"{bits}-bit range"
    np.testing.assert_allclose(render(image), pixels / (2**bits - 1), atol=1e-6)


def test_16_bit_tiff(tmp_path: Path) -> None:
    pixels = ramp(high=60000)
    image = open_image(_save(tmp_path / "deep.tiff", pixels))
    assert image.format == "TIFF"
    np.testing.assert_array_equal(image.pixels, pixels.astype(np.float32))


@pytest.mark.parametrize("channels", [3, 4])
def test_colour_files_become_grey_with_a_warning(tmp_path: Path, channels: int) -> None:
    bgr = np.zeros((16, 24, channels), np.uint8)
    bgr[..., 0], bgr[..., 1], bgr[..., 2] = 30, np.arange(24, dtype=np.uint8) * 10, 200  # B, G, R
    if channels == 4:
        bgr[..., 3] = 255
    image = open_image(_save(tmp_path / "colour.png", bgr))
    luma = np.rint(0.299 * 200 + 0.587 * bgr[..., 1].astype(np.float32) + 0.114 * 30)
    np.testing.assert_array_equal(image.pixels, luma)
    assert image.photometric == "RGB" and image.warnings == [COLOUR_WARNING]
    assert image.colour_fraction == 1.0  # every pixel is far from grey


def test_grey_stored_as_rgb_keeps_its_values(tmp_path: Path) -> None:
    grey = ramp(high=255, dtype="uint8")
    image = open_image(_save(tmp_path / "rgb.png", np.dstack([grey, grey, grey])))
    np.testing.assert_array_equal(image.pixels, grey)
    assert image.colour_fraction == 0.0 and image.warnings == []  # grey stored as RGB is not colour


def test_a_coloured_arrow_on_a_grey_film_is_a_small_colour_fraction(tmp_path: Path) -> None:
    bgr = np.dstack([ramp(high=255, dtype="uint8")] * 3)
    bgr[2:4, 2:10] = (0, 0, 255)  # a red arrow
    image = open_image(_save(tmp_path / "arrow.png", bgr))
    assert 0 < image.colour_fraction < 0.1 and image.warnings == [COLOUR_WARNING]


@pytest.mark.parametrize("name", ["orthanc_cr_chest_pa_mono1_jpegbaseline.dcm",
                                  "nema_rg1_cr_chest_mono1_j2k_lossy.dcm",
                                  "siim_cr_chest_pa_jpegbaseline.dcm"])
def test_png_of_a_displayed_dicom_renders_the_same(shared_data: Path, tmp_path: Path, name: str) -> None:
    """The engine relies on this: a DICOM and the PNG of its displayed picture give the same model input."""
    dicom = open_image(shared_data / "dicom" / name)
    shown = to_uint8(render(dicom))
    png = open_image(_save(tmp_path / "shown.png", shown))
    np.testing.assert_array_equal(to_uint8(render(png)), shown)
    np.testing.assert_allclose(render(png), render(dicom), atol=0.5 / 255 + 1e-6)


def test_synthetic_dicom_and_png_with_the_same_8_bit_picture(tmp_path: Path) -> None:
    pixels = ramp(high=255, dtype="uint8")
    dicom = open_image(write(dataset(pixels, WindowCenter=128, WindowWidth=256), tmp_path / "a.dcm"))
    png = open_image(_save(tmp_path / "a.png", pixels))
    np.testing.assert_array_equal(render(dicom), render(png))
