"""Loading (in Keras's safe mode, with one clear error for a bad file) and saving
(atomically, compressed, and not at all when the file already holds the same network) of
``.keras`` models."""
from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import numpy as np

from nnlib.atomic import temporary_path
from nnlib.cnn.augment import random_affine_layer
from nnlib.cnn.backend import import_keras
from nnlib.cnn.ensemble import tta_layers
from nnlib.io import ModelError, check_unpacked_size


def load_keras_model(path):
    """Load a ``.keras`` model in Keras's safe mode (no arbitrary code).

    Raises FileNotFoundError for a missing file and ``ModelError`` (one line naming the
    file) for a truncated or garbled archive, one that would inflate to more than a model
    may take (``nnlib.io.check_unpacked_size``), one that names code safe mode refuses to
    run, or one whose weights hold NaN or inf."""
    keras = import_keras()
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no model file at {path}; train it first (notebook Q6) "
                                "or give the right --model path")
    check_unpacked_size(path)  # before Keras inflates anything
    tta_layers()  # registers the TTA layers for deserialisation
    random_affine_layer()
    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as e:  # Keras raises many types for a bad archive; name the file
        text = " ".join(re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", str(e)).split())  # no colours
        if "safe_mode" in text or "lambda" in text.lower() or "unsafe" in text.lower():
            raise ModelError(f"{path} holds Python code (e.g. a Lambda layer) that Keras's "
                             "safe mode refuses to run; use a model saved by nnlib, or "
                             "load it yourself only if you trust its source") from None
        if isinstance(e, TypeError) and "custom" in text.lower():
            raise ModelError(f"{path} names layers or functions unknown here ({text[:200]}); "
                             "it was not saved by nnlib") from None
        raise ModelError(f"{path} is not a readable Keras model file (truncated or "
                         f"corrupted: {type(e).__name__}: {text[:200]}); save or copy it "
                         "again") from None
    for w in model.weights:
        if not np.isfinite(np.asarray(w)).all():
            raise ModelError(f"{path}: weight {w.path} holds NaN or inf values; the model "
                             "diverged or the file is damaged: retrain or restore it")
    return model


def write_keras(model, path):
    """Save ``model`` to ``path`` atomically as a deflate-compressed ``.keras`` archive.

    Keras stores its archive uncompressed; trained weights deflate to about 57% of their
    size, losslessly (the same weights load back), which halves the repository's model
    files. Entries get a fixed timestamp so that equal contents give equal bytes."""
    path = Path(path)
    with temporary_path(path) as tmp:
        model.save(tmp)
        with zipfile.ZipFile(tmp) as z:
            entries = [(info.filename, z.read(info)) for info in z.infolist()]
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
            for name, data in entries:
                info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                z.writestr(info, data, compresslevel=9)
    return path


def is_compressed(path):
    """Whether the ``.keras`` archive at ``path`` stores its weights deflated."""
    try:
        with zipfile.ZipFile(path) as z:
            return all(i.compress_type == zipfile.ZIP_DEFLATED for i in z.infolist())
    except (OSError, zipfile.BadZipFile):
        return False


def save_keras_model(model, path):
    """Save ``model`` to ``path`` (``write_keras``) unless the file there already holds
    the same network (its layers and weights), compressed: a ``.keras`` archive records
    when it was written, so saving an unchanged model again would rewrite a large file for
    nothing. Returns whether it wrote."""
    path = Path(path)
    if path.exists() and is_compressed(path):
        try:
            old = load_keras_model(path)
        except (ModelError, OSError):  # unreadable or of another kind: overwrite it
            old = None
        if (old is not None and _architecture(old) == _architecture(model)
                and len(old.weights) == len(model.weights)
                and all(np.array_equal(a, b)
                        for a, b in zip(old.get_weights(), model.get_weights()))):
            return False
    write_keras(model, path)
    return True


def _architecture(model):
    """The layers of ``model`` as JSON-ready data (no compile settings)."""
    return json.loads(model.to_json())["config"]
