"""Layers as forward/backward function pairs: linear, ReLU and inverted dropout.

Every function computes in the dtype of its inputs and never modifies them.
"""
from __future__ import annotations

import numpy as np

from nnlib._checks import check_array, check_probability


def linear_forward(X, W, b):
    """Affine map ``X @ W + b``.

    Inputs:
    - X: array of shape (N, d1, ..., dk), flattened to (N, D) with D = d1*...*dk
    - W: weights of shape (D, M)
    - b: biases of shape (M,)

    Returns:
    - out: array of shape (N, M)
    """
    X2 = _flatten(X, W)
    out = X2 @ W
    out += b  # in place: one temporary fewer than ``X2 @ W + b``
    return out


def linear_backward(dout, X, W, b):
    """Gradients of the affine map.

    Inputs:
    - dout: upstream gradient of shape (N, M)
    - X: the forward input, shape (N, d1, ..., dk)
    - W: weights of shape (D, M)
    - b: biases of shape (M,)

    Returns a tuple of:
    - dX: shape (N, d1, ..., dk)
    - dW: shape (D, M)
    - db: shape (M,)
    """
    X2 = _flatten(X, W)
    if dout.shape != (X2.shape[0], W.shape[1]):
        raise ValueError(
            f"linear_backward: dout has shape {dout.shape}, expected "
            f"{(X2.shape[0], W.shape[1])} (N, M) to match X and W")
    dW = X2.T @ dout
    db = dout.sum(axis=0)
    dX = (dout @ W.T).reshape(X.shape)
    return dX, dW, db


def relu_forward(X):
    """Rectified linear unit ``max(X, 0)``; X of any shape, out of the same shape."""
    X = check_array(X, "X")
    return np.maximum(X, 0)


def relu_backward(dout, X):
    """Gradient of ReLU: ``dout`` where X > 0, else 0 (NaN where X <= 0 and dout is
    not finite). dout and X share one shape."""
    if np.shape(dout) != np.shape(X):
        raise ValueError(
            f"relu_backward: dout has shape {np.shape(dout)} but X has {np.shape(X)}")
    # a product with the mask is 5x faster than np.where; adding 0 turns the -0.0 of a
    # negative dout times 0 into 0.0, so the result is np.where's bit for bit
    dX = np.multiply(dout, X > 0, dtype=np.result_type(dout))
    dX += 0
    return dX


def dropout_forward(X, p=0.5, train=True, seed=None):
    """Inverted dropout.

    ``p`` is the probability of DROPPING a unit; kept units are scaled by 1/(1-p) so
    that the expected activation is unchanged and test time is the identity.

    Inputs:
    - X: array of any shape
    - p: drop probability in [0, 1)
    - train: False at test time (returns X unchanged and mask None)
    - seed: None, an int, or a ``np.random.Generator``. With an int the kept units are
      exactly those where ``np.random.RandomState(seed).rand(*X.shape) > p``. The
      global RNG is never touched.

    Returns a tuple of:
    - out: array of X's shape and dtype
    - mask: 0/1 array of X's shape and dtype (1 = kept), or None at test time
    """
    X = check_array(X, "X")
    check_probability(p)
    if not train:
        return X, None
    if isinstance(seed, np.random.Generator):
        u = seed.random(X.shape, dtype=np.float32)
    elif seed is None or isinstance(seed, (int, np.integer)):
        u = np.random.RandomState(seed).rand(*X.shape)
    else:
        raise TypeError(
            f"dropout_forward: seed must be None, an int or a np.random.Generator, "
            f"not {type(seed).__name__}")
    mask = (u > p).astype(X.dtype)
    out = X * mask
    out *= X.dtype.type(1.0 / (1.0 - p))
    return out, mask


def dropout_backward(dout, mask, p=0.5, train=True):
    """Gradient of inverted dropout.

    Inputs:
    - dout: upstream gradient, X's shape
    - mask: the 0/1 mask returned by ``dropout_forward``
    - p: the drop probability used in the forward pass
    - train: False if the forward pass ran at test time

    Returns:
    - dX: array of dout's shape
    """
    check_probability(p)
    if not train:
        return dout
    if mask is None or np.shape(mask) != np.shape(dout):
        raise ValueError(
            "dropout_backward: pass the mask returned by dropout_forward(..., train=True); "
            f"got mask of shape {np.shape(mask) if mask is not None else None} "
            f"for dout of shape {np.shape(dout)}")
    dX = dout * mask
    dX *= dX.dtype.type(1.0 / (1.0 - p))
    return dX


def _flatten(X, W):
    """View X as (N, D) and check it against W of shape (D, M)."""
    X = check_array(X, "X")
    if X.ndim < 2:
        raise ValueError(
            f"linear layer: X must have shape (N, d1, ..., dk), got {X.shape}; "
            "add a batch axis with X[None] for a single sample")
    X2 = X.reshape(X.shape[0], -1)
    if W.ndim != 2 or X2.shape[1] != W.shape[0]:
        raise ValueError(
            f"linear layer: X flattens to {X2.shape} but W has shape {W.shape}; "
            f"W must be ({X2.shape[1]}, M)")
    return X2
