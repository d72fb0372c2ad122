"""Convolutional networks for FER2013 in Keras 3.

TensorFlow is the default backend (a tf.data pipeline feeds the CPU); training also runs
on Keras's JAX or PyTorch backend (``KERAS_BACKEND``), for a GPU machine without
TensorFlow, with the augmentation inside the training graph. Either way the saved
``.keras`` files are the same and load with any backend.

Keras is imported inside the functions, so ``import nnlib`` stays light. Models take
uint8-valued images (N, 48, 48, 1); the scaling to [0, 1] is the model's first layer,
so a saved ``.keras`` file carries its preprocessing. ``ensemble`` averages the scores
of several trained networks and ``with_tta`` wraps a network so that it averages its
scores over each face, its mirror image and small shifts.
"""
from __future__ import annotations

import functools
import os
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

from nnlib.atomic import TMP_PREFIX, temporary_path, write_text
from nnlib.io import ModelError

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# filters per block, convolutions per block, dense units, dropout before the classifier
ARCHITECTURES = {
    "tiny": dict(filters=(8, 16), convs=1, dense=32, dropout=0.2),
    "compact": dict(filters=(32, 64, 128, 256), convs=1, dense=256, dropout=0.4),
    "vgg_small": dict(filters=(32, 64, 128, 256), convs=2, dense=256, dropout=0.5),
    "wide": dict(filters=(64, 128, 256, 256), convs=1, dense=512, dropout=0.5),
    # a GPU's network: about 1 GFLOP an image, 20 times "compact"
    "vgg": dict(filters=(64, 128, 256, 512), convs=2, dense=512, dropout=0.5),
}

# With Keras's default 0.99 the moving statistics lag behind a fast-changing network, so
# a short run scores near chance on validation; 0.9 follows within a few dozen steps and
# costs nothing on a long run.
BN_MOMENTUM = 0.9


def configure_tensorflow(threads=None, seed=0):
    """Thread counts for the CPU (one pool of all cores for each op, ops run one at a
    time, which is fastest for one model on few cores) and seeds everywhere; with
    another Keras backend, only the seeds."""
    import keras
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf
        threads = threads or os.cpu_count()
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        except RuntimeError:  # already initialised in this process
            pass
    keras.utils.set_random_seed(seed)


def build_cnn(arch="compact", input_shape=(48, 48, 1), num_classes=7, l2=1e-4):
    """A VGG-style network: blocks of 3x3 convolutions (same padding) with batch
    normalisation and ReLU, each followed by 2x2 max pooling; global average pooling,
    one dense layer with dropout, softmax. ``arch`` names an entry of ARCHITECTURES."""
    import keras
    from keras import layers
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {sorted(ARCHITECTURES)}")
    spec = ARCHITECTURES[arch]
    reg = keras.regularizers.l2(l2) if l2 else None
    inputs = keras.Input(input_shape, name="image")
    x = layers.Rescaling(1 / 255.0, name="scale")(inputs)
    for b, filters in enumerate(spec["filters"], start=1):
        for k in range(spec["convs"]):
            x = layers.Conv2D(filters, 3, padding="same", use_bias=False,
                              kernel_regularizer=reg, name=f"conv{b}_{k + 1}")(x)
            x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"bn{b}_{k + 1}")(x)
            x = layers.ReLU(name=f"relu{b}_{k + 1}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{b}")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dense(spec["dense"], kernel_regularizer=reg, name="dense")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name="bn_dense")(x)
    x = layers.ReLU(name="relu_dense")(x)
    x = layers.Dropout(spec["dropout"], name="dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="scores")(x)
    return keras.Model(inputs, outputs, name=f"fer_{arch}")


@functools.cache
def _tta_layers():
    """The layers of test-time augmentation, registered so that a saved TTA model loads
    in Keras's safe mode."""
    import keras

    @keras.saving.register_keras_serializable(package="nnlib")
    class HorizontalFlip(keras.layers.Layer):
        """Mirror images left-right (axis 2 of N, H, W, C)."""

        def call(self, x):
            return keras.ops.flip(x, axis=2)

    @keras.saving.register_keras_serializable(package="nnlib")
    class Translate(keras.layers.Layer):
        """Move images by ``dx`` pixels right and ``dy`` down; the uncovered border
        mirrors the image."""

        def __init__(self, dx=0, dy=0, **kwargs):
            super().__init__(**kwargs)
            self.dx, self.dy = int(dx), int(dy)

        def call(self, x):
            p = max(abs(self.dx), abs(self.dy))
            h, w = x.shape[1], x.shape[2]
            padded = keras.ops.pad(x, [[0, 0], [p, p], [p, p], [0, 0]], mode="symmetric")
            return padded[:, p - self.dy:p - self.dy + h, p - self.dx:p - self.dx + w, :]

        def get_config(self):
            return {**super().get_config(), "dx": self.dx, "dy": self.dy}

    return HorizontalFlip, Translate


def with_tta(model, flip=True, shift=0):
    """A model that averages ``model``'s scores over views of each image: the image,
    its mirror image (``flip``) and, for ``shift`` > 0, both moved by ``shift`` pixels
    up, down, left and right (up to 10 views)."""
    import keras
    HorizontalFlip, Translate = _tta_layers()
    inputs = keras.Input(model.input_shape[1:], name="image")
    offsets = [(0, 0)] + ([(shift, 0), (-shift, 0), (0, shift), (0, -shift)] if shift else [])
    views = []
    for dx, dy in offsets:
        x = Translate(dx, dy, name=f"move_{dx}_{dy}")(inputs) if (dx, dy) != (0, 0) else inputs
        views.append(x)
        if flip:
            views.append(HorizontalFlip(name=f"mirror_{dx}_{dy}")(x))
    if len(views) == 1:
        return model
    outputs = keras.layers.Average(name="tta")([model(v) for v in views])
    return keras.Model(inputs, outputs, name=f"{model.name}_tta")


def ensemble(models):
    """A model that averages the class scores of ``models`` (same input shape); a list of
    one model is returned as it is. The members may share names: each is wrapped in a
    model of its own name, ``member_<i>``."""
    import keras
    if not models:
        raise ValueError("an ensemble needs at least one model")
    if len(models) == 1:
        return models[0]
    inputs = keras.Input(models[0].input_shape[1:], name="image")
    scores = []
    for i, m in enumerate(models):
        member_in = keras.Input(m.input_shape[1:], name=f"image_{i}")
        scores.append(keras.Model(member_in, m(member_in), name=f"member_{i}")(inputs))
    outputs = keras.layers.Average(name="members")(scores)
    return keras.Model(inputs, outputs, name=f"ensemble_{len(models)}")


def _affine_transforms(ops, theta, scale, mirror, tx, ty, h, w):
    """(N, 8) projective transforms (the inverse map: output pixel -> input pixel) of
    rotations ``theta`` (radians), zooms ``scale`` (> 1 zooms out), mirrors ``mirror``
    (-1 flips left-right, 1 keeps) and shifts ``tx``, ``ty`` (pixels), all (N,), about the
    image centre; ``ops`` is ``tensorflow`` or ``keras.ops``."""
    cos, sin = ops.cos(theta) * scale, ops.sin(theta) * scale
    # output pixel (x, y) samples input A @ ((x, y) - centre) + centre + shift
    a0, a1, b0, b1 = cos * mirror, -sin, sin * mirror, cos
    cx, cy = (w - 1) / 2, (h - 1) / 2
    a2 = cx - a0 * cx - a1 * cy + tx
    b2 = cy - b0 * cx - b1 * cy + ty
    zero = ops.zeros_like(theta)
    return ops.stack([a0, a1, a2, b0, b1, b2, zero, zero], axis=1)


def random_affine(images, shift=0.1, rotation=0.05, zoom=0.1, flip=True):
    """Augment a batch (N, H, W, C) with one random affine warp per image: a left-right
    flip, a rotation of up to ``rotation`` of a turn, a zoom of up to ``zoom`` and a
    shift of up to ``shift`` of the size, composed into a single bilinear resampling
    (three times cheaper than one Keras layer per transform, and one interpolation
    instead of three blurs the faces less). Borders repeat the nearest pixel."""
    import tensorflow as tf
    n = tf.shape(images)[0]
    h = tf.cast(tf.shape(images)[1], tf.float32)
    w = tf.cast(tf.shape(images)[2], tf.float32)

    def uniform(limit):
        return tf.random.uniform([n], -limit, limit)

    theta = uniform(rotation) * 2 * np.pi
    scale = 1.0 + uniform(zoom)
    mirror = tf.where(tf.random.uniform([n]) < 0.5, -1.0, 1.0) if flip else tf.ones([n])
    transforms = _affine_transforms(tf, theta, scale, mirror, uniform(shift) * w,
                                    uniform(shift) * h, h, w)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=transforms, output_shape=tf.shape(images)[1:3],
        fill_value=0.0, interpolation="BILINEAR", fill_mode="NEAREST")


@functools.cache
def _augment_layer():
    """``RandomAffine``, defined once Keras is imported (registered, so that a model
    holding it loads in safe mode)."""
    import keras

    @keras.saving.register_keras_serializable(package="nnlib")
    class RandomAffine(keras.layers.Layer):
        """``random_affine`` as a Keras layer of any backend: while training, one random
        flip, rotation, zoom and shift per image, drawn from the layer's own seeded
        generator and applied as one bilinear warp; the identity otherwise."""

        def __init__(self, shift=0.1, rotation=0.05, zoom=0.1, flip=True, seed=None,
                     **kwargs):
            super().__init__(**kwargs)
            self.shift, self.rotation, self.zoom, self.flip = shift, rotation, zoom, flip
            self.seed = seed
            self.generator = keras.random.SeedGenerator(seed)

        def call(self, images, training=False):
            if not training:
                return images
            ops = keras.ops
            n, h, w = ops.shape(images)[0], images.shape[1], images.shape[2]

            def uniform(limit):
                return keras.random.uniform((n,), -limit, limit, seed=self.generator)

            theta = uniform(self.rotation) * 2 * np.pi
            scale = 1.0 + uniform(self.zoom)
            mirror = (ops.where(uniform(1.0) < 0, -1.0, 1.0) if self.flip
                      else ops.ones((n,)))
            transforms = _affine_transforms(ops, theta, scale, mirror,
                                            uniform(self.shift) * w,
                                            uniform(self.shift) * h, h, w)
            return ops.image.affine_transform(images, transforms, interpolation="bilinear",
                                              fill_mode="nearest")

        def get_config(self):
            return {**super().get_config(), "shift": self.shift, "rotation": self.rotation,
                    "zoom": self.zoom, "flip": self.flip, "seed": self.seed}

    return RandomAffine


def make_dataset(X, y, batch_size, training, seed=0, shift=0.1, rotation=0.05, zoom=0.1):
    """A tf.data pipeline of (image, label) batches.

    Training batches are shuffled each epoch, augmented by ``random_affine`` and of a
    fixed size (the last partial batch is dropped, so the graph is traced once).
    """
    import tensorflow as tf
    X = np.asarray(X, dtype=np.float32)[..., None] if np.ndim(X) == 3 else X
    ds = tf.data.Dataset.from_tensor_slices((X, y))
    if training:
        ds = ds.shuffle(len(X), seed=seed, reshuffle_each_iteration=True)
        ds = ds.batch(batch_size, drop_remainder=True)
        ds = ds.map(lambda a, b: (random_affine(a, shift, rotation, zoom), b),
                    num_parallel_calls=tf.data.AUTOTUNE)
    else:
        ds = ds.batch(batch_size)
    return ds.prefetch(tf.data.AUTOTUNE)


class TrainedRun(NamedTuple):
    """What ``train_cnn`` returns; ``history`` is None for a run read back without it,
    ``device`` (where it trained: backend and processor) for a run recorded without it;
    ``stopped``: why a run closed by ``stop_run`` ended before its schedule did."""
    history: dict | None
    epochs: int
    seconds: float
    images_per_s: float
    device: str | None = None
    stopped: str | None = None


def device_description():
    """Where Keras computes: its backend and the processor, e.g. "jax, NVIDIA H100"."""
    import keras
    backend = keras.backend.backend()
    if backend == "jax":
        import jax
        d = jax.devices()[0]
        name = d.device_kind if d.platform == "gpu" else "CPU"
    elif backend == "torch":
        import torch
        name = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
    else:
        import tensorflow as tf
        gpus = tf.config.list_physical_devices("GPU")
        name = (tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU")
                if gpus else "CPU")
    return f"{backend}, {name} ({os.cpu_count()} CPU cores)" if name == "CPU" \
        else f"{backend}, {name}"


def train_cnn(model, data, run_dir, epochs=60, batch_size=64, lr=1e-3, weight_decay=1e-4,
              patience=12, steps_per_execution=16, jit_compile=False, seed=0, verbose=2,
              init=None, augment_in_graph=None):
    """Train with AdamW and cosine decay; resumable.

    - run_dir: ``backup/`` (keras BackupAndRestore: an interrupted fit resumes at the
      start of the epoch it was in), ``best.keras`` (best validation accuracy),
      ``history.csv`` (metrics, seconds per epoch and of its validation pass) and
      ``run.json`` (the settings, whether the run finished, and then its seconds and
      images/s). A finished run with the same settings is not repeated: its history is
      read back (None if ``history.csv`` was not kept) and ``model`` gets its best
      weights. A run_dir holding an unfinished run with other settings raises.
    - data: dict with X_train, y_train, X_val, y_val (uint8 images (N, 48, 48)).
    - init: a ``.keras`` file whose weights start the run (a warm restart from a trained
      network); its content's hash is part of the settings.
    With the TensorFlow backend a tf.data pipeline augments the batches on the CPU
    (``random_affine``); with another backend (JAX or PyTorch, on a GPU machine without
    TensorFlow) a ``RandomAffine`` layer in front of ``model`` augments them inside the
    training step, with the same distribution (``augment_in_graph``: None picks by the
    backend). The backend is not part of the settings: a run trained on a GPU reads back
    on the CPU (``run.json`` names the device).
    Returns a ``TrainedRun`` (history dict, epochs run, seconds, training images/s):
    the seconds are the wall time summed over all the sessions of the run, validation
    passes included; the images/s count the training passes only (the whole epochs where
    a history has no ``val_seconds``). Either way ``model`` ends with the best weights.
    """
    import hashlib
    import json

    import keras
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    history_path, record_path = run_dir / "history.csv", run_dir / "run.json"
    backup_dir = run_dir / "backup"
    steps = len(data["X_train"]) // batch_size
    settings = dict(model=model.to_json(), epochs=epochs, batch_size=batch_size, lr=lr,
                    weight_decay=weight_decay, patience=patience, seed=seed,
                    n_train=len(data["X_train"]), n_val=len(data["X_val"]))
    if init is not None:  # only then, so that the records of other runs still match
        settings["init"] = hashlib.sha256(Path(init).read_bytes()).hexdigest()
    record = _read_record(record_path)

    same = record is not None and record["settings"] == settings
    if same and record["finished"]:
        model.set_weights(load_keras_model(run_dir / "best.keras").get_weights())
        if history_path.exists():
            return _read_history(history_path, settings)._replace(
                device=record.get("device"), stopped=record.get("stopped"))
        return TrainedRun(None, record["epochs"], record["seconds"], record["images_per_s"],
                          record.get("device"), record.get("stopped"))
    if same and record.get("fitted"):  # killed after fit, before the run was closed
        return _finish_run(model, run_dir, settings)
    resuming = backup_dir.exists()
    if resuming and not same:
        raise ValueError(f"{run_dir} holds an unfinished run with other settings; delete "
                         "it or use another run_dir")
    if resuming:  # drop the epochs logged after the checkpoint: they run again
        _trim_history(history_path, _backup_epoch(backup_dir))
    else:  # a fresh run: forget the files of an earlier one
        history_path.unlink(missing_ok=True)
        if init is not None:
            model.set_weights(load_keras_model(init).get_weights())
    write_text(record_path, json.dumps({"settings": settings, "finished": False}))

    if augment_in_graph is None:
        augment_in_graph = keras.backend.backend() != "tensorflow"
    if not augment_in_graph:
        trainer = model
        fit_data = dict(x=make_dataset(data["X_train"], data["y_train"], batch_size, True, seed),
                        validation_data=make_dataset(data["X_val"], data["y_val"], 256, False),
                        shuffle=False)  # the dataset shuffles itself
    else:  # no tf.data: augment inside the (compiled) training step
        trainer = keras.Sequential([keras.Input(model.input_shape[1:], name="image"),
                                    _augment_layer()(seed=seed, name="augment"), model])
        # steps_per_epoch: whole batches only, as in the tf.data pipeline
        fit_data = dict(x=_as_images(data["X_train"]), y=np.asarray(data["y_train"]),
                        batch_size=batch_size, steps_per_epoch=steps, shuffle=True,
                        validation_data=(_as_images(data["X_val"]), np.asarray(data["y_val"])),
                        validation_batch_size=256)
    schedule = keras.optimizers.schedules.CosineDecay(lr, decay_steps=epochs * steps,
                                                      alpha=0.01)
    trainer.compile(optimizer=keras.optimizers.AdamW(schedule, weight_decay=weight_decay),
                    loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                    steps_per_execution=steps_per_execution, jit_compile=jit_compile)
    best = _save_best(model, run_dir / "best.keras")
    if resuming and history_path.exists():  # keep the best of the epochs before the break
        history = _read_rows(history_path)
        best.best = max((float(r["val_accuracy"]) for r in history), default=best.best)

    class EpochSeconds(keras.callbacks.Callback):
        """Adds the wall time of the epoch and of its validation pass to the logs that
        the CSVLogger below writes."""

        def on_epoch_begin(self, epoch, logs=None):
            self.start, self.val_seconds = time.perf_counter(), 0.0

        def on_test_begin(self, logs=None):
            self.val_start = time.perf_counter()

        def on_test_end(self, logs=None):
            self.val_seconds += time.perf_counter() - self.val_start

        def on_epoch_end(self, epoch, logs=None):
            logs["seconds"] = time.perf_counter() - self.start
            logs["val_seconds"] = self.val_seconds

    # The order is what makes an interruption safe: an epoch's best weights and its
    # history row are written before the checkpoint that marks the epoch as done, so a
    # resume never skips them (a row logged after the checkpoint is dropped and re-run).
    callbacks = [
        EpochSeconds(),
        best,
        keras.callbacks.CSVLogger(str(history_path), append=True),
        _atomic_backup(backup_dir),
        keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=patience),
    ]
    trainer.fit(**fit_data, epochs=epochs, callbacks=callbacks, verbose=verbose)
    write_text(record_path, json.dumps({"settings": settings, "finished": False,
                                        "fitted": True}))
    return _finish_run(model, run_dir, settings)


def _finish_run(model, run_dir, settings):
    """Close a fitted run: ``model`` gets the best weights, ``best.keras`` loses its
    optimizer state, ``run.json`` records the run as finished; then the checkpoint goes."""
    import json
    import shutil
    best_model = load_keras_model(run_dir / "best.keras")
    model.set_weights(best_model.get_weights())  # fit leaves the last epoch's
    # the optimizer state in the checkpoint is of no use once the run has finished
    with temporary_path(run_dir / "best.keras") as tmp:
        best_model.save(tmp)
    run = _read_history(run_dir / "history.csv", settings)._replace(
        device=device_description())
    write_text(run_dir / "run.json", json.dumps({
        "settings": settings, "finished": True, "epochs": run.epochs, "seconds": run.seconds,
        "images_per_s": run.images_per_s, "device": run.device}))
    shutil.rmtree(run_dir / "backup", ignore_errors=True)
    return run


def _read_record(path):
    """``run.json`` as a dict, or None if there is none; a damaged one raises (never
    taken for a missing one, which would start the run afresh over its progress)."""
    import json
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text())
        if not isinstance(record, dict) or "settings" not in record:
            raise ValueError("no settings")
        return record
    except (ValueError, UnicodeError) as e:
        raise ValueError(f"{path} is damaged ({e}); restore it, or delete the folder "
                         f"{path.parent} to train this run afresh") from None


def _read_rows(path):
    """The complete rows of a ``history.csv``, one per epoch (the last one logged for an
    epoch that ran twice); a row cut short by an interruption is left out."""
    import csv
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    by_epoch = {}
    for r in rows:
        try:
            if None in r.values() or None in r:
                raise ValueError
            by_epoch[int(r["epoch"])] = r | {"val_accuracy": float(r["val_accuracy"])}
        except (KeyError, TypeError, ValueError):
            continue
    return [by_epoch[e] for e in sorted(by_epoch)]


def _trim_history(path, epochs_done):
    """Keep the rows of the first ``epochs_done`` epochs (all if None), rewritten whole."""
    import csv
    import io
    if not path.exists():
        return
    rows = [r for r in _read_rows(path) if epochs_done is None or int(r["epoch"]) < epochs_done]
    if not rows:
        path.unlink()
        return
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, out.getvalue())


def _backup_epoch(backup_dir):
    """Epochs completed according to a ``BackupAndRestore`` checkpoint (None: unknown)."""
    import json
    try:
        return int(json.loads((backup_dir / "training_metadata.json").read_text())["epoch"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _atomic_backup(backup_dir):
    """Keras's ``BackupAndRestore`` with each file replaced atomically and the weights'
    hash in the metadata: a checkpoint is the weights and epoch count of one epoch, or
    (if an interruption left them unmatched) the previous checkpoint, kept beside it."""
    import hashlib
    import json
    import shutil

    import keras

    class AtomicBackup(keras.callbacks.BackupAndRestore):
        def _save_model(self):
            folder = Path(self.backup_dir)
            folder.mkdir(parents=True, exist_ok=True)
            weights, meta = Path(self._weights_path), Path(self._training_metadata_path)
            if weights.exists() and meta.exists():  # the previous pair, to fall back on
                for src in (weights, meta):
                    with temporary_path(Path(f"{src}.bkp")) as tmp:
                        shutil.copyfile(src, tmp)
            tmp = folder / f"{TMP_PREFIX}latest.weights.h5"  # Keras wants this suffix
            self.model.save_weights(str(tmp), overwrite=True)
            digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
            os.replace(tmp, weights)
            write_text(meta, json.dumps({"epoch": self._current_epoch,
                                         "batch": self._last_batch_seen, "sha256": digest}))

        def _load_model(self):
            weights, meta = Path(self._weights_path), Path(self._training_metadata_path)
            if weights.exists() and meta.exists():
                stored = json.loads(meta.read_text()).get("sha256")
                if stored and stored != hashlib.sha256(weights.read_bytes()).hexdigest():
                    raise OSError(f"{weights} does not match {meta}")  # -> the .bkp pair
            super()._load_model()

    return AtomicBackup(str(backup_dir), double_checkpoint=True, delete_checkpoint=False)


def _read_history(path, settings):
    """The ``TrainedRun`` of a ``history.csv`` written with ``train_cnn``'s ``settings``
    (each training pass: the whole batches of ``n_train`` images)."""
    epoch_images = settings["n_train"] // settings["batch_size"] * settings["batch_size"]
    rows = _read_rows(path)
    if not rows:
        raise ValueError(f"{path} logs no epoch")
    history = {k: [float(r[k]) for r in rows] for k in rows[0] if k != "epoch"}
    seconds = sum(history["seconds"])
    train_seconds = seconds - sum(history.get("val_seconds", [0.0]))
    return TrainedRun(history, len(rows), seconds, len(rows) * epoch_images / train_seconds)


MEMBER_DEFAULTS = dict(lr=1e-3, patience=20, batch_size=64)


def train_member(spec, member_dir, data, jit_compile=False, verbose=2):
    """Train, resume or read back one ensemble member in ``member_dir / f"seed{seed}"``.

    spec: ``seed``, ``arch``, ``epochs``; optionally ``lr``, ``patience``, ``batch_size``
    (else ``MEMBER_DEFAULTS``) and ``init``, the seed of a member in ``member_dir`` whose
    best weights start this one (a warm restart). The Q6 notebook and
    ``scripts/train_q6_member.py`` both train through this, so that either reads back
    what the other trained. Returns (the model with its best weights, ``TrainedRun``).
    """
    spec = {**MEMBER_DEFAULTS, **spec}
    member_dir = Path(member_dir)
    configure_tensorflow(seed=spec["seed"])
    model = build_cnn(spec["arch"])
    init = spec.get("init")
    run = train_cnn(model, data, member_dir / f"seed{spec['seed']}", epochs=spec["epochs"],
                    batch_size=spec["batch_size"], lr=spec["lr"], patience=spec["patience"],
                    jit_compile=jit_compile, seed=spec["seed"], verbose=verbose,
                    init=None if init is None else member_dir / f"seed{init}" / "best.keras")
    return model, run


def stop_run(run_dir, reason, device=None):
    """Close an unfinished ``train_cnn`` run at its last logged epoch, for a run that will
    not be resumed (its time limit reached, or its checkpoint lost): ``run.json`` records
    it as finished, with ``reason`` under "stopped", so that ``train_cnn`` with the same
    settings reads its best epoch back. ``device``: where it trained, if known.
    Returns its ``TrainedRun``; raises if run_dir holds no unfinished run with a history
    and a best epoch."""
    import json
    import shutil
    run_dir = Path(run_dir)
    record_path, history_path = run_dir / "run.json", run_dir / "history.csv"
    if not (record_path.exists() and history_path.exists() and (run_dir / "best.keras").exists()):
        raise FileNotFoundError(f"{run_dir} needs run.json, history.csv and best.keras, "
                                "as train_cnn writes them")
    record = _read_record(record_path)
    if record["finished"]:
        raise ValueError(f"{run_dir} holds a finished run; nothing to stop")
    settings = record["settings"]
    run = _read_history(history_path, settings)._replace(device=device, stopped=reason)
    write_text(record_path, json.dumps({
        "settings": settings, "finished": True, "stopped": reason, "epochs": run.epochs,
        "seconds": run.seconds, "images_per_s": run.images_per_s, "device": device}))
    shutil.rmtree(run_dir / "backup", ignore_errors=True)
    return run


def _as_images(X):
    """float32 (N, H, W, 1) from uint8 (N, H, W) or (N, H, W, 1)."""
    X = np.asarray(X, dtype=np.float32)
    return X[..., None] if X.ndim == 3 else X


def _save_best(model, path):
    """A Keras callback that saves ``model`` to ``path`` at each epoch end that improves
    the best validation accuracy (``model`` may sit inside the model being fitted)."""
    import keras

    class SaveBest(keras.callbacks.Callback):
        best = -np.inf

        def on_epoch_end(self, epoch, logs=None):
            if logs["val_accuracy"] > self.best:
                self.best = logs["val_accuracy"]
                with temporary_path(path) as tmp:
                    model.save(tmp)

    return SaveBest()


def load_keras_model(path):
    """Load a ``.keras`` model in Keras's safe mode (no arbitrary code).

    Raises FileNotFoundError for a missing file and ``ModelError`` (one line naming the
    file) for a truncated or garbled archive, one that names code safe mode refuses to
    run, or one whose weights hold NaN or inf."""
    import keras
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no model file at {path}; train it first (notebook Q6) "
                                "or give the right --model path")
    _tta_layers()  # registers the TTA layers for deserialisation
    _augment_layer()
    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as e:  # Keras raises many types for a bad archive; name the file
        text = " ".join(str(e).split())
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


def save_keras_model(model, path):
    """Save ``model`` to ``path`` unless the file there holds the same network (its
    layers and weights): a ``.keras`` archive records when it was written, so
    saving an unchanged model again would rewrite a large file for nothing. The file
    is replaced atomically. Returns whether it wrote."""
    path = Path(path)
    if path.exists():
        try:
            old = load_keras_model(path)
        except (ModelError, OSError):  # unreadable or of another kind: overwrite it
            old = None
        if (old is not None and _architecture(old) == _architecture(model)
                and len(old.weights) == len(model.weights)
                and all(np.array_equal(a, b)
                        for a, b in zip(old.get_weights(), model.get_weights()))):
            return False
    with temporary_path(path) as tmp:
        model.save(tmp)
    return True


def _architecture(model):
    """The layers of ``model`` as JSON-ready data (no compile settings)."""
    import json
    return json.loads(model.to_json())["config"]


def predict_keras(model, images, batch_size=256):
    """Class ids (N,) for uint8 images (N, 48, 48) or (N, 48, 48, 1)."""
    return np.asarray(model.predict(_as_images(images), batch_size=batch_size,
                                    verbose=0)).argmax(axis=1)


def measure_throughput(arch, batch_size=64, steps=30, jit_compile=False, seed=0):
    """Training images/s of ``arch`` on random data (after a warm-up), for settings."""
    import keras
    keras.utils.set_random_seed(seed)
    model = build_cnn(arch)
    model.compile(optimizer=keras.optimizers.AdamW(1e-3),
                  loss="sparse_categorical_crossentropy", jit_compile=jit_compile,
                  steps_per_execution=steps // 3)
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 256, (batch_size * steps, 48, 48, 1)).astype(np.float32)
    y = rng.integers(0, 7, batch_size * steps)
    model.fit(X[:batch_size * (steps // 3)], y[:batch_size * (steps // 3)],
              batch_size=batch_size, epochs=1, verbose=0)
    start = time.time()
    model.fit(X, y, batch_size=batch_size, epochs=1, verbose=0)
    return len(X) / (time.time() - start)
