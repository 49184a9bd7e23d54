"""The applicability gate on the shared DICOM set (every modality in it) and on plain raster files."""

import numpy as np
import pytest

from xrayviewer.engine.applicability import check_applicability
from xrayviewer.imaging import open_image
from xrayviewer.imaging.image import Window, XRayImage


def test_shared_dicoms_are_refused_exactly_when_not_a_projection_radiograph(shared_data, dicom_index):
    for name, row in dicom_index.items():
        verdict = check_applicability(open_image(shared_data / "dicom" / name))
        modality = row["modality"]
        if modality in ("CR", "DX"):
            assert not verdict.refused, name
        elif modality:  # CT, MR, NM, OT
            assert verdict.refusal == f"Not a chest radiograph (modality {modality}): no findings computed."
        else:
            assert not verdict.refused and "no modality" in verdict.warnings[0], name


def test_frontal_chest_films_pass_without_warnings(shared_data):
    for name in ("siim_cr_chest_pa_jpegbaseline.dcm", "nema_rg1_cr_chest_mono1_j2k_lossy.dcm"):
        verdict = check_applicability(open_image(shared_data / "dicom" / name))
        assert verdict.refusal == "" and verdict.warnings == ()


def test_lateral_view_and_non_chest_body_part_are_warned(shared_data):
    cspine = shared_data / "dicom" / "nonchest_cr_cspine_mono1_16x16_rescale.dcm"
    verdict = check_applicability(open_image(cspine))
    assert not verdict.refused
    assert verdict.warnings == (
        "Lateral view (LL): the models were trained on frontal films.",
        "Body part CSPINE: the models were trained on chest films.",
    )


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
