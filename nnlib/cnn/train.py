"""Resumable training (``train_cnn``): AdamW (or SGD with momentum) with cosine decay,
the best epoch kept, per-epoch history and timings, a run record; every file written so
that a killed run resumes without losing an epoch (the folder's files: ``run_folder``).
Also ``measure_throughput``."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from nnlib.atomic import write_text
from nnlib.cnn.augment import as_images, make_dataset, random_affine_layer
from nnlib.cnn.backend import import_keras
from nnlib.cnn.distill import distillation_setup, same_settings, teaching_model
from nnlib.cnn.io import load_keras_model, write_keras
from nnlib.cnn.models import WEIGHT_DECAY, build_cnn, device_description
from nnlib.cnn.run_folder import (
    TrainedRun,
    atomic_backup,
    backup_epoch,
    close_run,
    read_history,
    read_record,
    read_rows,
    trim_history,
)
from nnlib.cnn.stored import best_weights, file_digest

PATIENCE = 20  # epochs without a better validation accuracy before a run stops
SGD_MOMENTUM = 0.9  # train_cnn's optimizer="sgd"


def train_cnn(model, data, run_dir, epochs=60, batch_size=64, lr=1e-3, weight_decay=WEIGHT_DECAY,
              patience=PATIENCE, steps_per_execution=16, jit_compile=False, seed=0, verbose=2,
              init=None, augment_in_graph=None, distillation=None, teacher=None,
              optimizer="adamw"):
    """Train with AdamW (``optimizer="sgd"``: SGD with momentum 0.9, the same decoupled
    weight decay) and cosine decay; resumable.

    - run_dir: ``backup/`` (keras BackupAndRestore: an interrupted fit resumes at the
      start of the epoch it was in), ``best.keras`` (best validation accuracy),
      ``history.csv`` (metrics, seconds per epoch and of its validation pass) and
      ``run.json`` (the settings, whether the run finished, and then its seconds and
      images/s). A finished run with the same settings is not repeated: its history is
      read back (None if ``history.csv`` was not kept) and ``model`` gets its best
      weights. A run_dir holding a run with other settings (finished, or unfinished with
      a checkpoint) raises, and is left as it is.
    - data: dict with X_train, y_train, X_val, y_val (uint8 images (N, 48, 48)).
    - init: a ``.keras`` file whose weights start the run (a warm restart from a trained
      network); its content's hash is part of the settings.
    - distillation: dict with ``temperature`` and ``alpha`` (and anything else that
      identifies the run, e.g. the digest of its starting weights): train on
      ``distill.distillation_targets`` in ``data["y_train"]`` with
      ``distill.keras_distillation_loss``;
      the validation labels stay class ids. The targets' fingerprint joins the settings
      (``distill.targets_fingerprint``: equal up to round-off from one machine to another).
    - teacher: with ``distillation``, a Keras model that labels each augmented batch
      beside the student instead (``distill.teaching_model``): ``data["y_train"]`` then
      holds class ids, and the digest of the teacher's weights joins the settings.
    With the TensorFlow backend a tf.data pipeline augments the batches on the CPU
    (``random_affine``); with another backend (JAX or PyTorch, on a GPU machine without
    TensorFlow) a ``RandomAffine`` layer in front of ``model`` augments them inside the
    training step, with the same distribution (``augment_in_graph``: None picks by the
    backend). The backend is not part of the settings: a run trained on a GPU reads back
    on the CPU (``run.json`` names the device).
    Returns a ``TrainedRun`` (history dict, epochs run, seconds, training images/s):
    the seconds are the wall time summed over all the sessions of the run, validation
    passes included; the images/s count the training passes only (the whole epochs where
    a history has no ``val_seconds``). Either way ``model`` ends with the best weights,
    unless ``drop_weights`` removed them (then it stays as built).
    """
    if optimizer not in ("adamw", "sgd"):  # before anything is written
        raise ValueError(f"optimizer must be 'adamw' or 'sgd', not {optimizer!r}")
    import_keras()  # its environment defaults, before anything else (as always)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    hyper = dict(epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                 patience=patience, seed=seed)
    if optimizer != "adamw":  # only then, so that the records of earlier runs still match
        hyper["optimizer"] = optimizer
    settings, loss, metric, y_train, y_val = _run_settings(model, data, hyper, init,
                                                           distillation, teacher)
    record = read_record(run_dir / "run.json")
    same = record is not None and same_settings(record["settings"], settings)
    done = _read_back(model, run_dir, settings, record, same)
    if done is not None:
        return done
    resuming = _start_session(model, run_dir, settings, same, init)
    trainer, fit_data = _fit_inputs(model, data, y_train, y_val, batch_size, seed,
                                    augment_in_graph, teacher)
    _compile(trainer, hyper, len(data["X_train"]) // batch_size, loss, metric,
             steps_per_execution, jit_compile)
    trainer.fit(**fit_data, epochs=epochs, callbacks=_callbacks(model, run_dir, resuming, patience),
                verbose=verbose)
    write_text(run_dir / "run.json", json.dumps({"settings": settings, "finished": False,
                                                 "fitted": True}))
    return _finish_run(model, run_dir, settings)


def _run_settings(model, data, hyper, init, distillation, teacher):
    """What identifies a ``train_cnn`` run (its network, ``hyper``: epochs, batch_size,
    lr, weight_decay, patience and seed, the data's sizes, the digest of ``init``, the
    distillation's entry) and what it trains on: (settings, loss, metric, y_train,
    y_val)."""
    settings = dict(model=model.to_json(), **hyper,
                    n_train=len(data["X_train"]), n_val=len(data["X_val"]))
    if init is not None:  # only then, so that the records of other runs still match
        settings["init"] = file_digest(Path(init))
    loss, metric = "sparse_categorical_crossentropy", "accuracy"
    y_train, y_val = data["y_train"], data["y_val"]
    if teacher is not None and distillation is None:
        raise ValueError("a teacher needs distillation settings (temperature, alpha)")
    if distillation is not None:
        entry, loss, metric, y_train, y_val = distillation_setup(
            model.output_shape[-1], distillation, y_train, y_val, teacher)
        settings["distillation"] = entry
    return settings, loss, metric, y_train, y_val


def _read_back(model, run_dir, settings, record, same):
    """The ``TrainedRun`` of a run of ``settings`` that ``run_dir`` holds finished (or
    fitted, then closed here), ``model`` given its best weights; None if it is still to
    train. Raises for a finished run with other settings, which is left as it is."""
    if same and record["finished"]:
        if not record.get("weights_dropped"):
            model.set_weights(best_weights(run_dir))
        if (run_dir / "history.csv").exists():
            return read_history(run_dir / "history.csv", settings)._replace(
                device=record.get("device"), stopped=record.get("stopped"))
        return TrainedRun(None, record["epochs"], record["seconds"], record["images_per_s"],
                          record.get("device"), record.get("stopped"))
    if same and record.get("fitted"):  # killed after fit, before the run was closed
        return _finish_run(model, run_dir, settings)
    if record is not None and record.get("finished") and not same:
        changed = sorted(k for k in settings | record["settings"]
                         if settings.get(k) != record["settings"].get(k))
        raise ValueError(f"{run_dir} holds a finished run with other settings "
                         f"({', '.join(changed)}); it is kept: delete the folder to train "
                         "anew, or use another run_dir")
    return None


def _start_session(model, run_dir, settings, same, init):
    """Resume the unfinished run in ``run_dir`` (its history cut back to its checkpoint)
    or start afresh (``model`` from ``init``'s best weights, if given); record it as
    unfinished. Returns whether it resumes."""
    history_path, backup_dir = run_dir / "history.csv", run_dir / "backup"
    resuming = backup_dir.exists()
    if resuming and not same:
        raise ValueError(f"{run_dir} holds an unfinished run with other settings; delete "
                         "it or use another run_dir")
    if resuming:  # drop the epochs logged after the checkpoint: they run again
        trim_history(history_path, backup_epoch(backup_dir))
    else:  # a fresh run: forget the files of an earlier one
        history_path.unlink(missing_ok=True)
        if init is not None:
            model.set_weights(best_weights(Path(init).parent))
    write_text(run_dir / "run.json", json.dumps({"settings": settings, "finished": False}))
    return resuming


def _fit_inputs(model, data, y_train, y_val, batch_size, seed, augment_in_graph, teacher):
    """(the model to fit, ``fit``'s data arguments): a tf.data pipeline that augments on
    the CPU, or with ``augment_in_graph`` a ``RandomAffine`` layer in front of ``model``
    and the arrays (the default with a backend other than TensorFlow); with a
    ``teacher``, the ``teaching_model`` of the two."""
    keras = import_keras()
    if augment_in_graph is None:  # None: by the backend
        augment_in_graph = keras.backend.backend() != "tensorflow"
    if not augment_in_graph:
        trainer = model if teacher is None else teaching_model(model, teacher)
        return trainer, dict(x=make_dataset(data["X_train"], y_train, batch_size, True, seed),
                             validation_data=make_dataset(data["X_val"], y_val, 256, False),
                             shuffle=False)  # the dataset shuffles itself
    # no tf.data: augment inside the (compiled) training step
    augment = random_affine_layer()(seed=seed, name="augment")
    trainer = (keras.Sequential([keras.Input(model.input_shape[1:], name="image"),
                                 augment, model]) if teacher is None
               else teaching_model(model, teacher, augment))
    # steps_per_epoch: whole batches only, as in the tf.data pipeline
    return trainer, dict(x=as_images(data["X_train"]), y=np.asarray(y_train),
                         batch_size=batch_size, steps_per_epoch=len(data["X_train"]) // batch_size,
                         shuffle=True,
                         validation_data=(as_images(data["X_val"]), np.asarray(y_val)),
                         validation_batch_size=256)


def _compile(trainer, hyper, steps, loss, metric, steps_per_execution, jit_compile):
    """Compile ``trainer`` for AdamW (or SGD with momentum 0.9: ``hyper["optimizer"]``)
    with ``hyper``'s weight decay and a cosine decay of its learning rate over its epochs
    of ``steps`` batches, to 1% of its start."""
    keras = import_keras()
    schedule = keras.optimizers.schedules.CosineDecay(
        hyper["lr"], decay_steps=hyper["epochs"] * steps, alpha=0.01)
    if hyper.get("optimizer") == "sgd":
        optimizer = keras.optimizers.SGD(schedule, momentum=SGD_MOMENTUM,
                                         weight_decay=hyper["weight_decay"])
    else:
        optimizer = keras.optimizers.AdamW(schedule, weight_decay=hyper["weight_decay"])
    trainer.compile(optimizer=optimizer,
                    loss=loss, metrics=[metric], steps_per_execution=steps_per_execution,
                    jit_compile=jit_compile)


def _callbacks(model, run_dir, resuming, patience):
    """``fit``'s callbacks, in the order that makes an interruption safe: an epoch's best
    weights and its history row are written before the checkpoint that marks the epoch
    as done, so a resume never skips them (a row logged after the checkpoint is dropped
    and re-run)."""
    keras = import_keras()
    history_path = run_dir / "history.csv"
    best = _save_best(model, run_dir / "best.keras")
    if resuming and history_path.exists():  # keep the best of the epochs before the break
        history = read_rows(history_path)
        best.best = max((float(r["val_accuracy"]) for r in history), default=best.best)
    return [
        _epoch_seconds(),
        best,
        keras.callbacks.CSVLogger(str(history_path), append=True),
        atomic_backup(run_dir / "backup"),
        keras.callbacks.EarlyStopping(monitor="val_accuracy", mode="max", patience=patience),
    ]


def _epoch_seconds():
    """A Keras callback that adds the wall time of the epoch and of its validation pass
    to the logs that the CSVLogger writes."""
    keras = import_keras()

    class EpochSeconds(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start, self.val_seconds = time.perf_counter(), 0.0

        def on_test_begin(self, logs=None):
            self.val_start = time.perf_counter()

        def on_test_end(self, logs=None):
            self.val_seconds += time.perf_counter() - self.val_start

        def on_epoch_end(self, epoch, logs=None):
            logs["seconds"] = time.perf_counter() - self.start
            logs["val_seconds"] = self.val_seconds

    return EpochSeconds()


def _finish_run(model, run_dir, settings):
    """Close a fitted run: ``model`` gets the best weights, ``best.keras`` loses its
    optimizer state, ``run.json`` records the run as finished; then the checkpoint goes."""
    best_model = load_keras_model(run_dir / "best.keras")
    model.set_weights(best_model.get_weights())  # fit leaves the last epoch's
    # the optimizer state in the checkpoint is of no use once the run has finished
    write_keras(best_model, run_dir / "best.keras")
    return close_run(run_dir, settings, read_history(run_dir / "history.csv", settings)._replace(
        device=device_description()))


def _save_best(model, path):
    """A Keras callback that saves ``model`` to ``path`` at each epoch end that improves
    the best validation accuracy (``model`` may sit inside the model being fitted)."""
    keras = import_keras()

    class SaveBest(keras.callbacks.Callback):
        best = -np.inf

        def on_epoch_end(self, epoch, logs=None):
            if logs["val_accuracy"] > self.best:
                self.best = logs["val_accuracy"]
                write_keras(model, path)

    return SaveBest()


def measure_throughput(arch, batch_size=64, steps=30, jit_compile=False, seed=0):
    """Training images/s of ``arch`` on random data (after a warm-up), for settings."""
    keras = import_keras()
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
