"""Render the README screenshots into docs/ (run under Xvfb for real X11 rendering):

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python scripts/screenshots.py

Shots: the viewer with a chest DICOM and the heat map (docs/screenshot-viewer.png), the window/level panel
(docs/screenshot-window-level.png), the findings sidebar as it opens on that film, an adult's: the pediatric
models folded (docs/screenshot-population.png), then with one of them unfolded (docs/screenshot-findings.png),
an adult's JPEG without a header, its population estimated from the pixels (docs/screenshot-adult-jpeg.png),
and a film the applicability check refuses, an extremity CR (docs/screenshot-gate-refused.png). Every
installed model bundle runs, as in the viewer; without one, a random-weight DenseNet-121 built by
benchmarks/ui_responsiveness.py stands in, and its name says so ("benchmark-random-densenet121"): its
scores and heat maps mean nothing. To shoot with a bundle that is not installed, point
XRAYVIEWER_MODELS_DIR at the folder holding it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
FILM = ROOT.parent / "shared" / "data" / "dicom" / "nema_rg1_cr_chest_mono1_j2k_lossy.dcm"  # an adult's PA
NOT_A_CHEST = ROOT.parent / "shared" / "data" / "dicom" / "nema_rg3_cr_extremity_mono1_j2k_lossless.dcm"
# a held-out NIH film without a header (JPEG), labelled Pneumonia only: the first such test film in
# runs/tables/staged.csv, not picked by its score; the population comes from the pixels
ADULT_JPEG = ROOT.parent / "shared" / "data" / "nih-extra" / "images" / "00001182_004.jpg"
SIZE = (1600, 1000)
SHOT_WIDTH = 1280  # README width; keeps each PNG well under 1 MB


def save(widget, name: str, width: int | None = None, height: int | None = None) -> Path:
    """Grab ``widget`` (its top ``height`` pixels if given) as docs/<name>, scaled down to ``width``."""
    from PySide6.QtCore import QRect, Qt

    image = widget.grab(QRect(0, 0, widget.width(), height or widget.height())).toImage()
    if width and image.width() > width:
        image = image.scaledToWidth(width, Qt.TransformationMode.SmoothTransformation)
    path = DOCS / name
    image.save(str(path), "PNG", 9)
    print(f"{path.relative_to(ROOT)}: {image.width()}×{image.height()}, {path.stat().st_size // 1024} KiB")
    return path


def main() -> int:
    subprocess_env_check = "from xrayviewer.engine.bundle import find_bundles; print(len(find_bundles()))"
    installed = subprocess.run(
        [sys.executable, "-c", subprocess_env_check], capture_output=True, text=True, check=True
    ).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        if installed in ("", "0"):
            bench = ROOT / "benchmarks" / "ui_responsiveness.py"
            subprocess.run([sys.executable, str(bench), "--make-bundle", tmp], check=True)
            os.environ["XRAYVIEWER_MODELS_DIR"] = tmp
            print("no model bundle installed: screenshots use a random-weight stand-in (scores mean nothing)")
        from PySide6.QtCore import QEventLoop, QSettings, QTimer
        from PySide6.QtWidgets import QLabel

        from xrayviewer.gui.app import create_application
        from xrayviewer.gui.main_window import MainWindow

        app = create_application()
        settings = QSettings(str(Path(tmp) / "settings.ini"), QSettings.Format.IniFormat)
        window = MainWindow(settings)
        window.resize(*SIZE)
        window.show()

        def open_and_wait(path: Path) -> None:
            loop = QEventLoop()
            done = [window.findingsComplete, window.background.worker.predictionFailed]
            done[0].connect(loop.quit)  # every installed model has answered
            done[1].connect(loop.quit)  # no findings: refused, or no model
            QTimer.singleShot(180_000, loop.quit)
            window.open_paths([str(path)])
            loop.exec()
            for signal in done:
                signal.disconnect(loop.quit)
            for _ in range(10):
                app.processEvents()

        def findings_height() -> int:
            controls = window.heat_map_controls
            return controls.mapTo(window.findings_dock, controls.rect().bottomLeft()).y() + 8

        open_and_wait(FILM)
        DOCS.mkdir(exist_ok=True)
        save(window.findings_dock, "screenshot-population.png", height=findings_height())
        window.heat_map_controls.set_opacity(0.4)
        window.heat_map_controls.toggle.setChecked(True)
        for _ in range(10):
            app.processEvents()
        save(window, "screenshot-viewer.png", SHOT_WIDTH)
        if "pneumonia" in window.session.outside:  # the shipped pediatric model, unfolded as a user would
            window.set_section_expanded("pneumonia", True)
            for _ in range(10):
                app.processEvents()
        save(window.findings_dock, "screenshot-findings.png", height=findings_height())
        window.heat_map_controls.toggle.setChecked(False)
        names = [window.levels_panel.presets.itemText(i) for i in range(window.levels_panel.presets.count())]
        lung = next(i for i, name in enumerate(names) if name.startswith("Lung"))
        window.levels_panel.presets.setCurrentIndex(lung)
        window.levels_panel.presets.activated.emit(lung)
        for _ in range(10):
            app.processEvents()
        hint = window.levels_panel.findChild(QLabel, "hint")
        save(
            window.levels_dock,
            "screenshot-window-level.png",
            height=hint.mapTo(window.levels_dock, hint.rect().bottomLeft()).y() + 8,
        )
        save(window, "screenshot-viewer-lung-window.png", SHOT_WIDTH)
        open_and_wait(ADULT_JPEG)
        window.heat_map_controls.toggle.setChecked(True)
        for _ in range(10):
            app.processEvents()
        save(window, "screenshot-adult-jpeg.png", SHOT_WIDTH)
        window.heat_map_controls.toggle.setChecked(False)
        open_and_wait(NOT_A_CHEST)
        save(window, "screenshot-gate-refused.png", SHOT_WIDTH)
        window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
