"""Training checkpoints written atomically (temp file, fsync, replace) so a crash never leaves half a file."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

LAST = "last.pt"
BEST = "best.pt"


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable, or could not be written."""


TEMP_SUFFIX = ".tmp"


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` with torch.save to a temp file beside ``path``, then atomically replace ``path``.

    A process killed at any moment leaves ``path`` as it was or complete, never half-written (at worst a
    hidden ``.NAME.*.tmp`` beside it, removed by :func:`remove_stale_temp_files`). A write that fails (a full
    disk, a read-only folder) raises ``CheckpointError`` naming the file and the cause, ``path`` untouched."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
        with os.fdopen(fd, "wb") as fh:
            torch.save(state, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        _sync_folder(path.parent)
    except OSError as exc:
        _discard(tmp)
        reason = exc.strerror or str(exc)
        kept = f"the previous {path.name} is intact" if path.is_file() else f"no {path.name} was written"
        raise CheckpointError(f"could not write checkpoint {path.name} in {path.parent}: {reason} ({kept})"
                              ) from exc
    except BaseException:
        _discard(tmp)
        raise
    return path


def _discard(tmp: str | None) -> None:
    if tmp is not None:
        with contextlib.suppress(OSError):
            Path(tmp).unlink(missing_ok=True)


def _sync_folder(folder: Path) -> None:
    """fsync the folder so the rename itself survives a power cut (POSIX; a no-op elsewhere)."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_stale_temp_files(folder: str | Path) -> int:
    """Delete the temp files a killed ``save_checkpoint`` left in ``folder``; returns how many."""
    removed = 0
    for stale in Path(folder).glob(f".*{TEMP_SUFFIX}"):
        with contextlib.suppress(OSError):
            stale.unlink()
            removed += 1
    return removed


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by save_checkpoint (tensors land on the CPU)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # a truncated or foreign file
        raise CheckpointError(f"cannot read checkpoint {path}: {exc}") from None
