"""The training engine in a child process: ``xrayviewer train ... --events json`` under a QProcess.

Why a process and not a thread: a crash, an out-of-memory kill or a native-library abort in training ends
that process, never the viewer; the training loop's Python work cannot hold the viewer's GIL (the UI stays
within its 50 ms budget); the run is the very command a person would type, so it gives the same bundle;
and cancelling is the command's own Ctrl-C (checkpoint, exit 130). The child's JSON lines arrive through
QProcess signals on the UI thread and are parsed into the engine's event dataclasses
(``training.events.parse_event``); stderr lines are kept for the log pane and the error message.

Cancel: SIGINT on POSIX; on Windows, where a child cannot be sent SIGINT, the child is started in its own
process group and sent CTRL_BREAK_EVENT, which ``xrayviewer train`` and ``recalibrate`` handle as
Ctrl-C (SIGBREAK).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
from collections import deque
from pathlib import Path

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, Signal

from xrayviewer.training.events import parse_event

PACKAGE_ROOT = Path(__file__).resolve().parents[3]  # the folder holding the xrayviewer package
STDERR_LINES = 400
CHILD_NICENESS = 5  # the viewer and its own inference come first on a busy CPU


def engine_command(args: list[str]) -> tuple[str, list[str]]:
    """Program and arguments running ``xrayviewer ARGS`` with this interpreter (or this frozen app)."""
    if getattr(sys, "frozen", False):
        return sys.executable, list(args)
    return sys.executable, ["-m", "xrayviewer", *args]


def child_environment() -> QProcessEnvironment:
    """This process's environment, with the package importable in the child (a source checkout),
    unbuffered output and passive OpenMP threads (spinning threads would steal the UI's core)."""
    env = QProcessEnvironment.systemEnvironment()
    parts = [p for p in env.value("PYTHONPATH", "").split(os.pathsep) if p]
    if str(PACKAGE_ROOT) not in parts and (PACKAGE_ROOT / "xrayviewer" / "__init__.py").is_file():
        parts.append(str(PACKAGE_ROOT))
    env.insert("PYTHONPATH", os.pathsep.join(parts))
    env.insert("PYTHONUNBUFFERED", "1")
    if not env.contains("OMP_WAIT_POLICY"):
        env.insert("OMP_WAIT_POLICY", "PASSIVE")
    return env


class EngineProcess(QObject):
    """One child ``xrayviewer`` command at a time; ``event`` carries each parsed JSON line (an engine
    ``Event``, or a plain dict for other objects such as ``--time-batches``' timing), ``stderrLine`` each
    stderr line, ``ended`` the exit: (exit code, crashed, the last stderr lines)."""

    event = Signal(object)
    stderrLine = Signal(str)
    ended = Signal(int, bool, str)
    started = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.process: QProcess | None = None
        self.stderr: deque[str] = deque(maxlen=STDERR_LINES)
        self._out = b""
        self._err = b""
        self.cancel_requested = False

    @property
    def running(self) -> bool:
        """A child is starting or running."""
        return self.process is not None and self.process.state() != QProcess.ProcessState.NotRunning

    def start(self, args: list[str]) -> None:
        """Start ``xrayviewer ARGS`` (the previous child must have ended)."""
        if self.running:
            raise RuntimeError("a child process is running already")
        process = QProcess(self)
        program, arguments = engine_command(args)
        process.setProgram(program)
        process.setArguments(arguments)
        process.setProcessEnvironment(child_environment())
        process.setWorkingDirectory(str(Path.home()))
        if sys.platform == "win32":  # its own process group, so that CTRL_BREAK_EVENT reaches it alone
            import subprocess

            def new_group(arguments) -> None:
                arguments.flags |= subprocess.CREATE_NEW_PROCESS_GROUP

            process.setCreateProcessArgumentsModifier(new_group)
        # every signal names its process: a child replaced by a newer one (killed) is not heard any more
        process.readyReadStandardOutput.connect(lambda p=process: p is self.process and self._read_out())
        process.readyReadStandardError.connect(lambda p=process: p is self.process and self._read_err())
        process.finished.connect(lambda code, status, p=process: self._finished(p, code, status))
        process.errorOccurred.connect(lambda error, p=process: p is self.process and self._error(error))
        process.started.connect(lambda p=process: p is self.process and self._started())
        self.stderr.clear()
        self._out = self._err = b""
        self.cancel_requested = False
        if self.process is not None:
            self.process.deleteLater()
        self.process = process
        process.start()

    def _started(self) -> None:
        pid = self.pid()
        if pid and hasattr(os, "setpriority"):
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, pid, CHILD_NICENESS)
        self.started.emit()

    def pid(self) -> int:
        """The child's process id (0 when none runs)."""
        return int(self.process.processId()) if self.process is not None else 0

    def cancel(self) -> None:
        """Ask the child to stop as Ctrl-C does (after the current batch, with a checkpoint)."""
        pid = self.pid()
        if not pid or not self.running:
            return
        self.cancel_requested = True
        try:
            if sys.platform == "win32":
                os.kill(pid, signal.CTRL_BREAK_EVENT)  # type: ignore[attr-defined]
            else:
                os.kill(pid, signal.SIGINT)
        except OSError:
            pass

    def kill(self) -> None:
        """End the child at once (its last complete checkpoint stays)."""
        if self.running and self.process is not None:
            self.cancel_requested = True
            self.process.kill()

    def wait(self, ms: int) -> bool:
        """Block up to ``ms`` for the child to end (closing the app); True when it has."""
        if not self.running or self.process is None:
            return True
        return bool(self.process.waitForFinished(ms))

    def _read_out(self) -> None:
        assert self.process is not None
        self._out += bytes(self.process.readAllStandardOutput().data())
        *lines, self._out = self._out.split(b"\n")
        for raw in lines:
            self._line(raw.decode("utf-8", "replace").strip())

    def _line(self, line: str) -> None:
        if not line:
            return
        parsed = parse_event(line)
        if parsed is not None:
            self.event.emit(parsed)
            return
        try:
            data = json.loads(line)
        except ValueError:
            self.stderrLine.emit(line)  # a stray print: shown with the log
            return
        if isinstance(data, dict):
            self.event.emit(data)

    def _read_err(self) -> None:
        assert self.process is not None
        self._err += bytes(self.process.readAllStandardError().data())
        *lines, self._err = self._err.replace(b"\r", b"\n").split(b"\n")
        for raw in lines:
            line = raw.decode("utf-8", "replace").rstrip()
            if line.strip():
                self.stderr.append(line)
                self.stderrLine.emit(line)

    def _finished(self, process: QProcess, code: int, status: QProcess.ExitStatus) -> None:
        if process is not self.process:  # replaced by a newer child
            process.deleteLater()
            return
        self._read_out()
        self._read_err()
        if self._out.strip():
            self._line(self._out.decode("utf-8", "replace").strip())
        if self._err.strip():
            line = self._err.decode("utf-8", "replace").rstrip()
            self.stderr.append(line)
            self.stderrLine.emit(line)
        self._out = self._err = b""
        crashed = status == QProcess.ExitStatus.CrashExit
        self.ended.emit(int(code), crashed, "\n".join(list(self.stderr)[-12:]))

    def _error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            program = self.process.program() if self.process is not None else sys.executable
            self.stderr.append(f"could not start {program}")
            self.ended.emit(-1, True, f"The training command could not be started ({program}).")
