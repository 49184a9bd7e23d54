"""The data page's background checks in a separate process: the engine's dry run, a test decode of every
file (in chunks, with progress) and a few thumbnails per class (``training.inspection``).

A process, not a thread: listing a big CSV and decoding files hold Python's GIL (decoders for seconds on a
large folder), which would freeze the wizard. Each request gets a generation number; answers of older
generations are dropped, and their queued work is cancelled.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from PySide6.QtCore import QObject, Signal, Slot

from xrayviewer.gui.decoding import _exit_with_parent
from xrayviewer.training import inspection
from xrayviewer.training.config import TrainConfig

CHUNK = 24  # files per test-decode job: progress every few dozen files
THUMBNAILS = 6  # per class


class DataInspector(QObject):
    """Runs ``inspection.dry_run``, ``check_files`` and ``thumbnail`` in one worker process."""

    reportReady = Signal(int, object)  # generation, DataReport
    checkProgress = Signal(int, int, int)  # generation, files checked, files in all
    checkFinished = Signal(int, object)  # generation, [(path, reason)] of the unreadable files
    thumbnailReady = Signal(int, str, object)  # generation, class, uint8 (h, w) picture
    failed = Signal(int, str)  # generation, what went wrong (the worker process died...)
    _done = Signal(int, str, object, object)  # generation, job kind, job argument, result (to the UI thread)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.generation = 0
        self._pool: ProcessPoolExecutor | None = None
        self._futures: list[Future] = []
        self._checked = 0
        self._total = 0
        self._unreadable: list[tuple[str, str]] = []
        self._done.connect(self._on_done)

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_exit_with_parent,
                initargs=(os.getpid(),),
            )
        return self._pool

    def _submit(self, generation: int, kind: str, arg: object, fn, *args) -> None:
        try:
            future = self._executor().submit(fn, *args)
        except (BrokenProcessPool, RuntimeError) as exc:
            self._reset_pool()
            self.failed.emit(generation, f"The data check stopped: {exc or type(exc).__name__}.")
            return
        self._futures.append(future)

        def relay(done: Future) -> None:
            if done.cancelled():
                return
            with contextlib.suppress(RuntimeError):  # the wizard closed meanwhile: nobody is listening
                self._done.emit(generation, kind, arg, done)

        future.add_done_callback(relay)

    def _reset_pool(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def inspect(self, config: TrainConfig, site: bool = False) -> int:
        """Check ``config``'s data from scratch (earlier requests are dropped); returns the generation.
        ``site``: a site's films for recalibration (``inspection.site_report``: labels and counts, no
        splits) instead of the training dry run."""
        self.cancel()
        self.generation += 1
        job = inspection.site_report if site else inspection.dry_run
        self._submit(self.generation, "report", None, job, config)
        return self.generation

    def cancel(self) -> None:
        """Drop queued work; answers still on their way are ignored (their generation is old)."""
        for future in self._futures:
            future.cancel()
        self._futures = []
        self.generation += 1

    def shutdown(self) -> None:
        """End the worker process."""
        self.cancel()
        self._reset_pool()

    @Slot(int, str, object, object)
    def _on_done(self, generation: int, kind: str, arg: object, future: Future) -> None:
        if generation != self.generation:
            return
        try:
            result = future.result()
        except BrokenProcessPool:
            self._reset_pool()
            self.failed.emit(
                generation,
                "The data check's helper process ended unexpectedly; choose the data again to retry.",
            )
            return
        except Exception as exc:  # a bug in a check must not take the wizard down
            self.failed.emit(generation, f"The data check failed: {exc}")
            return
        if kind == "report":
            self._report(generation, result)
        elif kind == "check":
            self._checked += int(arg)  # type: ignore[call-overload]
            self._unreadable += list(result)
            self.checkProgress.emit(generation, self._checked, self._total)
            if self._checked >= self._total:
                self.checkFinished.emit(generation, list(self._unreadable))
        elif kind == "thumbnail" and result is not None:
            self.thumbnailReady.emit(generation, str(arg), result)

    def _report(self, generation: int, report: inspection.DataReport) -> None:
        self.reportReady.emit(generation, report)
        if not report.usable:
            return
        for cls, paths in inspection.sample_paths(report, THUMBNAILS).items():
            for path in paths:
                self._submit(generation, "thumbnail", cls, inspection.thumbnail, path)
        files = inspection.files_to_check(report)
        self._checked, self._total, self._unreadable = 0, len(files), []
        if not files:
            self.checkFinished.emit(generation, [])
        for start in range(0, len(files), CHUNK):
            chunk = files[start : start + CHUNK]
            self._submit(generation, "check", len(chunk), inspection.check_files, chunk)
