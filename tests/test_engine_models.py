"""Architecture registry: shapes, 1-channel input, torchxrayvision-compatible parameter names."""

import pytest
import torch
import torchxrayvision as xrv

from xrayviewer.engine.models import ARCHITECTURES, HEADS, build_model


def test_registry_ids():
    assert {"xrv-densenet121", "tv-densenet201"} <= set(ARCHITECTURES)
    assert set(HEADS) == {"linear", "mlp"}


@pytest.mark.parametrize(("arch", "channels"), [("xrv-densenet121", 1024), ("tv-densenet201", 1920)])
def test_one_channel_in_logits_and_maps_out(arch, channels):
    model = build_model(arch, 3).eval()
    with torch.inference_mode():
        logits, maps = model.forward_with_maps(torch.zeros(1, 1, 64, 64))
    assert logits.shape == (1, 3)
    assert maps.shape == (1, channels, 2, 2) and maps.min() >= 0
    assert model.features(torch.zeros(1, 1, 64, 64)).shape == (1, channels, 2, 2)


def test_mlp_head_is_the_seed_004_head():
    head = build_model("xrv-densenet121", 2, head="mlp").classifier
    kinds = [type(m).__name__ for m in head]
    assert kinds == ["BatchNorm1d", "Linear", "ReLU", "Dropout", "Linear"]
    assert head[1].out_features == 512 and head[3].p == 0.5 and head[4].out_features == 2


def test_xrv_state_dict_loads_as_is_and_gives_the_same_logits():
    torch.manual_seed(1)
    reference = xrv.models.DenseNet(weights=None, num_classes=18, in_channels=1).eval()
    ours = build_model("xrv-densenet121", 18)
    ours.load_state_dict(reference.state_dict(), strict=True)
    ours.eval()
    x = torch.randn(1, 1, 64, 64) * 400
    with torch.inference_mode():
        torch.testing.assert_close(ours(x), reference(x))


def test_unknown_ids_are_refused():
    with pytest.raises(ValueError, match="unknown architecture"):
        build_model("resnet50", 2)
    with pytest.raises(ValueError, match="unknown head"):
        build_model("xrv-densenet121", 2, head="transformer")
