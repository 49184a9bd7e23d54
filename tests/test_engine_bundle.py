"""Model bundles: round trip, integrity checks, search path, torchxrayvision's cached weights."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
import torchxrayvision as xrv
from engine_helpers import make_bundle

from xrayviewer.engine import bundle as bundle_mod
from xrayviewer.engine.bundle import (
    BundleError,
    ModelCard,
    find_bundles,
    load_bundle,
    load_model,
    round_to_storage,
    save_bundle,
    scan_bundles,
)
from xrayviewer.engine.preprocess import PreprocessRecipe

SMALL = PreprocessRecipe(size=64)
TINY = "tiny-densenet"  # the real format with a small network: these tests are about files, not models


def _inputs(n=2, size=64):
    rng = np.random.default_rng(3)
    return [(rng.random((1, size, size), dtype=np.float32) * 2 - 1) * 1024 for _ in range(n)]


@pytest.fixture
def isolated_search_path(tmp_path, monkeypatch):
    """No shipped, user or environment bundles: only what a test puts there."""
    monkeypatch.setattr(bundle_mod, "models_search_path", lambda extra=(): [tmp_path / "none", *extra])
    monkeypatch.setenv(bundle_mod.XRV_CACHE_ENV, str(tmp_path / "no-xrv-cache"))


def test_round_trip_gives_the_same_outputs(tmp_path):
    x = torch.from_numpy(np.stack(_inputs()))
    saved = make_bundle(tmp_path / "roundtrip", _inputs(), recipe=SMALL, arch=TINY, temperature=1.5)
    loaded = load_bundle(tmp_path / "roundtrip")
    assert loaded.card == saved.card
    assert len(saved.card.weights_sha256) == 64
    card_json = json.loads((tmp_path / "roundtrip" / "model.json").read_text())
    for key in (
        "name",
        "version",
        "task",
        "classes",
        "architecture",
        "input_size",
        "preprocessing",
        "output_activation",
        "thresholds",
        "threshold_method",
        "temperature",
        "metrics",
        "training_data",
        "training_config",
        "engine_version",
        "created",
        "weights_sha256",
    ):
        assert key in card_json
    again = make_bundle(tmp_path / "again", _inputs(), recipe=SMALL, arch=TINY)  # same seed, same statistics
    with torch.inference_mode():
        torch.testing.assert_close(load_model(loaded)(x), load_model(again)(x))


def test_float16_storage_halves_the_file_and_loads_the_rounded_weights(tmp_path):
    full = make_bundle(tmp_path / "full", _inputs(), recipe=SMALL)  # xrv-densenet121: 7M parameters
    model = load_model(full)
    variance = model.features.norm0.running_var
    assert variance.max() > 65504  # xrv-scaled inputs: beyond float16, so this buffer must stay float32
    half = save_bundle(tmp_path / "half", model, replace(full.card, weights_dtype="float16"))
    assert half.weights_path.stat().st_size < 0.55 * full.weights_path.stat().st_size
    assert load_bundle(half.path).card.weights_dtype == "float16"
    rounded = load_model(half)
    assert all(p.dtype == torch.float32 for p in rounded.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(model.parameters(), rounded.parameters(), strict=True))
    round_to_storage(model, "float16")  # what training evaluates before it saves
    for key, value in model.state_dict().items():
        assert torch.equal(value, rounded.state_dict()[key]), key
    assert torch.equal(rounded.features.norm0.running_var, variance)  # kept whole, not inf
    x = torch.from_numpy(np.stack(_inputs()))
    with torch.inference_mode():
        assert torch.isfinite(rounded(x)).all()
    with pytest.raises(BundleError, match="weights_dtype"):
        save_bundle(tmp_path / "bad", model, replace(full.card, weights_dtype="int8"))


def test_mlp_head_round_trip(tmp_path):
    saved = make_bundle(tmp_path / "mlp", _inputs(), head="mlp", recipe=SMALL, arch=TINY)
    model = load_model(load_bundle(saved.path))
    assert model.classifier[1].out_features == 512


def test_tampered_weights_are_refused(tmp_path):
    saved = make_bundle(tmp_path / "tampered", _inputs(), recipe=SMALL, arch=TINY)
    data = bytearray(saved.weights_path.read_bytes())
    data[-10] ^= 0xFF
    saved.weights_path.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="does not match the sha256"):
        load_model(load_bundle(saved.path))


def test_missing_weights_and_broken_cards_are_clear_errors(tmp_path):
    saved = make_bundle(tmp_path / "broken", _inputs(), recipe=SMALL, arch=TINY)
    saved.weights_path.unlink()
    with pytest.raises(BundleError, match="missing"):
        load_model(saved)
    (saved.path / "model.json").write_text("{ not json")
    with pytest.raises(BundleError, match="invalid model card"):
        load_bundle(saved.path)
    (saved.path / "model.json").write_text(json.dumps({"name": "x", "task": "binary"}))
    with pytest.raises(BundleError, match="invalid model card"):
        load_bundle(saved.path)
    with pytest.raises(BundleError, match=r"no model\.json"):
        load_bundle(tmp_path)


def test_card_validation():
    base = dict(
        name="m",
        version="1",
        classes=["Pneumonia"],
        architecture="xrv-densenet121",
        thresholds={"Pneumonia": 0.4},
        threshold_method="Youden",
    )
    assert ModelCard(task="binary", **base).output_activation == "sigmoid"
    with pytest.raises(ValueError, match="exactly one class"):
        ModelCard(**{**base, "task": "binary", "classes": ["a", "b"], "thresholds": {"a": 0.5, "b": 0.5}})
    with pytest.raises(ValueError, match="one value per class"):
        ModelCard(**{**base, "task": "multilabel", "thresholds": {}})
    with pytest.raises(ValueError, match="softmax"):
        ModelCard(**base, task="multiclass", output_activation="sigmoid")


def test_search_path_order_and_broken_cards(tmp_path, monkeypatch, isolated_search_path):
    folders = [tmp_path / "shipped", tmp_path / "user"]
    monkeypatch.setattr(bundle_mod, "models_search_path", lambda extra=(): [*folders, *extra])
    make_bundle(tmp_path / "shipped" / "alpha", _inputs(), recipe=SMALL, arch=TINY)
    make_bundle(tmp_path / "custom" / "alpha", _inputs(), recipe=SMALL, arch=TINY, seed=1)
    (tmp_path / "user" / "junk").mkdir(parents=True)
    (tmp_path / "user" / "junk" / "model.json").write_text("[]")
    bundles, problems = scan_bundles([tmp_path / "custom"])
    assert [b.name for b in bundles] == ["alpha"]
    assert bundles[0].path == tmp_path / "custom" / "alpha"  # later folders override
    assert len(problems) == 1 and "junk" in str(problems[0])
    assert load_bundle("alpha", [tmp_path / "custom"]).path == tmp_path / "custom" / "alpha"
    with pytest.raises(BundleError, match="no model bundle named"):
        load_bundle("beta")


def test_env_var_is_on_the_real_search_path(tmp_path, monkeypatch):
    monkeypatch.setenv("XRAYVIEWER_MODELS_DIR", str(tmp_path))
    monkeypatch.setenv(bundle_mod.XRV_CACHE_ENV, str(tmp_path / "no-xrv-cache"))
    make_bundle(tmp_path / "from-env", _inputs(), recipe=SMALL, arch=TINY)
    assert "from-env" in [b.name for b in find_bundles()]


def test_torchxrayvision_cache_is_offered_and_loaded_without_pickled_code(tmp_path, monkeypatch):
    cache = tmp_path / "xrv"
    cache.mkdir()
    monkeypatch.setenv(bundle_mod.XRV_CACHE_ENV, str(cache))
    assert bundle_mod.xrv_cached_bundle() is None
    with pytest.raises(BundleError, match=r"not on this computer \(looked in .*\); XRayViewer never"):
        load_bundle("xrv-densenet121-res224-all")
    torch.manual_seed(2)
    reference = xrv.models.DenseNet(weights=None, num_classes=18).eval()
    filename = xrv.models.model_urls["densenet121-res224-all"]["weights_url"].rsplit("/", 1)[-1]
    torch.save(reference, cache / filename)  # the cache holds a whole pickled model, as torchxrayvision does
    offered = bundle_mod.xrv_cached_bundle()
    assert offered is not None and len(offered.card.classes) == 18
    assert offered.card.preprocessing.geometry == "center_crop"
    assert offered.card.thresholds["Cardiomegaly"] == pytest.approx(
        xrv.models.model_urls["densenet121-res224-all"]["op_threshs"][10]
    )
    x = torch.randn(1, 1, 64, 64) * 300
    with torch.inference_mode():
        torch.testing.assert_close(load_model(offered)(x), reference(x))

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"x": Evil()}, cache / filename)
    with pytest.raises(BundleError, match="not loadable as plain weights"):
        load_model(offered)
