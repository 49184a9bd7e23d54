"""Crash handling: an unexpected exception in a slot, the worker thread or a Python thread writes a crash
report without patient data to the per-user log folder and shows a non-modal dialog; the viewer keeps
running. A fatal Qt message and a native crash leave a report too (in a child process)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest
from gui_helpers import WAIT_MS, make_window
from hostile_corpus import SECRETS
from imaging_dicoms import PHI, dataset, write
from PySide6.QtCore import Qt, qVersion
from PySide6.QtWidgets import QApplication

import xrayviewer
from xrayviewer.gui.crash import (
    CRASH_DIALOG,
    MAX_REPORTS_PER_RUN,
    CrashContext,
    CrashReporter,
    Redactor,
    crash_folder,
    format_traceback,
)
from xrayviewer.gui.workers import ModelUnavailableError, findings_failed

ROOT = Path(__file__).resolve().parents[1]
PATIENT_FOLDER = "Doe_Jane_19450317"  # patient data in folder and file names is common
ACCESSION = "ACC-99172"
THREAD_MESSAGE = f"thread failed reading /data/{PATIENT_FOLDER}/PID-48213.dcm"
SECRET_TEXTS = (*SECRETS, *PHI.values(), ACCESSION, PATIENT_FOLDER, "PID-48213.dcm", "Doe", "1945-03-17")

pytestmark = pytest.mark.qt_no_exception_capture  # the reporter, not pytest-qt, takes the exceptions here


def no_model(bundle, device):
    raise ModelUnavailableError("No model installed")


@pytest.fixture
def log_folder(tmp_path, monkeypatch) -> Path:
    """The per-user log folder, moved under tmp_path (platformdirs follows XDG_STATE_HOME on Linux)."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    folder = crash_folder()
    if sys.platform.startswith("linux"):
        assert folder == tmp_path / "state" / "xrayviewer" / "log"
    return folder


@pytest.fixture
def phi_dicom(tmp_path) -> Path:
    """A 256 × 256 DX DICOM with patient name, ID, birth date and accession number, in a folder and under
    a file name that carry them too."""
    folder = tmp_path / "PACS export" / PATIENT_FOLDER
    folder.mkdir(parents=True)
    pixels = np.rint(np.linspace(0, 4095, 256 * 256)).reshape(256, 256).astype(np.uint16)
    return write(dataset(pixels, bits_stored=12, AccessionNumber=ACCESSION), folder / "PID-48213.dcm")


def crash_dialog():
    for widget in QApplication.topLevelWidgets():
        if widget.objectName() == CRASH_DIALOG and widget.isVisible():
            return widget
    return None


def no_secrets(text: str) -> bool:
    return not any(secret.lower() in text.lower() for secret in SECRET_TEXTS)


def settle(qtbot, window, action) -> None:
    action()
    qtbot.waitUntil(window.settled, timeout=WAIT_MS)


@contextlib.contextmanager
def installed(window=None):
    """A CrashReporter installed (with the window's context), uninstalled and its dialog closed after."""
    reporter = CrashReporter(context=window.crash_context if window is not None else None).install()
    try:
        yield reporter
    finally:
        reporter.uninstall()
        dialog = crash_dialog()
        if dialog is not None:
            dialog.close()


@pytest.fixture
def window_and_reporter(qtbot, tmp_path, log_folder):
    window = make_window(qtbot, tmp_path, no_model, [])
    with installed(window) as reporter:
        yield window, reporter


def test_an_exception_in_a_slot_shows_a_dialog_writes_a_clean_report_and_the_viewer_goes_on(
        qtbot, window_and_reporter, log_folder, phi_dicom, kermany_rows):
    window, reporter = window_and_reporter
    settle(qtbot, window, lambda: window.open_paths([str(phi_dicom)]))
    assert window.loaded.path == phi_dicom

    def broken_slot() -> None:
        raise RuntimeError(f"boom while resetting {phi_dicom} of Doe^Jane (PID-48213, born 1945-03-17)")

    window.levels_panel.reset_button.clicked.connect(broken_slot)
    with qtbot.waitSignal(reporter.reported, timeout=WAIT_MS) as reported:
        qtbot.mouseClick(window.levels_panel.reset_button, Qt.MouseButton.LeftButton)
    report = reported.args[0]
    assert report is not None and report.parent == log_folder and report.name.startswith("crash-")
    qtbot.waitUntil(lambda: crash_dialog() is not None, timeout=WAIT_MS)
    dialog = crash_dialog()
    assert not dialog.isModal() and dialog.windowModality() == Qt.WindowModality.NonModal
    assert dialog.text() == ("XRayViewer hit an unexpected error; it keeps running. A crash report was "
                             f"written to {report}.")
    text = report.read_text(encoding="utf-8")
    assert "Traceback (most recent call last):" in text
    assert 'File "test_gui_crash.py", line' in text and "in broken_slot" in text
    assert "RuntimeError: boom while resetting [file " in text
    assert f"XRayViewer {xrayviewer.__version__}" in text and f"Qt {qVersion()}" in text
    assert "platform " in text and "where the UI thread" in text
    assert "films shown: [file " in text and ".dcm]" in text
    assert no_secrets(text), text
    for shown in (dialog.text(), dialog.informativeText(), dialog.detailedText()):
        assert no_secrets(shown), shown
    assert str(report) in dialog.text()  # the report's own path is in the user's folder: not patient data

    # the viewer keeps running: the window still works, and opens the next film
    window.levels_panel.reset_button.clicked.disconnect(broken_slot)
    dialog.close()
    film = Path(kermany_rows[0]["path"])
    settle(qtbot, window, lambda: window.open_paths([str(film)]))
    assert window.loaded.path == film and window.windowTitle() == f"{film.name} — XRayViewer"
    assert reporter.count == 1


def test_an_unexpected_error_on_the_worker_thread_answers_and_is_reported(qtbot, tmp_path, log_folder,
                                                                          phi_dicom):
    def broken_lister():
        raise ZeroDivisionError("bundle lookup broke on Doe^Jane")

    window = make_window(qtbot, tmp_path, no_model, [])
    window.background.worker._lister = broken_lister
    with installed(window) as reporter:
        with qtbot.waitSignal(reporter.reported, timeout=WAIT_MS) as reported:
            window.open_paths([str(phi_dicom)])
        qtbot.waitUntil(window.settled, timeout=WAIT_MS)  # the sidebar does not wait for findings forever
        assert window.results.status.text() == findings_failed(ZeroDivisionError())
        text = reported.args[0].read_text(encoding="utf-8")
        assert "where a worker thread" in text and "ZeroDivisionError: bundle lookup broke on …" in text
        assert no_secrets(text), text
        qtbot.waitUntil(lambda: crash_dialog() is not None, timeout=WAIT_MS)


def test_a_python_thread_s_exception_is_reported(qtbot, log_folder):
    with installed() as reporter:
        def work() -> None:  # (source lines are in reports: the message is built elsewhere)
            raise ValueError(THREAD_MESSAGE)

        with qtbot.waitSignal(reporter.reported, timeout=WAIT_MS) as reported:
            thread = threading.Thread(target=work, name="helper")
            thread.start()
            thread.join()
        text = reported.args[0].read_text(encoding="utf-8")
        assert "where a background thread" in text and "ValueError: thread failed reading [file " in text
        assert no_secrets(text), text
        qtbot.waitUntil(lambda: crash_dialog() is not None, timeout=WAIT_MS)


def test_reports_are_bounded_and_a_folder_that_cannot_be_written_is_said(qtbot, tmp_path):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the log folder should be")
    reporter = CrashReporter(folder=blocked / "log")
    with qtbot.waitSignal(reporter.reported, timeout=WAIT_MS) as reported:
        assert reporter.report(RuntimeError("x")) is None
    assert reported.args[0] is None
    qtbot.waitUntil(lambda: crash_dialog() is not None, timeout=WAIT_MS)
    assert "No crash report could be written" in crash_dialog().text()
    crash_dialog().close()

    reporter = CrashReporter(folder=tmp_path / "log")
    for _ in range(MAX_REPORTS_PER_RUN + 5):
        reporter.report(RuntimeError("again"))
    assert len(list((tmp_path / "log").glob("crash-*.log"))) == MAX_REPORTS_PER_RUN
    qtbot.waitUntil(lambda: crash_dialog() is not None, timeout=WAIT_MS)
    assert crash_dialog().text().startswith(f"XRayViewer hit {MAX_REPORTS_PER_RUN + 5} unexpected errors")
    crash_dialog().close()


def test_the_redactor_removes_paths_and_patient_values():
    known = Path("/srv/PACS export/Doe_Jane_19450317/PID-48213.dcm")
    context = CrashContext((known,), (*PHI.values(), ACCESSION))
    redactor = Redactor(context, b"k" * 16)
    message = redactor.message(
        f"cannot read {known}: header says 'Doe^Jane' / DOE_JANE born 1945-03-17 (ACC-99172); "
        "also /home/u/other patient/x.dcm and study/IM0001.dcm, W/L and/or 3/4 stay")
    assert no_secrets(message), message
    assert redactor.tag(str(known)) in message and "W/L and/or 3/4 stay" in message
    assert "other patient" not in message and "IM0001" not in message
    assert redactor.tag(str(known)) == redactor.tag(str(known))  # the same file twice: the same tag
    assert redactor.tag(str(known)) != Redactor(context, b"x" * 16).tag(str(known))  # a key per run
    assert redactor.frame_file(str(ROOT / "xrayviewer" / "gui" / "crash.py")) == "xrayviewer/gui/crash.py"
    assert redactor.frame_file("/elsewhere/Doe_Jane/plugin.py").startswith("[file ")

    try:
        try:
            raise KeyError("Doe^Jane")
        except KeyError as exc:
            raise OSError(f"could not open {known}") from exc
    except OSError as exc:
        text = format_traceback(exc, redactor)
    assert "The above exception was the direct cause of the following exception:" in text
    assert text.index("KeyError") < text.index("OSError") and no_secrets(text), text


def test_a_fatal_qt_message_and_a_native_crash_leave_reports(tmp_path):
    script = textwrap.dedent("""
        from PySide6.QtCore import qFatal
        from PySide6.QtWidgets import QApplication
        from xrayviewer.gui.crash import CrashReporter
        app = QApplication([])
        CrashReporter().install()
        qFatal("cannot go on")  # PySide6 passes Qt a fixed text: redacting messages is tested above
    """)
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state"), "QT_QPA_PLATFORM": "offscreen",
           "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode != 0  # qFatal aborts
    folder = tmp_path / "state" / "xrayviewer" / "log"
    reports = list(folder.glob("crash-*.log"))
    assert len(reports) == 1
    text = reports[0].read_text(encoding="utf-8")
    assert "where Qt" in text and "Qt fatal message: " in text and no_secrets(text), text
    native = [p for p in folder.glob("native-*.log") if p.stat().st_size]
    assert len(native) == 1 and "Fatal Python error: Aborted" in native[0].read_text(encoding="utf-8")
    assert no_secrets(native[0].read_text(encoding="utf-8"))
