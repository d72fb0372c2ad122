"""Details of the core that a plausible one-line slip would break: defaults, messages,
boundaries and round trips, each checked against values written out here."""
import csv
import json
import pickle

import numpy as np
import pytest
from PIL import Image

from nnlib import FullyConnectedNet, Solver, linear_backward, linear_forward
from nnlib.data import (
    FER2013_CLASSES,
    DataError,
    load_cifar10,
    load_fer2013,
    read_fer_csv,
    read_fer_csv_rows,
    read_fer_labels_file,
)
from nnlib.gradient_check import (
    eval_numerical_gradient,
    eval_numerical_gradient_array,
    rel_error,
    rel_error_norm,
)
from nnlib.optim import adam, nesterov_momentum, rmsprop, sgd, sgd_momentum
from nnlib.preprocess import Preprocessor, random_flip_shift
from nnlib.solver import CheckpointError


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NNLIB_CACHE", str(tmp_path / "cache"))


# ------------------------------------------------------------------ update rules
def test_every_rule_fills_its_own_defaults():
    one = np.array([1.0])
    assert sgd(one.copy(), one)[1] == {"learning_rate": 1e-2}
    w, cfg = sgd_momentum(one.copy(), one)
    assert (cfg["learning_rate"], cfg["momentum"]) == (1e-2, 0.9) and np.allclose(w, 0.99)
    w, cfg = nesterov_momentum(one.copy(), one)
    assert (cfg["learning_rate"], cfg["momentum"]) == (1e-2, 0.9)
    assert np.allclose(w, 1 + 1.9 * -0.01)  # w - mu*0 + (1 + mu) * (-lr * g)
    _, cfg = adam(one.copy(), one)
    assert {k: cfg[k] for k in ("learning_rate", "beta1", "beta2", "epsilon", "t")} == {
        "learning_rate": 1e-3, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8, "t": 1}
    _, cfg = rmsprop(one.copy(), one)
    assert (cfg["learning_rate"], cfg["decay_rate"], cfg["epsilon"]) == (1e-2, 0.99, 1e-8)


def test_nesterov_against_a_scalar_transcription():
    """Bengio et al. (2013): v' = mu v - lr g; w += -mu v + (1 + mu) v'."""
    w, cfg = np.array([2.0]), {"learning_rate": 0.1, "momentum": 0.7}
    ref_w, ref_v = 2.0, 0.0
    for g in (1.5, -0.5, 3.0):
        w, cfg = nesterov_momentum(w, np.array([g]), cfg)
        new_v = 0.7 * ref_v - 0.1 * g
        ref_w += -0.7 * ref_v + 1.7 * new_v
        ref_v = new_v
        assert abs(w[0] - ref_w) < 1e-12 and abs(cfg["velocity"][0] - ref_v) < 1e-12


def test_rmsprop_epsilon_guards_tiny_gradients():
    w, _ = rmsprop(np.array([0.0]), np.array([1e-9]), {"learning_rate": 1.0})
    # cache = 0.01 * 1e-18, sqrt = 1e-10: step = 1e-9 / (1e-10 + 1e-8)
    assert w[0] == pytest.approx(-1e-9 / (1e-10 + 1e-8))


def test_rules_update_in_place_and_keep_float32():
    for rule in (sgd, sgd_momentum, nesterov_momentum, adam, rmsprop):
        w = np.ones(3, np.float32)
        next_w, cfg = rule(w, np.full(3, 0.5, np.float32), {"learning_rate": 0.1})
        assert next_w is w and w.dtype == np.float32 and (w < 1).all(), rule.__name__


# ---------------------------------------------------------------- layers, checks
def test_linear_backward_rejects_a_mismatched_upstream_gradient():
    X, W, b = np.ones((4, 3)), np.ones((3, 2)), np.zeros(2)
    with pytest.raises(ValueError, match=r"dout has shape \(4, 3\), expected \(4, 2\) \(N, M\)"):
        linear_backward(np.ones((4, 3)), X, W, b)
    with pytest.raises(ValueError, match=r"X flattens to \(4, 3\) but W has shape \(2, 2\)"):
        linear_forward(X, np.ones((2, 2)), b)


def test_rel_error_and_numeric_gradients_by_hand():
    assert rel_error([1.0, 2.0], [1.0, 3.0]) == pytest.approx(0.2)
    assert rel_error([0.0], [0.0]) == 0.0
    assert rel_error([0.0], [1e-13]) == pytest.approx(1e-13 / 1e-12)  # the 1e-12 floor
    assert rel_error_norm([3.0, 0.0], [0.0, 4.0]) == pytest.approx(5 / 7)
    x = np.array([1.0, -2.0, 0.5])
    g = eval_numerical_gradient(lambda v: float((v ** 3).sum()), x)
    assert np.allclose(g, 3 * x ** 2, atol=1e-6) and np.array_equal(x, [1.0, -2.0, 0.5])
    dout = np.array([[1.0, 2.0, 3.0]])
    ga = eval_numerical_gradient_array(lambda v: v[None] ** 2, x, dout)
    assert np.allclose(ga, 2 * x * dout[0], atol=1e-6) and np.array_equal(x, [1.0, -2.0, 0.5])


# ---------------------------------------------------------------------- network
def test_repr_and_batched_scores():
    model = FullyConnectedNet([6, 5], input_dim=4, num_classes=3, dropout=0.25, seed=0)
    assert repr(model) == ("FullyConnectedNet(\n  linear(4->6) - relu - dropout(p=0.25),\n"
                           "  linear(6->5) - relu - dropout(p=0.25),\n"
                           "  linear(5->3) - softmax\n  reg=0, dtype=float32, params=83)")
    X = np.random.default_rng(0).standard_normal((10, 4)).astype(np.float32)
    np.testing.assert_allclose(model.scores(X, batch_size=3), model.loss(X), rtol=1e-6)
    np.testing.assert_array_equal(model.predict(X, batch_size=4), model.loss(X).argmax(1))
    assert model.scores(X[:0]).shape == (0, 3)


def test_training_loss_reuses_its_gradient_buffers():
    model = FullyConnectedNet([5], input_dim=4, num_classes=3, reg=0.1, seed=0,
                              dtype=np.float64)
    X, y = np.random.default_rng(1).standard_normal((6, 4)), np.array([0, 1, 2, 0, 1, 2])
    loss, grads = model.loss(X, y)
    loss2, first = model.training_loss(X, y)
    assert loss2 == loss and all(np.allclose(first[k], grads[k]) for k in grads)
    W1 = first["W1"]
    _, second = model.training_loss(X * 2, y)
    assert second["W1"] is W1 and second["W2"] is first["W2"]  # the same buffers
    assert model.loss(X, y)[1]["W1"] is not W1  # loss() always returns new arrays
    model.params["W1"] = model.params["W1"].astype(np.float32)
    assert model.training_loss(X, y)[1]["W1"].dtype == np.float32  # rebuilt for the dtype


# ---------------------------------------------------------------------- solver
def blobs(n=120, d=6, c=3, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, n)
    X = (rng.standard_normal((c, d))[y] * 2 + rng.standard_normal((n, d))).astype(np.float32)
    return {"X_train": X[:90], "y_train": y[:90], "X_val": X[90:], "y_val": y[90:]}


def make(d=None, **kw):
    d = d or blobs()
    model = FullyConnectedNet([8], input_dim=6, num_classes=3, weight_scale="he", seed=0)
    opts = dict(update_rule="sgd_momentum", optim_config={"learning_rate": 0.05},
                num_epochs=3, batch_size=16, verbose=False, seed=1)
    return Solver(model, d, **{**opts, **kw})


def test_a_fresh_solver_starts_from_nothing():
    s = make()
    assert (s.epoch, s.best_epoch, s.bad_epochs, s.train_seconds) == (0, 0, 0, 0.0)
    assert s.best_params == {} and s.best_val is None and s.loss_history == []


def test_check_accuracy_batches_and_subsamples():
    d = blobs()
    s = make(d).train()
    pred = s.model.predict(d["X_train"])
    full = float(np.mean(pred == d["y_train"]))
    assert s.check_accuracy(d["X_train"], d["y_train"], batch_size=7) == pytest.approx(full)
    right = int(np.sum(pred == d["y_train"]))
    acc = s.check_accuracy(d["X_train"], d["y_train"], num_samples=89)
    assert round(acc * 89) in (right, right - 1)  # 89 distinct samples of 90
    _, loss = s._evaluate(d["X_val"], d["y_val"], batch_size=7)
    _, whole = s._evaluate(d["X_val"], d["y_val"], batch_size=1000)
    assert loss == pytest.approx(whole)


def test_evaluation_subsample_sizes_reach_the_model():
    d = blobs()
    s = make(d, num_train_samples=5, num_val_samples=7, num_epochs=1)
    sizes = []
    real = s.model.loss

    def loss(X, y=None):
        if y is None:
            sizes.append(len(X))
        return real(X, y)
    s.model.loss = loss
    s.train()
    assert sizes == [5, 7]


def test_augmentation_gets_each_batch_and_the_generator():
    seen = []

    def augment(X, rng):
        seen.append((X.shape, isinstance(rng, np.random.Generator)))
        return X + 100.0
    s = make(augment=augment, num_epochs=1, batch_size=30)
    losses = []
    real = s.model.training_loss

    def training_loss(X, y):
        losses.append(float(X.min()))
        return real(X, y)
    s.model.training_loss = training_loss
    s.train()
    assert seen == [((30, 6), True)] * 3 and min(losses) > 50


def test_equal_metric_is_no_improvement_and_val_loss_monitoring_with_min_delta():
    class Fixed:
        num_classes = 2

        def __init__(self, losses):
            self.params, self.losses, self.epoch = {"w": np.zeros(1)}, losses, 0

        def loss(self, X, y=None):
            if y is not None:
                return 0.0, {"w": np.zeros(1)}
            p = np.exp(-self.losses[self.epoch])  # the data loss is exactly -log p
            return np.log(np.tile([p, 1 - p], (len(X), 1)))

    def run(losses, **kw):
        m = Fixed(losses)
        d = {"X_train": np.zeros((4, 1)), "y_train": np.zeros(4, int),
             "X_val": np.zeros((4, 1)), "y_val": np.zeros(4, int)}
        def advance(solver):
            m.epoch = solver.epoch
        return Solver(m, d, optim_config={"learning_rate": 1.0}, verbose=False, batch_size=4,
                      num_epochs=len(losses), epoch_callback=advance, **kw).train()
    s = run([0.5, 0.5, 0.5], monitor="val_loss")
    assert s.best_epoch == 1  # equal is not better
    s = run([0.5, 0.45, 0.35, 0.34], monitor="val_loss", min_delta=0.06)
    assert s.best_epoch == 3 and s.best_val == pytest.approx(0.35)
    s = run([0.5, 0.45, 0.44], monitor="val_loss", min_delta=0.04, patience=2)
    assert s.best_epoch == 2 and s.epoch == 3


def test_plateau_schedule_watches_the_solver_metric():
    class Flat:
        num_classes = 2
        params = {"w": np.zeros(1)}

        def loss(self, X, y=None):
            return np.zeros((len(X), 2)) if y is None else (0.0, {"w": np.zeros(1)})
    d = {"X_train": np.zeros((4, 1)), "y_train": np.zeros(4, int),
         "X_val": np.zeros((4, 1)), "y_val": np.zeros(4, int)}
    s = Solver(Flat(), d, optim_config={"learning_rate": 1.0}, num_epochs=5, batch_size=4,
               lr_schedule={"name": "plateau", "factor": 0.5, "patience": 0}, verbose=False)
    s.train()
    assert s.lr_history == [1.0, 1.0, 0.5, 0.25, 0.125]


def test_verbose_lines_and_divergence_message(capsys):
    s = make(patience=1, num_epochs=20, verbose=True)
    s.train()
    out = capsys.readouterr().out
    assert "(Epoch 1 / 20) loss" in out and "early stopping: val_acc has not improved for 1" in out
    s = make(optim_config={"learning_rate": 1e8})
    with pytest.warns(RuntimeWarning, match=r"loss became (inf|nan) at epoch 1, iteration \d+: "
                                            "training stopped and the initial parameters"):
        s.train()
    assert s.stop_reason.startswith("loss became")


def test_checkpoint_after_training_holds_the_last_parameters(tmp_path):
    d = blobs()
    a = make(d)
    a.train()
    a.save_checkpoint(tmp_path)
    a.num_epochs = 6
    a.train()
    b = make(d, num_epochs=6, checkpoint_dir=tmp_path, resume=True)
    assert b.epoch == 3
    for k in b.model.params:  # between runs the model holds the best parameters
        np.testing.assert_array_equal(b.model.params[k], b.best_params[k])
    b.train()
    for k in a.model.params:
        np.testing.assert_array_equal(a.model.params[k], b.model.params[k])


def test_numpy_scalars_in_the_config_are_checkpointed(tmp_path):
    s = make(optim_config={"learning_rate": np.float32(0.05), "momentum": np.float32(0.5)},
             checkpoint_dir=tmp_path, num_epochs=1)
    s.train()
    assert make(optim_config={"learning_rate": np.float32(0.05),
                              "momentum": np.float32(0.5)}, checkpoint_dir=tmp_path,
                resume=True).epoch == 1


def test_checkpoint_errors_say_what_is_wrong(tmp_path):
    d = blobs()
    make(d, checkpoint_dir=tmp_path, num_epochs=1).train()
    with pytest.raises(CheckpointError, match=r"another run \(different \['seed'\]: "
                                              r"\{'seed': 1\} there, \{'seed': 4\} here\)"):
        make(d, checkpoint_dir=tmp_path, resume=True, seed=4)
    path = tmp_path / "checkpoint.npz"
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    state = json.loads(str(arrays["state"]))

    def write(**changes):
        a = dict(arrays, **changes)
        with open(path, "wb") as f:
            np.savez(f, **{k: v for k, v in a.items() if v is not None})

    write(state=np.array(json.dumps(dict(state, version=1))))
    with pytest.raises(CheckpointError, match="format version 1, expected 2"):
        make(d, checkpoint_dir=tmp_path, resume=True)
    write(**{"param/W1": np.zeros((2, 2), np.float32)})
    with pytest.raises(CheckpointError, match="its parameters do not fit this model's arch"):
        make(d, checkpoint_dir=tmp_path, resume=True)
    write(**{"best/W1": np.zeros((2, 2), np.float32)})
    with pytest.raises(CheckpointError, match="its best parameters do not fit"):
        make(d, checkpoint_dir=tmp_path, resume=True)
    write(**{k: None for k in arrays if k.startswith(("param/", "best/"))})
    with pytest.raises(CheckpointError, match="holds no parameters"):
        make(d, checkpoint_dir=tmp_path, resume=True)
    configs = dict(state["optim_configs"], W9={})
    write(state=np.array(json.dumps(dict(state, optim_configs=configs))))
    with pytest.raises(CheckpointError, match="optimizer state does not fit this model"):
        make(d, checkpoint_dir=tmp_path, resume=True)
    write(state=np.array([{"a": 1}], dtype=object))  # a pickle inside: refused
    with pytest.raises(CheckpointError, match="unreadable"):
        make(d, checkpoint_dir=tmp_path, resume=True)
    write(state=None)
    (tmp_path / "checkpoint.json").write_text("{}")
    with pytest.raises(CheckpointError, match=r"holds no training state \(an older two-file "
                                              r"checkpoint\); move it away"):
        make(d, checkpoint_dir=tmp_path, resume=True)


def test_a_schedule_without_a_rule_default_needs_the_value():
    def bare(w, dw, config):
        w -= config["learning_rate"] * dw
        return w, config
    with pytest.raises(ValueError, match=r"no default learning_rate; give "
                                         r"optim_config\['learning_rate'\]"):
        make(update_rule=bare, optim_config={}, lr_decay=0.5)
    s = make(update_rule="adam", optim_config={}, lr_schedule={"name": "step", "base": 0.05,
                                                               "step_size": 1, "gamma": 0.5})
    s.train()
    assert s.lr_history == pytest.approx([0.05, 0.025, 0.0125])


# ------------------------------------------------------------------ preprocessing
def test_preprocessing_options_and_round_trip():
    X = np.random.default_rng(0).integers(0, 256, (30, 4, 5, 3), dtype=np.uint8)
    raw = Preprocessor(center=None, scale=None).fit(X)
    np.testing.assert_array_equal(raw.transform(X[:2]), X[:2].reshape(2, -1).astype(np.float32))
    gray = Preprocessor(grayscale=True, center="channel", scale="std", zca=0.5).fit(X)
    assert gray.image_shape == (4, 5) and np.ndim(gray.mean) == 0
    luma = X.astype(np.float64) @ [0.299, 0.587, 0.114]
    Z = (luma - luma.mean()) / (luma - luma.mean()).std()
    Z = Z.reshape(30, -1)
    s, U = np.linalg.eigh(Z.T @ Z / 30)
    expected = Z[:3] @ (U / np.sqrt(np.maximum(s, 0) + 0.5)) @ U.T
    np.testing.assert_allclose(gray.transform(X[:3]), expected, atol=2e-3)
    back = Preprocessor.from_config(json.loads(json.dumps(gray.config())), gray.arrays())
    np.testing.assert_array_equal(back.transform(X[:3]), gray.transform(X[:3]))
    with pytest.raises(ValueError, match="center must be 'image', 'channel' or None, got 'x'"):
        Preprocessor(center="x")
    with pytest.raises(ValueError, match="scale must be 'std' or None, got 'minmax'"):
        Preprocessor(scale="minmax")
    for bad in (X[:0], X[0, 0]):
        with pytest.raises(ValueError, match=r"expects images of shape \(N, H, W\[, C\]\)"):
            Preprocessor().fit(bad)
    with pytest.raises(RuntimeError, match="Preprocessor.transform called before fit"):
        Preprocessor().transform(X)
    with pytest.raises(ValueError, match=r"shape \(4, 5\) after preprocessing but the model "
                                         r"was trained on \(4, 5, 3\); resize or convert"):
        Preprocessor().fit(X).transform(X[..., 0])


def test_colour_shifts_move_pixels_not_channels():
    X = np.random.default_rng(0).integers(1, 255, (300, 3, 3, 3)).astype(np.float32)
    out = random_flip_shift((3, 3, 3), max_shift=2, flip=False)(
        X.reshape(300, -1), np.random.default_rng(0))
    assert out.shape == (300, 27)
    out = out.reshape(X.shape)
    shifts = set()
    for o, x in zip(out, X):
        for dy in range(-2, 3):
            for dx in range(-2, 3):
                ref = np.zeros_like(x)
                src = x[max(0, -dy):3 - max(0, dy), max(0, -dx):3 - max(0, dx)]
                ref[max(0, dy):max(0, dy) + src.shape[0],
                    max(0, dx):max(0, dx) + src.shape[1]] = src
                if np.array_equal(o, ref):
                    shifts.add((dy, dx))
    assert len(shifts) == 25  # every shift from -2 to 2 on both axes occurs


# ----------------------------------------------------------------------- data
def write_csv(path, rows, header=("emotion", "pixels", "Usage")):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


PIX = " ".join(["7"] * 2304)


def test_fer_csv_errors_name_the_line(tmp_path):
    p = tmp_path / "f.csv"
    write_csv(p, [[0, PIX]], header=("emotion", "pixel"))
    with pytest.raises(DataError, match=r"lacks columns \['pixels'\]; expected emotion,pixels"):
        read_fer_csv_rows(p)
    for bad in ([7, PIX, "Training"], [0, "1 2 3", "Training"], [-1, PIX, "Training"]):
        write_csv(p, [[0, PIX, "Training"], bad])
        with pytest.raises(DataError, match="line 3: expected an emotion id in 0..6 and 2304 "
                                            "pixel values in 0..255"):
            read_fer_csv_rows(p)
    write_csv(p, [[6, PIX, "Validation"]])
    with pytest.raises(DataError, match="line 2: unknown Usage 'Validation'; expected "
                                        "Training, PublicTest or PrivateTest"):
        read_fer_csv_rows(p)
    write_csv(p, [])
    with pytest.raises(DataError, match="holds no data rows"):
        read_fer_csv_rows(p)
    write_csv(p, [[6, PIX, "PublicTest"]])
    with pytest.raises(DataError, match="holds no Training rows to train on; to test a model "
                                        "on it, use python -m nnlib.evaluate"):
        read_fer_csv(p)
    write_csv(p, [[6, PIX, ""], [5, PIX, "PublicTest"]])
    X, y, usages = read_fer_csv_rows(p)
    assert usages == ["Training", "PublicTest"] and y.dtype == np.int64 and y.tolist() == [6, 5]
    assert X.dtype == np.uint8 and X.shape == (2, 48, 48) and (X == 7).all()
    d = read_fer_csv(p)
    assert d["y_train"].tolist() == [6] and d["y_test"].tolist() == [5] and "X_private" not in d


def test_labels_file_errors(tmp_path):
    p = tmp_path / "labels_public.txt"
    p.write_text("image,label\n")
    with pytest.raises(DataError, match=r"expected a header img,emotion, got \['image', 'label'\]"):
        read_fer_labels_file(p)
    (tmp_path / "Train").mkdir()
    Image.fromarray(np.zeros((48, 48), np.uint8), "L").save(tmp_path / "Train" / "a.png")
    p.write_text("img,emotion\nTrain/a.png,0\nTrain/a.png,7\n")
    with pytest.raises(DataError, match=r"line 3: expected an image path and an emotion id in "
                                        r"0..6, got 'Train/a.png', '7'"):
        read_fer_labels_file(p)
    p.write_text("img,emotion\nTrain/a.png,0\nTrain/b.png,1\n")
    with pytest.raises(DataError, match=r"lists 1 missing images, e.g. .*b.png"):
        read_fer_labels_file(p)
    p.write_text("img,emotion\nTest/a.png,0\n")
    (tmp_path / "Test").mkdir()
    Image.fromarray(np.zeros((48, 48), np.uint8), "L").save(tmp_path / "Test" / "a.png")
    with pytest.raises(DataError, match="lists no Train/ images to train on"):
        read_fer_labels_file(p)


def test_fer_folder_splits_and_default_root(tmp_path, monkeypatch):
    root = tmp_path / "fer2013"
    for split, name in (("train", "Training_0.png"), ("test", "PublicTest_0.png"),
                        ("test", "PrivateTest_0.png")):
        (root / split / "sad").mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((48, 48), 3, np.uint8), "L").save(
            root / split / "sad" / name)
    monkeypatch.setenv("NNLIB_DATA", str(tmp_path))
    d = load_fer2013(val_size=None)
    assert d["y_train"].tolist() == [4] and d["X_test"].shape == (1, 48, 48)
    assert d["X_private"].shape == (1, 48, 48) and d["X_train"].ndim == 3


def test_cifar_batch_errors_and_types(tmp_path):
    folder = tmp_path / "cifar10" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    with pytest.raises(DataError, match="missing CIFAR-10 file .*data_batch_1; get the python"):
        load_cifar10(tmp_path / "cifar10", cache=False)
    rows = np.arange(2 * 3072).reshape(2, 3072) % 256
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (folder / name).write_bytes(pickle.dumps(
            {b"data": rows.astype(np.int64), b"labels": [3, 9]}, protocol=2))
    d = load_cifar10(tmp_path / "cifar10", val_size=None, cache=False)
    assert d["X_test"].dtype == np.uint8 and d["y_test"].dtype == np.int64
    assert d["y_test"].tolist() == [3, 9] and d["classes"][9] == "truck"
    assert d["X_train"].shape == (10, 32, 32, 3)
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": rows, b"labels": [1]}))
    with pytest.raises(DataError, match=r"test_batch is not a CIFAR-10 python batch "
                                        r"\(ValueError\('2 images but 1 labels'\)\)"):
        load_cifar10(tmp_path / "cifar10", cache=False)


def test_data_root_subsample_and_seeded_validation_split(tmp_path, monkeypatch):
    from nnlib.data import data_root, subsample
    from nnlib.paths import default_data_root
    monkeypatch.setenv("NNLIB_DATA", str(tmp_path))
    assert data_root() == tmp_path
    monkeypatch.delenv("NNLIB_DATA")
    assert data_root() == default_data_root()
    X, y = np.arange(100), np.repeat([0, 1], 50)
    Xs, ys = subsample(X, y, 10, seed=0)
    assert len(Xs) == 10 and np.bincount(ys).tolist() == [5, 5]  # stratified
    assert set(Xs) <= set(X) and np.array_equal(X[Xs], Xs) and np.array_equal(y[Xs], ys)
    assert not np.array_equal(Xs, subsample(X, y, 10, seed=1)[0])
    assert subsample(X, y, 100)[0] is X and subsample(X, y, None)[0] is X
    root = tmp_path / "fer2013"
    for i in range(20):
        label = FER2013_CLASSES[i % 2]
        (root / "train" / label).mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((48, 48), i, np.uint8), "L").save(
            root / "train" / label / f"Training_{i}.png")
    a = load_fer2013(root, val_size=0.2, seed=0)
    b = load_fer2013(root, val_size=0.2, seed=1)
    assert not np.array_equal(a["X_val"], b["X_val"])
    np.testing.assert_array_equal(a["X_val"], load_fer2013(root, val_size=0.2, seed=0)["X_val"])


def test_fit_transform_equals_fit_then_transform():
    X = np.random.default_rng(0).integers(0, 256, (10, 3, 3), dtype=np.uint8)
    np.testing.assert_array_equal(Preprocessor().fit_transform(X),
                                  Preprocessor().fit(X).transform(X))


def test_layer_and_loss_messages_and_list_inputs():
    from nnlib import dropout_backward, dropout_forward, relu_backward, relu_forward, softmax
    from nnlib._checks import check_finite, check_labels
    np.testing.assert_array_equal(relu_forward([[-1.0, 2.0]]), [[0.0, 2.0]])  # lists work
    assert relu_backward(np.ones((1, 2), np.float32), np.array([[-1.0, 0.0]])).dtype == np.float32
    np.testing.assert_array_equal(relu_backward(np.ones((1, 3)), np.array([[-1.0, 0.0, 2.0]])),
                                  [[0.0, 0.0, 1.0]])  # no gradient at exactly 0
    with pytest.raises(TypeError, match="^X must be a numeric array, got dtype <U1$"):
        relu_forward(np.array(["a"]))
    with pytest.raises(TypeError, match="^X must be a numeric array"):
        dropout_forward(np.array(["a"]), 0.5)
    with pytest.raises(TypeError, match="^logits must be a numeric array"):
        softmax(np.array([["a"]]), np.array([0]))
    with pytest.raises(ValueError, match=r"^softmax: logits must have shape \(N, C\), got \(3,\)$"):
        softmax(np.zeros(3), np.array([0]))
    with pytest.raises(ValueError,
                       match=r"^relu_backward: dout has shape \(2,\) but X has \(3,\)$"):
        relu_backward(np.zeros(2), np.zeros(3))
    with pytest.raises(ValueError, match=r"^linear layer: X must have shape \(N, d1, \.\.\., dk\), "
                                         r"got \(3,\); add a batch axis with X\[None\] for a "
                                         r"single sample$"):
        linear_forward(np.zeros(3), np.zeros((3, 2)), np.zeros(2))
    with pytest.raises(ValueError, match=r"^dropout_backward: pass the mask returned by "
                                         r"dropout_forward\(\.\.\., train=True\); got mask of "
                                         r"shape None for dout of shape \(2, 2\)$"):
        dropout_backward(np.zeros((2, 2)), None, 0.5)
    with pytest.raises(ValueError, match=r"got mask of shape \(2,\) for dout of shape \(2, 2\)"):
        dropout_backward(np.zeros((2, 2)), np.ones(2), 0.5)
    with pytest.raises(TypeError, match="^dropout_forward: seed must be None, an int or a "
                                        "np.random.Generator, not str$"):
        dropout_forward(np.zeros(2), 0.5, seed="1")
    with pytest.raises(ValueError, match=r"^X contains 2 NaN or inf values; clean or impute"):
        check_finite(np.array([np.nan, 1.0, np.inf]), "X")
    check_finite(np.array([1, 2]), "X")  # integers cannot hold NaN
    with pytest.raises(ValueError, match=r"^y holds labels in \[-1, 1\] but there are 2 "
                                         r"classes; labels must lie in \[0, 1\]$"):
        check_labels(np.array([-1, 1]), 2, 2)
    with pytest.raises(ValueError, match=r"^dropout p is the probability of dropping a unit "
                                         r"and must lie in \[0, 1\), got 1$"):
        dropout_forward(np.zeros(2), 1)
    u = np.random.default_rng(4).random((3, 4), dtype=np.float32)
    out, mask = dropout_forward(np.ones((3, 4), np.float32), 0.5, seed=np.random.default_rng(4))
    np.testing.assert_array_equal(mask, (u > 0.5).astype(np.float32))  # the generator's draws
    np.testing.assert_array_equal(out, mask * 2)
    assert dropout_backward(np.ones(2), None, 0.5, train=False).tolist() == [1.0, 1.0]


@pytest.mark.parametrize("change", [
    {"update_rule": "sgd"}, {"optim_config": {"learning_rate": 0.04}}, {"lr_decay": 0.9},
    {"lr_schedule": {"name": "step"}}, {"batch_size": 8}, {"monitor": "val_loss"},
    {"seed": 2}, {"momentum_schedule": {"name": "linear", "end": 0.9}}])
def test_a_checkpoint_of_another_run_is_refused(tmp_path, change):
    d = blobs()
    make(d, checkpoint_dir=tmp_path, num_epochs=1).train()
    key = next(iter(change))
    with pytest.raises(CheckpointError, match=rf"another run \(different \['{key}'\]"):
        make(d, checkpoint_dir=tmp_path, resume=True, **change)
    other = Solver(FullyConnectedNet([9], input_dim=6, num_classes=3, seed=0), d,
                   update_rule="sgd_momentum", optim_config={"learning_rate": 0.05},
                   batch_size=16, seed=1, verbose=False)
    with pytest.raises(CheckpointError, match=r"different \['model'\]"):
        other.load_checkpoint(tmp_path)
    assert make(d, checkpoint_dir=tmp_path, resume=True, num_epochs=5, patience=2).epoch == 1
