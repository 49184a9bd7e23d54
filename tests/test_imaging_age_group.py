"""XRayImage.age_group: a coarse child/adult group from DICOM Patient's Age (else birth and study dates);
the age itself never travels."""

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
        ("45Y", "adult"),  # common non-conforming spellings: still unambiguous
        ("45", "adult"),  # a bare number is years (SIIM and NIH files write it so)
        ("5", "child"),
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


@pytest.mark.filterwarnings("ignore:Invalid value for VR DA")
@pytest.mark.parametrize(
    ("study_date", "group"),
    [("19630316", "child"), ("19630317", "adult"), ("20240101", "adult"), ("19400101", ""), ("2024", "")],
)
def test_without_patient_age_birth_and_study_dates_give_the_group(tmp_path: Path, study_date: str,
                                                                  group: str) -> None:
    ds = dataset(ramp(), bits_stored=12, StudyDate=study_date)  # born 1945-03-17 (imaging_dicoms.PHI)
    assert open_image(write(ds, tmp_path / "film.dcm")).age_group == group


def test_shared_chest_films_are_adults(shared_data: Path) -> None:
    for name in ("siim_cr_chest_pa_jpegbaseline.dcm", "nema_rg1_cr_chest_mono1_j2k_lossy.dcm"):
        assert open_image(shared_data / "dicom" / name).age_group == "adult", name


def test_png_has_no_age_group(tmp_path: Path) -> None:
    path = tmp_path / "film.png"
    cv2.imwrite(str(path), np.full((16, 16), 128, np.uint8))
    assert open_image(path).age_group == ""
