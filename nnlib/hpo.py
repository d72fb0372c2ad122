"""Hyper-parameter search helpers around Optuna (imported only where used).

- ``open_study``: a named study in an SQLite file, or in a storage URL that machines share
  (``postgresql://user@host/db``: its password goes to ``PGPASSWORD``, never further); a
  killed worker's trial is failed (heartbeats) and its parameters tried again.
- ``suggest``, ``search_objective``, ``optimize_until``: a search described by plain data
  (``check_search``), stored with the study so that any worker can join it (``main``).
- ``train_config``: train a config dict, reporting to an Optuna trial for pruning.
- ``lr_range_test``: the learning-rate range test of Smith (2017).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import time
import warnings

import numpy as np

from nnlib.credentials import MASK, masked, password_of, without_password
from nnlib.fcnet import FullyConnectedNet
from nnlib.solver import Solver

DEFAULT_CONFIG = dict(hidden_dims=[512, 256], dropout=0.0, reg=0.0, learning_rate=1e-2,
                      momentum=0.9, batch_size=128, num_epochs=20, weight_scale="he",
                      momentum_start=0.5, momentum_ramp_epochs=5, lr_gamma=0.5,
                      lr_step=8, patience=5)
HISTORIES = ("train_loss_history", "val_loss_history", "train_acc_history", "val_acc_history")
HEARTBEAT_SECONDS = 30  # a RUNNING trial without a heartbeat for 3x this is failed
CONNECT_SECONDS = 5  # an unreachable server is tried again for this long, no longer
REFUSED = ("password", "authentication", "does not exist", "pg_hba.conf")  # never retried


def open_storage(url, heartbeat=HEARTBEAT_SECONDS, attempts=8, connect_seconds=CONNECT_SECONDS):
    """An Optuna storage for ``url`` whose trials carry a heartbeat (a killed worker's
    trial is failed after ``3 * heartbeat`` seconds and its parameters retried once).
    ``postgresql://`` uses psycopg 3, its password goes to ``PGPASSWORD``. Workers racing
    to create Optuna's tables retry after a random pause; a server out of reach is tried
    for ``connect_seconds``, a refused login once; then a ConnectionError."""
    import optuna
    import sqlalchemy.exc
    where, password, env, engine = masked(url), password_of(url), {}, {}
    if url.startswith(("postgresql://", "postgresql+psycopg://")):  # ValueError: a bad port
        url = without_password(url, env).replace("postgresql://", "postgresql+psycopg://", 1)
        engine = {"connect_args": {"connect_timeout": connect_seconds}}
    os.environ.update(env)  # the password, if any, where libpq reads it
    deadline = time.monotonic() + connect_seconds  # for failed connections (no SQL statement)
    for attempt in range(attempts):
        try:
            with warnings.catch_warnings():  # heartbeats are marked experimental
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1)
                return optuna.storages.RDBStorage(
                    url, engine_kwargs=engine, heartbeat_interval=heartbeat,
                    grace_period=3 * heartbeat, heartbeat_stale_trial_callback=retry)
        except (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError) as e:
            reason = " ".join(str(getattr(e.__cause__, "orig", None) or e.__cause__ or e).split())
            pause = random.uniform(0.2, 1.0) * (attempt + 1)
            connecting = isinstance(e, sqlalchemy.exc.DBAPIError) and e.statement is None
            if (attempt == attempts - 1 or isinstance(e, sqlalchemy.exc.ArgumentError)
                    or connecting and (url.startswith("sqlite") or any(r in reason.lower() for r
                                       in REFUSED) or time.monotonic() + pause > deadline)):
                reason = reason.replace(password, MASK) if password else reason
                raise ConnectionError(f"cannot open storage {where}: {reason}") from None
            time.sleep(pause)


def open_study(name, storage, direction="maximize", seed=0, n_startup_trials=5,
               n_warmup_steps=3):
    """Create or load the study ``name`` (TPE sampler, median pruning) in ``storage``, a URL
    or a storage object. seed: workers sharing a study need distinct ones (None: drawn)."""
    import optuna
    if isinstance(storage, str):
        storage = open_storage(storage)
    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=n_startup_trials)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=n_startup_trials,
                                         n_warmup_steps=n_warmup_steps)
    return optuna.create_study(study_name=name, storage=storage, direction=direction,
                               sampler=sampler, pruner=pruner, load_if_exists=True)


def suggest(trial, space):
    """A config dict drawn by ``trial`` from ``space``: ``{name: {"type": "float" | "int",
    "low": a, "high": b, "log": bool} | {"type": "categorical", "choices": [...]}}``, and
    ``"hidden_dims": {"type": "layers", "max_layers": n, "low": a, "high": b, "log": bool}``
    (parameters ``n_layers``, ``units_1`` ...)."""
    config = {}
    for name, spec in space.items():
        kind, low, high = spec["type"], spec.get("low"), spec.get("high")
        log = spec.get("log", False)
        if kind == "float":
            config[name] = trial.suggest_float(name, low, high, log=log)
        elif kind == "int":
            config[name] = trial.suggest_int(name, low, high, log=log)
        elif kind == "categorical":
            config[name] = trial.suggest_categorical(name, spec["choices"])
        elif kind == "layers":
            n = trial.suggest_int("n_layers", 1, spec["max_layers"])
            config[name] = [trial.suggest_int(f"units_{i + 1}", low, high, log=log)
                            for i in range(n)]
        else:
            raise ValueError(f"unknown parameter type {kind!r} for {name}; see check_search")
    return config


SPECS = {"float": ("low", "high", "log"), "int": ("low", "high", "log"),
         "categorical": ("choices",), "layers": ("max_layers", "low", "high", "log")}


def _keys(where, given, valid, required=()):
    """A ValueError naming the first unknown or missing key of the JSON object ``given``."""
    if not isinstance(given, dict):
        raise ValueError(f"{where}: a JSON object, got {given!r}")
    bad = [f"unknown key {k!r}; valid: {', '.join(valid)}" for k in given if k not in valid]
    bad += [f"missing key {k!r}" for k in required if k not in given]
    if bad:
        raise ValueError(f"{where}: {bad[0]}")


def check_search(search):
    """``search`` (see ``suggest``) as stored (JSON), checked: a ValueError names a bad key."""
    search = json.loads(json.dumps(search))
    _keys("search", search, ("space", "fixed", "num_epochs"), ("space", "fixed", "num_epochs"))
    if type(search["num_epochs"]) is not int or search["num_epochs"] < 1:
        raise ValueError(f"search.num_epochs: a positive integer, got {search['num_epochs']!r}")
    for part in ("space", "fixed"):
        _keys(f"search.{part}", search[part], [p for p in DEFAULT_CONFIG if p != "num_epochs"])
    tried = {f"search.fixed.{name}": [v] for name, v in search["fixed"].items()}
    for name, spec in search["space"].items():
        where = f"search.space.{name}"
        kinds = ("layers",) if name == "hidden_dims" else ("float", "int", "categorical")
        if not isinstance(spec, dict) or spec.get("type") not in kinds:
            raise ValueError(f"{where}: an object of type {' or '.join(kinds)}, got {spec!r}")
        kind, keys = spec["type"], SPECS[spec["type"]]
        _keys(where, spec, ("type", *keys), [k for k in ("type", *keys) if k != "log"])
        if kind == "categorical":
            if not isinstance(spec["choices"], list) or not spec["choices"]:
                raise ValueError(f"{where}.choices: a non-empty list, got {spec['choices']!r}")
            tried[where] = spec["choices"]
            continue
        low, high, log = spec["low"], spec["high"], spec.get("log", False)
        if not all(type(spec[k]) is int or kind == "float" and type(spec[k]) is float
                   and math.isfinite(spec[k]) for k in keys[:-1]) or (
                       kind == "layers" and spec["max_layers"] < 1):
            what = dict(float="numbers", layers="positive integers").get(kind, "integers")
            raise ValueError(f"{where}: {', '.join(keys[:-1])} must be {what}, got {spec!r}")
        if not low < high:
            raise ValueError(f"{where}: low must be below high, got low={low}, high={high}")
        if type(log) is not bool:
            raise ValueError(f"{where}.log: true or false, got {log!r}")
        if log and low <= 0:
            raise ValueError(f"{where}.low: a log scale needs low > 0, got {low}")
        tried[where] = [[low], [high]] if kind == "layers" else [low, high]
    tiny = dict(X_train=np.eye(2), y_train=np.arange(2), X_val=np.eye(2), y_val=np.arange(2))
    for where, values in tried.items():
        for value in values:
            try:  # the network and its Solver check each value
                build_solver({where.rsplit(".", 1)[1]: value}, tiny, 2, 2)
            except (ValueError, TypeError, ZeroDivisionError) as e:
                raise ValueError(f"{where}: {' '.join(str(e).split())}") from None
    return search


def search_objective(search, data, input_dim, num_classes, seed=0):
    """The objective of ``search`` (``space`` for ``suggest``, ``fixed`` config values,
    ``num_epochs``): the best validation accuracy. Parameters a finished trial evaluated
    are not trained again: its value is returned (user attribute ``duplicate_of``)."""
    import optuna

    def objective(trial):
        config = {**search["fixed"], **suggest(trial, search["space"]),
                  "num_epochs": search["num_epochs"]}
        for other in trial.study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)):
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
    return study.get_trials(states=states)


def optimize_until(study, objective, n_trials):
    """Run trials until ``study`` holds ``n_trials`` completed or pruned ones, counted after
    every trial, so that workers sharing it stop together (each after its trial in flight)."""
    import optuna
    if len(finished_trials(study)) >= n_trials:
        return study
    stop = optuna.study.MaxTrialsCallback(
        n_trials, states=(optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED))
    study.optimize(objective, callbacks=[stop])  # no n_trials: no progress bar
    return study


def store_search(study, search):
    """The search to run on ``study``: its stored one (which ``search`` must equal), else
    ``search``, stored now; a ValueError where there is none."""
    stored, name = study.user_attrs.get("search"), study.study_name
    if stored is None and search is None:
        raise ValueError(f"study {name} has no search description: pass --search")
    if None not in (stored, search) and stored != search:
        raise ValueError(f"study {name} was created for another search ({json.dumps(stored)})"
                         "; use another study name or storage (workers join without --search)")
    if stored is None:
        study.set_user_attr("search", search)
    return search if stored is None else stored


def run_search(name, storage, search, data, input_dim, num_classes, n_trials, seed=0):
    """Run, resume or join the study ``name`` until it holds ``n_trials`` finished trials;
    ``search`` is checked and stored with it, for workers elsewhere. Returns the study."""
    search = check_search(search)
    study = open_study(name, storage, seed=seed)
    return optimize_until(study, search_objective(store_search(study, search), data,
                                                  input_dim, num_classes, seed=seed), n_trials)


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
    return pd.DataFrame(rows, columns=[*params, "val_acc", "state", "epochs"]).sort_values(
        "val_acc", ascending=False, kind="stable")  # ties: in the order the trials ran


def topology_weights(params, input_dim, num_classes):
    """Weights and biases of the network of ``params`` (``n_layers``, ``units_1`` ...)."""
    hidden = [params[f"units_{i + 1}"] for i in range(params["n_layers"])]
    return FullyConnectedNet.count_params(input_dim, hidden, num_classes)


def fer_search_data(profile, seed=0):
    """Q5's data: FER2013, a stratified 10% validation split, standardised (smoke: 2,000 and
    500 images). Returns (fer, preprocessor, data dict, input_dim, num_classes)."""
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


def main(argv=None):
    """``python -m nnlib.hpo worker``: one worker of a search shared through a storage."""
    parser = argparse.ArgumentParser(
        prog="python -m nnlib.hpo",
        description="One worker of a hyper-parameter search on FER2013 (Q5): workers given "
                    "the same --storage and --study share its trials and stop together.")
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
                   "creating a study; the Q5 notebook stores its own")
    w.add_argument("--seed", type=int, help="sampler seed (default: drawn, so workers differ)")
    w.add_argument("--heartbeat", type=int, default=HEARTBEAT_SECONDS,
                   help="seconds between heartbeats; a silent trial fails after 3x")
    parser.print_usage = w.print_usage = lambda file=None: None  # an error: one line
    args = parser.parse_args(argv)
    try:
        search = None if args.search is None else check_search(json.loads(args.search))
        storage = open_storage(args.storage, args.heartbeat)
        names = sorted(s.study_name for s in storage.get_all_studies())
        if args.study not in names and search is None:  # a mistyped name: no new study
            raise ValueError(f"no study {args.study} in {masked(args.storage)} (it holds: "
                             f"{', '.join(names) or 'none'}); a new study needs --search")
        study = open_study(args.study, storage, seed=args.seed)
        search = store_search(study, search)
        _, _, data, D, C = fer_search_data(args.profile)
        optimize_until(study, search_objective(search, data, D, C), args.n_trials)
    except (ValueError, ImportError, KeyError, OSError) as e:
        json_syntax = "--search is not valid JSON: " * isinstance(e, json.JSONDecodeError)
        w.error(json_syntax + " ".join(str(e).split()))
    print(f"{args.study}: {len(finished_trials(study))} finished trials")


if __name__ == "__main__":
    main()
