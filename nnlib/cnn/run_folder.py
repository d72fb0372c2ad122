"""A ``train_cnn`` run's folder: its record (``run.json``: the settings, whether the run
finished), its per-epoch history (``history.csv``) and its checkpoint (``backup/``, written
atomically, with the weights' hash); ``stop_run`` and ``drop_weights`` close or thin out a
run in it. Every file is replaced atomically, so a killed run resumes without losing an
epoch."""
from __future__ import annotations

import csv
import io
import json
import os
import shutil
from pathlib import Path
from typing import NamedTuple

from nnlib.atomic import TMP_PREFIX, temporary_path, write_text
from nnlib.cnn.backend import import_keras
from nnlib.digest import file_sha256


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


def read_record(path):
    """``run.json`` as a dict, or None if there is none; a damaged one raises (never
    taken for a missing one, which would start the run afresh over its progress)."""
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


def read_rows(path):
    """The complete rows of a ``history.csv``, one per epoch (the last one logged for an
    epoch that ran twice); a row cut short by an interruption is left out."""
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


def trim_history(path, epochs_done):
    """Keep the rows of the first ``epochs_done`` epochs (all if None), rewritten whole."""
    if not path.exists():
        return
    rows = [r for r in read_rows(path) if epochs_done is None or int(r["epoch"]) < epochs_done]
    if not rows:
        path.unlink()
        return
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, out.getvalue())


def backup_epoch(backup_dir):
    """Epochs completed according to a ``BackupAndRestore`` checkpoint (None: unknown)."""
    try:
        return int(json.loads((backup_dir / "training_metadata.json").read_text())["epoch"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def read_history(path, settings):
    """The ``TrainedRun`` of a ``history.csv`` written with ``train_cnn``'s ``settings``
    (each training pass: the whole batches of ``n_train`` images)."""
    epoch_images = settings["n_train"] // settings["batch_size"] * settings["batch_size"]
    rows = read_rows(path)
    if not rows:
        raise ValueError(f"{path} logs no epoch")
    history = {k: [float(r[k]) for r in rows] for k in rows[0] if k != "epoch"}
    seconds = sum(history["seconds"])
    train_seconds = seconds - sum(history.get("val_seconds", [0.0]))
    return TrainedRun(history, len(rows), seconds, len(rows) * epoch_images / train_seconds)


def atomic_backup(backup_dir):
    """Keras's ``BackupAndRestore`` with each file replaced atomically and the weights'
    hash in the metadata: a checkpoint is the weights and epoch count of one epoch, or
    (if an interruption left them unmatched) the previous checkpoint, kept beside it."""
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
            digest = file_sha256(tmp)
            os.replace(tmp, weights)
            write_text(meta, json.dumps({"epoch": self._current_epoch,
                                         "batch": self._last_batch_seen, "sha256": digest}))

        def _load_model(self):
            weights, meta = Path(self._weights_path), Path(self._training_metadata_path)
            if weights.exists() and meta.exists():
                stored = json.loads(meta.read_text()).get("sha256")
                if stored and stored != file_sha256(weights):
                    raise OSError(f"{weights} does not match {meta}")  # -> the .bkp pair
            super()._load_model()

    return AtomicBackup(str(backup_dir), double_checkpoint=True, delete_checkpoint=False)


def stop_run(run_dir, reason, device=None):
    """Close an unfinished ``train_cnn`` run at its last logged epoch, for a run that will
    not be resumed (its time limit reached, or its checkpoint lost): ``run.json`` records
    it as finished, with ``reason`` under "stopped", so that ``train_cnn`` with the same
    settings reads its best epoch back. ``device``: where it trained, if known.
    Returns its ``TrainedRun``; raises if run_dir holds no unfinished run with a history
    and a best epoch."""
    run_dir = Path(run_dir)
    record_path, history_path = run_dir / "run.json", run_dir / "history.csv"
    if not (record_path.exists() and history_path.exists() and (run_dir / "best.keras").exists()):
        raise FileNotFoundError(f"{run_dir} needs run.json, history.csv and best.keras, "
                                "as train_cnn writes them")
    record = read_record(record_path)
    if record["finished"]:
        raise ValueError(f"{run_dir} holds a finished run; nothing to stop")
    settings = record["settings"]
    return close_run(run_dir, settings, read_history(history_path, settings)._replace(
        device=device, stopped=reason))


def close_run(run_dir, settings, run):
    """Record ``run`` (a ``TrainedRun``, ``stopped`` set for a run cut short) as the
    finished run of ``settings`` in ``run.json``, then remove the checkpoint. Returns
    ``run``."""
    write_text(run_dir / "run.json", json.dumps({
        "settings": settings, "finished": True,
        **({"stopped": run.stopped} if run.stopped is not None else {}), "epochs": run.epochs,
        "seconds": run.seconds, "images_per_s": run.images_per_s, "device": run.device}))
    shutil.rmtree(run_dir / "backup", ignore_errors=True)
    return run


def drop_weights(run_dir):
    """Remove the best weights of a finished run that is kept only for its history (a
    comparison of settings): ``train_cnn`` with the same settings then reads the history
    back and leaves its ``model`` as built."""
    run_dir = Path(run_dir)
    record = read_record(run_dir / "run.json")
    if record is None or not record["finished"]:
        raise ValueError(f"{run_dir} holds no finished run; finish or delete it first")
    write_text(run_dir / "run.json", json.dumps({**record, "weights_dropped": True}))
    (run_dir / "best.keras").unlink(missing_ok=True)
