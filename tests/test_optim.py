import numpy as np
import pytest

from nnlib import UPDATE_RULES, adam, nesterov_momentum, rel_error, sgd, sgd_momentum
from nnlib.optim import get_update_rule


def test_sgd_step():
    w, dw = np.array([1.0, -2.0]), np.array([0.5, 0.5])
    next_w, cfg = sgd(w, dw, {"learning_rate": 0.1})
    assert np.allclose(next_w, [0.95, -2.05])


def test_sgd_momentum_matches_hand_computed_steps():
    w, dw = np.array([1.0, 2.0]), np.array([0.1, -0.2])
    cfg = {"learning_rate": 0.5, "momentum": 0.9}
    w, cfg = sgd_momentum(w, dw, cfg)  # v = -0.5*dw = [-0.05, 0.1]
    assert np.allclose(cfg["velocity"], [-0.05, 0.1])
    assert np.allclose(w, [0.95, 2.1])
    w, cfg = sgd_momentum(w, dw, cfg)  # v = 0.9*v - 0.5*dw = [-0.095, 0.19]
    assert np.allclose(cfg["velocity"], [-0.095, 0.19])
    assert np.allclose(w, [0.855, 2.29])


def test_sgd_momentum_coursework_values():
    N, D = 4, 5
    w = np.linspace(-0.4, 0.6, num=N * D).reshape(N, D)
    dw = np.linspace(-0.6, 0.4, num=N * D).reshape(N, D)
    v = np.linspace(0.6, 0.9, num=N * D).reshape(N, D)
    expected_v = 0.9 * v - 1e-3 * dw
    expected_w = w + expected_v
    next_w, cfg = sgd_momentum(w.copy(), dw, {"learning_rate": 1e-3, "velocity": v.copy()})
    assert rel_error(next_w, expected_w) < 1e-12
    assert rel_error(cfg["velocity"], expected_v) < 1e-12


def test_nesterov_step():
    w, dw = np.array([1.0]), np.array([2.0])
    cfg = {"learning_rate": 0.1, "momentum": 0.5, "velocity": np.array([1.0])}
    w, cfg = nesterov_momentum(w, dw, cfg)
    # v' = 0.5*1 - 0.1*2 = 0.3; w = 1 - 0.5*1 + 1.5*0.3 = 0.95
    assert np.allclose(cfg["velocity"], [0.3]) and np.allclose(w, [0.95])


def test_adam_first_step_moves_by_learning_rate():
    w, dw = np.array([1.0, -1.0]), np.array([3.0, -0.01])
    w, cfg = adam(w, dw, {"learning_rate": 0.1})
    # bias-corrected first step is lr * sign(dw) (up to epsilon)
    assert np.allclose(w, [0.9, -0.9], atol=1e-6) and cfg["t"] == 1


def test_registry():
    assert set(UPDATE_RULES) == {"sgd", "sgd_momentum", "nesterov_momentum", "rmsprop", "adam"}
    assert get_update_rule("adam") is adam
    with pytest.raises(ValueError, match="unknown update rule 'adagrad'"):
        get_update_rule("adagrad")
