"""Viewer soak: films opened one after the other in the real MainWindow (offscreen), real ones from
../shared/data (Kermany JPEGs, NIH PNGs, the DICOMs) mixed with the hostile corpus (tests/hostile_corpus.py),
each waited for until it has its findings (or its error); the crash handler counts unexpected exceptions.

Run: QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/viewer_soak.py [--films 500] [--models tiny]
     [--warm-up 20] [--hostile 0.4] [--seed 0] [--json FILE]

``--models tiny`` (default) installs one tiny random-weight DenseNet (64 px) so that a run takes a minute;
``--models shipped`` uses the installed bundles (the shipped three: pneumonia, pneumonia-type, cardiomegaly).
Memory is the viewer process's RSS (psutil when installed, else /proc/self/status VmRSS) after a warm-up
(every shared DICOM, the largest films, then ``--warm-up`` mixed films: decoder process started, models
loaded, the heap at its high-water mark), then after half and all of the films, each time with the same
small reference film on screen (the RSS follows the film shown); the decoder processes' RSS is beside it.
Target: growth ≤ 5 %, no crash. Every settle point is checked: title, tags and findings describe the film
shown, a film that fails keeps the one before, an error is one line naming the file. Exit status 1 when a
target is missed.
"""

from __future__ import annotations

import argparse
import gc
import json
import multiprocessing
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for entry in (ROOT, ROOT / "tests"):  # the package, and the tests' corpus and tiny-bundle helpers
    if str(entry) not in sys.path:
        sys.path.insert(0, str(entry))

GROWTH_TARGET = 0.05
SETTLE_TIMEOUT_S = 120.0


def rss_mb(pid: int | str = "self") -> float:
    """Resident set size of a process in MB (psutil if installed, else /proc/<pid>/status VmRSS)."""
    try:
        import psutil

        return psutil.Process(None if pid == "self" else int(pid)).memory_info().rss / 2**20
    except ImportError:
        pass
    except Exception:  # the process is gone
        return 0.0
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def children_rss_mb() -> float:
    """RSS of the decoder processes (the viewer's multiprocessing children), in MB."""
    return sum(rss_mb(child.pid) for child in multiprocessing.active_children() if child.pid)


def real_films(data: Path, rng: random.Random, count: int = 150) -> list[Path]:
    """Every shared DICOM, and Kermany JPEGs, NIH PNGs and COVID films drawn at random, ``count`` in all."""
    dicoms = sorted((data / "dicom").glob("*.dcm"))
    pools = [sorted((data / name / "images").iterdir()) for name in ("kermany", "nih", "nih-extra", "covid")
             if (data / name / "images").is_dir()]
    rest = max(0, count - len(dicoms))
    drawn = [path for pool in pools for path in rng.sample(pool, min(len(pool), rest // max(1, len(pools))))]
    return dicoms + drawn


def hostile_films(folder: Path) -> list[Path]:
    """The hostile corpus written into ``folder`` by a child process (so that the viewer's RSS does not
    carry the writer's), FIFOs, sockets and link loops included: its paths."""
    script = ("import json, os, sys\n"
              "from hostile_corpus import build_corpus\n"
              "cases, sockets = build_corpus(sys.argv[1])\n"
              "[s.close() for s in sockets]  # a closed socket's file stays a socket\n"
              "print(json.dumps([os.fsencode(c.path).decode('latin-1') for c in cases]))\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    done = subprocess.run([sys.executable, "-c", script, str(folder)], env=env, check=True,
                          capture_output=True, text=True)
    return [Path(os.fsdecode(p.encode("latin-1"))) for p in json.loads(done.stdout.splitlines()[-1])]


def film_sequence(real: Sequence[Path], hostile: Sequence[Path], count: int, hostile_share: float,
                  rng: random.Random) -> list[tuple[str, Path]]:
    """``count`` (kind, path) pairs: each hostile with probability ``hostile_share``, films cycling through
    shuffled copies of their lists."""
    queues: dict[str, list[Path]] = {"real": [], "hostile": []}
    sources = {"real": list(real), "hostile": list(hostile)}
    sequence = []
    for _ in range(count):
        kind = "hostile" if rng.random() < hostile_share else "real"
        if not queues[kind]:
            queues[kind] = rng.sample(sources[kind], len(sources[kind]))
        sequence.append((kind, queues[kind].pop()))
    return sequence


def shown_text(text: str) -> str:
    """A name as Qt shows it: bytes that are not UTF-8 (Python's surrogate escapes) are dropped."""
    return text.encode("utf-8", "ignore").decode("utf-8")


@dataclass
class Outcome:
    """One film opened: how long until it settled, what the viewer showed."""

    kind: str  # "real" | "hostile"
    ms: float
    result: str  # "findings" | "no findings" (refused, or no model answered) | "error" | "hang"
    message: str = ""
    name: str = ""
    rss_mb: float = 0.0  # the viewer's RSS once it settled


@dataclass
class SoakReport:
    """Every film's outcome, the problems found at settle points and the memory figures."""

    outcomes: list[Outcome] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    rss: dict[str, float] = field(default_factory=dict)  # "0", "250", "500"... → MB
    decoder_rss: dict[str, float] = field(default_factory=dict)
    none_references: dict[str, int] = field(default_factory=dict)  # sys.getrefcount(None): must not fall
    crashes: int = 0


class Soak:
    """Opens films in a ``MainWindow`` one after the other, each until it settles, and checks what the window
    shows then. ``reporter``: the ``CrashReporter`` installed for the run (its count is the crashes)."""

    def __init__(self, window, reporter, timeout_s: float = SETTLE_TIMEOUT_S) -> None:
        self.window, self.reporter, self.timeout_s = window, reporter, timeout_s
        self.errors: list[str] = []
        window.errorShown.connect(self.errors.append)

    def open_and_wait(self, path: Path) -> bool:
        """Open ``path`` from the event loop, as a menu or a drop does (an exception goes to the crash
        handler), and run the loop until nothing is pending (False: still pending after the timeout)."""
        from PySide6.QtCore import QEventLoop, QTimer

        window = self.window
        deadline = time.perf_counter() + self.timeout_s
        loop = QEventLoop()
        asked: list[bool] = []

        def ask() -> None:
            asked.append(True)
            window.open_paths([str(path)])

        window.filmSettled.connect(loop.quit)
        tick = QTimer(interval=100)  # wakes the loop to look at the deadline
        tick.timeout.connect(loop.quit)
        tick.start()
        QTimer.singleShot(0, ask)
        try:
            while not (asked and window.settled()):
                if time.perf_counter() > deadline:
                    return False
                loop.exec()
        finally:
            tick.stop()
            window.filmSettled.disconnect(loop.quit)
        return True

    def open(self, kind: str, path: Path, problems: list[str]) -> Outcome:
        """Open ``path``, wait for it to settle, check the window; problems found are appended."""
        window = self.window
        before, errors = window.loaded, len(self.errors)
        started = time.perf_counter()
        settled = self.open_and_wait(path)
        ms = (time.perf_counter() - started) * 1000
        self._close_crash_dialogs()
        name = shown_text(path.name)
        if not settled:
            problems.append(f"{name}: not settled after {self.timeout_s:.0f} s")
            return Outcome(kind, ms, "hang")
        new_errors = self.errors[errors:]
        loaded = window.loaded
        if new_errors:
            message = new_errors[-1]
            if "\n" in message or "Traceback" in message:
                problems.append(f"{name}: the error is not one line: {message[:200]!r}")
            if not (message.startswith(f"{name}: ") or message.startswith(f"{name} could not be opened")
                    or message.startswith("No image found in ")):
                problems.append(f"{name}: the error does not name the file: {message[:200]!r}")
            if loaded is not before:
                problems.append(f"{name}: failed, but the film shown changed")
            outcome = Outcome(kind, ms, "error", message)
        elif loaded is None or loaded.path != path:
            problems.append(f"{name}: neither shown nor an error")
            return Outcome(kind, ms, "hang")
        else:
            outcome = Outcome(kind, ms, "findings" if window.predictions else "no findings",
                              window.results.status.text())
        self._check_consistent(problems, name)
        return outcome

    def _check_consistent(self, problems: list[str], name: str) -> None:
        window, loaded = self.window, self.window.loaded
        if loaded is None:
            return
        shown = shown_text(loaded.path.name)
        if window.windowTitle() != f"{shown} — XRayViewer":
            problems.append(f"{name}: title {window.windowTitle()!r} while {shown!r} is shown")
        tags = window.metadata.values()
        rows, cols = loaded.image.shape
        if tags.get("File") != shown or tags.get("Size") != f"{cols} × {rows} px":
            problems.append(f"{name}: tags describe {tags.get('File')!r} while {shown!r} is shown")
        picture = window.view.image_item.pixmap()
        if (picture.height(), picture.width()) != (rows, cols):
            problems.append(f"{name}: the picture is {picture.width()} × {picture.height()}, not the film's")
        if set(window.predictions) - set(window.results.sections):
            problems.append(f"{name}: findings without their section")

    @staticmethod
    def _close_crash_dialogs() -> None:
        from PySide6.QtWidgets import QApplication

        from xrayviewer.gui.crash import CRASH_DIALOG

        for widget in QApplication.topLevelWidgets():
            if widget.objectName() == CRASH_DIALOG and widget.isVisible():
                widget.close()

    def run(self, films: Sequence[tuple[str, Path]], warm_up: Sequence[tuple[str, Path]] = (),
            checkpoints: Sequence[int] = (), reference: Path | None = None,
            progress: bool = False) -> SoakReport:
        """Open ``warm_up`` (not counted), then ``films``; RSS after the warm-up ("0") and after each
        checkpoint's film. The RSS follows the film shown (a 1955 × 1841 film with its heat map holds ~70 MB
        more than a 224 × 224 one), so before each measurement the ``reference`` film is shown (not
        counted): the figures compare like with like."""
        report = SoakReport()
        for kind, path in warm_up:
            self.open(kind, path, [])
        marks = set(checkpoints)

        def measure(label: str) -> None:
            if reference is not None:
                self.open("real", reference, report.problems)
            gc.collect()
            report.rss[label], report.decoder_rss[label] = rss_mb(), children_rss_mb()
            report.none_references[label] = sys.getrefcount(None)

        measure("0")
        crashes_before = self.reporter.count if self.reporter is not None else 0
        for index, (kind, path) in enumerate(films, start=1):
            outcome = self.open(kind, path, report.problems)
            outcome.name, outcome.rss_mb = shown_text(path.name)[:80], rss_mb()
            report.outcomes.append(outcome)
            if index in marks:
                measure(str(index))
            if progress and index % 50 == 0:
                print(f"  {index} films, RSS {rss_mb():.0f} MB", flush=True)
        report.crashes = (self.reporter.count if self.reporter is not None else 0) - crashes_before
        return report


def make_viewer(folder: Path, models: str):
    """A MainWindow with settings under ``folder``, shown offscreen, and the crash reporter installed (its
    reports under ``folder``); ``models``: "tiny" or "shipped"."""
    from PySide6.QtCore import QSettings

    from xrayviewer.gui.app import create_application
    from xrayviewer.gui.crash import CrashReporter
    from xrayviewer.gui.main_window import MainWindow
    from xrayviewer.gui.workers import installed_bundles, installed_gate, load_predictor

    create_application()
    settings = QSettings(str(folder / "settings.ini"), QSettings.Format.IniFormat)
    if models == "tiny":
        from gui_helpers import make_tiny_bundle

        bundle = make_tiny_bundle(folder / "bundles")
        window = MainWindow(settings, load_predictor, lambda: [bundle], lambda device: None)
    else:
        window = MainWindow(settings, load_predictor, installed_bundles, installed_gate)
    reporter = CrashReporter(folder / "crash-reports", context=window.crash_context).install()
    window.resize(1200, 800)
    window.show()
    return window, reporter


def growth(report: SoakReport, first: str, last: str) -> float:
    """Relative RSS growth between two checkpoints."""
    return (report.rss[last] - report.rss[first]) / report.rss[first] if report.rss.get(first) else 0.0


def summary(report: SoakReport, models: str, seconds: float) -> list[str]:
    """The report's lines: RSS at each checkpoint and growth, crashes, problems, time per film."""
    counted = len(report.outcomes)
    labels = sorted(report.rss, key=int)
    lines = [f"viewer soak: {counted} films ({models} models) in {seconds:.0f} s"]
    lines += [f"RSS at {label:>3}: {report.rss[label]:7.1f} MB viewer, {report.decoder_rss[label]:6.1f} MB "
              "decoder processes" for label in labels]
    if len(labels) >= 2:
        middle = labels[len(labels) // 2] if len(labels) > 2 else labels[0]
        lines.append(f"RSS growth 0→{labels[-1]}: {growth(report, labels[0], labels[-1]):+.1%} "
                     f"({middle}→{labels[-1]}: {growth(report, middle, labels[-1]):+.1%}); target ≤ "
                     f"{GROWTH_TARGET:.0%}")
    lines.append(f"crashes (unexpected exceptions reported): {report.crashes}")
    if len(labels) >= 2 and counted:
        taken = (report.none_references[labels[0]] - report.none_references[labels[-1]]) / counted
        lines.append(f"references to None taken per film: {taken:.0f} (0 expected; PySide6 6.12.0 took them "
                     "and aborted on CPython 3.11: see pyproject.toml)")
    results = Counter(o.result for o in report.outcomes)
    kinds = Counter(o.kind for o in report.outcomes)
    lines.append(f"films: {kinds['real']} real, {kinds['hostile']} hostile; "
                 + ", ".join(f"{count} {result}" for result, count in results.most_common()))
    for kind in ("real", "hostile", None):
        ms = [o.ms for o in report.outcomes if kind is None or o.kind == kind]
        if ms:
            ms.sort()
            lines.append(f"ms/film {kind or 'all':>7}: mean {statistics.fmean(ms):6.0f}, median "
                         f"{statistics.median(ms):6.0f}, p95 {ms[int(0.95 * (len(ms) - 1))]:6.0f}, "
                         f"max {ms[-1]:6.0f}")
    unexpected = [o.message for o in report.outcomes if "internal error" in o.message
                  or "could not be opened (" in o.message or "could not be read (" in o.message]
    lines.append(f"unexpected-error messages (a decoder or engine bug, not a crash): {len(unexpected)}")
    lines.extend(f"  {message[:160]}" for message in unexpected[:5])
    lines.append(f"problems at settle points: {len(report.problems)}")
    lines.extend(f"  {problem[:200]}" for problem in report.problems[:20])
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    """Run the soak and print its report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--films", type=int, default=500)
    parser.add_argument("--warm-up", type=int, default=20)
    parser.add_argument("--models", choices=("tiny", "shipped"), default="tiny")
    parser.add_argument("--hostile", type=float, default=0.4, help="share of hostile files (0..1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--json", type=Path, help="write every outcome and the figures here")
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="viewer-soak-") as tmp:
        folder = Path(tmp)
        os.environ["XDG_CACHE_HOME"] = str(folder / "cache")  # the ONNX export of the models, this run's own
        hostile = hostile_films(folder / "hostile")
        real = real_films(args.data, rng)
        films = film_sequence(real, hostile, args.films, args.hostile, rng)
        # warm-up: every shared DICOM (the largest films: the heap's high-water mark), then mixed films
        warm_up = [("real", path) for path in real if path.suffix == ".dcm"]
        warm_up += film_sequence(real, hostile, args.warm_up, args.hostile, rng)
        print(f"{len(real)} real films, {len(hostile)} hostile files; {len(warm_up)} warm-up + {args.films} "
              "counted", flush=True)
        window, reporter = make_viewer(folder, args.models)
        print(f"models ({args.models}): " + ", ".join(b.name for b in window.list_bundles()), flush=True)
        half = args.films // 2
        started = time.perf_counter()
        try:
            reference = next(path for path in real if path.suffix != ".dcm")
            report = Soak(window, reporter).run(films, warm_up, checkpoints=(half, args.films),
                                                reference=reference, progress=True)
        finally:
            seconds = time.perf_counter() - started
            reporter.uninstall()
            window.close()
        lines = summary(report, args.models, seconds)
        print("\n".join(lines))
        if args.json:
            args.json.write_text(json.dumps({"summary": lines, **asdict(report)}, default=str, indent=1))
    labels = sorted(report.rss, key=int)
    missed = (report.crashes > 0 or bool(report.problems)
              or growth(report, labels[0], labels[-1]) > GROWTH_TARGET)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
