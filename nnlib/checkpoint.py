"""A Solver's checkpoints: the file format, a fingerprint of the training data and the lock
on the checkpoint folder.

A checkpoint is one ``.npz`` file holding the last and best parameters, the update rule's
state, both generators, the schedules, the histories, the run's settings and a fingerprint
of its training data; it is replaced atomically, so a kill leaves the old or the new one.
It is read with ``allow_pickle=False``; one that cannot be resumed raises
``CheckpointError`` naming it, and is never deleted.
"""
from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np

from nnlib.atomic import TMP_PREFIX, atomic_open
from nnlib.errors import READ_ERRORS
from nnlib.locks import LockHeld, acquire, release

VERSION = 2
FILE_NAME, LOCK_NAME = "checkpoint.npz", "checkpoint.lock"
HISTORIES = ("loss_history", "train_loss_history", "reg_loss_history", "train_acc_history",
             "val_acc_history", "val_loss_history", "lr_history")
CHUNK_BYTES = 1 << 24  # hashed at a time: a non-contiguous array is never copied whole


class CheckpointError(ValueError):
    """A checkpoint or its folder cannot be used; the message names it. Nothing is deleted."""


class CheckpointInUseError(CheckpointError):
    """Another process trains into the checkpoint folder; the message names it."""


def checkpoint_path(folder):
    return Path(folder) / FILE_NAME


def fingerprint(X, y):
    """The training data's shapes and dtypes, and a SHA-256 of those and of their bytes
    (in C order, whatever the memory layout), as one line of text."""
    digest, parts = hashlib.sha256(), []
    for name, a in (("X_train", X), ("y_train", y)):
        a = np.asarray(a)
        parts.append(f"{name} {a.dtype} {a.shape}")
        digest.update(f"{parts[-1]} {a.dtype.descr}\n".encode())
        rows = max(1, CHUNK_BYTES // max(1, a[:1].nbytes))
        for i in range(0, len(a), rows):
            digest.update(np.ascontiguousarray(a[i:i + rows]).reshape(-1).view(np.uint8))
    return f"{', '.join(parts)}; sha256 {digest.hexdigest()[:16]}"


@contextlib.contextmanager
def locked(folder):
    """Hold ``folder``'s lock (``checkpoint.lock``, naming its holder) for the block.

    Creates the folder and checks that files can be written there first. Raises
    ``CheckpointInUseError`` if another process (or another Solver) holds the lock and
    ``CheckpointError`` if the folder cannot be written. The kernel releases the lock
    when its process ends, however it ends, so a killed run never blocks the next one."""
    folder = Path(folder)
    path = folder / LOCK_NAME
    check_writable(folder)
    try:
        fd = acquire(path)
    except LockHeld as e:
        raise CheckpointInUseError(
            f"checkpoint_dir {folder} is in use by {e.holder} (it holds {path}); wait until "
            "that run has finished, or give this one another checkpoint_dir") from None
    except OSError as e:
        raise _unwritable(f"lock file {path}", e) from None
    try:
        yield path
    finally:
        release(fd)


@contextlib.contextmanager
def guarded(checkpoint_dir, checkpoint_name=None):
    """A Solver's ``train``: ``checkpoint_dir`` locked (if given) and the folder of
    ``checkpoint_name``'s files writable (if given), checked before anything is trained."""
    if checkpoint_name:
        check_writable(Path(f"{checkpoint_name}_epoch_0.npz").parent)
    with locked(checkpoint_dir) if checkpoint_dir else contextlib.nullcontext():
        yield


def check_writable(folder):
    """Create ``folder`` if missing and check that files can be written there."""
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=folder, prefix=TMP_PREFIX)
        os.close(fd)
        os.unlink(name)
    except OSError as e:
        raise _unwritable(f"checkpoint folder {folder}", e) from None


def _unwritable(what, e):
    return CheckpointError(f"{what} cannot be written ({e.strerror or e}); give the Solver a "
                           "checkpoint_dir (or checkpoint_name) in a folder this process may "
                           "create and write files in")


def save(solver, path):
    """Write ``solver``'s whole training state to ``path`` (atomically); returns the path."""
    last = solver.model.params if solver._last_params is None else solver._last_params
    arrays = {f"param/{k}": v for k, v in last.items()}
    arrays.update({f"best/{k}": v for k, v in solver.best_params.items()})
    configs = {}
    for k, cfg in solver.optim_configs.items():
        configs[k] = {}
        for name, value in cfg.items():
            if isinstance(value, np.ndarray):
                arrays[f"optim/{k}/{name}"] = value
            else:
                configs[k][name] = value
    schedule = solver._lr_schedule
    state = {
        "version": VERSION,
        "epoch": solver.epoch, "best_val": solver.best_val, "best_epoch": solver.best_epoch,
        "bad_epochs": solver.bad_epochs, "stop_reason": solver.stop_reason,
        "stopped_under": solver._stopped_under,
        "optim_configs": configs, "rng": solver.rng.bit_generator.state,
        "eval_rng": solver.eval_rng.bit_generator.state,
        "lr_schedule": None if schedule is None else schedule.state,
        "histories": {h: getattr(solver, h) for h in HISTORIES},
        "train_seconds": solver.train_seconds, "run": solver.run_config(),
        "data": solver.data_fingerprint(),
    }
    with atomic_open(path) as f:
        np.savez(f, state=np.array(json.dumps(state, default=_plain)), **arrays)
    return Path(path)


def load(solver, path):
    """Restore ``solver`` from the checkpoint at ``path`` (a folder or the file itself).

    Raises ``CheckpointError`` naming the file if it is unreadable, incomplete, of another
    run or of other training data; then the solver and the file are left as they were."""
    path = Path(path)
    path = path if path.suffix == ".npz" else checkpoint_path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except READ_ERRORS as e:
        raise CheckpointError(f"checkpoint {path} is unreadable ({type(e).__name__}: {e}); "
                              "move it away to start afresh") from None
    if "state" not in arrays:
        old = " (an older two-file checkpoint)" if path.with_suffix(".json").exists() else ""
        raise CheckpointError(f"checkpoint {path} holds no training state{old}; move it "
                              "away to start afresh")
    try:
        state = json.loads(str(arrays.pop("state")))
        _restore(solver, path, state, arrays)
    except CheckpointError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise CheckpointError(f"checkpoint {path} is incomplete or damaged "
                              f"({type(e).__name__}: {e}); move it away to start "
                              "afresh") from None


def _restore(solver, path, state, arrays):
    if state.get("version") != VERSION:
        raise CheckpointError(f"checkpoint {path} has format version "
                              f"{state.get('version')}, expected {VERSION}")
    stored, current = state["run"], solver.run_config()
    if stored != current:
        diff = sorted(k for k in set(stored) | set(current) if stored.get(k) != current.get(k))
        raise CheckpointError(
            f"checkpoint {path} belongs to another run (different {diff}: "
            f"{ {k: stored.get(k) for k in diff} } there, "
            f"{ {k: current.get(k) for k in diff} } here); delete it or use another "
            "checkpoint_dir")
    data = state.get("data")
    if data is not None and data != solver.data_fingerprint():
        raise CheckpointError(
            f"checkpoint {path} was made with other training data ({data} there, "
            f"{solver.data_fingerprint()} here); use another checkpoint_dir, or "
            "resume=False to start afresh")
    model_params = solver.model.params
    params = {k[6:]: v for k, v in arrays.items() if k.startswith("param/")}
    best = {k[5:]: v for k, v in arrays.items() if k.startswith("best/")}
    for name, group in (("parameters", params), ("best parameters", best)):
        if group and (set(group) != set(model_params) or any(
                group[k].shape != model_params[k].shape for k in group)):
            raise CheckpointError(f"checkpoint {path}: its {name} do not fit this model's "
                                  "architecture; delete it or use another checkpoint_dir")
    if not params:
        raise CheckpointError(f"checkpoint {path} holds no parameters")
    configs = copy.deepcopy(state["optim_configs"])
    if set(configs) != set(model_params):
        raise CheckpointError(f"checkpoint {path}: its optimizer state does not fit "
                              "this model")
    for k, v in arrays.items():
        if k.startswith("optim/"):
            _, pname, name = k.split("/", 2)
            configs[pname][name] = v
    histories = {h: list(state["histories"][h]) for h in HISTORIES}
    rng, eval_rng = (np.random.default_rng() for _ in range(2))
    rng.bit_generator.state = state["rng"]
    eval_rng.bit_generator.state = state["eval_rng"]
    if data is None:
        warnings.warn(f"checkpoint {path} was written before checkpoints recorded their "
                      "training data: it is resumed without checking that the data are "
                      "the same", UserWarning, stacklevel=4)
    # all read and checked: now change the solver
    solver.rng.bit_generator.state = rng.bit_generator.state
    solver.eval_rng.bit_generator.state = eval_rng.bit_generator.state
    solver.optim_configs = configs
    for key in ("epoch", "best_val", "best_epoch", "bad_epochs", "stop_reason"):
        setattr(solver, key, state[key])
    solver._stopped_under = state.get("stopped_under")
    if solver._lr_schedule is not None:
        solver._lr_schedule.state = state["lr_schedule"] or {}
    for h, v in histories.items():
        setattr(solver, h, v)
    solver.train_seconds = float(state["train_seconds"])
    solver.best_params = best
    solver._last_params = params
    solver.model.params = {k: v.copy() for k, v in (best or params).items()}


def run_config(solver):
    """Plain data that identifies a run: resuming a checkpoint requires the same."""
    rule = solver.update_rule
    config = {
        "model": solver.model.config() if hasattr(solver.model, "config") else None,
        "update_rule": getattr(rule, "__name__", type(rule).__name__),
        "optim_config": {k: v for k, v in solver.optim_config.items()
                         if not isinstance(v, np.ndarray)},
        "lr_decay": solver.lr_decay, "lr_schedule": solver.lr_schedule,
        "momentum_schedule": solver.momentum_schedule, "batch_size": int(solver.batch_size),
        "monitor": solver.monitor, "seed": solver.seed,
    }
    return json.loads(json.dumps(config, default=str))  # as it reads back from JSON


def _plain(v):
    """JSON for NumPy scalars in an update rule's config."""
    if isinstance(v, np.generic):
        return v.item()
    raise TypeError(f"cannot store {type(v).__name__} in a checkpoint")
