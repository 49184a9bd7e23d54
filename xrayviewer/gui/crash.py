"""Crash handling: an unexpected exception anywhere in the viewer becomes a crash report without patient data
and a non-modal dialog; the viewer keeps running.

``CrashReporter.install()`` routes ``sys.excepthook`` (exceptions in Qt slots and event handlers, on the UI
thread or the worker's QThread), ``threading.excepthook`` (Python threads) and Qt's fatal messages
(``qFatal``: Qt aborts right after) to :meth:`CrashReporter.report`, and lets ``faulthandler`` write the
Python stacks of a native crash (a segfault in Qt, torch or ONNX Runtime). Reports go to the per-user log
folder (``platformdirs.user_log_path("xrayviewer")``, e.g. ``~/.local/state/xrayviewer/log`` on Linux).

**What a report holds**: the traceback (frames as paths relative to the Python path: ``xrayviewer/gui/
main_window.py``), the exception's type and its message with patient data removed, the version of
XRayViewer, Python, Qt and PySide6, the platform (OS, release, architecture: no host or user name), the
thread, and which films were open, as tags. **What it never holds**: patient name, ID, birth date, accession
number or any other identifying header value (the headers of the films open at the time are read and every
such value is removed, as are quoted values, the way ``imaging.guards.scrub`` treats library messages), and
file or folder names. Paths are written as ``[file 1a2b3c4d.dcm]``: a keyed hash (HMAC-SHA256 with a key
made afresh for each run) of the whole path, with the extension. Why a hash and not the base name: patient
names, IDs and birth dates are routinely in file *and* folder names ("DOE_JANE_19450317/IM0001.dcm",
"PID-48213.dcm"), and no rule can tell which part of a name identifies someone; why keyed: a plain hash of a
path can be confirmed by anyone who guesses the name, while a per-run key still lets one report say "the
same file" twice.
"""

from __future__ import annotations

import contextlib
import datetime
import faulthandler
import hashlib
import hmac
import os
import platform
import re
import secrets
import sys
import threading
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, TextIO

import platformdirs
import PySide6
from PySide6.QtCore import QObject, Qt, QtMsgType, Signal, Slot, qInstallMessageHandler, qVersion
from PySide6.QtWidgets import QApplication, QMainWindow, QMessageBox, QWidget

import xrayviewer
from xrayviewer.imaging.guards import scrub

CRASH_DIALOG = "crashDialog"  # object name of the dialog, for tests and style sheets
MAX_REPORTS_PER_RUN = 20  # an error repeated in a paint event must not fill the disk
KEEP_REPORTS = 50  # older crash-*.log files are deleted when a new one is written
_EXTENSION = re.compile(r"\.[A-Za-z0-9]{1,5}$")
_TOKEN = re.compile(r"""[^\s'"<>|,;()\[\]]+""")  # what a path in a message can be, up to a space or a quote
_ABSOLUTE = re.compile(r"(?:[A-Za-z]:[\\/]|\\\\|~?/)")  # POSIX, ~, Windows drive, UNC
_ALNUM_EDGE = "(?<![A-Za-z0-9]){}(?![A-Za-z0-9])"


def crash_folder() -> Path:
    """The per-user log folder crash reports go to (``platformdirs.user_log_path("xrayviewer")``)."""
    return platformdirs.user_log_path("xrayviewer", appauthor=False)


@dataclass(frozen=True)
class CrashContext:
    """What a report must not reveal: the files the viewer knows of, the identifying header values of the
    films open, and what to say about them (which film was shown, which was being opened)."""

    paths: tuple[Path, ...] = ()
    values: tuple[str, ...] = ()
    films: tuple[tuple[str, Path], ...] = ()  # (role, path): ("shown", ...), ("being opened", ...)


class Redactor:
    """Removes patient data from report text: known paths, any path-like token, quoted values and the
    identifying values given; file names become keyed-hash tags (see the module docstring)."""

    def __init__(self, context: CrashContext, key: bytes) -> None:
        self._key = key
        known: dict[str, str] = {}
        for path in context.paths:
            for text in {str(path), path.as_posix()}:
                known[text] = self.tag(text)
            if len(path.name) >= 3:
                known[path.name] = self.tag(str(path))
            if len(path.parent.name) >= 3:
                known[path.parent.name] = self.tag(str(path.parent), "folder")
        self._known = sorted(known.items(), key=lambda item: -len(item[0]))  # longest first
        words: set[str] = set()
        for value in context.values:
            value = str(value).strip()
            if len(value) >= 3:
                words.add(value)
            for part in re.split(r"[\^\s,=]+", value):  # person names: Family^Given^Middle
                if len(part) >= 2:
                    words.add(part)
            if re.fullmatch(r"\d{8}", value):  # a DA value: also as 1945-03-17, 17.03.1945, 03/17/1945
                y, m, d = value[:4], value[4:6], value[6:]
                words.update({f"{y}-{m}-{d}", f"{d}.{m}.{y}", f"{m}/{d}/{y}", f"{d}/{m}/{y}"})
        patterns = [_ALNUM_EDGE.format(re.escape(w)) for w in sorted(words, key=len, reverse=True)]
        self._values = re.compile("|".join(patterns), re.IGNORECASE) if patterns else None

    def tag(self, path: str, kind: str = "file") -> str:
        """``[file 1a2b3c4d.dcm]``: a keyed hash of the whole path and its extension (square brackets:
        ``scrub`` removes what is in angle brackets)."""
        digest = hmac.new(self._key, path.encode("utf-8", "surrogateescape"), hashlib.sha256).hexdigest()[:8]
        extension = _EXTENSION.search(path) if kind == "file" else None
        return f"[{kind} {digest}{extension.group(0).lower() if extension else ''}]"

    def values(self, text: str) -> str:
        """``text`` with every identifying value removed (whole words, any case)."""
        return self._values.sub("…", text) if self._values is not None else text

    def message(self, text: str) -> str:
        """An exception's message or a Qt message: paths tagged, quoted values and identifying values
        removed (each line at most 300 characters)."""
        for known, tag in self._known:
            text = text.replace(known, tag)
        lines = []
        for line in text.splitlines() or [""]:
            line = _TOKEN.sub(lambda m: self.tag(m.group(0)) if _path_like(m.group(0)) else m.group(0), line)
            lines.append(scrub(self.values(line)))
        return "\n".join(lines)

    def frame_file(self, filename: str) -> str:
        """A frame's source file relative to the Python path entry that holds it; else a tag."""
        if filename.startswith("<") and filename.endswith(">"):  # <string>, <frozen importlib._bootstrap>
            return filename
        path = os.path.abspath(filename)
        roots = sorted((os.path.abspath(p) for p in sys.path if p), key=len, reverse=True)
        for root in roots:
            if path.startswith(root.rstrip(os.sep) + os.sep):
                return Path(os.path.relpath(path, root)).as_posix()
        return self.tag(filename)


def _path_like(token: str) -> bool:
    """An absolute path, or a relative one with a file extension or two separators ("study/x.dcm",
    "DOE_JANE/1/IM0001"); not "W/L" or "and/or"."""
    token = token.rstrip(".:")
    if _ABSOLUTE.match(token):
        return len(token) > 1
    separators = token.count("/") + token.count("\\")
    return separators >= 2 or (separators == 1 and _EXTENSION.search(token) is not None)


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and those it was raised from or during, oldest first (as Python prints them)."""
    chain, seen = [], set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append(current)
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    return chain[::-1]


def format_traceback(exc: BaseException, redactor: Redactor) -> str:
    """The traceback as Python prints it, chained exceptions included, with redacted messages and
    relative (or tagged) frame paths."""
    out: list[str] = []
    chain = _chain(exc)
    for index, error in enumerate(chain):
        if index:
            out.append("\nThe above exception was the direct cause of the following exception:\n"
                       if error.__cause__ is chain[index - 1] else
                       "\nDuring handling of the above exception, another exception occurred:\n")
        frames = traceback.extract_tb(error.__traceback__)
        if frames:
            out.append("Traceback (most recent call last):")
        for frame in frames:
            where = redactor.frame_file(frame.filename)
            out.append(f'  File "{where}", line {frame.lineno}, in {frame.name}')
            if frame.line:
                out.append(f"    {redactor.values(frame.line.strip())}")
        for line in traceback.format_exception_only(type(error), error):
            out.append(redactor.message(line.rstrip("\n")))
    return "\n".join(out)


def environment() -> list[str]:
    """Version lines of a report: XRayViewer, Python, Qt, PySide6 and the platform (no host or user)."""
    return [
        f"XRayViewer {xrayviewer.__version__}",
        f"Python {platform.python_version()} ({platform.python_implementation()})",
        f"Qt {qVersion()}, PySide6 {PySide6.__version__}",
        f"platform {platform.system()} {platform.release()} {platform.machine()}",
    ]


class CrashDialog(QMessageBox):
    """The non-modal dialog: what happened, that the viewer keeps running, where the report is."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(CRASH_DIALOG)
        self.setIcon(QMessageBox.Icon.Warning)
        self.setWindowTitle("XRayViewer: unexpected error")
        self.setStandardButtons(QMessageBox.StandardButton.Close)
        self.setModal(False)
        self.setWindowModality(Qt.WindowModality.NonModal)
        self.errors = 0

    def show_report(self, summary: str, report: Path | None, problem: str, details: str) -> None:
        """Show (or update, when already shown) the dialog for one more error."""
        self.errors = self.errors + 1 if self.isVisible() else 1
        what = "an unexpected error" if self.errors == 1 else f"{self.errors} unexpected errors"
        where = (f"A crash report was written to {report}." if report is not None
                 else f"No crash report could be written ({problem}).")
        self.setText(f"XRayViewer hit {what}; it keeps running. {where}")
        self.setInformativeText(f"{summary}.\nThe report holds no patient data: file names are replaced by "
                                "tags, header values are left out.")
        self.setDetailedText(details)
        self.show()
        self.raise_()


class CrashReporter(QObject):
    """Writes crash reports and shows the dialog; ``install()`` makes it the handler of every unexpected
    exception, ``uninstall()`` puts the previous handlers back. ``context`` (called from any thread) names
    what a report must not reveal (``MainWindow.crash_context``)."""

    reported = Signal(object)  # Path of the report written, or None when it could not be written
    _show = Signal(str, object, str, str)  # summary, report path or None, problem, details

    def __init__(self, folder: Path | None = None, context: Callable[[], CrashContext] | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.folder = folder if folder is not None else crash_folder()
        self.context = context or CrashContext
        self.count = 0  # errors reported in this run
        self.dialog: CrashDialog | None = None
        self._key = secrets.token_bytes(16)
        self._lock = threading.RLock()
        self._busy = threading.local()  # an error inside the handler is not reported again
        self._previous: tuple | None = None
        self._fault_file: IO[str] | None = None
        self._faulthandler_was_on = False
        self._show.connect(self._show_dialog)  # queued when a report comes from another thread

    # -- installing ------------------------------------------------------------------------------------
    def install(self) -> CrashReporter:
        """Handle ``sys.excepthook``, ``threading.excepthook``, Qt's fatal messages and native crashes."""
        self._previous = (sys.excepthook, threading.excepthook, None)
        sys.excepthook = self._excepthook
        threading.excepthook = self._thread_excepthook
        previous_qt = qInstallMessageHandler(self._qt_message)
        self._previous = (self._previous[0], self._previous[1], previous_qt)
        self._enable_faulthandler()
        return self

    def uninstall(self) -> None:
        """Put the previous handlers back (and remove this run's native-crash file when it stayed empty)."""
        if self._previous is None:
            return
        sys.excepthook, threading.excepthook, previous_qt = self._previous
        qInstallMessageHandler(previous_qt)
        self._previous = None
        if self._fault_file is not None:
            faulthandler.disable()
            if self._faulthandler_was_on and sys.__stderr__ is not None:
                with contextlib.suppress(Exception):
                    faulthandler.enable(sys.__stderr__, all_threads=True)
            name = self._fault_file.name
            self._fault_file.close()
            self._fault_file = None
            with contextlib.suppress(OSError):
                if os.path.getsize(name) == 0:
                    os.remove(name)

    def _enable_faulthandler(self) -> None:
        """A native crash (segfault, abort) writes the Python stacks, file and function names only, into
        native-<time>-<pid>.log; removed at exit when empty. Empty ones left by killed runs are removed."""
        self._faulthandler_was_on = faulthandler.is_enabled()
        with contextlib.suppress(OSError, ValueError, RuntimeError):
            self.folder.mkdir(parents=True, exist_ok=True)
            for stale in self.folder.glob("native-*.log"):
                with contextlib.suppress(OSError):
                    if stale.stat().st_size == 0:
                        stale.unlink()
            self._fault_file = open(self.folder / f"native-{_stamp()}-{os.getpid()}.log", "w",  # noqa: SIM115
                                    encoding="utf-8")
            faulthandler.enable(self._fault_file, all_threads=True)

    # -- the hooks ---------------------------------------------------------------------------------------
    def _excepthook(self, kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
        on_ui = threading.current_thread() is threading.main_thread()
        where = "the UI thread" if on_ui else "a worker thread"
        self._handle(kind, value, tb, where)

    def _thread_excepthook(self, args: threading.ExceptHookArgs) -> None:
        if args.exc_value is None or args.exc_type is SystemExit:
            return
        self._handle(args.exc_type, args.exc_value, args.exc_traceback, "a background thread")

    def _handle(self, kind: type[BaseException], value: BaseException, tb: TracebackType | None,
                where: str) -> None:
        if issubclass(kind, KeyboardInterrupt) or getattr(self._busy, "on", False):
            sys.__excepthook__(kind, value, tb)
            return
        if value.__traceback__ is None and tb is not None:
            value = value.with_traceback(tb)
        self.report(value, where)

    def _qt_message(self, mode: QtMsgType, context, message: str) -> None:
        """Qt's messages go on as before (to the previous handler, else stderr); a fatal one is reported
        first (Qt aborts right after it)."""
        if mode == QtMsgType.QtFatalMsg:
            self.report_text(f"Qt fatal message: {message}", "Qt", show=False)
        previous = self._previous[2] if self._previous is not None else None
        with contextlib.suppress(Exception):
            if callable(previous):
                previous(mode, context, message)
                return
            stream: TextIO | None = sys.__stderr__
            if stream is not None:
                category = getattr(context, "category", None) or "default"
                stream.write(f"{message}\n" if category == "default" else f"{category}: {message}\n")
                stream.flush()

    # -- reporting -----------------------------------------------------------------------------------------
    def report(self, exc: BaseException, where: str = "the UI thread") -> Path | None:
        """Write a crash report for ``exc`` and show the dialog (on the UI thread); never raises. Returns
        the report's path (None when it could not be written)."""
        self._busy.on = True
        try:
            context, redactor = self._redactor()
            details = format_traceback(exc, redactor)
            summary = f"{type(exc).__name__} in {where}"
            return self._write(context, redactor, where, details, summary)
        except Exception as problem:  # the handler itself failed: say so on stderr, keep the viewer up
            with contextlib.suppress(Exception):
                sys.__stderr__.write(f"XRayViewer: the crash handler failed ({type(problem).__name__})\n")
            return None
        finally:
            self._busy.on = False

    def report_text(self, text: str, where: str, show: bool = True) -> Path | None:
        """Write a crash report for a message that is not an exception (a fatal Qt message)."""
        self._busy.on = True
        try:
            context, redactor = self._redactor()
            return self._write(context, redactor, where, redactor.message(text), f"error in {where}", show)
        except Exception:
            return None
        finally:
            self._busy.on = False

    def _redactor(self) -> tuple[CrashContext, Redactor]:
        try:
            context = self.context()
        except Exception:  # the window may be half gone: redact what we can without it
            context = CrashContext()
        return context, Redactor(context, self._key)

    def _write(self, context: CrashContext, redactor: Redactor, where: str, details: str, summary: str,
               show: bool = True) -> Path | None:
        with self._lock:
            self.count += 1
            count = self.count
        films = [f"{role}: {redactor.tag(str(path))}" for role, path in context.films] or ["none"]
        lines = [
            "XRayViewer crash report (no patient data: file names are keyed-hash tags, header values "
            "are left out)",
            f"time {datetime.datetime.now(datetime.UTC).isoformat(timespec='seconds')}",
            *environment(),
            f"where {where}",
            f"films {'; '.join(films)}",
            f"error {count} of this run",
            "",
            details,
            "",
        ]
        text = redactor.values("\n".join(lines))  # once more over everything, frames' source lines included
        report, problem = None, ""
        if count <= MAX_REPORTS_PER_RUN:
            try:
                report = self._save(text)
            except OSError as exc:
                problem = f"{exc.strerror or type(exc).__name__} in {self.folder}"
        else:
            problem = f"more than {MAX_REPORTS_PER_RUN} errors in this run: no more reports are written"
        with contextlib.suppress(Exception):
            stream = sys.__stderr__
            if stream is not None:
                stream.write(f"XRayViewer: unexpected error ({summary}); crash report: {report or problem}\n")
        if show:
            self._show.emit(summary, report, problem, details)
        self.reported.emit(report)
        return report

    def _save(self, text: str) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        with self._lock:
            path = self.folder / f"crash-{_stamp()}-{os.getpid()}-{self.count}.log"
            path.write_text(text, encoding="utf-8")
            _prune(self.folder.glob("crash-*.log"), KEEP_REPORTS)
        return path

    @Slot(str, object, str, str)
    def _show_dialog(self, summary: str, report: Path | None, problem: str, details: str) -> None:
        if QApplication.instance() is None:
            return
        if self.dialog is None:
            self.dialog = CrashDialog(_main_window())
        self.dialog.show_report(summary, report, problem, details)


def _stamp() -> str:
    return datetime.datetime.now().strftime("%Y%m%d-%H%M%S")


def _prune(reports: Iterable[Path], keep: int) -> None:
    """Delete all but the ``keep`` newest reports."""
    def modified(path: Path) -> float:
        try:
            return path.stat().st_mtime
        except OSError:  # deleted meanwhile (another viewer pruning): oldest
            return 0.0

    files: Sequence[Path] = sorted(reports, key=modified, reverse=True)
    for old in files[keep:]:
        with contextlib.suppress(OSError):
            old.unlink()


def _main_window() -> QWidget | None:
    """The visible main window (the dialog's parent, so it stays above it), if any."""
    app = QApplication.instance()
    if not isinstance(app, QApplication):
        return None
    windows = [w for w in app.topLevelWidgets() if isinstance(w, QMainWindow) and w.isVisible()]
    return windows[0] if windows else app.activeWindow()
