"""Deployment: a trained network with its batch normalisations folded into the layers
before them (``fold_batch_norm``), so that prediction does one pass over each feature map
where it did three (convolution, normalisation, ReLU)."""
from __future__ import annotations

import numpy as np

from nnlib.cnn.backend import import_keras


def fold_batch_norm(model):
    """The same function as ``model`` in inference mode, with each BatchNormalization
    (over the last axis) that follows a Conv2D or Dense layer folded into that layer's
    kernel and bias, and a plain ReLU right after it made the layer's activation (a ReLU
    with a cap, a negative slope or a threshold stays a layer of its own after it).

    At inference a normalisation is an affine map per channel, y = s x + b with
    s = gamma / sqrt(var + eps) and b = beta - s mean, so it folds exactly into the
    layer before: kernel * s, bias * s + b. ``model``: a chain of layers (each layer's
    input is the previous layer's output, as ``build_cnn`` builds), or a graph of such
    chains (``with_tta``, ``ensemble``: each is folded). The layers that do not change are
    shared with ``model``; its name is kept. Raises ValueError for a normalisation that
    cannot fold exactly: after a layer with a nonlinear activation, over another axis than
    the channels, or after a layer that puts its channels first."""
    keras = import_keras()
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    if not _is_chain(model, layers):  # e.g. test-time views or an ensemble: fold each part
        return keras.models.clone_model(
            model, clone_function=lambda layer: (fold_batch_norm(layer)
                                                 if isinstance(layer, keras.Model) else layer))
    x = inputs = keras.Input(model.input_shape[1:], name=model.layers[0].name)
    i = 0
    while i < len(layers):
        layer = layers[i]
        nxt = layers[i + 1] if i + 1 < len(layers) else None
        if (isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))
                and isinstance(nxt, keras.layers.BatchNormalization)):
            relu = layers[i + 2] if i + 2 < len(layers) else None
            # only max(x, 0) is the layer's "relu" activation
            fuse = (isinstance(relu, keras.layers.ReLU) and relu.max_value is None
                    and relu.negative_slope == 0 and relu.threshold == 0)
            x = _folded(keras, layer, nxt, fuse)(x)
            i += 3 if fuse else 2
        elif isinstance(layer, keras.Model):  # a network inside: fold it too
            x = fold_batch_norm(layer)(x)
            i += 1
        else:  # shared, as clone_model shares it above
            x = layer(x)
            i += 1
    return keras.Model(inputs, x, name=model.name)


def _folded(keras, layer, bn, relu):
    """A copy of ``layer`` (Conv2D or Dense, linear) with ``bn`` folded in, built and
    with its weights set; ReLU as its activation where ``relu``."""
    config = layer.get_config()
    if config["activation"] != "linear":
        raise ValueError(f"fold_batch_norm: {layer.name} has activation "
                         f"{config['activation']!r} before {bn.name}; only a linear layer folds")
    if config.get("data_format", "channels_last") != "channels_last":
        raise ValueError(f"fold_batch_norm: {layer.name} puts its channels first; only "
                         "channels_last layers fold")
    if bn.axis not in (-1, len(layer.output.shape) - 1):
        raise ValueError(f"fold_batch_norm: {bn.name} normalises axis {bn.axis}, not the "
                         f"channels of {layer.name} (the last axis); it cannot fold")
    weights = layer.get_weights()
    kernel = weights[0]
    bias = weights[1] if config["use_bias"] else np.zeros(kernel.shape[-1], kernel.dtype)
    stats = bn.get_weights()  # [gamma] [beta] mean variance, as the layer has them
    gamma = stats.pop(0) if bn.scale else np.ones_like(bias)
    beta = stats.pop(0) if bn.center else np.zeros_like(bias)
    mean, var = stats
    scale = gamma / np.sqrt(var + bn.epsilon)
    config.update(use_bias=True, activation="relu" if relu else "linear",
                  kernel_regularizer=None, bias_regularizer=None)
    folded = layer.__class__.from_config(config)
    folded.build(layer.input.shape)
    folded.set_weights([(kernel * scale).astype(kernel.dtype),
                        ((bias - mean) * scale + beta).astype(kernel.dtype)])
    return folded


def _is_chain(model, layers):
    """Whether each of ``layers`` takes exactly the previous one's output (the first,
    the model's input) where ``model`` calls it."""
    previous = model.inputs[0]
    for layer in layers:
        if layer.input is not previous:  # another tensor, or a list of them
            return False
        previous = layer.output
    return True
