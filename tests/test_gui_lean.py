"""The viewer reads a film with the shipped models and gate without torch, SciPy, scikit-learn or
scikit-image (what the lean installer leaves out): every model runs its ONNX graph in ONNX Runtime."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_viewer_gives_findings_with_no_torch_installed(kermany_rows, tmp_path):
    script = textwrap.dedent(f"""
        import sys, time
        for name in ("torch", "torchvision", "torchxrayvision", "scipy", "sklearn", "skimage"):
            sys.modules[name] = None  # any import of them raises ImportError

        def main():
            from xrayviewer.gui.app import create_application
            from xrayviewer.gui.main_window import MainWindow
            app = create_application()
            window = MainWindow()
            done = []
            window.findingsComplete.connect(lambda: done.append(1))
            window.open_paths([{kermany_rows[0]["path"]!r}])
            start = time.time()
            while not done and time.time() - start < 120:
                app.processEvents()
                time.sleep(0.02)
            verdict = window.session.applicability
            backends = {{p.backend for p in window.session.predictions.values()}}
            print(len(window.session.predictions), ",".join(sorted(backends)), verdict.gate.ok)
            window.close()

        if __name__ == "__main__":  # the decoder runs in spawned processes
            main()
    """)
    path = tmp_path / "lean_viewer.py"
    path.write_text(script)
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, str(path)], env=env, capture_output=True, text=True, timeout=180,
                          cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    models, backends, gate_ok = done.stdout.split()
    assert int(models) >= 3 and backends == "onnxruntime" and gate_ok == "True"  # every shipped model
