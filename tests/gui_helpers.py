"""GUI test helpers: a tiny real model bundle, predictor factories, a main window with isolated settings."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
from engine_helpers import make_bundle
from PySide6.QtCore import QSettings

from xrayviewer.engine.predictor import Predictor
from xrayviewer.engine.preprocess import PreprocessRecipe
from xrayviewer.gui.main_window import MainWindow
from xrayviewer.gui.workers import installed_bundles, installed_gate, load_gate

CHEST_DICOM = "siim_cr_chest_pa_jpegbaseline.dcm"  # 1024×1024 MONOCHROME2
BIG_DICOM = "nema_rg1_cr_chest_mono1_j2k_lossy.dcm"  # 1955×1841 MONOCHROME1 15-bit
WAIT_MS = 30_000


def make_tiny_bundle(folder: Path, name: str = "tiny-test", **card):
    """A real-format bundle (tiny DenseNet, random weights, 64 px input) saved by the engine; ``card``:
    other ``make_bundle`` options (classes, task, seed...)."""
    rng = np.random.default_rng(0)
    inputs = [(rng.random((1, 64, 64), dtype=np.float32) * 2 - 1) * 1024 for _ in range(4)]
    return make_bundle(
        folder / name,
        inputs,
        arch="tiny-densenet",
        recipe=PreprocessRecipe(size=64),
        **card,
    )


def choose_finding(window: MainWindow, model: str, finding: str) -> None:
    """Pick (model, finding) in the heat-map combo as a user does."""
    combo = window.heat_map_controls.finding
    index = window.heat_map_controls.index_of(model, finding)
    assert index >= 0, f"{model}: {finding} is not offered"
    combo.setCurrentIndex(index)
    combo.activated.emit(index)


class RecordingPredictor:
    """The engine's Predictor, recording the shape of every image it scored; optionally slow."""

    def __init__(self, bundle, delay_s: float = 0.0) -> None:
        self.predictor = Predictor(bundle, device="cpu")
        self.card = self.predictor.card
        self.delay_s = delay_s
        self.scored: list[tuple[int, int]] = []
        self.started = threading.Event()

    def predict(self, image):
        self.started.set()
        time.sleep(self.delay_s)
        prediction = self.predictor.predict(image)
        self.scored.append(image.shape)
        return prediction


def make_window(qtbot, tmp_path: Path, factory, bundles=None, gate=None) -> MainWindow:
    """A shown main window with settings in an INI file under ``tmp_path``; ``bundles``: the installed
    bundles it sees (None: the real lookup, of the gate too); ``gate``: the installed gate bundle (None:
    none, unless the lookup is real)."""
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    lister = installed_bundles if bundles is None else lambda: list(bundles)
    real = bundles is None and gate is None
    gate_loader = installed_gate if real else lambda device: load_gate(gate, "cpu")
    window = MainWindow(settings, factory, lister, gate_loader)
    qtbot.addWidget(window)
    window.resize(1200, 800)
    window.show()
    return window


def open_all(qtbot, window: MainWindow, path) -> None:
    """Open ``path`` and wait until every model has answered and every section is on screen (Qt shows a
    widget added to a shown layout an event loop turn later: a click before that lands elsewhere)."""
    with qtbot.waitSignal(window.findingsComplete, timeout=WAIT_MS):
        window.open_paths([str(path)])
    qtbot.waitUntil(lambda: all(s.isVisible() for s in window.results.sections.values()), timeout=WAIT_MS)


def picture_pixels(window: MainWindow) -> np.ndarray:
    """The grey values currently shown on the image item, as a (rows, cols) uint8 array."""
    image = (
        window.view.image_item.pixmap()
        .toImage()
        .convertToFormat(window.view.image_item.pixmap().toImage().Format.Format_Grayscale8)
    )
    ptr = np.frombuffer(image.constBits(), dtype=np.uint8, count=image.sizeInBytes())
    return ptr.reshape(image.height(), image.bytesPerLine())[:, : image.width()].copy()
