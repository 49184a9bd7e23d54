"""Automatic, full-range, bit-depth windows and chest presets; de-identified metadata."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from imaging_dicoms import PHI, dataset, ramp, write

from xrayviewer.imaging import open_image
from xrayviewer.imaging.lut import apply_window, render
from xrayviewer.imaging.metadata import read_identifying_fields
from xrayviewer.imaging.windows import auto_window, bit_depth_window, chest_presets, full_range_window


def test_auto_window_ignores_outliers() -> None:
    pixels = np.full((100, 100), 1000.0, np.float32)
    pixels[:, 50:] = 3000.0
    pixels[0, :4] = [-30000, 60000, 60000, 60000]  # < 0.5 % of pixels
    window = auto_window(pixels)
    assert (window.center, window.width, window.source) == (2000.5, 2001.0, "auto percentile")
    np.testing.assert_array_equal(apply_window(np.array([1000.0, 3000.0], np.float32), window), [0.0, 1.0])


def test_full_range_and_bit_depth_windows_span_their_ranges() -> None:
    pixels = np.array([[-50.0, 0.0], [10.0, 950.0]], np.float32)
    spread = apply_window(pixels, full_range_window(pixels))
    np.testing.assert_allclose(spread, [[0, 0.05], [0.06, 1]], atol=1e-6)
    np.testing.assert_allclose(apply_window(np.array([0.0, 255.0], np.float32), bit_depth_window(8)), [0, 1])
    signed = bit_depth_window(12, signed=True)
    np.testing.assert_allclose(apply_window(np.array([-2048.0, 2047.0], np.float32), signed), [0, 1])


def test_ct_presets_are_hounsfield_windows() -> None:
    presets = {w.name: (w.center, w.width) for w in chest_presets(np.zeros((4, 4)), modality="CT")}
    assert presets == {"Lung": (-600.0, 1500.0), "Mediastinum": (50.0, 350.0), "Bone": (400.0, 1800.0)}


@pytest.mark.parametrize("invert", [False, True])
def test_radiograph_presets_follow_display_brightness(invert: bool) -> None:
    pixels = np.linspace(0, 1000, 10_000, dtype=np.float32).reshape(100, 100)
    presets = {w.name: w for w in chest_presets(pixels, invert=invert)}
    assert list(presets) == ["Lung", "Mediastinum", "Bone"]
    centres = [presets[n].center for n in ("Lung", "Mediastinum", "Bone")]
    assert centres == sorted(centres, reverse=invert)  # lung darkest ... bone brightest on screen
    assert all(0 <= c <= 1000 for c in centres)


def test_lung_preset_brightens_the_lungs_of_a_real_chest(shared_data: Path) -> None:
    image = open_image(shared_data / "dicom" / "orthanc_cr_chest_pa_mono1_jpegbaseline.dcm")
    presets = {w.name: w for w in chest_presets(image.pixels, invert=image.invert)}
    lung_box = (slice(int(0.30 * image.shape[0]), int(0.55 * image.shape[0])),
                slice(int(0.20 * image.shape[1]), int(0.35 * image.shape[1])))
    lung_view = render(image, window=presets["Lung"])[lung_box].mean()
    bone_view = render(image, window=presets["Bone"])[lung_box].mean()
    assert lung_view > bone_view + 0.1


def test_metadata_is_de_identified_and_identity_is_kept_apart(tmp_path: Path) -> None:
    path = write(dataset(ramp(), bits_stored=12, StudyDescription="CHEST PA", StudyDate="20240101",
                         AccessionNumber="ACC77", InstitutionName="St Elsewhere"), tmp_path / "x.dcm")
    image = open_image(path)
    assert image.metadata["Study"] == "CHEST PA" and image.metadata["View"] == "PA"
    shown = repr(image)
    for secret in (*PHI.values(), "20240101", "ACC77", "St Elsewhere"):
        assert secret not in shown
    identity = read_identifying_fields(path)
    assert identity["Patient name"] == "Doe^Jane" and identity["Patient ID"] == "PID-48213"
    assert identity["Birth date"] == "19450317" and identity["Accession number"] == "ACC77"


def test_identifying_fields_of_a_png_are_empty(tmp_path: Path) -> None:
    import cv2

    cv2.imwrite(str(tmp_path / "a.png"), ramp(high=255, dtype="uint8"))
    assert read_identifying_fields(tmp_path / "a.png") == {}
