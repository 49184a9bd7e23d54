"""Whether the chest-film models apply to an image: refuse what is not a projection radiograph, warn on views
the models were not trained on, and warn per model when the film is outside its training population.

The verdict comes from header fields that ``XRayImage`` already carries (Modality and Body part in its
de-identified ``metadata``, ``view_position``, ``age_group``); PNG, JPEG and TIFF files have none and pass
unchecked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from xrayviewer.imaging.image import XRayImage

if TYPE_CHECKING:
    from xrayviewer.engine.bundle import ModelCard

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


_TRAINED_ON = {"child": "children's films", "adult": "adults' films"}
_PATIENT_IS = {"child": "a child", "adult": "an adult"}


def population_warnings(image: XRayImage, card: ModelCard) -> tuple[str, ...]:
    """Where the film lies outside the model's training population: a view not in ``card.views``, an age
    group other than ``card.age_group``. Unknown on either side (empty) gives no warning."""
    warnings = []
    view = (image.view_position or "").strip().upper()
    if view and card.views and view not in card.views:
        trained = " and ".join(filter(None, [", ".join(card.views[:-1]), card.views[-1]]))
        warnings.append(f"Trained on {trained} films; this film is {view}.")
    trained_age, patient_age = card.age_group, image.age_group
    if trained_age and patient_age and patient_age != trained_age:
        warnings.append(f"Trained on {_TRAINED_ON[trained_age]}; this patient is {_PATIENT_IS[patient_age]}.")
    return tuple(warnings)
