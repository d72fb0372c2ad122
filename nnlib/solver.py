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

import math
import time
import warnings
from pathlib import Path

import numpy as np
from tqdm import tqdm

from nnlib import checkpoint
from nnlib._checks import check_momentum, check_solver_data, check_solver_options
from nnlib.checkpoint import CheckpointError, CheckpointInUseError  # noqa: F401 (public)
from nnlib.classifiers import hard_labels, softmax
from nnlib.optim import get_update_rule
from nnlib.schedules import Plateau, make_schedule
from nnlib.threads import thread_policy

MONITORS = {"val_acc": "max", "val_loss": "min"}
CHECKPOINT_VERSION = checkpoint.VERSION


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
      than ``min_delta`` (None: never stop early); min_delta (0.0). A run stopped early
      goes on when ``train`` is called again (or its checkpoint resumed) with a larger
      num_epochs or patience than it stopped under; its patience counter then restarts at
      zero, and its best epoch and parameters stay those to beat
    - augment: callable ``(X_batch, rng) -> X_batch`` applied to training batches
    - num_train_samples: training subsample for the per-epoch accuracy (1000; None: all)
    - num_val_samples: validation subsample (None: all)
    - eval_batch_size: batch size of the accuracy passes (1000)
    - seed: int for the generator behind shuffling, augmentation and (shared with the
      model) dropout masks; the accuracy subsamples draw from a second generator derived
      from it, so evaluation settings never change the training batches
    - checkpoint_dir: folder for ``checkpoint.npz``, the full state, after each epoch.
      ``train`` locks it (``checkpoint.lock`` names the holder) for as long as it runs, so a
      second Solver on the same folder fails at once instead of overwriting the first's
      checkpoint; a killed run's lock goes with its process
    - checkpoint_name: also write ``{checkpoint_name}_epoch_{N}.npz`` after each epoch
      (the coursework's option; same format)
    - resume: continue from ``checkpoint_dir`` if it holds a checkpoint (False); a
      checkpoint of another run (model, update rule, schedules, batch size or seed
      differ) or of other training data (by a fingerprint of X_train and y_train) raises
      instead of being continued. num_epochs and patience may change, so a finished run
      can be extended.
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
    generators, the schedules, the histories and the data's fingerprint: one file,
    replaced atomically (``nnlib.checkpoint``).

    Bad options and data (NaN or inf in X_train or X_val, splits whose samples differ in
    shape, labels out of range) fail in the constructor; a checkpoint folder that cannot
    be written or is in use fails when ``train`` starts, before the first epoch.

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
        check_solver_data(data, getattr(model, "num_classes", None))
        self.X_train, self.y_train = data["X_train"], data["y_train"]
        self.X_val, self.y_val = data["X_val"], data["y_val"]
        self.update_rule = get_update_rule(update_rule)
        self.optim_config = dict(optim_config or {})
        self.lr_decay, self.lr_schedule = lr_decay, lr_schedule
        self.momentum_schedule = momentum_schedule
        self.num_epochs, self.batch_size = num_epochs, batch_size
        self.monitor, self.patience, self.min_delta = monitor, patience, min_delta
        self.augment, self.seed, self.eval_batch_size = augment, seed, eval_batch_size
        self.num_train_samples, self.num_val_samples = num_train_samples, num_val_samples
        self.checkpoint_dir, self.checkpoint_name = checkpoint_dir, checkpoint_name
        self.resume, self.epoch_callback = resume, epoch_callback
        self.print_every, self.verbose = print_every, verbose
        check_solver_options(self, MONITORS)
        self._fingerprint = None  # of the training data, computed when first needed

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
                check_momentum(self._mom_schedule(e), "the momentum schedule's value")
        self._reset()
        if self.resume and self.checkpoint_dir and \
                checkpoint.checkpoint_path(self.checkpoint_dir).exists():
            self.load_checkpoint(self.checkpoint_dir)

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
        self._stopped_under = None  # (num_epochs, patience) of an early stop
        for h in checkpoint.HISTORIES:
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
        with checkpoint.guarded(self.checkpoint_dir, self.checkpoint_name), thread_policy():
            return self._train()

    def _train(self):
        if self._stopped_under is not None and self.epoch < self.num_epochs:
            num_epochs, patience = self._stopped_under
            if self.num_epochs > num_epochs or self.patience is None or \
                    self.patience > patience:  # asked for more: the early stop is lifted
                self.stop_reason, self._stopped_under, self.bad_epochs = None, None, 0
        if self._last_params is not None:  # while training, the model holds them
            self.model.params, self._last_params = self._last_params, None
        start_params = (None if self.best_params
                        else {k: v.copy() for k, v in self.model.params.items()})
        N = len(self.X_train)
        bs = int(self.batch_size)
        per_epoch = math.ceil(N / bs)
        bar = tqdm(total=per_epoch * max(self.num_epochs - self.epoch, 0),
                   disable=not self.verbose or self.stop_reason is not None  # done: no bar
                   or self.epoch >= self.num_epochs,
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
                self._stopped_under = (self.num_epochs, self.patience)
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
                checkpoint.save(self, Path(f"{self.checkpoint_name}_epoch_{self.epoch}.npz"))
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
        return checkpoint.save(self, checkpoint.checkpoint_path(folder))

    def load_checkpoint(self, folder):
        """Restore the state written by ``save_checkpoint`` (a folder or the file itself).

        Raises ``CheckpointError`` naming the file if it is unreadable, incomplete, of
        another run or of other training data; the file is left as it is."""
        checkpoint.load(self, folder)

    def data_fingerprint(self):
        """The training data's shapes, dtypes and digest, as checkpoints record them."""
        if self._fingerprint is None:
            self._fingerprint = checkpoint.fingerprint(self.X_train, self.y_train)
        return self._fingerprint

    def run_config(self):
        """Plain data that identifies a run: resuming a checkpoint requires the same."""
        return checkpoint.run_config(self)
