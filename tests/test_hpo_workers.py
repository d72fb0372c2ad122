"""Distributed search: several ``python -m nnlib.hpo worker`` processes on one PostgreSQL
study (started with scripts/postgres.sh, as ``make postgres`` does), and a server of the
tests' own that asks for a password."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest

from nnlib import hpo
from nnlib.data import data_root

np = pytest.importorskip("numpy")
optuna = pytest.importorskip("optuna")
psycopg = pytest.importorskip("psycopg")
sqlalchemy = pytest.importorskip("sqlalchemy")
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


def beating_trials(url):
    """Numbers of the RUNNING trials whose heartbeat is on record (none before Optuna's
    tables exist)."""
    with psycopg.connect(url) as c:
        if c.execute("SELECT to_regclass('trial_heartbeats')").fetchone()[0] is None:
            return []
        return [n for (n,) in c.execute(
            "SELECT t.number FROM trials t JOIN trial_heartbeats h USING (trial_id) "
            "WHERE t.state = 'RUNNING'")]


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
        # killed inside its objective, once its heartbeat is on record: Optuna fails only
        # trials whose heartbeat stopped (one killed between creating its trial and the
        # first heartbeat would stay RUNNING)
        beating = set(beating_trials(database))
        try:
            running = [t for t in trials(database) if t.number in beating and t.params]
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
    name = f"missing-{uuid.uuid4().hex[:6]}"
    r = subprocess.run([sys.executable, "-m", "nnlib.hpo", "worker", "--storage",
                        server, "--study", name, "--profile", "smoke", "--n-trials", "1"],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert f"no study {name} in {server} (it holds: " in r.stderr
    assert "a new study needs --search" in r.stderr
    assert name not in optuna.get_all_study_names(hpo.open_storage(server))


# a password with characters a URL must escape: the URL carries it %-encoded
PASSWORD = "s3cr@t/Pw:"
WRONG = "Wr0ng-Pw"


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def password_server():
    """A PostgreSQL server of the tests' own, on a free port, asking for a password
    (scram-sha-256): its URL, with the password, for the database ``postgres``."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                   key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0)
    bindir = Path(shutil.which("initdb")).parent if shutil.which("initdb") else (
        found[-1].parent if found else None)
    if bindir is None:
        if os.environ.get("NNLIB_REQUIRE_POSTGRES"):
            pytest.fail("PostgreSQL is not installed")
        pytest.skip("PostgreSQL is not installed")
    base = Path(tempfile.mkdtemp(prefix="nnlib-pg-password-"))
    as_db = []
    (base / "pw").write_text(PASSWORD + "\n")
    if os.geteuid() == 0:  # the server refuses to run as root
        as_db = ["runuser", "-u", "postgres", "--"]
        for path in (base, base / "pw"):
            shutil.chown(path, "postgres")
    port = _free_port()
    started = subprocess.run(
        as_db + [str(bindir / "initdb"), "-D", str(base / "data"), "-U", "postgres",
                 "--auth=scram-sha-256", f"--pwfile={base / 'pw'}"], capture_output=True,
        text=True)
    if started.returncode == 0:
        started = subprocess.run(
            as_db + [str(bindir / "pg_ctl"), "-D", str(base / "data"), "-l", str(base / "log"),
                     "-w", "-o", f"-c listen_addresses=127.0.0.1 -p {port} -k {base}", "start"],
            capture_output=True, text=True)
    if started.returncode != 0:
        shutil.rmtree(base, ignore_errors=True)
        if os.environ.get("NNLIB_REQUIRE_POSTGRES"):
            pytest.fail(f"PostgreSQL did not start: {started.stderr}")
        pytest.skip(f"PostgreSQL did not start: {started.stderr.strip()}")
    yield f"postgresql://postgres:{quote(PASSWORD, safe='')}@127.0.0.1:{port}/postgres"
    subprocess.run(as_db + [str(bindir / "pg_ctl"), "-D", str(base / "data"), "-m",
                            "immediate", "stop"], capture_output=True)
    shutil.rmtree(base, ignore_errors=True)


def test_a_password_reaches_the_server_and_nothing_else(password_server, monkeypatch, capfd):
    monkeypatch.delenv("PGPASSWORD", raising=False)  # restored afterwards
    X = np.random.default_rng(0).standard_normal((60, 4)).astype(np.float32)
    y = np.arange(60) % 3
    data = {"X_train": X[:40], "y_train": y[:40], "X_val": X[40:], "y_val": y[40:]}
    monkeypatch.setattr(hpo, "fer_search_data", lambda profile: (None, None, data, 4, 3))
    search = dict(SEARCH, fixed={"hidden_dims": [4]})
    hpo.main(["worker", "--storage", password_server, "--study", "pw", "--n-trials", "1",
              "--search", json.dumps(search)])
    out, err = capfd.readouterr()
    assert out == "pw: 1 finished trials\n"
    assert os.environ["PGPASSWORD"] == PASSWORD  # libpq reads it from there, decoded
    storage = hpo.open_storage(password_server)
    assert storage.engine.url.password is None and PASSWORD not in storage.url
    study = optuna.load_study(study_name="pw", storage=storage)
    assert study.user_attrs["search"] == search and len(study.trials) == 1
    with storage.engine.connect() as c:  # every row of every table Optuna keeps
        stored = repr([c.execute(sqlalchemy.text(f"SELECT * FROM {table}")).fetchall()
                       for table in sqlalchemy.inspect(c).get_table_names()])
    assert "learning_rate" in stored
    for text in (out, err, stored):
        assert PASSWORD not in text and quote(PASSWORD, safe="") not in text


def test_a_refused_password_fails_at_once(password_server, monkeypatch):
    monkeypatch.delenv("PGPASSWORD", raising=False)
    wrong = password_server.replace(quote(PASSWORD, safe=""), WRONG)
    start = time.monotonic()
    with pytest.raises(ConnectionError) as e:
        hpo.open_storage(wrong)
    assert time.monotonic() - start < 1.5  # not tried again (the first pause alone: 0.2 s+)
    assert str(e.value).startswith(f"cannot open storage {wrong.replace(WRONG, '***')}: ")
    assert 'password authentication failed for user "postgres"' in str(e.value)
    without = password_server.replace(f":{quote(PASSWORD, safe='')}@", "@")
    monkeypatch.delenv("PGPASSWORD")  # the wrong one, from above
    with pytest.raises(ConnectionError, match="no password supplied"):
        hpo.open_storage(without)


def test_a_worker_given_a_wrong_password_says_so_in_one_line(password_server):
    wrong = password_server.replace(quote(PASSWORD, safe=""), WRONG)
    env = {k: v for k, v in os.environ.items() if k != "PGPASSWORD"}
    r = subprocess.run([sys.executable, "-m", "nnlib.hpo", "worker", "--storage", wrong,
                        "--study", "s", "--n-trials", "1", "--search", json.dumps(SEARCH)],
                       capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert r.returncode == 2 and r.stdout == "" and r.stderr.count("\n") == 1
    assert WRONG not in r.stderr and "postgresql://postgres:***@127.0.0.1:" in r.stderr
    assert "password authentication failed" in r.stderr


def test_an_unreachable_server_gives_up_within_seconds():
    port = _free_port()  # nothing listens there
    start = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "nnlib.hpo", "worker", "--storage",
                        f"postgresql://nn:{WRONG}@127.0.0.1:{port}/nnlib", "--study", "s",
                        "--n-trials", "1"], capture_output=True, text=True, cwd=ROOT,
                       timeout=120)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and WRONG not in r.stderr
    assert f"cannot open storage postgresql://nn:***@127.0.0.1:{port}/nnlib: " in r.stderr
    assert "Connection refused" in r.stderr
    # a few seconds of attempts, and the interpreter's own start
    assert time.monotonic() - start < hpo.CONNECT_SECONDS + 15
