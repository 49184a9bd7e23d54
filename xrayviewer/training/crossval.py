"""k-fold cross-validation by patient: one training run per fold, the folds' test predictions pooled.

Small sets (NIH cardiomegaly: 55 positives) give one test split too few positives for a useful confidence
interval; pooling the out-of-fold predictions of k runs tests every image once, with the same recipe.
"""

from __future__ import annotations

import copy
import csv
import json
import threading
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from xrayviewer.engine.bundle import read_bundle, write_card
from xrayviewer.training.config import ConfigError, TrainConfig
from xrayviewer.training.events import Callback
from xrayviewer.training.metrics import evaluate, scored_classes
from xrayviewer.training.trainer import RunResult, train

SUMMARY = "crossval.json"


@dataclass
class CrossValResult:
    """The runs of a cross-validation and their pooled summary (also written to ``out_dir/crossval.json``)."""

    status: str  # completed | cancelled
    out_dir: Path
    runs: list[RunResult] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)


def out_of_fold(run_dirs: list[Path], task: str, classes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Labels (class indices, or a 0/1 matrix for multilabel) and scores of every run's test rows."""
    names = scored_classes(task, classes)
    ys, ps = [], []
    for run_dir in run_dirs:
        with open(run_dir / "predictions.csv", newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                if row["split"] != "test":
                    continue
                labels = row["labels"].split("|")
                ps.append([float(row[n]) for n in names])
                if task == "multilabel":
                    ys.append([int(c in labels) for c in classes])
                else:
                    ys.append(classes.index(labels[0]))
    p = np.asarray(ps)
    return np.asarray(ys), (p[:, 0] if task == "binary" else p)


def pooled_summary(runs: list[RunResult], config: TrainConfig, classes: list[str]) -> dict[str, Any]:
    """Per-fold test metrics and the pooled out-of-fold AUC with its bootstrap 95 % interval."""
    y, p = out_of_fold([r.run_dir for r in runs], config.task, classes)
    names = scored_classes(config.task, classes)
    # the engine's own metrics; thresholds differ per fold, so only the threshold-free ones are kept
    pooled = evaluate(config.task, classes, y, p, [0.5] * len(names), config.eval.bootstrap, config.seed)
    keep = ("auc", "auc_ci95", "pr_auc", "positives")
    per_class = {name: {k: v[k] for k in keep} for name, v in pooled["per_class"].items()}
    folds = []
    for fold, run in enumerate(runs):
        test = run.metrics.get("test", {})
        folds.append(
            {
                "fold": fold,
                "run": str(run.run_dir),
                "status": run.status,
                "n": test.get("n"),
                "auc": test.get("auc_macro"),
                "accuracy": test.get("accuracy"),
                "sensitivity": test.get("recall"),
                "specificity": test.get("specificity"),
            }
        )
    aucs = [f["auc"] for f in folds if f["auc"] is not None]
    return {
        "name": config.name,
        "folds": config.split.folds,
        "seed": config.seed,
        "n": len(y),
        "pooled": {"auc_macro": pooled["auc_macro"], "per_class": per_class},
        "fold_auc_mean": float(np.mean(aucs)) if aucs else None,
        "fold_auc_sd": float(np.std(aucs, ddof=1)) if len(aucs) > 1 else None,
        "per_fold": folds,
        "note": "pooled = every image scored once by the fold model that never saw its patient; "
        "thresholds differ per fold, so threshold metrics are per fold",
    }


def cross_validate(
    config: TrainConfig, callbacks: list[Callback] | None = None, cancel: threading.Event | None = None
) -> CrossValResult:
    """Train one run per fold (test = fold 0, 1, ...) into one folder; pool their test predictions."""
    if config.split.folds < 2:
        raise ConfigError("cross-validation needs split.folds >= 2 (--folds K)")
    config.validate()
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    out_dir = Path(config.out).expanduser() / f"{config.name}-cv{config.split.folds}-{stamp}"
    cancel = cancel or threading.Event()
    runs: list[RunResult] = []
    for fold in range(config.split.folds):
        fold_config = copy.deepcopy(config)
        fold_config.split.fold, fold_config.out = fold, str(out_dir)
        run = train(fold_config, callbacks, cancel)
        if run.status == "cancelled":
            return CrossValResult("cancelled", out_dir, runs)
        runs.append(run)
    classes = runs[0].metrics["classes"]
    summary = pooled_summary(runs, config, classes)
    (out_dir / SUMMARY).write_text(json.dumps(summary, indent=2) + "\n")
    for fold, run in enumerate(runs):  # each fold's card also states the estimate across all folds
        _record_in_card(run, fold, summary)
    return CrossValResult("completed", out_dir, runs, summary)


def _record_in_card(run: RunResult, fold: int, summary: dict[str, Any]) -> None:
    bundle = read_bundle(run.bundle_dir)  # type: ignore[arg-type]
    estimate = {
        "folds": summary["folds"],
        "this_fold": fold,
        "n": summary["n"],
        "pooled_auc": summary["pooled"]["auc_macro"],
        "per_class": summary["pooled"]["per_class"],
        "fold_auc_mean": summary["fold_auc_mean"],
        "fold_auc_sd": summary["fold_auc_sd"],
    }
    metrics = {**bundle.card.metrics, "cross_validation": estimate}
    write_card(bundle.path, replace(bundle.card, metrics=metrics))
