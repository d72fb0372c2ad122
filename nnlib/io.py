"""Save and load trained models as one ``.npz`` file, readable with allow_pickle=False.

The file holds the weights (``param/W1`` ...), the preprocessing statistics
(``pre/mean`` ...) and a JSON header (``meta``) with the architecture and options.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

FORMAT = "nnlib.FullyConnectedNet/1"


def save_model(path, model, preprocessor=None, info=None):
    """Write ``model`` (and the ``preprocessor`` fitted with it) to ``path`` (.npz).

    info: optional JSON-able dict stored alongside (class names, metrics, ...).
    """
    from nnlib.fcnet import FullyConnectedNet
    if not isinstance(model, FullyConnectedNet):
        raise TypeError(f"save_model expects a FullyConnectedNet, got {type(model).__name__}")
    meta = {"format": FORMAT, "model": model.config(), "info": info or {},
            "preprocessor": preprocessor.config() if preprocessor is not None else None}
    arrays = {f"param/{k}": v for k, v in model.params.items()}
    if preprocessor is not None:
        arrays.update({f"pre/{k}": v for k, v in preprocessor.arrays().items()})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        np.savez_compressed(f, meta=np.array(json.dumps(meta)), **arrays)
    return path


def load_model(path):
    """Read a file written by ``save_model``.

    Returns a tuple (model, preprocessor or None, info dict).
    """
    from nnlib.fcnet import FullyConnectedNet
    from nnlib.preprocess import Preprocessor
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no model file at {path}; train one first (notebook Q5) "
                                "or give the right --model path")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError) as e:
        raise ValueError(f"{path} is not a readable .npz model file: {e}") from None
    if "meta" not in arrays:
        raise ValueError(f"{path} has no 'meta' entry: it was not written by "
                         "nnlib.io.save_model")
    meta = json.loads(str(arrays["meta"]))
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path} has format {meta.get('format')!r}, expected {FORMAT!r}")
    cfg = dict(meta["model"])
    model = FullyConnectedNet(**cfg)
    params = {k[6:]: v for k, v in arrays.items() if k.startswith("param/")}
    for k, v in model.params.items():
        if k not in params or params[k].shape != v.shape:
            raise ValueError(f"{path}: parameter {k} is missing or has the wrong shape")
    model.params = {k: params[k].astype(model.dtype) for k in model.params}
    pre = None
    if meta.get("preprocessor") is not None:
        stats = {k[4:]: v for k, v in arrays.items() if k.startswith("pre/")}
        pre = Preprocessor.from_config(meta["preprocessor"], stats)
    return model, pre, meta.get("info", {})
