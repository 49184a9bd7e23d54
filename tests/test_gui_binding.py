"""The installed Qt binding keeps Python's reference counts: PySide6 6.12.0 dropped a reference to ``None``
on every void call and to ``True`` on every emit, and CPython 3.11 aborted the viewer ("none_dealloc")
after a few thousand of them. Run in a child process, which such a binding kills."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap


def test_void_calls_and_emits_leave_the_references_to_none_and_true_alone():
    script = textwrap.dedent("""
        import sys
        from PySide6.QtCore import QObject, Signal
        from PySide6.QtWidgets import QApplication, QLabel

        class Source(QObject):
            changed = Signal(int)

        app = QApplication([])
        label, source = QLabel(), Source()
        source.changed.connect(lambda value: None)
        none, true = sys.getrefcount(None), sys.getrefcount(True)
        for i in range(20_000):
            label.setText("x")
            label.setEnabled(True)
            source.changed.emit(i)
        print(none - sys.getrefcount(None), true - sys.getrefcount(True))
    """)
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    lost_none, lost_true = map(int, done.stdout.split())
    assert abs(lost_none) < 100 and abs(lost_true) < 100, (lost_none, lost_true)  # 60 000 calls: 0 expected
