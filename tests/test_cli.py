"""The ``xrayviewer`` command: help, version, module entry point."""

import subprocess
import sys

import pytest

from xrayviewer import __version__
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
