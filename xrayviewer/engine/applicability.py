"""Whether the chest-film models may speak about an image, and whether it is within each model's population.

``check_applicability`` decides in three steps, the first refusal wins:

1. the DICOM header: modalities other than projection radiographs, and body parts other than the chest, are
   refused; lateral views are warned;
2. the pixels, by rule: images too small to read, blank (one grey level), strips, and colour pictures;
3. the pixels, learned: the gate bundle (``engine.gate``) refuses what does not look like a frontal chest film
   and estimates child or adult when the header gives no age.

``population_warnings`` then says per model card when the film is outside the model's training population
(view; age group from the header, else from the gate's estimate).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from xrayviewer.imaging.image import XRayImage

if TYPE_CHECKING:
    from xrayviewer.engine.bundle import ModelCard
    from xrayviewer.engine.gate import Gate, GateVerdict

# DICOM Modality values of projection radiographs: CR, DX, the retired DR, and RG (film/screen).
PROJECTION_MODALITIES = frozenset({"CR", "DX", "DR", "RG"})
LATERAL_VIEWS = frozenset({"LL", "RL", "LATERAL", "LAT"})
CHEST_BODY_PARTS = frozenset({"CHEST", "THORAX", "LUNG", "HEART"})
# pixels: the smallest staged films are 64 × 64 (NIH copies); a 64 px copy of a 4:3 film is 48 high
MIN_SIDE = 48
MAX_ASPECT = 3.0  # longer side / shorter side of a film
MAX_COLOUR_FRACTION = 0.05  # a film with a coloured arrow or label passes; a photograph does not
NO_GATE = "No applicability gate is installed: nothing checked that this is a chest film."
# Header values are quoted in a refusal only when they are one of the standard's defined terms (PS3.3
# C.7.3.1.1.1 modalities, PS3.16 Annex L body parts): anything else in those fields may be free text typed
# at the modality (a name, an ID) and is never echoed.


def _terms(text: str) -> frozenset[str]:
    return frozenset(text.split())


KNOWN_MODALITIES = _terms(
    "AR ASMT AU BDUS BI BMD CD CT DD DG DOC DX ECG EPS ES FID GM HC HD IO IOL IVOCT IVUS KER KO LEN LS MG "
    "MR M3D NM OAM OCT OP OPM OPT OPTBSV OPTENF OPV OSS OT PLAN PR PT PX REG RESP RF RG RTDOSE RTIMAGE "
    "RTPLAN RTRECORD RTSTRUCT RWV SEG SM SMR SR SRF STAIN TEXTUREMAP TG US VA XA XC CR DR")
KNOWN_BODY_PARTS = _terms(
    "ABDOMEN ABDOMENPELVIS ADRENAL AORTA ANKLE ARM AXILLA BACK BLADDER BRAIN BREAST BRONCHUS BUTTOCK "
    "CALCANEUS CALF CAROTID CEREBELLUM CERVIX CHEEK CHEST CHESTABDOMEN CHESTABDPELVIS CIRCLEOFWILLIS "
    "CLAVICLE COCCYX COLON CORNEA CORONARYARTERY CSPINE CTSPINE DUODENUM EAR ELBOW ESOPHAGUS EXTREMITY EYE "
    "EYELID FACE FEMUR FINGER FOOT FOREARM GALLBLADDER HAND HEAD HEADNECK HEART HIP HUMERUS ILEUM ILIUM "
    "IAC JAW JEJUNUM KIDNEY KNEE LARYNX LEG LIVER LSPINE LSSPINE LUNG MAXILLA MEDIASTINUM MOUTH NECK "
    "NECKCHEST NECKCHESTABDOMEN NECKCHESTABDPELV NOSE ORBIT OVARY PANCREAS PAROTID PATELLA PELVIS PENIS "
    "PHARYNX PROSTATE RECTUM RIB SACRUM SCALP SCAPULA SCLERA SCROTUM SHOULDER SKULL SPINE SPLEEN STERNUM "
    "STOMACH SUBMANDIBULAR TMJ TESTIS THIGH THORAX THUMB THYMUS THYROID TIBIA TOE TONGUE TRACHEA TSPINE "
    "TLSPINE ULNA URETER URETHRA UTERUS VAGINA VULVA WRIST ZYGOMA WHOLEBODY"
) | {"WHOLE BODY", "CERVICAL SPINE", "LUMBAR SPINE", "THORACIC SPINE"}
# View Position defined terms (PS3.3 C.8.11.5.1.1), and the spellings lateral films often carry
KNOWN_VIEWS = frozenset({"AP", "PA", "LL", "RL", "RLD", "LLD", "RLO", "LLO", "LAT", "LATERAL"})


def refusal(why: str) -> str:
    """The one line a refused image gets: "Not a chest radiograph (<why>): no findings computed."."""
    return f"Not a chest radiograph ({why}): no findings computed."


@dataclass(frozen=True)
class Applicability:
    """The verdict for one image: ``refusal`` (non-empty = compute no findings), warnings to show, and the
    age group used for the population warnings with where it came from ("header" or "pixels")."""

    refusal: str = ""
    warnings: tuple[str, ...] = ()
    population: str = ""  # "child" | "adult" | "" (unknown)
    population_source: str = ""  # "header" | "pixels" | ""
    gate: GateVerdict | None = None  # the learned gate's verdict, when it ran

    @property
    def refused(self) -> bool:
        """True when no findings may be computed for the image."""
        return bool(self.refusal)


def header_verdict(image: XRayImage) -> tuple[str, tuple[str, ...]]:
    """Refusal ("" = none) and warnings from the DICOM header fields the image carries."""
    modality = image.metadata.get("Modality", "").strip().upper()
    if modality and modality not in PROJECTION_MODALITIES:
        named = modality if modality in KNOWN_MODALITIES else "not a defined term"
        return refusal(f"modality {named}"), ()
    body_part = image.metadata.get("Body part", "").strip().upper()
    if body_part and body_part not in CHEST_BODY_PARTS:
        named = body_part if body_part in KNOWN_BODY_PARTS else "not a defined term"
        return refusal(f"body part {named}"), ()
    warnings = []
    if image.format == "DICOM" and not modality:
        warnings.append("The DICOM header gives no modality: check that this is a chest radiograph.")
    view = (image.view_position or "").strip().upper()
    if view in LATERAL_VIEWS:
        warnings.append(f"Lateral view ({view}): the models were trained on frontal films.")
    return "", tuple(warnings)


def pixel_rule_refusal(image: XRayImage) -> str:
    """Refusal ("" = none) for images no chest model can read, whatever a network would say."""
    rows, cols = image.shape
    if min(rows, cols) < MIN_SIDE:
        return refusal(f"{cols} × {rows} pixels: too small to read, at least {MIN_SIDE} a side")
    if max(rows, cols) > MAX_ASPECT * min(rows, cols):
        return refusal(f"{cols} × {rows} pixels: a strip, not a film")
    low, high = _finite_range(image.pixels)
    if low == high:
        return refusal("a blank image: every pixel has the same value")
    if image.colour_fraction > MAX_COLOUR_FRACTION:
        return refusal(f"a colour picture: {image.colour_fraction:.0%} of its pixels are coloured")
    return ""


def _finite_range(pixels: np.ndarray) -> tuple[float, float]:
    """Lowest and highest finite value (0, 0 when none); no copy of the pixels when all are finite, as
    ``open_image`` guarantees (a 67 MP film is 256 MB of float32)."""
    if np.isfinite(pixels).all():
        return float(pixels.min()), float(pixels.max())
    finite = pixels[np.isfinite(pixels)]
    return (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)


def check_applicability(image: XRayImage, gate: Gate | None = None) -> Applicability:
    """Header rules, pixel rules, then the learned gate (when one is given); the first refusal wins. The
    header's age group wins over the gate's estimate."""
    refused, warnings = header_verdict(image)
    if refused:
        return Applicability(refusal=refused, warnings=warnings)
    refused = pixel_rule_refusal(image)
    if refused:
        return Applicability(refusal=refused, warnings=warnings)
    header_age = ("header", image.age_group) if image.age_group else ("", "")
    if gate is None:
        return Applicability(warnings=warnings, population=header_age[1], population_source=header_age[0])
    verdict = gate.check(image)
    if not verdict.ok:
        return Applicability(refusal=verdict.reason, warnings=warnings, gate=verdict)
    source, population = header_age if image.age_group else ("pixels", verdict.population)
    return Applicability(warnings=warnings, population=population, population_source=source, gate=verdict)


_TRAINED_ON = {"child": "children's films", "adult": "adults' films"}
_PATIENT_IS = {"child": "a child", "adult": "an adult"}
_LOOKS_LIKE = {"child": "a child's film", "adult": "an adult's film"}


def population_warnings(image: XRayImage, card: ModelCard, verdict: Applicability | None = None,
                        ) -> tuple[str, ...]:
    """Where the film lies outside the model's training population: a view not in ``card.views``, an age
    group other than ``card.age_group`` (the header's, else the gate's estimate in ``verdict``), a film
    coarser than the detail the model reads. Unknown on either side (empty) gives no warning."""
    warnings = []
    side, reads = min(image.pixels.shape[:2]), card.preprocessing.detail or card.preprocessing.size
    if side < reads:  # enlarged to the model's input, it holds less detail than any training film did
        warnings.append(f"This film is {side} px on its short side; the model reads {reads} px, so its "
                        "findings rest on an enlarged, blurred copy.")
    view = (image.view_position or "").strip().upper()
    if view and card.views and view not in card.views:
        trained = " and ".join(filter(None, [", ".join(card.views[:-1]), card.views[-1]]))
        shown = view if view in KNOWN_VIEWS else "of a view that is not a defined term"
        warnings.append(f"Trained on {trained} films; this film is {shown}.")
    trained_age = card.age_group
    patient_age = image.age_group or (verdict.population if verdict is not None else "")
    if trained_age and patient_age and patient_age != trained_age:
        if image.age_group:
            trained, patient = _TRAINED_ON[trained_age], _PATIENT_IS[patient_age]
            warnings.append(f"Trained on {trained}; this patient is {patient}.")
        else:
            warnings.append(f"Looks like {_LOOKS_LIKE[patient_age]}; this model was trained on "
                            f"{_TRAINED_ON[trained_age]}.")
    return tuple(warnings)


def fitting(cards: Sequence[ModelCard], image: XRayImage, verdict: Applicability | None = None) -> int:
    """Index of the first card (callers pass them strongest first) whose population fits the film (or who
    states none); 0 when none fits: the strongest, whose population warnings then say so."""
    return next((i for i, card in enumerate(cards) if not outside_population(image, card, verdict)), 0)


def outside_population(image: XRayImage, card: ModelCard, verdict: Applicability | None = None) -> bool:
    """True when the film's age group (header, else the gate's estimate) is not the model's: the viewer
    then keeps that model's findings folded away unless the user asks for them."""
    patient_age = image.age_group or (verdict.population if verdict is not None else "")
    return bool(card.age_group and patient_age and patient_age != card.age_group)
