"""Predictor: scores, thresholds, calibration, batches, bad files, and PNG ≡ DICOM of any encoding."""

import shutil
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from engine_helpers import make_bundle
from imaging_dicoms import dataset, write
from pydicom.uid import JPEG2000Lossless, RLELossless

from xrayviewer.engine import onnx_backend
from xrayviewer.engine.bundle import read_bundle, write_card
from xrayviewer.engine.predictor import Predictor
from xrayviewer.engine.preprocess import PreprocessRecipe, preprocess
from xrayviewer.imaging import open_image


@pytest.fixture(scope="module")
def films(kermany_rows, shared_data):
    """Three real films: two Kermany test (224 px, squashed) and one NIH (512 px)."""
    paths = [Path(r["path"]) for r in kermany_rows if r["split"] == "test"][:2]
    paths.append(sorted((shared_data / "nih" / "images").glob("*.png"))[0])
    return paths


@pytest.fixture(scope="module")
def bundle(films, tmp_path_factory):
    inputs = [preprocess(open_image(p), PreprocessRecipe())[0] for p in films]
    return make_bundle(tmp_path_factory.mktemp("models") / "tiny", inputs)


def test_prediction_fields(bundle, films):
    predictor = Predictor(bundle, device="cpu")
    prediction = predictor.predict(open_image(films[0]))
    card = bundle.card
    assert prediction.model == card.name and prediction.version == card.version
    assert list(prediction.scores) == card.classes and prediction.thresholds == card.thresholds
    assert all(0.0 < s < 1.0 for s in prediction.scores.values())
    assert prediction.positive == [c for c in card.classes if prediction.scores[c] >= 0.5]
    assert prediction.top == max(prediction.scores, key=prediction.scores.get)
    assert {k: v.shape for k, v in prediction.cams.items()} == {c: (7, 7) for c in card.classes}
    assert prediction.geometry.source_shape == (224, 224) and prediction.device == "cpu"
    assert prediction.backend == "onnxruntime"  # the bundle's own graph (onnxruntime is a dependency)
    assert set(prediction.timings) == {"preprocess", "forward", "cam", "total"}
    assert predictor.predict(open_image(films[0]), with_cams=False).cams == {}


def test_batches_give_the_same_scores_as_single_images(bundle, films):
    predictor = Predictor(bundle, device="cpu", backend="torch")
    images = [open_image(p) for p in films]
    batched = predictor.predict_batch(images)
    for image, together in zip(images, batched, strict=True):
        alone = predictor.predict(image)
        for c in alone.classes:
            assert together.scores[c] == pytest.approx(alone.scores[c], abs=1e-4)
            np.testing.assert_allclose(together.cams[c], alone.cams[c], rtol=1e-3, atol=1e-3)
    assert len({round(p.scores["Pneumonia"], 4) for p in batched}) == 3  # films differ, so do scores


def test_temperature_divides_the_logits(films, tmp_path):
    inputs = [preprocess(open_image(p), PreprocessRecipe())[0] for p in films]
    plain = make_bundle(tmp_path / "plain", inputs, arch="tiny-densenet")
    warm = make_bundle(tmp_path / "warm", inputs, arch="tiny-densenet", temperature=2.0)
    plain, warm = (Predictor(b, device="cpu", backend="torch") for b in (plain, warm))
    plain, warm = (p.predict(open_image(films[2])) for p in (plain, warm))
    for c in plain.classes:
        logit = torch.logit(torch.tensor(plain.scores[c], dtype=torch.float64))
        assert warm.scores[c] == pytest.approx(torch.sigmoid(logit / 2).item(), abs=1e-5)


def test_multiclass_scores_are_a_softmax(films, tmp_path):
    inputs = [preprocess(open_image(p), PreprocessRecipe())[0] for p in films[:2]]
    bundle = make_bundle(tmp_path / "mc", inputs, classes=("normal", "bacteria", "virus"), task="multiclass",
                         arch="tiny-densenet")
    scores = Predictor(bundle, device="cpu", backend="torch").predict(open_image(films[0])).scores
    assert sum(scores.values()) == pytest.approx(1.0, abs=1e-5)


def test_the_bundles_onnx_graph_matches_torch_scores_cams_and_features(bundle, films):
    card = bundle.card
    assert card.onnx_file == "model.onnx" and len(card.onnx_probe) == len(card.classes)
    graph = bundle.path / card.onnx_file
    assert graph.stat().st_size < 0.05 * bundle.weights_path.stat().st_size  # the weights are not copied
    fast = Predictor(bundle, device="cpu")
    exact = Predictor(bundle, device="cpu", backend="torch")
    images = [open_image(p) for p in films]
    for a, b in zip(fast.predict_batch(images), exact.predict_batch(images), strict=True):
        assert (a.backend, b.backend) == ("onnxruntime", "torch")
        for c in a.classes:
            assert a.scores[c] == pytest.approx(b.scores[c], abs=1e-4)
            np.testing.assert_allclose(a.cams[c], b.cams[c], rtol=1e-3, atol=1e-3 * b.cams[c].max())
        np.testing.assert_allclose(a.features, b.features, rtol=1e-3, atol=1e-4)


def _copy(bundle, folder):
    shutil.copytree(bundle.path, folder)
    return read_bundle(folder)


def test_torch_runs_and_says_why_when_the_graph_cannot(bundle, films, tmp_path, monkeypatch):
    image = open_image(films[0])
    tampered = _copy(bundle, tmp_path / "tampered")
    (tampered.path / "model.onnx").write_bytes((tampered.path / "model.onnx").read_bytes() + b"\0")
    wrong_probe = _copy(bundle, tmp_path / "probe")
    shifted = [v + 1 for v in bundle.card.onnx_probe]
    write_card(wrong_probe.path, replace(wrong_probe.card, onnx_probe=shifted))
    none = _copy(bundle, tmp_path / "none")
    write_card(none.path, replace(none.card, onnx_file="", onnx_sha256="", onnx_probe=[]))
    for folder, note in ((tampered.path, "does not match its card's sha256"),
                         (wrong_probe.path, "does not give the logits its card recorded"),
                         (none.path, "the bundle carries no ONNX graph")):
        predictor = Predictor(read_bundle(folder), device="cpu")
        assert predictor.predict(image).backend == predictor.backend == "torch"
        assert note in predictor.backend_note
    monkeypatch.setattr(onnx_backend, "onnx_runtime_installed", lambda: False)
    predictor = Predictor(bundle, device="cpu")
    assert predictor.predict(image).backend == "torch"
    assert predictor.backend_note == "onnxruntime is not installed"


def test_inference_and_the_gate_run_without_torch(films):
    """The lean installer ships no torch: the shipped models and the gate must run on ONNX Runtime alone."""
    code = textwrap.dedent(f"""
        import sys
        for name in ("torch", "torchvision", "torchxrayvision"):
            sys.modules[name] = None  # any import of them raises ImportError
        from xrayviewer.engine.applicability import check_applicability
        from xrayviewer.engine.gate import Gate, find_gate
        from xrayviewer.engine.predictor import Predictor
        from xrayviewer.imaging import open_image
        film = open_image({str(films[0])!r})
        predictor = Predictor("pneumonia")
        prediction = predictor.predict(film)
        verdict = check_applicability(film, Gate(find_gate()))
        print(predictor.backend, prediction.cams["pneumonia"].shape, verdict.gate.ok, verdict.population)
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).parents[1])
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["onnxruntime", "(4,", "4)", "True", "child"]


def test_predict_many_reports_bad_files_and_goes_on(bundle, films, tmp_path):
    (tmp_path / "sub").mkdir()
    broken = tmp_path / "sub" / "broken.dcm"
    broken.write_bytes(b"DICM" + b"\0" * 50)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    paths = [films[0], broken, tmp_path / "missing.png", empty, films[1]]
    results = list(Predictor(bundle, device="cpu").predict_many(paths, batch_size=2))
    assert [r.path for r in results] == paths
    assert [r.error is None for r in results] == [True, False, False, False, True]
    assert all(r.prediction is not None for r in results if r.error is None)
    assert all("\n" not in r.error for r in results if r.error)


def _dicoms_showing(grey: np.ndarray, folder: Path) -> dict[str, Path]:
    """DICOMs in several encodings whose displayed picture equals the 8-bit picture ``grey``."""
    v = grey.astype(np.int64)
    # MONOCHROME1, rescale 0.5/-100, window centre 430.5 width 1021: display = 1 - (modality + 80) / 1020
    mono1 = dataset(((255 - v) * 8 + 40).astype(np.uint16), "MONOCHROME1", 16, RescaleSlope=0.5,
                    RescaleIntercept=-100, WindowCenter=430.5, WindowWidth=1021)
    # 12-bit MONOCHROME2, window 8..4088: display = (stored - 8) / 4080
    mono2 = dataset((v * 16 + 8).astype(np.uint16), "MONOCHROME2", 12, WindowCenter=2048.5, WindowWidth=4081)
    rle = dataset(((255 - v) * 8 + 40).astype(np.uint16), "MONOCHROME1", 16, RescaleSlope=0.5,
                  RescaleIntercept=-100, WindowCenter=430.5, WindowWidth=1021)
    j2k = dataset((v * 16 + 8).astype(np.uint16), "MONOCHROME2", 12, WindowCenter=2048.5, WindowWidth=4081)
    return {
        "mono1-rescale-window": write(mono1, folder / "mono1.dcm"),
        "mono2-12bit-window": write(mono2, folder / "mono2.dcm"),
        "mono1-rle": write(rle, folder / "rle.dcm", RLELossless),
        "mono2-12bit-j2k": write(j2k, folder / "j2k.dcm", JPEG2000Lossless),
    }


def test_png_and_dicoms_of_the_same_picture_score_the_same(bundle, films, tmp_path):
    predictor = Predictor(bundle, device="cpu")
    for film in films[1:]:  # one Kermany, one NIH
        grey = cv2.imread(str(film), cv2.IMREAD_GRAYSCALE)
        png = predictor.predict(open_image(film))
        reference_input = preprocess(open_image(film), bundle.card.preprocessing)[0]
        for label, path in _dicoms_showing(grey, tmp_path).items():
            image = open_image(path)
            model_input = preprocess(image, bundle.card.preprocessing)[0]
            np.testing.assert_allclose(model_input, reference_input, atol=2.0)
            dicom = predictor.predict(image)
            for c in png.classes:
                assert dicom.scores[c] == pytest.approx(png.scores[c], abs=0.01), (film.name, label, c)
        other = predictor.predict(open_image(films[0]))
        assert max(abs(other.scores[c] - png.scores[c]) for c in png.classes) > 0.01  # the check has teeth
