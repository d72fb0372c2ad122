import numpy as np
import pytest

from nnlib import UPDATE_RULES, adam, nesterov_momentum, rel_error, rmsprop, sgd, sgd_momentum
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


# the expected values of the Stanford cs231n checks (computed there, not with this code)
CS231N_W = np.linspace(-0.4, 0.6, num=20).reshape(4, 5)
CS231N_DW = np.linspace(-0.6, 0.4, num=20).reshape(4, 5)


def test_rmsprop_matches_the_cs231n_check():
    cache = np.linspace(0.6, 0.9, num=20).reshape(4, 5)
    next_w, cfg = rmsprop(CS231N_W.copy(), CS231N_DW, {"learning_rate": 1e-2, "cache": cache})
    expected_w = [[-0.39223849, -0.34037513, -0.28849239, -0.23659121, -0.18467247],
                  [-0.132737, -0.08078555, -0.02881884, 0.02316247, 0.07515774],
                  [0.12716641, 0.17918792, 0.23122175, 0.28326742, 0.33532447],
                  [0.38739248, 0.43947102, 0.49155973, 0.54365823, 0.59576619]]
    expected_cache = [[0.5976, 0.6126277, 0.6277108, 0.64284931, 0.65804321],
                      [0.67329252, 0.68859723, 0.70395734, 0.71937285, 0.73484377],
                      [0.75037008, 0.7659518, 0.78158892, 0.79728144, 0.81302936],
                      [0.82883269, 0.84469141, 0.86060554, 0.87657507, 0.8926]]
    assert rel_error(next_w, expected_w) < 1e-7
    assert rel_error(cfg["cache"], expected_cache) < 1e-7


def test_rmsprop_defaults():
    w, cfg = rmsprop(np.array([1.0]), np.array([2.0]))
    assert (cfg["learning_rate"], cfg["decay_rate"], cfg["epsilon"]) == (1e-2, 0.99, 1e-8)
    # cache = 0.01 * 4; step = 1e-2 * 2 / 0.2
    assert np.allclose(cfg["cache"], [0.04]) and np.allclose(w, [0.9])


def test_adam_matches_the_cs231n_check():
    m = np.linspace(0.6, 0.9, num=20).reshape(4, 5)
    v = np.linspace(0.7, 0.5, num=20).reshape(4, 5)
    next_w, cfg = adam(CS231N_W.copy(), CS231N_DW,
                       {"learning_rate": 1e-2, "m": m, "v": v, "t": 5})
    expected_w = [[-0.40094747, -0.34836187, -0.29577703, -0.24319299, -0.19060977],
                  [-0.1380274, -0.08544591, -0.03286534, 0.01971428, 0.0722929],
                  [0.1248705, 0.17744702, 0.23002243, 0.28259667, 0.33516969],
                  [0.38774145, 0.44031188, 0.49288093, 0.54544852, 0.59801459]]
    assert rel_error(next_w, expected_w) < 1e-6 and cfg["t"] == 6


def test_adam_bias_correction_follows_the_step_count():
    """Three steps against a scalar transcription of Kingma and Ba's Algorithm 1."""
    w, cfg = np.array([0.5]), {"learning_rate": 0.1}
    ref_w, m, v = 0.5, 0.0, 0.0
    for t, g in enumerate([1.0, -3.0, 0.5], start=1):
        w, cfg = adam(w, np.array([g]), cfg)
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        ref_w -= 0.1 * (m / (1 - 0.9 ** t)) / ((v / (1 - 0.999 ** t)) ** 0.5 + 1e-8)
        assert abs(w[0] - ref_w) < 1e-12 and cfg["t"] == t


def test_sgd_momentum_alternating_shapes_reuse_no_stale_scratch():
    """The scaled gradient lives in a scratch array reused per shape: alternating two
    parameters of different shapes (and dtypes) gives, bit for bit, the steps computed
    with fresh temporaries, and leaves every gradient untouched."""
    rng = np.random.default_rng(3)
    shapes = [((40, 30), np.float32), ((30,), np.float32), ((40, 30), np.float64)]
    ws = [rng.standard_normal(s).astype(t) for s, t in shapes]
    refs = [(w.copy(), np.zeros_like(w)) for w in ws]
    configs = [{"learning_rate": 0.1, "momentum": 0.9} for _ in ws]
    for _ in range(3):
        for i, (w, (rw, rv)) in enumerate(zip(ws, refs)):
            dw = rng.standard_normal(w.shape).astype(w.dtype)
            dw_before = dw.copy()
            sgd_momentum(w, dw, configs[i])
            rv *= w.dtype.type(0.9)
            rv -= w.dtype.type(0.1) * dw
            rw += rv
            assert w.tobytes() == rw.tobytes()
            assert np.array_equal(dw, dw_before)
