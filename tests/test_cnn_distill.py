"""The Keras side of distillation: the slimmed student's start, the targets, the loss
(against nnlib's NumPy distillation_loss) and a resumable distillation run."""
import json
import math

import numpy as np
import pytest

pytest.importorskip("keras")

from nnlib import distillation_loss as numpy_distillation_loss  # noqa: E402
from nnlib import soften  # noqa: E402
from nnlib.cnn import ARCHITECTURES, build_cnn, configure_tensorflow, train_cnn  # noqa: E402
from nnlib.cnn.distill import (  # noqa: E402
    distillation_targets,
    keras_distillation_loss,
    label_accuracy,
    same_settings,
    same_targets,
    slim,
    targets_fingerprint,
)
from nnlib.cnn.recipes import train_student  # noqa: E402
from nnlib.cnn.stored import find_layer  # noqa: E402


@pytest.fixture
def arches(monkeypatch):
    """Two tiny layouts that differ only in their filters."""
    monkeypatch.setitem(ARCHITECTURES, "t_wide", dict(filters=(6, 8), convs=1, dense=16,
                                                      dropout=0.2))
    monkeypatch.setitem(ARCHITECTURES, "t_thin", dict(filters=(3, 4), convs=1, dense=16,
                                                      dropout=0.2))


def randomised(model, seed=0):
    rng = np.random.default_rng(seed)
    model.set_weights([rng.standard_normal(w.shape).astype(np.float32) * 0.3
                       + (1.0 if "variance" in v.path else 0.0)
                       for w, v in zip(model.get_weights(), model.weights)])
    return model


def test_slim_keeping_every_filter_is_the_same_network(arches):
    configure_tensorflow(seed=0)
    source = randomised(build_cnn("t_wide"))
    copy = slim(source, "t_wide")
    X = np.random.default_rng(1).integers(0, 256, (5, 48, 48, 1)).astype(np.float32)
    np.testing.assert_allclose(copy.predict(X, verbose=0), source.predict(X, verbose=0),
                               rtol=1e-5, atol=1e-6)


def test_slim_keeps_the_filters_with_the_largest_scale(arches):
    configure_tensorflow(seed=0)
    source = randomised(build_cnn("t_wide"))
    gamma, beta, mean, var = source.get_layer("bn1_1").get_weights()
    gamma = np.array([0.1, -3.0, 0.2, 2.0, -0.05, 1.0], np.float32)  # keep 1, 3, 5
    source.get_layer("bn1_1").set_weights([gamma, beta, mean, var])
    student = slim(source, "t_thin")
    kept = [1, 3, 5]
    np.testing.assert_array_equal(student.get_layer("bn1_1").get_weights()[0], gamma[kept])
    np.testing.assert_array_equal(student.get_layer("conv1_1").get_weights()[0],
                                  source.get_layer("conv1_1").get_weights()[0][..., kept])
    # the next convolution reads only the kept channels
    k2 = student.get_layer("conv2_1").get_weights()[0]
    assert k2.shape == (3, 3, 3, 4)
    g2 = np.abs(source.get_layer("bn2_1").get_weights()[0])
    kept2 = np.sort(np.argsort(-g2, kind="stable")[:4])
    k2_source = source.get_layer("conv2_1").get_weights()[0]
    np.testing.assert_array_equal(k2, k2_source[:, :, kept][..., kept2])
    np.testing.assert_array_equal(student.get_layer("dense").get_weights()[0],
                                  source.get_layer("dense").get_weights()[0][kept2])
    np.testing.assert_array_equal(student.get_layer("scores").get_weights()[0],
                                  source.get_layer("scores").get_weights()[0])


def test_slim_refuses_another_layout(arches):
    with pytest.raises(ValueError, match="layout"):
        slim(build_cnn("tiny"), "t_thin")  # 32 dense units, not 16
    with pytest.raises(ValueError, match="filters"):
        slim(build_cnn("t_thin"), "t_wide")


def test_targets_put_the_class_first_and_one_hot_rows_without_a_teacher():
    y = np.array([2, 0, 6])
    t = distillation_targets(y)
    assert t.shape == (3, 8) and t.dtype == np.float32
    np.testing.assert_array_equal(t[:, 0], y)
    np.testing.assert_array_equal(t[:, 1:], np.eye(7)[y])
    with pytest.raises(ValueError, match="shape"):
        distillation_targets(y, np.ones((2, 7)) / 7)


@pytest.mark.parametrize("T, alpha", [(1.0, 0.0), (1.0, 1.0), (4.0, 0.5), (2.0, 0.9)])
def test_keras_loss_equals_the_numpy_loss(T, alpha):
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((6, 7)) * 2
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)  # the student's outputs
    y = rng.integers(0, 7, 6)
    teacher = rng.random((6, 7)) + 0.01
    teacher /= teacher.sum(axis=1, keepdims=True)
    soft = soften(teacher, T)
    ref, _ = numpy_distillation_loss(logits, y, soft.astype(np.float64), T, alpha)
    got = keras_distillation_loss(T, alpha)(distillation_targets(y, soft), p.astype(np.float32))
    assert float(got) == pytest.approx(ref, rel=1e-4)


def test_label_accuracy_reads_the_class_column():
    metric = label_accuracy()
    y = distillation_targets(np.array([0, 1, 2]), np.full((3, 7), 1 / 7))
    metric.update_state(y, np.eye(7, dtype=np.float32)[[0, 1, 5]])
    assert metric.name == "accuracy" and float(metric.result()) == pytest.approx(2 / 3)


def test_find_layer_finds_the_model_itself():
    m = build_cnn("tiny")
    assert find_layer(m, m.name) is m and find_layer(m, "dense") is m.get_layer("dense")


def test_distillation_run_records_its_settings_and_reads_back(arches, tmp_path):
    configure_tensorflow(seed=0)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 7, 48)
    X = rng.integers(0, 50, (48, 48, 48)).astype(np.uint8)
    X[np.arange(48), :, y * 6] = 255
    data = {"X_train": X[:32], "y_train": y[:32], "X_val": X[32:], "y_val": y[32:]}
    teacher = np.full((32, 7), 0.02, np.float32)
    teacher[np.arange(32), y[:32]] = 0.88
    source = build_cnn("t_wide")
    student, run = train_student(source, "t_thin", data, teacher, tmp_path / "r", 2.0, 0.5,
                                 epochs=2, batch_size=16, verbose=0)
    assert run.epochs == 2 and len(run.history["val_accuracy"]) == 2
    settings = json.loads((tmp_path / "r" / "run.json").read_text())["settings"]
    assert settings["distillation"]["temperature"] == 2.0
    assert settings["distillation"]["alpha"] == 0.5
    fingerprint = settings["distillation"]["targets"]
    assert len(fingerprint["classes"]) == 64 and fingerprint["n"] == 32  # a SHA-256, N
    # the teacher's probabilities one float32 step off, as on another CPU: read back
    nudged = np.nextafter(teacher, np.float32(1))
    again, run2 = train_student(source, "t_thin", data, nudged, tmp_path / "r", 2.0, 0.5,
                                epochs=2, batch_size=16, verbose=0)
    assert run2.history == run.history
    for a, b in zip(again.get_weights(), student.get_weights()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="other settings"):  # another alpha: kept
        train_student(source, "t_thin", data, teacher, tmp_path / "r", 2.0, 0.9, epochs=2,
                      batch_size=16, verbose=0)
    with pytest.raises(ValueError, match="other settings"):  # another temperature
        train_student(source, "t_thin", data, teacher, tmp_path / "r", 1.0, 0.5, epochs=2,
                      batch_size=16, verbose=0)
    with pytest.raises(ValueError, match="distillation_targets"):
        train_cnn(build_cnn("t_thin"), data, tmp_path / "s", epochs=1, batch_size=16,
                  distillation=dict(temperature=1.0, alpha=1.0))


def test_distillation_trains_with_the_augmentation_inside_the_step(arches, tmp_path):
    """The path of a GPU machine without TensorFlow (Keras's JAX or PyTorch backend)."""
    configure_tensorflow(seed=0)
    rng = np.random.default_rng(1)
    y = rng.integers(0, 7, 48)
    X = rng.integers(0, 256, (48, 48, 48)).astype(np.uint8)
    teacher = np.full((32, 7), 1 / 7, np.float32)
    data = {"X_train": X[:32], "y_train": distillation_targets(y[:32], teacher),
            "X_val": X[32:], "y_val": y[32:]}
    run = train_cnn(build_cnn("t_thin"), data, tmp_path / "r", epochs=1, batch_size=16,
                    steps_per_execution=1, verbose=0, augment_in_graph=True,
                    distillation=dict(temperature=2.0, alpha=1.0))
    assert run.epochs == 1 and np.isfinite(run.history["loss"]).all()
    assert 0.0 <= run.history["val_accuracy"][0] <= 1.0


def probabilities_of_pixels():
    """A network without batch normalisation or dropout (the same outputs in training and
    inference mode): softmax of a dense layer over the pixels."""
    import keras
    configure_tensorflow(seed=0)
    return keras.Sequential([keras.Input((48, 48, 1)), keras.layers.Flatten(),
                             keras.layers.Dense(7, activation="softmax")])


@pytest.mark.parametrize("T, alpha", [(1.0, 1.0), (4.0, 0.5), (2.0, 0.0)])
def test_online_loss_equals_the_loss_on_cached_targets(T, alpha):
    rng = np.random.default_rng(2)
    p = rng.random((6, 7)).astype(np.float32) + 0.01
    p /= p.sum(axis=1, keepdims=True)
    teacher = rng.random((6, 7)).astype(np.float32) + 0.01
    teacher /= teacher.sum(axis=1, keepdims=True)
    y = rng.integers(0, 7, 6)
    cached = keras_distillation_loss(T, alpha)(distillation_targets(y, soften(teacher, T)), p)
    online = keras_distillation_loss(T, alpha, online=True)(
        y[:, None].astype(np.float32), np.concatenate([p, teacher], axis=1))
    assert float(online) == pytest.approx(float(cached), rel=1e-5)


def test_the_teacher_labels_the_same_augmented_images_as_the_student():
    from nnlib.cnn.augment import random_affine_layer
    from nnlib.cnn.distill import teaching_model
    student = probabilities_of_pixels()
    teacher = probabilities_of_pixels()
    teacher.set_weights(student.get_weights())  # the same network: the same outputs
    both = teaching_model(student, teacher, random_affine_layer()(seed=3))
    X = np.random.default_rng(4).integers(0, 256, (8, 48, 48, 1)).astype(np.float32) / 255
    out = np.asarray(both(X, training=True))
    np.testing.assert_allclose(out[:, :7], out[:, 7:], rtol=1e-5, atol=1e-6)
    # and the images were augmented: not the outputs on the images as given
    assert not np.allclose(out[:, :7], np.asarray(student(X)), atol=1e-4)
    assert not teacher.trainable


def test_online_distillation_trains_the_student_alone(arches, tmp_path):
    configure_tensorflow(seed=0)
    rng = np.random.default_rng(5)
    y = rng.integers(0, 7, 48)
    X = rng.integers(0, 256, (48, 48, 48)).astype(np.uint8)
    data = {"X_train": X[:32], "y_train": y[:32], "X_val": X[32:], "y_val": y[32:]}
    teacher = randomised(build_cnn("t_wide"), seed=6)
    before = [w.copy() for w in teacher.get_weights()]
    source = randomised(build_cnn("t_wide"), seed=7)
    student, run = train_student(source, "t_thin", data, teacher, tmp_path / "r", 2.0, 0.5,
                                 epochs=1, batch_size=16, verbose=0)
    for a, b in zip(teacher.get_weights(), before):  # the teacher is not trained
        np.testing.assert_array_equal(a, b)
    start = slim(source, "t_thin")
    assert any(not np.array_equal(a, b)
               for a, b in zip(student.get_weights(), start.get_weights()))
    assert run.epochs == 1 and np.isfinite(run.history["loss"]).all()
    settings = json.loads((tmp_path / "r" / "run.json").read_text())["settings"]
    assert len(settings["distillation"]["teacher"]) == 64 and "targets" not in \
        settings["distillation"]
    with pytest.raises(ValueError, match="class ids"):
        train_cnn(build_cnn("t_thin"), {**data, "y_train": distillation_targets(y[:32])},
                  tmp_path / "s", epochs=1, batch_size=16, teacher=teacher,
                  distillation=dict(temperature=1.0, alpha=1.0))
    # the path of a GPU machine without TensorFlow: the augmentation inside the step
    run = train_cnn(slim(source, "t_thin"), data, tmp_path / "g", epochs=1, batch_size=16,
                    steps_per_execution=1, verbose=0, teacher=teacher, augment_in_graph=True,
                    distillation=dict(temperature=2.0, alpha=1.0))
    assert run.epochs == 1 and np.isfinite(run.history["loss"]).all()


def fingerprint_case(seed=0, n=500):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 7, n)
    p = rng.dirichlet(np.full(7, 0.3), n).astype(np.float32)
    return y, p, distillation_targets(y, soften(p, 2.0))


def test_targets_fingerprint_sums_the_soft_columns():
    y, p, targets = fingerprint_case()
    fp = targets_fingerprint(targets)
    soft = targets[:, 1:].astype(np.float64)
    expected = ([math.fsum(c) for c in soft.T] + [math.fsum(c * c) for c in soft.T]
                + [math.fsum(np.arange(500) / 500 * c) for c in soft.T])
    assert fp["n"] == 500 and fp["sums"] == pytest.approx(expected, rel=1e-12)
    assert json.loads(json.dumps(fp)) == fp  # a run record holds it as it is


def test_same_targets_allows_round_off_only():
    y, p, targets = fingerprint_case()
    fp = targets_fingerprint(targets)
    rng = np.random.default_rng(1)
    off = targets.copy()  # every soft entry one float32 step up or down, as on another CPU
    off[:, 1:] = np.where(rng.random(off[:, 1:].shape) < 0.5,
                          np.nextafter(off[:, 1:], np.float32(0)),
                          np.nextafter(off[:, 1:], np.float32(1)))
    assert same_targets(fp, targets_fingerprint(off)) and fp != targets_fingerprint(off)
    changed = {
        "temperature": distillation_targets(y, soften(p, 1.0)),
        "teacher": distillation_targets(y, soften(p[::-1].copy(), 2.0)),
        "one class": distillation_targets(np.where(np.arange(500) == 7, (y + 1) % 7, y),
                                          soften(p, 2.0)),
        "image order": targets[np.r_[1, 0, 2:500]],
        "one entry by 1e-3": targets + np.float32(1e-3) * (np.arange(4000) == 26).reshape(500, 8),
        "fewer images": targets[:499],
    }
    for name, other in changed.items():
        assert not same_targets(fp, targets_fingerprint(other)), name
    assert not same_targets(fp, "a digest of the targets")  # a record from before
    assert not same_targets({**fp, "n": None}, {**fp, "n": None})  # a damaged record


def test_same_settings_compares_all_but_the_targets_exactly():
    _, _, targets = fingerprint_case()
    base = {"epochs": 3, "distillation": {"temperature": 2.0, "alpha": 0.5,
                                          "targets": targets_fingerprint(targets)}}
    near = json.loads(json.dumps(base))
    near["distillation"]["targets"]["sums"][0] += 1e-6 * 500 / 2
    assert same_settings(base, near)
    near["distillation"]["targets"]["sums"][0] += 1e-6 * 500
    assert not same_settings(base, near)
    for key, value in [("epochs", 4), ("distillation", {**base["distillation"], "alpha": 0.4})]:
        assert not same_settings(base, {**base, key: value}), key
    assert same_settings({"epochs": 3}, {"epochs": 3})
    assert not same_settings({"epochs": 3}, {"epochs": 3, "distillation": None})
