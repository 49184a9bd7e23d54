"""Image decoding in separate processes: one pool per purpose, started once, ended with the viewer.

Decoders such as OpenJPEG hold Python's GIL for the whole decode (~120 ms for a 2k×2k JPEG 2000), which
would freeze the UI thread even from a worker thread; so files are decoded in another process and only the
pixels come back. Opened images and folder thumbnails have a process each, so thumbnails never queue ahead
of the image the user asked for.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from xrayviewer.imaging import open_image
from xrayviewer.imaging.image import XRayImage

_pools: dict[str, ProcessPoolExecutor] = {}


def _exit_with_parent(parent_pid: int) -> None:
    """Pool process initializer: end this process when the viewer is gone, even after a crash."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def process_pool(purpose: str = "decode") -> ProcessPoolExecutor:
    """A one-process pool per purpose ("decode" for opened images, "thumbnails" for the folder strip),
    started once and shared, so thumbnails never queue ahead of the image the user asked for."""
    if purpose not in _pools:
        _pools[purpose] = ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_exit_with_parent,
            initargs=(os.getpid(),),
        )
        atexit.register(_pools[purpose].shutdown, wait=False, cancel_futures=True)
    return _pools[purpose]


def warm_up_decoder() -> None:
    """Start the decoder process now so the first image opens without its start-up delay."""
    process_pool().submit(int)


def decode(path: str | Path) -> XRayImage:
    """``imaging.open_image`` run in the decoder process; raises its ``ImageError`` subclasses."""
    return process_pool().submit(open_image, str(path)).result()
