"""The imaging core on the real DICOM corpus in ../shared/data/dicom and the shared PNG/JPEG sets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.pixels.processing import apply_modality_lut, apply_voi_lut

from xrayviewer.imaging import Window, XRayImage, open_image
from xrayviewer.imaging.lut import apply_window, render, to_uint8

CHEST_FILES = [
    "siim_cr_chest_pa_jpegbaseline.dcm",
    "nih_gcp_dx_chest_nofinding.dcm",
    "nema_rg1_cr_chest_mono1_j2k_lossy.dcm",
    "orthanc_cr_chest_pa_mono1_jpegbaseline.dcm",
]


@pytest.fixture(scope="session")
def opened(shared_data: Path):
    """open_image on a shared DICOM, decoded once per session."""
    cache: dict[str, XRayImage] = {}

    def _open(name: str) -> XRayImage:
        if name not in cache:
            cache[name] = open_image(shared_data / "dicom" / name)
        return cache[name]

    return _open


@pytest.fixture(scope="session")
def reference(shared_data: Path):
    """pydicom's own dataset and decoded stored values for a shared DICOM (the oracle)."""

    def _read(name: str) -> tuple[pydicom.Dataset, np.ndarray]:
        ds = pydicom.dcmread(shared_data / "dicom" / name)
        return ds, ds.pixel_array

    return _read


def _box(values: np.ndarray, rows: tuple[float, float], cols: tuple[float, float]) -> float:
    h, w = values.shape
    return float(values[int(rows[0] * h) : int(rows[1] * h), int(cols[0] * w) : int(cols[1] * w)].mean())


def lung_and_mediastinum(values: np.ndarray) -> tuple[float, float]:
    """Mean display brightness of both lung fields and of the mediastinum on a PA chest film."""
    band = (0.30, 0.55)
    lungs = (_box(values, band, (0.20, 0.35)) + _box(values, band, (0.65, 0.80))) / 2
    return lungs, _box(values, band, (0.45, 0.55))


def test_index_lists_every_shared_dicom(shared_data: Path, dicom_index: dict) -> None:
    on_disk = {p.name for p in (shared_data / "dicom").glob("*.dcm")}
    assert on_disk == set(dicom_index)
    assert len(on_disk) == 13


@pytest.mark.parametrize("name", sorted(
    # every shared file opens with the shape, photometric and inversion the index states
    ["siim_cr_chest_pa_jpegbaseline.dcm", "siim_cr_chest_pa_fake_monochrome1.dcm",
     "nih_gcp_dx_chest_nofinding.dcm", "nema_rg1_cr_chest_mono1_j2k_lossy.dcm",
     "nema_rg3_cr_extremity_mono1_j2k_lossless.dcm", "nonchest_mlut_18_modality_lut.dcm",
     "nonchest_vlut_04_voi_lut.dcm", "nonchest_nm_jpeg_lossless_signed.dcm",
     "nonchest_ct_signed_rescale_j2k_lossless.dcm", "nonchest_mr_multiframe_rle.dcm",
     "nonchest_jpegls_signed_16.dcm", "nonchest_cr_cspine_mono1_16x16_rescale.dcm",
     "orthanc_cr_chest_pa_mono1_jpegbaseline.dcm"]))
def test_shared_dicom_matches_index(name: str, opened, dicom_index: dict) -> None:
    row = dicom_index[name]
    image = opened(name)
    assert image.format == "DICOM"
    assert image.shape == (int(row["rows"]), int(row["cols"]))
    assert image.pixels.dtype == np.float32
    assert image.photometric == row["photometric"]
    assert image.invert == (row["photometric"] == "MONOCHROME1")
    shown = render(image)
    assert shown.dtype == np.float32 and shown.shape == image.shape
    assert shown.min() >= 0.0 and shown.max() <= 1.0 and shown.max() > shown.min()
    assert image.metadata["Transfer syntax"] in row["transfer_syntax"]


@pytest.mark.parametrize("name", sorted(
    ["siim_cr_chest_pa_jpegbaseline.dcm", "nih_gcp_dx_chest_nofinding.dcm",
     "nema_rg3_cr_extremity_mono1_j2k_lossless.dcm", "nonchest_nm_jpeg_lossless_signed.dcm",
     "nonchest_ct_signed_rescale_j2k_lossless.dcm", "nonchest_jpegls_signed_16.dcm",
     "nonchest_cr_cspine_mono1_16x16_rescale.dcm", "nonchest_mlut_18_modality_lut.dcm",
     "orthanc_cr_chest_pa_mono1_jpegbaseline.dcm"]))
def test_pixels_are_pydicom_modality_values(name: str, opened, reference) -> None:
    ds, stored = reference(name)
    expected = apply_modality_lut(stored, ds).astype(np.float32)
    np.testing.assert_array_equal(opened(name).pixels, expected)


@pytest.mark.parametrize("name", CHEST_FILES)
def test_chest_films_show_dark_lungs_and_white_mediastinum(name: str, opened) -> None:
    lungs, mediastinum = lung_and_mediastinum(render(opened(name)))
    assert mediastinum - lungs > 0.25


def test_true_monochrome1_is_inverted_after_the_header_window(opened, reference) -> None:
    name = "orthanc_cr_chest_pa_mono1_jpegbaseline.dcm"
    image = opened(name)
    assert (image.window.center, image.window.width, image.window.source) == (114.516, 255.0623, "header")
    ds, stored = reference(name)
    # raw MONOCHROME1 values: lungs are HIGH (dark on screen once inverted)
    lungs, mediastinum = lung_and_mediastinum(stored.astype(np.float32))
    assert lungs > mediastinum
    windowed = apply_voi_lut(apply_modality_lut(stored, ds), ds) / 255.0
    np.testing.assert_allclose(render(image), 1.0 - windowed, atol=1e-5)


def test_fake_monochrome1_renders_inverted_against_its_twin(opened) -> None:
    twin = opened("siim_cr_chest_pa_jpegbaseline.dcm")
    fake = opened("siim_cr_chest_pa_fake_monochrome1.dcm")
    np.testing.assert_array_equal(fake.pixels, twin.pixels)
    assert fake.window == twin.window and fake.window.source == "auto percentile"
    np.testing.assert_allclose(render(fake), 1.0 - render(twin), atol=1e-6)
    lungs, mediastinum = lung_and_mediastinum(render(fake))
    assert lungs > mediastinum  # the edited header makes lungs white: what the file says, not a chest view


def test_auto_window_is_the_robust_percentile_range(opened) -> None:
    image = opened("nih_gcp_dx_chest_nofinding.dcm")
    low, high = np.percentile(image.pixels, [0.5, 99.5])
    assert image.window.source == "auto percentile"
    assert image.window.width == pytest.approx(high - low + 1, abs=2)
    assert image.window.center == pytest.approx((low + high + 1) / 2, abs=1)


def test_j2k_lossy_monochrome1_uses_its_header_window(opened, dicom_index: dict) -> None:
    image = opened("nema_rg1_cr_chest_mono1_j2k_lossy.dcm")
    assert (image.window.center, image.window.width) == (15000.0, 30000.0)
    assert (image.pixels.min(), image.pixels.max()) == (803.0, 26512.0)
    assert image.view_position == "PA"
    assert image.metadata["Body part"] == "CHEST"
    assert image.metadata["Lossy compression"] == "01"


def test_ct_rescale_and_signed_j2k(opened) -> None:
    image = opened("nonchest_ct_signed_rescale_j2k_lossless.dcm")
    # stored -2000..2492, Rescale Intercept -1024
    assert (image.pixels.min(), image.pixels.max()) == (-3024.0, 1468.0)
    assert (image.window.center, image.window.width) == (40.0, 100.0)


def test_small_cr_rescale_slope_and_intercept(opened, reference) -> None:
    image = opened("nonchest_cr_cspine_mono1_16x16_rescale.dcm")
    _, stored = reference("nonchest_cr_cspine_mono1_16x16_rescale.dcm")
    np.testing.assert_allclose(image.pixels, stored * 0.684 + 200, rtol=1e-6)
    assert image.view_position == "LL" and image.invert


def test_voi_lut_sequence_is_the_default_rendering(opened, reference) -> None:
    name = "nonchest_vlut_04_voi_lut.dcm"
    image = opened(name)
    ds, stored = reference(name)
    assert image.voi_lut is not None and image.voi_lut.bits == 16
    np.testing.assert_allclose(render(image), apply_voi_lut(stored, ds) / 65535.0, atol=1e-6)
    # this table is a linear ramp over 0..255; an explicit narrow window overrides it
    np.testing.assert_allclose(render(image), image.pixels / 255.0, atol=1e-6)
    narrow = Window(center=64.0, width=32.0)
    np.testing.assert_allclose(render(image, window=narrow), apply_window(image.pixels, narrow))
    assert not np.allclose(render(image, window=narrow), render(image))


def test_multiframe_rle_shows_first_frame_with_a_warning(opened, reference) -> None:
    name = "nonchest_mr_multiframe_rle.dcm"
    image = opened(name)
    _, frames = reference(name)
    assert frames.shape == (10, 64, 64)
    np.testing.assert_array_equal(image.pixels, frames[0].astype(np.float32))
    assert any("10 frames" in w for w in image.warnings)


def test_metadata_never_holds_patient_identity(opened) -> None:
    image = opened("nih_gcp_dx_chest_nofinding.dcm")
    text = repr(image.metadata)
    assert "Covid0000" not in text
    assert image.metadata["Modality"] == "DX"
    assert image.metadata["Study"] == "No Finding"


def _first_files(folder: Path, pattern: str, count: int) -> list[Path]:
    return sorted(folder.glob(pattern))[:count]


def test_shared_png_and_jpeg_render_their_values_unchanged(shared_data: Path) -> None:
    import cv2

    files = _first_files(shared_data / "nih" / "images", "*.png", 2)
    files += _first_files(shared_data / "kermany" / "images", "*.jpeg", 2)
    assert len(files) == 4
    for path in files:
        image = open_image(path)
        raw = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        assert image.format in {"PNG", "JPEG"} and image.photometric == "MONOCHROME2"
        assert (image.window.center, image.window.width) == (128.0, 256.0)
        np.testing.assert_allclose(render(image), raw / 255.0, atol=1e-6)
        np.testing.assert_array_equal(to_uint8(render(image)), raw)


def test_zero_pixel_spacing_is_flagged_not_calibrated(shared_data):
    from xrayviewer.imaging import open_image

    image = open_image(shared_data / "dicom" / "nema_rg1_cr_chest_mono1_j2k_lossy.dcm")
    assert image.pixel_spacing is None
    assert image.metadata["Pixel spacing (mm)"].endswith("(not calibrated)")
