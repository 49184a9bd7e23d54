"""`xrayviewer predict --json` over the generated hostile corpus (tests/hostile_corpus.py): rows, failures by
message class, peak RSS of the predict process, the slowest file, and what reached stderr.

Run: .venv/bin/python benchmarks/hostile_corpus.py [--model DIR] [--arch ID] [--size PX] [--keep DIR]
     [--no-large]
The corpus includes films of real sizes (4096² 16-bit and 8192² 8-bit DICOM, a 7000 × 3000 16-bit PNG, a
4000² JPEG) unless --no-large. Without --model a bundle with random weights is made (DenseNet-121 at 224 px
by default, the size of the shipped models: what matters here is memory and time, not the scores). Each of
two ``predict`` calls (cold, then warm ONNX cache) gets the whole corpus folder, every path a folder listing
skips (FIFOs, link loops, over-long names...) and an empty folder, as a new user would. Peak RSS comes from
``wait4`` on the child (the corpus is written by another child, so the figure is predict's own); a file's
time is the gap between its JSON line and the one before (the first line also carries start-up and model
load).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def make_model(folder: Path, arch: str, size: int) -> Path:
    """A random-weight bundle whose batch-norm statistics come from a few synthetic films."""
    import numpy as np
    from engine_helpers import make_bundle

    from xrayviewer.engine.preprocess import PreprocessRecipe

    rng = np.random.default_rng(0)
    inputs = [(rng.random((1, size, size), dtype=np.float32) * 2 - 1) * 1024 for _ in range(4)]
    bundle = make_bundle(folder / f"bench-{arch}", inputs, arch=arch, classes=("pneumonia",), task="binary",
                         recipe=PreprocessRecipe(size=size))
    return bundle.path


def message_class(error: str | None) -> str:
    """An error message with its numbers and syntax names folded, so that like failures count together."""
    if error is None:
        return "(scored)"
    text = re.sub(r"\d+(\.\d+)?", "N", error)
    text = re.sub(r"says [^:]+:", "says …:", text)
    return text[:110]


def predict(command: list[str], env: dict[str, str]) -> tuple[list[dict], list[float], str, int, float, int]:
    """Run one ``predict``: its rows, the gap before each row, stderr, exit status, seconds, peak RSS (KB)."""
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert proc.stdout is not None and proc.stderr is not None
    rows, gaps, last = [], [], started
    for line in proc.stdout:
        now = time.perf_counter()
        rows.append(json.loads(line))
        gaps.append(now - last)
        last = now
    stderr = proc.stderr.read().decode("utf-8", "replace")
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    return rows, gaps, stderr, os.waitstatus_to_exitcode(status), seconds, usage.ru_maxrss


def prepare(corpus: Path, large: bool, model: str, arch: str, size: int) -> None:
    """Write the corpus, an empty folder and (without ``model``) a random-weight bundle, and a manifest.
    Run in its own process: a child inherits its parent's peak RSS figure, so the process that measures
    ``predict`` must stay small (no numpy, torch or films of its own)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from hostile_corpus import build_corpus  # the tests' corpus generator

    cases, sockets = build_corpus(corpus / "files", large=large)
    for server in sockets:  # a closed socket's file stays a socket: predict still meets one
        server.close()
    (corpus / "empty-folder").mkdir()
    manifest = {"cases": len(cases), "listed": sum(c.listed for c in cases),
                "explicit": [os.fsencode(c.path).decode("latin-1") for c in cases if not c.listed],
                "model": model or str(make_model(corpus, arch, size))}
    (corpus / "manifest.json").write_text(json.dumps(manifest))


def run(args: argparse.Namespace, corpus: Path) -> None:
    subprocess.run([sys.executable, __file__, "--prepare", str(corpus), *(["--no-large"] * args.no_large),
                    "--arch", args.arch, "--size", str(args.size),
                    *(["--model", str(args.model)] if args.model else [])], check=True,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})
    manifest = json.loads((corpus / "manifest.json").read_text())
    explicit = [os.fsdecode(p.encode("latin-1")) for p in manifest["explicit"]]
    empty, model = corpus / "empty-folder", manifest["model"]
    command = [sys.executable, "-m", "xrayviewer", "predict", str(corpus / "files"), *explicit, str(empty),
               "--json", "--gate", "none", "--model", str(model), "--device", "cpu"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_CACHE_HOME": str(corpus / "cache")}
    expected = manifest["listed"] + len(explicit) + 1
    print(f"corpus: {manifest['cases']} cases ({expected} inputs with the explicit paths and an empty "
          "folder)")
    for label in ("first run (cold ONNX cache: the model is exported at load)", "second run (warm cache)"):
        rows, gaps, stderr, status, total, peak = predict(command, env)
        print(f"{label}: exit {status}, {len(rows)} rows in {total:.1f} s; "
              f"{sum(r['error'] is None for r in rows)} scored, "
              f"{sum(r['error'] is not None for r in rows)} not; "
              f"peak RSS {peak / 2**20:.2f} GB ({peak // 1024} MB)")
        if len(rows) != expected:
            print(f"MISMATCH: {expected} inputs, {len(rows)} rows", file=sys.stderr)
    classes = collections.Counter(message_class(r["error"]) for r in rows)
    slowest = sorted(range(1, len(rows)), key=gaps.__getitem__, reverse=True)[:5]
    print(f"first row (start-up, model load and the first file): {gaps[0]:.2f} s")
    for index in slowest:
        print(f"slow: {gaps[index]:6.2f} s  {Path(rows[index]['file']).name[:60]}  "
              f"({message_class(rows[index]['error'])[:60]})")
    noise = [line for line in stderr.splitlines() if line.strip()]
    print(f"stderr: {len(noise)} lines" + (f"; first: {noise[0][:200]}" if noise else ""))
    print("failures by message class:")
    for text, count in classes.most_common():
        print(f"  {count:4d}  {text}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="a bundle folder (default: a random-weight one)")
    parser.add_argument("--arch", default="xrv-densenet121", help="architecture of the random-weight model")
    parser.add_argument("--size", type=int, default=224, help="input size of the random-weight model")
    parser.add_argument("--keep", type=Path, help="write the corpus here and keep it")
    parser.add_argument("--no-large", action="store_true", help="leave out the films of real sizes")
    parser.add_argument("--prepare", type=Path, help=argparse.SUPPRESS)  # the corpus-writing child
    args = parser.parse_args()
    if args.prepare:
        prepare(args.prepare, not args.no_large, str(args.model or ""), args.arch, args.size)
        return
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        run(args, args.keep)
        return
    with tempfile.TemporaryDirectory(prefix="xrayviewer-hostile-") as folder:
        run(args, Path(folder))


if __name__ == "__main__":
    main()
