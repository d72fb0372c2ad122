"""The compiled momentum update gives NumPy's bits, and steps aside where it cannot."""
import numpy as np
import pytest

from nnlib import FullyConnectedNet, Solver, _fused, sgd_momentum

pytest.importorskip("numba")


def bits(a):
    """The array's bytes as unsigned integers: equal only if every bit is (NaN, -0.0)."""
    return a.view({4: np.uint32, 8: np.uint64}[a.itemsize])


def reference(w, v, dw, mu, lr):
    """The update in plain float arithmetic, one element at a time, in w's dtype."""
    kind = w.dtype.type
    w, v = w.copy(), v.copy()
    for i in np.ndindex(w.shape):
        v[i] = kind(kind(mu) * v[i]) - kind(kind(lr) * dw[i])
        w[i] = w[i] + v[i]
    return w, v


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(37, 23), (5,), (2, 3, 4)])
def test_the_compiled_update_is_bit_for_bit_the_plain_arithmetic(dtype, shape):
    rng = np.random.default_rng(0)
    # magnitudes over 12 orders, so that every rounding of the three operations matters
    w, v, dw = (rng.standard_normal(shape) * 10.0 ** rng.integers(-6, 6, shape)
                for _ in range(3))
    w, v, dw = w.astype(dtype), v.astype(dtype), dw.astype(dtype)
    v.flat[:3] = [-0.0, np.inf, np.nan][:v.size]
    dw.flat[0] = 0.0
    want_w, want_v = reference(w, v, dw, 0.9, 1.234e-3)
    with np.errstate(invalid="ignore"):
        assert _fused.momentum_step(w, v, dw, 0.9, 1.234e-3)
    assert np.array_equal(bits(w), bits(want_w))
    assert np.array_equal(bits(v), bits(want_v))


def test_sgd_momentum_is_the_same_with_and_without_numba(monkeypatch):
    rng = np.random.default_rng(1)
    w0 = rng.standard_normal((300, 70)).astype(np.float32)
    grads = [rng.standard_normal((300, 70)).astype(np.float32) for _ in range(4)]
    runs = []
    for enabled in (True, False):
        monkeypatch.setattr(_fused, "ENABLED", enabled)
        w, cfg = w0.copy(), {"learning_rate": 3e-2, "momentum": 0.95}
        for dw in grads:
            w, cfg = sgd_momentum(w, dw, cfg)
        runs.append((bits(w), bits(cfg["velocity"])))
    assert np.array_equal(runs[0][0], runs[1][0])
    assert np.array_equal(runs[0][1], runs[1][1])
    assert not np.array_equal(runs[0][0], bits(w0))  # the steps did move the weights


def test_training_gives_the_same_weights_with_and_without_numba(monkeypatch):
    rng = np.random.default_rng(2)
    data = {"X_train": rng.standard_normal((200, 30)).astype(np.float32),
            "y_train": rng.integers(0, 4, 200),
            "X_val": rng.standard_normal((50, 30)).astype(np.float32),
            "y_val": rng.integers(0, 4, 50)}
    trained = []
    for enabled in (True, False):
        monkeypatch.setattr(_fused, "ENABLED", enabled)
        model = FullyConnectedNet([40, 20], input_dim=30, num_classes=4, reg=1e-3,
                                  weight_scale="he", seed=0)
        Solver(model, data, update_rule="sgd_momentum", num_epochs=3, batch_size=25,
               optim_config={"learning_rate": 5e-2}, verbose=False, seed=0).train()
        trained.append(model.params)
    for k in trained[0]:
        assert np.array_equal(bits(trained[0][k]), bits(trained[1][k])), k


def _untouched(w, v, dw, mu=0.9, lr=0.1):
    before = [np.array(a, copy=True) for a in (w, v, dw)]
    assert not _fused.momentum_step(w, v, dw, mu, lr)
    for a, b in zip((w, v, dw), before):
        assert np.array_equal(a, b)


def test_it_steps_aside_where_the_loop_does_not_apply(monkeypatch):
    a = np.arange(12.0).reshape(3, 4)
    _untouched(a.copy(), np.ones((3, 4)), np.ones((3, 4), np.float32))  # mixed dtypes
    _untouched(a.copy(), np.ones((4, 3)), np.ones((3, 4)))  # other shapes
    _untouched(a.copy().T, np.ones((4, 3)), np.ones((4, 3)))  # not C-contiguous
    _untouched(np.arange(12).reshape(3, 4), np.ones((3, 4), int), np.ones((3, 4), int))
    frozen = a.copy()
    frozen.flags.writeable = False
    _untouched(frozen, np.ones((3, 4)), np.ones((3, 4)))
    shared = a.copy()
    _untouched(shared, shared, np.ones((3, 4)))  # v is w
    _untouched(shared, np.ones((3, 4)), shared)  # dw is w
    monkeypatch.setattr(_fused, "ENABLED", False)
    _untouched(a.copy(), np.ones((3, 4)), np.ones((3, 4)))


def test_sgd_momentum_falls_back_to_numpy_for_what_the_loop_refuses():
    w = np.arange(12.0).reshape(3, 4).T  # not C-contiguous: NumPy's update
    dw = np.ones((4, 3))
    w, cfg = sgd_momentum(w, dw, {"learning_rate": 0.5, "momentum": 0.9})
    assert np.array_equal(w, np.arange(12.0).reshape(3, 4).T - 0.5)
    assert np.array_equal(cfg["velocity"], np.full((4, 3), -0.5))
