"""The dataset as training needs it: sources → patient-level splits → cached tensors and targets per split."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from xrayviewer.training.cache import preload
from xrayviewer.training.config import TrainConfig
from xrayviewer.training.events import CacheProgress, Callback, Message
from xrayviewer.training.metrics import auc_defined, label_array
from xrayviewer.training.sources import DatasetError, DatasetSummary, Sample, read_samples, summarize
from xrayviewer.training.splits import assign_splits


@dataclass
class SplitData:
    """One split's preprocessed images (float32, CPU) and targets."""

    samples: list[Sample]
    images: torch.Tensor
    targets: torch.Tensor

    def batch(self, index: torch.Tensor, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Images (float32) and targets of the given rows on ``device``: the whole per-batch loading cost."""
        x = self.images[index].to(device, torch.float32, non_blocking=True)
        return x, self.targets[index].to(device, non_blocking=True)


@dataclass
class PreparedData:
    """Everything the loop needs from the dataset."""

    classes: list[str]
    splits: dict[str, SplitData]
    summary: DatasetSummary


def _load_samples(config: TrainConfig) -> tuple[list[Sample], list[str], dict[str, int]]:
    samples, classes, dropped = read_samples(config.data, config.classes, config.task)
    samples = assign_splits(samples, config.split, config.seed)
    if config.data.limit_per_class:
        samples = _limit_per_class(samples, config.data.limit_per_class)
    return samples, classes, dropped


def _limit_per_class(samples: list[Sample], limit: int) -> list[Sample]:
    taken: dict[tuple[str, tuple[str, ...]], int] = {}
    kept = []
    for s in samples:
        key = (s.split, s.labels)
        if taken.get(key, 0) < limit:
            taken[key] = taken.get(key, 0) + 1
            kept.append(s)
    return kept


def inspect_dataset(config: TrainConfig) -> DatasetSummary:
    """The dataset summary (counts per split and class, patients, dropped rows) without decoding images.

    Raises DatasetError for a missing source, empty or single class, empty split or patient leakage.
    """
    config.validate()
    samples, classes, dropped = _load_samples(config)
    missing = [(str(s.path), "file not found") for s in samples if not s.path.is_file()]
    _check_mostly_present(len(missing), len(samples), missing[:1])
    return summarize(samples, classes, dropped, missing)


def _check_mostly_present(missing: int, total: int, example: list[tuple[str, str]]) -> None:
    """More than half the images missing or unreadable is a wrong path, not bad files: stop early."""
    if missing * 2 > total:
        raise DatasetError(
            f"{missing} of {total} images are missing or unreadable (e.g. {example[0][0]}: "
            f"{example[0][1]}); check data.image_dir / the path column"
        )


def targets_for(task: str, classes: list[str], samples: list[Sample]) -> torch.Tensor:
    """Binary: float 0/1 for classes[1]; multiclass: class index; multilabel: float multi-hot (N, K) with NaN
    where the image's label is unknown."""
    if task == "binary":
        return torch.tensor([float(classes[1] in s.labels) for s in samples])
    if task == "multiclass":
        return torch.tensor([classes.index(s.labels[0]) for s in samples], dtype=torch.long)
    rows = [[math.nan if c in s.unknown else float(c in s.labels) for c in classes] for s in samples]
    return torch.tensor(rows).reshape(-1, len(classes))


def prepare_data(config: TrainConfig, emit: Callback) -> PreparedData:
    """Read, split, decode (through the cache) and check the dataset; raises DatasetError before training."""
    samples, classes, dropped = _load_samples(config)
    loaded = preload(
        [s.path for s in samples],
        config.preprocess,
        config.data.cache_dir or None,
        config.data.workers,
        progress=lambda done, total: emit(CacheProgress(done, total)),
    )
    kept = [samples[i] for i in loaded.kept]
    _check_mostly_present(len(loaded.unreadable), len(samples), loaded.unreadable[:1])
    for path, reason in loaded.unreadable:
        emit(Message("warning", f"skipped unreadable image {path}: {reason}"))
    summary = summarize(kept, classes, dropped, loaded.unreadable)
    splits: dict[str, SplitData] = {}
    for name in ("train", "val", "test"):
        rows = [i for i, s in enumerate(kept) if s.split == name]
        if not rows:
            raise DatasetError(f"the {name} split has no readable images")
        part = [kept[i] for i in rows]
        splits[name] = SplitData(part, loaded.images[rows], targets_for(config.task, classes, part))
    train_counts = summary.counts["train"]
    if config.task != "multilabel":
        empty = [c for c in classes if not train_counts.get(c)]
        if empty:
            raise DatasetError(f"class {empty[0]!r} has no readable training images")
    val = splits["val"]
    if not auc_defined(config.task, classes, label_array(config.task, val.targets)):
        raise DatasetError(
            f"the val split ({len(val.samples)} images) lacks a class, so ROC-AUC, thresholds and "
            "calibration cannot be computed; give more validation images (split.val_fraction)"
        )
    return PreparedData(classes, splits, summary)
