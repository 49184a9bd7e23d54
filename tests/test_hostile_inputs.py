"""Never crash, never leak, never lie on bad input: a generated hostile corpus (``hostile_corpus``) through
``open_image`` and ``xrayviewer predict``, odd file-system objects, decoder panics across a process
boundary, and tampered model bundles."""

from __future__ import annotations

import json
import logging
import os
import pickle
import subprocess
import sys
import threading
import warnings
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pytest
import torch
from engine_helpers import make_bundle
from hostile_corpus import SECRETS, Case, base, build_corpus, dicom, ramp

from xrayviewer.cli.main import main
from xrayviewer.engine import bundle as bundle_mod
from xrayviewer.engine import paths
from xrayviewer.engine import predictor as predictor_mod
from xrayviewer.engine.bundle import BundleError, load_bundle, load_model, save_bundle, sha256_of
from xrayviewer.engine.predictor import Predictor
from xrayviewer.engine.preprocess import PreprocessRecipe, preprocess
from xrayviewer.imaging import ImageError, UnreadableImageError, open_image
from xrayviewer.imaging.lut import render

ROOT = Path(__file__).resolve().parents[1]
KEYS = ["file", "model", "version", "scores", "thresholds", "positive", "top", "cam", "ms", "error",
        "warnings", "gate"]

pytestmark = pytest.mark.usefixtures("no_models_installed")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> list[Case]:
    cases, sockets = build_corpus(tmp_path_factory.mktemp("hostile"))
    yield cases
    for server in sockets:
        server.close()


def _outcome(case: Case) -> tuple[type | None, str, list[str]]:
    """(error type or None, message, warnings) of ``open_image`` on the case; opened images are rendered
    and checked: 2-D finite float32 pixels, a finite picture in [0, 1]."""
    try:
        image = open_image(case.path)
    except ImageError as exc:
        return type(exc), str(exc), []
    assert image.pixels.ndim == 2 and image.pixels.dtype == np.float32, case.name
    assert np.isfinite(image.pixels).all(), case.name
    picture = render(image)
    assert np.isfinite(picture).all() and picture.min() >= 0 and picture.max() <= 1, case.name
    return None, "", list(image.warnings)


def _no_secrets(text: str) -> bool:
    return not any(secret in text for secret in SECRETS)


def test_the_corpus_is_large_and_covers_every_class(corpus):
    assert len(corpus) >= 300
    by_category = {c.category for c in corpus}
    assert by_category == {"pixel-module", "lut", "palette", "float", "syntax", "truncated", "bombs",
                           "header", "fs"}
    assert sum(c.error is None for c in corpus) >= 60  # odd but valid files must still open
    assert len({c.path for c in corpus}) == len(corpus)


def test_every_case_fails_exactly_as_it_should_and_quietly(corpus, capfd, caplog):
    """Exact error type, a message naming the problem (one line, no patient data, picklable), or an opened
    image whose warnings name what was repaired; nothing on stderr, no warning escapes, no PHI in logs."""
    wrong: list[str] = []
    with caplog.at_level(logging.DEBUG), warnings.catch_warnings(record=True) as escaped:
        warnings.simplefilter("always")
        for case in corpus:
            error, message, notes = _outcome(case)
            text = message if error is not None else " | ".join(notes)
            if error is not case.error or case.words not in text:
                wrong.append(f"{case.name}: wanted {getattr(case.error, '__name__', None)} {case.words!r}, "
                             f"got {getattr(error, '__name__', None)} {text!r}")
            if "\n" in message or not _no_secrets(message + text):
                wrong.append(f"{case.name}: message is not one clean line: {message!r}")
            if error is not None:
                copy = pickle.loads(pickle.dumps(error(message)))
                assert type(copy) is error and str(copy) == message
    assert not wrong, "\n".join(wrong)
    assert [str(w.message) for w in escaped] == []
    assert capfd.readouterr().err == ""  # libpng, libtiff, OpenCV, Rust panics: all captured
    assert _no_secrets(caplog.text)


def test_a_decoder_panic_is_an_unreadable_image_error_that_crosses_a_process_boundary(corpus):
    """The Rust RLE decoder panics (a BaseException that does not pickle): the viewer's decoder process must
    get an ImageError back, as it does for any other bad file."""
    panics = [c for c in corpus if c.name.startswith("syntax/rle-overlong-segment")]
    assert panics
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        for case in panics:
            with pytest.raises(UnreadableImageError, match="a segment decodes to more bytes than the frame"):
                pool.submit(open_image, str(case.path)).result(timeout=120)
        good = next(c for c in corpus if c.name == "pixel-module/good.dcm")
        assert pool.submit(open_image, str(good.path)).result(timeout=120).shape == (32, 48)


def test_a_fifo_never_blocks(corpus):
    fifo = next(c for c in corpus if c.name == "fs/fifo.dcm")
    done: list[str] = []

    def attempt() -> None:
        try:
            open_image(fifo.path)
        except ImageError as exc:
            done.append(str(exc))

    thread = threading.Thread(target=attempt, daemon=True)
    thread.start()
    thread.join(timeout=10)
    assert done == ["not a file: a named pipe (FIFO)"]


def test_folder_listings_skip_what_cannot_be_an_image(corpus):
    from xrayviewer.imaging.files import EmptyInput, find_images, find_inputs

    folder = corpus[0].path.parents[1]
    listed = set(find_images([folder], recursive=True))
    for case in corpus:
        assert (case.path in listed) == case.listed, case.name
    empty = folder / "fs" / "nothing-here"
    empty.mkdir()
    (empty / "notes.txt").write_text("not an image")
    found = find_inputs([empty, folder / "fs" / "folder.dcm", folder / "fs" / ("y" * 300 + ".dcm")],
                        recursive=True)
    assert isinstance(found[0], EmptyInput) and "folder holds no image files" in found[0].reason
    assert found[1] == folder / "fs" / "folder.dcm" / "inner" / "good.dcm"
    assert found[2] == folder / "fs" / ("y" * 300 + ".dcm")  # handed on: opening it says why


# ---------------------------------------------------------------- predict over the corpus


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory):
    recipe = PreprocessRecipe(size=64)
    folder = tmp_path_factory.mktemp("hostile-model")
    inputs = []
    for k in range(4):
        path = folder / f"film{k}.dcm"
        path.write_bytes(dicom(base(np.roll(ramp(96, 96), 500 * k).astype(np.uint16))))
        inputs.append(preprocess(open_image(path), recipe)[0])
    return make_bundle(folder / "hostile-tiny", inputs, recipe=recipe, arch="tiny-densenet",
                       classes=("pneumonia",), task="binary")


def _strict(line: str) -> dict:
    def no_constants(name: str):
        raise AssertionError(f"non-finite number {name} in a JSON line")

    assert line.isascii(), line
    return json.loads(line, parse_constant=no_constants)


def test_predict_gives_one_strict_row_per_input_and_survives_every_file(corpus, tiny_bundle, tmp_path,
                                                                        capfd):
    folder = corpus[0].path.parents[1]
    empty = tmp_path / "empty-folder"
    empty.mkdir()
    explicit = [c for c in corpus if not c.listed]
    args = [str(folder), *(str(c.path) for c in explicit), str(empty)]
    status = main(["predict", *args, "--json", "--gate", "none", "--model", str(tiny_bundle.path),
                   "--device", "cpu"])
    out, err = capfd.readouterr()  # file descriptors: what native code prints is seen too
    assert status == 2
    rows = [_strict(line) for line in out.splitlines()]
    listed = sorted(c.path for c in corpus if c.listed)
    expected = [*listed, *(c.path for c in explicit), empty]
    assert [Path(os.fsdecode(os.fsencode(r["file"]))) for r in rows] == expected
    by_path = {c.path: c for c in corpus}
    for row in rows:
        assert list(row) == KEYS
        case = by_path.get(Path(row["file"]))
        if case is not None and case.error is not None:
            words = "folder holds no image files" if os.path.isdir(case.path) else case.words  # walked
            assert row["error"] and words in row["error"], (case.name, row["error"])
        if row["error"] is None:
            assert row["scores"] and all(0.0 <= s <= 1.0 for s in row["scores"].values())
        else:
            assert "\n" not in row["error"] and row["scores"] == {}
    assert rows[-1]["error"].startswith("folder holds no image files")
    assert sum(r["error"] is None for r in rows) >= 3  # the readable films among them were scored
    assert "Traceback" not in err and _no_secrets(out + err)
    assert err == ""


def test_a_non_utf8_file_name_round_trips_under_a_strict_ascii_stdout(corpus, tiny_bundle, tmp_path):
    """The issue's crash: ``predict --json`` with a non-UTF-8 name and a strict stdout encoding."""
    names = [c for c in corpus if c.name.startswith("fs/non-utf8")]
    assert len(names) == 2
    env = {**os.environ, "PYTHONIOENCODING": "ascii:strict", "PYTHONPATH": str(ROOT), "LC_ALL": "C",
           "XDG_CACHE_HOME": str(tmp_path / "cache"), "XDG_DATA_HOME": str(tmp_path / "data"),
           paths.MODELS_DIR_ENV: str(tmp_path / "none"), bundle_mod.XRV_CACHE_ENV: str(tmp_path / "no-xrv")}
    command = [sys.executable, "-m", "xrayviewer", "predict", *(str(c.path) for c in names), "--json",
               "--gate", "none", "--model", str(tiny_bundle.path), "--device", "cpu"]
    done = subprocess.run(command, capture_output=True, env=env, timeout=300)
    assert done.returncode == 2, done.stderr.decode(errors="replace")[-2000:]
    rows = [_strict(line) for line in done.stdout.decode("ascii").splitlines()]
    assert [os.fsencode(r["file"]) for r in rows] == [os.fsencode(c.path) for c in names]
    assert rows[0]["error"] is None or rows[0]["error"].startswith("Not a chest radiograph")
    assert "truncat" in rows[1]["error"]
    assert b"Traceback" not in done.stderr


def test_a_memory_error_or_a_nan_score_costs_one_row_not_the_batch(tiny_bundle, tmp_path, monkeypatch):
    films = []
    for k in range(3):
        path = tmp_path / f"film-{k}.dcm"
        path.write_bytes(dicom(base(np.roll(ramp(96, 96), 700 * k).astype(np.uint16))))
        films.append(path)
    predictor = Predictor(tiny_bundle, device="cpu", backend="torch")
    real = predictor_mod.preprocess

    def picky(image, recipe):
        if image.source == films[1]:
            raise MemoryError
        return real(image, recipe)

    monkeypatch.setattr(predictor_mod, "preprocess", picky)
    results = list(predictor.predict_many(films, batch_size=2))
    assert [r.error is None for r in results] == [True, False, True]
    assert results[1].error == "not enough memory for scoring this image (96 × 96 pixels)"
    monkeypatch.setattr(predictor_mod, "preprocess", real)
    run = predictor._run

    def nan_scores(batch, with_cams):
        scores, cams, pooled, ms = run(batch, with_cams)
        return np.full_like(scores, np.nan), cams, pooled, ms

    monkeypatch.setattr(predictor, "_run", nan_scores)
    results = list(predictor.predict_many(films[:1]))
    assert results[0].prediction is None
    assert results[0].error.startswith("the model gave a non-finite score (NaN or infinity)")


# ---------------------------------------------------------------- model bundles


def _card(bundle_dir: Path) -> dict:
    return json.loads((bundle_dir / "model.json").read_text())


@pytest.mark.parametrize(("field", "value", "words"), [
    ("weights_file", "../other/weights.safetensors", "weights_file must be a file name inside the bundle"),
    ("weights_file", "/etc/passwd", "weights_file must be a file name inside the bundle"),
    ("weights_file", "sub/weights.safetensors", "weights_file must be a file name inside the bundle"),
    ("weights_file", "", "weights_file must be a file name inside the bundle"),
    ("classes", {"pneumonia": 1}, "classes must be a list"),
    ("classes", [1], "classes must be a list of non-empty strings"),
    ("classes", "pneumonia", "classes must be a list"),
    ("thresholds", {"pneumonia": "0.5"}, "thresholds must map each class name to a number"),
    ("thresholds", {"pneumonia": 1.5}, "thresholds must lie in [0, 1]"),
    ("thresholds", {"pneumonia": -0.1}, "thresholds must lie in [0, 1]"),
    ("thresholds", {"pneumonia": float("nan")}, "thresholds must be finite numbers"),
    ("thresholds", {"pneumonia": True}, "thresholds must map each class name to a number"),
    ("thresholds", [["pneumonia", 0.5]], "thresholds must map each class name to a number"),
    ("temperature", "1.0", "temperature must be a number or null"),
    ("temperature", float("inf"), "temperature must be a finite positive number"),
    ("name", 7, "name must be a string"),
    ("architecture_args", [], "architecture_args must be an object"),
])
def test_card_fields_are_type_checked(tiny_bundle, tmp_path, field, value, words):
    folder = tmp_path / "bad"
    folder.mkdir()
    card = _card(tiny_bundle.path) | {field: value}
    (folder / "model.json").write_text(json.dumps(card))
    with pytest.raises(BundleError, match="invalid model card") as caught:
        load_bundle(folder)
    assert words in str(caught.value)


def test_weights_reached_through_a_link_out_of_the_bundle_are_refused(tiny_bundle, tmp_path):
    folder = tmp_path / "linked"
    folder.mkdir()
    (folder / "model.json").write_bytes((tiny_bundle.path / "model.json").read_bytes())
    (folder / "weights.safetensors").symlink_to(tiny_bundle.weights_path)
    with pytest.raises(BundleError, match="lies outside the bundle folder"):
        load_model(load_bundle(folder))


@pytest.mark.parametrize(("poison", "words"), [
    ("nan", "weights hold non-finite values (NaN or infinity) in"),
    ("huge", "the model's output on a probe image is not finite"),
])
def test_weights_that_cannot_give_finite_scores_are_refused_at_load(tiny_bundle, tmp_path, poison, words):
    model = load_model(tiny_bundle)
    with torch.no_grad():
        if poison == "nan":
            next(model.parameters()).view(-1)[0] = float("nan")
        else:  # finite weights whose output overflows float32
            model.classifier.weight.fill_(3e38)
            model.classifier.bias.fill_(3e38)
    saved = save_bundle(tmp_path / poison, model, tiny_bundle.card)
    assert saved.card.weights_sha256 == sha256_of(saved.weights_path)  # the digest matches: still refused
    with pytest.raises(BundleError, match=words.replace("(", r"\(").replace(")", r"\)")):
        load_model(load_bundle(saved.path))



def test_a_heat_map_for_a_non_utf8_file_name_is_written(corpus, tiny_bundle, tmp_path, capsys):
    """cv2.imwrite segfaults on such a name: predict --cam-dir writes the PNG itself."""
    raw = os.fsencode(tmp_path) + b"/film-\xff\xfe.dcm"
    with open(raw, "wb") as fh:
        fh.write(dicom(base(np.roll(ramp(96, 96), 300).astype(np.uint16))))
    cams = tmp_path / "cams"
    status = main(["predict", os.fsdecode(raw), "--json", "--gate", "none", "--model", str(tiny_bundle.path),
                   "--device", "cpu", "--cam-dir", str(cams)])
    (row,) = [_strict(line) for line in capsys.readouterr().out.splitlines()]
    assert status == 0 and row["error"] is None
    assert os.fsencode(row["cam"]) == os.fsencode(cams) + b"/film-\xff\xfe_cam.png"
    assert open_image(row["cam"]).shape == (96, 96)


def test_a_folder_that_cannot_be_listed_gets_its_own_reason(tmp_path, monkeypatch):
    """Root reads every folder, so the OS's refusal is simulated where os.walk reports it."""
    from xrayviewer.imaging import files

    locked = tmp_path / "locked"
    locked.mkdir()

    def refusing_walk(top, onerror=None):
        onerror(PermissionError(13, "Permission denied", os.fspath(top)))
        return iter(())

    monkeypatch.setattr(files.os, "walk", refusing_walk)
    (found,) = files.find_inputs([locked], recursive=True)
    assert isinstance(found, files.EmptyInput)
    assert found.reason == "folder could not be listed: permission denied"
