"""`xrayviewer predict` and `xrayviewer models` on real shared films, with bad files mixed in."""

import json
from pathlib import Path

import cv2
import pytest
import torch
from engine_helpers import make_bundle
from imaging_dicoms import film_dicom

from xrayviewer.cli.main import main
from xrayviewer.engine import paths
from xrayviewer.engine.applicability import NO_GATE
from xrayviewer.engine.preprocess import PreprocessRecipe, preprocess
from xrayviewer.imaging import open_image

KEYS = ["file", "model", "version", "scores", "thresholds", "positive", "top", "cam", "ms", "error",
        "warnings", "gate"]


pytestmark = pytest.mark.usefixtures("no_models_installed")


@pytest.fixture(scope="module")
def films(kermany_rows, shared_data):
    """Two Kermany test films and one NIH film."""
    found = [Path(r["path"]) for r in kermany_rows if r["split"] == "test"][:2]
    return [*found, sorted((shared_data / "nih" / "images").glob("*.png"))[0]]


@pytest.fixture(scope="module")
def bundle(films, tmp_path_factory):
    recipe = PreprocessRecipe(size=96)  # small: these tests exercise the command, not the model
    inputs = [preprocess(open_image(p), recipe)[0] for p in films]
    folder = tmp_path_factory.mktemp("cli-models") / "cli-tiny"
    return make_bundle(folder, inputs, recipe=recipe, arch="tiny-densenet")


def _json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_json_lines_contract_with_bad_files_mixed_in(bundle, films, tmp_path, capsys):
    broken = tmp_path / "broken.dcm"
    broken.write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00\x10\x00UI\x04\x00")
    text = tmp_path / "notes.png"
    text.write_text("not a picture")
    inputs = [films[0], broken, films[2], text, tmp_path / "missing.jpg"]
    cams = tmp_path / "cams"
    options = ["--model", str(bundle.path), "--json", "--cam-dir", str(cams), "--device", "cpu"]
    status = main(["predict", *map(str, inputs), *options])
    assert status == 2
    records = _json_lines(capsys.readouterr().out)
    assert [r["file"] for r in records] == [str(p) for p in inputs]
    for record in records:
        assert list(record) == KEYS
        assert record["model"] == "cli-tiny" and record["version"] == bundle.card.version
        assert record["thresholds"] == bundle.card.thresholds
    good = [records[0], records[2]]
    for record, film in zip(good, [films[0], films[2]], strict=True):
        assert record["error"] is None and record["ms"] > 0
        assert set(record["scores"]) == set(bundle.card.classes)
        assert record["top"] == max(record["scores"], key=record["scores"].get)
        assert record["positive"] == [c for c in bundle.card.classes if record["scores"][c] >= 0.5]
        overlay = cv2.imread(record["cam"])
        assert overlay.shape[:2] == cv2.imread(str(film)).shape[:2]
        assert record["gate"]["ok"] is True and record["gate"]["reason"] is None
        assert record["warnings"] == [NO_GATE]  # nothing installed here: nothing checked the film
    for record in (records[1], records[3], records[4]):
        assert record["error"] and "\n" not in record["error"]
        assert record["scores"] == {} and record["positive"] == []
        assert record["top"] is None and record["cam"] is None and record["ms"] is None
        assert record["gate"]["ok"] is False and record["gate"]["reason"] == record["error"]


def test_non_radiographs_are_refused_and_lateral_views_warned(bundle, films, shared_data, tmp_path, capsys):
    dicoms = shared_data / "dicom"
    lateral_film = film_dicom(films[0], tmp_path / "lateral.dcm", ViewPosition="LL")
    inputs = [dicoms / "nonchest_ct_signed_rescale_j2k_lossless.dcm", films[0], lateral_film,
              dicoms / "nonchest_cr_cspine_mono1_16x16_rescale.dcm"]
    status = main(["predict", *map(str, inputs), "--model", str(bundle.path), "--json", "--device", "cpu"])
    assert status == 2
    ct, film, lateral, cspine = _json_lines(capsys.readouterr().out)
    assert ct["error"] == "Not a chest radiograph (modality CT): no findings computed."
    assert ct["scores"] == {} and ct["top"] is None and ct["ms"] is None
    assert ct["gate"] == {"ok": False, "reason": ct["error"], "kind": None, "chest_score": None,
                          "population": None, "population_from": None}
    assert film["error"] is None and film["warnings"] == [NO_GATE] and film["scores"]
    assert lateral["error"] is None and lateral["scores"]
    assert "Lateral view (LL): the models were trained on frontal films." in lateral["warnings"]
    assert cspine["error"] == "Not a chest radiograph (body part CSPINE): no findings computed."


def test_folders_are_searched_and_all_good_exits_zero(bundle, films, tmp_path, capsys):
    folder = tmp_path / "study" / "nested"
    folder.mkdir(parents=True)
    for film in films[:2]:
        (folder / film.name).write_bytes(film.read_bytes())
    status = main(["predict", str(tmp_path / "study"), "--model", str(bundle.path), "--json"])
    assert status == 0
    records = _json_lines(capsys.readouterr().out)
    assert sorted(Path(r["file"]).name for r in records) == sorted(f.name for f in films[:2])
    assert all(r["cam"] is None and r["error"] is None for r in records)


def test_human_table(bundle, films, capsys, monkeypatch):
    monkeypatch.setenv(paths.MODELS_DIR_ENV, str(bundle.path.parent))
    assert main(["predict", str(films[1])]) == 0  # found by name on the search path
    out = capsys.readouterr().out
    assert films[1].name in out and "cli-tiny" in out
    for name in bundle.card.classes:
        assert name in out


def test_no_model_installed_says_so(films, capsys):
    assert main(["predict", str(films[0])]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "no model bundle is installed" in captured.err
    assert main(["models"]) == 2
    assert "no model bundle is installed" in capsys.readouterr().err


def test_tampered_model_and_unknown_name_are_refused(bundle, films, tmp_path, capsys):
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("model.json", "weights.safetensors"):
        (copy / name).write_bytes((bundle.path / name).read_bytes())
    with open(copy / "weights.safetensors", "r+b") as fh:
        fh.seek(-4, 2)
        fh.write(b"\xff\xff\xff\xff")
    assert main(["predict", str(films[0]), "--model", str(copy)]) == 2
    assert "sha256" in capsys.readouterr().err
    assert main(["predict", str(films[0]), "--model", "nonexistent"]) == 2
    assert "no model bundle named" in capsys.readouterr().err


def test_models_lists_one_line_per_bundle(bundle, capsys):
    assert main(["models", "--models-dir", str(bundle.path.parent)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and lines[0].startswith("cli-tiny 0.0-test: multilabel")
    assert lines[0].endswith(f"[custom] {bundle.path}")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_unavailable_device_is_a_clear_error(bundle, films, capsys):
    assert main(["predict", str(films[0]), "--model", str(bundle.path), "--device", "cuda", "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "'cuda' was asked for but is not available" in captured.err


def test_models_rank_by_their_stated_test_auc():
    from types import SimpleNamespace

    from xrayviewer.engine.bundle import by_strength

    def bundle(name, metrics):
        return SimpleNamespace(name=name, card=SimpleNamespace(metrics=metrics))

    weak, strong = bundle("cardiomegaly", {"auroc": 0.72}), bundle("pneumonia", {"auroc": 0.98})
    middle = bundle("pneumonia-type", {"auroc": 0.95})
    ranked = by_strength([weak, strong, middle])  # alphabetical order would put the weak one first
    assert [b.name for b in ranked] == ["pneumonia", "pneumonia-type", "cardiomegaly"]
    assert [b.name for b in by_strength([bundle("a", {}), bundle("b", {})])] == ["a", "b"]  # none: as found


def test_cam_dir_draws_the_finding_the_viewer_shows_never_the_negative_class(films, tmp_path, capsys):
    from xrayviewer.engine.cam import blend, compose_overlay, explained_finding
    from xrayviewer.engine.predictor import Predictor
    from xrayviewer.imaging.lut import render

    recipe = PreprocessRecipe(size=96)
    inputs = [preprocess(open_image(p), recipe)[0] for p in films]
    types = make_bundle(tmp_path / "models" / "cli-types", inputs, recipe=recipe, arch="tiny-densenet",
                        classes=("normal", "bacterial", "viral"), task="multiclass",
                        logit_offsets={"normal": 6.0}, card_fields={"negative_classes": ["normal"]})
    cams = tmp_path / "cams"
    options = ["--model", str(types.path), "--json", "--cam-dir", str(cams), "--device", "cpu"]
    assert main(["predict", *map(str, films), *options]) == 0
    records = _json_lines(capsys.readouterr().out)
    predictor = Predictor(types, device="cpu")
    for record, film in zip(records, films, strict=True):
        assert record["top"] == "normal"  # normal scores highest: the old rule drew its map
        image = open_image(film)
        prediction = predictor.predict(image)
        _, finding = explained_finding([prediction])
        assert finding != "normal"
        written = cv2.cvtColor(cv2.imread(record["cam"]), cv2.COLOR_BGR2RGB).astype(int)

        drawn = {name: blend(render(image), compose_overlay(prediction, name, alpha=0.5)).astype(int)
                 for name in (finding, "normal")}
        assert abs(written - drawn[finding]).max() <= 1
        assert abs(written - drawn["normal"]).max() > 1
