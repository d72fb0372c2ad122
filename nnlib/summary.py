"""A FullyConnectedNet's layers as a table, as ``nnlib.cnn.summary.layer_table`` shows a
Keras network's: layer, settings, output shape and parameters."""
from __future__ import annotations


def fcnet_layers(model):
    """A DataFrame with one row per layer of the FullyConnectedNet ``model``: each hidden
    block's Linear, ReLU and (in training only) Dropout, then the output Linear and the
    softmax; the parameters (weights and biases) sum to ``model.num_params()``."""
    import pandas as pd

    rows, fan_in = [], model.input_dim
    for units in model.hidden_dims:
        rows.append(("Linear", f"{fan_in:,} to {units:,}", units, fan_in * units + units))
        rows.append(("ReLU", "", units, 0))
        if model.dropout:
            rows.append(("Dropout", f"p = {model.dropout:.2f} (training only)", units, 0))
        fan_in = units
    rows.append(("Linear", f"{fan_in:,} to {model.num_classes}", model.num_classes,
                 fan_in * model.num_classes + model.num_classes))
    rows.append(("Softmax", "class probabilities", model.num_classes, 0))
    return pd.DataFrame(rows, columns=["layer", "settings", "output shape", "parameters"])
