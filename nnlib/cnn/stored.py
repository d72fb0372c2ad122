"""Each trained weight stored once: a finished ``train_cnn`` run whose best weights are
kept in another model file (an ensemble holding it as a member) loses its own
``best.keras`` and says in ``stored.json`` where its weights are; ``best_weights`` reads
them back from there, checked against their digest."""
from __future__ import annotations

import json
import os.path
from pathlib import Path

from nnlib.atomic import write_text
from nnlib.cnn.io import load_keras_model
from nnlib.digest import arrays_digest, file_sha256

STORED_NAME = "stored.json"


def find_layer(model, name):
    """The layer called ``name`` anywhere inside ``model`` (nested models included), or
    ``model`` itself if that is its name."""
    if model.name == name:
        return model
    for layer in model.layers:
        if layer.name == name:
            return layer
        if hasattr(layer, "layers"):
            found = find_layer(layer, name)
            if found is not None:
                return found
    return None


_holders = {}  # model files read for stored weights: (path, size, mtime) -> model


def best_weights(run_dir):
    """The best epoch's weights of a ``train_cnn`` run: its ``best.keras``, or, when that
    was removed by ``store_run_weights``, the layer of the model file that ``stored.json``
    names (checked against the digest recorded there)."""
    run_dir = Path(run_dir)
    stored = run_dir / STORED_NAME
    if (run_dir / "best.keras").exists() or not stored.exists():
        return load_keras_model(run_dir / "best.keras").get_weights()
    try:
        ref = json.loads(stored.read_text())
        path = (run_dir / ref["file"]).resolve()
        name, digest = str(ref["layer"]), str(ref["weights_sha256"])
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{stored} is damaged ({type(e).__name__}: {e}); restore it from "
                         f"git, or delete {run_dir} to train this run again") from None
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: it holds the best weights of {run_dir} "
                                f"(as {stored} says); restore it from git")
    key = (path, path.stat().st_size, path.stat().st_mtime_ns)
    if key not in _holders:
        _holders.clear()  # one model file at a time: they can be large
        _holders[key] = load_keras_model(path)
    layer = find_layer(_holders[key], name)
    if layer is None:
        raise ValueError(f"{path} has no layer {name!r}, which holds the best weights of "
                         f"{run_dir} (as {stored} says); restore that file, or delete "
                         f"{run_dir} to train this run again")
    weights = layer.get_weights()
    if arrays_digest(weights) != digest:
        raise ValueError(f"{path} no longer holds the best weights of {run_dir} (layer "
                         f"{name!r}, as {stored} says); restore that file, or delete "
                         f"{run_dir} to train this run again")
    return weights


def store_run_weights(run_dir, holder_path, layer_name):
    """Keep a finished run's best weights only in ``holder_path`` (a saved model whose
    layer ``layer_name`` holds exactly them, e.g. an ensemble's member): record where in
    ``stored.json``, then remove ``best.keras``. Returns whether it removed a file;
    raises if the layer's weights differ from the run's."""
    run_dir, holder_path = Path(run_dir), Path(holder_path)
    best = run_dir / "best.keras"
    if not best.exists():
        return False
    record = run_dir / "run.json"
    if not (record.exists() and json.loads(record.read_text()).get("finished")):
        raise ValueError(f"{run_dir} holds no finished run; only a finished run's weights "
                         "can be stored elsewhere")
    weights = load_keras_model(best).get_weights()
    layer = find_layer(load_keras_model(holder_path), layer_name)
    if layer is None or arrays_digest(layer.get_weights()) != arrays_digest(weights):
        raise ValueError(f"{holder_path} layer {layer_name!r} does not hold the best "
                         f"weights of {run_dir}; nothing was removed")
    write_text(run_dir / STORED_NAME, json.dumps({
        "file": os.path.relpath(holder_path, run_dir), "layer": layer_name,
        "weights_sha256": arrays_digest(weights),
        # the removed file's digest: a warm restart from this run names it in its settings
        "file_sha256": file_digest(best)}, indent=1) + "\n")
    best.unlink()
    return True


def file_digest(path):
    """SHA-256 of a ``best.keras`` file's bytes, or of the file it was before it was
    stored elsewhere (``stored.json`` keeps it)."""
    stored = path.parent / STORED_NAME
    if not path.exists() and stored.exists():
        return json.loads(stored.read_text())["file_sha256"]
    return file_sha256(path)
