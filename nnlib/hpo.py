"""Hyper-parameter search helpers around Optuna (imported only where used).

- ``open_study``: a named study in an SQLite file by default, or any Optuna storage URL
  (e.g. ``postgresql://user@host/db``) so that several machines share one study; it is
  resumed when it exists. Trials carry a heartbeat: a trial whose worker was killed is
  marked failed and its parameters are tried again.
- ``suggest``, ``search_objective``, ``optimize_until``: a search described by plain data
  (stored with the study), so that any worker can join it; ``python -m nnlib.hpo worker``
  runs one such worker (see ``main``).
- ``train_config``: build a FullyConnectedNet from a config dict, train it with the
  Solver, report the per-epoch validation accuracy to an Optuna trial for pruning.
- ``lr_range_test``: the learning-rate range test of Smith (2017).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
import warnings

import numpy as np

from nnlib.fcnet import FullyConnectedNet
from nnlib.solver import Solver

DEFAULT_CONFIG = dict(hidden_dims=[512, 256], dropout=0.0, reg=0.0, learning_rate=1e-2,
                      momentum=0.9, batch_size=128, num_epochs=20, weight_scale="he",
                      momentum_start=0.5, momentum_ramp_epochs=5, lr_gamma=0.5,
                      lr_step=8, patience=5)


HISTORIES = ("train_loss_history", "val_loss_history", "train_acc_history", "val_acc_history")


HEARTBEAT_SECONDS = 30  # a RUNNING trial without a heartbeat for 3x this is failed


def open_storage(url, heartbeat=HEARTBEAT_SECONDS, attempts=8):
    """An Optuna storage for ``url`` whose trials carry a heartbeat (a killed worker's
    trial is failed after ``3 * heartbeat`` seconds and its parameters retried once).

    ``postgresql://`` URLs use psycopg 3 (the ``postgres`` extra). Workers that start
    together on a fresh database race to create Optuna's tables: a failed attempt is
    retried after a random pause."""
    import optuna
    import sqlalchemy.exc
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    for attempt in range(attempts):
        try:
            with warnings.catch_warnings():  # heartbeats are marked experimental
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1)
                return optuna.storages.RDBStorage(
                    url, heartbeat_interval=heartbeat, grace_period=3 * heartbeat,
                    heartbeat_stale_trial_callback=retry)
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError,
                sqlalchemy.exc.OperationalError):
            if attempt == attempts - 1:
                raise
            time.sleep(random.uniform(0.2, 1.0) * (attempt + 1))


def open_study(name, storage, direction="maximize", seed=0, n_startup_trials=5,
               n_warmup_steps=3):
    """Create or load the study ``name``: TPE sampler and median pruning.

    storage: an Optuna storage URL (``sqlite:///path.db`` keeps it in one file) or a
    storage object. seed: the sampler's seed; workers sharing a study need distinct seeds,
    or they propose the same parameters (None draws one).
    """
    import optuna
    if isinstance(storage, str):
        storage = open_storage(storage)
    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=n_startup_trials)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=n_startup_trials,
                                         n_warmup_steps=n_warmup_steps)
    return optuna.create_study(study_name=name, storage=storage, direction=direction,
                               sampler=sampler, pruner=pruner, load_if_exists=True)


def suggest(trial, space):
    """A config dict drawn by ``trial`` from ``space``, a dict of plain-data specs:
    ``{"type": "float" | "int", "low": a, "high": b, "log": bool}``, or for
    ``hidden_dims`` ``{"type": "layers", "max_layers": n, "low": a, "high": b, "log": bool}``
    (parameters ``n_layers`` and ``units_1`` ...)."""
    config = {}
    for name, spec in space.items():
        kind, low, high, log = spec["type"], spec["low"], spec["high"], spec.get("log", False)
        if kind == "float":
            config[name] = trial.suggest_float(name, low, high, log=log)
        elif kind == "int":
            config[name] = trial.suggest_int(name, low, high, log=log)
        elif kind == "layers":
            n = trial.suggest_int("n_layers", 1, spec["max_layers"])
            config[name] = [trial.suggest_int(f"units_{i + 1}", low, high, log=log)
                            for i in range(n)]
        else:
            raise ValueError(f"unknown parameter type {kind!r} for {name}; "
                             "use float, int or layers")
    return config


def search_objective(search, data, input_dim, num_classes, seed=0):
    """The objective of a search described by ``search`` (``space`` for ``suggest``,
    ``fixed`` config values, ``num_epochs``): the best validation accuracy of the
    trained configuration. Parameters that a finished trial already evaluated are not
    trained again: that trial's value is returned (user attribute ``duplicate_of``)."""
    import optuna

    def objective(trial):
        config = {**search["fixed"], **suggest(trial, search["space"]),
                  "num_epochs": search["num_epochs"]}
        for other in trial.study.get_trials(deepcopy=False,
                                            states=(optuna.trial.TrialState.COMPLETE,)):
            if other.params == trial.params and "duplicate_of" not in other.user_attrs:
                trial.set_user_attr("duplicate_of", other.number)
                return other.value
        return train_config(config, data, input_dim, num_classes, trial=trial,
                            seed=seed).best_val

    return objective


def finished_trials(study):
    """Trials that count towards a study's budget: completed or pruned."""
    import optuna
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return study.get_trials(deepcopy=False, states=states)


def optimize_until(study, objective, n_trials):
    """Run trials until ``study`` holds ``n_trials`` completed or pruned trials, counted
    again after every trial, so that several workers sharing the study stop together
    (each finishing at most the one trial it has in flight)."""
    import optuna
    if len(finished_trials(study)) >= n_trials:
        return study
    stop = optuna.study.MaxTrialsCallback(
        n_trials, states=(optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED))
    study.optimize(objective, callbacks=[stop], show_progress_bar=False)
    return study


def run_search(name, storage, search, data, input_dim, num_classes, n_trials, seed=0):
    """Run, resume or join the study ``name`` until it holds ``n_trials`` completed or
    pruned trials. ``search`` (``space``, ``fixed``, ``num_epochs``; see
    ``search_objective``) is stored with the study, so that ``python -m nnlib.hpo worker``
    processes on other machines can share the work. Returns the study."""
    study = open_study(name, storage, seed=seed)
    stored = study.user_attrs.get("search")
    if stored is not None and stored != json.loads(json.dumps(search)):
        raise ValueError(f"study {name} was created for another search ({stored}); use "
                         "another storage or study name")
    study.set_user_attr("search", search)
    return optimize_until(study, search_objective(search, data, input_dim, num_classes,
                                                  seed=seed), n_trials)


def scored_trials(study):
    """The completed trials, and the pruned ones that reported at least one epoch."""
    import optuna
    pruned = optuna.trial.TrialState.PRUNED
    return [t for t in study.trials
            if t.value is not None or (t.state == pruned and t.intermediate_values)]


def trial_score(trial):
    """Validation accuracy of a trial; for a pruned one, its best epoch before pruning."""
    return trial.value if trial.value is not None else max(trial.intermediate_values.values())


def trials_frame(study, params):
    """The scored trials as a DataFrame (``params``, val_acc, state, epochs), best first."""
    import pandas as pd
    rows = [{**{p: t.params.get(p) for p in params}, "val_acc": trial_score(t),
             "state": t.state.name.lower(), "epochs": len(t.intermediate_values)}
            for t in scored_trials(study)]
    return pd.DataFrame(rows).sort_values("val_acc", ascending=False)


def topology_weights(params, input_dim, num_classes):
    """Number of weights and biases of the network a topology trial's ``params``
    (``n_layers``, ``units_1`` ...) describe."""
    hidden = [params[f"units_{i + 1}"] for i in range(params["n_layers"])]
    return FullyConnectedNet.count_params(input_dim, hidden, num_classes)


def fer_search_data(profile, seed=0):
    """Q5's data: FER2013 with a stratified 10% validation split, standardised with the
    training statistics; the smoke profile takes 2,000 training and 500 validation images.
    Returns (fer, preprocessor, data dict, input_dim, num_classes)."""
    from nnlib.data import FER2013_CLASSES, load_fer2013, subsample
    from nnlib.preprocess import Preprocessor
    fer = load_fer2013(val_size=0.1, seed=seed)
    if profile != "full":
        for split, n in (("train", 2000), ("val", 500)):
            fer[f"X_{split}"], fer[f"y_{split}"] = subsample(
                fer[f"X_{split}"], fer[f"y_{split}"], n, seed)
    pre = Preprocessor(center="image", scale="std").fit(fer["X_train"])
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
    """A FullyConnectedNet and its Solver from a config dict (see DEFAULT_CONFIG).

    SGD with momentum throughout; the momentum ramps linearly from ``momentum_start``
    to ``momentum`` over ``momentum_ramp_epochs``; the learning rate is multiplied by
    ``lr_gamma`` every ``lr_step`` epochs; training stops after ``patience`` epochs
    without a better validation accuracy.
    """
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
    """Train one configuration; with an Optuna ``trial``, report and prune per epoch.

    Returns the Solver (its model holds the best parameters).
    """
    def report(solver):
        if trial is None:
            return
        import optuna
        for h in HISTORIES:  # kept with the trial, so curves need no re-training
            trial.set_user_attr(h, [float(v) for v in getattr(solver, h)])
        trial.report(solver.val_acc_history[-1], solver.epoch)
        if trial.should_prune():
            raise optuna.TrialPruned()

    _, solver = build_solver(config, data, input_dim, num_classes, seed=seed, augment=augment,
                             epoch_callback=report)
    solver.train()
    if solver.stop_reason and solver.stop_reason.startswith("loss became"):
        if trial is not None:
            trial.set_user_attr("diverged", True)
    return solver


def lr_range_test(config, data, input_dim, num_classes, lr_min=1e-5, lr_max=1.0,
                  num_iters=300, seed=0):
    """Train with a learning rate growing geometrically from lr_min to lr_max, one step
    per mini-batch, and record the training loss (Smith, 2017).

    Returns (learning_rates, losses); stops early once the loss exceeds 4x its minimum
    or becomes non-finite.
    """
    model, c = build_model(config, input_dim, num_classes, seed)
    rng = np.random.default_rng(seed)
    X, y = data["X_train"], data["y_train"]
    lrs = lr_min * (lr_max / lr_min) ** (np.arange(num_iters) / (num_iters - 1))
    configs = {k: {"learning_rate": lrs[0], "momentum": c["momentum"]} for k in model.params}
    solver = Solver(model, data, update_rule="sgd_momentum", verbose=False, seed=seed)
    solver.optim_configs = configs  # the same dicts; their learning rate is set per step
    losses, best = [], math.inf
    perm = rng.permutation(len(X))
    bs = c["batch_size"]
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


def main(argv=None):
    """``python -m nnlib.hpo worker``: one worker of a search shared through a storage."""
    parser = argparse.ArgumentParser(
        prog="python -m nnlib.hpo",
        description="Run one worker of a hyper-parameter search on FER2013 (Q5). Start "
                    "several, on one machine or many, with the same --storage and --study: "
                    "they share the trials and stop together.")
    sub = parser.add_subparsers(dest="command", required=True)
    w = sub.add_parser("worker", help="run trials until the study holds --n-trials")
    w.add_argument("--storage", required=True,
                   help="Optuna storage URL, e.g. postgresql://user@host:port/db")
    w.add_argument("--study", required=True, help="study name, e.g. q5-lr")
    w.add_argument("--profile", choices=("smoke", "full"), default="full",
                   help="smoke: 2,000 training images (a test); full: Q5's data")
    w.add_argument("--n-trials", type=int, required=True,
                   help="stop once the study holds this many completed or pruned trials")
    w.add_argument("--search", help="JSON search description (space, fixed, num_epochs) "
                   "for a study that does not exist yet; the Q5 notebook stores its own")
    w.add_argument("--seed", type=int, default=None,
                   help="sampler seed (default: drawn, so that workers differ)")
    w.add_argument("--heartbeat", type=int, default=HEARTBEAT_SECONDS,
                   help="seconds between heartbeats; a silent trial fails after 3x")
    args = parser.parse_args(argv)
    try:
        search = json.loads(args.search) if args.search else None
        study = open_study(args.study, open_storage(args.storage, args.heartbeat),
                           seed=args.seed if args.seed is not None else
                           int.from_bytes(os.urandom(4), "little"))
        stored = study.user_attrs.get("search")
        if stored is None:
            if search is None:
                raise ValueError(f"study {args.study} has no search description: create it "
                                 "with the Q5 notebook or pass --search")
            study.set_user_attr("search", search)
            stored = search
        elif search is not None and search != stored:
            raise ValueError(f"--search differs from the search stored with {args.study}")
        _, _, data, D, C = fer_search_data(args.profile)
        optimize_until(study, search_objective(stored, data, D, C), args.n_trials)
    except (ValueError, ImportError, KeyError) as e:
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        sys.exit(2)
    print(f"{args.study}: {len(finished_trials(study))} finished trials")


if __name__ == "__main__":
    main()
