"""A fully connected network of any depth: {linear - ReLU - [dropout]} x (L-1) - linear - softmax.

The model contract used by the Solver:
- ``params``: dict of arrays named W1, b1, ..., WL, bL;
- ``loss(X, y=None)``: scores (N, C) when y is None (test mode, no dropout), else
  ``(loss, grads)`` with grads keyed like params.
"""
from __future__ import annotations

import numpy as np

from nnlib._checks import check_finite, check_labels, check_probability
from nnlib.classifiers import softmax
from nnlib.layers import (
    dropout_backward,
    dropout_forward,
    linear_backward,
    linear_forward,
    relu_backward,
    relu_forward,
)

INITS = ("he", "xavier")


class FullyConnectedNet:
    """Fully connected classifier with ReLU hidden layers, inverted dropout and L2.

    Inputs:
    - hidden_dims: sizes of the hidden layers, e.g. [512, 256] (may be empty)
    - input_dim: D, the flattened input size
    - num_classes: C
    - dropout: probability of dropping a hidden unit (0 disables dropout)
    - reg: L2 strength; the loss adds 0.5 * reg * sum(W**2) over all weight matrices
    - weight_scale: a float (std of the Gaussian initial weights), "he"
      (std sqrt(2 / fan_in), for ReLU) or "xavier" (std sqrt(1 / fan_in))
    - dtype: float32 for speed, float64 for gradient checks
    - seed: int or np.random.Generator for initialisation and dropout masks
    """

    def __init__(self, hidden_dims, input_dim=3072, num_classes=10, dropout=0.0,
                 reg=0.0, weight_scale=1e-2, dtype=np.float32, seed=None):
        hidden_dims = [int(h) for h in hidden_dims]
        if any(h <= 0 for h in hidden_dims) or input_dim <= 0 or num_classes < 2:
            raise ValueError(
                f"FullyConnectedNet: layer sizes must be positive and num_classes >= 2, got "
                f"input_dim={input_dim}, hidden_dims={hidden_dims}, num_classes={num_classes}")
        check_probability(dropout)
        if reg < 0:
            raise ValueError(f"FullyConnectedNet: reg must be >= 0, got {reg}")
        if isinstance(weight_scale, str) and weight_scale not in INITS:
            raise ValueError(f"FullyConnectedNet: weight_scale must be a float or one of "
                             f"{INITS}, got {weight_scale!r}")
        self.hidden_dims = hidden_dims
        self.input_dim = int(input_dim)
        self.num_classes = int(num_classes)
        self.dropout = float(dropout)
        self.reg = float(reg)
        self.weight_scale = weight_scale
        self.dtype = np.dtype(dtype)
        self.num_layers = len(hidden_dims) + 1
        self.rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)

        dims = [self.input_dim, *hidden_dims, self.num_classes]
        self.params = {}
        for i, (fan_in, fan_out) in enumerate(zip(dims[:-1], dims[1:]), start=1):
            std = _init_std(weight_scale, fan_in)
            W = self.rng.standard_normal((fan_in, fan_out)) * std
            self.params[f"W{i}"] = W.astype(self.dtype)
            self.params[f"b{i}"] = np.zeros(fan_out, dtype=self.dtype)

    def __repr__(self):
        layers = []
        dims = [self.input_dim, *self.hidden_dims]
        for i in range(1, self.num_layers):
            layers.append(f"linear({dims[i - 1]}->{dims[i]}) - relu")
            if self.dropout:
                layers[-1] += f" - dropout(p={self.dropout:g})"
        layers.append(f"linear({dims[-1]}->{self.num_classes}) - softmax")
        return ("FullyConnectedNet(\n  " + ",\n  ".join(layers) +
                f"\n  reg={self.reg:g}, dtype={self.dtype.name}, "
                f"params={self.num_params():,})")

    def num_params(self):
        return int(sum(p.size for p in self.params.values()))

    def config(self):
        """Plain-data description from which the architecture can be rebuilt."""
        return {"hidden_dims": self.hidden_dims, "input_dim": self.input_dim,
                "num_classes": self.num_classes, "dropout": self.dropout, "reg": self.reg,
                "weight_scale": self.weight_scale, "dtype": self.dtype.name}

    def loss(self, X, y=None, grads=None):
        """Scores, or loss and gradients.

        Inputs:
        - X: array of shape (N, d1, ..., dk) with d1*...*dk == input_dim
        - y: integer labels of shape (N,), or None for test mode
        - grads: optional dict of arrays shaped like params into which the weight
          gradients are written (the Solver passes one to save allocations)

        Returns:
        - y is None: scores of shape (N, C)
        - otherwise: (loss, grads), grads a dict keyed like params
        """
        X = self._as_input(X)
        train = y is not None
        if train:
            y = check_labels(y, X.shape[0], self.num_classes)
        p = self.dropout if train else 0.0
        L = self.num_layers

        h, caches = X, []
        for i in range(1, L):
            a = relu_forward(linear_forward(h, self.params[f"W{i}"], self.params[f"b{i}"]))
            mask = None
            if p > 0:
                a, mask = dropout_forward(a, p, train=True, seed=self.rng)
            caches.append((h, a, mask))
            h = a
        scores = linear_forward(h, self.params[f"W{L}"], self.params[f"b{L}"])
        if not train:
            return scores

        loss, dh = softmax(scores, y)
        bufs = grads or {}
        grads = {}
        dh, grads[f"W{L}"], grads[f"b{L}"] = linear_backward(
            dh, h, self.params[f"W{L}"], self.params[f"b{L}"], dW_out=bufs.get(f"W{L}"))
        for i in range(L - 1, 0, -1):
            h_in, a, mask = caches[i - 1]
            if mask is not None:
                dh = dropout_backward(dh, mask, p)
            dh = relu_backward(dh, a)  # a > 0 exactly where the pre-activation is > 0
            dh, grads[f"W{i}"], grads[f"b{i}"] = linear_backward(
                dh, h_in, self.params[f"W{i}"], self.params[f"b{i}"], compute_dX=i > 1,
                dW_out=bufs.get(f"W{i}"))

        if self.reg:
            reg = self.dtype.type(self.reg)
            for i in range(1, L + 1):
                W = self.params[f"W{i}"]
                loss += 0.5 * self.reg * float(np.vdot(W, W))
                grads[f"W{i}"] += reg * W
        return loss, grads

    def scores(self, X, batch_size=1000):
        """Test-mode scores of shape (N, C), computed in batches."""
        return np.concatenate([self.loss(X[i:i + batch_size])
                               for i in range(0, len(X), batch_size)]
                              or [np.zeros((0, self.num_classes), self.dtype)])

    def predict(self, X, batch_size=1000):
        """Predicted class ids of shape (N,), computed in batches."""
        return self.scores(X, batch_size).argmax(axis=1)

    def _as_input(self, X):
        X = np.asarray(X)
        if X.ndim < 2 or int(np.prod(X.shape[1:])) != self.input_dim:
            raise ValueError(
                f"FullyConnectedNet expects inputs of shape (N, ...) with "
                f"{self.input_dim} features per sample, got shape {X.shape}; "
                "check the preprocessing (e.g. grayscale vs colour, image size)")
        if X.dtype != self.dtype:
            # silent float64 up-casts would halve the speed; cast once, explicitly
            X = X.astype(self.dtype)
        check_finite(X, "X")
        return X


def _init_std(weight_scale, fan_in):
    if weight_scale == "he":
        return np.sqrt(2.0 / fan_in)
    if weight_scale == "xavier":
        return np.sqrt(1.0 / fan_in)
    return float(weight_scale)
