"""Whether two classifiers scored on the same images differ by more than chance: the exact
McNemar test, which looks only at the images exactly one of the two gets right."""
from __future__ import annotations

import numpy as np
from scipy.stats import binomtest


def mcnemar(y, pred_a, pred_b):
    """The exact (binomial) McNemar test of predictions ``pred_a`` and ``pred_b`` (N,)
    against the true class ids ``y`` (N,). Under the null hypothesis that both classifiers
    are equally accurate, each image that only one gets right is A's with probability 1/2.
    Returns a dict: only_a, only_b (images right for that classifier alone) and p (the
    two-sided p-value; 1.0 when no image separates them)."""
    y, pred_a, pred_b = (np.asarray(v) for v in (y, pred_a, pred_b))
    if not y.shape == pred_a.shape == pred_b.shape or y.ndim != 1:
        raise ValueError(f"y, pred_a and pred_b must be equal-length 1-d arrays, got shapes "
                         f"{y.shape}, {pred_a.shape}, {pred_b.shape}")
    right_a, right_b = pred_a == y, pred_b == y
    only_a, only_b = int(np.sum(right_a & ~right_b)), int(np.sum(right_b & ~right_a))
    n = only_a + only_b
    p = 1.0 if n == 0 else float(binomtest(only_a, n, 0.5).pvalue)
    return {"only_a": only_a, "only_b": only_b, "p": p}
