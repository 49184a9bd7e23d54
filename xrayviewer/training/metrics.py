"""Evaluation metrics (scikit-learn), bootstrap AUC confidence intervals and operating thresholds.

Label/score layouts by task: binary ``y`` (N,) in {0, 1} with ``p`` (N,) = P(positive); multiclass
``y`` (N,) class index with ``p`` (N, K) softmax; multilabel ``y`` and ``p`` (N, K), ``y`` float with NaN
where a label is unknown (``data.unknown_column``): each class is scored on the images that know it.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    classification_report,
    confusion_matrix,
    f1_score,
    multilabel_confusion_matrix,
    precision_score,
    recall_score,
    roc_auc_score,
    roc_curve,
)


def _auc(y: np.ndarray, p: np.ndarray) -> float | None:
    """ROC-AUC, or None when only one class is present."""
    return float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else None


def _pr_auc(y: np.ndarray, p: np.ndarray) -> float | None:
    return float(average_precision_score(y, p)) if len(np.unique(y)) == 2 else None


def label_array(task: str, targets: torch.Tensor) -> np.ndarray:
    """Training targets as the metrics take them: class indices / 0-1 ints, multilabel floats with NaN."""
    values = targets.numpy()
    return values.astype(np.float64) if task == "multilabel" else values.astype(int)


def _known(task: str, y: np.ndarray, k: int) -> np.ndarray | slice:
    """Rows whose label of class ``k`` is known (every row outside multilabel)."""
    return np.isfinite(y[:, k]) if task == "multilabel" else slice(None)


def labels_of(task: str, y: np.ndarray, k: int) -> np.ndarray:
    """0/1 labels of scored class ``k`` against the rest (binary: the positive class), on the rows that
    know it."""
    if task == "binary":
        return y.astype(int)
    if task == "multiclass":
        return (y == k).astype(int)
    return y[_known(task, y, k), k].astype(int)


def one_vs_rest(task: str, y: np.ndarray, p: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Binary labels and scores of scored class ``k`` against the rest (rows that know the label)."""
    return labels_of(task, y, k), (p if task == "binary" else p[_known(task, y, k), k])


def scored_classes(task: str, classes: list[str]) -> list[str]:
    """Classes that get their own score: the positive class for binary, all otherwise."""
    return classes[1:] if task == "binary" else list(classes)


def bootstrap_auc_ci(
    y: np.ndarray, p: np.ndarray, n: int = 1000, seed: int = 0
) -> tuple[float, float] | None:
    """95 % percentile bootstrap interval of the ROC-AUC (resamples with one class are skipped)."""
    if n <= 0 or len(np.unique(y)) < 2:
        return None
    rng = np.random.default_rng(seed)
    aucs = []
    for _ in range(n):
        idx = rng.integers(0, len(y), len(y))
        if len(np.unique(y[idx])) == 2:
            aucs.append(roc_auc_score(y[idx], p[idx]))
    if not aucs:
        return None
    low, high = np.percentile(aucs, [2.5, 97.5])
    return float(low), float(high)


def choose_threshold(
    y: np.ndarray, p: np.ndarray, method: str = "youden", target_sensitivity: float = 0.9
) -> float:
    """Operating threshold on scores: max Youden's J (TPR - FPR), or the highest threshold reaching a
    target sensitivity. 0.5 when ``y`` has one class."""
    if len(np.unique(y)) < 2:
        return 0.5
    fpr, tpr, thresholds = roc_curve(y, p, drop_intermediate=False)
    idx = int(np.argmax(tpr >= target_sensitivity)) if method == "sensitivity" else int(np.argmax(tpr - fpr))
    return float(min(thresholds[idx], 1.0))


def predicted_labels(task: str, p: np.ndarray, thresholds: list[float]) -> np.ndarray:
    """Decisions: threshold for binary/multilabel, argmax for multiclass."""
    if task == "multiclass":
        return p.argmax(axis=1)
    return (p >= np.asarray(thresholds, dtype=p.dtype)).astype(int)


def auc_defined(task: str, classes: list[str], y: np.ndarray) -> bool:
    """True when at least one scored class has both positive and negative examples in ``y``."""
    return any(len(np.unique(labels_of(task, y, k))) == 2 for k in range(len(scored_classes(task, classes))))


def macro_auc(task: str, classes: list[str], y: np.ndarray, p: np.ndarray) -> float | None:
    """Mean one-vs-rest ROC-AUC over the scored classes that have both labels (None if none has)."""
    aucs = [_auc(*one_vs_rest(task, y, p, k)) for k in range(len(scored_classes(task, classes)))]
    known = [a for a in aucs if a is not None]
    return float(np.mean(known)) if known else None


def evaluate(
    task: str,
    classes: list[str],
    y: np.ndarray,
    p: np.ndarray,
    thresholds: list[float],
    bootstrap: int = 1000,
    seed: int = 0,
) -> dict:
    """All reported metrics for one split, as JSON-ready values."""
    pred = predicted_labels(task, p, thresholds)
    names = scored_classes(task, classes)
    per_class: dict[str, dict] = {}
    for k, name in enumerate(names):
        yk, pk = one_vs_rest(task, y, p, k)
        ci = bootstrap_auc_ci(yk, pk, bootstrap, seed + k)
        per_class[name] = {
            "auc": _auc(yk, pk),
            "auc_ci95": list(ci) if ci else None,
            "pr_auc": _pr_auc(yk, pk),
            "positives": int(yk.sum()),
        }
    aucs = [c["auc"] for c in per_class.values() if c["auc"] is not None]
    out: dict = {"n": len(y), "per_class": per_class, "auc_macro": float(np.mean(aucs)) if aucs else None}
    if task == "binary":
        out.update(
            accuracy=float(accuracy_score(y, pred)),
            precision=float(precision_score(y, pred, zero_division=0)),
            recall=float(recall_score(y, pred, zero_division=0)),
            specificity=float(recall_score(y, pred, pos_label=0, zero_division=0)),
            f1=float(f1_score(y, pred, zero_division=0)),
            confusion_matrix=confusion_matrix(y, pred, labels=[0, 1]).tolist(),
            report=classification_report(
                y, pred, labels=[0, 1], target_names=classes, output_dict=True, zero_division=0
            ),
        )
        return out
    labels = list(range(len(classes)))
    if task == "multiclass":
        matrices = multilabel_confusion_matrix(y, pred, labels=labels)
        out["accuracy"] = float(accuracy_score(y, pred))
        out["confusion_matrix"] = confusion_matrix(y, pred, labels=labels).tolist()
    else:
        return _multilabel(out, classes, y, pred)
    tn, fp = matrices[:, 0, 0], matrices[:, 0, 1]
    specificity = tn / np.maximum(tn + fp, 1)
    for k, name in enumerate(names):
        per_class[name]["specificity"] = float(specificity[k])
    out.update(
        precision=float(precision_score(y, pred, labels=labels, average="macro", zero_division=0)),
        recall=float(recall_score(y, pred, labels=labels, average="macro", zero_division=0)),
        specificity=float(specificity.mean()),
        f1=float(f1_score(y, pred, labels=labels, average="macro", zero_division=0)),
        report=classification_report(
            y, pred, labels=labels, target_names=classes, output_dict=True, zero_division=0
        ),
    )
    return out


def _multilabel(out: dict, classes: list[str], y: np.ndarray, pred: np.ndarray) -> dict:
    """Multilabel decisions per class on the images that know its label: 2×2 confusion per class, per-label
    accuracy, macro precision / recall / specificity / F1."""
    matrices, report = [], {}
    for k, name in enumerate(classes):
        keep = np.isfinite(y[:, k])
        yk, dk = y[keep, k].astype(int), pred[keep, k]
        matrices.append(confusion_matrix(yk, dk, labels=[0, 1]))
        report[name] = classification_report(yk, dk, labels=[1], output_dict=True, zero_division=0)["1"]
        out["per_class"][name]["known"] = int(keep.sum())
    cm = np.array(matrices)
    tn, fp, tp = cm[:, 0, 0], cm[:, 0, 1], cm[:, 1, 1]
    specificity = tn / np.maximum(tn + fp, 1)
    for k, name in enumerate(classes):
        out["per_class"][name]["specificity"] = float(specificity[k])
    out.update(
        accuracy=float((tn + tp).sum() / max(cm.sum(), 1)),  # per-label accuracy over known labels
        confusion_matrix=cm.tolist(),
        precision=float(np.mean([r["precision"] for r in report.values()])),
        recall=float(np.mean([r["recall"] for r in report.values()])),
        specificity=float(specificity.mean()),
        f1=float(np.mean([r["f1-score"] for r in report.values()])),
        report=report,
    )
    return out
