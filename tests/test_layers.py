"""The layers point one way (cli > gui > training > engine > imaging) and only gui/cli load Qt
(napari-style model / _qt split): checked statically by import-linter and at run time here."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_import_linter_contracts_hold():
    exe = Path(sys.executable).with_name("lint-imports")
    if not exe.exists():
        pytest.skip("import-linter not installed")
    result = subprocess.run([str(exe)], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "layers point down" in result.stdout and "KEPT" in result.stdout


def _modules_loaded_by(layers: tuple[str, ...]) -> list[str]:
    """Every module of ``layers`` imported in a fresh interpreter; returns what else got loaded."""
    modules = [
        p.relative_to(ROOT).with_suffix("").as_posix().replace("/", ".")
        for layer in layers
        for p in (ROOT / "xrayviewer" / layer).rglob("*.py")
    ]
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m.removesuffix('.__init__'))\n"
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'shiboken6') "
        "or m.startswith(('xrayviewer.gui', 'xrayviewer.cli', 'xrayviewer.training')))))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return [m for m in result.stdout.strip().split(",") if m]


def test_importing_every_inference_module_loads_no_qt_and_no_training():
    assert _modules_loaded_by(("imaging", "engine")) == []


def test_importing_every_training_module_loads_no_qt():
    loaded = _modules_loaded_by(("training",))
    assert loaded and all(m.startswith("xrayviewer.training") for m in loaded)
