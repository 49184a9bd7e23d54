"""LUT math: window functions against pydicom's apply_voi_lut, VOI LUT tables, render(), to_uint8()."""

from __future__ import annotations

import numpy as np
import pytest
from pydicom import Dataset
from pydicom.pixels.processing import apply_voi_lut

from xrayviewer.imaging import VoiLut, Window, XRayImage
from xrayviewer.imaging.lut import apply_voi_lut_table, apply_window, render, to_uint8

WINDOWS = [(2048.0, 4096.0), (1000.0, 1.0), (1000.5, 2.0), (300.0, 57.5), (3900.0, 800.0), (-10.0, 300.0)]


def _voi_dataset(center: float, width: float, function: str) -> Dataset:
    ds = Dataset()
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsStored, ds.PixelRepresentation = 12, 0
    ds.WindowCenter, ds.WindowWidth, ds.VOILUTFunction = center, width, function
    return ds


@pytest.mark.parametrize("function", ["LINEAR", "LINEAR_EXACT", "SIGMOID"])
@pytest.mark.parametrize(("center", "width"), WINDOWS)
def test_apply_window_equals_pydicom(function: str, center: float, width: float) -> None:
    values = np.concatenate([np.arange(4096), np.random.default_rng(1).uniform(0, 4095, 500)])
    ours = apply_window(values.astype(np.float32), Window(center, width, function=function))
    with np.errstate(over="ignore"):  # pydicom's sigmoid overflows exp() far from a narrow window
        reference = apply_voi_lut(values, _voi_dataset(center, width, function)) / 4095.0
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, reference, atol=2e-6)


def test_linear_window_edges_follow_the_standard() -> None:
    # PS3.3 C.11.2.1.2.1: x <= c - 0.5 - (w-1)/2 → 0; x > c - 0.5 + (w-1)/2 → 1
    out = apply_window(np.array([99.0, 99.5, 100.0, 109.5, 110.0], np.float32), Window(105.0, 11.0))
    np.testing.assert_allclose(out, [0.0, 0.0, 0.05, 1.0, 1.0], atol=1e-6)


def test_unknown_function_is_rejected() -> None:
    with pytest.raises(ValueError, match="GAMMA"):
        apply_window(np.zeros(3, np.float32), Window(0.0, 1.0, function="GAMMA"))


def test_voi_lut_table_clamps_below_and_above_the_mapped_range() -> None:
    lut = VoiLut(table=np.array([0, 100, 200, 255]), first_mapped=-2, bits=8)
    out = apply_voi_lut_table(np.array([-10.0, -2.0, -1.0, 0.0, 1.0, 50.0], np.float32), lut)
    np.testing.assert_allclose(out, np.array([0, 0, 100, 200, 255, 255]) / 255.0, atol=1e-7)


def _image(**kw) -> XRayImage:
    pixels = np.array([[0.0, 50.0], [100.0, 200.0]], np.float32)
    return XRayImage(pixels=pixels, photometric="MONOCHROME2", window=Window(100.5, 201.0), **kw)


def test_render_window_then_inversion_and_overrides() -> None:
    plain = render(_image())
    np.testing.assert_allclose(plain, [[0.0, 0.25], [0.5, 1.0]], atol=1e-6)
    np.testing.assert_allclose(render(_image(invert=True)), 1.0 - plain, atol=1e-6)
    np.testing.assert_allclose(render(_image(invert=True), invert=False), plain, atol=1e-6)
    np.testing.assert_allclose(render(_image(), window=Window(50.5, 1.0)), [[0, 0], [1, 1]])


def test_render_prefers_the_voi_lut_unless_a_window_is_given() -> None:
    lut = VoiLut(table=np.arange(256)[::-1], first_mapped=0, bits=8)
    image = _image(voi_lut=lut)
    np.testing.assert_allclose(render(image), 1.0 - image.pixels / 255.0, atol=1e-6)
    np.testing.assert_allclose(render(image, window=image.window), render(_image()), atol=1e-6)


def test_to_uint8_rounds_and_clips() -> None:
    out = to_uint8(np.array([-0.2, 0.0, 0.4999 / 255, 0.5, 254.6 / 255, 1.0, 1.7], np.float32))
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, [0, 0, 0, 128, 255, 255, 255])


@pytest.mark.parametrize("function", ["LINEAR", "LINEAR_EXACT", "SIGMOID"])
def test_windows_beyond_float32_give_finite_ramps(function: str) -> None:
    """The full range of ±3.4e38 values (width 6.8e38), or a centre of 1e39, overflow float32: never NaN."""
    top = float(np.finfo(np.float32).max)
    values = np.array([-top, -1e38, 0.0, 1e38, top], np.float32)
    full = apply_window(values, Window(0.5, 2 * top + 1.0, function=function))
    assert np.isfinite(full).all()
    assert full[0] < 0.15 and full[-1] > 0.85  # sigmoid: 0.12 and 0.88 at the window edges
    assert np.all(np.diff(full) > 0)
    far = apply_window(values, Window(1e39, 1e39, function=function))
    assert np.isfinite(far).all() and far.dtype == np.float32
