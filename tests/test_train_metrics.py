"""Metrics equal scikit-learn's, thresholds and temperature scaling behave as documented."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score, roc_curve

from xrayviewer.engine.calibration import fit_temperature, probabilities
from xrayviewer.training.metrics import bootstrap_auc_ci, choose_threshold, evaluate


def _binary(n: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    logits = 1.5 * (2 * y - 1) + rng.normal(0, 1.5, n)
    return y, logits


def test_binary_metrics_match_sklearn_on_the_same_predictions():
    y, logits = _binary()
    p = probabilities("binary", logits)
    out = evaluate("binary", ["normal", "pneumonia"], y, p, [0.4], bootstrap=200)
    pred = (p >= 0.4).astype(int)
    assert out["per_class"]["pneumonia"]["auc"] == pytest.approx(roc_auc_score(y, p))
    assert out["precision"] == pytest.approx(precision_score(y, pred))
    assert out["recall"] == pytest.approx(recall_score(y, pred))
    assert out["specificity"] == pytest.approx(((pred == 0) & (y == 0)).sum() / (y == 0).sum())
    assert out["f1"] == pytest.approx(f1_score(y, pred))
    low, high = out["per_class"]["pneumonia"]["auc_ci95"]
    assert low < out["auc_macro"] < high
    assert np.array(out["confusion_matrix"]).sum() == len(y)


def test_multiclass_macro_auc_matches_sklearn_ovr():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 400)
    logits = rng.normal(0, 1, (400, 3))
    logits[np.arange(400), y] += 1.5
    p = probabilities("multiclass", logits)
    out = evaluate("multiclass", ["normal", "bacterial", "viral"], y, p, [0.5] * 3, bootstrap=0)
    assert out["auc_macro"] == pytest.approx(roc_auc_score(y, p, multi_class="ovr", average="macro"))
    assert out["accuracy"] == pytest.approx((p.argmax(1) == y).mean())
    assert len(out["confusion_matrix"]) == 3


def test_youden_threshold_maximises_j_and_target_sensitivity_is_met():
    y, logits = _binary(500, 2)
    p = probabilities("binary", logits)
    fpr, tpr, _ = roc_curve(y, p)
    t = choose_threshold(y, p, "youden")
    j = recall_score(y, p >= t) - (1 - recall_score(y, p >= t, pos_label=0))
    assert j == pytest.approx(np.max(tpr - fpr))
    t90 = choose_threshold(y, p, "sensitivity", 0.9)
    assert recall_score(y, p >= t90) >= 0.9
    assert recall_score(y, p >= np.nextafter(t90, 2)) < 0.9  # the highest threshold that reaches it


def test_bootstrap_ci_is_none_for_one_class_and_seeded():
    y, logits = _binary(100, 3)
    assert bootstrap_auc_ci(np.zeros(10, int), np.linspace(0, 1, 10)) is None
    assert bootstrap_auc_ci(y, logits, 100, seed=4) == bootstrap_auc_ci(y, logits, 100, seed=4)


def test_temperature_scaling_undoes_overconfidence():
    rng = np.random.default_rng(5)
    logits = rng.normal(0, 2, 4000)
    y = (rng.random(4000) < 1 / (1 + np.exp(-logits))).astype(int)  # calibrated logits by construction
    t = fit_temperature("binary", logits * 4.0, y)
    assert 3.0 < t < 5.5  # logits were inflated four-fold
    y3 = np.random.default_rng(6).integers(0, 3, 1000)
    z = np.random.default_rng(7).normal(0, 1, (1000, 3))
    z[np.arange(1000), y3] += 1.0
    assert fit_temperature("multiclass", z * 0.25, y3) < 0.5  # under-confident -> T < 1


def _partly_unknown(seed: int = 8) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Multilabel labels (300, 2) with a third of class 1 unknown (NaN), logits and the known mask."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, (300, 2)).astype(float)
    logits = 2.0 * (2 * y - 1) + rng.normal(0, 1.5, y.shape)
    known = np.ones_like(y, bool)
    known[::3, 1] = False
    y[~known] = np.nan
    return y, logits, known


def test_multilabel_metrics_score_each_class_on_the_images_that_know_it():
    y, logits, known = _partly_unknown()
    p = probabilities("multilabel", logits)
    out = evaluate("multilabel", ["effusion", "cardiomegaly"], y, p, [0.5, 0.5], bootstrap=0)
    k = known[:, 1]
    assert out["per_class"]["cardiomegaly"]["known"] == 200 and out["per_class"]["effusion"]["known"] == 300
    assert out["per_class"]["cardiomegaly"]["auc"] == pytest.approx(roc_auc_score(y[k, 1], p[k, 1]))
    assert out["per_class"]["cardiomegaly"]["positives"] == int(y[k, 1].sum())
    assert np.array(out["confusion_matrix"])[1].sum() == 200
    pred = (p >= 0.5).astype(int)
    recalls = [recall_score(y[:, 0], pred[:, 0]), recall_score(y[k, 1], pred[k, 1])]
    assert out["recall"] == pytest.approx(np.mean(recalls))
    correct = (pred[:, 0] == y[:, 0]).sum() + (pred[k, 1] == y[k, 1]).sum()
    assert out["accuracy"] == pytest.approx(correct / 500)


def test_unknown_labels_add_nothing_to_the_loss_the_weights_or_the_temperature():
    import torch

    from xrayviewer.training.optimization import KnownLabelsBCE, class_weights

    y, logits, known = _partly_unknown()
    target, z = torch.tensor(y, dtype=torch.float32), torch.tensor(logits, dtype=torch.float32)
    weights = class_weights("multilabel", ["effusion", "cardiomegaly"], target)
    positives = np.nansum(y, axis=0)
    assert weights.tolist() == pytest.approx(((known.sum(0) - positives) / positives).tolist())
    loss = KnownLabelsBCE(weights)(z, target)
    every = torch.nn.functional.binary_cross_entropy_with_logits(
        z, torch.nan_to_num(target), pos_weight=weights, reduction="none")
    assert float(loss) == pytest.approx(float(every[torch.tensor(known)].mean()), rel=1e-6)
    assert torch.isfinite(loss)
    complete = np.where(known, y, 0.0)  # same logits, the unknown entries filled in wrongly
    assert fit_temperature("multilabel", logits * 3, y) != pytest.approx(
        fit_temperature("multilabel", logits * 3, complete), rel=1e-3)
    assert fit_temperature("multilabel", logits[::3] * 3, y[::3]) == pytest.approx(
        fit_temperature("multilabel", logits[::3, :1] * 3, y[::3, :1]), rel=1e-4)
