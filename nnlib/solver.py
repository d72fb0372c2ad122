"""Mini-batch training of a classification model.

The Solver works with any model that has a ``params`` dict and a
``loss(X, y=None)`` method (see ``nnlib.fcnet``).

    solver = Solver(model, data, update_rule="sgd_momentum",
                    optim_config={"learning_rate": 1e-2, "momentum": 0.9},
                    num_epochs=20, batch_size=128, seed=0)
    solver.train()
"""
from __future__ import annotations

import copy
import inspect
import json
import math
import os
import time
import warnings
from pathlib import Path

import numpy as np
from tqdm import tqdm

from nnlib._checks import check_labels
from nnlib.classifiers import softmax
from nnlib.optim import get_update_rule
from nnlib.schedules import Plateau, make_schedule

MONITORS = {"val_acc": "max", "val_loss": "min"}


class Solver:
    """Trains ``model`` on ``data`` with mini-batch gradient descent.

    Required:
    - model: object with ``params`` (dict of arrays) and ``loss(X, y=None)``
    - data: dict with X_train (N, ...), y_train (N,), X_val (Nv, ...), y_val (Nv,)

    Options (keyword only; unknown ones raise):
    - update_rule: name in ``nnlib.optim.UPDATE_RULES`` or a callable ("sgd_momentum")
    - optim_config: dict for the update rule, e.g. learning_rate, momentum
    - lr_decay: multiply the learning rate by this after each epoch (1.0)
    - lr_schedule: schedule spec dict, e.g. {"name": "step", "step_size": 10, "gamma": 0.5},
      {"name": "exponential", "gamma": 0.95} or {"name": "plateau", "factor": 0.5,
      "patience": 2}; replaces lr_decay (None)
    - momentum_schedule: e.g. {"name": "linear", "base": 0.5, "end": 0.9, "num_epochs": 5}
    - num_epochs (10), batch_size (100)
    - monitor: "val_acc" or "val_loss", the metric for best parameters, early
      stopping and plateau schedules ("val_acc")
    - patience: stop after this many epochs without improvement of ``monitor`` by more
      than ``min_delta`` (None: never stop early); min_delta (0.0)
    - augment: callable ``(X_batch, rng) -> X_batch`` applied to training batches
    - num_train_samples: training subsample for the per-epoch accuracy (1000)
    - num_val_samples: validation subsample (None: all)
    - eval_batch_size (1000)
    - seed: int for the one generator behind shuffling, subsamples, augmentation and
      (shared with the model) dropout masks
    - checkpoint_dir: folder for a plain-data checkpoint (npz + JSON) after each epoch
    - resume: continue from the checkpoint in checkpoint_dir if there is one (False); a
      checkpoint of another run (model, update rule, schedules, batch size or seed
      differ) raises instead of being continued. num_epochs and patience may change, so
      a finished run can be extended.
    - epoch_callback: ``f(solver)`` called after each epoch (e.g. Optuna pruning);
      an exception raised there propagates after the checkpoint is written
    - verbose: tqdm progress bar and per-epoch lines (True)

    ``train_seconds`` is the wall time spent in ``train`` (evaluation included), summed
    over resumed sessions through the checkpoint.
    """

    def __init__(self, model, data, **kwargs):
        self.model = model
        self._check_data(data)
        self.X_train, self.y_train = data["X_train"], data["y_train"]
        self.X_val, self.y_val = data["X_val"], data["y_val"]

        opts = dict(
            update_rule="sgd_momentum", optim_config=None, lr_decay=1.0, lr_schedule=None,
            momentum_schedule=None, num_epochs=10, batch_size=100, monitor="val_acc",
            patience=None, min_delta=0.0, augment=None, num_train_samples=1000,
            num_val_samples=None, eval_batch_size=1000, seed=None, checkpoint_dir=None,
            resume=False, epoch_callback=None, verbose=True)
        unknown = set(kwargs) - set(opts)
        if unknown:
            raise ValueError(f"Solver: unknown option(s) {sorted(unknown)}; "
                             f"valid options are {sorted(opts)}")
        opts.update(kwargs)
        for k, v in opts.items():
            setattr(self, k, v)
        self.update_rule = get_update_rule(self.update_rule)
        if self.monitor not in MONITORS:
            raise ValueError(f"Solver: monitor must be one of {sorted(MONITORS)}, "
                             f"got {self.monitor!r}")
        if int(self.batch_size) < 1 or int(self.num_epochs) < 0:
            raise ValueError("Solver: batch_size must be >= 1 and num_epochs >= 0")
        self.optim_config = dict(self.optim_config or {})

        self.rng = np.random.default_rng(self.seed)
        if hasattr(model, "rng"):
            model.rng = self.rng  # one generator: a re-run with the same seed is identical
        base_lr = self.optim_config.get("learning_rate", 1e-2)
        lr_spec = self.lr_schedule
        if lr_spec is None and self.lr_decay != 1.0:
            lr_spec = {"name": "exponential", "gamma": self.lr_decay}
        self._lr_schedule = make_schedule(lr_spec, base_lr)
        if isinstance(self._lr_schedule, Plateau):  # watches the monitored metric
            self._lr_schedule.options.setdefault("mode", MONITORS[self.monitor])
        self._mom_schedule = (make_schedule(self.momentum_schedule,
                                            self.optim_config.get("momentum", 0.9))
                              if self.momentum_schedule else None)
        self._grad_buffers = None
        if "grads" in inspect.signature(model.loss).parameters:
            # reused across steps: large per-step allocations page-fault and cost ~30%
            self._grad_buffers = {k: np.empty_like(v) for k, v in model.params.items()
                                  if v.ndim == 2}
        self._reset()
        if self.resume and self.checkpoint_dir and _ckpt_paths(self.checkpoint_dir)[1].exists():
            self.load_checkpoint(self.checkpoint_dir)

    # ------------------------------------------------------------------ state
    def _reset(self):
        self.epoch = 0
        self.best_val = None
        self.best_epoch = 0
        self.best_params = {}
        self.bad_epochs = 0
        self.stop_reason = None
        self.loss_history = []
        self.train_loss_history = []
        self.train_acc_history = []
        self.val_acc_history = []
        self.val_loss_history = []
        self.lr_history = []
        self.train_seconds = 0.0
        self.optim_configs = {k: self._fresh_config() for k in self.model.params}

    def _fresh_config(self):
        cfg = {k: v for k, v in self.optim_config.items() if not isinstance(v, np.ndarray)}
        cfg["learning_rate"] = self._lr_schedule(0)
        if self._mom_schedule is not None:
            cfg["momentum"] = self._mom_schedule(0)
        return cfg

    @staticmethod
    def _check_data(data):
        missing = {"X_train", "y_train", "X_val", "y_val"} - set(data)
        if missing:
            raise ValueError(f"Solver: data is missing {sorted(missing)}; it needs "
                             "X_train, y_train, X_val and y_val")
        for split in ("train", "val"):
            X, y = data[f"X_{split}"], data[f"y_{split}"]
            if len(X) != len(y):
                raise ValueError(f"Solver: X_{split} has {len(X)} samples but y_{split} "
                                 f"has {len(y)}")
            if len(X) == 0:
                raise ValueError(f"Solver: X_{split} is empty")

    # ----------------------------------------------------------------- training
    def _step(self, X_batch, y_batch):
        if self._grad_buffers is not None:
            loss, grads = self.model.loss(X_batch, y_batch, grads=self._grad_buffers)
        else:
            loss, grads = self.model.loss(X_batch, y_batch)
        if not math.isfinite(loss):
            return loss
        for k, w in self.model.params.items():
            next_w, self.optim_configs[k] = self.update_rule(w, grads[k], self.optim_configs[k])
            if next_w is not w:
                self.model.params[k] = next_w
        return loss

    def check_accuracy(self, X, y, num_samples=None, batch_size=None):
        """Accuracy and mean softmax loss of the model on (a subsample of) X, y."""
        if num_samples is not None and len(X) > num_samples:
            idx = self.rng.choice(len(X), num_samples, replace=False)
            X, y = X[idx], y[idx]
        batch_size = batch_size or self.eval_batch_size
        correct, total_loss = 0, 0.0
        for i in range(0, len(X), batch_size):
            scores = self.model.loss(X[i:i + batch_size])
            yb = y[i:i + batch_size]
            correct += int(np.count_nonzero(scores.argmax(axis=1) == yb))
            total_loss += softmax(scores, yb)[0] * len(yb)
        return correct / len(X), total_loss / len(X)

    def train(self):
        """Run the remaining epochs; returns self. Leaves the best parameters in the model."""
        N = len(self.X_train)
        num_classes = getattr(self.model, "num_classes", None)
        if num_classes is not None:
            check_labels(self.y_train, N, num_classes, "y_train")
            check_labels(self.y_val, len(self.X_val), num_classes, "y_val")
        bs = int(self.batch_size)
        per_epoch = math.ceil(N / bs)
        bar = tqdm(total=per_epoch * (self.num_epochs - self.epoch), disable=not self.verbose,
                   unit="batch", mininterval=1.0, dynamic_ncols=True)
        self._clock = time.perf_counter()
        try:
            while self.epoch < self.num_epochs and self.stop_reason is None:
                perm = self.rng.permutation(N)
                epoch_loss = 0.0
                for i in range(per_epoch):
                    idx = perm[i * bs:(i + 1) * bs]
                    X_batch, y_batch = self.X_train[idx], self.y_train[idx]
                    if self.augment is not None:
                        X_batch = self.augment(X_batch, self.rng)
                    with np.errstate(over="ignore", invalid="ignore"):
                        loss = self._step(X_batch, y_batch)  # divergence is caught below
                    if not math.isfinite(loss):
                        self._diverged(loss, i)
                        break
                    self.loss_history.append(loss)
                    epoch_loss += loss
                    bar.update()
                if self.stop_reason is not None:
                    break
                self.train_loss_history.append(epoch_loss / per_epoch)
                self._end_epoch(bar)
        finally:
            bar.close()
            self._tick()
            if self.best_params:
                self.model.params = {k: v.copy() for k, v in self.best_params.items()}
        return self

    def _tick(self):
        now = time.perf_counter()
        self.train_seconds += now - self._clock
        self._clock = now

    def _end_epoch(self, bar):
        self.epoch += 1
        train_acc, _ = self.check_accuracy(self.X_train, self.y_train, self.num_train_samples)
        val_acc, val_loss = self.check_accuracy(self.X_val, self.y_val, self.num_val_samples)
        self.train_acc_history.append(train_acc)
        self.val_acc_history.append(val_acc)
        self.val_loss_history.append(val_loss)
        self.lr_history.append(next(iter(self.optim_configs.values()))["learning_rate"])

        metric = val_acc if self.monitor == "val_acc" else val_loss
        sign = 1 if MONITORS[self.monitor] == "max" else -1
        if self.best_val is None or sign * (metric - self.best_val) > self.min_delta:
            self.best_val, self.best_epoch, self.bad_epochs = metric, self.epoch, 0
            self.best_params = {k: v.copy() for k, v in self.model.params.items()}
        else:
            self.bad_epochs += 1
            if self.patience is not None and self.bad_epochs >= self.patience:
                self.stop_reason = (f"early stopping: {self.monitor} has not improved for "
                                    f"{self.patience} epochs (best {self.best_val:.4f} "
                                    f"at epoch {self.best_epoch})")

        lr = self._lr_schedule(self.epoch, metric)
        mom = self._mom_schedule(self.epoch) if self._mom_schedule is not None else None
        for cfg in self.optim_configs.values():
            cfg["learning_rate"] = lr
            if mom is not None:
                cfg["momentum"] = mom

        if self.verbose:
            bar.write(f"epoch {self.epoch}/{self.num_epochs}: loss "
                      f"{self.train_loss_history[-1]:.4f}, train acc {train_acc:.4f}, "
                      f"val acc {val_acc:.4f}, val loss {val_loss:.4f}, lr {lr:.3g}")
            if self.stop_reason:
                bar.write(self.stop_reason)
        if self.checkpoint_dir:
            self._tick()
            self.save_checkpoint(self.checkpoint_dir)
        if self.epoch_callback is not None:
            self.epoch_callback(self)

    def _diverged(self, loss, i):
        self.stop_reason = (
            f"loss became {loss} at epoch {self.epoch + 1}, iteration {i + 1}: training "
            f"stopped and the best parameters (epoch {self.best_epoch}) were kept; lower "
            "the learning rate or the weight scale")
        warnings.warn(self.stop_reason, RuntimeWarning, stacklevel=3)

    # -------------------------------------------------------------- checkpoints
    def save_checkpoint(self, folder):
        """Write the full training state as ``checkpoint.npz`` + ``checkpoint.json``."""
        npz_path, json_path = _ckpt_paths(folder)
        npz_path.parent.mkdir(parents=True, exist_ok=True)
        arrays, configs = {}, {}
        for k, v in self.model.params.items():
            arrays[f"param/{k}"] = v
        for k, v in self.best_params.items():
            arrays[f"best/{k}"] = v
        for k, cfg in self.optim_configs.items():
            configs[k] = {}
            for name, value in cfg.items():
                if isinstance(value, np.ndarray):
                    arrays[f"optim/{k}/{name}"] = value
                else:
                    configs[k][name] = value
        state = {
            "epoch": self.epoch, "best_val": self.best_val, "best_epoch": self.best_epoch,
            "bad_epochs": self.bad_epochs, "stop_reason": self.stop_reason,
            "optim_configs": configs, "rng": self.rng.bit_generator.state,
            "lr_schedule": self._lr_schedule.state,
            "histories": {h: getattr(self, h) for h in _HISTORIES},
            "train_seconds": self.train_seconds, "run": self.run_config(),
        }
        # write to temporary names, then rename: an interruption never leaves half a file
        tmp_npz = npz_path.with_name("tmp_" + npz_path.name)
        with open(tmp_npz, "wb") as f:
            np.savez(f, **arrays)
        tmp_json = json_path.with_name("tmp_" + json_path.name)
        tmp_json.write_text(json.dumps(state))
        os.replace(tmp_npz, npz_path)
        os.replace(tmp_json, json_path)

    def load_checkpoint(self, folder):
        """Restore the state written by ``save_checkpoint``."""
        npz_path, json_path = _ckpt_paths(folder)
        state = json.loads(json_path.read_text())
        stored, current = state.get("run"), self.run_config()
        if stored is not None and stored != current:
            diff = sorted(k for k in set(stored) | set(current)
                          if stored.get(k) != current.get(k))
            raise ValueError(
                f"checkpoint {json_path} belongs to another run (different {diff}: "
                f"{ {k: stored.get(k) for k in diff} } there, "
                f"{ {k: current.get(k) for k in diff} } here); delete it or use another "
                "checkpoint_dir")
        with np.load(npz_path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        params = {k[6:]: v for k, v in arrays.items() if k.startswith("param/")}
        if set(params) != set(self.model.params) or any(
                params[k].shape != self.model.params[k].shape for k in params):
            raise ValueError(f"checkpoint {npz_path} was written for another architecture; "
                             "delete it or use another checkpoint_dir")
        self.model.params = params
        self.best_params = {k[5:]: v for k, v in arrays.items() if k.startswith("best/")}
        self.optim_configs = copy.deepcopy(state["optim_configs"])
        for k, v in arrays.items():
            if k.startswith("optim/"):
                _, pname, name = k.split("/", 2)
                self.optim_configs[pname][name] = v
        for key in ("epoch", "best_val", "best_epoch", "bad_epochs", "stop_reason"):
            setattr(self, key, state[key])
        self.rng.bit_generator.state = state["rng"]
        self._lr_schedule.state = state["lr_schedule"]
        for h in _HISTORIES:
            setattr(self, h, state["histories"][h])
        self.train_seconds = float(state.get("train_seconds", 0.0))

    def run_config(self):
        """Plain data that identifies a run: resuming a checkpoint requires the same."""
        rule = self.update_rule
        config = {
            "model": self.model.config() if hasattr(self.model, "config") else None,
            "update_rule": getattr(rule, "__name__", type(rule).__name__),
            "optim_config": {k: v for k, v in self.optim_config.items()
                             if not isinstance(v, np.ndarray)},
            "lr_decay": self.lr_decay, "lr_schedule": self.lr_schedule,
            "momentum_schedule": self.momentum_schedule, "batch_size": int(self.batch_size),
            "monitor": self.monitor, "seed": self.seed,
        }
        return json.loads(json.dumps(config, default=str))  # as it reads back from JSON


_HISTORIES = ("loss_history", "train_loss_history", "train_acc_history", "val_acc_history",
              "val_loss_history", "lr_history")


def _ckpt_paths(folder):
    folder = Path(folder)
    return folder / "checkpoint.npz", folder / "checkpoint.json"
