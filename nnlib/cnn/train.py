"""Resumable training (``train_cnn``): AdamW with cosine decay, the best epoch kept,
per-epoch history and timings, a run record; every file written so that a killed run
resumes without losing an epoch. Also ``stop_run``, ``drop_weights`` and
``measure_throughput``."""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

from nnlib.atomic import TMP_PREFIX, temporary_path, write_text
from nnlib.cnn.augment import as_images, make_dataset, random_affine_layer
from nnlib.cnn.backend import import_keras
from nnlib.cnn.distill import distillation_setup, teaching_model
from nnlib.cnn.io import load_keras_model, write_keras
from nnlib.cnn.models import build_cnn, device_description
from nnlib.cnn.stored import best_weights, file_digest

PATIENCE = 20  # epochs without a better validation accuracy before a run stops


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


def train_cnn(model, data, run_dir, epochs=60, batch_size=64, lr=1e-3, weight_decay=1e-4,
              patience=PATIENCE, steps_per_execution=16, jit_compile=False, seed=0, verbose=2,
              init=None, augment_in_graph=None, distillation=None, teacher=None):
    """Train with AdamW and cosine decay; resumable.

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
      ``distill.distillation_targets`` in ``data["y_train"]`` with ``distillation_loss``;
      the validation labels stay class ids. The targets' digest joins the settings.
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
    import json

    keras = import_keras()
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    history_path, record_path = run_dir / "history.csv", run_dir / "run.json"
    backup_dir = run_dir / "backup"
    steps = len(data["X_train"]) // batch_size
    settings = dict(model=model.to_json(), epochs=epochs, batch_size=batch_size, lr=lr,
                    weight_decay=weight_decay, patience=patience, seed=seed,
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
    record = _read_record(record_path)

    same = record is not None and record["settings"] == settings
    if same and record["finished"]:
        if not record.get("weights_dropped"):
            model.set_weights(best_weights(run_dir))
        if history_path.exists():
            return _read_history(history_path, settings)._replace(
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
    resuming = backup_dir.exists()
    if resuming and not same:
        raise ValueError(f"{run_dir} holds an unfinished run with other settings; delete "
                         "it or use another run_dir")
    if resuming:  # drop the epochs logged after the checkpoint: they run again
        _trim_history(history_path, _backup_epoch(backup_dir))
    else:  # a fresh run: forget the files of an earlier one
        history_path.unlink(missing_ok=True)
        if init is not None:
            model.set_weights(best_weights(Path(init).parent))
    write_text(record_path, json.dumps({"settings": settings, "finished": False}))

    if augment_in_graph is None:
        augment_in_graph = keras.backend.backend() != "tensorflow"
    if not augment_in_graph:
        trainer = model if teacher is None else teaching_model(model, teacher)
        fit_data = dict(x=make_dataset(data["X_train"], y_train, batch_size, True, seed),
                        validation_data=make_dataset(data["X_val"], y_val, 256, False),
                        shuffle=False)  # the dataset shuffles itself
    else:  # no tf.data: augment inside the (compiled) training step
        augment = random_affine_layer()(seed=seed, name="augment")
        trainer = (keras.Sequential([keras.Input(model.input_shape[1:], name="image"),
                                     augment, model]) if teacher is None
                   else teaching_model(model, teacher, augment))
        # steps_per_epoch: whole batches only, as in the tf.data pipeline
        fit_data = dict(x=as_images(data["X_train"]), y=np.asarray(y_train),
                        batch_size=batch_size, steps_per_epoch=steps, shuffle=True,
                        validation_data=(as_images(data["X_val"]), np.asarray(y_val)),
                        validation_batch_size=256)
    schedule = keras.optimizers.schedules.CosineDecay(lr, decay_steps=epochs * steps,
                                                      alpha=0.01)
    trainer.compile(optimizer=keras.optimizers.AdamW(schedule, weight_decay=weight_decay),
                    loss=loss, metrics=[metric], steps_per_execution=steps_per_execution,
                    jit_compile=jit_compile)
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
        keras.callbacks.EarlyStopping(monitor="val_accuracy", mode="max", patience=patience),
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
    write_keras(best_model, run_dir / "best.keras")
    run = _read_history(run_dir / "history.csv", settings)._replace(
        device=device_description())
    write_text(run_dir / "run.json", json.dumps({
        "settings": settings, "finished": True, "epochs": run.epochs, "seconds": run.seconds,
        "images_per_s": run.images_per_s, "device": run.device}))
    shutil.rmtree(run_dir / "backup", ignore_errors=True)
    return run


def drop_weights(run_dir):
    """Remove the best weights of a finished run that is kept only for its history (a
    comparison of settings): ``train_cnn`` with the same settings then reads the history
    back and leaves its ``model`` as built."""
    import json
    run_dir = Path(run_dir)
    record = _read_record(run_dir / "run.json")
    if record is None or not record["finished"]:
        raise ValueError(f"{run_dir} holds no finished run; finish or delete it first")
    write_text(run_dir / "run.json", json.dumps({**record, "weights_dropped": True}))
    (run_dir / "best.keras").unlink(missing_ok=True)


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

    keras = import_keras()

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
