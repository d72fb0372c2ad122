"""Input validation shared by the package: errors say what is wrong and how to fix it."""
from __future__ import annotations

import numpy as np


def check_array(X, name):
    """Return X as an ndarray; reject objects and non-numeric dtypes."""
    if not isinstance(X, np.ndarray):
        X = np.asarray(X)
    if not (np.issubdtype(X.dtype, np.number) or X.dtype == np.bool_):
        raise TypeError(f"{name} must be a numeric array, got dtype {X.dtype}")
    return X


def check_finite(X, name):
    """Raise if X holds NaN or inf (a cheap guard at a model's input)."""
    if np.issubdtype(X.dtype, np.floating) and not np.isfinite(X).all():
        bad = int(np.size(X) - np.count_nonzero(np.isfinite(X)))
        raise ValueError(
            f"{name} contains {bad} NaN or inf values; clean or impute the data "
            "before training (e.g. check the preprocessing statistics)")


def check_probability(p):
    if not (0.0 <= float(p) < 1.0):
        raise ValueError(f"dropout p is the probability of dropping a unit and must lie "
                         f"in [0, 1), got {p}")


def check_labels(y, N, num_classes, name="y"):
    """Labels must be N integers in [0, num_classes)."""
    y = np.asarray(y)
    if y.shape != (N,):
        raise ValueError(f"{name} must have shape ({N},) to match the batch, got {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise TypeError(f"{name} must hold integer class ids, got dtype {y.dtype}")
    if N and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(
            f"{name} holds labels in [{y.min()}, {y.max()}] but there are {num_classes} "
            f"classes; labels must lie in [0, {num_classes - 1}]")
    return y
