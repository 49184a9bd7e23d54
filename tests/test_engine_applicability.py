"""The applicability gate on the shared DICOM set (every modality in it) and on plain raster files."""

from pathlib import Path

import numpy as np
import pytest
from imaging_dicoms import film_dicom

from xrayviewer.engine.applicability import check_applicability
from xrayviewer.imaging import open_image
from xrayviewer.imaging.image import Window, XRayImage


def test_shared_dicoms_are_refused_exactly_when_not_a_projection_radiograph_of_the_chest(shared_data,
                                                                                        dicom_index):
    for name, row in dicom_index.items():
        image = open_image(shared_data / "dicom" / name)
        verdict = check_applicability(image)
        modality, body_part = row["modality"], image.metadata.get("Body part", "")
        if modality in ("CR", "DX") and body_part in ("", "CHEST"):
            assert not verdict.refused, name
        elif modality in ("CR", "DX"):  # an extremity, a cervical spine: the header says it is no chest
            assert verdict.refusal == f"Not a chest radiograph (body part {body_part}): no findings computed."
        elif modality:  # CT, MR, NM, OT
            assert verdict.refusal == f"Not a chest radiograph (modality {modality}): no findings computed."
        elif min(image.shape) >= 64:
            assert not verdict.refused and "no modality" in verdict.warnings[0], name
        else:  # JPEG-LS test file of 10 x 50 px
            assert "too small to read" in verdict.refusal


def test_frontal_chest_films_pass_without_warnings(shared_data):
    for name in ("siim_cr_chest_pa_jpegbaseline.dcm", "nema_rg1_cr_chest_mono1_j2k_lossy.dcm"):
        verdict = check_applicability(open_image(shared_data / "dicom" / name))
        assert verdict.refusal == "" and verdict.warnings == ()


def test_a_lateral_chest_film_is_warned_and_a_non_chest_body_part_refused(shared_data, kermany_rows,
                                                                          tmp_path):
    lateral = film_dicom(Path(kermany_rows[0]["path"]), tmp_path / "lateral.dcm", ViewPosition="LL")
    verdict = check_applicability(open_image(lateral))
    assert not verdict.refused
    assert verdict.warnings == ("Lateral view (LL): the models were trained on frontal films.",)
    cspine = shared_data / "dicom" / "nonchest_cr_cspine_mono1_16x16_rescale.dcm"
    assert check_applicability(open_image(cspine)).refusal == (
        "Not a chest radiograph (body part CSPINE): no findings computed.")


@pytest.mark.parametrize("view", ["LL", "rl", "LATERAL"])
def test_lateral_spellings(view):
    image = XRayImage(np.zeros((8, 8), np.float32), "MONOCHROME2", Window(0.5, 1.0), view_position=view,
                      metadata={"Modality": "DX"}, format="DICOM")
    assert check_applicability(image).warnings == (
        f"Lateral view ({view.upper()}): the models were trained on frontal films.",
    )


def test_png_without_header_is_allowed_silently(kermany_rows):
    verdict = check_applicability(open_image(kermany_rows[0]["path"]))
    assert verdict.refusal == "" and verdict.warnings == ()
