"""Classifier losses."""
from __future__ import annotations

import numpy as np

from nnlib._checks import check_array, check_labels, hard_labels  # noqa: F401 (public)


def softmax(logits, y):
    """Softmax cross-entropy: mean negative log-likelihood and its gradient.

    Stable for logits of any magnitude: the row maximum is subtracted and the
    log-partition computed as a log-sum-exp, so no exp overflows and no log(0) occurs.

    Inputs:
    - logits: scores of shape (N, C)
    - y: integer labels of shape (N,), each in [0, C)

    Returns a tuple of:
    - loss: float, the mean of -log softmax(logits)[i, y[i]]
    - dlogits: gradient of the loss w.r.t. logits, shape (N, C), logits' dtype
    """
    logits = check_array(logits, "logits")
    if logits.ndim != 2:
        raise ValueError(f"softmax: logits must have shape (N, C), got {logits.shape}")
    N, C = logits.shape
    y = check_labels(y, N, C)
    shifted = logits - logits.max(axis=1, keepdims=True)
    probs = np.exp(shifted)
    sums = probs.sum(axis=1, keepdims=True)
    log_z = np.log(sums)
    rows = np.arange(N)
    loss = float(np.mean(log_z[:, 0] - shifted[rows, y]))
    probs /= sums
    probs[rows, y] -= 1
    probs /= N
    return loss, probs


def soft_cross_entropy(logits, targets, temperature=1.0):
    """Cross-entropy against soft targets (class-probability rows) at a temperature.

    loss = mean_i sum_c -targets[i, c] * log softmax(logits[i] / T)[c]
    dloss/dlogits = (softmax(logits / T) - targets) / (N * T)

    Inputs:
    - logits: scores of shape (N, C)
    - targets: probabilities of shape (N, C), each row non-negative and summing to 1
    - temperature: T > 0; T > 1 softens the student's distribution (Hinton et al., 2015)

    Returns (loss, dlogits) like ``softmax``.
    """
    logits = check_array(logits, "logits")
    targets = check_array(targets, "targets")
    if logits.ndim != 2 or targets.shape != logits.shape:
        raise ValueError(f"soft_cross_entropy: logits and targets must both have shape "
                         f"(N, C), got {logits.shape} and {targets.shape}")
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    if len(targets) and (targets.min() < 0 or not np.allclose(targets.sum(axis=1), 1,
                                                               atol=1e-3)):
        raise ValueError("targets must be probability rows (non-negative, summing to 1)")
    N = logits.shape[0]
    z = logits / logits.dtype.type(temperature)
    shifted = z - z.max(axis=1, keepdims=True)
    log_z = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    log_probs = shifted - log_z
    loss = float(-(targets * log_probs).sum() / max(N, 1))
    dlogits = (np.exp(log_probs) - targets) / logits.dtype.type(max(N, 1) * temperature)
    return loss, dlogits.astype(logits.dtype, copy=False)


def distillation_loss(logits, y, targets, temperature=1.0, alpha=1.0):
    """Knowledge distillation (Hinton, Vinyals and Dean, 2015): ``alpha`` times T^2 times
    the soft-target cross-entropy at temperature T (the T^2 keeps its gradients on the
    scale of the hard loss's as T changes) plus ``1 - alpha`` times the ordinary softmax
    cross-entropy with the hard labels ``y``. Returns (loss, dlogits)."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha (the soft targets' weight) must lie in [0, 1], got {alpha}")
    T2 = temperature * temperature
    loss, dlogits = 0.0, np.zeros_like(check_array(logits, "logits"))
    if alpha > 0:
        soft, dsoft = soft_cross_entropy(logits, targets, temperature)
        loss += alpha * T2 * soft
        dlogits += logits.dtype.type(alpha * T2) * dsoft
    if alpha < 1:
        hard, dhard = softmax(logits, y)
        loss += (1 - alpha) * hard
        dlogits += logits.dtype.type(1 - alpha) * dhard
    return loss, dlogits


def soften(probs, temperature):
    """A teacher's probabilities (N, C) at temperature T: softmax(log(probs) / T), the
    distribution its logits give at T (a uniform shift of the logits cancels); T > 1
    flattens it, T = 1 returns it renormalised (equal up to float32 round-off). Zero
    probabilities stay zero."""
    probs = check_array(probs, "probs").astype(np.float64)
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    with np.errstate(divide="ignore"):
        z = np.log(probs) / temperature
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def soft_labels(y, probs):
    """Training labels for distillation: a structured array (N,) with fields ``label``
    (the hard class ids) and ``soft`` (the teacher's probabilities, (N, C)), which the
    Solver batches like plain labels and ``FullyConnectedNet`` trains on with its
    ``distillation`` settings."""
    y, probs = np.asarray(y), np.asarray(probs, dtype=np.float32)
    if probs.ndim != 2 or len(probs) != len(y):
        raise ValueError(f"soft_labels: probs must have shape ({len(y)}, C), got {probs.shape}")
    out = np.empty(len(y), dtype=[("label", np.int64), ("soft", np.float32, probs.shape[1])])
    out["label"], out["soft"] = y, probs
    return out
