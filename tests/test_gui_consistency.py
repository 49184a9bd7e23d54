"""Title, tags, folder-strip selection, picture and findings always describe the same film: after a film
that fails to open, a uniform film, quick switching (one after the other without waiting, PgDn past a bad
file, a click back on the film shown while another is being opened)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from gui_helpers import CHEST_DICOM, WAIT_MS, make_tiny_bundle, make_window
from PySide6.QtCore import Qt

from xrayviewer.engine.predictor import Predictor

FORMATS = {".jpeg": "JPEG", ".png": "PNG", ".dcm": "DICOM"}


class SourcePredictor:
    """The engine's Predictor on a tiny bundle, remembering which file each prediction was made from."""

    def __init__(self, bundle, delay_s: float = 0.0) -> None:
        self.predictor = Predictor(bundle, device="cpu")
        self.card = self.predictor.card
        self.delay_s = delay_s
        self.source: dict[int, Path] = {}
        self._lock = threading.Lock()

    def predict(self, image):
        time.sleep(self.delay_s)
        prediction = self.predictor.predict(image)
        with self._lock:
            self.source[id(prediction)] = image.source
        return prediction


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory):
    return make_tiny_bundle(tmp_path_factory.mktemp("bundles"))


@pytest.fixture
def films(tmp_path, shared_data, kermany_rows) -> dict[str, Path]:
    """A study folder, sorted: a JPEG film, a broken file, a uniform (all black) PNG, a DICOM film."""
    import cv2

    folder = tmp_path / "study"
    folder.mkdir()
    a = folder / "a-film.jpeg"
    a.symlink_to(kermany_rows[0]["path"])
    broken = folder / "b-broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    black = folder / "c-black.png"
    assert cv2.imwrite(str(black), np.zeros((256, 256), np.uint8))
    dicom = folder / "d-film.dcm"
    dicom.symlink_to(shared_data / "dicom" / CHEST_DICOM)
    return {"a": a, "broken": broken, "black": black, "dicom": dicom}


@pytest.fixture
def predictor(tiny_bundle):
    return SourcePredictor(tiny_bundle, delay_s=0.2)  # slow enough for requests to overtake each other


@pytest.fixture
def window(qtbot, tmp_path, tiny_bundle, predictor):
    return make_window(qtbot, tmp_path, lambda bundle, device: predictor, [tiny_bundle])


def settle(qtbot, window, action=None) -> None:
    """Run ``action`` (if any) and wait until nothing is pending."""
    if action is not None:
        action()
    qtbot.waitUntil(window.settled, timeout=WAIT_MS)
    qtbot.wait(50)  # late answers to abandoned requests would land now: they must be dropped


def assert_consistent(window, predictor, expected: Path) -> None:
    """Everything on screen describes ``expected``."""
    loaded = window.loaded
    assert loaded is not None and loaded.path == expected
    assert window.windowTitle() == f"{expected.name} — XRayViewer"
    tags = window.metadata.values()
    rows, cols = loaded.image.shape
    assert tags["File"] == expected.name and tags["Size"] == f"{cols} × {rows} px"
    assert tags["Format"] == loaded.image.format == FORMATS[expected.suffix]
    picture = window.view.image_item.pixmap()
    assert (picture.height(), picture.width()) == (rows, cols)
    strip = window.thumbnails
    if strip.count():
        assert strip.currentItem() is not None
        assert Path(strip.currentItem().data(Qt.ItemDataRole.UserRole)) == expected
    for name, prediction in window.predictions.items():
        assert predictor.source[id(prediction)] == expected, name
    assert set(window.predictions) <= set(window.results.sections)


def test_a_then_a_bad_file_then_b(qtbot, window, predictor, films):
    settle(qtbot, window, lambda: window.open_paths([str(films["a"])]))
    assert_consistent(window, predictor, films["a"])
    assert window.predictions  # the film's findings are in
    with qtbot.waitSignal(window.errorShown, timeout=WAIT_MS) as error:
        window.open_paths([str(films["broken"])])
    settle(qtbot, window)
    assert error.args[0].startswith("b-broken.png: ")
    assert_consistent(window, predictor, films["a"])
    assert window.predictions
    settle(qtbot, window, lambda: window.open_paths([str(films["dicom"])]))
    assert_consistent(window, predictor, films["dicom"])
    assert window.predictions and window.metadata.values()["Modality"] == "CR"


def test_a_bad_file_and_b_quickly_while_a_is_still_being_read(qtbot, window, predictor, films):
    with qtbot.waitSignal(window.imageShown, timeout=WAIT_MS):
        window.open_paths([str(films["a"])])
    window.open_paths([str(films["broken"])])  # A's findings are still running
    window.open_paths([str(films["dicom"])])
    settle(qtbot, window)
    assert_consistent(window, predictor, films["dicom"])
    assert window.predictions
    # and quickly back: the bad file's answer comes while A is asked for; A wins
    window.open_paths([str(films["broken"])])
    window.open_paths([str(films["a"])])
    settle(qtbot, window)
    assert_consistent(window, predictor, films["a"])
    assert window.predictions


def test_a_uniform_film_is_shown_with_its_own_title_and_tags(qtbot, window, predictor, films):
    settle(qtbot, window, lambda: window.open_paths([str(films["dicom"])]))
    settle(qtbot, window, lambda: window.open_paths([str(films["black"])]))
    assert_consistent(window, predictor, films["black"])
    assert not window.predictions  # refused (blank): no findings, and none of the film before
    assert "Modality" not in window.metadata.values()
    assert window.levels_panel.isEnabled() and window.levels_panel.window().width > 0


def test_stepping_through_a_folder_past_a_bad_file(qtbot, window, predictor, films):
    settle(qtbot, window, lambda: window.open_paths([str(films["a"].parent)]))
    assert window.thumbnails.files() == [str(p) for p in sorted(films.values())]
    assert_consistent(window, predictor, films["a"])
    with qtbot.waitSignal(window.errorShown, timeout=WAIT_MS):
        qtbot.keyClick(window, Qt.Key.Key_PageDown)  # the broken file
    settle(qtbot, window)
    assert_consistent(window, predictor, films["a"])  # the strip shows the film on screen again
    broken = window.thumbnails.item(1)
    assert broken.toolTip().startswith("b-broken.png: ")  # and says why the other one is not
    settle(qtbot, window, lambda: qtbot.keyClick(window, Qt.Key.Key_PageDown))  # on from the broken one
    assert_consistent(window, predictor, films["black"])
    settle(qtbot, window, lambda: qtbot.keyClick(window, Qt.Key.Key_PageDown))
    assert_consistent(window, predictor, films["dicom"])
    for _ in range(3):  # quickly back to the first, past the broken one, without waiting
        qtbot.keyClick(window, Qt.Key.Key_PageUp)
    settle(qtbot, window)
    assert_consistent(window, predictor, films["a"])


def test_a_click_back_on_the_film_shown_abandons_the_one_being_opened(qtbot, window, predictor, films):
    settle(qtbot, window, lambda: window.open_paths([str(films["a"].parent)]))
    strip = window.thumbnails

    def click(row: int) -> None:
        qtbot.mouseClick(strip.viewport(), Qt.MouseButton.LeftButton,
                         pos=strip.visualItemRect(strip.item(row)).center())

    click(3)  # the DICOM: being opened...
    click(0)  # ...and the user is back on the film shown before it arrives
    settle(qtbot, window)
    assert_consistent(window, predictor, films["a"])
    assert window.predictions
    click(3)
    settle(qtbot, window)
    assert_consistent(window, predictor, films["dicom"])


def test_odd_paths_show_their_reason_and_keep_the_film(qtbot, window, predictor, films, tmp_path):
    """A path too long for the file system, a FIFO, a folder named like a file, a missing file."""
    fifo = tmp_path / "pipe.dcm"
    os.mkfifo(fifo)
    folder = tmp_path / "folder.dcm"
    folder.mkdir()
    odd = {
        tmp_path / "/".join(["d" * 200] * 25) / "x.dcm": "path too long",
        tmp_path / ("x" * 296 + ".dcm"): "path too long",
        fifo: "named pipe",
        tmp_path / "missing.dcm": "file not found",
        folder: "No image found in folder.dcm",
    }
    settle(qtbot, window, lambda: window.open_paths([str(films["a"])]))
    for path, reason in odd.items():
        with qtbot.waitSignal(window.errorShown, timeout=WAIT_MS) as error:
            window.open_paths([str(path)])
        settle(qtbot, window)
        assert reason in error.args[0], error.args[0]
        assert_consistent(window, predictor, films["a"])


def test_a_bad_file_while_a_model_turned_on_runs_still_gets_its_findings(qtbot, window, predictor, films):
    settle(qtbot, window, lambda: window.open_paths([str(films["a"])]))
    window.set_model_enabled("tiny-test", False)
    assert not window.predictions
    window.set_model_enabled("tiny-test", True)  # runs it again on the film shown (0.2 s)...
    with qtbot.waitSignal(window.errorShown, timeout=WAIT_MS):
        window.open_paths([str(films["broken"])])  # ...while the user opens a file that fails
    settle(qtbot, window)
    assert_consistent(window, predictor, films["a"])
    assert set(window.predictions) == {"tiny-test"}  # its findings came after all
