"""Hyper-parameter search helpers around Optuna (imported only where used).

- ``open_study``: a named study in an SQLite file, or in a storage URL that machines share
  (``postgresql://user@host/db``: its password goes to ``PGPASSWORD``, never further); a
  killed worker's trial is failed (heartbeats) and its parameters tried again.
- ``suggest``, ``search_objective``, ``optimize_until``: a search described by plain data
  (``check_search``), stored with the study so that any worker can join it (``main``).
The network, its Solver and its data (Q5's recipe) are ``nnlib.recipe``'s.
"""
from __future__ import annotations

import argparse
import json
import math
import random
import time
import warnings

import numpy as np

from nnlib.credentials import MASK, masked, password_of, without_password
from nnlib.fcnet import FullyConnectedNet
from nnlib.recipe import DEFAULT_CONFIG, build_solver, fer_search_data, train_config

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
    where, password, engine = masked(url), password_of(url), {}
    if url.startswith(("postgresql://", "postgresql+psycopg://")):  # ValueError: a bad port
        # the password, if any, moves to PGPASSWORD in os.environ, where libpq reads it
        url = without_password(url).replace("postgresql://", "postgresql+psycopg://", 1)
        engine = {"connect_args": {"connect_timeout": connect_seconds}}
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
                # any sizes do (the mark below): only the value is checked
                build_solver({where.rsplit(".", 1)[1]: value}, tiny, 2, 2)  # pragma: no mutate
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


def best_epoch(trial):
    """A trial's best epoch (counted from 1) with its training and validation accuracy
    there, from the histories the trial keeps (``train_config``)."""
    val = trial.user_attrs["val_acc_history"]
    best = int(np.argmax(val))
    return best + 1, trial.user_attrs["train_acc_history"][best], val[best]


def trials_frame(study, params):
    """The scored trials as a DataFrame (``params``, val_acc, state, epochs), best first."""
    import pandas as pd
    rows = [{**{p: t.params.get(p) for p in params}, "val_acc": trial_score(t),
             "state": t.state.name.lower(), "epochs": len(t.intermediate_values)}
            for t in scored_trials(study)]
    return pd.DataFrame(rows, columns=[*params, "val_acc", "state", "epochs"]).sort_values(
        # ties: in the order the trials ran ("STABLE" works too)
        "val_acc", ascending=False, kind="stable")  # pragma: no mutate


def topology_weights(params, input_dim, num_classes):
    """Weights and biases of the network of ``params`` (``n_layers``, ``units_1`` ...)."""
    hidden = [params[f"units_{i + 1}"] for i in range(params["n_layers"])]
    return FullyConnectedNet.count_params(input_dim, hidden, num_classes)


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
    parser.print_usage = w.print_usage = lambda file=None: None  # pragma: no mutate (one line)
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
