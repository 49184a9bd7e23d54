"""The ``xrayviewer`` command: help, version, module entry point."""

import signal
import subprocess
import sys
import threading

import pytest

from xrayviewer import __version__
from xrayviewer.cli.engine_runs import install_cancel
from xrayviewer.cli.main import COMMANDS, main


def test_version_flag(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"xrayviewer {__version__}"


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert name in out
    assert "--train" in out


def test_python_dash_m_runs_the_same_cli():
    result = subprocess.run([sys.executable, "-m", "xrayviewer", "--version"], capture_output=True, text=True)
    assert result.returncode == 0
    assert __version__ in result.stdout
    assert "PySide6" not in result.stderr


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_once_cancels_an_engine_run_and_twice_aborts(capsys):
    before = signal.getsignal(signal.SIGINT)
    cancel = threading.Event()
    try:
        install_cancel(cancel)
        signal.raise_signal(signal.SIGINT)
        assert cancel.is_set()
        assert "Ctrl-C again to abort" in capsys.readouterr().err
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
    finally:
        signal.signal(signal.SIGINT, before)
