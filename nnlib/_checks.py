"""Input validation shared by the package: errors say what is wrong and how to fix it."""
from __future__ import annotations

import math

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
    if np.issubdtype(X.dtype, np.inexact) and not np.isfinite(X).all():
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


def is_real(v):
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def check_momentum(m, name):
    if not (is_real(m) and 0 <= m < 1):
        raise ValueError(f"Solver: {name} must lie in [0, 1), got {m!r}")


def check_solver_options(s, monitors):
    """Raise if an option of the Solver ``s`` is out of range (before training starts)."""
    def whole(name, low, allow_none=False):
        v = getattr(s, name)
        if v is None and allow_none:
            return
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
            raise ValueError(f"Solver: {name} must be an integer >= {low}"
                             f"{' or None' if allow_none else ''}, got {v!r}")
    whole("num_epochs", 0)
    whole("batch_size", 1)
    whole("eval_batch_size", 1)
    whole("num_train_samples", 1, allow_none=True)
    whole("num_val_samples", 1, allow_none=True)
    whole("patience", 0, allow_none=True)
    whole("print_every", 1, allow_none=True)
    if s.monitor not in monitors:
        raise ValueError(f"Solver: monitor must be one of {sorted(monitors)}, "
                         f"got {s.monitor!r}")
    lr = s.optim_config.get("learning_rate")
    if lr is not None and not (is_real(lr) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"Solver: learning_rate must be a finite number > 0, got {lr!r}")
    if "momentum" in s.optim_config:
        check_momentum(s.optim_config["momentum"], "momentum")
    if not (is_real(s.lr_decay) and 0 < s.lr_decay <= 1):
        raise ValueError(f"Solver: lr_decay must lie in (0, 1], got {s.lr_decay!r}")
    if not (is_real(s.min_delta) and s.min_delta >= 0):
        raise ValueError(f"Solver: min_delta must be >= 0, got {s.min_delta!r}")


def check_solver_data(data, num_classes):
    """Raise unless ``data`` holds numeric, finite, non-empty training and validation
    splits whose samples have one shape and whose labels fit ``num_classes`` (if known)."""
    missing = {"X_train", "y_train", "X_val", "y_val"} - set(data)
    if missing:
        raise ValueError(f"Solver: data is missing {sorted(missing)}; it needs "
                         "X_train, y_train, X_val and y_val")
    for split in ("train", "val"):
        X, y = data[f"X_{split}"], data[f"y_{split}"]
        if not isinstance(X, np.ndarray) or not np.issubdtype(X.dtype, np.number):
            raise ValueError(f"Solver: X_{split} must be a numeric NumPy array, got "
                             f"{type(X).__name__} of dtype {getattr(X, 'dtype', None)}")
        if len(X) != len(y):
            raise ValueError(f"Solver: X_{split} has {len(X)} samples but y_{split} "
                             f"has {len(y)}")
        if len(X) == 0:
            raise ValueError(f"Solver: X_{split} is empty")
        if num_classes is not None:
            check_labels(hard_labels(y), len(X), num_classes, f"y_{split}")
        check_finite(X, f"Solver: X_{split}")
    shapes = data["X_train"].shape[1:], data["X_val"].shape[1:]
    if shapes[0] != shapes[1]:
        raise ValueError(f"Solver: the samples of X_val have shape {shapes[1]} but those of "
                         f"X_train {shapes[0]}; give both splits the same preprocessing")


def hard_labels(y):
    """The class ids of ``y``: plain labels as they are, ``soft_labels`` by their field."""
    y = np.asarray(y)
    return y["label"] if y.dtype.names else y
