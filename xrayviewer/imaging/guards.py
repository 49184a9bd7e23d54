"""Guards at the imaging layer's edges: resource budgets, the native-decoder boundary, warnings and PHI.

Everything a hostile file can do to the process is stopped here, where it arises, with a message that names
the problem:

* **Budgets** are checked from headers, before any pixel is decoded: :data:`MAX_PIXELS` per image (DICOM
  Rows × Columns × Samples, PNG IHDR, JPEG SOF, TIFF IFD) and :data:`MAX_FILE_BYTES` per file.
* **Native decoders** (pylibjpeg's C/Rust plugins, OpenCV with libpng/libtiff/libjpeg) run inside
  :func:`native_decoder`: a Rust ``PanicException`` (a ``BaseException``, so ``except Exception`` misses it,
  and it does not pickle) becomes an :class:`UnreadableImageError`, and what the libraries print on the
  process's stderr (file descriptor 2) is captured and logged at DEBUG, scrubbed, instead of reaching the
  terminal.
* **Warnings** raised while a file is read (pydicom's quote header values: patient name, ID, birth date...)
  are captured by :func:`captured_warnings` and logged at DEBUG with every quoted value removed
  (:func:`scrub`); pydicom's own log records are scrubbed the same way (:func:`install_log_scrubber`).
  Nothing relies on a global warnings filter installed by some other package.

The capture of warnings and of file descriptor 2 is process-wide, so ``open_image`` holds :data:`DECODE_LOCK`
while it reads: decode in parallel with processes (as the viewer and the training cache do), not threads.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile
import threading
import warnings
from collections.abc import Iterator

import numpy as np

from xrayviewer.imaging.errors import UnreadableImageError, UnsupportedImageError

logger = logging.getLogger(__name__)

# The largest real radiographs are about 4k × 4k (a 43 × 43 cm detector at 100 µm: 17 MP) to 7k × 3k
# (long-length spine/leg stitches: 21 MP); mammograms reach 4k × 6k (24 MP). 2^26 pixels (67 MP, e.g.
# 8192 × 8192) admits all of them with room to spare, while its float32 working copies (4 bytes a pixel,
# a few at a time) stay under ~1.5 GB: a 20000 × 20000 "image" (400 MP, 5.5 GB) is refused from its header.
MAX_PIXELS = 2**26
# A file is read into memory whole (DICOM pixel data, raster bytes): 1 GiB is ~50 times the largest
# uncompressed single radiograph (7k × 3k × 16 bit = 42 MB) and bounds what one file can cost.
MAX_FILE_BYTES = 2**30

DECODE_LOCK = threading.RLock()

_QUOTED = re.compile(r"""b?'[^'\n]*'|b?"[^"\n]*"|<[^<>\n]*>""")
_LONG_TOKEN = re.compile(r"\S{65,}")


def megapixels(count: int) -> str:
    """``count`` pixels as a short "N MP" figure for messages."""
    return f"{count / 1e6:.0f} MP" if count >= 10**7 else f"{count / 1e6:.1f} MP"


def check_pixel_budget(pixels: int, described: str) -> None:
    """Refuse an image of more than :data:`MAX_PIXELS` pixels before decoding it; ``described`` says where
    the size came from (e.g. "PNG header gives 20000 × 20000 pixels")."""
    if pixels > MAX_PIXELS:
        raise UnsupportedImageError(
            f"image too large ({megapixels(pixels)}, limit {megapixels(MAX_PIXELS)}): {described}; "
            "refusing to decode it"
        )


def check_file_size(size: int) -> None:
    """Refuse a file larger than :data:`MAX_FILE_BYTES` before reading it."""
    if size > MAX_FILE_BYTES:
        raise UnsupportedImageError(
            f"file too large ({size / 2**20:.0f} MB, limit {MAX_FILE_BYTES / 2**20:.0f} MB): no radiograph "
            "is this big; refusing to read it"
        )


def scrub(text: str) -> str:
    """``text`` with every quoted or bracketed value and every over-long token replaced by "…": what a
    library says about a header value ("Invalid value for VR PN: 'Doe^Jane'") without the value."""
    text = _QUOTED.sub("…", str(text))
    return _LONG_TOKEN.sub("…", text)[:300]


def is_panic(exc: BaseException) -> bool:
    """True for an exception a native extension raised that is neither an ``Exception`` nor one of Python's
    own control-flow ``BaseException``s: pyo3's ``PanicException`` (a Rust panic)."""
    return not isinstance(exc, (Exception, KeyboardInterrupt, SystemExit, GeneratorExit))


@contextlib.contextmanager
def _stderr_captured() -> Iterator[None]:
    """Point file descriptor 2 at a temporary file while native code runs; log what it got, scrubbed."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no usable fd 2 (e.g. a windowed build): nothing to hide
        yield
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(OSError, ValueError, AttributeError):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            noise = sink.read(4096).decode("utf-8", "replace").strip()
            if noise:
                lines = noise.splitlines()
                logger.debug("a decoder printed %d line(s) on stderr (scrubbed): %s", len(lines),
                             scrub(lines[0]))


@contextlib.contextmanager
def native_decoder(failure: str) -> Iterator[None]:
    """Run a native decoder: its stderr output is captured, and a panic (see :func:`is_panic`) becomes
    ``UnreadableImageError(failure)``. Ordinary exceptions pass through for the caller to name."""
    with DECODE_LOCK, _stderr_captured():
        try:
            yield
        except BaseException as exc:
            if not is_panic(exc):
                raise
            logger.debug("decoder panic (%s): %s", type(exc).__name__, scrub(str(exc)))
            raise UnreadableImageError(failure) from None


@contextlib.contextmanager
def captured_warnings() -> Iterator[None]:
    """Record every warning raised inside (whatever global filters say) and log it at DEBUG, scrubbed: the
    text of pydicom's warnings quotes header values, patient data included."""
    with DECODE_LOCK, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        install_log_scrubber()
        try:
            yield
        finally:
            for warning in caught:
                logger.debug("%s while reading (scrubbed): %s", warning.category.__name__,
                             scrub(str(warning.message)))


class _Scrubber(logging.Filter):
    """Rewrites a log record's message with :func:`scrub` (header values removed)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: keep nothing of it but its origin
            message = "(unformattable message)"
        record.msg, record.args = scrub(message), ()
        return True


_SCRUBBER = _Scrubber()


def install_log_scrubber() -> None:
    """Attach the scrubbing filter to pydicom's loggers (``pydicom`` and its children), once each, so that
    their records carry no header values whatever handlers the application installs."""
    names = [name for name in list(logging.root.manager.loggerDict) if name.split(".")[0] == "pydicom"]
    for name in ["pydicom", *names]:
        log = logging.getLogger(name)
        if _SCRUBBER not in log.filters:
            log.addFilter(_SCRUBBER)


def finite_pixels(pixels: np.ndarray, notes: list[str], what: str = "pixel data") -> np.ndarray:
    """``pixels`` with NaN and ±infinity replaced by the lowest finite value (a note says how many), or
    ``UnreadableImageError`` when no value is finite. Integer arrays pass through untouched."""
    if pixels.dtype.kind != "f":
        return pixels
    finite = np.isfinite(pixels)
    if finite.all():
        return pixels
    count = int(finite.size - np.count_nonzero(finite))
    if count == finite.size:
        raise UnreadableImageError(f"{what} holds no finite values: every pixel is NaN or infinity")
    low = pixels[finite].min()
    notes.append(f"{count} of {finite.size} pixels are not finite numbers (NaN or infinity): shown as the "
                 "lowest value")
    return np.where(finite, pixels, low)
