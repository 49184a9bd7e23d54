"""Decoded + preprocessed images cached on disk (keyed by file content and recipe) and preloaded in memory.

Each image is decoded once with ``imaging.open_image`` and turned into the model input by
``engine.preprocess.preprocess`` (the inference path), then stored as float16 ``.npy`` under
``<cache>/<recipe hash>/<content hash>.npy``, and held in memory as float32 (Kermany at 224 px: 1.1 GB).
Training then indexes that one tensor per batch: data loading costs what a bare loop over in-memory tensors
costs.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import platformdirs
import torch

from xrayviewer.engine.preprocess import PreprocessRecipe, preprocess
from xrayviewer.imaging import ImageError, open_image


def default_cache_dir() -> Path:
    """The per-user cache folder for preprocessed training images."""
    return platformdirs.user_cache_path("xrayviewer", appauthor=False) / "preprocessed"


def recipe_key(recipe: PreprocessRecipe) -> str:
    """A short stable hash of the recipe (any change to it invalidates the cache)."""
    return hashlib.sha256(json.dumps(recipe.to_dict(), sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class PreloadedImages:
    """Model inputs for the readable samples, in sample order, and the files that could not be read."""

    images: torch.Tensor  # float32 (N, 1, S, S), xrv scale (float16 on disk)
    kept: list[int]  # index into the input sample list for each row of ``images``
    unreadable: list[tuple[str, str]]  # (path, reason)


def _entry(folder: Path, path: Path) -> tuple[Path | None, str]:
    """The cache file for ``path`` (content sha256), or None and why the file cannot be read."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        return None, f"cannot read file ({exc.strerror or type(exc).__name__})"
    return folder / f"{hashlib.sha256(data).hexdigest()}.npy", ""


class _CacheFill(torch.utils.data.Dataset):
    """Decodes, preprocesses and stores the cache misses (run in DataLoader worker processes)."""

    def __init__(self, jobs: list[tuple[int, Path, Path]], recipe: PreprocessRecipe) -> None:
        self.jobs, self.recipe = jobs, recipe

    def __len__(self) -> int:
        return len(self.jobs)

    def __getitem__(self, item: int) -> tuple[int, np.ndarray | None, str]:
        index, path, target = self.jobs[item]
        try:
            array, _ = preprocess(open_image(path), self.recipe)
        except ImageError as exc:
            return index, None, str(exc)
        array = array.astype(np.float16)
        fd, tmp = tempfile.mkstemp(suffix=".tmp", dir=target.parent)
        with os.fdopen(fd, "wb") as fh:
            np.save(fh, array)
        os.replace(tmp, target)
        return index, array, ""


def preload(
    paths: list[Path],
    recipe: PreprocessRecipe,
    cache_dir: str | Path | None = None,
    workers: int = 2,
    progress: Callable[[int, int], None] | None = None,
) -> PreloadedImages:
    """Every readable image as one float32 tensor; unreadable files are listed, never raised.

    Cache hits are read in this process; misses are decoded by ``workers`` processes (0: in this one).
    """
    folder = Path(cache_dir or default_cache_dir()) / recipe_key(recipe)
    folder.mkdir(parents=True, exist_ok=True)
    size = recipe.size
    images = torch.empty((len(paths), 1, size, size), dtype=torch.float32)
    ok = np.zeros(len(paths), dtype=bool)
    unreadable: list[tuple[str, str]] = []
    misses: list[tuple[int, Path, Path]] = []
    done = 0

    def record(index: int, array: np.ndarray | torch.Tensor | None, error: str) -> None:
        nonlocal done
        if array is None:
            unreadable.append((str(paths[index]), error))
        else:
            images[index] = torch.as_tensor(np.asarray(array))
            ok[index] = True
        done += 1
        if progress is not None and (done % 64 == 0 or done == len(paths)):
            progress(done, len(paths))

    for index, path in enumerate(paths):
        target, error = _entry(folder, path)
        if target is None:
            record(index, None, error)
            continue
        try:
            record(index, np.load(target), "")
        except (OSError, ValueError):  # not cached yet, or a damaged entry: (re)build it
            misses.append((index, path, target))
    if misses:
        loader = torch.utils.data.DataLoader(
            _CacheFill(misses, recipe), batch_size=None, num_workers=workers if len(misses) > 64 else 0
        )
        for index, array, error in loader:
            record(int(index), array, error)
    kept = [int(i) for i in np.flatnonzero(ok)]
    return PreloadedImages(images[kept] if len(kept) < len(paths) else images, kept, unreadable)
