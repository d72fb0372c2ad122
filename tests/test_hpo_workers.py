"""Distributed search: several ``python -m nnlib.hpo worker`` processes on one PostgreSQL
study (started with scripts/postgres.sh, as ``make postgres`` does)."""
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from nnlib.data import data_root

optuna = pytest.importorskip("optuna")
psycopg = pytest.importorskip("psycopg")
ROOT = Path(__file__).resolve().parents[1]
SEARCH = {"space": {"learning_rate": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True}},
          "fixed": {"dropout": 0.0, "reg": 0.0}, "num_epochs": 1}


@pytest.fixture(scope="module")
def server():
    if not (data_root() / "fer2013").is_dir():
        pytest.skip("FER2013 is not under $NNLIB_DATA")
    script = ROOT / "scripts" / "postgres.sh"
    was_running = (ROOT / "runs" / "postgres" / "data" / "postmaster.pid").exists()
    r = subprocess.run(["bash", str(script), "start"], capture_output=True, text=True)
    if r.returncode != 0:
        if os.environ.get("NNLIB_REQUIRE_POSTGRES"):
            pytest.fail(f"PostgreSQL did not start: {r.stderr}")
        pytest.skip(f"PostgreSQL did not start: {r.stderr.strip()}")
    yield r.stdout.strip().splitlines()[-1]
    if not was_running:  # leave the machine as it was
        subprocess.run(["bash", str(script), "stop"], capture_output=True)


@pytest.fixture
def database(server):
    """A fresh database on the server (no Optuna tables yet), dropped afterwards."""
    name = f"test_{uuid.uuid4().hex[:8]}"
    admin = server.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(f"CREATE DATABASE {name}")
    yield server.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(f"DROP DATABASE {name} WITH (FORCE)")


def worker(url, n_trials, *extra):
    cmd = [sys.executable, "-m", "nnlib.hpo", "worker", "--storage", url, "--study", "smoke",
           "--profile", "smoke", "--n-trials", str(n_trials), "--search", json.dumps(SEARCH),
           *extra]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=ROOT)


def trials(url):
    storage = optuna.storages.RDBStorage(url.replace("postgresql://", "postgresql+psycopg://"))
    return optuna.load_study(study_name="smoke", storage=storage).get_trials(deepcopy=False)


def test_two_workers_share_one_study(database):
    procs = [worker(database, 8), worker(database, 8)]  # together: they race for the tables
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
    ts = trials(database)
    finished = [t for t in ts if t.state.is_finished()]
    assert 8 <= len(finished) <= 8 + 2  # at most one extra trial per worker in flight
    assert not [t for t in ts if t.state == optuna.trial.TrialState.RUNNING]
    trained = [t for t in ts if "duplicate_of" not in t.user_attrs]
    params = [json.dumps(t.params, sort_keys=True) for t in trained]
    assert len(set(params)) == len(params)  # no parameters evaluated twice
    assert all(0 <= t.value <= 1 for t in finished)


def test_a_killed_workers_trial_is_failed_and_retried(database):
    slow = dict(SEARCH, num_epochs=40)
    cmd = [sys.executable, "-m", "nnlib.hpo", "worker", "--storage", database, "--study",
           "smoke", "--profile", "smoke", "--n-trials", "1", "--search", json.dumps(slow),
           "--heartbeat", "1"]
    first = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            running = [t for t in trials(database)
                       if t.state == optuna.trial.TrialState.RUNNING]
        except KeyError:  # the study is not created yet
            running = []
        if running:
            break
        time.sleep(0.5)
    assert running, "the first worker never started a trial"
    first.send_signal(signal.SIGKILL)
    first.wait()
    time.sleep(4)  # more than the 3 s grace period of a 1 s heartbeat
    second = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr
    ts = trials(database)
    assert not [t for t in ts if t.state == optuna.trial.TrialState.RUNNING]
    failed = [t for t in ts if t.state == optuna.trial.TrialState.FAIL]
    assert [t.number for t in failed] == [running[0].number]
    retried_from = optuna.storages.RetryHeartbeatStaleTrialCallback.retried_trial_number
    retried = [t for t in ts if retried_from(t) == running[0].number]
    assert len(retried) == 1 and retried[0].params == running[0].params
    assert retried[0].state == optuna.trial.TrialState.COMPLETE


def test_worker_errors_are_one_line(server):
    r = subprocess.run([sys.executable, "-m", "nnlib.hpo", "worker", "--storage",
                        server, "--study", f"missing-{uuid.uuid4().hex[:6]}", "--profile",
                        "smoke", "--n-trials", "1"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 2 and "has no search description" in r.stderr
    assert "Traceback" not in r.stderr
