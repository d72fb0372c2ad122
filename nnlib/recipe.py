"""Q5's training recipe for the fully connected network on FER2013: the data
(``fer_search_data``), the network and its Solver from a config dict (``build_model``,
``build_solver``; defaults ``DEFAULT_CONFIG``), one training run (``train_config``, reporting
to an Optuna trial for pruning), settings repeated over seeds (``seed_runs``,
``summarise_runs``, ``rate_grid``) and the learning-rate range test of Smith (2017)."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from nnlib.data import FER2013_CLASSES, fer_split, shrink
from nnlib.fcnet import FullyConnectedNet
from nnlib.preprocess import Preprocessor
from nnlib.solver import Solver

DEFAULT_CONFIG = dict(hidden_dims=[512, 256], dropout=0.0, reg=0.0, learning_rate=1e-2,
                      momentum=0.9, batch_size=128, num_epochs=20, weight_scale="he",
                      momentum_start=0.5, momentum_ramp_epochs=5, lr_gamma=0.5,
                      lr_step=8, patience=5)
SMOKE_SIZES = {"train": 2000, "val": 500}  # the smoke profile's images
HISTORIES = ("train_loss_history", "val_loss_history", "train_acc_history", "val_acc_history")


def fer_search_data(profile, seed=0):
    """Q5's data: FER2013, a stratified 10% validation split, standardised (smoke: 2,000 and
    500 images). Returns (fer, preprocessor, data dict, input_dim, num_classes)."""
    fer = fer_split(seed)
    if profile != "full":
        shrink(fer, SMOKE_SIZES, seed)
    # the Preprocessor's own defaults, spelled out (mutating them changes nothing)
    pre = Preprocessor(center="image", scale="std").fit(fer["X_train"])  # pragma: no mutate
    data = {"X_train": pre.transform(fer["X_train"]), "y_train": fer["y_train"],
            "X_val": pre.transform(fer["X_val"]), "y_val": fer["y_val"]}
    return fer, pre, data, data["X_train"].shape[1], len(FER2013_CLASSES)


def build_model(config, input_dim, num_classes, seed=0):
    """A FullyConnectedNet from a config dict (see DEFAULT_CONFIG) and the full config."""
    unknown = set(config) - set(DEFAULT_CONFIG)
    if unknown:
        raise ValueError(f"unknown config keys {sorted(unknown)}; valid: {sorted(DEFAULT_CONFIG)}")
    c = {**DEFAULT_CONFIG, **config}
    model = FullyConnectedNet(c["hidden_dims"], input_dim=input_dim, num_classes=num_classes,
                              dropout=c["dropout"], reg=c["reg"],
                              weight_scale=c["weight_scale"], seed=seed)
    return model, c


def build_solver(config, data, input_dim, num_classes, seed=0, augment=None,
                 epoch_callback=None, checkpoint_dir=None, verbose=False):
    """A FullyConnectedNet and its Solver from a config dict (see DEFAULT_CONFIG): SGD
    with momentum ramping linearly from ``momentum_start`` to ``momentum`` over
    ``momentum_ramp_epochs``, the learning rate times ``lr_gamma`` every ``lr_step``
    epochs, stopping after ``patience`` epochs without a better validation accuracy."""
    model, c = build_model(config, input_dim, num_classes, seed)
    solver = Solver(
        model, data, update_rule="sgd_momentum",
        optim_config={"learning_rate": c["learning_rate"], "momentum": c["momentum_start"]},
        momentum_schedule={"name": "linear", "base": c["momentum_start"],
                           "end": c["momentum"], "num_epochs": c["momentum_ramp_epochs"]},
        lr_schedule={"name": "step", "step_size": c["lr_step"], "gamma": c["lr_gamma"]},
        num_epochs=c["num_epochs"], batch_size=c["batch_size"], patience=c["patience"],
        augment=augment, seed=seed, epoch_callback=epoch_callback,
        checkpoint_dir=checkpoint_dir, resume=checkpoint_dir is not None, verbose=verbose)
    return model, solver


def train_config(config, data, input_dim, num_classes, trial=None, seed=0, augment=None):
    """Train one configuration (with a ``trial``: reporting, pruned); returns the Solver."""
    def report(solver):
        import optuna
        for h in HISTORIES:  # kept with the trial, so curves need no re-training
            trial.set_user_attr(h, [float(v) for v in getattr(solver, h)])
        trial.report(solver.val_acc_history[-1], solver.epoch)
        if trial.should_prune():
            raise optuna.TrialPruned()

    _, solver = build_solver(config, data, input_dim, num_classes, seed=seed, augment=augment,
                             epoch_callback=None if trial is None else report)
    solver.train()
    if trial is not None and str(solver.stop_reason).startswith("loss became"):
        trial.set_user_attr("diverged", True)
    return solver


def seed_runs(configs, seeds, data, input_dim, num_classes, checkpoint_root, histories=None):
    """Train each config of ``configs`` (a dict: name -> config dict) with each of ``seeds``,
    checkpointed in ``checkpoint_root / f"{name}_seed{seed}"`` so that a re-run reads them
    back. Returns a DataFrame, one row per run: setting, seed, and at the run's best
    validation epoch: best epoch (from 1), train accuracy, val accuracy. ``histories``: a
    dict to fill with each run's per-epoch HISTORIES, keyed (name, seed)."""
    rows = []
    for name, config in configs.items():
        for s in seeds:
            _, solver = build_solver(config, data, input_dim, num_classes, seed=s,
                                     checkpoint_dir=Path(checkpoint_root) / f"{name}_seed{s}")
            solver.train()
            b = int(np.argmax(solver.val_acc_history))
            rows.append((name, s, b + 1, solver.train_acc_history[b], solver.val_acc_history[b]))
            if histories is not None:
                histories[name, s] = {h: list(getattr(solver, h)) for h in HISTORIES}
    return pd.DataFrame(rows, columns=["setting", "seed", "best epoch", "train accuracy",
                                       "val accuracy"])


def summarise_runs(runs):
    """``seed_runs``'s rows by setting (in their order): val accuracy (mean) and (sd), train
    accuracy (mean) and best epoch (mean)."""
    return runs.groupby("setting", sort=False).agg(**{
        "val accuracy (mean)": ("val accuracy", "mean"),
        "val accuracy (sd)": ("val accuracy", "std"),
        "train accuracy (mean)": ("train accuracy", "mean"),
        "best epoch (mean)": ("best epoch", "mean")}).reset_index()


def rate_grid(config, factors, seeds, data, input_dim, num_classes, checkpoint_root,
              at_one=None, histories=None):
    """``config`` trained with its learning rate times each of ``factors`` (and times 1),
    with each of ``seeds`` (``seed_runs``, checkpointed under ``checkpoint_root``). ``at_one``:
    ``seed_runs`` rows already trained at the rate itself, reused instead of trained again.
    ``histories``: as ``seed_runs``', keyed (f"{factor:.2f}", seed). Returns
    ``summarise_runs``' table with the rate in a first column "learning rate", sorted by
    it."""
    lr = config["learning_rate"]
    grid = {f"{f:.2f}": {**config, "learning_rate": lr * f} for f in factors}
    if at_one is None:
        grid["1.00"] = config
    runs = seed_runs(grid, seeds, data, input_dim, num_classes, checkpoint_root, histories)
    if at_one is not None:
        runs = pd.concat([at_one.assign(setting="1.00"), runs], ignore_index=True)
    table = summarise_runs(runs)
    table.insert(0, "learning rate", lr * table.pop("setting").astype(float))
    return table.sort_values("learning rate", ignore_index=True)


def lr_range_test(config, data, input_dim, num_classes, lr_min=1e-5, lr_max=1.0,
                  num_iters=300, seed=0):
    """Train with a learning rate growing geometrically from lr_min to lr_max, one step
    per mini-batch (Smith, 2017). Returns (learning_rates, losses), stopping once the loss
    exceeds 4x its minimum or becomes non-finite."""
    model, c = build_model(config, input_dim, num_classes, seed)
    X, y = data["X_train"], data["y_train"]
    lrs = lr_min * (lr_max / lr_min) ** (np.arange(num_iters) / (num_iters - 1))
    configs = {k: {"momentum": c["momentum"]} for k in model.params}
    solver = Solver(model, data, update_rule="sgd_momentum", seed=seed)
    solver.optim_configs = configs  # the same dicts; their learning rate is set each step
    losses, best, bs = [], math.inf, c["batch_size"]
    perm = np.random.default_rng(seed).permutation(len(X))
    for i, lr in enumerate(lrs):
        idx = perm[(i * bs) % len(X):(i * bs) % len(X) + bs]
        for cfg in configs.values():
            cfg["learning_rate"] = lr
        with np.errstate(over="ignore", invalid="ignore"):
            loss = solver.step(X[idx], y[idx])
        if not math.isfinite(loss) or loss > 4 * best:
            break
        losses.append(loss)
        best = min(best, loss)
    return lrs[:len(losses)], np.array(losses)
