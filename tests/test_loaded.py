"""LoadedModel's probabilities and progress bar, against values worked out independently
(scipy's softmax of scores computed here in float64) and against ``predict``."""
import numpy as np
import pytest
from scipy.special import softmax

from nnlib import FullyConnectedNet, Preprocessor, save_model
from nnlib.loaded import LoadedModel


def linear_model(path, weights, info=None):
    """A saved model whose scores are ``images.reshape(N, -1) @ weights`` (no hidden layer,
    no centring or scaling)."""
    pre = Preprocessor(center=None, scale=None).fit(np.zeros((1, 48, 48), np.uint8))
    model = FullyConnectedNet([], input_dim=2304, num_classes=7)
    model.params = {"W1": weights.astype(np.float32), "b1": np.zeros(7, np.float32)}
    return save_model(path, model, pre, info=info)


@pytest.fixture
def images():
    return np.random.default_rng(0).integers(0, 256, (5, 48, 48), dtype=np.uint8)


@pytest.fixture
def weights():
    return np.random.default_rng(1).standard_normal((2304, 7)) * 2e-4  # scores of order one


def scores64(images, weights):
    return images.reshape(len(images), -1).astype(np.float64) @ weights


@pytest.mark.parametrize("info", [None, {}, {"tta_flip": False}])
def test_probabilities_without_the_mirror_view(tmp_path, images, weights, info):
    loaded = LoadedModel(linear_model(tmp_path / "m.npz", weights, info))
    proba = loaded.predict_proba(images)
    assert proba.dtype == np.float64 and proba.shape == (5, 7)
    np.testing.assert_allclose(proba, softmax(scores64(images, weights), axis=1), rtol=1e-5)
    np.testing.assert_array_equal(proba.argmax(1), loaded.predict(images))


def test_probabilities_with_the_mirror_view_average_the_two_scores(tmp_path, images, weights):
    loaded = LoadedModel(linear_model(tmp_path / "m.npz", weights, {"tta_flip": True}))
    mean = (scores64(images, weights) + scores64(images[:, :, ::-1], weights)) / 2
    proba = loaded.predict_proba(images)
    np.testing.assert_allclose(proba, softmax(mean, axis=1), rtol=1e-5)
    np.testing.assert_array_equal(proba.argmax(1), loaded.predict(images))


def test_probabilities_stay_finite_for_scores_of_any_size(tmp_path):
    # row 0 scores in the thousands (exp overflows unless each row's maximum is taken off),
    # row 1 near zero (it underflows to 0/0 if the maximum of all rows is taken off instead)
    W = np.zeros((2304, 7))
    W[0, 0], W[0, 1], W[1, 2], W[1, 3] = 10, 9.9, 0.01, 0.02
    X = np.zeros((2, 48, 48), np.uint8)
    X[0, 0, 0], X[1, 0, 1] = 250, 100
    proba = LoadedModel(linear_model(tmp_path / "big.npz", W)).predict_proba(X)
    np.testing.assert_allclose(proba, softmax(scores64(X, W), axis=1), rtol=1e-5)
    assert np.isfinite(proba).all()


def test_a_channel_axis_of_one_is_grayscale_and_of_three_is_refused(tmp_path, images, weights):
    loaded = LoadedModel(linear_model(tmp_path / "m.npz", weights))
    np.testing.assert_array_equal(loaded.predict_proba(images[..., None]),
                                  loaded.predict_proba(images))
    rgb = np.repeat(images[..., None], 3, axis=-1)
    with pytest.raises(ValueError, match=r"m\.npz takes 48x48 images, got 48x48x3"):
        loaded.predict_proba(rgb)
    assert loaded.predict_proba(images[:0]).shape == (0, 7)


# ------------------------------------------------------------------- Keras models
keras = pytest.importorskip("keras")


def pixel_reader(path, weights):
    """A saved Keras model whose outputs are the softmax of the flattened image times
    ``weights``."""
    inputs = keras.Input((48, 48, 1))
    dense = keras.layers.Dense(7, use_bias=False, activation="softmax")
    model = keras.Model(inputs, dense(keras.layers.Flatten()(inputs)))
    dense.set_weights([weights.astype(np.float32)])
    model.save(path)
    return path


def test_keras_probabilities_are_its_outputs_in_float64(tmp_path, images, weights, capsys):
    loaded = LoadedModel(pixel_reader(tmp_path / "k.keras", weights))
    proba = loaded.predict_proba(images)
    assert proba.dtype == np.float64
    np.testing.assert_allclose(proba, softmax(scores64(images, weights), axis=1), rtol=1e-4)
    np.testing.assert_array_equal(proba.argmax(1), loaded.predict(images))
    assert capsys.readouterr().out == ""  # no Keras progress line


class Spy:
    """Stands in for a Keras model: records how it is asked to predict."""

    def __init__(self):
        self.calls = []

    def predict(self, X, **kwargs):
        self.calls.append(kwargs)
        return np.full((len(X), 7), 1 / 7, np.float32)


def test_keras_probabilities_come_in_predicts_batches(tmp_path, images, weights):
    # batches of 256, as predict_keras runs them: the same arithmetic as predict's
    loaded = LoadedModel(pixel_reader(tmp_path / "k.keras", weights))
    loaded.model = Spy()
    loaded.predict_proba(images)
    assert loaded.model.calls == [{"batch_size": 256, "verbose": 0}]


def test_the_progress_bar_shows_only_when_asked(tmp_path, images, weights, monkeypatch):
    import nnlib.loaded as loaded_module
    bars = []

    def recording_tqdm(iterable, **kwargs):
        bars.append(kwargs)
        return iterable

    monkeypatch.setattr(loaded_module, "tqdm", recording_tqdm)
    loaded = LoadedModel(pixel_reader(tmp_path / "k.keras", weights))
    loaded.predict(images)
    loaded.predict(images, progress=True)
    # off unless asked; asked, on a terminal only (tqdm's None); gone once done
    common = {"desc": "predicting", "unit": "chunk", "leave": False}
    assert bars == [{**common, "disable": True}, {**common, "disable": None}]
