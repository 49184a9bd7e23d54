"""Start-up time to the main window: the frozen installer vs ``python -m xrayviewer``, on a virtual X screen.

Starts Xvfb, then launches each command N times and polls ``xwininfo`` until a window titled XRayViewer is
mapped; prints the first (cold page cache for a fresh unpack) and the median time per command.

    .venv/bin/python benchmarks/cold_start.py --frozen build/stage-lean/xrayviewer-*/xrayviewer
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _window_mapped(display: str) -> bool:
    tree = subprocess.run(["xwininfo", "-root", "-tree"], capture_output=True, text=True,
                          env={**os.environ, "DISPLAY": display}).stdout
    return '"XRayViewer"' in tree


def time_to_window(command: list[str], display: str, env: dict[str, str], timeout: float = 60.0) -> float:
    """Seconds from launching ``command`` to its main window being mapped (the process is then ended)."""
    start = time.perf_counter()
    process = subprocess.Popen(command, env={**env, "DISPLAY": display, "QT_QPA_PLATFORM": "xcb"},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while time.perf_counter() - start < timeout:
            if _window_mapped(display):
                return time.perf_counter() - start
            if process.poll() is not None:
                raise RuntimeError(f"{command[0]} exited with {process.returncode} before its window showed")
            time.sleep(0.02)
        raise TimeoutError(f"{command[0]}: no window after {timeout:.0f} s")
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main() -> int:
    """Measure and print the start-up times."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frozen", type=Path, help="the installer's xrayviewer executable")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--display", default=":87")
    args = parser.parse_args()
    xvfb = subprocess.Popen(["Xvfb", args.display, "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    commands = {"python -m xrayviewer": [sys.executable, "-m", "xrayviewer"]}
    if args.frozen:
        commands[f"frozen {args.frozen.resolve().parent.name}"] = [str(args.frozen.resolve())]
    try:
        with tempfile.TemporaryDirectory() as home:  # the user's settings untouched
            env = {**os.environ, "XDG_CONFIG_HOME": f"{home}/config", "XDG_STATE_HOME": f"{home}/state",
                   "OMP_WAIT_POLICY": "PASSIVE"}
            for name, command in commands.items():
                times = [time_to_window(command, args.display, env) for _ in range(args.runs)]
                print(f"{name:<40} first {times[0]:.2f} s, median {statistics.median(times):.2f} s "
                      f"over {args.runs} runs")
    finally:
        xvfb.terminate()
        xvfb.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
