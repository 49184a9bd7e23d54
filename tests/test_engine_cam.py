"""CAM: closed form equals Grad-CAM (ours and pytorch-grad-cam's) and maps back onto source pixels."""

import cv2
import numpy as np
import pytest
import torch
from engine_helpers import make_bundle, make_prediction
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn

from xrayviewer.engine.bundle import load_model
from xrayviewer.engine.cam import (
    FAINTEST,
    HeadParams,
    blend,
    cam_to_image,
    compose_overlay,
    drawn_faint,
    explained_finding,
    head_cams,
    heat_strength,
    linear_cams,
    overlay_rgba,
)
from xrayviewer.engine.models import ChestNet
from xrayviewer.engine.predictor import Predictor
from xrayviewer.engine.preprocess import PreprocessRecipe, geometry_for, preprocess, to_model_input
from xrayviewer.imaging import open_image


@pytest.fixture(scope="module")
def real_inputs(kermany_rows, shared_data):
    """Four real films (3 Kermany test, 1 NIH): the opened images and their model inputs."""
    paths = [r["path"] for r in kermany_rows if r["split"] == "test"][:3]
    paths.append(str(sorted((shared_data / "nih" / "images").glob("*.png"))[0]))
    images = [open_image(p) for p in paths]
    return images, [preprocess(image, PreprocessRecipe())[0] for image in images]


def _normalised_upsampled(cam: np.ndarray, size: int) -> np.ndarray:
    """What pytorch-grad-cam does to its maps: min-max scale, then cv2.resize to the input size."""
    cam = cam - cam.min()
    return cv2.resize((cam / (1e-7 + cam.max())).astype(np.float32), (size, size))


def _reference_gradcam(model: ChestNet, x: torch.Tensor, k: int) -> np.ndarray:
    for module in model.modules():
        if isinstance(module, nn.ReLU):
            module.inplace = False
    with GradCAM(model=model, target_layers=[model.relu]) as gradcam:
        return gradcam(input_tensor=x, targets=[ClassifierOutputTarget(k)] * len(x))


@pytest.mark.parametrize("backend", ["torch", "auto"])  # auto: the bundle's ONNX graph in ONNX Runtime
@pytest.mark.parametrize("head", ["linear", "mlp"])
def test_our_cams_match_pytorch_grad_cam_on_real_films(tmp_path, real_inputs, head, backend):
    images, inputs = real_inputs
    bundle = make_bundle(tmp_path / head, inputs, head=head)
    predictor = Predictor(bundle, device="cpu", backend=backend)
    predictor.load()
    assert predictor.backend == ("torch" if backend == "torch" else "onnxruntime")
    predictions = [predictor.predict(image) for image in images]
    x = torch.from_numpy(np.stack(inputs))
    reference_model = load_model(bundle)
    for k, name in enumerate(bundle.card.classes[:2]):
        reference = _reference_gradcam(reference_model, x, k)
        for i, prediction in enumerate(predictions):
            ours = prediction.cams[name]
            assert ours.shape == (7, 7), name
            r = np.corrcoef(_normalised_upsampled(ours, 224).ravel(), reference[i].ravel())[0, 1]
            assert r >= 0.99, (head, name, i, r)


def _autograd_gradcam(classifier: nn.Module, maps: torch.Tensor, classes: int) -> np.ndarray:
    """Grad-CAM by back-propagation through pooling and head: the reference for the closed forms."""
    leaf = maps.detach().clone().float().requires_grad_(True)
    logits = classifier(torch.flatten(nn.functional.adaptive_avg_pool2d(leaf, 1), 1))
    out = []
    for k in range(classes):
        (grad,) = torch.autograd.grad(logits[:, k].sum(), leaf, retain_graph=True)
        out.append(torch.relu((grad.mean(dim=(2, 3), keepdim=True) * leaf).sum(dim=1)))
    return torch.stack(out, dim=1).detach().numpy()


@pytest.mark.parametrize("head", ["linear", "mlp"])
def test_closed_form_cams_equal_autograd_grad_cam(tmp_path, real_inputs, head):
    inputs = real_inputs[1][:2]
    model = load_model(make_bundle(tmp_path / head, inputs, head=head))
    with torch.inference_mode():
        _, maps = model.forward_with_maps(torch.from_numpy(np.stack(inputs)))
    state = {f"classifier.{k}": v.numpy() for k, v in model.classifier.state_dict().items()}
    closed = head_cams(maps.numpy(), HeadParams.from_state(state, head))
    autograd = _autograd_gradcam(model.classifier, maps, 3)
    h, w = maps.shape[-2:]
    scale = h * w if head == "linear" else 1  # the linear closed form leaves out the constant 1 / (h·w)
    np.testing.assert_allclose(autograd * scale, closed, rtol=1e-4, atol=1e-5 * np.abs(closed).max())


class _BrightnessNet(ChestNet):
    """A model whose CAM is the input's brightness pooled to ``cell`` × ``cell`` cells."""

    def __init__(self, cell: int) -> None:
        super().__init__(nn.AvgPool2d(cell) if cell > 1 else nn.Identity(), nn.Linear(1, 1))
        nn.init.ones_(self.classifier.weight)
        nn.init.zeros_(self.classifier.bias)


def _centroid(values: np.ndarray) -> np.ndarray:
    return (np.indices(values.shape) * values).reshape(2, -1).sum(1) / values.sum()


@pytest.mark.parametrize(
    ("geometry", "crop"), [("squash", 1), ("center_crop", 1), ("pad", 1), ("squash", 0.8)]
)
@pytest.mark.parametrize("cell", [1, 8])
def test_cam_of_a_blob_maps_back_onto_the_blob(geometry, crop, cell):
    """Full-resolution CAM: centroid on the blob within a pixel; coarse CAM: peak within one cell."""
    rows, cols = 300, 420  # a wide film: every geometry moves and scales it differently
    film = np.zeros((rows, cols), np.float32)
    film[150:170, 250:266] = 1.0  # the blob, centre (159.5, 257.5)
    tensor, geo = to_model_input(film, PreprocessRecipe(size=64, geometry=geometry, crop=crop))
    model = _BrightnessNet(cell).eval()
    with torch.inference_mode():
        _, maps = model.forward_with_maps(torch.from_numpy(tensor[None]) + 1024.0)
    cam = linear_cams(maps.numpy(), model.classifier.weight.detach().numpy())[0, 0]
    assert cam.shape == (64 // cell, 64 // cell)
    on_source = cam_to_image(cam, geo)
    assert on_source.shape == (rows, cols) and 0.9 < on_source.max() <= 1.0
    if cell == 1:
        assert np.allclose(_centroid(on_source), [159.5, 257.5], atol=0.75)
        assert film[np.unravel_index(np.argmax(on_source), on_source.shape)] == 1.0
    else:
        hot = np.argwhere(on_source >= on_source.max() - 1e-6).mean(0)
        cell_on_source = cell * max(geo.box[2:]) / geo.size
        assert np.linalg.norm(hot - [159.5, 257.5]) < cell_on_source


def test_crop_leaves_the_cut_sides_empty_and_overlay_is_clear_where_cold():
    geo = geometry_for((100, 160), PreprocessRecipe(size=32, geometry="center_crop"))
    on_source = cam_to_image(np.ones((4, 4), np.float32), geo)
    assert on_source[:, :30].max() == 0 and on_source[:, 130:].max() == 0 and on_source[:, 30:130].min() == 1
    rgba = overlay_rgba(on_source, alpha=0.5)
    assert rgba.shape == (100, 160, 4) and rgba.dtype == np.uint8
    assert rgba[:, :30, 3].max() == 0 and rgba[:, 30:130, 3].min() == 128
    rgb = blend(np.full((100, 160), 0.5, np.float32), rgba)
    assert rgb.shape == (100, 160, 3) and (rgb[:, :30] == 128).all() and not (rgb[:, 50:100] == 128).all()


@pytest.mark.parametrize(
    ("score", "threshold", "strength"),
    [
        (0.74, 0.43, 1.0),  # suggested: full strength
        (0.43, 0.43, 1.0),  # at the operating point
        (0.30, 0.60, 0.5),  # half the threshold: half as bright
        (0.02, 0.43, FAINTEST),  # a rejected finding never glows, but a map asked for stays visible
        (0.50, 0.0, 1.0),  # no operating point: nothing to fade against
    ],
)
def test_heat_strength_follows_the_score_below_the_threshold(score, threshold, strength):
    assert heat_strength(score, threshold) == pytest.approx(strength)
    faded = overlay_rgba(np.array([[0.0, 1.0]], np.float32) * heat_strength(score, threshold))
    assert faded[0, 1, 3] == pytest.approx(255 * 0.5 * strength, abs=1)  # the hottest pixel's opacity


def test_default_heat_map_is_the_highest_positive_finding_across_models():
    a = make_prediction("a", {"x": 0.9, "y": 0.1}, [])  # x is not positive at its threshold
    b = make_prediction("b", {"u": 0.6, "v": 0.4}, ["u", "v"])
    c = make_prediction("c", {"w": 0.7}, ["w"])
    assert explained_finding([a, b, c]) == ("c", "w")
    none_positive = [a, make_prediction("b", {"u": 0.6}, [])]
    assert explained_finding(none_positive) == ("a", "x")  # none positive: the first one's top
    assert explained_finding([]) is None


def test_a_negative_class_is_never_the_explained_finding():
    types = make_prediction("types", {"normal": 0.8, "bacterial": 0.15, "viral": 0.05}, ["normal"],
                            negative=("normal",))
    assert explained_finding([types]) == ("types", "bacterial")  # alone: its top finding, not "normal"
    other = make_prediction("other", {"z": 0.3}, [])
    assert explained_finding([other, types]) == ("other", "z")  # "normal" is no positive finding either


def test_compose_overlay_draws_a_finding_below_its_threshold_faint():
    cams = {"x": np.ones((4, 4), np.float32), "y": np.ones((4, 4), np.float32)}
    p = make_prediction("m", {"x": 0.3, "y": 0.7}, thresholds={"x": 0.6, "y": 0.6}, cams=cams)
    assert drawn_faint(p, "x") and not drawn_faint(p, "y")
    assert not drawn_faint(None, "x") and not drawn_faint(p, "unknown")
    faint, full = compose_overlay(p, "x"), compose_overlay(p, "y")
    assert faint.shape == full.shape == (16, 16, 4) and faint.dtype == np.uint8
    assert full[..., 3].max() == 255 and faint[..., 3].max() == pytest.approx(255 * 0.5, abs=1)
    expected = overlay_rgba(cam_to_image(cams["x"], p.geometry) * 0.5, alpha=0.5)
    assert np.array_equal(compose_overlay(p, "x", alpha=0.5), expected)
    with pytest.raises(KeyError):
        compose_overlay(make_prediction("m", {"x": 0.3}, []), "x")  # no CAM computed
