"""A dataset checked the way a person needs before training: the engine's dry run (counts per split and
class, patients) turned into sentences, patient leakage named, every file test-decoded with the reason it
cannot be read, and a few thumbnails per class.

Qt-free and picklable: a front end runs these in another process (``gui.wizard``) so a slow folder or a
decoder that holds the GIL never freezes it. Problems that stop training are ``DataReport.problems``; what a
person should know but may train with is ``DataReport.notes``. Both are plain sentences, never codes.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from xrayviewer.imaging import ImageError, open_image
from xrayviewer.imaging.lut import render, to_uint8
from xrayviewer.training.config import ConfigError, TrainConfig
from xrayviewer.training.sources import SPLITS, DatasetError, read_samples
from xrayviewer.training.splits import patient_leaks

IMBALANCE_NOTE = 1.5  # largest / smallest class at which imbalance is mentioned
FEW_VALIDATION = 20  # validation films per class below which thresholds are called noisy
KERMANY_PATIENTS = r"^(person\d+|NORMAL\d*-IM-\d+|IM-\d+)"  # patient ids in Kermany-style file names


@dataclass(frozen=True)
class FileRef:
    """One image of the dataset: where it is, its split (after the engine's carving) and its classes."""

    path: str
    split: str
    labels: tuple[str, ...]


@dataclass
class DataReport:
    """What the dry run found: usable (``problems`` empty) or not, in sentences."""

    problems: list[str] = field(default_factory=list)  # each stops training
    notes: list[str] = field(default_factory=list)  # worth knowing, not blocking
    classes: list[str] = field(default_factory=list)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # split -> class -> images
    images: dict[str, int] = field(default_factory=dict)  # split -> images
    patients: dict[str, int] = field(default_factory=dict)  # split -> patients
    files: list[FileRef] = field(default_factory=list)
    leaks: dict[str, list[str]] = field(default_factory=dict)  # patient -> splits

    @property
    def usable(self) -> bool:
        """True when the engine can train on this data as configured."""
        return not self.problems

    def total(self, cls: str) -> int:
        """Images of class ``cls`` over all splits."""
        return sum(row.get(cls, 0) for row in self.counts.values())


def dry_run(config: TrainConfig) -> DataReport:
    """The engine's dry run (``training.data.inspect_dataset``) as a :class:`DataReport`; never raises for
    bad data or settings: they become ``problems``."""
    from xrayviewer.training.data import _load_samples, inspect_dataset

    report = DataReport()
    try:
        config.validate()
        raw, classes, _ = read_samples(config.data, config.classes, config.task)
        report.classes = list(classes)
        if any(s.split for s in raw):
            report.leaks = patient_leaks(raw)
            if report.leaks:
                report.problems.append(leak_sentence(report.leaks))
                return report
        summary = inspect_dataset(config)
        samples, _, _ = _load_samples(config)
    except (ConfigError, DatasetError) as exc:
        report.problems.append(plain(str(exc)))
        return report
    report.classes = list(summary.classes)
    report.counts = {s: dict(summary.counts.get(s, {})) for s in SPLITS}
    report.images = {s: summary.images.get(s, 0) for s in SPLITS}
    report.patients = {s: summary.patients.get(s, 0) for s in SPLITS}
    report.files = [FileRef(str(s.path), s.split, tuple(s.labels)) for s in samples]
    report.notes = _notes(config, summary, raw)
    missing = len(summary.unreadable)
    if missing:
        first = summary.unreadable[0][0]
        report.notes.append(
            f"{missing} listed image{'s are' if missing > 1 else ' is'} missing and will be "
            f"left out (e.g. {first})."
        )
    return report


def _notes(config: TrainConfig, summary, raw) -> list[str]:
    notes = []
    given = Counter(s.split for s in raw)
    if not any(given[k] for k in SPLITS):
        notes.append(
            f"No train/val/test split is given: {config.split.val_fraction:.0%} of the patients are drawn "
            f"for validation and {config.split.test_fraction:.0%} for testing, by patient and balanced by "
            "class "
            f"(seed {config.seed})."
        )
    elif 0 < given["val"] < config.split.min_given_val:
        notes.append(
            f"The given validation split has only {given['val']} images: they go back into training and "
            f"{config.split.val_fraction:.0%} of the training patients are drawn for validation instead."
        )
    if config.task != "multilabel":
        totals = {c: sum(row.get(c, 0) for row in summary.counts.values()) for c in summary.classes}
        big, small = max(totals, key=totals.get), min(totals, key=totals.get)
        if totals[small] and totals[big] / totals[small] >= IMBALANCE_NOTE:
            notes.append(
                f"The classes are imbalanced: {totals[big]} {big} against {totals[small]} {small} images "
                f"({totals[big] / totals[small]:.1f} to 1). Class weights (Recipe page, on by default) make "
                "both count equally in the loss, and the threshold is chosen on validation."
            )
    val = summary.counts.get("val", {})
    few = [c for c in summary.classes if 0 < val.get(c, 0) < FEW_VALIDATION]
    if few:
        shown = ", ".join(f"{val[c]} {c}" for c in few)
        notes.append(
            f"Validation has few images ({shown}): the threshold, the calibration and the choice of the best "
            "epoch rest on them, so they will be noisy. 50 or more per class is better."
        )
    test = summary.counts.get("test", {})
    small_test = [c for c in summary.classes if 0 < test.get(c, 0) < 30]
    if small_test:
        notes.append(
            "The test split is small (" + ", ".join(f"{test[c]} {c}" for c in small_test) + "): the test "
            "AUC's 95 % interval will be wide."
        )
    for why, n in summary.dropped.items():
        if n:
            notes.append(f"{n} row{'s' if n > 1 else ''} left out: {why}.")
    return notes


def leak_sentence(leaks: dict[str, list[str]]) -> str:
    """Patient leakage in words, with up to three examples."""
    examples = ", ".join(f"{_bare(p)} ({' and '.join(s)})" for p, s in list(leaks.items())[:3])
    n = len(leaks)
    return (
        f"{n} patient{'s have' if n > 1 else ' has'} images in more than one split, e.g. {examples}. A model "
        "tested on a patient it was trained on looks better than it is: put each patient's images in one "
        "split only. If patient IDs restart in each split (as in the Kermany data), tick “Patient IDs "
        "restart in each split”."
    )


def _bare(patient: str) -> str:
    return patient.split(":", 1)[1] if ":" in patient and patient.split(":", 1)[0] in SPLITS else patient


_PLAIN: list[tuple[str, str]] = [
    (
        r"only one class \('(.+)'\) found: a classifier needs at least two",
        r"Only one class was found (“\1”). A model needs images of at least two classes, each class in its "
        r"own subfolder (for example normal/ and pneumonia/).",
    ),
    (r"data folder not found: (.+)", r"The folder \1 does not exist."),
    (
        r"no images found under (.+) \(expected .*\)",
        r"No images were found in \1. Put each class's images in its own subfolder (\1/normal/…, "
        r"\1/pneumonia/…), optionally inside train/, val/ and test/ folders.",
    ),
    (
        r"the (\w+) split is empty \((\d+) images\).*",
        r"The \1 split would be empty: \2 images are too few to set aside training, validation and test "
        r"images by patient. Add images (a few dozen per class at least).",
    ),
    (
        r"(\d+) of (\d+) images are missing or unreadable \(e\.g\. (.+?): (.+)\); check .*",
        r"\1 of \2 images are missing or cannot be read (for example \3: \4). Check the image folder and the "
        r"image column.",
    ),
    (
        r"(\d+) images have no split while others do.*",
        r"\1 images lie outside the train/val/test folders while others are inside them: put every image in "
        r"one of them, or none.",
    ),
    (
        r"(.+): missing column\(s\) (.+); columns are (.*)",
        r"\1 has no column \2 (its columns are \3): choose the columns again.",
    ),
    (r"CSV file not found: (.+)", r"The file \1 does not exist."),
    (r"image folder not found: (.+)", r"The image folder \1 does not exist."),
    (
        r"no usable images: every row was dropped \((.*)\)",
        r"No image can be used: every row was left out (\1).",
    ),
    (
        r"class '(.+)' has no images \(classes: (.+); labels found: (.+)\)",
        r"No image has the class “\1” (classes: \2; labels found: \3).",
    ),
    (
        r"data\.patient_pattern is not a valid regular expression \((.+)\)",
        r"The patient ID pattern is not a valid regular expression (\1).",
    ),
]


def plain(message: str) -> str:
    """An engine error as a sentence for a person who never edited a config file."""
    for pattern, replacement in _PLAIN:
        if re.fullmatch(pattern, message, flags=re.DOTALL):
            return re.sub(pattern, replacement, message, flags=re.DOTALL)
    text = message.strip()
    text = text[:1].upper() + text[1:]
    return text if text.endswith(".") else text + "."


def check_files(paths: list[str]) -> list[tuple[str, str]]:
    """The files among ``paths`` that cannot be decoded, each with the reason (``imaging.open_image``,
    exactly what training will meet)."""
    bad = []
    for path in paths:
        try:
            open_image(path)
        except ImageError as exc:
            bad.append((path, str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__))
        except OSError as exc:
            bad.append((path, exc.strerror or type(exc).__name__))
    return bad


CHECK_LIMIT = 2000  # files test-decoded on the data page; a larger set is checked on an even sample


def files_to_check(report: DataReport, limit: int = CHECK_LIMIT) -> list[str]:
    """Every file, or an evenly spread sample of ``limit`` of them for a large set (training itself then
    finds the rest: it skips unreadable files and names them in its log)."""
    paths = [f.path for f in report.files]
    if len(paths) <= limit:
        return paths
    step = len(paths) / limit
    return [paths[int(i * step)] for i in range(limit)]


def readability(
    report: DataReport,
    unreadable: list[tuple[str, str]],
    checked: int | None = None,
) -> tuple[list[str], list[str]]:
    """Problems and notes about the files that cannot be read, of ``checked`` test-decoded files (None:
    all). More than half unreadable, or every checked training image of a class, stops training: the
    engine would refuse."""
    total = len(report.files)
    checked = total if checked is None else checked
    sample = (
        (
            f" (in an even sample of {checked} of the {total} images; training checks the rest and leaves "
            "out what it cannot read)"
        )
        if checked < total
        else ""
    )
    if not unreadable:
        return [], ([f"All {checked} images checked can be read{sample}."] if sample else [])
    bad = {p for p, _ in unreadable}
    examples = "; ".join(f"{_short(p)}: {why}" for p, why in unreadable[:3])
    more = f" and {len(unreadable) - 3} more" if len(unreadable) > 3 else ""
    if len(unreadable) * 2 > checked:
        return [
            f"{len(unreadable)} of {checked} images cannot be read ({examples}{more}){sample}. Is this the "
            "right folder?"
        ], []
    problems = []
    seen = set(files_to_check(report, checked)) if sample else {f.path for f in report.files}
    for cls in report.classes:
        train = [f for f in report.files if f.split == "train" and cls in f.labels and f.path in seen]
        if train and all(f.path in bad for f in train):
            problems.append(f"None of the {len(train)} training images of “{cls}” can be read ({examples}).")
    n = len(unreadable)
    note = f"{n} image{'s' if n > 1 else ''} cannot be read and will be left out: {examples}{more}{sample}."
    return problems, [note]


def _short(path: str) -> str:
    p = Path(path)
    return f"{p.parent.name}/{p.name}"


def unreadable_counts(report: DataReport, unreadable: list[tuple[str, str]]) -> dict[str, dict[str, int]]:
    """split -> class -> unreadable images."""
    bad = {p for p, _ in unreadable}
    counts: dict[str, dict[str, int]] = {}
    for f in report.files:
        if f.path in bad:
            for label in f.labels:
                row = counts.setdefault(f.split, {})
                row[label] = row.get(label, 0) + 1
    return counts


def thumbnail(path: str, height: int = 96) -> np.ndarray | None:
    """A small uint8 picture of the image with its default window (None when it cannot be read)."""
    import cv2

    try:
        image = open_image(path)
    except (ImageError, OSError):
        return None
    pixels = to_uint8(render(image))
    if pixels.ndim == 3:
        pixels = pixels[..., 0]
    rows, cols = pixels.shape[:2]
    width = max(1, round(cols * height / max(rows, 1)))
    return np.ascontiguousarray(cv2.resize(pixels, (width, height), interpolation=cv2.INTER_AREA))


def sample_paths(report: DataReport, per_class: int = 6) -> dict[str, list[str]]:
    """A few images per class for the thumbnail strip, spread evenly over the class's images."""
    out = {}
    for cls in report.classes:
        files = [f.path for f in report.files if cls in f.labels]
        step = max(1, len(files) // per_class)
        out[cls] = files[::step][:per_class]
    return out


def csv_preview(path: str, rows: int = 5) -> tuple[list[str], list[list[str]]]:
    """The header and the first rows of a CSV (for choosing the columns); raises OSError / csv.Error."""
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        header = next(reader, [])
        body = [row for _, row in zip(range(rows), reader, strict=False)]
    return header, body


def guess_columns(header: list[str]) -> dict[str, str]:
    """Likely image, label, patient and split columns by name ("" when none fits)."""
    lower = {h.lower(): h for h in header}

    def pick(*names: str) -> str:
        for name in names:
            for key, original in lower.items():
                if key == name or key.replace(" ", "_") == name:
                    return original
        for name in names:
            for key, original in lower.items():
                if name in key:
                    return original
        return ""

    return {
        "path": pick("file", "path", "image", "filename", "image index", "image_index"),
        "label": pick("label", "finding labels", "findings", "class", "diagnosis", "target"),
        "patient": pick("patient", "patient_id", "patient id", "subject"),
        "split": pick("split", "fold", "set"),
    }


def suggest_patient_pattern(report: DataReport) -> str:
    """Kermany's pattern when most file names follow it (else "")."""
    names = [Path(f.path).name for f in report.files[:500]]
    hits = sum(bool(re.match(KERMANY_PATIENTS, n)) for n in names)
    return KERMANY_PATIENTS if names and hits * 10 >= len(names) * 9 else ""


SITE = "all"  # the one "split" of a site's films (recalibration uses them all)


def site_report(config: TrainConfig) -> DataReport:
    """A site's labelled films for recalibration: labels found and images per label, every file listed
    under :data:`SITE`; no split is drawn (all of them are used)."""
    report = DataReport()
    try:
        samples, classes, dropped = read_samples(config.data, config.classes, config.task)
    except DatasetError as exc:
        report.problems.append(plain(str(exc)))
        return report
    report.classes = list(classes)
    report.counts = {SITE: dict(Counter(label for s in samples for label in s.labels))}
    report.images = {SITE: len(samples)}
    report.patients = {SITE: len({s.patient for s in samples})}
    report.files = [FileRef(str(s.path), SITE, tuple(s.labels)) for s in samples]
    missing = [f.path for f in report.files if not Path(f.path).is_file()]
    if missing and len(missing) * 2 > len(report.files):
        report.problems.append(
            f"{len(missing)} of {len(report.files)} listed images are missing (e.g. "
            f"{missing[0]}). Check the image folder and the image column."
        )
    report.notes += [f"{n} row{'s' if n > 1 else ''} left out: {why}." for why, n in dropped.items() if n]
    return report
