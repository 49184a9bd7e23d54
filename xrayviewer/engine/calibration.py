"""Temperature scaling (Guo et al. 2017): one scalar T fitted on validation logits, scores = f(logits / T)."""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F


def probabilities(task: str, logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Scores from logits: sigmoid (binary, multilabel) or softmax (multiclass), after dividing by T.
    The one score formula of the predictor, training and recalibration (numpy, float64)."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    if task == "multiclass":
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # the logistic function without overflow for large |z|


def _nll(task: str, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if task == "multiclass":
        return F.cross_entropy(logits, y.long())
    return F.binary_cross_entropy_with_logits(logits, y.to(logits.dtype))


def fit_temperature(task: str, logits: np.ndarray, y: np.ndarray) -> float:
    """The temperature minimising validation negative log-likelihood (L-BFGS on log T, T in [0.05, 20])."""
    target = torch.as_tensor(y)
    z = torch.as_tensor(logits, dtype=torch.float64)
    if task != "multiclass":
        z = z.reshape(target.shape)  # binary logits (N, 1) against labels (N,)
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=0.1, max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = _nll(task, z / log_t.exp(), target)
        loss.backward()
        return loss

    optimizer.step(closure)
    temperature = float(log_t.detach().exp().clamp(0.05, 20.0))
    return temperature if np.isfinite(temperature) else 1.0
