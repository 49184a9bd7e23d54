"""How an X-ray becomes the model's input tensor: the single source of truth for training and inference.

Pipeline (each step recorded in the model card's ``preprocessing`` recipe):

1. ``imaging.lut.render(image)``: the displayed picture in [0, 1] (default window or VOI LUT, MONOCHROME1
   inverted), so a DICOM and a PNG that look the same feed the model the same values;
2. geometry: ``squash`` (whole film resized to a square), ``center_crop`` (central square, torchxrayvision's
   ``XRayCenterCrop``) or ``pad`` (film centred on a black square); ``crop`` < 1 then keeps only that
   central fraction of the box, cutting the film's borders and corner markers;
3. resize to ``size`` × ``size`` with ``cv2.INTER_AREA`` (with ``detail`` > 0: first down to ``detail`` ×
   ``detail``, then up, so that every film carries the same detail whatever its resolution on disk);
4. optional histogram equalisation (``hist``) or CLAHE (``clahe``) on the 8-bit picture;
5. torchxrayvision's scaling ``(2 x - 1) · 1024`` (``xrv.utils.normalize(x, 1)``), shape (1, S, S).

The :class:`Geometry` kept alongside maps model-grid coordinates (and so CAMs) back onto source pixels.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import cv2
import numpy as np

from xrayviewer.imaging.image import XRayImage
from xrayviewer.imaging.lut import render

GEOMETRIES = ("squash", "center_crop", "pad")
EQUALIZERS = ("none", "hist", "clahe")
NORMALISATIONS = ("xrv",)
XRV_SCALE = 1024.0  # torchxrayvision maps [0, 1] to [-1024, 1024]


@dataclass(frozen=True)
class PreprocessRecipe:
    """Every choice that turns displayed pixels into the model input; stored verbatim in the model card."""

    size: int = 224
    geometry: str = "squash"  # squash | center_crop | pad
    equalize: str = "none"  # none | hist | clahe
    normalisation: str = "xrv"  # torchxrayvision's [-1024, 1024]
    window: str = "default"  # the image's default display window / VOI LUT (imaging.lut.render)
    interpolation: str = "area"  # cv2.INTER_AREA
    clahe_clip: float = 2.0
    clahe_tiles: int = 8
    crop: float = 1.0  # central fraction of the geometry's box kept (0.5-1; squash and center_crop only)
    detail: int = 0  # > 0: the box passes through detail × detail pixels (a common resolution floor)

    def __post_init__(self) -> None:
        for name, value, allowed in (
            ("geometry", self.geometry, GEOMETRIES),
            ("equalize", self.equalize, EQUALIZERS),
            ("normalisation", self.normalisation, NORMALISATIONS),
            ("window", self.window, ("default",)),
            ("interpolation", self.interpolation, ("area",)),
        ):
            if value not in allowed:
                raise ValueError(f"preprocessing {name} {value!r} is not one of {', '.join(allowed)}")
        if not 16 <= int(self.size) <= 2048:
            raise ValueError(f"preprocessing size {self.size} is outside 16..2048")
        if not 0.5 <= float(self.crop) <= 1.0:
            raise ValueError(f"preprocessing crop {self.crop} is outside 0.5..1")
        if self.detail and not 16 <= int(self.detail) <= int(self.size):
            raise ValueError(f"preprocessing detail {self.detail} is outside 16..size ({self.size}); 0 = off")
        if self.crop < 1.0 and self.geometry == "pad":
            raise ValueError("preprocessing crop < 1 needs geometry squash or center_crop (pad adds borders)")

    def to_dict(self) -> dict:
        """Plain JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> PreprocessRecipe:
        """Inverse of :meth:`to_dict`; unknown keys are refused (a recipe we cannot honour is an error)."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown preprocessing keys: {', '.join(sorted(unknown))}")
        return cls(**data)


@dataclass(frozen=True)
class Geometry:
    """Where the model's ``size`` × ``size`` grid sits on the source image.

    ``box`` = (top, left, height, width) in source pixels; it may reach outside the image (``pad``).
    Output pixel (i, j) covers source rows ``top + [i, i+1) · height / size`` (pixel-centre convention).
    """

    source_shape: tuple[int, int]
    box: tuple[int, int, int, int]
    size: int

    def to_source(self, y: np.ndarray | float, x: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """Map model-grid coordinates (pixel centres at integers) to source-pixel coordinates."""
        top, left, height, width = self.box
        sy = top + (np.asarray(y, dtype=np.float64) + 0.5) * height / self.size - 0.5
        sx = left + (np.asarray(x, dtype=np.float64) + 0.5) * width / self.size - 0.5
        return sy, sx

    def from_source(self, y: np.ndarray | float, x: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """Inverse of :meth:`to_source`."""
        top, left, height, width = self.box
        my = (np.asarray(y, dtype=np.float64) + 0.5 - top) * self.size / height - 0.5
        mx = (np.asarray(x, dtype=np.float64) + 0.5 - left) * self.size / width - 0.5
        return my, mx


def geometry_for(shape: tuple[int, int], recipe: PreprocessRecipe) -> Geometry:
    """The crop/pad box the recipe takes from an image of ``shape`` (rows, cols)."""
    rows, cols = int(shape[0]), int(shape[1])
    if recipe.geometry == "squash":
        box = (0, 0, rows, cols)
    elif recipe.geometry == "center_crop":
        side = min(rows, cols)
        box = ((rows - side) // 2, (cols - side) // 2, side, side)
    else:  # pad
        side = max(rows, cols)
        box = (-((side - rows) // 2), -((side - cols) // 2), side, side)
    if recipe.crop < 1.0:
        top, left, height, width = box
        kept_h, kept_w = max(1, round(height * recipe.crop)), max(1, round(width * recipe.crop))
        box = (top + (height - kept_h) // 2, left + (width - kept_w) // 2, kept_h, kept_w)
    return Geometry(source_shape=(rows, cols), box=box, size=int(recipe.size))


def to_model_input(display: np.ndarray, recipe: PreprocessRecipe) -> tuple[np.ndarray, Geometry]:
    """Steps 2–5 on a displayed picture in [0, 1] (rows, cols): returns float32 (1, S, S) and its geometry."""
    if display.ndim != 2:
        raise ValueError(f"expected a 2-D grey picture, got shape {display.shape}")
    geometry = geometry_for(display.shape, recipe)
    top, left, height, width = geometry.box
    picture = np.clip(display.astype(np.float32, copy=False), 0.0, 1.0)
    if recipe.geometry == "pad":
        picture = cv2.copyMakeBorder(
            picture, -top, height - picture.shape[0] + top, -left, width - picture.shape[1] + left,
            cv2.BORDER_CONSTANT, value=0.0,
        )
    else:
        picture = picture[top : top + height, left : left + width]
    size = geometry.size
    if recipe.detail:
        detail = (recipe.detail, recipe.detail)
        picture = cv2.resize(cv2.resize(picture, detail, interpolation=cv2.INTER_AREA), (size, size),
                             interpolation=cv2.INTER_LINEAR)
    else:
        picture = cv2.resize(picture, (size, size), interpolation=cv2.INTER_AREA)
    if recipe.equalize != "none":
        grey = np.rint(picture * 255.0).astype(np.uint8)
        if recipe.equalize == "hist":
            grey = cv2.equalizeHist(grey)
        else:
            clahe = cv2.createCLAHE(clipLimit=recipe.clahe_clip, tileGridSize=(recipe.clahe_tiles,) * 2)
            grey = clahe.apply(grey)
        picture = grey.astype(np.float32) / 255.0
    tensor = (2.0 * picture - 1.0) * XRV_SCALE
    return tensor[None].astype(np.float32, copy=False), geometry


def preprocess(image: XRayImage, recipe: PreprocessRecipe) -> tuple[np.ndarray, Geometry]:
    """Model input for ``image``: float32 (1, S, S) in [-1024, 1024], and the geometry back to its pixels."""
    return to_model_input(render(image), recipe)
