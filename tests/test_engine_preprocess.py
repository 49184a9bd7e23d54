"""Preprocessing: recipe validation, geometry mapping, torchxrayvision scaling, equalisation."""

import cv2
import numpy as np
import pytest
import torchxrayvision as xrv

from xrayviewer.engine.preprocess import Geometry, PreprocessRecipe, geometry_for, preprocess, to_model_input
from xrayviewer.imaging import Window, XRayImage, open_image


def _wide_film(rows=300, cols=400):
    rng = np.random.default_rng(0)
    return rng.random((rows, cols)).astype(np.float32)


def test_scaling_equals_torchxrayvision_normalize():
    picture = _wide_film(224, 224)
    tensor, _ = to_model_input(picture, PreprocessRecipe(size=224))
    expected = xrv.utils.normalize(picture, 1.0)
    assert tensor.shape == (1, 224, 224) and tensor.dtype == np.float32
    np.testing.assert_allclose(tensor[0], expected, atol=1e-3)


@pytest.mark.parametrize(
    ("geometry", "crop", "box"),
    [
        ("squash", 1.0, (0, 0, 300, 400)),
        ("center_crop", 1.0, (0, 50, 300, 300)),
        ("pad", 1.0, (-50, 0, 400, 400)),
        ("center_crop", 0.8, (30, 80, 240, 240)),  # the central 80 % of the central square
        ("squash", 0.5, (75, 100, 150, 200)),
    ],
)
def test_geometry_boxes(geometry, crop, box):
    geo = geometry_for((300, 400), PreprocessRecipe(size=100, geometry=geometry, crop=crop))
    assert geo.box == box and geo.size == 100 and geo.source_shape == (300, 400)


@pytest.mark.parametrize(("geometry", "crop"), [("squash", 1.0), ("center_crop", 1.0), ("pad", 1.0),
                                                ("center_crop", 0.8)])
def test_a_bright_spot_lands_where_the_geometry_says(geometry, crop):
    """A small bright square in the source appears in the model input at from_source(its centre)."""
    film = np.zeros((300, 400), np.float32)
    film[200:220, 180:200] = 1.0  # centre (209.5, 189.5)
    tensor, geo = to_model_input(film, PreprocessRecipe(size=100, geometry=geometry, crop=crop))
    grid = tensor[0] + 1024.0
    cy, cx = (np.indices(grid.shape) * grid).reshape(2, -1).sum(1) / grid.sum()
    my, mx = geo.from_source(209.5, 189.5)
    assert abs(cy - my) < 0.3 and abs(cx - mx) < 0.3
    sy, sx = geo.to_source(my, mx)
    assert np.allclose([sy, sx], [209.5, 189.5])


def test_pad_fills_black_and_crop_drops_the_sides():
    film = np.ones((300, 400), np.float32)
    padded, _ = to_model_input(film, PreprocessRecipe(size=100, geometry="pad"))
    assert padded[0, 0, 50] == pytest.approx(-1024) and padded[0, 50, 50] == pytest.approx(1024)
    film[:, :50] = 0.0  # the strip center_crop removes
    cropped, _ = to_model_input(film, PreprocessRecipe(size=100, geometry="center_crop"))
    assert cropped.min() == pytest.approx(1024)
    film[:40, 50:90] = 0.0  # a corner marker of the central square; crop 0.8 cuts its outer 30 px
    assert to_model_input(film, PreprocessRecipe(size=100, geometry="center_crop"))[0].min() < 0
    marked, _ = to_model_input(film, PreprocessRecipe(size=100, geometry="center_crop", crop=0.8))
    assert marked[0, 10:, 10:].min() == pytest.approx(1024)  # only the marker's inner edge is left


@pytest.mark.parametrize("equalize", ["hist", "clahe"])
def test_equalisation_spreads_a_low_contrast_picture(equalize):
    dull = 0.4 + 0.1 * _wide_film()
    plain, _ = to_model_input(dull, PreprocessRecipe(size=64))
    spread, _ = to_model_input(dull, PreprocessRecipe(size=64, equalize=equalize))
    assert np.ptp(spread) > 2 * np.ptp(plain)


def test_recipe_round_trip_and_refusals():
    recipe = PreprocessRecipe(size=320, geometry="pad", equalize="clahe")
    assert PreprocessRecipe.from_dict(recipe.to_dict()) == recipe
    with pytest.raises(ValueError, match="geometry"):
        PreprocessRecipe(geometry="stretch")
    with pytest.raises(ValueError, match="unknown preprocessing keys"):
        PreprocessRecipe.from_dict({"size": 224, "zoom": 2})
    with pytest.raises(ValueError, match=r"crop 0\.3 is outside"):
        PreprocessRecipe(crop=0.3)
    with pytest.raises(ValueError, match="needs geometry squash or center_crop"):
        PreprocessRecipe(geometry="pad", crop=0.8)
    old_card = {k: v for k, v in PreprocessRecipe(size=128).to_dict().items() if k != "crop"}
    assert PreprocessRecipe.from_dict(old_card).crop == 1.0  # cards written before crop existed still load


def test_detail_gives_a_sharp_and_a_small_copy_of_one_film_the_same_input():
    rng = np.random.default_rng(1)
    film = cv2.GaussianBlur(rng.random((512, 512)).astype(np.float32), (0, 0), 2)
    film = (film - film.min()) / (film.max() - film.min())
    small = cv2.resize(film, (64, 64), interpolation=cv2.INTER_AREA)  # an NIH-style 64 px copy
    recipe = PreprocessRecipe(size=128, detail=48)
    sharp_input, _ = to_model_input(film, recipe)
    small_input, _ = to_model_input(small, recipe)
    plain = PreprocessRecipe(size=128)
    gap = np.abs(to_model_input(film, plain)[0] - to_model_input(small, plain)[0]).mean()
    assert np.abs(sharp_input - small_input).mean() < 0.25 * gap  # the resolution on disk no longer shows
    with pytest.raises(ValueError, match="detail 200 is outside"):
        PreprocessRecipe(size=128, detail=200)


def test_monochrome1_is_inverted_before_the_model():
    pixels = np.tile(np.linspace(0, 1000, 64, dtype=np.float32), (64, 1))
    window = Window(center=500, width=1001, source="header")
    mono2, _ = preprocess(
        XRayImage(pixels=pixels, photometric="MONOCHROME2", window=window), PreprocessRecipe(64)
    )
    mono1, _ = preprocess(
        XRayImage(pixels=pixels, photometric="MONOCHROME1", window=window, invert=True), PreprocessRecipe(64)
    )
    np.testing.assert_allclose(mono1, -mono2, atol=1.0)


def test_real_squashed_kermany_image(kermany_rows):
    row = next(r for r in kermany_rows if r["split"] == "test")
    tensor, geo = preprocess(open_image(row["path"]), PreprocessRecipe())
    assert geo == Geometry(source_shape=(224, 224), box=(0, 0, 224, 224), size=224)
    assert -1024 <= tensor.min() < tensor.max() <= 1024
    assert tensor.std() > 100  # a real film, not a flat picture
