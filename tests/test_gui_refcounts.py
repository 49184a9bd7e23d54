"""The guard against PySide6 6.12's reference-counting bug on CPython 3.11 (``gui.refcounts``): with it, a
bare application survives far more calls than ``None`` has references."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from xrayviewer.gui.refcounts import IMMORTAL_REFERENCES, guard_singletons, needs_guard

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(not needs_guard(), reason="None, True and False are immortal on this interpreter")
def test_the_guard_makes_the_singletons_as_good_as_immortal_once():
    guard_singletons()
    assert not guard_singletons()  # once per process
    for singleton in (None, True, False):
        assert IMMORTAL_REFERENCES < sys.getrefcount(singleton) < 2 * IMMORTAL_REFERENCES


@pytest.mark.skipif(not needs_guard(), reason="None, True and False are immortal on this interpreter")
def test_a_guarded_application_survives_many_calls_that_return_none_and_emit():
    """A bare QApplication has ~5000 references to None; 50 000 void calls and emits would use them up
    (PySide6 6.12.0 on CPython 3.11 aborts with "none_dealloc" after ~5000 of them)."""
    script = textwrap.dedent("""
        import sys
        from PySide6.QtCore import QObject, Signal
        from xrayviewer.gui.app import create_application
        app = create_application()
        from PySide6.QtWidgets import QLabel

        class Source(QObject):
            changed = Signal(int)

        label, source = QLabel(), Source()
        source.changed.connect(lambda value: None)
        start = sys.getrefcount(None)
        for i in range(50_000):
            label.setEnabled(True)
            source.changed.emit(i)
        print("alive", start - sys.getrefcount(None))
    """)
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("alive")
