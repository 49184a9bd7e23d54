"""Patient-level, stratified, seeded train/val/test splits and the patient-leakage check."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from dataclasses import replace

from xrayviewer.training.config import SplitConfig
from xrayviewer.training.sources import DatasetError, Sample


def patient_leaks(samples: list[Sample]) -> dict[str, list[str]]:
    """Patients whose images sit in more than one split: patient -> sorted splits (empty = no leak)."""
    where: dict[str, set[str]] = defaultdict(set)
    for s in samples:
        where[s.patient].add(s.split)
    return {p: sorted(splits) for p, splits in where.items() if len(splits) > 1}


def check_no_leakage(samples: list[Sample]) -> None:
    """Raise DatasetError if any patient is in two splits."""
    leaks = patient_leaks(samples)
    if leaks:
        example = next(iter(leaks))
        raise DatasetError(
            f"{len(leaks)} patient(s) appear in more than one split, e.g. {example!r} in "
            f"{' and '.join(leaks[example])}; splits must be by patient"
        )


KEEP = ""  # carve(): the patients that stay in their split


def _strata(sample: Sample) -> tuple[str, ...]:
    return (sample.stratum,) if sample.stratum else sample.labels


def carve(pool: list[Sample], fractions: dict[str, float], seed: int) -> list[Sample]:
    """Move whole patients from ``pool`` into the named splits, about ``fraction`` of the images each,
    stratified by each patient's rarest label (or ``Sample.stratum`` where set); the rest keep their split.
    Deterministic for a seed."""
    frequency = Counter(label for s in pool for label in _strata(s))
    by_patient: dict[str, list[Sample]] = defaultdict(list)
    for s in pool:
        by_patient[s.patient].append(s)
    strata: dict[str, list[str]] = defaultdict(list)
    for patient, items in sorted(by_patient.items()):
        labels = {label for s in items for label in _strata(s)}
        strata[min(labels, key=lambda c: (frequency[c], c)) if labels else ""].append(patient)
    rng = random.Random(seed)
    target_of: dict[str, str] = {}
    for _, patients in sorted(strata.items()):
        rng.shuffle(patients)
        total = sum(len(by_patient[p]) for p in patients)
        deficit = {split: fraction * total for split, fraction in fractions.items()}
        deficit[KEEP] = total - sum(deficit.values())
        for patient in patients:  # each patient goes where the most images are still missing
            split = max(deficit, key=deficit.__getitem__)
            deficit[split] -= len(by_patient[patient])
            if split != KEEP:
                target_of[patient] = split
    return [replace(s, split=target_of.get(s.patient, s.split)) for s in pool]


def fold_test_split(pool: list[Sample], folds: int, fold: int, seed: int) -> list[Sample]:
    """Deal whole patients into ``folds`` stratified folds (seeded); fold ``fold`` becomes the test split, the
    others train. A seed gives the same folds for every ``fold``, so the test splits partition the data."""
    last = f"fold{folds - 1}"  # the patients carve() keeps where they are
    shares = {f"fold{i}": 1 / folds for i in range(folds - 1)}
    dealt = carve([replace(s, split=last) for s in pool], shares, seed)
    return [replace(s, split="test" if s.split == f"fold{fold}" else "train") for s in dealt]


def assign_splits(samples: list[Sample], config: SplitConfig, seed: int) -> list[Sample]:
    """Honour given splits; carve validation (and test when missing) from train by patient; with
    ``config.folds`` the test split is one cross-validation fold and validation is carved from the others.

    A given validation split smaller than ``config.min_given_val`` is merged into train and re-carved
    (Kermany's val has 16 images). Raises DatasetError if a split ends up empty or a patient leaks.
    """
    given = Counter(s.split for s in samples)
    if config.folds:
        if any(given[k] for k in ("train", "val", "test")):
            raise DatasetError("split.folds needs data without given splits (cross-validation deals its own)")
        dealt = fold_test_split(samples, config.folds, config.fold, seed)
        train = [s for s in dealt if s.split == "train"]
        out = [s for s in dealt if s.split == "test"] + carve(train, {"val": config.val_fraction}, seed)
    elif not any(given[k] for k in ("train", "val", "test")):
        pool = [replace(s, split="train") for s in samples]
        out = carve(pool, {"test": config.test_fraction, "val": config.val_fraction}, seed)
    else:
        if given[""]:
            raise DatasetError(f"{given['']} images have no split while others do; give every image a split")
        merge_val = given["val"] < config.min_given_val
        pool = [replace(s, split="train") if merge_val and s.split == "val" else s for s in samples]
        fractions = {"val": config.val_fraction} if merge_val else {}
        if not given["test"]:
            fractions["test"] = config.test_fraction
        train = [s for s in pool if s.split == "train"]
        out = [s for s in pool if s.split != "train"] + carve(train, fractions, seed)
    counts = Counter(s.split for s in out)
    for split in ("train", "val", "test"):
        if not counts[split]:
            raise DatasetError(
                f"the {split} split is empty ({len(samples)} images); add images or change "
                "split.val_fraction / split.test_fraction"
            )
    check_no_leakage(out)
    return sorted(out, key=lambda s: (("train", "val", "test").index(s.split), str(s.path)))
