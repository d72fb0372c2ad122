"""Classifier losses."""
from __future__ import annotations

import numpy as np

from nnlib._checks import check_array, check_labels


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
