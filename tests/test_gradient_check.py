"""Numeric gradients (nnlib.gradient_check) against hand-computed values."""
import types

import numpy as np
import pytest

from nnlib.gradient_check import (
    check_model_gradients,
    eval_numerical_gradient,
    eval_numerical_gradient_array,
    rel_error,
    rel_error_norm,
)


@pytest.mark.parametrize("a, b, expected", [
    ([1.0, 2.0], [1.1, 2.0], 0.1 / 2.1),
    ([[3.0, -1.0]], [[1.0, 1.0]], 2.0 / 2.0),  # the largest entry counts
    ([0.0], [0.0], 0.0),
    ([1e-13], [0.0], 0.1),  # tiny sums divide by 1e-12, not by themselves
    ([2e-12], [0.0], 1.0),
    ([-4.0], [-2.0], 2.0 / 6.0),  # |a| + |b|, not |a + b|
    (5, 4, 1 / 9),
])
def test_rel_error_by_hand(a, b, expected):
    assert rel_error(a, b) == pytest.approx(expected, rel=1e-12)
    assert type(rel_error(a, b)) is float


@pytest.mark.parametrize("rel", [rel_error, rel_error_norm])
def test_integer_inputs_do_not_overflow(rel):
    # in uint8, 0 - 1 is 255; in int8, |-128| is -128
    assert rel(np.array([0], np.uint8), np.array([1], np.uint8)) == pytest.approx(1.0)
    assert rel(np.array([1], np.uint8), np.array([0], np.uint8)) == pytest.approx(1.0)
    assert rel(np.array([-128], np.int8), np.array([127], np.int8)) == pytest.approx(1.0)
    assert rel(np.array([-128], np.int8), np.array([0], np.int8)) == pytest.approx(1.0)
    assert rel(np.array([0], np.int8), np.array([-128], np.int8)) == pytest.approx(1.0)


@pytest.mark.parametrize("a, b, expected", [
    ([3.0, 0.0], [0.0, 4.0], 5.0 / 7.0),  # ||(3, -4)|| / (3 + 4)
    ([1.0, 1e-9], [1.0, 0.0], 1e-9 / 2.0),  # not dominated by the near-zero entry
    ([0.0], [0.0], 0.0),
    ([3e-13], [4e-13], 1e-13 / 1e-12),  # the denominator is at least 1e-12
])
def test_rel_error_norm_by_hand(a, b, expected):
    assert rel_error_norm(a, b) == pytest.approx(expected, rel=1e-12)
    assert type(rel_error_norm(a, b)) is float
    assert rel_error([1.0, 1e-9], [1.0, 0.0]) == pytest.approx(1.0)  # where they differ


def test_centred_differences_of_a_cubic():
    # (f(x + h) - f(x - h)) / 2h of x^3 at 0 is h^2: the step and the divisor as documented
    for h in (1e-2, 1e-3):
        g = eval_numerical_gradient(lambda x: float(np.sum(x ** 3)), np.zeros(2), h=h)
        np.testing.assert_allclose(g, [h ** 2, h ** 2], rtol=1e-9)
    g = eval_numerical_gradient(lambda x: float(np.sum(x ** 3)), np.zeros(1))
    np.testing.assert_allclose(g, [1e-10], rtol=1e-6)  # the default h is 1e-5
    # x^2 at 1: the centred difference is exact, a forward one would give 2 + h = 2.001
    g = eval_numerical_gradient(lambda x: float(x[0] ** 2), np.ones(1), h=1e-3)
    assert abs(g[0] - 2.0) < 1e-9


def test_each_entry_gets_its_own_partial_derivative(rng):
    w = rng.standard_normal((3, 4))
    x = rng.standard_normal((3, 4))
    before = x.copy()
    g = eval_numerical_gradient(lambda v: float(np.sum(w * v ** 2)), x, h=1e-4)
    np.testing.assert_allclose(g, 2 * w * before, rtol=1e-7, atol=1e-9)
    np.testing.assert_array_equal(x, before)  # restored exactly
    assert g.shape == x.shape and g.dtype == x.dtype


def test_a_function_returning_a_view_of_its_input():
    x = np.array([1.0, 2.0, 3.0])
    # x[1:2] is a view: read after both steps it would give a zero difference
    np.testing.assert_allclose(eval_numerical_gradient(lambda v: v[1:2], x), [0, 1, 0],
                               atol=1e-9)
    one = np.array([3.0])
    np.testing.assert_allclose(eval_numerical_gradient(lambda v: v, one), [1.0], atol=1e-9)
    np.testing.assert_allclose(eval_numerical_gradient(lambda v: v.reshape(()), one), [1.0],
                               atol=1e-9)
    np.testing.assert_array_equal(x, [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=r"^f must return a scalar, got an array of shape "
                                         r"\(3,\); use eval_numerical_gradient_array"):
        eval_numerical_gradient(lambda v: v, x)


def test_array_gradients_weight_the_outputs_by_dout(rng):
    x = rng.standard_normal((2, 3))
    dout = rng.standard_normal((2, 3))
    before = x.copy()
    g = eval_numerical_gradient_array(lambda v: v ** 2, x, dout, h=1e-3)
    np.testing.assert_allclose(g, 2 * before * dout, rtol=1e-9)  # centred: exact for squares
    np.testing.assert_array_equal(x, before)
    # f returning its input itself, or a view of it (here reversed), is read at each step
    np.testing.assert_allclose(eval_numerical_gradient_array(lambda v: v, x, dout), dout,
                               rtol=1e-8)
    np.testing.assert_allclose(eval_numerical_gradient_array(lambda v: v[:, ::-1], x, dout),
                               dout[:, ::-1], rtol=1e-8)
    g = eval_numerical_gradient_array(lambda v: v ** 3, np.zeros(1), np.ones(1), h=1e-2)
    np.testing.assert_allclose(g, [1e-4], rtol=1e-9)  # h^2, as for scalars
    g = eval_numerical_gradient_array(lambda v: v ** 3, np.zeros(1), np.ones(1))
    np.testing.assert_allclose(g, [1e-10], rtol=1e-6)


X_BATCH, Y_BATCH = object(), object()  # what the model must be given


class Cubic:
    """loss = sum(a * W^3) + sum(b); gradients 3 a W^2 and 1, or wrong ones on request."""

    def __init__(self, wrong=0.0, dropout=0.0):
        self.params = {"W": np.array([[1.0, -2.0], [0.5, 3.0]]), "b": np.array([0.3])}
        self.a = np.array([[1.0, 2.0], [3.0, 4.0]])
        self.wrong, self.fixed = wrong, 0
        if dropout is not None:
            self.dropout = dropout

    def loss(self, X, y):
        assert X is X_BATCH and y is Y_BATCH
        W, b = self.params["W"], self.params["b"]
        return (float(np.sum(self.a * W ** 3) + np.sum(b)),
                {"W": 3 * self.a * W ** 2 * (1 + self.wrong), "b": np.ones(1)})

    def fixed_dropout(self):
        import contextlib

        @contextlib.contextmanager
        def fixed():
            self.fixed += 1
            yield
        return fixed()


def test_model_gradients_are_compared_per_parameter():
    model = Cubic()
    errors = check_model_gradients(model, X_BATCH, Y_BATCH)
    assert set(errors) == {"W", "b"} and max(errors.values()) < 1e-9  # h = 1e-5
    W, a = model.params["W"], model.a
    # the centred difference of a W^3 is 3 a W^2 + a h^2: with h = 0.1, off by a / 100
    h = 0.1
    exact = 3 * a * W ** 2
    expected = np.linalg.norm(a * h ** 2) / (np.linalg.norm(exact + a * h ** 2)
                                             + np.linalg.norm(exact))
    errors = check_model_gradients(model, X_BATCH, Y_BATCH, h=h)
    assert errors["W"] == pytest.approx(expected, rel=1e-6) and errors["b"] < 1e-9
    errors = check_model_gradients(Cubic(wrong=0.1), X_BATCH, Y_BATCH, h=1e-4)
    assert errors["W"] == pytest.approx(0.1 / 2.1, rel=1e-6) and errors["b"] < 1e-9
    np.testing.assert_array_equal(model.params["W"], [[1.0, -2.0], [0.5, 3.0]])


@pytest.mark.parametrize("dropout, fixed", [(0.5, 1), (0.0, 0), (None, 0)])
def test_a_dropout_network_is_checked_with_its_masks_fixed(dropout, fixed):
    model = Cubic(dropout=dropout)  # None: a model without a dropout attribute
    check_model_gradients(model, X_BATCH, Y_BATCH)
    assert model.fixed == fixed


def test_a_dropout_network_without_fixed_masks_is_checked_as_it_is():
    cubic = Cubic()
    plain = types.SimpleNamespace(params=cubic.params, loss=cubic.loss, dropout=0.5)
    assert max(check_model_gradients(plain, X_BATCH, Y_BATCH).values()) < 1e-9
