"""Centred finite-difference gradients, to check backward passes (use float64)."""
from __future__ import annotations

import contextlib

import numpy as np


def rel_error(a, b):
    """Largest elementwise relative error max |a - b| / max(1e-12, |a| + |b|)."""
    a, b = (np.asarray(v, dtype=np.float64) for v in (a, b))  # no integer overflow
    return float(np.max(np.abs(a - b) / np.maximum(1e-12, np.abs(a) + np.abs(b))))


def rel_error_norm(a, b):
    """Relative error of whole arrays, ||a - b|| / (||a|| + ||b||).

    Unlike ``rel_error`` it is not dominated by entries that are tiny or exactly zero
    (dead ReLUs), where float64 round-off alone gives large elementwise ratios.
    """
    a, b = (np.asarray(v, dtype=np.float64) for v in (a, b))
    return float(np.linalg.norm(a - b) / max(1e-12, np.linalg.norm(a) + np.linalg.norm(b)))


def eval_numerical_gradient(f, x, h=1e-5):
    """Numeric gradient of a scalar function ``f(x)``, perturbing x in place.

    Inputs:
    - f: callable of one argument returning a float (or a one-element array, a view of x
      included)
    - x: float64 array of any shape (restored on return)
    - h: step of the centred difference (f(x + h) - f(x - h)) / 2h

    Returns:
    - grad: array of x's shape
    """
    grad = np.zeros_like(x)
    for ix in np.ndindex(x.shape):
        old = x[ix]
        x[ix] = old + h
        fp = _scalar(f(x))  # read now: f may return a view of x, which changes below
        x[ix] = old - h
        fm = _scalar(f(x))
        x[ix] = old
        grad[ix] = (fp - fm) / (2 * h)
    return grad


def _scalar(value):
    """The float held by ``f``'s result (a float, or an array with one element)."""
    value = np.asarray(value)
    if value.size != 1:
        raise ValueError(f"f must return a scalar, got an array of shape {value.shape}; use "
                         "eval_numerical_gradient_array for a function with array output")
    return float(value.reshape(()))


def eval_numerical_gradient_array(f, x, dout, h=1e-5):
    """Numeric gradient of ``sum(f(x) * dout)`` for an array-valued ``f``.

    Inputs:
    - f: callable of one argument returning an array of dout's shape
    - x: float64 array of any shape (restored on return)
    - dout: upstream gradient, shape of f(x)

    Returns:
    - grad: array of x's shape

    Not ``eval_numerical_gradient`` of ``sum(f(x) * dout)``: differencing the outputs
    before the weighted sum keeps the round-off ten times smaller.
    """
    grad = np.zeros_like(x)
    for ix in np.ndindex(x.shape):
        old = x[ix]
        x[ix] = old + h
        pos = np.array(f(x))  # a copy: f may return x itself or a view of it
        x[ix] = old - h
        neg = np.array(f(x))
        x[ix] = old
        grad[ix] = np.sum((pos - neg) * dout) / (2 * h)
    return grad


def check_model_gradients(model, X, y, h=1e-5):
    """Relative error (``rel_error_norm``) of each analytic gradient of ``model.loss``.

    Use a float64 model and He initialisation so that pre-activations are O(1) and a
    step of h rarely crosses a ReLU kink. A model with dropout is checked with its masks
    fixed (``model.fixed_dropout()``), since a fresh mask per call would make the loss
    random. Returns a dict {param name: relative error}.
    """
    fixed = (model.fixed_dropout() if getattr(model, "dropout", 0) and
             hasattr(model, "fixed_dropout") else contextlib.nullcontext())
    with fixed:
        _, grads = model.loss(X, y)
        errors = {}
        for name, param in model.params.items():
            num = eval_numerical_gradient(lambda _: model.loss(X, y)[0], param, h=h)
            errors[name] = rel_error_norm(num, grads[name])
    return errors
