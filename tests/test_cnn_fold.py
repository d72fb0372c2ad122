"""Folding batch normalisation into the layers before it, for faster prediction."""
import numpy as np
import pytest

pytest.importorskip("keras")

import keras  # noqa: E402

from nnlib.cnn import (  # noqa: E402
    ARCHITECTURES,
    build_cnn,
    configure_tensorflow,
    ensemble,
    predict_keras,
    with_tta,
)
from nnlib.cnn.ensemble import tta_layers  # noqa: E402
from nnlib.cnn.fold import fold_batch_norm  # noqa: E402
from nnlib.loaded import LoadedModel  # noqa: E402


def randomised(model, seed=0):
    """Weights far from their initial values, so that every term of the fold matters:
    moving variances in [0.001, 2), some as small as the normalisation's epsilon (0.001),
    the rest normal."""
    rng = np.random.default_rng(seed)
    model.set_weights([(rng.uniform(1e-3, 2.0, w.shape) if "variance" in v.path
                        else rng.standard_normal(w.shape) * 0.3).astype(np.float32)
                       for w, v in zip(model.get_weights(), model.weights)])
    return model


@pytest.mark.parametrize("convs", [1, 2])
def test_folded_network_predicts_as_the_original(monkeypatch, convs):
    monkeypatch.setitem(ARCHITECTURES, "t_fold", dict(filters=(4, 6), convs=convs, dense=8,
                                                      dropout=0.3))
    configure_tensorflow(seed=0)
    model = randomised(build_cnn("t_fold"))
    folded = fold_batch_norm(model)
    X = np.random.default_rng(1).integers(0, 256, (7, 48, 48, 1)).astype(np.float32)
    # the reference: Keras's own normalisation layers, in inference mode
    np.testing.assert_allclose(folded.predict(X, verbose=0), model.predict(X, verbose=0),
                               rtol=1e-4, atol=1e-6)
    kinds = [type(layer).__name__ for layer in folded.layers]
    assert "BatchNormalization" not in kinds and "ReLU" not in kinds
    assert kinds.count("Conv2D") == 2 * convs and folded.name == model.name
    assert folded.get_layer(index=2).get_config()["activation"] == "relu"
    # fewer parameters: each normalisation's four vectors go; the convolutions (built
    # without a bias) gain one, the dense layer keeps its own
    n_bn = sum(layer.get_weights()[0].size for layer in model.layers
               if type(layer).__name__ == "BatchNormalization")
    n_conv = sum(layer.filters for layer in model.layers if type(layer).__name__ == "Conv2D")
    assert folded.count_params() == model.count_params() - 4 * n_bn + n_conv


def test_a_normalisation_after_a_nonlinear_layer_is_refused():
    inputs = keras.Input((4,))
    x = keras.layers.Dense(3, activation="tanh")(inputs)
    model = keras.Model(inputs, keras.layers.BatchNormalization()(x))
    with pytest.raises(ValueError, match="only a linear layer folds"):
        fold_batch_norm(model)


def test_views_and_ensembles_fold_each_network(monkeypatch):
    monkeypatch.setitem(ARCHITECTURES, "t_fold", dict(filters=(4, 6), convs=1, dense=8,
                                                      dropout=0.3))
    configure_tensorflow(seed=0)
    members = [randomised(build_cnn("t_fold"), seed=s) for s in (0, 1)]
    model = with_tta(ensemble(members))
    folded = fold_batch_norm(model)
    X = np.random.default_rng(2).integers(0, 256, (5, 48, 48, 1)).astype(np.float32)
    np.testing.assert_allclose(folded.predict(X, verbose=0), model.predict(X, verbose=0),
                               rtol=1e-4, atol=1e-6)
    names = [layer.name for layer in _all_layers(folded)]
    assert not [n for n in names if n.startswith("bn")] and names.count("conv1_1") == 2
    assert all(layer.name != "conv1_1" or layer.get_config()["activation"] == "relu"
               for layer in _all_layers(folded))


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from _all_layers(layer)


def test_evaluate_predicts_with_the_folded_network(tmp_path):
    configure_tensorflow(seed=0)
    model = with_tta(randomised(build_cnn("tiny")))
    path = tmp_path / "cnn.keras"
    model.save(path)
    loaded = LoadedModel(path)
    assert loaded.parameters == model.count_params()  # of the network saved
    assert not [layer for layer in _all_layers(loaded.model)
                if isinstance(layer, keras.layers.BatchNormalization)]
    images = np.random.default_rng(3).integers(0, 256, (9, 48, 48), dtype=np.uint8)
    np.testing.assert_array_equal(loaded.predict(images), predict_keras(model, images))
    as_saved = LoadedModel(path, fold=False).model  # e.g. for a teacher's targets
    assert [layer for layer in _all_layers(as_saved)
            if isinstance(layer, keras.layers.BatchNormalization)]


def _dense_bn(after=None, activation=None, shape=(4,), axis=-1, **bn):
    """Input -> Dense(3) -> BatchNormalization [-> ``after``], randomised."""
    inputs = keras.Input(shape)
    x = keras.layers.Dense(3, activation=activation, name="d")(inputs)
    x = keras.layers.BatchNormalization(axis=axis, name="bn", **bn)(x)
    return randomised(keras.Model(inputs, after(x) if after else x))


@pytest.mark.parametrize("relu", [dict(max_value=0.5), dict(negative_slope=0.1),
                                  dict(threshold=0.5)])
def test_a_relu_that_is_not_plain_stays_a_layer_of_its_own(relu):
    # max(x, 0) is all a layer's "relu" activation does: a cap, a slope or a threshold
    # folded into it would change the function, so the ReLU stays after the folded layer
    model = _dense_bn(keras.layers.ReLU(**relu, name="r"))
    folded = fold_batch_norm(model)
    X = np.random.default_rng(4).standard_normal((200, 4)).astype(np.float32) * 3
    normalised = np.asarray(keras.Model(model.inputs[0], model.get_layer("bn").output)(X))
    expected = np.asarray(model(X))
    assert not np.allclose(np.maximum(normalised, 0), expected)  # the ReLU's extra matters
    np.testing.assert_allclose(np.asarray(folded(X)), expected, rtol=1e-5, atol=1e-5)
    kinds = [type(layer).__name__ for layer in folded.layers]
    assert kinds == ["InputLayer", "Dense", "ReLU"]
    assert folded.layers[1].get_config()["activation"] == "linear"


@pytest.mark.parametrize("model, message", [
    (lambda: _dense_bn(activation="relu"), "d has activation 'relu' before bn; only a "
                                           "linear layer folds"),
    (lambda: _dense_bn(shape=(2, 4), axis=1), "bn normalises axis 1, not the channels of d"),
    (lambda: keras.Sequential([keras.Input((2, 6, 6)), keras.layers.Conv2D(
        3, 1, data_format="channels_first", name="c"), keras.layers.BatchNormalization(
        axis=1)]), "c puts its channels first; only channels_last layers fold"),
])
def test_what_cannot_fold_exactly_is_refused(model, message):
    with pytest.raises(ValueError, match=f"fold_batch_norm: {message}"):
        fold_batch_norm(model())


@pytest.mark.parametrize("shape, bn", [((2, 4), dict(axis=2)), ((4,), dict(scale=False)),
                                       ((4,), dict(center=False))])
def test_normalisations_without_a_scale_or_shift_or_over_a_sequence_fold(shape, bn):
    model = _dense_bn(keras.layers.ReLU(), shape=shape, **bn)
    X = np.random.default_rng(5).standard_normal((9, *shape)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(fold_batch_norm(model)(X)), np.asarray(model(X)),
                               rtol=1e-5, atol=1e-5)


def _pixel_reader(weights, shape=(48, 48, 1)):
    """A Keras model whose scores are the flattened image times ``weights``."""
    inputs = keras.Input(shape)
    dense = keras.layers.Dense(weights.shape[1], use_bias=False)
    model = keras.Model(inputs, dense(keras.layers.Flatten()(inputs)))
    dense.set_weights([weights.astype(np.float32)])
    return model


def test_the_mirror_view_of_a_keras_model_is_left_right():
    HorizontalFlip, _ = tta_layers()
    W = np.zeros((2304, 7))
    W[5 * 48 + 2, 0] = 1  # the image: a bright pixel at row 5, column 2
    W[5 * 48 + 45, 1] = 3  # mirrored left-right
    W[42 * 48 + 2, 2] = 3  # upside down
    W[42 * 48 + 45, 3] = 3  # turned half round
    X = np.zeros((1, 48, 48, 1), np.float32)
    X[0, 5, 2] = 200
    np.testing.assert_array_equal(np.asarray(HorizontalFlip()(X)), X[:, :, ::-1])
    scores = np.asarray(with_tta(_pixel_reader(W))(X))
    np.testing.assert_allclose(scores, (X.reshape(1, -1) @ W + X[:, :, ::-1].reshape(1, -1) @ W)
                               / 2, rtol=1e-6)
    assert scores.argmax(1).tolist() == [1]
    assert predict_keras(with_tta(_pixel_reader(W), flip=False), X[..., 0]).tolist() == [0]


def test_a_keras_model_for_other_images_gets_one_line(tmp_path, capsys):
    from PIL import Image

    from nnlib.evaluate import main
    (tmp_path / "d" / "sad").mkdir(parents=True)
    Image.fromarray(np.zeros((48, 48), np.uint8), "L").save(tmp_path / "d" / "sad" / "a.png")
    path = tmp_path / "rgb.keras"
    _pixel_reader(np.zeros((48 * 48 * 3, 7)), (48, 48, 3)).save(path)
    with pytest.raises(SystemExit) as e:
        main(["--model", str(path), "--data", str(tmp_path / "d")])
    assert e.value.code == 2
    assert capsys.readouterr().err == (f"error: the model {path} takes 48x48x3 images, got "
                                       "48x48; resize or convert the data set, or pick the "
                                       "right model\n")
    # sizes the model leaves open take any image; a model without a channel axis, grayscale
    inputs = keras.Input((None, None, 1))
    pooled = keras.layers.GlobalAveragePooling2D()(inputs)
    keras.Model(inputs, keras.layers.Dense(7)(pooled)).save(tmp_path / "any.keras")
    _pixel_reader(np.eye(2304, 7), (48, 48)).save(tmp_path / "flat.keras")
    images = np.zeros((2, 48, 48), np.uint8)
    images[1, 0, 3] = 9
    assert LoadedModel(tmp_path / "any.keras").predict(images).shape == (2,)
    assert LoadedModel(tmp_path / "flat.keras").predict(images).tolist() == [0, 3]


def test_a_network_that_does_not_fold_is_evaluated_as_saved(tmp_path):
    inputs = keras.Input((48, 48, 1))
    x = keras.layers.Dense(7, activation="tanh")(keras.layers.Flatten()(inputs))
    model = randomised(keras.Model(inputs, keras.layers.BatchNormalization()(x)))
    model.save(tmp_path / "tanh.keras")
    loaded = LoadedModel(tmp_path / "tanh.keras")
    assert [layer for layer in loaded.model.layers
            if isinstance(layer, keras.layers.BatchNormalization)]
    images = np.random.default_rng(6).integers(0, 256, (5, 48, 48), dtype=np.uint8)
    np.testing.assert_array_equal(loaded.predict(images), predict_keras(model, images))
