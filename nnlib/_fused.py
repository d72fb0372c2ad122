"""The momentum update in one pass, compiled by Numba when it is installed.

NumPy's ``v *= mu; v -= lr * dw; w += v`` streams the weight-sized arrays through memory
about ten times; one compiled loop reads w, v and dw once and writes w and v once, which
is about twice as fast on a 3072 x 512 layer (``benchmarks/bench_mlp.py`` measures it
against the NumPy update). Each element goes through the same float operations in the
same order, and Numba's default (``fastmath=False``) fuses no multiply-add, so the result
is NumPy's bit for bit (``tests/test_fused.py``): every committed model trains to the
same bytes with or without Numba.
"""
from __future__ import annotations

import importlib.util
import threading

import numpy as np

ENABLED = importlib.util.find_spec("numba") is not None  # False: always NumPy's update
_compiled = None
_lock = threading.Lock()  # Optuna may train in several threads: compile once


def _momentum_loop(w, v, dw, mu, lr):
    for i in range(w.size):
        vi = mu * v[i] - lr * dw[i]
        v[i] = vi
        w[i] += vi


def _kernel():
    global _compiled
    with _lock:
        if _compiled is None:
            import numba  # imported on first use: it takes about a second
            _compiled = numba.njit(nogil=True)(_momentum_loop)
    return _compiled


def momentum_step(w, v, dw, mu, lr):
    """``v = mu * v - lr * dw``; ``w += v``, in place, in one pass.

    w, v, dw: arrays of one shape and one float dtype (float32 or float64); mu, lr:
    numbers, taken in that dtype. Returns False, having changed nothing, where the compiled
    loop does not apply (Numba missing or ``ENABLED`` False, other dtypes, arrays that are
    not C-contiguous, read-only or overlapping): the caller then updates with NumPy.
    """
    arrays = (w, v, dw)
    if not (ENABLED and w.dtype in (np.float32, np.float64)
            and all(a.dtype == w.dtype and a.shape == w.shape and a.flags.c_contiguous
                    for a in arrays)
            and w.flags.writeable and v.flags.writeable
            and not any(np.may_share_memory(a, b)
                        for a, b in ((w, v), (w, dw), (v, dw)))):
        return False
    kind = w.dtype.type
    _kernel()(w.reshape(-1), v.reshape(-1), dw.reshape(-1), kind(mu), kind(lr))
    return True
