"""XRayImage.age_group: a coarse child/adult group from DICOM Patient's Age; the age itself never travels."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from imaging_dicoms import dataset, ramp, write

from xrayviewer.imaging import open_image


@pytest.mark.filterwarnings("ignore:Invalid value for VR AS")  # pydicom warns when writing the bad ones
@pytest.mark.parametrize(
    ("age", "group"),
    [
        ("005Y", "child"),
        ("017Y", "child"),
        ("018Y", "adult"),
        ("045Y", "adult"),
        ("011M", "child"),
        ("215M", "child"),
        ("216M", "adult"),
        ("003W", "child"),
        ("020D", "child"),
        ("45Y", "adult"),  # common non-conforming spelling: still unambiguous
        ("garbage", ""),
        ("045X", ""),
        ("", ""),
    ],
)
def test_patient_age_gives_the_age_group(tmp_path: Path, age: str, group: str) -> None:
    image = open_image(write(dataset(ramp(), bits_stored=12, PatientAge=age), tmp_path / "film.dcm"))
    assert image.age_group == group
    assert not age or not any(age in value for value in image.metadata.values())  # the age is not carried


def test_missing_patient_age_is_unknown(tmp_path: Path) -> None:
    ds = dataset(ramp(), bits_stored=12)
    assert "PatientAge" not in ds
    assert open_image(write(ds, tmp_path / "film.dcm")).age_group == ""


def test_png_has_no_age_group(tmp_path: Path) -> None:
    path = tmp_path / "film.png"
    cv2.imwrite(str(path), np.full((16, 16), 128, np.uint8))
    assert open_image(path).age_group == ""
