"""What of a DICOM header may be shown: a de-identified display subset, and identifying fields kept apart.

``display_metadata`` never returns patient name, ID, birth date, accession number, dates or institution;
it goes into ``XRayImage.metadata``. The GUI reveals identifying fields only on an explicit user request,
by calling ``read_identifying_fields(path)``, which re-reads the header: they never travel inside
``XRayImage``, so nothing that logs or prints an image can leak them (only a coarse "child"/"adult" group
derived from Patient's Age or the birth and study dates does, as ``XRayImage.age_group``, for the models'
applicability checks).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pydicom
from pydicom import Dataset

# (label, keyword) pairs shown in the metadata panel; none of them identifies the patient.
DISPLAY_TAGS = (
    ("Modality", "Modality"),
    ("Body part", "BodyPartExamined"),
    ("View", "ViewPosition"),
    ("Laterality", "ImageLaterality"),
    ("Study", "StudyDescription"),
    ("Series", "SeriesDescription"),
    ("Manufacturer", "Manufacturer"),
    ("Model", "ManufacturerModelName"),
    ("Photometric", "PhotometricInterpretation"),
    ("Rows", "Rows"),
    ("Columns", "Columns"),
    ("Bits stored", "BitsStored"),
    ("Frames", "NumberOfFrames"),
    ("Pixel spacing (mm)", "PixelSpacing"),
    ("Imager pixel spacing (mm)", "ImagerPixelSpacing"),
    ("kVp", "KVP"),
    ("Lossy compression", "LossyImageCompression"),
)

# Shown only when the user explicitly asks (e.g. "Show patient details").
IDENTIFYING_TAGS = (
    ("Patient name", "PatientName"),
    ("Patient ID", "PatientID"),
    ("Birth date", "PatientBirthDate"),
    ("Sex", "PatientSex"),
    ("Age", "PatientAge"),
    ("Accession number", "AccessionNumber"),
    ("Study date", "StudyDate"),
    ("Study time", "StudyTime"),
    ("Institution", "InstitutionName"),
    ("Referring physician", "ReferringPhysicianName"),
)


def _text(value: object) -> str:
    if isinstance(value, (list, tuple, pydicom.multival.MultiValue)):
        return " \\ ".join(str(v) for v in value)
    return str(value).strip()


def _positive(value: object) -> bool:
    try:
        return float(value) > 0  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def _as_values(value: object) -> list[object]:
    return list(value) if isinstance(value, (list, tuple, pydicom.multival.MultiValue)) else [value]


def _collect(ds: Dataset, tags: tuple[tuple[str, str], ...]) -> dict[str, str]:
    out = {}
    for label, keyword in tags:
        value = ds.get(keyword)
        text = "" if value is None else _text(value)
        if text:
            out[label] = text
    return out


def display_metadata(ds: Dataset) -> dict[str, str]:
    """The de-identified subset of the header for display (see module docstring)."""
    out = _collect(ds, DISPLAY_TAGS)
    for label, keyword in DISPLAY_TAGS:
        spacing = keyword.endswith("PixelSpacing") and label in out
        if spacing and not any(_positive(v) for v in _as_values(ds.get(keyword))):
            out[label] += " (not calibrated)"
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if syntax:
        out["Transfer syntax"] = syntax.name
    return out


def identifying_fields(ds: Dataset) -> dict[str, str]:
    """Patient-identifying header fields, for display on explicit user request only. Never log them."""
    return _collect(ds, IDENTIFYING_TAGS)


def read_identifying_fields(path: str | Path) -> dict[str, str]:
    """Re-read a DICOM header and return ``identifying_fields``; empty when it cannot be read as DICOM."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(path, force=True, stop_before_pixels=True)
        return identifying_fields(ds)
    except Exception:  # not DICOM (PNG, JPEG...) or unreadable: nothing to reveal
        return {}
