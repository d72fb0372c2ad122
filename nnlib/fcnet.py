"""A fully connected network of any depth: {linear - ReLU - [dropout]} x (L-1) - linear - softmax.

The model contract used by the Solver:
- ``params``: dict of arrays named W1, b1, ..., WL, bL;
- ``loss(X, y=None)``: scores (N, C) when y is None (test mode, no dropout), else
  ``(loss, grads)`` with grads keyed like params.
"""
from __future__ import annotations

import contextlib

import numpy as np

from nnlib._checks import check_finite, check_labels, check_probability
from nnlib._scratch import scaled
from nnlib.classifiers import distillation_loss, softmax
from nnlib.layers import (
    dropout_backward,
    dropout_forward,
    linear_forward,
    relu_backward,
    relu_forward,
)

# named initialisations: the standard deviation of the Gaussian weights of a layer
INITS = {
    "he": lambda fan_in, fan_out: np.sqrt(2.0 / fan_in),  # He et al. (2015), for ReLU
    "lecun": lambda fan_in, fan_out: np.sqrt(1.0 / fan_in),  # LeCun et al. (1998)
    "glorot": lambda fan_in, fan_out: np.sqrt(2.0 / (fan_in + fan_out)),  # Glorot, Bengio
    "xavier": lambda fan_in, fan_out: np.sqrt(2.0 / (fan_in + fan_out)),  # = glorot
}


class FullyConnectedNet:
    """Fully connected classifier with ReLU hidden layers, inverted dropout and L2.

    Inputs:
    - hidden_dims: sizes of the hidden layers, e.g. [512, 256] (may be empty)
    - input_dim: D, the flattened input size
    - num_classes: C
    - dropout: probability of dropping a hidden unit (0 disables dropout)
    - reg: L2 strength; the loss adds 0.5 * reg * sum(W**2) over all weight matrices
    - weight_scale: a float (std of the Gaussian initial weights) or a named
      initialisation: "he" (std sqrt(2 / fan_in), for ReLU), "lecun" (sqrt(1 / fan_in)),
      "glorot" or its other name "xavier" (sqrt(2 / (fan_in + fan_out)))
    - dtype: float32 for speed, float64 for gradient checks
    - seed: int or np.random.Generator for initialisation and dropout masks (a fresh
      mask at every training-mode call)
    - dropout_seed: an int fixes the dropout masks: every training-mode call draws them
      as ``dropout_forward(..., seed=dropout_seed)`` does, which is the coursework's seeded
      dropout (for gradient checks; see also ``fixed_dropout``). None: fresh masks

    After a training-mode call, ``last_reg_loss`` holds the regularisation term included
    in its loss.
    """

    def __init__(self, hidden_dims, input_dim=3072, num_classes=10, dropout=0.0,
                 reg=0.0, weight_scale=1e-2, dtype=np.float32, seed=None, dropout_seed=None):
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
                             f"{sorted(INITS)}, got {weight_scale!r}")
        self.hidden_dims = hidden_dims
        self.input_dim = int(input_dim)
        self.num_classes = int(num_classes)
        self.dropout = float(dropout)
        self.reg = float(reg)
        self.weight_scale = weight_scale
        self.dtype = np.dtype(dtype)
        self.num_layers = len(hidden_dims) + 1
        self.rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        self.dropout_seed = dropout_seed
        # labels made by classifiers.soft_labels train with distillation_loss at these
        # settings (training only: not part of the saved model)
        self.distillation = {"temperature": 1.0, "alpha": 1.0}
        self.last_reg_loss = 0.0
        self._buffers = None

        dims = [self.input_dim, *hidden_dims, self.num_classes]
        self.params = {}
        for i, (fan_in, fan_out) in enumerate(zip(dims[:-1], dims[1:]), start=1):
            std = _init_std(weight_scale, fan_in, fan_out)
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
        """Number of weights and biases."""
        return int(sum(p.size for p in self.params.values()))

    @staticmethod
    def count_params(input_dim, hidden_dims, num_classes):
        """Number of weights and biases of a network of these sizes, without building it."""
        dims = [int(input_dim), *map(int, hidden_dims), int(num_classes)]
        return sum(a * b + b for a, b in zip(dims[:-1], dims[1:]))

    def config(self):
        """Plain-data description from which the architecture can be rebuilt."""
        return {"hidden_dims": self.hidden_dims, "input_dim": self.input_dim,
                "num_classes": self.num_classes, "dropout": self.dropout, "reg": self.reg,
                "weight_scale": self.weight_scale, "dtype": self.dtype.name}

    def loss(self, X, y=None):
        """Scores, or loss and gradients.

        Inputs:
        - X: array of shape (N, d1, ..., dk) with d1*...*dk == input_dim
        - y: integer labels of shape (N,), or None for test mode

        Returns:
        - y is None: scores of shape (N, C)
        - otherwise: (loss, grads), grads a dict of new arrays keyed like params; the loss
          includes the regularisation 0.5 * reg * sum(W**2)
        """
        return self._loss(X, y, None)

    def training_loss(self, X, y):
        """``loss(X, y)`` for training loops: the weight gradients are written into
        buffers that the next call reuses (allocating a fresh multi-MB array each step
        page-faults and costs about 30%), so use them before calling again."""
        if self._buffers is None or any(
                self._buffers[k].shape != self.params[k].shape
                or self._buffers[k].dtype != self.params[k].dtype for k in self._buffers):
            self._buffers = {k: np.empty_like(v) for k, v in self.params.items() if v.ndim == 2}
        return self._loss(X, y, self._buffers)

    @contextlib.contextmanager
    def fixed_dropout(self, seed=0):
        """Within the block, every training-mode call uses the same dropout masks (those
        of ``dropout_seed=seed``), so that the loss is a deterministic function of the
        parameters, as a numeric gradient check needs."""
        old, self.dropout_seed = self.dropout_seed, seed
        try:
            yield self
        finally:
            self.dropout_seed = old

    def _loss(self, X, y, buffers):
        X = self._as_input(X)
        X = X.reshape(len(X), -1)
        if y is None:
            h = X
            for i in range(1, self.num_layers):
                h = relu_forward(linear_forward(h, self.params[f"W{i}"], self.params[f"b{i}"]))
            L = self.num_layers
            return linear_forward(h, self.params[f"W{L}"], self.params[f"b{L}"])
        soft = None
        if np.asarray(y).dtype.names:  # soft_labels: hard ids and the teacher's probabilities
            y, soft = y["label"], y["soft"]
        y = check_labels(y, X.shape[0], self.num_classes)
        p, L = self.dropout, self.num_layers
        seed = self.rng if self.dropout_seed is None else int(self.dropout_seed)

        h, caches = X, []
        for i in range(1, L):
            a = relu_forward(linear_forward(h, self.params[f"W{i}"], self.params[f"b{i}"]))
            mask = None
            if p > 0:
                a, mask = dropout_forward(a, p, train=True, seed=seed)
            caches.append((h, a, mask))
            h = a
        scores = linear_forward(h, self.params[f"W{L}"], self.params[f"b{L}"])

        if soft is None:
            loss, dh = softmax(scores, y)
        else:
            loss, dh = distillation_loss(scores, y, soft.astype(scores.dtype, copy=False),
                                         **self.distillation)
        bufs = buffers or {}
        grads = {}
        dh, grads[f"W{L}"], grads[f"b{L}"] = _linear_grads(
            dh, h, self.params[f"W{L}"], bufs.get(f"W{L}"), need_dX=True)
        for i in range(L - 1, 0, -1):
            h_in, a, mask = caches[i - 1]
            if mask is not None:
                dh = dropout_backward(dh, mask, p)
            dh = relu_backward(dh, a)  # a > 0 exactly where the pre-activation is > 0
            # the input needs no gradient: the first layer skips its largest product
            dh, grads[f"W{i}"], grads[f"b{i}"] = _linear_grads(
                dh, h_in, self.params[f"W{i}"], bufs.get(f"W{i}"), need_dX=i > 1)

        reg_loss = 0.0
        if self.reg:
            reg = self.dtype.type(self.reg)
            for i in range(1, L + 1):
                W = self.params[f"W{i}"]
                reg_loss += 0.5 * self.reg * float(np.vdot(W, W))
                grads[f"W{i}"] += scaled(W, reg)
        self.last_reg_loss = reg_loss
        return loss + reg_loss, grads

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


def _init_std(weight_scale, fan_in, fan_out):
    if isinstance(weight_scale, str):
        return INITS[weight_scale](fan_in, fan_out)
    return float(weight_scale)


def _linear_grads(dout, X, W, dW_out=None, need_dX=True):
    """``linear_backward`` for 2-D X, writing dW into ``dW_out`` if given and skipping
    dX unless ``need_dX``: returns (dX or None, dW, db)."""
    dW = np.matmul(X.T, dout, out=dW_out)
    db = dout.sum(axis=0)
    return (dout @ W.T if need_dX else None), dW, db
