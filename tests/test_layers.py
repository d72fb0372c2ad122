import numpy as np
import pytest

from nnlib import (
    dropout_backward,
    dropout_forward,
    eval_numerical_gradient_array,
    linear_backward,
    linear_forward,
    rel_error,
    relu_backward,
    relu_forward,
    softmax,
)
from nnlib.gradient_check import eval_numerical_gradient


def test_linear_forward_matches_hand_computed_values():
    X = np.linspace(-0.1, 0.5, num=2 * 4 * 5 * 6).reshape(2, 4, 5, 6)
    W = np.linspace(-0.2, 0.3, num=120 * 3).reshape(120, 3)
    b = np.linspace(-0.3, 0.1, num=3)
    out = linear_forward(X, W, b)
    expected = X.reshape(2, -1) @ W + b
    assert out.shape == (2, 3) and out.dtype == np.float64
    assert rel_error(out, expected) < 1e-12
    # the first row by explicit summation
    assert np.isclose(out[0, 1], sum(X.reshape(2, -1)[0, k] * W[k, 1] for k in range(120)) + b[1])


def test_linear_backward_numeric(rng):
    X = rng.standard_normal((10, 2, 3))
    W = rng.standard_normal((6, 5))
    b = rng.standard_normal(5)
    dout = rng.standard_normal((10, 5))
    dX, dW, db = linear_backward(dout, X, W, b)
    assert dX.shape == X.shape
    assert rel_error(dX, eval_numerical_gradient_array(
        lambda x: linear_forward(x, W, b), X, dout)) <= 1e-8
    assert rel_error(dW, eval_numerical_gradient_array(
        lambda w: linear_forward(X, w, b), W, dout)) <= 1e-8
    assert rel_error(db, eval_numerical_gradient_array(
        lambda c: linear_forward(X, W, c), b, dout)) <= 1e-8


def test_layers_keep_float32(rng):
    X = rng.standard_normal((4, 3), dtype=np.float32)
    W = rng.standard_normal((3, 2), dtype=np.float32)
    b = np.zeros(2, np.float32)
    assert linear_forward(X, W, b).dtype == np.float32
    assert all(g.dtype == np.float32 for g in
               linear_backward(np.ones((4, 2), np.float32), X, W, b))
    assert relu_forward(X).dtype == np.float32
    assert dropout_forward(X, 0.5, seed=1)[0].dtype == np.float32


def test_relu_forward_backward(rng):
    X = np.linspace(-0.5, 0.5, num=12).reshape(3, 4)
    X_before = X.copy()
    out = relu_forward(X)
    assert np.array_equal(out, np.maximum(X, 0))
    assert np.array_equal(X, X_before)
    X = rng.standard_normal((10, 10))
    dout = rng.standard_normal((10, 10))
    dX = relu_backward(dout, X)
    num = eval_numerical_gradient_array(relu_forward, X, dout)
    assert rel_error(dX, num) <= 1e-8
    assert np.all(relu_backward(np.ones((1, 3)), np.array([[-1.0, 0.0, 2.0]])) == [0, 0, 1])



def test_relu_backward_blocked_entries_are_positive_zero():
    """A negative dout where X <= 0 gives 0.0, not -0.0: the same bits as np.where."""
    dout = np.array([[-1.5, -2.0, -3.0, 4.0]], np.float32)
    X = np.array([[-1.0, 0.0, 2.0, -0.5]], np.float32)
    dX = relu_backward(dout, X)
    assert dX.tobytes() == np.array([[0.0, 0.0, -3.0, 0.0]], np.float32).tobytes()

def test_dropout_mask_matches_randomstate_seed():
    X = np.ones((50, 40))
    p = 0.3
    out, mask = dropout_forward(X, p, train=True, seed=42)
    expected_keep = np.random.RandomState(42).rand(50, 40) > p
    assert np.array_equal(mask.astype(bool), expected_keep)
    assert np.allclose(out, expected_keep / (1 - p))


def test_dropout_leaves_global_rng_alone():
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    dropout_forward(np.ones((5, 5)), 0.5, seed=7)
    dropout_forward(np.ones((5, 5)), 0.5, seed=np.random.default_rng(7))
    assert np.array_equal(np.random.get_state()[1], before)


@pytest.mark.parametrize("p", [0.25, 0.5, 0.75])
def test_dropout_statistics(p):
    X = np.random.default_rng(0).standard_normal((500, 500)) + 10
    out, mask = dropout_forward(X, p, train=True, seed=np.random.default_rng(1))
    assert abs((out == 0).mean() - p) < 0.01            # the fraction dropped is p
    assert abs(out.mean() - X.mean()) / X.mean() < 0.01  # inverted: expectation kept
    out_test, mask_test = dropout_forward(X, p, train=False)
    assert mask_test is None and np.array_equal(out_test, X)


def test_dropout_backward_reuses_mask(rng):
    X = rng.standard_normal((10, 10)) + 10
    dout = rng.standard_normal((10, 10))
    p = 0.2
    _, mask = dropout_forward(X, p, train=True, seed=123)
    dX = dropout_backward(dout, mask, p)
    # the same seed gives the same mask, so the numeric gradient sees a fixed function
    num = eval_numerical_gradient_array(
        lambda x: dropout_forward(x, p, train=True, seed=123)[0], X, dout)
    assert rel_error(dX, num) <= 1e-8
    assert np.array_equal(dropout_backward(dout, None, p, train=False), dout)


def test_softmax_loss_and_gradient(rng):
    N, C = 50, 10
    logits = 0.001 * rng.standard_normal((N, C))
    y = rng.integers(0, C, N)
    loss, dlogits = softmax(logits, y)
    assert abs(loss - np.log(C)) < 1e-2  # near-uniform scores
    num = eval_numerical_gradient(lambda z: softmax(z, y)[0], logits, h=1e-6)
    assert rel_error(num, dlogits) <= 1e-7
    # the exact formula, in float64
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    assert abs(loss - -np.log(p[np.arange(N), y]).mean()) < 1e-12


def test_softmax_is_stable_for_huge_logits():
    logits = np.array([[1e4, 0.0, -1e4], [-1e4, -1e4, 1e4], [1e4, 1e4, 1e4]])
    y = np.array([0, 0, 2])
    loss, dlogits = softmax(logits, y)
    assert np.isfinite(loss) and np.all(np.isfinite(dlogits))
    # row 0 is certain and right (0), row 1 certain and wrong (2e4), row 2 uniform
    assert np.isclose(loss, (0 + 2e4 + np.log(3)) / 3)
    assert np.allclose(dlogits.sum(axis=1), 0)


def test_layer_errors_are_clear():
    with pytest.raises(ValueError, match=r"W must be \(6, M\)"):
        linear_forward(np.zeros((2, 6)), np.zeros((5, 3)), np.zeros(3))
    with pytest.raises(ValueError, match="must lie in"):
        dropout_forward(np.zeros((2, 2)), 1.0)
    with pytest.raises(ValueError, match="labels must lie in"):
        softmax(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(ValueError, match="shape"):
        relu_backward(np.zeros((2, 2)), np.zeros((2, 3)))
    with pytest.raises(TypeError, match="seed"):
        dropout_forward(np.zeros((2, 2)), 0.5, seed="abc")
