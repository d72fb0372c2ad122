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
from nnlib.cnn.fold import fold_batch_norm  # noqa: E402
from nnlib.evaluate import LoadedModel  # noqa: E402


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
