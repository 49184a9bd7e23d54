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
