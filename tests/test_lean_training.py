"""The lean build has no torch: training's entries say plainly that they need the full build (the CLI's
``train`` / ``recalibrate`` and Model ▸ Train a model… / Recalibrate), with no traceback. Run with torch,
torchvision, torchxrayvision, SciPy and scikit-learn blocked, as the lean installer has none of them."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from xrayviewer.training import availability

ROOT = Path(__file__).resolve().parents[1]
BLOCK = textwrap.dedent("""
    import sys
    for name in ("torch", "torchvision", "torchxrayvision", "scipy", "sklearn"):
        sys.modules[name] = None  # any import of them raises ImportError
""")


def _run_blocked(body: str, tmp_path: Path) -> subprocess.CompletedProcess:
    script = tmp_path / "lean.py"
    script.write_text(BLOCK + textwrap.dedent(body))
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)


def test_training_is_available_here_and_not_without_torch(monkeypatch):
    assert availability.training_available() and availability.unavailable_reason() == ""
    monkeypatch.setitem(sys.modules, "torch", None)
    monkeypatch.setitem(sys.modules, "sklearn", None)
    assert availability.missing_training_packages() == ["torch", "scikit-learn"]
    assert not availability.training_available()
    assert "full XRayViewer build" in availability.unavailable_reason()
    assert "Missing: torch, scikit-learn" in availability.unavailable_reason()


@pytest.mark.parametrize("command", [
    ["train", "--config", "configs/kermany-pneumonia.toml", "--dry-run"],
    ["recalibrate", "--bundle", "pneumonia", "--data", "."],
])
def test_train_and_recalibrate_say_they_need_the_full_build(command, tmp_path):
    done = _run_blocked(f"""
        from xrayviewer.cli.main import main
        sys.exit(main({command!r}))
    """, tmp_path)
    assert done.returncode == 2, done.stderr
    said = f"xrayviewer {command[0]}: Training and recalibration need the full XRayViewer build"
    assert said in done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_the_menu_says_training_needs_the_full_build(tmp_path):
    done = _run_blocked("""
        from PySide6.QtCore import QSettings
        from PySide6.QtWidgets import QMessageBox
        shown = []
        QMessageBox.information = lambda parent, title, text: shown.append((title, text))

        def main():
            from xrayviewer.gui.app import create_application
            from xrayviewer.gui.main_window import MainWindow
            app = create_application()
            window = MainWindow(settings=QSettings("settings.ini", QSettings.Format.IniFormat))
            training = window.menus.training
            training.train_action.trigger()
            training.recalibrate_action.trigger()
            app.processEvents()
            print(training.wizard, len(shown), shown[0][0], "|", shown[0][1])
            window.close()

        if __name__ == "__main__":
            main()
    """, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    wizard, count, rest = done.stdout.split(" ", 2)
    assert wizard == "None" and count == "2"
    assert rest.startswith("Training needs the full build | Training and recalibration need the full")
