import time
import zipfile

import numpy as np
import pytest

from nnlib import FullyConnectedNet, check_model_gradients, load_model, save_model
from nnlib.preprocess import Preprocessor


@pytest.mark.parametrize("reg", [0.0, 3.14])
def test_gradients_two_hidden_layers(reg):
    N, D, C = 3, 15, 6
    rng = np.random.default_rng(1)
    X = rng.standard_normal((N, D))
    y = rng.integers(0, C, N)
    model = FullyConnectedNet([20, 30], input_dim=D, num_classes=C, reg=reg,
                              weight_scale="he", dtype=np.float64, seed=0)
    errors = check_model_gradients(model, X, y)
    assert max(errors.values()) <= 1e-6, errors


def test_gradients_three_hidden_layers_with_dropout():
    # dropout masks are drawn from the model's generator; reset it before every call so
    # that the loss is a fixed function of the parameters
    N, D, C = 4, 8, 3
    rng = np.random.default_rng(2)
    X, y = rng.standard_normal((N, D)), rng.integers(0, C, N)
    model = FullyConnectedNet([7, 6, 5], input_dim=D, num_classes=C, dropout=0.3, reg=0.1,
                              weight_scale="he", dtype=np.float64, seed=0)
    loss = model.loss

    def fixed_loss(X, y=None):
        model.rng = np.random.default_rng(99)
        return loss(X, y)
    model.loss = fixed_loss
    errors = check_model_gradients(model, X, y)
    assert max(errors.values()) <= 1e-6, errors


def test_initial_loss_and_scores():
    model = FullyConnectedNet([50], input_dim=20, num_classes=10, weight_scale=1e-3,
                              dtype=np.float64, seed=0)
    X = np.random.default_rng(0).standard_normal((30, 20))
    scores = model.loss(X)
    assert scores.shape == (30, 10)
    loss, grads = model.loss(X, np.zeros(30, dtype=int))
    assert abs(loss - np.log(10)) < 1e-3  # tiny weights: uniform prediction
    assert set(grads) == set(model.params)
    # L2 adds exactly 0.5 * reg * sum(W**2)
    model.reg = 2.0
    loss_reg, _ = model.loss(X, np.zeros(30, dtype=int))
    l2 = sum((model.params[k] ** 2).sum() for k in model.params if k.startswith("W"))
    assert abs(loss_reg - loss - l2) < 1e-12


def test_initialisations_and_repr():
    # fan_in 500, fan_out 1000: each name's standard deviation, written out by hand
    expected = {"he": 0.0632456, "lecun": 0.0447214, "glorot": 0.0365148,
                "xavier": 0.0365148}
    for name, std in expected.items():
        W = FullyConnectedNet([1000], input_dim=500, weight_scale=name, seed=0).params["W1"]
        assert abs(W.std() - std) < 3e-4, name
        assert W.dtype == np.float32
    with pytest.raises(ValueError, match="weight_scale"):
        FullyConnectedNet([10], input_dim=5, weight_scale="kaiming")
    text = repr(FullyConnectedNet([64, 32], input_dim=100, dropout=0.5))
    assert "linear(100->64) - relu - dropout(p=0.5)" in text
    assert "linear(32->10) - softmax" in text


def test_test_mode_is_deterministic_with_dropout():
    model = FullyConnectedNet([40], input_dim=10, dropout=0.5, seed=0)
    X = np.random.default_rng(0).standard_normal((5, 10)).astype(np.float32)
    assert np.array_equal(model.loss(X), model.loss(X))


def test_bad_inputs_raise_clear_errors():
    model = FullyConnectedNet([10], input_dim=12, num_classes=3, seed=0)
    X = np.zeros((4, 12), np.float32)
    with pytest.raises(ValueError, match="12 features per sample"):
        model.loss(np.zeros((4, 11)))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\]"):
        model.loss(X, np.array([0, 1, 2, 3]))
    with pytest.raises(ValueError, match=r"shape \(4,\)"):
        model.loss(X, np.array([0, 1]))
    bad = X.copy()
    bad[1, 3] = np.nan
    with pytest.raises(ValueError, match="NaN or inf"):
        model.loss(bad)
    with pytest.raises(ValueError, match="weight_scale"):
        FullyConnectedNet([10], weight_scale="kaiming")
    with pytest.raises(ValueError, match="positive"):
        FullyConnectedNet([0])


def test_save_load_roundtrip(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (20, 6, 6), dtype=np.uint8)
    pre = Preprocessor(center="image", scale="std").fit(images)
    model = FullyConnectedNet([8], input_dim=36, num_classes=7, dropout=0.2, seed=3)
    path = save_model(tmp_path / "m.npz", model, pre, info={"classes": list("abcdefg")})
    loaded, pre2, info = load_model(path)
    assert info["classes"] == list("abcdefg")
    assert repr(loaded) == repr(model)
    assert np.array_equal(loaded.loss(pre2.transform(images)), model.loss(pre.transform(images)))
    with np.load(path, allow_pickle=False) as z:  # no pickle inside
        assert "meta" in z.files
    # saving the same model again writes the same bytes (git sees no change), compressed
    first = path.read_bytes()
    later = time.time() + 3600  # an hour on: zip entries stamped with the clock would differ
    monkeypatch.setattr(time, "time", lambda: later)
    assert save_model(path, model, pre, info={"classes": list("abcdefg")}).read_bytes() == first
    with zipfile.ZipFile(path) as z:
        assert {i.compress_type for i in z.infolist()} == {zipfile.ZIP_DEFLATED}
    with pytest.raises(FileNotFoundError, match="no model file"):
        load_model(tmp_path / "missing.npz")
    with pytest.raises(ValueError, match="trained on"):
        pre2.transform(np.zeros((2, 5, 5), np.uint8))
