"""A Keras network's layers as a table (what ``model.summary()`` prints, as data to show
in a notebook or export to the report), with each layer's settings spelt out."""
from __future__ import annotations

# the words a reader knows for Keras's layer classes (any other keeps its class name)
LAYER_NAMES = {
    "Rescaling": "rescaling", "Conv2D": "convolution", "BatchNormalization": "batch norm",
    "ReLU": "ReLU", "Activation": "activation", "MaxPooling2D": "max pooling",
    "AveragePooling2D": "average pooling", "GlobalAveragePooling2D": "global average pool",
    "Dense": "dense", "Dropout": "dropout", "Flatten": "flatten",
    "ShufflePixels": "pixel shuffle",
}
PADDING = {"same": "zero padding", "valid": "no padding"}


def _settings(layer):
    """The settings that shape a layer's output, in words ("3x3, stride 1, same")."""
    c = layer.get_config()
    kind = type(layer).__name__
    if "kernel_size" in c:
        k = "x".join(map(str, c["kernel_size"]))
        s = "x".join(map(str, c["strides"])) if len(set(c["strides"])) > 1 else c["strides"][0]
        return f"{c.get('filters', '')} filters {k}, stride {s}, {PADDING[c['padding']]}".lstrip()
    if "pool_size" in c:
        p = "x".join(map(str, c["pool_size"]))
        s = c["strides"] or c["pool_size"]
        s = "x".join(map(str, s)) if len(set(s)) > 1 else s[0]
        return f"{p}, stride {s}, {PADDING[c['padding']]}"
    if kind == "Dense":
        activation = "" if c["activation"] == "linear" else f", {c['activation']}"
        return f"{c['units']} units{activation}"
    if "rate" in c:
        return f"rate {c['rate']:g}"
    if kind == "Activation":
        return c["activation"]
    return ""


def layer_table(model):
    """A DataFrame with one row per layer of ``model``: layer (its kind in words), settings,
    output shape (without the batch axis) and parameters; the total is their sum."""
    import pandas as pd

    rows = [(LAYER_NAMES.get(type(layer).__name__, type(layer).__name__), _settings(layer),
             " x ".join(str(d) for d in layer.output.shape[1:]), layer.count_params())
            for layer in model.layers if type(layer).__name__ != "InputLayer"]
    return pd.DataFrame(rows, columns=["layer", "settings", "output shape", "parameters"])


def architecture_table(names):
    """A DataFrame with one row per architecture of ``names`` (keys of ARCHITECTURES):
    filters per block, convolutions per block, dense units, dropout and parameters of the
    network ``build_cnn`` makes of it."""
    import pandas as pd

    from nnlib.cnn.models import ARCHITECTURES, build_cnn
    rows = [(n, "-".join(map(str, ARCHITECTURES[n]["filters"])), ARCHITECTURES[n]["convs"],
             ARCHITECTURES[n]["dense"], ARCHITECTURES[n]["dropout"], build_cnn(n).count_params())
            for n in names]
    return pd.DataFrame(rows, columns=["network", "filters per block", "convs per block",
                                       "dense units", "dropout", "parameters"])
