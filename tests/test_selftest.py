"""``xrayviewer --selftest``: the check runner and table, each Qt-free check passing and failing, the
synthetic films it reads, and the command's exit status."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import JPEG2000Lossless, RLELossless

from xrayviewer.cli.main import main
from xrayviewer.engine import paths, selftest
from xrayviewer.engine.selftest import CheckFailed, CheckResult, format_table, run_checks

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "resources" / "selftest"


def _fails_plainly() -> str:
    raise CheckFailed("the reason")


def _breaks() -> str:
    raise KeyError("oops")


def test_a_failing_check_fails_alone_with_its_reason_and_no_traceback():
    checks = [("one", lambda: "fine"), ("two", _fails_plainly), ("three", _breaks), ("four", lambda: "run")]
    results = run_checks(checks)
    assert [r.ok for r in results] == [True, False, False, True]
    assert results[1].detail == "the reason"
    assert results[2].detail.startswith("KeyError: 'oops' (test_selftest.py:")
    assert all(r.ms >= 0 for r in results)


def test_the_table_says_pass_or_fail_per_check_and_counts_failures():
    lines = format_table([CheckResult("decoders", True, 1.0, "ok"),
                          CheckResult("model x", False, 2.5, "bad")]).splitlines()
    assert lines[0].split()[:3] == ["check", "result", "ms"]
    assert lines[1].split()[:3] == ["decoders", "PASS", "1"]
    assert lines[2].split()[:4] == ["model", "x", "FAIL", "2"]
    assert lines[-1].startswith("selftest FAILED: 1 of 2 checks passed")
    last = format_table([CheckResult("a", True, 0, "")]).splitlines()[-1]
    assert last.startswith("selftest passed: 1 of 1")


def test_every_check_passes_on_the_shipped_models_and_films(tmp_path, monkeypatch):
    monkeypatch.setattr(selftest, "user_folders", lambda: {"data": tmp_path / "data"})
    results = run_checks(selftest.engine_checks())
    assert all(r.ok for r in results), format_table(results)
    names = [r.name for r in results]
    shipped = sorted(p.parent.name for p in (ROOT / "models").glob("*/model.json"))
    assert sorted(n.removeprefix("model ") for n in names if n.startswith("model ")) == shipped
    reads = {"read JPEG 2000 DICOM", "read RLE DICOM", "read PNG"}
    assert {"decoders", "inference + heat map", *reads} <= set(names)
    inference = results[names.index("inference + heat map")].detail
    assert "heat map of" in inference and "gate:" in inference


def test_a_missing_decoder_fails_the_decoder_check(monkeypatch):
    # deflate has no pylibjpeg plugin: stands in for a build that lost pylibjpeg's entry points
    monkeypatch.setitem(selftest.DECODERS, "deflate", "DeflatedExplicitVRLittleEndianDecoder")
    with pytest.raises(CheckFailed, match="pylibjpeg decoder missing for deflate"):
        selftest.check_decoders()


def test_no_shipped_model_fails_the_models_check(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "shipped_models_dir", lambda: tmp_path / "models")
    results = run_checks(selftest.engine_checks())
    models = next(r for r in results if r.name == "models")
    assert not models.ok and "no findings model" in models.detail


def test_a_missing_film_fails_its_read_check(tmp_path):
    checks = dict(selftest.engine_checks(samples=tmp_path))
    result = run_checks([("read PNG", checks["read PNG"])])[0]
    assert not result.ok and "selftest.png" in result.detail


def test_user_folders_are_created_and_written(tmp_path):
    detail = selftest.check_user_folders({"models": tmp_path / "a" / "models", "logs": tmp_path / "logs"})
    assert (tmp_path / "a" / "models").is_dir() and not list((tmp_path / "logs").iterdir())
    assert "models" in detail and "logs" in detail


def test_an_unwritable_user_folder_fails(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")  # mkdir under a file fails, even for root
    with pytest.raises(CheckFailed, match=r"logs folder .* is not writable"):
        selftest.check_user_folders({"logs": blocker / "logs"})


def test_a_frozen_build_never_writes_inside_its_installation(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "frozen", lambda: True)
    monkeypatch.setattr(paths, "app_root", lambda: tmp_path)
    with pytest.raises(CheckFailed, match="inside the installation"):
        selftest.check_user_folders({"logs": tmp_path / "log"})
    assert selftest.check_user_folders({"logs": tmp_path.parent / f"{tmp_path.name}-elsewhere"})


def test_the_selftest_films_are_the_synthetic_phantom_and_no_patient():
    script = ROOT / "scripts" / "make_selftest_samples.py"
    spec = importlib.util.spec_from_file_location("make_samples", script)
    make_samples = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_samples)
    phantom = make_samples.phantom()
    for name, syntax in (("selftest-j2k.dcm", JPEG2000Lossless), ("selftest-rle.dcm", RLELossless)):
        ds = pydicom.dcmread(SAMPLES / name)
        assert ds.file_meta.TransferSyntaxUID == syntax
        assert str(ds.PatientName) == "SELFTEST^SYNTHETIC" and ds.PatientID == "SYNTHETIC"
        assert "PatientBirthDate" not in ds
        np.testing.assert_array_equal(ds.pixel_array, phantom)  # lossless: the script's very pixels


def test_selftest_flag_prints_the_table_and_exits_0(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(selftest, "user_folders", lambda: {"data": tmp_path / "data"})
    assert main(["--selftest", "--no-window"]) == 0
    out = capsys.readouterr().out
    assert "selftest (from source" in out and "selftest passed" in out and "training" in out


def test_selftest_exits_1_when_a_check_fails(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(selftest, "user_folders", lambda: {"logs": tmp_path / "file" / "logs"})
    (tmp_path / "file").write_text("")
    assert main(["selftest", "--no-window"]) == 1
    assert "selftest FAILED" in capsys.readouterr().out


def test_the_window_check_opens_a_synthetic_dicom_and_runs_the_models(qtbot):
    from xrayviewer.gui.selftest import check_window, platform_plugins

    detail = check_window(SAMPLES / "selftest-rle.dcm")
    assert "decoded in a spawned process" in detail and "models answered" in detail
    assert "offscreen" in platform_plugins()
