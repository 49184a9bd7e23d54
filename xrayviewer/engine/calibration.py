"""Temperature scaling (Guo et al. 2017): one scalar T fitted on validation logits, scores = f(logits / T).

numpy and SciPy only: the viewer's inference path needs no torch for it.
"""

from __future__ import annotations

import math

import numpy as np

T_RANGE = (0.05, 20.0)


def probabilities(task: str, logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Scores from logits: sigmoid (binary, multilabel) or softmax (multiclass), after dividing by T.
    The one score formula of the predictor, training and recalibration (numpy, float64)."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    if task == "multiclass":
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # the logistic function without overflow for large |z|


def _nll(task: str, z: np.ndarray, y: np.ndarray) -> float:
    """Mean negative log-likelihood; multilabel entries whose label is unknown (NaN) are left out."""
    if task == "multiclass":
        shifted = z - z.max(axis=1, keepdims=True)
        log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        return float(-log_p[np.arange(len(y)), y.astype(int)].mean())
    known = np.isfinite(y)
    z, y = z[known], y[known]
    # log(1 + exp(-|z|)) + max(z, 0) - y z: binary cross-entropy on logits, stable for large |z|
    return float((np.logaddexp(0.0, -np.abs(z)) + np.maximum(z, 0.0) - y * z).mean())


def fit_temperature(task: str, logits: np.ndarray, y: np.ndarray) -> float:
    """The temperature minimising validation negative log-likelihood (bounded search on log T, T in
    [0.05, 20]); labels as the training metrics hold them (multilabel: NaN = unknown)."""
    y = np.asarray(y, dtype=np.float64)
    z = np.asarray(logits, dtype=np.float64)
    if task != "multiclass":
        z = z.reshape(y.shape)  # binary logits (N, 1) against labels (N,)
    if not np.isfinite(z).all() or (task != "multiclass" and not np.isfinite(y).any()):
        return 1.0
    from scipy.optimize import minimize_scalar  # fitting only: inference needs no SciPy

    low, high = (math.log(t) for t in T_RANGE)
    result = minimize_scalar(lambda log_t: _nll(task, z / math.exp(log_t), y), bounds=(low, high),
                             method="bounded", options={"xatol": 1e-6})
    temperature = math.exp(float(result.x))
    return temperature if math.isfinite(temperature) else 1.0
