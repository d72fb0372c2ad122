"""Save and load trained models as one ``.npz`` file, readable with allow_pickle=False.

The file holds the weights (``param/W1`` ...), the preprocessing statistics
(``pre/mean`` ...) and a JSON header (``meta``) with the architecture and options.
Writes are atomic (``nnlib.atomic``); reading checks the whole file (header, shapes,
finite values) before anything is built, and a bad file raises ``ModelError`` naming it.
"""
from __future__ import annotations

import io
import json
import lzma
import zipfile
from pathlib import Path

import numpy as np

from nnlib.atomic import atomic_open
from nnlib.errors import READ_ERRORS  # noqa: F401 (nnlib.io.READ_ERRORS, as before)
from nnlib.fcnet import FullyConnectedNet
from nnlib.preprocess import Preprocessor

FORMAT = "nnlib.FullyConnectedNet/1"
META_KEYS = {"format", "model", "info", "preprocessor"}
MODEL_KEYS = {"hidden_dims", "input_dim", "num_classes", "dropout", "reg", "weight_scale",
              "dtype"}
PRE_KEYS = {"grayscale", "center", "scale", "zca", "image_shape"}
# A model archive (.npz, .keras) may inflate to at most this many bytes: about 20 times the
# largest model committed (fer2013_cnn.keras, 52 MB of weights inflated), so that a crafted
# file which would inflate to gigabytes is refused before anything is inflated.
MAX_UNPACKED_BYTES = 1 << 30
# Deflate shrinks trained weights to 50-90% of their size and a config about 30 times; an
# entry over RATIO_FROM bytes shrunk more than MAX_RATIO times holds no trained weights.
MAX_RATIO = 100
RATIO_FROM = 1 << 20


class ModelError(ValueError):
    """A model file is unreadable or inconsistent; the message names the file."""


def save_model(path, model, preprocessor=None, info=None):
    """Write ``model`` (and the ``preprocessor`` fitted with it) to ``path`` (.npz).

    info: optional JSON-able dict stored alongside (class names, metrics, ...).
    The file is replaced atomically: a killed save leaves the old file intact.
    """
    if not isinstance(model, FullyConnectedNet):
        raise TypeError(f"save_model expects a FullyConnectedNet, got {type(model).__name__}")
    meta = {"format": FORMAT, "model": model.config(), "info": info or {},
            "preprocessor": preprocessor.config() if preprocessor is not None else None}
    arrays = {f"param/{k}": v for k, v in model.params.items()}
    if preprocessor is not None:
        arrays.update({f"pre/{k}": v for k, v in preprocessor.arrays().items()})
    path = Path(path)
    with atomic_open(path) as f:
        np.savez_compressed(f, meta=np.array(json.dumps(meta)), **arrays)
    return path


def load_model(path):
    """Read a file written by ``save_model``.

    Returns a tuple (model, preprocessor or None, info dict). Raises FileNotFoundError
    for a missing file and ``ModelError`` for a file that is not a sound nnlib model.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no model file at {path}; train one first (notebook Q5) "
                                "or give the right --model path")
    check_unpacked_size(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except READ_ERRORS as e:
        raise ModelError(f"{path} is not a readable .npz model file (truncated or "
                         f"corrupted: {_first_line(e)}); save or copy it again") from None
    meta = _read_meta(path, arrays)
    model = _read_network(path, meta["model"], arrays)
    pre = None
    if meta.get("preprocessor") is not None:
        pre = _read_preprocessor(path, meta["preprocessor"], arrays, model.input_dim)
    return model, pre, meta.get("info") or {}


def check_unpacked_size(path):
    """Raise ``ModelError`` naming ``path`` if the zip archive there declares entries that
    inflate past ``MAX_UNPACKED_BYTES`` in all, or one entry over ``RATIO_FROM`` bytes
    compressed more than ``MAX_RATIO`` times. Only the sizes the archive declares are read:
    zipfile inflates no entry past its declared size. An archive that cannot be read at all
    is left to its loader to report."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with zipfile.ZipFile(path) as z:
            entries = z.infolist()
    except (OSError, EOFError, zipfile.BadZipFile):
        return
    total = sum(e.file_size for e in entries)
    if total > MAX_UNPACKED_BYTES:
        raise ModelError(f"{path} would inflate to {total:,} bytes, more than the "
                         f"{MAX_UNPACKED_BYTES:,} a model may take; it is no model saved by "
                         "nnlib: restore or copy the right file")
    for e in entries:
        # a declared compressed size beyond the file's own is a lie: the file bounds it
        packed = max(min(e.compress_size, size), 1)
        if e.file_size > RATIO_FROM and e.file_size > MAX_RATIO * packed:
            raise ModelError(f"{path}: entry {e.filename} would inflate {packed:,} bytes to "
                             f"{e.file_size:,}, more than {MAX_RATIO} times; it holds no "
                             "trained weights: restore or copy the right file")


def _read_meta(path, arrays):
    if "meta" not in arrays:
        raise ModelError(f"{path} has no 'meta' header: it was not written by "
                         "nnlib.io.save_model")
    try:
        meta = json.loads(str(arrays["meta"]))
    except (json.JSONDecodeError, UnicodeError) as e:
        raise ModelError(f"{path}: the 'meta' header is not JSON ({e})") from None
    if not isinstance(meta, dict):
        raise ModelError(f"{path}: the 'meta' header must be a JSON object")
    if meta.get("format") != FORMAT:
        raise ModelError(f"{path} has format {meta.get('format')!r}, expected {FORMAT!r}")
    _check_keys(path, "header", meta, META_KEYS, required={"format", "model"})
    if not isinstance(meta.get("info", {}) or {}, dict):
        raise ModelError(f"{path}: the header's 'info' must be a JSON object")
    unknown = {k for k in arrays if k != "meta" and not k.startswith(("param/", "pre/"))}
    if unknown:
        raise ModelError(f"{path} holds unknown entries {sorted(unknown)}")
    return meta


def _check_keys(path, what, d, allowed, required=()):
    if not isinstance(d, dict):
        raise ModelError(f"{path}: the {what} must be a JSON object, got {type(d).__name__}")
    unknown, missing = set(d) - allowed, set(required) - set(d)
    if unknown:
        raise ModelError(f"{path}: unknown {what} keys {sorted(unknown)}; "
                         f"expected {sorted(allowed)}")
    if missing:
        raise ModelError(f"{path}: the {what} lacks {sorted(missing)}")


def _positive_int(value):
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _read_network(path, cfg, arrays):
    """Check the architecture against the stored weights, then build the network (the
    weights' shapes bound the allocation, so an absurd header cannot exhaust memory)."""
    _check_keys(path, "model config", cfg, MODEL_KEYS,
                required={"hidden_dims", "input_dim", "num_classes"})
    hidden = cfg["hidden_dims"]
    if not (isinstance(hidden, list) and all(_positive_int(h) for h in hidden)
            and _positive_int(cfg["input_dim"]) and _positive_int(cfg["num_classes"])):
        raise ModelError(f"{path}: layer sizes must be positive integers, got input_dim="
                         f"{cfg['input_dim']!r}, hidden_dims={hidden!r}, "
                         f"num_classes={cfg['num_classes']!r}")
    if cfg.get("dtype", "float32") not in ("float32", "float64"):
        raise ModelError(f"{path}: dtype must be float32 or float64, got {cfg['dtype']!r}")
    dims = [cfg["input_dim"], *hidden, cfg["num_classes"]]
    expected = {}
    for i, (fan_in, fan_out) in enumerate(zip(dims[:-1], dims[1:]), start=1):
        expected[f"W{i}"], expected[f"b{i}"] = (fan_in, fan_out), (fan_out,)
    params = {k[6:]: v for k, v in arrays.items() if k.startswith("param/")}
    if set(params) != set(expected):
        raise ModelError(f"{path}: the weights {sorted(params)} do not match the "
                         f"architecture, which needs {sorted(expected)}")
    for k, shape in expected.items():
        v = params[k]
        if v.shape != shape or not np.issubdtype(v.dtype, np.floating):
            raise ModelError(f"{path}: parameter {k} has shape {v.shape} and dtype {v.dtype}, "
                             f"the architecture needs a float array of shape {shape}")
        if not np.isfinite(v).all():
            raise ModelError(f"{path}: parameter {k} holds NaN or inf values; the model "
                             "diverged or the file is damaged: retrain or restore it")
    try:
        model = FullyConnectedNet(**cfg)
    except (TypeError, ValueError) as e:
        raise ModelError(f"{path}: invalid model config ({e})") from None
    model.params = {k: params[k].astype(model.dtype) for k in expected}
    return model


def _read_preprocessor(path, cfg, arrays, input_dim):
    """Check the preprocessing against the network's input (each statistic's exact shape:
    one that merely broadcasts would subtract the wrong values), then build it."""
    _check_keys(path, "preprocessor config", cfg, PRE_KEYS, required=PRE_KEYS)
    stats = {k[4:]: v for k, v in arrays.items() if k.startswith("pre/")}
    needed = {"mean", "std"} | ({"whitening"} if cfg["zca"] is not None else set())
    if not needed <= set(stats):
        raise ModelError(f"{path} lacks the preprocessing arrays {sorted(needed - set(stats))}; "
                         "save the model with save_model(path, model, preprocessor)")
    if set(stats) - needed:
        raise ModelError(f"{path} holds preprocessing arrays {sorted(set(stats) - needed)} "
                         f"that its settings do not use (zca={cfg['zca']!r})")
    shape = cfg["image_shape"]
    if not (isinstance(shape, list) and shape and all(_positive_int(s) for s in shape)
            and int(np.prod(shape)) == input_dim):
        raise ModelError(f"{path}: image_shape {shape!r} does not give the network's "
                         f"{input_dim} input features")
    for k, v in stats.items():
        if not np.issubdtype(v.dtype, np.number) or not np.isfinite(v).all():
            raise ModelError(f"{path}: preprocessing array {k} is not a finite numeric array")
    try:
        pre = Preprocessor.from_config(cfg, stats)
    except (TypeError, ValueError) as e:
        raise ModelError(f"{path}: invalid preprocessing ({_first_line(e)})") from None
    expected = {"mean": _mean_shape(pre.center, shape), "std": (),
                "whitening": (input_dim, input_dim)}
    for k, v in stats.items():
        if v.shape != expected[k]:
            raise ModelError(f"{path}: preprocessing array {k} has shape {v.shape}, but the "
                             f"model's {'x'.join(map(str, shape))} images (center="
                             f"{pre.center!r}) need {expected[k]}; the file is damaged or was not "
                             "written by save_model")
    if float(stats["std"]) <= 0:
        raise ModelError(f"{path}: the preprocessing std must be positive, got "
                         f"{float(stats['std'])}")
    return pre


def _mean_shape(center, image_shape):
    """The shape of ``Preprocessor.mean`` for ``center`` and images of ``image_shape``."""
    if center == "image":
        return tuple(image_shape)
    if center == "channel" and len(image_shape) == 3:
        return (image_shape[-1],)
    return ()  # a mean over every pixel of grayscale images, or zero when not centred


def _first_line(e):
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0]}" if text else type(e).__name__


def write_arrays(path, **arrays):
    """Write ``arrays`` to ``path`` as an .npz, xz-compressed when the name ends in .xz
    (to carry a data set to another machine); replaced atomically."""
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    raw = buf.getvalue()
    with atomic_open(Path(path)) as f:
        f.write(lzma.compress(raw) if str(path).endswith(".xz") else raw)


def read_arrays(path):
    """The arrays of a ``write_arrays`` file, as a dict."""
    raw = Path(path).read_bytes()
    with np.load(io.BytesIO(lzma.decompress(raw) if str(path).endswith(".xz") else raw),
                 allow_pickle=False) as f:
        return {k: f[k] for k in f.files}
