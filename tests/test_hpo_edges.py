"""nnlib.hpo without a server: the search description, storage URLs and their passwords,
the worker's rules for creating and joining studies, trial accounting and the tables.
(A real PostgreSQL server: test_hpo_workers.py.)"""
import json
import os
import re
import warnings

import numpy as np
import pandas as pd
import pytest

from nnlib import hpo, optim, recipe
from nnlib.credentials import masked
from nnlib.data import subsample
from nnlib.fcnet import FullyConnectedNet

optuna = pytest.importorskip("optuna")
sqlalchemy = pytest.importorskip("sqlalchemy")
State = optuna.trial.TrialState
optuna.logging.set_verbosity(optuna.logging.WARNING)


def blobs(n=200, d=6, c=3, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, n)
    X = (rng.standard_normal((c, d))[y] * 2 + rng.standard_normal((n, d))).astype(np.float32)
    return {"X_train": X[:150], "y_train": y[:150], "X_val": X[150:], "y_val": y[150:]}


SEARCH = {"space": {"learning_rate": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True}},
          "fixed": {"hidden_dims": [8], "reg": 0.0}, "num_epochs": 1}
SECRET = "s3cret-Pw"


def run_worker(capfd, *args):
    """``python -m nnlib.hpo worker ARGS`` in this process: (exit status, stdout, stderr)."""
    try:
        hpo.main(["worker", *args])
        code = 0
    except SystemExit as e:
        code = e.code
    out, err = capfd.readouterr()
    return code, out, err


def one_error_line(err):
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("python -m nnlib.hpo worker: error: "), err
    return err


@pytest.fixture
def tiny_data(monkeypatch):
    """The worker's data: blobs instead of FER2013; records the profiles asked for."""
    profiles = []

    def fake(profile):
        profiles.append(profile)
        return None, None, blobs(), 6, 3
    monkeypatch.setattr(hpo, "fer_search_data", fake)
    return profiles


def names(url):
    return sorted(optuna.get_all_study_names(url))


# --------------------------------------------------------------- the search description
BAD_SEARCHES = [  # (--search, what the error line says)
    ('{"space": ', "--search is not valid JSON: Expecting value"),
    ("[1]", "search: a JSON object, got [1]"),
    ('{"space": {}, "fixed": {}}', "search: missing key 'num_epochs'"),
    ('{"space": {}, "fixed": {}, "num_epochs": 1, "spaces": {}}',
     "search: unknown key 'spaces'; valid: space, fixed, num_epochs"),
    ('{"space": {}, "fixed": {}, "num_epochs": 0}', "search.num_epochs: a positive integer, got 0"),
    ('{"space": {}, "fixed": {}, "num_epochs": 2.5}',
     "search.num_epochs: a positive integer, got 2.5"),
    ('{"space": {}, "fixed": {}, "num_epochs": true}',
     "search.num_epochs: a positive integer, got True"),
    ('{"space": [], "fixed": {}, "num_epochs": 1}', "search.space: a JSON object, got []"),
    ('{"space": {"lr": {}}, "fixed": {}, "num_epochs": 1}',
     "search.space: unknown key 'lr'; valid: hidden_dims, dropout, reg, learning_rate"),
    ('{"space": {}, "fixed": {"num_epochs": 2}, "num_epochs": 1}',
     "search.fixed: unknown key 'num_epochs'"),
    ('{"space": {"learning_rate": 0.1}, "fixed": {}, "num_epochs": 1}',
     "search.space.learning_rate: an object of type float or int or categorical, got 0.1"),
    ('{"space": {"learning_rate": {"type": "choice"}}, "fixed": {}, "num_epochs": 1}',
     "search.space.learning_rate: an object of type float or int or categorical"),
    ('{"space": {"dropout": {"type": "layers", "max_layers": 2, "low": 0, "high": 1}}, '
     '"fixed": {}, "num_epochs": 1}', "search.space.dropout: an object of type float or int"),
    ('{"space": {"hidden_dims": {"type": "int", "low": 8, "high": 16}}, "fixed": {}, '
     '"num_epochs": 1}', "search.space.hidden_dims: an object of type layers"),
    ('{"space": {"learning_rate": {"type": "float", "lo": 0.1, "high": 1}}, "fixed": {}, '
     '"num_epochs": 1}', "search.space.learning_rate: unknown key 'lo'; valid: type, low, high, "
     "log"),
    ('{"space": {"learning_rate": {"type": "float", "low": 0.1}}, "fixed": {}, '
     '"num_epochs": 1}', "search.space.learning_rate: missing key 'high'"),
    ('{"space": {"learning_rate": {"type": "float", "low": 0.1, "high": 0.01}}, "fixed": {}, '
     '"num_epochs": 1}', "search.space.learning_rate: low must be below high, got low=0.1, "
     "high=0.01"),
    ('{"space": {"learning_rate": {"type": "float", "low": 0.1, "high": 0.1}}, "fixed": {}, '
     '"num_epochs": 1}', "search.space.learning_rate: low must be below high"),
    ('{"space": {"reg": {"type": "float", "low": 0.001, "high": 0.1, "log": "yes"}}, '
     '"fixed": {}, "num_epochs": 1}', "search.space.reg.log: true or false, got 'yes'"),
    ('{"space": {"reg": {"type": "float", "low": 0, "high": 0.1, "log": true}}, "fixed": {}, '
     '"num_epochs": 1}', "search.space.reg.low: a log scale needs low > 0, got 0"),
    ('{"space": {"lr_step": {"type": "int", "low": -2, "high": 8, "log": true}}, "fixed": {}, '
     '"num_epochs": 1}', "search.space.lr_step.low: a log scale needs low > 0, got -2"),
    ('{"space": {"reg": {"type": "float", "low": "0.001", "high": 0.1}}, "fixed": {}, '
     '"num_epochs": 1}', "search.space.reg: low, high must be numbers"),
    ('{"space": {"reg": {"type": "float", "low": NaN, "high": 0.1}}, "fixed": {}, '
     '"num_epochs": 1}', "search.space.reg: low, high must be numbers"),
    ('{"space": {"batch_size": {"type": "int", "low": 16.5, "high": 64}}, "fixed": {}, '
     '"num_epochs": 1}', "search.space.batch_size: low, high must be integers"),
    ('{"space": {"batch_size": {"type": "int", "low": 16, "high": true}}, "fixed": {}, '
     '"num_epochs": 1}', "search.space.batch_size: low, high must be integers"),
    ('{"space": {"hidden_dims": {"type": "layers", "max_layers": 0, "low": 8, "high": 16}}, '
     '"fixed": {}, "num_epochs": 1}',
     "search.space.hidden_dims: max_layers, low, high must be positive integers"),
    ('{"space": {"hidden_dims": {"type": "layers", "low": 8, "high": 16}}, "fixed": {}, '
     '"num_epochs": 1}', "search.space.hidden_dims: missing key 'max_layers'"),
    ('{"space": {"hidden_dims": {"type": "layers", "max_layers": 2, "low": 0, "high": 16}}, '
     '"fixed": {}, "num_epochs": 1}',
     "search.space.hidden_dims: FullyConnectedNet: layer sizes must be positive"),
    ('{"space": {"weight_scale": {"type": "categorical", "choices": []}}, "fixed": {}, '
     '"num_epochs": 1}', "search.space.weight_scale.choices: a non-empty list, got []"),
    ('{"space": {"weight_scale": {"type": "categorical", "choices": "he"}}, "fixed": {}, '
     '"num_epochs": 1}', "search.space.weight_scale.choices: a non-empty list, got 'he'"),
    ('{"space": {"weight_scale": {"type": "categorical", "choices": ["he"], "log": true}}, '
     '"fixed": {}, "num_epochs": 1}',
     "search.space.weight_scale: unknown key 'log'; valid: type, choices"),
    ('{"space": {"weight_scale": {"type": "categorical", "choices": ["he", "glorot", "xyz"]}}, '
     '"fixed": {}, "num_epochs": 1}',
     "search.space.weight_scale: FullyConnectedNet: weight_scale must be a float or one of"),
    ('{"space": {"learning_rate": {"type": "float", "low": 0, "high": 0.1}}, "fixed": {}, '
     '"num_epochs": 1}', "search.space.learning_rate: Solver: learning_rate must be a finite "
     "number > 0, got 0"),
    ('{"space": {"dropout": {"type": "float", "low": 0.0, "high": 1.0}}, "fixed": {}, '
     '"num_epochs": 1}', "search.space.dropout: dropout p is the probability"),
    ('{"space": {}, "fixed": {"learning_rate": -1}, "num_epochs": 1}',
     "search.fixed.learning_rate: Solver: learning_rate must be a finite number > 0"),
    ('{"space": {}, "fixed": {"batch_size": 0}, "num_epochs": 1}',
     "search.fixed.batch_size: Solver: batch_size must be an integer >= 1"),
    ('{"space": {}, "fixed": {"hidden_dims": 5}, "num_epochs": 1}',
     "search.fixed.hidden_dims: 'int' object is not iterable"),
    ('{"space": {}, "fixed": {"lr_step": 0}, "num_epochs": 1}',
     "search.fixed.lr_step: integer division or modulo by zero"),
    ('{"space": {"weight_scale": {"type": "categorical", "choices": ["he"]}, "learning_rate": '
     '{"type": "float", "low": 1, "high": 0.5}}, "fixed": {}, "num_epochs": 1}',
     "search.space.learning_rate: low must be below high"),  # checked after a categorical
]


@pytest.mark.parametrize("text, message", BAD_SEARCHES, ids=[
    f"{i}-{re.sub(r'[^a-z0-9]+', '-', m.lower())[:40]}" for i, (_, m) in enumerate(BAD_SEARCHES)])
def test_a_bad_search_is_refused_before_anything_is_written(tmp_path, capfd, text, message):
    db = tmp_path / "s.db"
    code, out, err = run_worker(capfd, "--storage", f"sqlite:///{db}", "--study", "s",
                                "--n-trials", "1", "--search", text)
    assert code == 2 and out == ""
    assert message in one_error_line(err)
    assert not db.exists()  # not even the storage was opened


def test_a_bad_search_leaves_an_existing_study_as_it_was(tmp_path, capfd, tiny_data):
    url = f"sqlite:///{tmp_path / 's.db'}"
    assert run_worker(capfd, "--storage", url, "--study", "s", "--n-trials", "1",
                      "--search", json.dumps(SEARCH))[0] == 0
    bad = dict(SEARCH, num_epochs=-1)
    code, _, err = run_worker(capfd, "--storage", url, "--study", "s", "--n-trials", "2",
                              "--search", json.dumps(bad))
    assert code == 2 and "search.num_epochs" in one_error_line(err)
    study = optuna.load_study(study_name="s", storage=url)
    assert study.user_attrs["search"] == SEARCH and len(study.trials) == 1


def test_check_search_returns_the_stored_form():
    given = {"space": {"weight_scale": {"type": "categorical", "choices": ("he", 0.01)}},
             "fixed": {"hidden_dims": (8, 4)}, "num_epochs": 2}
    stored = hpo.check_search(given)
    assert stored == {"space": {"weight_scale": {"type": "categorical", "choices": ["he", 0.01]}},
                      "fixed": {"hidden_dims": [8, 4]}, "num_epochs": 2}
    assert given["fixed"]["hidden_dims"] == (8, 4)  # the caller's dict is left alone
    q5 = {"space": {"hidden_dims": {"type": "layers", "max_layers": 3, "low": 128,
                                    "high": 1024, "log": True},
                    "dropout": {"type": "float", "low": 0.0, "high": 0.7}},
          "fixed": {"learning_rate": 0.01, "reg": 0.0, "dropout": 0.0}, "num_epochs": 20}
    assert hpo.check_search(q5) == q5  # the notebook's searches pass
    one_layer = dict(q5, space={"hidden_dims": {"type": "layers", "max_layers": 1, "low": 8,
                                                "high": 16}})
    assert hpo.check_search(one_layer) == one_layer


def test_run_search_seeds_the_sampler_and_the_training(tmp_path):
    study = hpo.run_search("r", f"sqlite:///{tmp_path / 'r.db'}", SEARCH, blobs(), 6, 3, 1,
                           seed=7)
    [trial] = study.trials
    sampler = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=7)).ask()
    rate = sampler.suggest_float("learning_rate", 1e-3, 1e-1, log=True)
    assert trial.params == {"learning_rate": rate}
    trained = recipe.train_config({"hidden_dims": [8], "reg": 0.0, "learning_rate": rate,
                                "num_epochs": 1}, blobs(), 6, 3, seed=7)
    assert trial.value == trained.best_val
    default = hpo.run_search("r", f"sqlite:///{tmp_path / 'd.db'}", SEARCH, blobs(), 6, 3, 1)
    zero = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0)).ask()
    assert default.trials[0].params == {
        "learning_rate": zero.suggest_float("learning_rate", 1e-3, 1e-1, log=True)}


def test_run_search_checks_the_search_before_opening_the_study(tmp_path):
    db = tmp_path / "r.db"
    with pytest.raises(ValueError, match="search.num_epochs"):
        hpo.run_search("r", f"sqlite:///{db}", dict(SEARCH, num_epochs=0), blobs(), 6, 3, 1)
    assert not db.exists()


# ------------------------------------------------------------ creating and joining studies
def test_a_mistyped_study_name_creates_nothing(tmp_path, capfd, tiny_data):
    url = f"sqlite:///{tmp_path / 's.db'}"
    code, _, err = run_worker(capfd, "--storage", url, "--study", "q5-lr", "--n-trials", "1")
    assert code == 2
    assert "no study q5-lr in sqlite:///" in one_error_line(err)
    assert "(it holds: none); a new study needs --search" in err
    for name in ("q5-l2", "q5-dropout"):
        optuna.create_study(study_name=name, storage=url)
    code, _, err = run_worker(capfd, "--storage", url, "--study", "q5-lr2", "--n-trials", "1")
    assert code == 2 and "(it holds: q5-dropout, q5-l2); a new study" in one_error_line(err)
    assert names(url) == ["q5-dropout", "q5-l2"] and tiny_data == []


def test_a_study_is_created_with_search_and_joined_without(tmp_path, capfd, tiny_data):
    url = f"sqlite:///{tmp_path / 's.db'}"
    code, out, _ = run_worker(capfd, "--storage", url, "--study", "s", "--n-trials", "1",
                              "--search", json.dumps(SEARCH), "--profile", "smoke")
    assert code == 0 and out == "s: 1 finished trials\n" and tiny_data == ["smoke"]
    code, out, _ = run_worker(capfd, "--storage", url, "--study", "s", "--n-trials", "2")
    assert code == 0 and out == "s: 2 finished trials\n" and tiny_data == ["smoke", "full"]
    code, out, _ = run_worker(capfd, "--storage", url, "--study", "s", "--n-trials", "2",
                              "--profile", "full")  # already done: nothing more to run
    assert code == 0 and out == "s: 2 finished trials\n" and tiny_data[-1] == "full"
    code, out, _ = run_worker(capfd, "--storage", url, "--study", "s", "--n-trials", "3",
                              "--search", json.dumps(SEARCH))  # the same search: joins
    assert code == 0 and out == "s: 3 finished trials\n"
    other = dict(SEARCH, num_epochs=2)
    code, out, err = run_worker(capfd, "--storage", url, "--study", "s", "--n-trials", "4",
                                "--search", json.dumps(other))
    assert code == 2 and out == ""
    assert "study s was created for another search" in one_error_line(err)
    assert err.endswith("; use another study name or storage (workers join without --search)\n")
    study = optuna.load_study(study_name="s", storage=url)
    assert study.user_attrs["search"] == SEARCH and len(study.trials) == 3
    assert all(1e-3 <= t.params["learning_rate"] <= 1e-1 for t in study.trials)
    assert names(url) == ["s"]


def test_a_study_without_a_search_description(tmp_path, capfd, tiny_data):
    url = f"sqlite:///{tmp_path / 's.db'}"
    optuna.create_study(study_name="bare", storage=url)
    code, _, err = run_worker(capfd, "--storage", url, "--study", "bare", "--n-trials", "1")
    assert code == 2
    assert "study bare has no search description: pass --search" in one_error_line(err)
    assert optuna.load_study(study_name="bare", storage=url).user_attrs == {}
    code, out, _ = run_worker(capfd, "--storage", url, "--study", "bare", "--n-trials", "1",
                              "--search", json.dumps(SEARCH))
    assert code == 0 and out == "bare: 1 finished trials\n"
    assert optuna.load_study(study_name="bare", storage=url).user_attrs["search"] == SEARCH


def test_store_search():
    study = optuna.create_study(study_name="x")
    with pytest.raises(ValueError, match="study x has no search description"):
        hpo.store_search(study, None)
    assert study.user_attrs == {}
    assert hpo.store_search(study, SEARCH) == SEARCH and study.user_attrs["search"] == SEARCH
    assert hpo.store_search(study, None) == SEARCH
    assert hpo.store_search(study, json.loads(json.dumps(SEARCH))) == SEARCH
    with pytest.raises(ValueError, match=r"created for another search \(\{\"space\""):
        hpo.store_search(study, dict(SEARCH, num_epochs=5))
    assert study.user_attrs["search"] == SEARCH


def test_the_worker_seeds_its_sampler(tmp_path, capfd, tiny_data):
    url = f"sqlite:///{tmp_path / 's.db'}"
    assert run_worker(capfd, "--storage", url, "--study", "s", "--n-trials", "1",
                      "--search", json.dumps(SEARCH), "--seed", "5")[0] == 0
    seeded = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=5)).ask()
    expected = seeded.suggest_float("learning_rate", 1e-3, 1e-1, log=True)
    assert optuna.load_study(study_name="s", storage=url).trials[0].params == {
        "learning_rate": expected}


def test_the_worker_passes_its_heartbeat(tmp_path, capfd, tiny_data, monkeypatch):
    opened, real = [], hpo.open_storage
    monkeypatch.setattr(hpo, "open_storage", lambda url, hb: opened.append(hb) or real(url, hb))
    url = f"sqlite:///{tmp_path / 's.db'}"
    assert run_worker(capfd, "--storage", url, "--study", "s", "--n-trials", "1", "--search",
                      json.dumps(SEARCH), "--heartbeat", "7")[0] == 0
    assert run_worker(capfd, "--storage", url, "--study", "s", "--n-trials", "1")[0] == 0
    assert opened == [7, hpo.HEARTBEAT_SECONDS]


def test_the_command_line_help(capfd, monkeypatch):
    monkeypatch.setenv("COLUMNS", "300")  # one line per option

    def shown(*args):
        with pytest.raises(SystemExit) as e:
            hpo.main([*args, "--help"])
        assert e.value.code == 0
        return " ".join(capfd.readouterr().out.split())

    top = shown()
    assert top.startswith("usage: python -m nnlib.hpo [-h] {worker} ...")
    assert ("One worker of a hyper-parameter search on FER2013 (Q5): workers given the same "
            "--storage and --study share its trials and stop together.") in top
    assert "worker run trials until the study holds --n-trials" in top
    worker = shown("worker")
    for option in ("--storage STORAGE Optuna storage URL, e.g. postgresql://user@host:port/db",
                   "--study STUDY study name, e.g. q5-lr",
                   "--profile {smoke,full} smoke: 2,000 training images (a test); full: Q5's "
                   "data",
                   "--n-trials N_TRIALS stop once the study holds this many completed or "
                   "pruned trials",
                   "--search SEARCH JSON search description (space, fixed, num_epochs) creating "
                   "a study; the Q5 notebook stores its own",
                   "--seed SEED sampler seed (default: drawn, so workers differ)",
                   "--heartbeat HEARTBEAT seconds between heartbeats; a silent trial fails "
                   "after 3x"):
        assert option in worker


@pytest.mark.parametrize("args, message", [
    ((), "the following arguments are required: --storage, --study, --n-trials"),
    (("--storage", "sqlite://", "--study", "s", "--n-trials", "two"),
     "argument --n-trials: invalid int value: 'two'"),
    (("--storage", "sqlite://", "--study", "s", "--n-trials", "1", "--profile", "big"),
     "argument --profile: invalid choice: 'big'"),
])
def test_command_line_mistakes_are_one_line(capfd, args, message):
    code, out, err = run_worker(capfd, *args)
    assert code == 2 and out == "" and message in one_error_line(err)


def test_a_command_is_needed(capfd):
    with pytest.raises(SystemExit) as e:
        hpo.main([])
    err = capfd.readouterr().err
    assert e.value.code == 2 and err == ("python -m nnlib.hpo: error: the following arguments "
                                         "are required: command\n")


def test_missing_data_is_one_line(tmp_path, capfd, monkeypatch):
    def missing(profile):
        raise FileNotFoundError("no FER2013 under /nowhere: set NNLIB_DATA")
    monkeypatch.setattr(hpo, "fer_search_data", missing)
    code, _, err = run_worker(capfd, "--storage", f"sqlite:///{tmp_path / 's.db'}", "--study",
                              "s", "--n-trials", "1", "--search", json.dumps(SEARCH))
    assert code == 2 and "no FER2013 under /nowhere: set NNLIB_DATA" in one_error_line(err)


# ---------------------------------------------------------- storage URLs and passwords
class FakeRDB:
    """Stands for Optuna's RDBStorage: records each call and PGPASSWORD at that moment,
    raises the given errors in turn (as SQLAlchemy does: from the driver's error)."""

    def __init__(self, *errors):
        self.errors, self.calls, self.warn = list(errors), [], False

    def __call__(self, url, **kwargs):
        self.calls.append((url, kwargs, os.environ.get("PGPASSWORD")))
        if self.warn:  # as Optuna does for heartbeats, and another warning
            warnings.warn("heartbeats", optuna.exceptions.ExperimentalWarning, stacklevel=2)
            warnings.warn("a warning of another kind", UserWarning, stacklevel=2)
        if self.errors:
            error = self.errors.pop(0)
            if error.__cause__ is not None:
                raise error
            raise error from getattr(error, "orig", None)
        return "storage"


class Clock:
    """time.monotonic and time.sleep without waiting."""

    def __init__(self):
        self.now, self.sleeps = 100.0, []

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def fake(monkeypatch):
    """A FakeRDB in Optuna's place, a Clock in time's, and random.uniform at its top."""
    rdb, clock, drawn = FakeRDB(), Clock(), []
    monkeypatch.setattr(optuna.storages, "RDBStorage", rdb)
    monkeypatch.setattr(hpo.time, "monotonic", clock.monotonic)
    monkeypatch.setattr(hpo.time, "sleep", clock.sleep)
    monkeypatch.setattr(hpo.random, "uniform", lambda a, b: drawn.append((a, b)) or b)
    monkeypatch.setenv("PGPASSWORD", "before")  # restored afterwards
    rdb.clock, rdb.drawn = clock, drawn
    return rdb


def no_connection(message):
    """SQLAlchemy's error for a connection that failed: no statement."""
    return sqlalchemy.exc.OperationalError(None, None, Exception(message))


def failed_statement(message, kind=sqlalchemy.exc.ProgrammingError):
    return kind("CREATE TABLE studies (...)", {}, Exception(message))


def internal_error(message):
    """Optuna's error for a commit that failed, raised from SQLAlchemy's."""
    try:
        try:
            raise failed_statement(message, sqlalchemy.exc.OperationalError)
        except sqlalchemy.exc.OperationalError as e:
            raise optuna.exceptions.StorageInternalError("commit failed") from e
    except optuna.exceptions.StorageInternalError as e:
        return e


def test_the_password_goes_to_pgpassword_not_to_the_storage(fake):
    assert hpo.open_storage(f"postgresql://nn:{SECRET}@db.example:5433/nnlib") == "storage"
    [(url, kwargs, pgpassword)] = fake.calls
    assert url == "postgresql+psycopg://nn@db.example:5433/nnlib" and pgpassword == SECRET
    assert kwargs["engine_kwargs"] == {"connect_args": {"connect_timeout": 5}}
    assert kwargs["heartbeat_interval"] == 30 and kwargs["grace_period"] == 90
    retry = kwargs["heartbeat_stale_trial_callback"]
    assert isinstance(retry, optuna.storages.RetryHeartbeatStaleTrialCallback)
    assert retry._max_retry == 1
    assert os.environ["PGPASSWORD"] == SECRET


@pytest.mark.parametrize("given, url, pgpassword", [
    ("postgresql://nn:p%40ss%2Fw%3A@h/db", "postgresql+psycopg://nn@h/db", "p@ss/w:"),
    ("postgresql+psycopg://nn:pw@h:1/db", "postgresql+psycopg://nn@h:1/db", "pw"),
    ("postgresql://nn@h/db?sslmode=require", "postgresql+psycopg://nn@h/db?sslmode=require",
     "before"),
    ("postgresql://nn@h/db?options=postgresql://x", "postgresql+psycopg://nn@h/db?options="
     "postgresql://x", "before"),  # only the scheme is changed
], ids=["escaped", "psycopg", "no-password", "scheme-only"])
def test_postgresql_urls(fake, given, url, pgpassword):
    hpo.open_storage(given, heartbeat=4, connect_seconds=2)
    [(called, kwargs, seen)] = fake.calls
    assert (called, seen) == (url, pgpassword) and os.environ["PGPASSWORD"] == pgpassword
    assert kwargs["engine_kwargs"] == {"connect_args": {"connect_timeout": 2}}
    assert kwargs["heartbeat_interval"] == 4 and kwargs["grace_period"] == 12


@pytest.mark.parametrize("given", ["sqlite:///runs/q5.db", "mysql+pymysql://nn:pw@h/db"],
                         ids=["sqlite", "mysql"])
def test_other_urls_are_left_as_they_are(fake, given):
    hpo.open_storage(given)
    [(called, kwargs, seen)] = fake.calls
    assert called == given and kwargs["engine_kwargs"] == {} and seen == "before"


@pytest.mark.parametrize("message", [
    'FATAL: password authentication failed for user "nn"', "fe_sendauth: no password supplied",
    'FATAL: Ident authentication failed for user "nn"', 'FATAL: role "nn" does not exist',
    'FATAL: no pg_hba.conf entry for host "10.0.0.2", user "nn", database "nnlib"'],
    ids=["password", "no-password", "ident", "no-role", "pg_hba"])
def test_a_refused_login_is_not_tried_again(fake, message):
    fake.errors.append(no_connection(f"connection failed: {message}"))
    with pytest.raises(ConnectionError) as e:
        hpo.open_storage(f"postgresql://nn:{SECRET}@db.example/nnlib")
    assert len(fake.calls) == 1 and fake.clock.sleeps == []
    assert str(e.value) == (f"cannot open storage postgresql://nn:***@db.example/nnlib: "
                            f"connection failed: {message}")


def test_an_unreachable_server_is_tried_for_a_few_seconds(fake):
    fake.errors.extend(no_connection("Connection refused\n\tIs the server running?")
                       for _ in range(8))
    with pytest.raises(ConnectionError) as e:
        hpo.open_storage(f"postgresql://nn:{SECRET}@db.example/nnlib", connect_seconds=3)
    # pauses 1 and 2 (random.uniform(0.2, 1.0) at its top, times the attempt); the next,
    # 3, would end past the 3 s: given up at once
    assert fake.clock.sleeps == [1.0, 2.0] and len(fake.calls) == 3
    assert fake.drawn == [(0.2, 1.0)] * 3
    assert str(e.value) == ("cannot open storage postgresql://nn:***@db.example/nnlib: "
                            "Connection refused Is the server running?")


def test_the_default_reach_is_connect_seconds(fake):
    fake.errors.extend(no_connection("Connection refused") for _ in range(8))
    with pytest.raises(ConnectionError):
        hpo.open_storage("postgresql://nn@db.example/nnlib")
    assert fake.clock.sleeps == [1.0, 2.0] and fake.clock.now - 100 <= hpo.CONNECT_SECONDS == 5


def test_racing_workers_are_retried_whatever_the_time(fake):
    fake.errors.extend([failed_statement("relation studies already exists"),
                        failed_statement("duplicate key", sqlalchemy.exc.IntegrityError),
                        internal_error("deadlock detected")])
    assert hpo.open_storage("postgresql://nn@db.example/nnlib", connect_seconds=0) == "storage"
    assert len(fake.calls) == 4 and fake.clock.sleeps == [1.0, 2.0, 3.0]


def test_the_reason_is_the_drivers_message(fake):
    fake.errors.append(internal_error("deadlock detected"))
    with pytest.raises(ConnectionError) as e:
        hpo.open_storage("postgresql://nn@h/db", attempts=1)
    assert str(e.value) == "cannot open storage postgresql://nn@h/db: deadlock detected"


def test_racing_workers_give_up_after_the_attempts(fake):
    fake.errors.extend(failed_statement("relation studies already exists") for _ in range(3))
    with pytest.raises(ConnectionError, match="studies already exists"):
        hpo.open_storage("sqlite:///runs/x.db", attempts=3)
    assert len(fake.calls) == 3 and fake.clock.sleeps == [1.0, 2.0]
    fake.errors.extend(failed_statement("relation studies already exists") for _ in range(9))
    fake.calls.clear()
    with pytest.raises(ConnectionError):
        hpo.open_storage("sqlite:///runs/x.db")
    assert len(fake.calls) == 8


@pytest.mark.parametrize("error, reason", [
    (no_connection("unable to open database file"), "unable to open database file"),
    (sqlalchemy.exc.ArgumentError("Could not parse SQLAlchemy URL from given URL string"),
     "Could not parse SQLAlchemy URL from given URL string")])
def test_sqlite_and_url_errors_are_not_tried_again(fake, error, reason):
    fake.errors.append(error)
    with pytest.raises(ConnectionError) as e:
        hpo.open_storage("sqlite:///x.db")
    assert str(e.value) == f"cannot open storage sqlite:///x.db: {reason}"
    assert len(fake.calls) == 1


def test_a_password_in_the_reason_is_masked(fake):
    fake.errors.append(no_connection(f'password authentication failed for "{SECRET}"'))
    with pytest.raises(ConnectionError) as e:
        hpo.open_storage(f"postgresql://nn:{SECRET}@h/db")
    assert SECRET not in str(e.value) and 'failed for "***"' in str(e.value)


def test_a_refused_password_is_one_line_naming_the_masked_url(fake, capfd, tiny_data):
    fake.errors.append(no_connection("FATAL: password authentication failed for user \"nn\""))
    code, out, err = run_worker(capfd, "--storage", f"postgresql://nn:{SECRET}@h:5432/nnlib",
                                "--study", "s", "--n-trials", "1")
    assert code == 2 and out == "" and SECRET not in err
    assert "cannot open storage postgresql://nn:***@h:5432/nnlib: FATAL: password " \
           "authentication failed" in one_error_line(err)


def test_a_real_refused_connection_gives_up_within_its_reach():
    pytest.importorskip("psycopg")
    with pytest.raises(ConnectionError) as e:
        hpo.open_storage(f"postgresql://nn:{SECRET}@127.0.0.1:1/nnlib", connect_seconds=1)
    assert str(e.value).startswith("cannot open storage postgresql://nn:***@127.0.0.1:1/nnlib:")
    assert SECRET not in str(e.value)


def test_only_the_experimental_warning_is_silenced(fake):
    fake.warn = True
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        hpo.open_storage("sqlite:///x.db")
    assert [w.category for w in caught] == [UserWarning]


def test_heartbeats_are_not_announced_as_experimental(tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        storage = hpo.open_storage(f"sqlite:///{tmp_path / 'h.db'}", heartbeat=2)
    assert storage.heartbeat_interval == 2 and storage.grace_period == 6
    assert not [w for w in caught if issubclass(w.category, optuna.exceptions.ExperimentalWarning)]


@pytest.mark.parametrize("url, expected", [
    (f"postgresql://nn:{SECRET}@h:5432/db", "postgresql://nn:***@h:5432/db"),
    (f"postgresql://nn:{SECRET}@h:port/db", "postgresql://nn:***@h:port/db"),  # a bad port
    (f"postgresql://nn:{SECRET}@[::1/db", "postgresql://nn:***@[::1/db"),  # a bad address
    ("postgresql://nn:se/cr#et@h/db", "postgresql://nn:***@h/db"),  # unescaped / and #
    ("postgresql://nn:p@ss@h/db", "postgresql://nn:***@h/db"),
    ("postgresql://nn@h:5432/db", "postgresql://nn@h:5432/db"),
    ("sqlite:///runs/q5.db", "sqlite:///runs/q5.db"),
], ids=["plain", "bad-port", "bad-address", "slash", "at-sign", "no-password", "sqlite"])
def test_masked(url, expected):
    assert masked(url) == expected


# -------------------------------------------------------------------- trials and tables
def hand_made(state, params=None, value=None, steps=None):
    dists = {"learning_rate": optuna.distributions.FloatDistribution(1e-4, 1.0, log=True),
             "dropout": optuna.distributions.FloatDistribution(0.0, 0.5)}
    params = params or {}
    return optuna.trial.create_trial(
        state=state, value=value, params=params,
        distributions={k: dists[k] for k in params}, intermediate_values=steps or {})


def test_pruned_trials_count_as_finished():
    study = optuna.create_study(direction="maximize")
    for t in (hand_made(State.PRUNED, steps={0: 0.2}), hand_made(State.COMPLETE, value=0.4),
              hand_made(State.FAIL), hand_made(State.PRUNED), hand_made(State.RUNNING)):
        study.add_trial(t)
    assert [t.number for t in hpo.finished_trials(study)] == [0, 1, 3]
    calls = []

    def objective(trial):
        calls.append(trial.number)
        return 0.5

    assert hpo.optimize_until(study, objective, 3) is study and calls == []  # 3 finished
    hpo.optimize_until(study, objective, 5)
    assert calls == [5, 6]

    def pruned(trial):
        calls.append(trial.number)
        raise optuna.TrialPruned()

    hpo.optimize_until(study, pruned, 7)
    assert calls == [5, 6, 7, 8] and len(hpo.finished_trials(study)) == 7


def test_trials_frame_from_hand_made_trials():
    import pandas as pd
    study = optuna.create_study(direction="maximize")
    for t in (hand_made(State.COMPLETE, {"learning_rate": 0.01, "dropout": 0.1}, 0.5,
                        {0: 0.3, 1: 0.5}),
              hand_made(State.PRUNED, {"learning_rate": 0.03, "dropout": 0.2}, None,
                        {0: 0.6, 1: 0.4}),  # scored by its best epoch
              hand_made(State.PRUNED, {"learning_rate": 0.04}),  # never reported: left out
              hand_made(State.FAIL, {"learning_rate": 0.05}),
              hand_made(State.COMPLETE, {"learning_rate": 0.02}, 0.5),  # a tie: after
              hand_made(State.COMPLETE, {"learning_rate": 0.06}, 0.0, {0: 0.7})):
        study.add_trial(t)
    frame = hpo.trials_frame(study, ["learning_rate", "dropout"])
    expected = pd.DataFrame({"learning_rate": [0.03, 0.01, 0.02, 0.06],
                             "dropout": [0.2, 0.1, None, None],
                             "val_acc": [0.6, 0.5, 0.5, 0.0],
                             "state": ["pruned", "complete", "complete", "complete"],
                             "epochs": [2, 2, 0, 1]})
    pd.testing.assert_frame_equal(frame.reset_index(drop=True), expected)
    assert [t.number for t in hpo.scored_trials(study)] == [0, 1, 4, 5]
    assert [hpo.trial_score(t) for t in hpo.scored_trials(study)] == [0.5, 0.6, 0.5, 0.0]
    ties = optuna.create_study(direction="maximize")
    for i in range(40):
        ties.add_trial(hand_made(State.COMPLETE, {"learning_rate": 0.01 + i / 1000},
                                 [0.5, 0.2][i % 2]))
    frame = hpo.trials_frame(ties, ["learning_rate"])
    expected = [0.01 + i / 1000 for i in range(0, 40, 2)] + [0.01 + i / 1000
                                                             for i in range(1, 40, 2)]
    np.testing.assert_allclose(frame["learning_rate"], expected)  # ties: in trial order
    empty = hpo.trials_frame(optuna.create_study(), ["units_1"])
    assert list(empty.columns) == ["units_1", "val_acc", "state", "epochs"] and empty.empty


def test_log_scale_spaces():
    space = {"learning_rate": {"type": "float", "low": 1e-4, "high": 1.0, "log": True},
             "batch_size": {"type": "int", "low": 2, "high": 512, "log": True},
             "hidden_dims": {"type": "layers", "max_layers": 2, "low": 4, "high": 4096,
                             "log": True},
             "dropout": {"type": "float", "low": 0.0, "high": 0.5},
             "lr_step": {"type": "int", "low": 1, "high": 10},
             "weight_scale": {"type": "categorical", "choices": ["he", "lecun"]}}
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    rates, units = [], []
    for _ in range(80):
        trial = study.ask()
        config = hpo.suggest(trial, space)
        assert 1e-4 <= config["learning_rate"] <= 1.0 and 2 <= config["batch_size"] <= 512
        assert 1 <= len(config["hidden_dims"]) == trial.params["n_layers"] <= 2
        assert all(4 <= u <= 4096 for u in config["hidden_dims"])
        assert 0 <= config["dropout"] <= 0.5 and 1 <= config["lr_step"] <= 10
        assert config["weight_scale"] in ("he", "lecun")
        d = trial.distributions
        assert d["learning_rate"] == optuna.distributions.FloatDistribution(1e-4, 1.0, log=True)
        assert d["batch_size"] == optuna.distributions.IntDistribution(2, 512, log=True)
        assert d["units_1"] == optuna.distributions.IntDistribution(4, 4096, log=True)
        assert d["n_layers"] == optuna.distributions.IntDistribution(1, 2)
        assert d["dropout"] == optuna.distributions.FloatDistribution(0.0, 0.5)
        assert d["lr_step"] == optuna.distributions.IntDistribution(1, 10)
        assert d["weight_scale"] == optuna.distributions.CategoricalDistribution(["he", "lecun"])
        rates.append(config["learning_rate"])
        units.append(config["hidden_dims"][0])
        study.tell(trial, 0.0)
    # log-uniform: about half the draws below the geometric middle (uniform: 1% and 3%)
    assert 0.3 < np.mean(np.array(rates) < 1e-2) < 0.7
    assert 0.3 < np.mean(np.array(units) < 128) < 0.7


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used")
def test_open_study(tmp_path):
    study = hpo.open_study("p", optuna.storages.InMemoryStorage(), seed=3)
    assert study.direction == optuna.study.StudyDirection.MAXIMIZE
    assert isinstance(study.sampler, optuna.samplers.TPESampler)
    assert study.sampler._n_startup_trials == 5
    same = hpo.open_study("q", optuna.storages.InMemoryStorage(), seed=3)
    other = hpo.open_study("r", optuna.storages.InMemoryStorage(), seed=4)
    default = hpo.open_study("d", optuna.storages.InMemoryStorage())
    zero = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    first = [s.ask().suggest_float("x", 0, 1) for s in (study, same, other, default, zero)]
    assert first[0] == first[1] != first[2] and first[3] == first[4]
    # median pruning after 5 complete trials, from the fourth reported step (0-based 3)
    pruning = hpo.open_study("m", f"sqlite:///{tmp_path / 'm.db'}")
    assert pruning.study_name == "m" and names(f"sqlite:///{tmp_path / 'm.db'}") == ["m"]
    good = {s: 0.9 for s in range(6)}
    for _ in range(4):
        pruning.add_trial(hand_made(State.COMPLETE, value=0.9, steps=good))
    trial = pruning.ask()
    trial.report(0.1, 3)
    assert not trial.should_prune()  # 4 complete trials: not yet
    pruning.tell(trial, state=State.FAIL)
    pruning.add_trial(hand_made(State.COMPLETE, value=0.9, steps=good))
    trial = pruning.ask()
    trial.report(0.1, 2)
    assert not trial.should_prune()
    trial.report(0.1, 3)
    assert trial.should_prune()
    again = hpo.open_study("m", f"sqlite:///{tmp_path / 'm.db'}")  # resumed
    assert len(again.trials) == 7
    early = hpo.open_study("e", optuna.storages.InMemoryStorage(), n_startup_trials=2,
                           n_warmup_steps=0)
    for _ in range(2):
        early.add_trial(hand_made(State.COMPLETE, value=0.9, steps=good))
    trial = early.ask()
    trial.report(0.1, 0)
    assert trial.should_prune()  # after 2 complete trials, from the first step


def test_search_objective_trains_fixed_and_drawn_values(monkeypatch):
    trained = []

    class Trained:
        best_val = 0.25

    def fake_train(config, data, input_dim, num_classes, trial=None, seed=0):
        trained.append((config, input_dim, num_classes, trial.number, seed))
        return Trained()

    monkeypatch.setattr(hpo, "train_config", fake_train)
    search = {"space": {"dropout": {"type": "float", "low": 0.1, "high": 0.2}},
              "fixed": {"dropout": 0.0, "reg": 0.01}, "num_epochs": 3}
    study = optuna.create_study(direction="maximize")
    objective = hpo.search_objective(search, blobs(), 6, 3, seed=9)
    study.optimize(objective, n_trials=1)
    [(config, d, c, number, seed)] = trained
    assert config == {"dropout": study.trials[0].params["dropout"], "reg": 0.01, "num_epochs": 3}
    assert 0.1 <= config["dropout"] <= 0.2 and (d, c, number, seed) == (6, 3, 0, 9)
    assert study.trials[0].value == 0.25
    study.optimize(hpo.search_objective(search, blobs(), 6, 3), n_trials=1)
    assert trained[-1][-1] == 0  # the default seed
    assert len(trained) == 2 and "duplicate_of" not in study.trials[1].user_attrs


def test_a_duplicate_is_never_the_source_of_another(monkeypatch):
    monkeypatch.setattr(hpo, "train_config", lambda *a, **k: type("T", (), {"best_val": 0.3}))
    one = {"space": {"learning_rate": {"type": "categorical", "choices": [0.01]}},
           "fixed": {}, "num_epochs": 1}
    study = optuna.create_study(direction="maximize")
    dist = {"learning_rate": optuna.distributions.CategoricalDistribution([0.01])}
    study.add_trial(optuna.trial.create_trial(  # a duplicate whose source is gone
        state=State.COMPLETE, value=0.9, params={"learning_rate": 0.01}, distributions=dist,
        user_attrs={"duplicate_of": 7}))
    study.optimize(hpo.search_objective(one, blobs(), 6, 3), n_trials=2)
    assert [t.value for t in study.trials] == [0.9, 0.3, 0.3]
    assert "duplicate_of" not in study.trials[1].user_attrs
    assert study.trials[2].user_attrs["duplicate_of"] == 1


# ---------------------------------------------------------------- training and the recipe
def test_the_default_recipe():
    model, solver = recipe.build_solver({}, blobs(), 6, 3)
    assert (model.hidden_dims, model.dropout, model.reg, model.weight_scale) == (
        [512, 256], 0.0, 0.0, "he")
    assert solver.update_rule is optim.sgd_momentum
    assert solver.optim_config == {"learning_rate": 1e-2, "momentum": 0.5}
    assert solver.momentum_schedule == {"name": "linear", "base": 0.5, "end": 0.9,
                                        "num_epochs": 5}
    assert solver.lr_schedule == {"name": "step", "step_size": 8, "gamma": 0.5}
    assert (solver.num_epochs, solver.batch_size, solver.patience) == (20, 128, 5)
    assert (solver.seed, solver.augment, solver.epoch_callback) == (0, None, None)
    assert (solver.checkpoint_dir, solver.resume, solver.verbose) == (None, False, False)


def test_build_solver_maps_each_setting(tmp_path):
    config = dict(hidden_dims=[5, 4], dropout=0.25, reg=0.01, learning_rate=0.02, momentum=0.8,
                  batch_size=16, num_epochs=3, weight_scale="lecun", momentum_start=0.3,
                  momentum_ramp_epochs=2, lr_gamma=0.1, lr_step=4, patience=1)

    def augment(X, rng):
        return X

    def callback(solver):
        return None

    model, solver = recipe.build_solver(config, blobs(), 6, 3, seed=2, augment=augment,
                                     epoch_callback=callback, checkpoint_dir=tmp_path,
                                     verbose=True)
    assert (model.hidden_dims, model.dropout, model.reg, model.weight_scale) == (
        [5, 4], 0.25, 0.01, "lecun")
    assert (model.input_dim, model.num_classes) == (6, 3)
    assert solver.optim_config == {"learning_rate": 0.02, "momentum": 0.3}
    assert solver.momentum_schedule == {"name": "linear", "base": 0.3, "end": 0.8,
                                        "num_epochs": 2}
    assert solver.lr_schedule == {"name": "step", "step_size": 4, "gamma": 0.1}
    assert (solver.num_epochs, solver.batch_size, solver.patience) == (3, 16, 1)
    assert (solver.seed, solver.augment, solver.epoch_callback) == (2, augment, callback)
    assert (solver.checkpoint_dir, solver.resume, solver.verbose) == (tmp_path, True, True)


def test_build_model():
    model, config = recipe.build_model({"hidden_dims": [7], "reg": 0.5}, 6, 3, seed=1)
    assert config == {**recipe.DEFAULT_CONFIG, "hidden_dims": [7], "reg": 0.5}
    assert model.num_params() == FullyConnectedNet.count_params(6, [7], 3)
    same, _ = recipe.build_model({"hidden_dims": [7]}, 6, 3, seed=1)
    other, _ = recipe.build_model({"hidden_dims": [7]}, 6, 3, seed=2)
    assert np.array_equal(model.params["W1"], same.params["W1"])
    assert not np.array_equal(model.params["W1"], other.params["W1"])
    default, _ = recipe.build_model({"hidden_dims": [7]}, 6, 3)
    built, _ = recipe.build_solver({"hidden_dims": [7]}, blobs(), 6, 3, seed=2)
    for net, seed in ((default, 0), (built, 2)):
        alone = FullyConnectedNet([7], input_dim=6, num_classes=3, weight_scale="he", seed=seed)
        assert all(np.array_equal(net.params[k], alone.params[k]) for k in alone.params)
    with pytest.raises(ValueError, match=r"unknown config keys \['lr'\]; valid: \['batch_size'"):
        recipe.build_model({"lr": 0.1}, 6, 3)


def test_train_config_reports_each_epoch_to_its_trial():
    study = optuna.create_study(direction="maximize")
    trial = study.ask()
    solver = recipe.train_config({"hidden_dims": [8], "num_epochs": 3, "batch_size": 50},
                              blobs(), 6, 3, trial=trial, seed=1)
    frozen = study.trials[0]
    assert frozen.intermediate_values == {i + 1: v for i, v in enumerate(solver.val_acc_history)}
    assert len(frozen.intermediate_values) == 3
    for h in recipe.HISTORIES:
        assert frozen.user_attrs[h] == [float(v) for v in getattr(solver, h)]
    assert set(frozen.user_attrs) == {"train_loss_history", "val_loss_history",
                                      "train_acc_history", "val_acc_history"}
    again = recipe.train_config({"hidden_dims": [8], "num_epochs": 3, "batch_size": 50},
                             blobs(), 6, 3, seed=1)
    assert again.val_acc_history == solver.val_acc_history  # the same seed, no trial
    assert again.epoch_callback is None


def test_train_config_passes_its_seed_and_augmentation():
    config = {"hidden_dims": [8], "num_epochs": 2, "batch_size": 50, "dropout": 0.3}
    for seed, given in ((0, {}), (4, {"seed": 4})):
        _, alone = recipe.build_solver(config, blobs(), 6, 3, seed=seed)
        alone.train()
        trained = recipe.train_config(config, blobs(), 6, 3, **given)
        assert trained.train_loss_history == alone.train_loss_history
    batches = []

    def augment(X, rng):
        batches.append(len(X))
        return X

    recipe.train_config(config, blobs(), 6, 3, augment=augment)
    assert batches and set(batches) <= {50}


def test_train_config_is_pruned_and_marks_divergence():
    study = optuna.create_study(direction="maximize",
                                pruner=optuna.pruners.ThresholdPruner(lower=1.1))
    trial = study.ask()
    with pytest.raises(optuna.TrialPruned):
        recipe.train_config({"hidden_dims": [8], "num_epochs": 3}, blobs(), 6, 3, trial=trial)
    assert len(study.trials[0].intermediate_values) == 1
    study = optuna.create_study(direction="maximize")
    trial = study.ask()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        solver = recipe.train_config({"hidden_dims": [8], "num_epochs": 3, "learning_rate": 1e9,
                                   "weight_scale": 10.0}, blobs(), 6, 3, trial=trial)
    assert solver.stop_reason.startswith("loss became")
    assert study.trials[0].user_attrs["diverged"] is True
    trial = study.ask()
    recipe.train_config({"hidden_dims": [8], "num_epochs": 1}, blobs(), 6, 3, trial=trial)
    assert "diverged" not in study.trials[1].user_attrs


def test_lr_range_test_defaults(monkeypatch):
    batches = []
    monkeypatch.setattr(recipe.Solver, "step", lambda solver, X, y: batches.append(X) or 1.0)
    data = blobs()
    lrs, losses = recipe.lr_range_test({"hidden_dims": [4], "batch_size": 16}, data, 6, 3)
    np.testing.assert_allclose(lrs, np.geomspace(1e-5, 1.0, 300))
    assert len(losses) == 300
    perm = np.random.default_rng(0).permutation(150)
    np.testing.assert_array_equal(batches[1], data["X_train"][perm[16:32]])


def test_lr_range_test_seeds_its_solver_and_silences_overflow():
    config = {"hidden_dims": [8], "batch_size": 32, "dropout": 0.5}
    runs = [recipe.lr_range_test(config, blobs(), 6, 3, num_iters=4, seed=3)[1] for _ in range(2)]
    np.testing.assert_array_equal(runs[0], runs[1])  # dropout masks from the seeded Solver
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # overflow and invalid values on the way up
        lrs, losses = recipe.lr_range_test({"hidden_dims": [8], "batch_size": 32}, blobs(), 6, 3,
                                        lr_min=1e30, lr_max=1e40, num_iters=2)
    assert len(losses) == 1 and lrs[0] == 1e30


def test_lr_range_test_first_steps_are_plain_sgd():
    data = blobs()
    lrs, losses = recipe.lr_range_test({"hidden_dims": [8], "batch_size": 32}, data, 6, 3,
                                    lr_min=1e-3, lr_max=1e-1, num_iters=5, seed=4)
    np.testing.assert_allclose(lrs, np.geomspace(1e-3, 1e-1, 5))
    assert len(losses) == 5
    perm = np.random.default_rng(4).permutation(150)
    X, y = data["X_train"], data["y_train"]
    model = FullyConnectedNet([8], input_dim=6, num_classes=3, weight_scale="he", seed=4)
    loss, grads = model.loss(X[perm[:32]], y[perm[:32]])
    assert losses[0] == pytest.approx(loss, rel=1e-6)
    velocity = {}
    for k in model.params:  # momentum starts from rest: the first step is w - lr * dw
        velocity[k] = -1e-3 * grads[k]
        model.params[k] = model.params[k] + velocity[k]
    loss, grads = model.loss(X[perm[32:64]], y[perm[32:64]])
    assert losses[1] == pytest.approx(loss, rel=1e-5)
    for k in model.params:  # then v = 0.9 v - lr dw (the default momentum), w += v
        model.params[k] = model.params[k] + 0.9 * velocity[k] - lrs[1] * grads[k]
    assert losses[2] == pytest.approx(model.loss(X[perm[64:96]], y[perm[64:96]])[0], rel=1e-4)


@pytest.mark.parametrize("scripted, kept", [
    ([2.0, 1.0, 3.9, 4.1, 1.0], 3),  # 4.1 > 4 x the best (1.0): stop
    ([2.0, 1.0, 4.0, 1.0, 1.0], 5),  # 4.0 is not above 4 x 1.0
    ([1.0, float("nan"), 1.0, 1.0, 1.0], 1),
    ([1.0, float("inf"), 1.0, 1.0, 1.0], 1),
])
def test_lr_range_test_stops_when_the_loss_explodes(monkeypatch, scripted, kept):
    seen = []

    def step(solver, X_batch, y_batch):
        rates = {c["learning_rate"] for c in solver.optim_configs.values()}
        moms = {c["momentum"] for c in solver.optim_configs.values()}
        seen.append((X_batch, rates, moms))
        return scripted[len(seen) - 1]

    monkeypatch.setattr(recipe.Solver, "step", step)
    data = blobs()
    lrs, losses = recipe.lr_range_test({"hidden_dims": [4], "batch_size": 64, "momentum": 0.7},
                                    data, 6, 3, lr_min=1e-4, lr_max=1e-2, num_iters=5, seed=2)
    assert list(losses) == scripted[:kept] and len(lrs) == kept
    expected = np.geomspace(1e-4, 1e-2, 5)
    perm = np.random.default_rng(2).permutation(150)
    for i, (X_batch, rates, moms) in enumerate(seen):
        start = (i * 64) % 150
        np.testing.assert_array_equal(X_batch, data["X_train"][perm[start:start + 64]])
        assert len(rates) == 1 and rates.pop() == pytest.approx(expected[i]) and moms == {0.7}


def test_fer_search_data(monkeypatch):
    import nnlib.data
    rng = np.random.default_rng(0)
    fer = {"X_train": rng.integers(0, 256, (3000, 4, 4), dtype=np.uint8),
           "y_train": rng.integers(0, 7, 3000),
           "X_val": rng.integers(0, 256, (600, 4, 4), dtype=np.uint8),
           "y_val": rng.integers(0, 7, 600)}
    asked = []

    def load(**kwargs):
        asked.append(kwargs)
        return dict(fer)

    monkeypatch.setattr(nnlib.data, "load_fer2013", load)
    got, pre, data, d, c = recipe.fer_search_data("smoke", seed=3)
    assert asked == [{"val_size": 0.1, "seed": 3}] and (d, c) == (16, 7)
    X_train, y_train = subsample(fer["X_train"], fer["y_train"], 2000, 3)
    X_val, y_val = subsample(fer["X_val"], fer["y_val"], 500, 3)
    np.testing.assert_array_equal(got["X_train"], X_train)
    np.testing.assert_array_equal(data["y_train"], y_train)
    np.testing.assert_array_equal(data["y_val"], y_val)
    train = X_train.reshape(2000, -1).astype(np.float64)  # standardised by the training set
    centred = train - train.mean(axis=0)
    np.testing.assert_allclose(data["X_train"], centred / centred.std(), atol=1e-4)
    val = (X_val.reshape(500, -1) - train.mean(axis=0)) / centred.std()
    np.testing.assert_allclose(data["X_val"], val, atol=1e-4)
    assert pre.transform(X_val).shape == (500, 16)
    _, _, full, _, _ = recipe.fer_search_data("full")
    assert len(full["X_train"]) == 3000 and len(full["X_val"]) == 600
    assert asked[1] == {"val_size": 0.1, "seed": 0}
    _, _, smoke, _, _ = recipe.fer_search_data("smoke")
    np.testing.assert_array_equal(smoke["y_train"],
                                  subsample(fer["X_train"], fer["y_train"], 2000, 0)[1])


def test_seed_runs_report_each_runs_best_epoch_and_read_back(tmp_path):
    """Each row is the run's best validation epoch, checked against a Solver trained by
    hand with the same config and seed; a second call reads the checkpoints back."""
    data = blobs()
    configs = {"slow": {"hidden_dims": [8], "learning_rate": 1e-3, "num_epochs": 3},
               "fast": {"hidden_dims": [8], "learning_rate": 1e-1, "num_epochs": 3}}
    histories = {}
    runs = recipe.seed_runs(configs, [0, 1], data, 6, 3, tmp_path, histories=histories)
    assert list(runs["setting"]) == ["slow", "slow", "fast", "fast"]
    for _, row in runs.iterrows():
        _, solver = recipe.build_solver(configs[row["setting"]], data, 6, 3, seed=row["seed"])
        solver.train()
        val = solver.val_acc_history
        curves = histories[row["setting"], row["seed"]]
        assert curves["val_loss_history"] == solver.val_loss_history
        assert curves["train_acc_history"] == solver.train_acc_history
        assert row["val accuracy"] == max(val)
        assert row["best epoch"] == val.index(max(val)) + 1
        assert row["train accuracy"] == solver.train_acc_history[val.index(max(val))]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "fast_seed0", "fast_seed1", "slow_seed0", "slow_seed1"]
    assert runs.equals(recipe.seed_runs(configs, [0, 1], data, 6, 3, tmp_path))
    summary = recipe.summarise_runs(runs).set_index("setting")
    fast = runs[runs["setting"] == "fast"]["val accuracy"].to_numpy()
    assert summary.loc["fast", "val accuracy (mean)"] == pytest.approx(fast.mean())
    assert summary.loc["fast", "val accuracy (sd)"] == pytest.approx(fast.std(ddof=1))
    assert list(summary.index) == ["slow", "fast"]


def test_rate_grid_trains_each_rate_and_reuses_the_runs_at_the_rate_itself(tmp_path):
    """Each row is the mean over seeds of runs at lr x factor, checked against seed_runs
    called by hand; rows given as ``at_one`` stand for factor 1 and are not trained again."""
    data = blobs()
    config = {"hidden_dims": [8], "learning_rate": 0.02, "num_epochs": 2}
    table = recipe.rate_grid(config, [4.0, 0.5], [0, 1], data, 6, 3, tmp_path / "a")
    np.testing.assert_allclose(table["learning rate"], [0.01, 0.02, 0.08])
    for lr, acc in zip(table["learning rate"], table["val accuracy (mean)"]):
        by_hand = recipe.seed_runs({"x": {**config, "learning_rate": lr}}, [0, 1], data, 6, 3,
                                   tmp_path / f"hand{lr}")
        assert acc == pytest.approx(by_hand["val accuracy"].mean())
    at_one = pd.DataFrame({"setting": ["given"] * 2, "seed": [0, 1], "best epoch": [1, 2],
                           "train accuracy": [0.5, 0.5], "val accuracy": [0.25, 0.75]})
    curves = {}
    reused = recipe.rate_grid(config, [4.0], [0, 1], data, 6, 3, tmp_path / "b", at_one=at_one,
                              histories=curves)
    assert sorted(curves) == [("4.00", 0), ("4.00", 1)]
    assert max(curves["4.00", 1]["val_acc_history"]) == pytest.approx(
        reused.loc[1, "val accuracy (mean)"] * 2 - max(curves["4.00", 0]["val_acc_history"]))
    assert list(reused["learning rate"]) == pytest.approx([0.02, 0.08])
    assert reused.loc[0, "val accuracy (mean)"] == 0.5
    assert reused.loc[1, "val accuracy (mean)"] == table.loc[2, "val accuracy (mean)"]
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ["4.00_seed0", "4.00_seed1"]
