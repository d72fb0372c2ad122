"""Mini-batch training of a classification model.

The Solver works with any model that has a ``params`` dict and a ``loss(X, y=None)``
method (see ``nnlib.fcnet``): ``loss(X)`` returns scores (N, C), ``loss(X, y)`` returns
``(loss, grads)`` with the regularisation included in the loss. Two optional members
make it faster and its histories more precise:

- ``training_loss(X, y)``: like ``loss(X, y)`` but its grads may be buffers that the
  next call overwrites (no large allocation per step);
- ``last_reg_loss``: the regularisation term inside the last training loss, so that the
  Solver can record the data loss alone.

    solver = Solver(model, data, update_rule="sgd_momentum",
                    optim_config={"learning_rate": 1e-2, "momentum": 0.9},
                    num_epochs=20, batch_size=128, seed=0)
    solver.train()
"""
from __future__ import annotations

import copy
import json
import math
import time
import warnings
from pathlib import Path

import numpy as np
from tqdm import tqdm

from nnlib._checks import check_labels
from nnlib.atomic import atomic_open
from nnlib.classifiers import hard_labels, softmax
from nnlib.io import READ_ERRORS
from nnlib.optim import get_update_rule
from nnlib.schedules import Plateau, make_schedule
from nnlib.threads import thread_policy

MONITORS = {"val_acc": "max", "val_loss": "min"}
CHECKPOINT_VERSION = 2
_HISTORIES = ("loss_history", "train_loss_history", "reg_loss_history", "train_acc_history",
              "val_acc_history", "val_loss_history", "lr_history")


class CheckpointError(ValueError):
    """A checkpoint cannot be resumed; the message names the file. It is never deleted."""


class Solver:
    """Trains ``model`` on ``data`` with mini-batch gradient descent.

    Required:
    - model: object with ``params`` (dict of arrays) and ``loss(X, y=None)``
    - data: dict with X_train (N, ...), y_train (N,), X_val (Nv, ...), y_val (Nv,)

    Options (keyword only):
    - update_rule: name in ``nnlib.optim.UPDATE_RULES`` or a callable ("sgd")
    - optim_config: dict for the update rule, e.g. learning_rate, momentum. Only what is
      given here (and the schedules' values, which start from it) is written into the
      rule's config; everything else keeps the rule's own default (Adam: lr 1e-3)
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
    - num_train_samples: training subsample for the per-epoch accuracy (1000; None: all)
    - num_val_samples: validation subsample (None: all)
    - eval_batch_size: batch size of the accuracy passes (1000)
    - seed: int for the generator behind shuffling, augmentation and (shared with the
      model) dropout masks; the accuracy subsamples draw from a second generator derived
      from it, so evaluation settings never change the training batches
    - checkpoint_dir: folder for ``checkpoint.npz``, the full state, after each epoch
    - checkpoint_name: also write ``{checkpoint_name}_epoch_{N}.npz`` after each epoch
      (the coursework's option; same format)
    - resume: continue from ``checkpoint_dir`` if it holds a checkpoint (False); a
      checkpoint of another run (model, update rule, schedules, batch size or seed
      differ) raises instead of being continued. num_epochs and patience may change, so
      a finished run can be extended.
    - epoch_callback: ``f(solver)`` called after each epoch (e.g. Optuna pruning);
      an exception raised there propagates after the checkpoint is written
    - print_every: with verbose, print the loss every this many iterations (None: never)
    - verbose: tqdm progress bar and per-epoch lines (True)

    Histories: ``loss_history`` (the objective of each iteration, regularisation
    included, as optimised), ``train_loss_history`` (per epoch, the mean data loss of its
    batches), ``reg_loss_history`` (per epoch, the mean regularisation term),
    ``val_loss_history`` (per epoch, the data loss on the validation set), the
    accuracies and ``lr_history``. Training and validation losses are both data losses,
    so they can be plotted together.

    Between calls to ``train`` the model holds the best parameters (by ``monitor``);
    ``train`` continues from the last epoch's, exactly as resuming its checkpoint does. A
    checkpoint holds the last and the best parameters, the update rule's state, both
    generators, the schedules and the histories: one file, replaced atomically.

    ``train_seconds`` is the wall time spent in ``train`` (evaluation included), summed
    over resumed sessions through the checkpoint.
    """

    def __init__(self, model, data, *, update_rule="sgd", optim_config=None, lr_decay=1.0,
                 lr_schedule=None, momentum_schedule=None, num_epochs=10, batch_size=100,
                 monitor="val_acc", patience=None, min_delta=0.0, augment=None,
                 num_train_samples=1000, num_val_samples=None, eval_batch_size=1000,
                 seed=None, checkpoint_dir=None, checkpoint_name=None, resume=False,
                 epoch_callback=None, print_every=None, verbose=True):
        self.model = model
        self._check_data(data, getattr(model, "num_classes", None))
        self.X_train, self.y_train = data["X_train"], data["y_train"]
        self.X_val, self.y_val = data["X_val"], data["y_val"]
        self.update_rule = get_update_rule(update_rule)
        self.optim_config = dict(optim_config or {})
        self.lr_decay, self.lr_schedule = lr_decay, lr_schedule
        self.momentum_schedule = momentum_schedule
        self.num_epochs, self.batch_size = num_epochs, batch_size
        self.monitor, self.patience, self.min_delta = monitor, patience, min_delta
        self.augment = augment
        self.num_train_samples, self.num_val_samples = num_train_samples, num_val_samples
        self.eval_batch_size = eval_batch_size
        self.seed = seed
        self.checkpoint_dir, self.checkpoint_name = checkpoint_dir, checkpoint_name
        self.resume, self.epoch_callback = resume, epoch_callback
        self.print_every, self.verbose = print_every, verbose
        self._check_options()

        self.rng = np.random.default_rng(seed)
        self.eval_rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0])
        if hasattr(model, "rng"):
            model.rng = self.rng  # one generator: a re-run with the same seed is identical
        lr_spec = self.lr_schedule
        if lr_spec is None and self.lr_decay != 1.0:
            lr_spec = {"name": "exponential", "gamma": self.lr_decay}
        self._lr_schedule = self._mom_schedule = None
        if lr_spec is not None:  # a schedule starts from the given or the rule's own rate
            base = self._given_or_default("learning_rate")
            self._lr_schedule = make_schedule(lr_spec, base)
            if isinstance(self._lr_schedule, Plateau):  # watches the monitored metric
                self._lr_schedule.options.setdefault("mode", MONITORS[self.monitor])
        if self.momentum_schedule is not None:
            base = self._given_or_default("momentum")
            self._mom_schedule = make_schedule(self.momentum_schedule, base)
            for e in (0, 10 ** 6):
                _check_momentum(self._mom_schedule(e), "the momentum schedule's value")
        self._reset()
        if self.resume and self.checkpoint_dir and _ckpt_path(self.checkpoint_dir).exists():
            self.load_checkpoint(self.checkpoint_dir)

    # ------------------------------------------------------------------ checks
    def _check_options(self):
        def whole(name, low, allow_none=False):
            v = getattr(self, name)
            if v is None and allow_none:
                return
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
                raise ValueError(f"Solver: {name} must be an integer >= {low}"
                                 f"{' or None' if allow_none else ''}, got {v!r}")
        whole("num_epochs", 0)
        whole("batch_size", 1)
        whole("eval_batch_size", 1)
        whole("num_train_samples", 1, allow_none=True)
        whole("num_val_samples", 1, allow_none=True)
        whole("patience", 0, allow_none=True)
        whole("print_every", 1, allow_none=True)
        if self.monitor not in MONITORS:
            raise ValueError(f"Solver: monitor must be one of {sorted(MONITORS)}, "
                             f"got {self.monitor!r}")
        lr = self.optim_config.get("learning_rate")
        if lr is not None and not (_is_real(lr) and math.isfinite(lr) and lr > 0):
            raise ValueError(f"Solver: learning_rate must be a finite number > 0, got {lr!r}")
        if "momentum" in self.optim_config:
            _check_momentum(self.optim_config["momentum"], "momentum")
        if not (_is_real(self.lr_decay) and 0 < self.lr_decay <= 1):
            raise ValueError(f"Solver: lr_decay must lie in (0, 1], got {self.lr_decay!r}")
        if not (_is_real(self.min_delta) and self.min_delta >= 0):
            raise ValueError(f"Solver: min_delta must be >= 0, got {self.min_delta!r}")

    @staticmethod
    def _check_data(data, num_classes):
        missing = {"X_train", "y_train", "X_val", "y_val"} - set(data)
        if missing:
            raise ValueError(f"Solver: data is missing {sorted(missing)}; it needs "
                             "X_train, y_train, X_val and y_val")
        for split in ("train", "val"):
            X, y = data[f"X_{split}"], data[f"y_{split}"]
            if not isinstance(X, np.ndarray) or not np.issubdtype(X.dtype, np.number):
                raise ValueError(f"Solver: X_{split} must be a numeric NumPy array, got "
                                 f"{type(X).__name__} of dtype {getattr(X, 'dtype', None)}")
            if len(X) != len(y):
                raise ValueError(f"Solver: X_{split} has {len(X)} samples but y_{split} "
                                 f"has {len(y)}")
            if len(X) == 0:
                raise ValueError(f"Solver: X_{split} is empty")
            if num_classes is not None:
                check_labels(hard_labels(y), len(X), num_classes, f"y_{split}")

    def _given_or_default(self, name):
        """optim_config[name] if given, else the update rule's own default (which the rule
        fills into its config itself)."""
        if name in self.optim_config:
            return self.optim_config[name]
        try:
            _, cfg = self.update_rule(np.zeros(1), np.zeros(1), {})
        except (KeyError, TypeError):  # a rule that expects its values to be given
            cfg = {}
        if name not in cfg:
            raise ValueError(f"Solver: the update rule has no default {name}; give "
                             f"optim_config['{name}'] for its schedule")
        return cfg[name]

    # ------------------------------------------------------------------ state
    def _reset(self):
        self.epoch = 0
        self.best_val = None
        self.best_epoch = 0
        self.best_params = {}
        self.bad_epochs = 0
        self.stop_reason = None
        for h in _HISTORIES:
            setattr(self, h, [])
        self.train_seconds = 0.0
        self._last_params = None  # the last epoch's parameters, where training goes on
        self.optim_configs = {k: self._fresh_config() for k in self.model.params}

    def _fresh_config(self):
        cfg = {k: v for k, v in self.optim_config.items() if not isinstance(v, np.ndarray)}
        if self._lr_schedule is not None:
            cfg["learning_rate"] = self._lr_schedule(0)
        if self._mom_schedule is not None:
            cfg["momentum"] = self._mom_schedule(0)
        return cfg

    def __repr__(self):
        rule = getattr(self.update_rule, "__name__", str(self.update_rule))
        state = (f"best validation accuracy {self.best_val_acc:.4f} at epoch {self.best_epoch}"
                 if self.val_acc_history else "not trained yet")
        return f"Solver({rule}, epoch {self.epoch}/{self.num_epochs}, {state})"

    @property
    def best_val_acc(self):
        """The best validation accuracy so far (the coursework's name)."""
        return max(self.val_acc_history, default=0.0)

    def learning_rate_at(self, epoch):
        """The scheduled learning rate after ``epoch`` finished epochs (None: the rule's
        fixed rate). For a plateau schedule, its current value."""
        if self._lr_schedule is None:
            return self._given_or_default("learning_rate")
        return self._lr_schedule(epoch)

    def momentum_at(self, epoch):
        """The scheduled momentum after ``epoch`` finished epochs (without a momentum
        schedule: the given or the rule's own momentum)."""
        if self._mom_schedule is None:
            return self._given_or_default("momentum")
        return self._mom_schedule(epoch)

    # ----------------------------------------------------------------- training
    def step(self, X_batch, y_batch):
        """One update of every parameter on one batch; returns the loss (regularisation
        included). A non-finite loss leaves the parameters as they were."""
        loss_fn = getattr(self.model, "training_loss", None) or self.model.loss
        loss, grads = loss_fn(X_batch, y_batch)
        if not math.isfinite(loss):
            return loss
        for k, w in self.model.params.items():
            next_w, self.optim_configs[k] = self.update_rule(w, grads[k], self.optim_configs[k])
            if next_w is not w:
                self.model.params[k] = next_w
        return loss

    def check_accuracy(self, X, y, num_samples=None, batch_size=None):
        """Accuracy of the model on X, y (a random subsample of ``num_samples``, if given)."""
        return self._evaluate(X, y, num_samples, batch_size)[0]

    def _evaluate(self, X, y, num_samples=None, batch_size=None):
        """Accuracy and mean softmax data loss on (a subsample of) X, y."""
        if num_samples is not None and len(X) > num_samples:
            idx = self.eval_rng.choice(len(X), num_samples, replace=False)
            X, y = X[idx], y[idx]
        y = hard_labels(y)  # accuracy and the reported loss are against the true classes
        batch_size = batch_size or self.eval_batch_size
        correct, total_loss = 0, 0.0
        for i in range(0, len(X), batch_size):
            scores = self.model.loss(X[i:i + batch_size])
            yb = y[i:i + batch_size]
            correct += int(np.count_nonzero(scores.argmax(axis=1) == yb))
            total_loss += softmax(scores, yb)[0] * len(yb)
        return correct / len(X), total_loss / len(X)

    def train(self):
        """Run the remaining epochs; returns self. Leaves the best parameters in the model.

        A non-finite loss stops training and leaves the best parameters so far (or, before
        the first epoch ended, the parameters training started from), with a warning.
        The matrix products use the BLAS threads ``nnlib.threads.thread_policy`` picks
        (the cores left idle by other work, unless ``NNLIB_THREADS`` says otherwise)."""
        with thread_policy():
            return self._train()

    def _train(self):
        if self._last_params is not None:  # while training, the model holds them
            self.model.params, self._last_params = self._last_params, None
        start_params = (None if self.best_params
                        else {k: v.copy() for k, v in self.model.params.items()})
        N = len(self.X_train)
        bs = int(self.batch_size)
        per_epoch = math.ceil(N / bs)
        bar = tqdm(total=per_epoch * max(self.num_epochs - self.epoch, 0),
                   disable=not self.verbose or self.stop_reason is not None,  # done: no bar
                   unit="batch", mininterval=1.0, dynamic_ncols=True)
        self._clock = time.perf_counter()
        diverged = False
        try:
            while self.epoch < self.num_epochs and self.stop_reason is None:
                perm = self.rng.permutation(N)
                epoch_loss = epoch_reg = 0.0
                for i in range(per_epoch):
                    idx = perm[i * bs:(i + 1) * bs]
                    X_batch, y_batch = self.X_train[idx], self.y_train[idx]
                    if self.augment is not None:
                        X_batch = self.augment(X_batch, self.rng)
                    with np.errstate(over="ignore", invalid="ignore"):
                        loss = self.step(X_batch, y_batch)  # divergence is caught below
                    if not math.isfinite(loss):
                        diverged = True
                        self._diverged(loss, i, start_params is not None and not self.best_params)
                        break
                    reg = float(getattr(self.model, "last_reg_loss", 0.0))
                    self.loss_history.append(loss)
                    epoch_loss += loss - reg
                    epoch_reg += reg
                    bar.update()
                    if self.verbose and self.print_every and \
                            len(self.loss_history) % self.print_every == 0:
                        bar.write(f"(Iteration {len(self.loss_history)}) loss: {loss:.6f}")
                if diverged:
                    break
                self.train_loss_history.append(epoch_loss / per_epoch)
                self.reg_loss_history.append(epoch_reg / per_epoch)
                self._end_epoch(bar)
        finally:
            bar.close()
            self._tick()
            if not diverged:
                self._last_params = self.model.params
            if self.best_params:
                self.model.params = {k: v.copy() for k, v in self.best_params.items()}
            elif diverged:
                self.model.params = start_params
        return self

    def _tick(self):
        now = time.perf_counter()
        self.train_seconds += now - self._clock
        self._clock = now

    def _end_epoch(self, bar):
        self.epoch += 1
        train_acc, _ = self._evaluate(self.X_train, self.y_train, self.num_train_samples)
        val_acc, val_loss = self._evaluate(self.X_val, self.y_val, self.num_val_samples)
        self.train_acc_history.append(train_acc)
        self.val_acc_history.append(val_acc)
        self.val_loss_history.append(val_loss)
        self.lr_history.append(next(iter(self.optim_configs.values())).get("learning_rate"))

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

        lr = self._lr_schedule(self.epoch, metric) if self._lr_schedule is not None else None
        mom = self._mom_schedule(self.epoch) if self._mom_schedule is not None else None
        for cfg in self.optim_configs.values():
            if lr is not None:
                cfg["learning_rate"] = lr
            if mom is not None:
                cfg["momentum"] = mom

        if self.verbose:
            bar.write(f"(Epoch {self.epoch} / {self.num_epochs}) loss "
                      f"{self.train_loss_history[-1]:.4f}, train acc {train_acc:.4f}, "
                      f"val acc {val_acc:.4f}, val loss {val_loss:.4f}, lr "
                      f"{self.lr_history[-1]:.3g}")
            if self.stop_reason:
                bar.write(self.stop_reason)
        if self.checkpoint_dir or self.checkpoint_name:
            self._tick()
            if self.checkpoint_dir:
                self.save_checkpoint(self.checkpoint_dir)
            if self.checkpoint_name:
                self._write_checkpoint(Path(f"{self.checkpoint_name}_epoch_{self.epoch}.npz"))
        if self.epoch_callback is not None:
            self.epoch_callback(self)

    def _diverged(self, loss, i, before_first_epoch):
        kept = ("the initial parameters were restored (no epoch had finished)"
                if before_first_epoch else
                f"the best parameters (epoch {self.best_epoch}) were kept")
        self.stop_reason = (
            f"loss became {loss} at epoch {self.epoch + 1}, iteration {i + 1}: training "
            f"stopped and {kept}; lower the learning rate or the weight scale")
        warnings.warn(self.stop_reason, RuntimeWarning, stacklevel=3)

    # -------------------------------------------------------------- checkpoints
    def save_checkpoint(self, folder):
        """Write the full training state to ``folder/checkpoint.npz`` (atomically)."""
        return self._write_checkpoint(_ckpt_path(folder))

    def _write_checkpoint(self, path):
        last = self.model.params if self._last_params is None else self._last_params
        arrays = {f"param/{k}": v for k, v in last.items()}
        arrays.update({f"best/{k}": v for k, v in self.best_params.items()})
        configs = {}
        for k, cfg in self.optim_configs.items():
            configs[k] = {}
            for name, value in cfg.items():
                if isinstance(value, np.ndarray):
                    arrays[f"optim/{k}/{name}"] = value
                else:
                    configs[k][name] = value
        state = {
            "version": CHECKPOINT_VERSION,
            "epoch": self.epoch, "best_val": self.best_val, "best_epoch": self.best_epoch,
            "bad_epochs": self.bad_epochs, "stop_reason": self.stop_reason,
            "optim_configs": configs, "rng": self.rng.bit_generator.state,
            "eval_rng": self.eval_rng.bit_generator.state,
            "lr_schedule": None if self._lr_schedule is None else self._lr_schedule.state,
            "histories": {h: getattr(self, h) for h in _HISTORIES},
            "train_seconds": self.train_seconds, "run": self.run_config(),
        }
        # one file holds the whole state, so a kill leaves the old or the new one
        with atomic_open(path) as f:
            np.savez(f, state=np.array(json.dumps(state, default=_plain)), **arrays)
        return path

    def load_checkpoint(self, folder):
        """Restore the state written by ``save_checkpoint`` (a folder or the file itself).

        Raises ``CheckpointError`` naming the file if it is unreadable, incomplete or of
        another run; the file is left as it is."""
        path = Path(folder)
        path = path if path.suffix == ".npz" else _ckpt_path(path)
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
            self._restore(path, state, arrays)
        except CheckpointError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise CheckpointError(f"checkpoint {path} is incomplete or damaged "
                                  f"({type(e).__name__}: {e}); move it away to start "
                                  "afresh") from None

    def _restore(self, path, state, arrays):
        if state.get("version") != CHECKPOINT_VERSION:
            raise CheckpointError(f"checkpoint {path} has format version "
                                  f"{state.get('version')}, expected {CHECKPOINT_VERSION}")
        stored, current = state["run"], self.run_config()
        if stored != current:
            diff = sorted(k for k in set(stored) | set(current)
                          if stored.get(k) != current.get(k))
            raise CheckpointError(
                f"checkpoint {path} belongs to another run (different {diff}: "
                f"{ {k: stored.get(k) for k in diff} } there, "
                f"{ {k: current.get(k) for k in diff} } here); delete it or use another "
                "checkpoint_dir")
        params = {k[6:]: v for k, v in arrays.items() if k.startswith("param/")}
        best = {k[5:]: v for k, v in arrays.items() if k.startswith("best/")}
        for name, group in (("parameters", params), ("best parameters", best)):
            if group and (set(group) != set(self.model.params) or any(
                    group[k].shape != self.model.params[k].shape for k in group)):
                raise CheckpointError(f"checkpoint {path}: its {name} do not fit this model's "
                                      "architecture; delete it or use another checkpoint_dir")
        if not params:
            raise CheckpointError(f"checkpoint {path} holds no parameters")
        configs = copy.deepcopy(state["optim_configs"])
        if set(configs) != set(self.model.params):
            raise CheckpointError(f"checkpoint {path}: its optimizer state does not fit "
                                  "this model")
        for k, v in arrays.items():
            if k.startswith("optim/"):
                _, pname, name = k.split("/", 2)
                configs[pname][name] = v
        histories = {h: list(state["histories"][h]) for h in _HISTORIES}
        rng, eval_rng = (np.random.default_rng() for _ in range(2))
        rng.bit_generator.state = state["rng"]
        eval_rng.bit_generator.state = state["eval_rng"]
        # all read and checked: now change the solver
        self.rng.bit_generator.state = rng.bit_generator.state
        self.eval_rng.bit_generator.state = eval_rng.bit_generator.state
        self.optim_configs = configs
        for key in ("epoch", "best_val", "best_epoch", "bad_epochs", "stop_reason"):
            setattr(self, key, state[key])
        if self._lr_schedule is not None:
            self._lr_schedule.state = state["lr_schedule"] or {}
        for h, v in histories.items():
            setattr(self, h, v)
        self.train_seconds = float(state["train_seconds"])
        self.best_params = best
        self._last_params = params
        self.model.params = {k: v.copy() for k, v in (best or params).items()}

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


def _is_real(v):
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def _check_momentum(m, name):
    if not (_is_real(m) and 0 <= m < 1):
        raise ValueError(f"Solver: {name} must lie in [0, 1), got {m!r}")


def _plain(v):
    """JSON for NumPy scalars in an update rule's config."""
    if isinstance(v, np.generic):
        return v.item()
    raise TypeError(f"cannot store {type(v).__name__} in a checkpoint")


def _ckpt_path(folder):
    return Path(folder) / "checkpoint.npz"
