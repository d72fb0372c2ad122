"""First-order update rules sharing one protocol.

``rule(w, dw, config=None) -> (next_w, config)``

- w: parameter array of any shape, updated in place and returned as ``next_w``
- dw: gradient of the loss w.r.t. w, same shape
- config: dict of hyper-parameters (learning_rate, momentum, ...) and the rule's state
  (velocity, moments); defaults are filled in with ``setdefault``. Pass the returned
  config back on the next call.
"""
from __future__ import annotations

import numpy as np

from nnlib._fused import momentum_step
from nnlib._scratch import scaled


def sgd(w, dw, config=None):
    """Vanilla stochastic gradient descent: ``w -= learning_rate * dw``."""
    config = {} if config is None else config
    config.setdefault("learning_rate", 1e-2)
    w -= w.dtype.type(config["learning_rate"]) * dw
    return w, config


def _momentum_state(w, config):
    """``config`` (a new dict if None) with the momentum rules' defaults, learning_rate
    1e-2 and momentum 0.9, and its velocity: zeros like ``w`` on the first step."""
    config = {} if config is None else config
    config.setdefault("learning_rate", 1e-2)
    config.setdefault("momentum", 0.9)
    v = config.get("velocity")
    return config, np.zeros_like(w) if v is None else v


def sgd_momentum(w, dw, config=None):
    """SGD with (heavy-ball) momentum.

    ``v = momentum * v - learning_rate * dw``; ``w += v``.
    config: learning_rate (1e-2), momentum (0.9), velocity (zeros like w).
    """
    config, v = _momentum_state(w, config)
    mu, lr = w.dtype.type(config["momentum"]), w.dtype.type(config["learning_rate"])
    if not momentum_step(w, v, dw, mu, lr):  # the same bits, in one compiled pass
        v *= mu
        v -= scaled(dw, lr)
        w += v
    config["velocity"] = v
    return w, config


def nesterov_momentum(w, dw, config=None):
    """Nesterov accelerated gradient in the form of Bengio et al. (2013).

    ``v_new = mu * v - lr * dw``; ``w += -mu * v + (1 + mu) * v_new``.
    config: learning_rate (1e-2), momentum (0.9), velocity (zeros like w).
    """
    config, v = _momentum_state(w, config)
    mu = w.dtype.type(config["momentum"])
    w -= mu * v
    v *= mu
    v -= w.dtype.type(config["learning_rate"]) * dw
    w += (1 + mu) * v
    config["velocity"] = v
    return w, config


def adam(w, dw, config=None):
    """Adam (Kingma and Ba, 2015) with bias correction.

    config: learning_rate (1e-3), beta1 (0.9), beta2 (0.999), epsilon (1e-8),
    m and v (zeros like w), t (0).
    """
    config = {} if config is None else config
    config.setdefault("learning_rate", 1e-3)
    config.setdefault("beta1", 0.9)
    config.setdefault("beta2", 0.999)
    config.setdefault("epsilon", 1e-8)
    config.setdefault("t", 0)
    m, v = config.get("m"), config.get("v")
    if m is None:
        m = np.zeros_like(w)
    if v is None:
        v = np.zeros_like(w)
    b1, b2 = config["beta1"], config["beta2"]
    t = config["t"] + 1
    m *= w.dtype.type(b1)
    m += w.dtype.type(1 - b1) * dw
    v *= w.dtype.type(b2)
    v += w.dtype.type(1 - b2) * (dw * dw)
    m_hat = m / w.dtype.type(1 - b1 ** t)
    v_hat = v / w.dtype.type(1 - b2 ** t)
    w -= w.dtype.type(config["learning_rate"]) * m_hat / (np.sqrt(v_hat) + config["epsilon"])
    config.update(m=m, v=v, t=t)
    return w, config


def rmsprop(w, dw, config=None):
    """RMSProp (Tieleman and Hinton, 2012): a moving average of squared gradients scales
    each parameter's step.

    ``cache = decay_rate * cache + (1 - decay_rate) * dw**2``;
    ``w -= learning_rate * dw / (sqrt(cache) + epsilon)``.
    config: learning_rate (1e-2), decay_rate (0.99), epsilon (1e-8), cache (zeros like w).
    """
    config = {} if config is None else config
    config.setdefault("learning_rate", 1e-2)
    config.setdefault("decay_rate", 0.99)
    config.setdefault("epsilon", 1e-8)
    cache = config.get("cache")
    if cache is None:
        cache = np.zeros_like(w)
    rho = w.dtype.type(config["decay_rate"])
    cache *= rho
    cache += (1 - rho) * (dw * dw)
    w -= w.dtype.type(config["learning_rate"]) * dw / (np.sqrt(cache) + config["epsilon"])
    config["cache"] = cache
    return w, config


UPDATE_RULES = {
    "sgd": sgd,
    "sgd_momentum": sgd_momentum,
    "nesterov_momentum": nesterov_momentum,
    "rmsprop": rmsprop,
    "adam": adam,
}


def get_update_rule(name):
    """Look an update rule up by name (a callable is returned unchanged)."""
    if callable(name):
        return name
    try:
        return UPDATE_RULES[name]
    except KeyError:
        raise ValueError(f"unknown update rule {name!r}; choose one of "
                         f"{sorted(UPDATE_RULES)} or pass a callable") from None
