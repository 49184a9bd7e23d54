"""Value objects that travel from the imaging layer to the engine and the GUI."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

AGE_GROUPS = ("child", "adult")  # XRayImage.age_group values ("" = unknown); child: under 18 years
ADULT_AGE_YEARS = 18


@dataclass(frozen=True)
class Window:
    """A VOI window in modality units (DICOM PS3.3 C.11.2.1.2) and where it came from."""

    center: float
    width: float
    function: str = "LINEAR"  # LINEAR | LINEAR_EXACT | SIGMOID
    source: str = "auto"  # e.g. "header", "header #2", "voi-lut", "auto percentile", "full range", "preset"
    name: str = ""  # label shown in the UI, e.g. the DICOM Window Center & Width Explanation


@dataclass(frozen=True)
class VoiLut:
    """A VOI LUT from a VOI LUT Sequence item: output = table[clip(x - first_mapped, 0, len-1)]."""

    table: np.ndarray
    first_mapped: int
    bits: int
    explanation: str = ""


@dataclass
class XRayImage:
    """One 2-D grey image in modality units, with what is needed to display it correctly."""

    pixels: np.ndarray  # float32, shape (rows, cols), modality units (after Modality LUT / rescale)
    photometric: str  # the file's Photometric Interpretation ("MONOCHROME1", "MONOCHROME2", "RGB", ...)
    window: Window  # default window used for display and for the model's input
    invert: bool = False  # display inverted after VOI (MONOCHROME1 or Presentation LUT Shape INVERSE)
    presets: list[Window] = field(default_factory=list)  # other header windows (multi-valued W/C)
    voi_lut: VoiLut | None = None  # a VOI LUT Sequence, when present it is the default instead of window
    pixel_spacing: tuple[float, float] | None = None  # (row, col) mm
    view_position: str | None = None  # "PA", "AP", "LL", ...
    age_group: str = ""  # coarse, non-identifying: "child" | "adult" | "" (unknown); never the age itself
    metadata: dict[str, str] = field(default_factory=dict)  # de-identified display subset
    source: Path | None = None
    warnings: list[str] = field(default_factory=list)
    format: str = ""  # "DICOM", "PNG", "JPEG", "TIFF"
    colour_fraction: float = 0.0  # share of coloured pixels in a colour file (imaging.colour); 0 for grey

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols) of the pixel array."""
        return int(self.pixels.shape[0]), int(self.pixels.shape[1])
