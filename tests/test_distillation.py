"""Soft-target cross-entropy and distillation: values against direct formulas, gradients
against centred differences, and training on a teacher's probabilities."""
import numpy as np
import pytest

from nnlib import (
    FullyConnectedNet,
    Solver,
    distillation_loss,
    eval_numerical_gradient,
    soft_cross_entropy,
    soft_labels,
    softmax,
)


def probs(rng, n, c):
    p = rng.random((n, c)) + 0.05
    return p / p.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("T", [1.0, 2.5, 8.0])
def test_soft_cross_entropy_value_and_gradient(T):
    rng = np.random.default_rng(0)
    z, t = rng.standard_normal((5, 4)) * 3, probs(rng, 5, 4)
    loss, dz = soft_cross_entropy(z, t, T)
    q = np.exp(z / T) / np.exp(z / T).sum(axis=1, keepdims=True)  # naive: small logits
    assert loss == pytest.approx(-np.mean(np.sum(t * np.log(q), axis=1)), rel=1e-12)
    num = eval_numerical_gradient(lambda x: soft_cross_entropy(x, t, T)[0], z.copy())
    np.testing.assert_allclose(dz, num, rtol=1e-6, atol=1e-10)


def test_one_hot_targets_at_temperature_one_are_the_softmax_loss():
    rng = np.random.default_rng(1)
    z, y = rng.standard_normal((6, 3)), rng.integers(0, 3, 6)
    loss, dz = soft_cross_entropy(z, np.eye(3)[y])
    ref_loss, ref_dz = softmax(z, y)
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    np.testing.assert_allclose(dz, ref_dz, rtol=1e-12)


def test_huge_logits_stay_finite():
    z = np.array([[1e4, -1e4, 0.0]])
    loss, dz = soft_cross_entropy(z, np.array([[0.2, 0.3, 0.5]]), 2.0)
    assert np.isfinite(loss) and np.isfinite(dz).all()


@pytest.mark.parametrize("alpha", [0.0, 0.3, 1.0])
def test_distillation_mixes_soft_and_hard_losses(alpha):
    rng = np.random.default_rng(2)
    z, y, t, T = rng.standard_normal((4, 5)), rng.integers(0, 5, 4), probs(rng, 4, 5), 3.0
    loss, dz = distillation_loss(z, y, t, T, alpha)
    expected = alpha * T * T * soft_cross_entropy(z, t, T)[0] + (1 - alpha) * softmax(z, y)[0]
    assert loss == pytest.approx(expected, rel=1e-12)
    num = eval_numerical_gradient(lambda x: distillation_loss(x, y, t, T, alpha)[0], z.copy())
    np.testing.assert_allclose(dz, num, rtol=1e-6, atol=1e-10)


@pytest.mark.parametrize("bad, message", [
    (dict(targets=[[0.5, 0.6]]), "probability rows"),
    (dict(targets=[[1.2, -0.2]]), "probability rows"),
    (dict(temperature=0.0), "temperature must be positive"),
    (dict(targets=[[1.0, 0.0, 0.0]]), "must both have shape"),
])
def test_bad_soft_targets_are_refused(bad, message):
    args = dict(logits=np.zeros((1, 2)), targets=[[0.5, 0.5]], temperature=1.0) | bad
    with pytest.raises(ValueError, match=message):
        soft_cross_entropy(np.asarray(args["logits"]), np.asarray(args["targets"]),
                           args["temperature"])
    with pytest.raises(ValueError, match="alpha"):
        distillation_loss(np.zeros((1, 2)), [0], np.array([[0.5, 0.5]]), 1.0, 1.5)


def test_network_gradients_with_soft_labels():
    rng = np.random.default_rng(11)  # a point away from ReLU kinks
    model = FullyConnectedNet([6, 5], input_dim=4, num_classes=3, reg=0.1, dropout=0.2,
                              weight_scale=0.5, dtype=np.float64, seed=0, dropout_seed=7)
    model.distillation = {"temperature": 2.0, "alpha": 0.7}
    X, y = rng.standard_normal((5, 4)), rng.integers(0, 3, 5)
    labels = soft_labels(y, probs(rng, 5, 3))
    _, grads = model.loss(X, labels)
    for name, param in model.params.items():
        num = eval_numerical_gradient(lambda p, name=name: (model.params.__setitem__(name, p),
                                                 model.loss(X, labels)[0])[1], param)
        np.testing.assert_allclose(grads[name], num, rtol=1e-5, atol=1e-8)


def test_student_learns_a_teachers_probabilities():
    """A student trained on soft labels alone (alpha 1) matches the teacher's classes on
    fresh inputs better than one trained on the same few hard labels."""
    rng = np.random.default_rng(4)
    W = rng.standard_normal((10, 4)) * 2  # the teacher: a linear softmax model
    X = rng.standard_normal((600, 10)).astype(np.float32)
    X_new = rng.standard_normal((2000, 10)).astype(np.float32)

    def teacher(x):
        z = x @ W
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    y = teacher(X).argmax(1)
    y_noisy = np.where(rng.random(600) < 0.3, rng.integers(0, 4, 600), y)  # 30% wrong
    agreement = {}
    for name, labels in (("hard", y_noisy), ("soft", soft_labels(y_noisy, teacher(X)))):
        model = FullyConnectedNet([32], input_dim=10, num_classes=4, seed=0,
                                  weight_scale="he")
        model.distillation = {"temperature": 2.0, "alpha": 1.0}
        solver = Solver(model, {"X_train": X, "y_train": labels, "X_val": X[:100],
                                "y_val": y[:100]},
                        update_rule="sgd_momentum",
                        optim_config={"learning_rate": 0.05, "momentum": 0.9},
                        num_epochs=30, batch_size=50, verbose=False, seed=0)
        solver.train()
        assert len(solver.train_acc_history) == 30  # accuracies against the hard ids
        agreement[name] = np.mean(model.predict(X_new) == teacher(X_new).argmax(1))
    assert agreement["soft"] > 0.9 and agreement["soft"] > agreement["hard"] + 0.03


@pytest.mark.parametrize("T", [1.0, 2.0, 5.0])
def test_soften_is_the_softmax_of_log_probabilities_at_T(T):
    from nnlib import soften
    rng = np.random.default_rng(3)
    p = probs(rng, 4, 7)
    got = soften(p, T)
    ref = p ** (1 / T) / (p ** (1 / T)).sum(axis=1, keepdims=True)  # exp(log p / T)
    np.testing.assert_allclose(got, ref, rtol=1e-6)
    entropy = -(got * np.log(got)).sum(axis=1)
    assert T == 1.0 or (entropy > -(p * np.log(p)).sum(axis=1)).all()  # flatter
    zero = soften(np.array([[0.0, 0.25, 0.75]]), T)
    assert zero[0, 0] == 0.0 and zero.sum() == pytest.approx(1.0)
