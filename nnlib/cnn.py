"""Convolutional networks for FER2013 in Keras 3 (TensorFlow backend).

Keras is imported inside the functions, so ``import nnlib`` stays light. Models take
uint8-valued images (N, 48, 48, 1); the scaling to [0, 1] is the model's first layer,
so a saved ``.keras`` file carries its preprocessing. ``with_flip_tta`` wraps a trained
network so that it averages its scores over each face and its mirror image.
"""
from __future__ import annotations

import functools
import os
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# filters per block, convolutions per block, dense units, dropout before the classifier
ARCHITECTURES = {
    "tiny": dict(filters=(8, 16), convs=1, dense=32, dropout=0.2),
    "compact": dict(filters=(32, 64, 128, 256), convs=1, dense=256, dropout=0.4),
    "vgg_small": dict(filters=(32, 64, 128, 256), convs=2, dense=256, dropout=0.5),
    "wide": dict(filters=(64, 128, 256, 256), convs=1, dense=512, dropout=0.5),
}


def configure_tensorflow(threads=None, seed=0):
    """Thread counts for the CPU (one pool of all cores for each op, ops run one at a
    time, which is fastest for one model on few cores) and seeds everywhere."""
    import keras
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
            x = layers.BatchNormalization(name=f"bn{b}_{k + 1}")(x)
            x = layers.ReLU(name=f"relu{b}_{k + 1}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{b}")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dense(spec["dense"], kernel_regularizer=reg, name="dense")(x)
    x = layers.BatchNormalization(name="bn_dense")(x)
    x = layers.ReLU(name="relu_dense")(x)
    x = layers.Dropout(spec["dropout"], name="dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="scores")(x)
    return keras.Model(inputs, outputs, name=f"fer_{arch}")


@functools.cache
def _flip_layer():
    import keras

    @keras.saving.register_keras_serializable(package="nnlib")
    class HorizontalFlip(keras.layers.Layer):
        """Mirror images left-right (axis 2 of N, H, W, C)."""

        def call(self, x):
            return keras.ops.flip(x, axis=2)

    return HorizontalFlip


def with_flip_tta(model):
    """A model that averages ``model``'s scores over each image and its mirror image."""
    import keras
    HorizontalFlip = _flip_layer()
    inputs = keras.Input(model.input_shape[1:], name="image")
    flipped = HorizontalFlip(name="mirror")(inputs)
    outputs = keras.layers.Average(name="tta")([model(inputs), model(flipped)])
    return keras.Model(inputs, outputs, name=f"{model.name}_tta")


def make_dataset(X, y, batch_size, training, seed=0, shift=0.1, rotation=0.05, zoom=0.1):
    """A tf.data pipeline of (image, label) batches.

    Training batches are shuffled each epoch, augmented (left-right flips, shifts of up
    to ``shift`` of the size, rotations of up to ``rotation`` of a turn, zoom) and of a
    fixed size (the last partial batch is dropped, so the graph is traced once).
    """
    import keras
    import tensorflow as tf
    X = np.asarray(X, dtype=np.float32)[..., None] if np.ndim(X) == 3 else X
    ds = tf.data.Dataset.from_tensor_slices((X, y))
    if training:
        augment = keras.Sequential([
            keras.layers.RandomFlip("horizontal", seed=seed),
            keras.layers.RandomTranslation(shift, shift, fill_mode="nearest", seed=seed),
            keras.layers.RandomRotation(rotation, fill_mode="nearest", seed=seed),
            keras.layers.RandomZoom(zoom, fill_mode="nearest", seed=seed),
        ], name="augment")
        ds = ds.shuffle(len(X), seed=seed, reshuffle_each_iteration=True)
        ds = ds.batch(batch_size, drop_remainder=True)
        ds = ds.map(lambda a, b: (augment(a, training=True), b),
                    num_parallel_calls=tf.data.AUTOTUNE)
    else:
        ds = ds.batch(batch_size)
    return ds.prefetch(tf.data.AUTOTUNE)


def train_cnn(model, data, run_dir, epochs=60, batch_size=64, lr=1e-3, weight_decay=1e-4,
              patience=12, steps_per_execution=16, jit_compile=False, seed=0, verbose=2):
    """Train with AdamW and cosine decay; resumable.

    - run_dir: ``backup/`` (keras BackupAndRestore: an interrupted fit resumes at the
      start of the epoch it was in), ``best.keras`` (best validation accuracy) and
      ``history.csv``.
    - data: dict with X_train, y_train, X_val, y_val (uint8 images (N, 48, 48)).
    Returns (history dict, seconds, training images/s).
    """
    import keras
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    history_path = run_dir / "history.csv"
    resuming = (run_dir / "backup").exists()
    if not resuming:  # a fresh run: forget the files of a finished earlier one
        history_path.unlink(missing_ok=True)
    train_ds = make_dataset(data["X_train"], data["y_train"], batch_size, True, seed)
    val_ds = make_dataset(data["X_val"], data["y_val"], 256, False)
    steps = len(data["X_train"]) // batch_size
    schedule = keras.optimizers.schedules.CosineDecay(lr, decay_steps=epochs * steps,
                                                      alpha=0.01)
    model.compile(optimizer=keras.optimizers.AdamW(schedule, weight_decay=weight_decay),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                  steps_per_execution=steps_per_execution, jit_compile=jit_compile)
    best = keras.callbacks.ModelCheckpoint(str(run_dir / "best.keras"), monitor="val_accuracy",
                                           save_best_only=True)
    if resuming and history_path.exists():  # keep the best of the epochs before the break
        import csv
        with open(history_path) as f:
            best.best = max((float(r["val_accuracy"]) for r in csv.DictReader(f)),
                            default=best.best)
    callbacks = [
        keras.callbacks.BackupAndRestore(str(run_dir / "backup")),
        best,
        keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=patience),
        keras.callbacks.CSVLogger(str(history_path), append=True),
    ]
    start = time.time()
    fit = model.fit(train_ds, validation_data=val_ds, epochs=epochs, callbacks=callbacks,
                    shuffle=False, verbose=verbose)  # the dataset shuffles itself
    seconds = time.time() - start
    n_epochs = len(fit.history.get("loss", []))
    rate = n_epochs * steps * batch_size / seconds if n_epochs else float("nan")
    return fit.history, seconds, rate


def load_keras_model(path):
    """Load a ``.keras`` model in Keras's safe mode (no arbitrary code)."""
    import keras
    _flip_layer()  # registers the TTA layer for deserialisation
    return keras.saving.load_model(path, compile=False, safe_mode=True)


def predict_keras(model, images, batch_size=256):
    """Class ids (N,) for uint8 images (N, 48, 48) or (N, 48, 48, 1)."""
    X = np.asarray(images, dtype=np.float32)
    if X.ndim == 3:
        X = X[..., None]
    return np.asarray(model.predict(X, batch_size=batch_size, verbose=0)).argmax(axis=1)


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
