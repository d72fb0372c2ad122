"""nnlib.saliency: input gradients through nnlib's layers and preprocessing (checked against
numerical gradients of a forward pass written here) and through Keras (checked against
the softmax's gradient in closed form)."""
import importlib.util
from types import SimpleNamespace

import matplotlib
import numpy as np
import pytest

from nnlib import FullyConnectedNet, Preprocessor, save_model
from nnlib.data import FER2013_CLASSES
from nnlib.gradient_check import eval_numerical_gradient, rel_error_norm
from nnlib.loaded import LoadedModel
from nnlib.saliency import mlp_gradient, mlp_saliency, saliency, saliency_figure, saliency_map

matplotlib.use("Agg")


def network(shape, rng, zca=None):
    """A float64 network with He weights and non-zero biases behind a fitted Preprocessor."""
    pre = Preprocessor(zca=zca).fit(rng.integers(0, 256, (40, *shape)).astype(np.uint8))
    net = FullyConnectedNet([12, 9], input_dim=int(np.prod(shape)), num_classes=7,
                            weight_scale="he", dtype=np.float64, seed=1)
    for k in net.params:
        if k.startswith("b"):
            net.params[k] = rng.normal(0, 0.1, net.params[k].shape)
    return net, pre


def score(net, pre, x, cls):
    """The class score, every step in float64 here (no nnlib layer, no transform)."""
    F = ((x - pre.mean.astype(np.float64)) / float(pre.std)).reshape(1, -1)
    if pre.whitening is not None:
        F = F @ pre.whitening.astype(np.float64)
    p = net.params
    h = np.maximum(F @ p["W1"] + p["b1"], 0)
    h = np.maximum(h @ p["W2"] + p["b2"], 0)
    return float((h @ p["W3"] + p["b3"])[0, cls])


@pytest.mark.parametrize("zca", [None, 0.1], ids=["plain", "whitened"])
def test_mlp_gradient_matches_numerical_gradient(rng, zca):
    net, pre = network((6, 5), rng, zca)
    x = rng.uniform(0, 255, (6, 5))
    for cls in (0, 4):
        grad = mlp_gradient(net, pre, x, cls)
        num = eval_numerical_gradient(lambda v, c=cls: score(net, pre, v, c), x.copy(), h=1e-3)
        assert grad.shape == (6, 5) and rel_error_norm(grad, num) < 1e-6


def test_mirror_view_adds_the_mirrored_faces_gradient(rng):
    net, pre = network((4, 6), rng)
    x = rng.uniform(0, 255, (4, 6))
    loaded = SimpleNamespace(model=net, preprocessor=pre, info={"tta_flip": True})
    grad = mlp_saliency(loaded, x, 2)
    num = eval_numerical_gradient(
        lambda v: score(net, pre, v, 2) + score(net, pre, v[:, ::-1], 2), x.copy(), h=1e-3)
    assert rel_error_norm(grad, num) < 1e-6
    loaded.info = {}
    assert rel_error_norm(mlp_saliency(loaded, x, 2), grad) > 0.05  # the view matters


def test_saliency_of_a_saved_model_explains_its_prediction(tmp_path, rng):
    images = rng.integers(0, 256, (30, 48, 48), dtype=np.uint8)
    net = FullyConnectedNet([8], input_dim=2304, num_classes=7, weight_scale="he", seed=0)
    path = save_model(tmp_path / "m.npz", net, Preprocessor().fit(images),
                      info={"tta_flip": True})
    loaded = LoadedModel(path)
    grad, cls = saliency(loaded, images[0])
    assert cls == loaded.predict(images[:1])[0] and grad.shape == (48, 48)
    assert np.allclose(saliency(loaded, images[0], cls=5)[0],
                       mlp_saliency(loaded, images[0], 5))


@pytest.mark.skipif(importlib.util.find_spec("keras") is None, reason="Keras is not installed")
def test_keras_gradient_of_a_softmax_layer_in_closed_form(rng):
    from nnlib.cnn.backend import import_keras
    keras = import_keras()
    inputs = keras.Input((5, 4, 1))
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    outputs = keras.layers.Dense(7, activation="softmax")(keras.layers.Flatten()(x))
    model = keras.Model(inputs, outputs)
    W, b = (rng.normal(0, 1, (20, 7)).astype(np.float32), rng.normal(0, 1, 7).astype(np.float32))
    model.layers[-1].set_weights([W, b])
    image = rng.integers(0, 256, (5, 4)).astype(np.uint8)
    z = (image.reshape(-1) / 255.0) @ W.astype(np.float64) + b
    p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    cls = 3  # d p_c / d x = p_c (W[:, c] - W p) / 255
    want = (p[cls] * (W[:, cls] - W @ p) / 255.0).reshape(5, 4)
    loaded = SimpleNamespace(kind="keras", model=model)
    grad, got_cls = saliency(loaded, image, cls)
    assert got_cls == cls and rel_error_norm(grad, want) < 1e-4


def test_saliency_map_and_figure(rng):
    grad = np.zeros((48, 48))
    grad[10, 20] = -3.0
    heat = saliency_map(grad)
    assert heat.shape == (48, 48) and heat.min() >= 0 and heat.max() == 1
    # high at the pixel and around it (smoothed), nothing far from it
    assert heat[10, 20] == 1 and heat[10, 21] > 0.5 and heat[30:, :].max() < 1e-6
    assert saliency_map(np.zeros((4, 4))).max() == 0
    probs = np.full(7, 0.05)
    probs[3] = 0.7
    face = rng.integers(0, 256, (48, 48), dtype=np.uint8)
    fig = saliency_figure([("a", face, grad, probs), ("b", face, -grad, probs)],
                          FER2013_CLASSES)
    assert len(fig.axes) == 4 and fig.axes[0].get_title() == "a\nhappy 0.70"
