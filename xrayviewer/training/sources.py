"""Training data sources (class folders, CSV) turned into labelled samples, and the dataset summary."""

from __future__ import annotations

import csv
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

from xrayviewer.imaging.files import is_image_file
from xrayviewer.training.config import DataConfig

SPLIT_NAMES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
    "testing": "test",
}
SPLITS = ("train", "val", "test")


class DatasetError(ValueError):
    """The dataset cannot be trained on; the message says what to fix."""


@dataclass(frozen=True)
class Sample:
    """One image with its class names, patient key and split ("" until assigned)."""

    path: Path
    labels: tuple[str, ...]
    patient: str
    split: str = ""
    stratum: str = ""  # what split carving stratifies by when not the labels (data.stratify_column)
    unknown: tuple[str, ...] = ()  # classes whose label is unknown for this image (data.unknown_column)


@dataclass
class DatasetSummary:
    """Counts per split and class, plus what was left out and why (for --dry-run and the report)."""

    classes: list[str]
    counts: dict[str, dict[str, int]]  # split -> class -> images
    patients: dict[str, int]  # split -> distinct patients
    dropped: dict[str, int] = field(default_factory=dict)  # reason -> rows
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    images: dict[str, int] = field(default_factory=dict)  # split -> images (a multilabel image counts once)

    def lines(self) -> list[str]:
        """Human-readable table."""
        width = max([len(c) for c in self.classes] + [8])
        out = [
            f"{'split':<6} {'images':>7} {'patients':>8}  " + " ".join(f"{c:>{width}}" for c in self.classes)
        ]
        for split in SPLITS:
            row = self.counts.get(split, {})
            out.append(
                f"{split:<6} {self.images.get(split, 0):>7} {self.patients.get(split, 0):>8}  "
                + " ".join(f"{row.get(c, 0):>{width}}" for c in self.classes)
            )
        out += [f"dropped: {n} rows ({why})" for why, n in self.dropped.items() if n]
        shown = 10
        out += [f"unreadable (skipped): {p} ({why})" for p, why in self.unreadable[:shown]]
        if len(self.unreadable) > shown:
            out.append(
                f"... and {len(self.unreadable) - shown} more unreadable images (listed in the report)"
            )
        return out


@dataclass
class LabelledRows:
    """Samples read from a source, with counts of rows that could not be labelled."""

    samples: list[Sample]
    dropped: dict[str, int]


def _label_of(
    raw: list[str], config: DataConfig, classes: list[str], multilabel: bool
) -> tuple[str, ...] | str:
    """Map raw labels to class names (label_map first, then names equal to a class); returns the
    labels, or the reason the row is dropped."""
    mapped = []
    for value in raw:
        name = config.label_map.get(value, value)
        if name and (not classes or name in classes):
            mapped.append(name)
    mapped = list(dict.fromkeys(mapped))
    if multilabel:
        return tuple(mapped)
    if not mapped:
        return (config.default_class,) if config.default_class else "no label maps to a class"
    if len(mapped) > 1:
        return "more than one class for a single-label task"
    return tuple(mapped)


def _pattern_labels(name: str, patterns: dict[str, str]) -> list[str]:
    for cls, pattern in patterns.items():
        if re.search(pattern, name):
            return [cls]
    return []


def read_folders(config: DataConfig, classes: list[str], multilabel: bool) -> LabelledRows:
    """Read ``root/[split/]class/*``; split folders (train/val/test) are honoured when present."""
    root = Path(config.folders).expanduser()
    if not root.is_dir():
        raise DatasetError(f"data folder not found: {root}")
    subdirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    split_dirs = [p for p in subdirs if p.name.lower() in SPLIT_NAMES]
    tops = [(SPLIT_NAMES[p.name.lower()], p) for p in split_dirs] if split_dirs else [("", root)]
    samples: list[Sample] = []
    dropped: Counter[str] = Counter()
    for split, top in tops:
        for class_dir in sorted(p for p in top.iterdir() if p.is_dir() and not p.name.startswith(".")):
            for path in sorted(class_dir.rglob("*")):
                if not is_image_file(path):
                    continue
                raw = (
                    _pattern_labels(path.name, config.filename_patterns)
                    if config.filename_patterns
                    else [class_dir.name]
                )
                labels = _label_of(raw, config, classes, multilabel)
                if isinstance(labels, str):
                    dropped[labels] += 1
                    continue
                samples.append(Sample(path, labels, patient=_folder_patient(path, root, config), split=split))
    if not samples and not dropped:
        raise DatasetError(f"no images found under {root} (expected {root}/[train/]<class>/<image>)")
    return LabelledRows(samples, dict(dropped))


def _folder_patient(path: Path, root: Path, config: DataConfig) -> str:
    """The patient of a file in a class folder: ``data.patient_pattern``'s first group (or whole match) on
    the file name, else the file itself (its path under the root)."""
    if config.patient_pattern:
        match = re.search(config.patient_pattern, path.name)
        if match:
            return match.group(1) if match.groups() and match.group(1) else match.group(0)
    return str(path.relative_to(root))


def read_csv(config: DataConfig, classes: list[str], multilabel: bool) -> LabelledRows:
    """Read a CSV: path column, label column (optionally ``|``-separated), optional patient/split columns."""
    csv_path = Path(config.csv).expanduser()
    if not csv_path.is_file():
        raise DatasetError(f"CSV file not found: {csv_path}")
    image_dir = Path(config.image_dir).expanduser() if config.image_dir else csv_path.parent
    if not image_dir.is_dir():
        raise DatasetError(f"image folder not found: {image_dir}")
    with open(csv_path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        columns = reader.fieldnames or []
        needed = [config.path_column] + ([] if config.filename_patterns else [config.label_column])
        needed += [c for c in (config.patient_column, config.split_column, config.stratify_column,
                               config.unknown_column) if c]
        missing = [c for c in needed if c not in columns]
        if missing:
            raise DatasetError(
                f"{csv_path.name}: missing column(s) {', '.join(missing)}; columns are {', '.join(columns)}"
            )
        rows = list(reader)
    samples: list[Sample] = []
    dropped: Counter[str] = Counter()
    for row in rows:
        rel = row[config.path_column].strip()
        if config.filename_patterns:
            raw = _pattern_labels(Path(rel).name, config.filename_patterns)
        else:
            raw = _cell_labels(row[config.label_column], config)
        labels = _label_of([r for r in raw if r], config, classes, multilabel)
        if isinstance(labels, str):
            dropped[labels] += 1
            continue
        split = ""
        if config.split_column:
            given = row[config.split_column].strip().lower()
            if given not in SPLIT_NAMES:
                dropped[f"unknown split value {given!r}"] += 1
                continue
            split = SPLIT_NAMES[given]
        patient = row[config.patient_column].strip() if config.patient_column else rel
        stratum = row[config.stratify_column].strip() if config.stratify_column else ""
        unknown = _unknown_of(row[config.unknown_column], config, classes) if config.unknown_column else ()
        samples.append(Sample(image_dir / rel, tuple(c for c in labels if c not in unknown), patient=patient
                              or rel, split=split, stratum=stratum, unknown=unknown))
    return LabelledRows(samples, dict(dropped))


def _cell_labels(text: str, config: DataConfig) -> list[str]:
    """The raw labels in a CSV cell (split at ``label_separator`` when set)."""
    text = text.strip()
    return [t.strip() for t in text.split(config.label_separator)] if config.label_separator else [text]


def _unknown_of(text: str, config: DataConfig, classes: list[str]) -> tuple[str, ...]:
    """The classes named in an unknown-label cell (label_map applied; names outside ``classes`` ignored)."""
    names = (config.label_map.get(r, r) for r in _cell_labels(text, config) if r)
    return tuple(dict.fromkeys(n for n in names if n and (not classes or n in classes)))


def read_samples(config: DataConfig, classes: list[str], task: str) -> tuple[list[Sample], list[str], dict]:
    """Read the configured source; returns samples, the class list (discovered when not given) and drops.

    Raises DatasetError for a missing source, no images, an empty class or a single class.
    """
    multilabel = task == "multilabel"
    if classes:
        named = [*config.label_map.values(), *config.filename_patterns, config.default_class]
        stray = sorted({n for n in named if n and n not in classes})
        if stray:
            raise DatasetError(
                f"label mapping names {stray[0]!r}, which is not in classes ({', '.join(classes)})"
            )
    source = (
        read_folders(config, classes, multilabel) if config.folders else read_csv(config, classes, multilabel)
    )
    samples = source.samples
    if not samples:
        raise DatasetError(
            "no usable images: every row was dropped ("
            + ", ".join(f"{n} {why}" for why, n in source.dropped.items())
            + ")"
        )
    if config.patient_scope == "split":
        samples = [replace(s, patient=f"{s.split}:{s.patient}") for s in samples]
    found = sorted({label for s in samples for label in s.labels})
    classes = list(classes) or found
    counts = Counter(label for s in samples for label in s.labels)
    empty = [c for c in classes if counts[c] == 0]
    if empty:
        raise DatasetError(
            f"class {empty[0]!r} has no images (classes: {', '.join(classes)}; "
            f"labels found: {', '.join(found) or 'none'})"
        )
    if task != "multilabel" and len(classes) < 2:
        raise DatasetError(f"only one class ({classes[0]!r}) found: a classifier needs at least two")
    if task == "binary" and len(classes) != 2:
        raise DatasetError(f"a binary task needs exactly two classes [negative, positive]; got {classes}")
    return samples, classes, source.dropped


def summarize(
    samples: list[Sample],
    classes: list[str],
    dropped: dict[str, int] | None = None,
    unreadable: list[tuple[str, str]] | None = None,
) -> DatasetSummary:
    """Counts per split and class and distinct patients per split."""
    counts: dict[str, dict[str, int]] = {}
    patients: dict[str, set[str]] = {}
    for s in samples:
        row = counts.setdefault(s.split, {})
        for label in s.labels:
            row[label] = row.get(label, 0) + 1
        patients.setdefault(s.split, set()).add(s.patient)
    patient_counts = {k: len(v) for k, v in patients.items()}
    images = dict(Counter(s.split for s in samples))
    return DatasetSummary(classes, counts, patient_counts, dict(dropped or {}), list(unreadable or []),
                          images)
