"""Whether the chest-film models apply to an image: refuse what is not a projection radiograph, warn on views
the models were not trained on.

The verdict comes from header fields that ``XRayImage`` already carries (Modality and Body part in its
de-identified ``metadata``, ``view_position``); PNG, JPEG and TIFF files have none and pass unchecked.
"""

from __future__ import annotations

from dataclasses import dataclass

from xrayviewer.imaging.image import XRayImage

# DICOM Modality values of projection radiographs: CR, DX, the retired DR, and RG (film/screen).
PROJECTION_MODALITIES = frozenset({"CR", "DX", "DR", "RG"})
LATERAL_VIEWS = frozenset({"LL", "RL", "LATERAL", "LAT"})
CHEST_BODY_PARTS = frozenset({"CHEST", "THORAX", "LUNG", "HEART"})


@dataclass(frozen=True)
class Applicability:
    """The verdict for one image: ``refusal`` (non-empty = compute no findings) and warnings to show."""

    refusal: str = ""
    warnings: tuple[str, ...] = ()

    @property
    def refused(self) -> bool:
        """True when no findings may be computed for the image."""
        return bool(self.refusal)


def check_applicability(image: XRayImage) -> Applicability:
    """Refuse DICOM modalities other than projection radiographs; warn on lateral views and non-chest
    body parts. Multi-frame files are already warned about by the imaging layer."""
    modality = image.metadata.get("Modality", "").strip().upper()
    if modality and modality not in PROJECTION_MODALITIES:
        return Applicability(refusal=f"Not a chest radiograph (modality {modality}): no findings computed.")
    warnings = []
    if image.format == "DICOM" and not modality:
        warnings.append("The DICOM header gives no modality: check that this is a chest radiograph.")
    view = (image.view_position or "").strip().upper()
    if view in LATERAL_VIEWS:
        warnings.append(f"Lateral view ({view}): the models were trained on frontal films.")
    body_part = image.metadata.get("Body part", "").strip().upper()
    if body_part and body_part not in CHEST_BODY_PARTS:
        warnings.append(f"Body part {body_part}: the models were trained on chest films.")
    return Applicability(warnings=tuple(warnings))
