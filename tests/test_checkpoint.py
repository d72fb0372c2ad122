"""The checkpoint folder's lock, the training data's fingerprint and the folder checks."""
import fcntl
import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from nnlib import FullyConnectedNet, Solver, checkpoint
from nnlib.checkpoint import CheckpointError, CheckpointInUseError

HOLDER = f"process {os.getpid()} on {socket.gethostname()}"


def blobs(n=150, d=6, c=3, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, n)
    X = (rng.standard_normal((c, d))[y] * 2 + rng.standard_normal((n, d))).astype(np.float32)
    return {"X_train": X[:120], "y_train": y[:120], "X_val": X[120:], "y_val": y[120:]}


def make(d, folder=None, **kw):
    model = FullyConnectedNet([8], input_dim=6, num_classes=3, weight_scale="he", seed=0)
    opts = dict(update_rule="sgd_momentum", optim_config={"learning_rate": 0.05},
                num_epochs=3, batch_size=16, verbose=False, seed=1, checkpoint_dir=folder,
                resume=folder is not None)
    return Solver(model, d, **{**opts, **kw})


def same_params(a, b):
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def read_state(path):
    with np.load(path, allow_pickle=False) as z:
        return json.loads(str(z["state"]))


# ------------------------------------------------------------------------------ lock
def test_a_second_solver_on_a_folder_in_use_fails_and_writes_nothing(tmp_path):
    d = blobs()
    lock = tmp_path / "checkpoint.lock"
    errors, during = [], []

    def second(solver):
        if solver.epoch == 1:
            during.append(lock.read_text())
            other = make(d, tmp_path, resume=False, num_epochs=5, seed=2)
            with pytest.raises(CheckpointInUseError) as e:
                other.train()
            errors.append(str(e.value))
            assert other.epoch == 0 and other.loss_history == []
    first = make(d, tmp_path, epoch_callback=second).train()
    assert during == [HOLDER + "\n"]  # the holder names itself while it trains
    assert errors == [f"checkpoint_dir {tmp_path} is in use by {HOLDER} (it holds {lock}); "
                      "wait until that run has finished, or give this one another "
                      "checkpoint_dir"]
    assert read_state(tmp_path / "checkpoint.npz")["run"]["seed"] == 1  # the first's, kept
    assert first.epoch == 3
    assert lock.read_text() == ""  # released, and no longer names anyone
    make(d, tmp_path, num_epochs=4).train()  # the folder is free again


def test_the_lock_is_released_when_training_raises(tmp_path):
    class Stop(Exception):
        pass

    def stop(solver):
        raise Stop
    with pytest.raises(Stop):
        make(blobs(), tmp_path, epoch_callback=stop).train()
    with checkpoint.locked(tmp_path) as path:
        assert path == tmp_path / "checkpoint.lock"


def test_a_lock_names_its_holder_and_only_its_holder_clears_it(tmp_path):
    lock = tmp_path / "sub" / "checkpoint.lock"
    with checkpoint.locked(tmp_path / "sub"):  # the folder is created
        with pytest.raises(CheckpointInUseError, match=f"in use by {HOLDER} "):
            with checkpoint.locked(tmp_path / "sub"):
                pass
        assert lock.read_text() == HOLDER + "\n"  # the refused one leaves it as it was
    lock.write_text("x" * 300 + "\n")  # a long name left by a killed holder
    with checkpoint.locked(tmp_path / "sub"):
        assert lock.read_text() == HOLDER + "\n"
    fd = os.open(lock, os.O_RDWR)  # a holder that has not named itself yet
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, b"\xff")
        with pytest.raises(CheckpointInUseError, match="in use by \ufffd "):
            make(blobs(), tmp_path / "sub").train()
        os.ftruncate(fd, 0)
        with pytest.raises(CheckpointInUseError, match=r"in use by another process \(it holds"):
            make(blobs(), tmp_path / "sub").train()
    finally:
        os.close(fd)


def test_a_killed_holder_leaves_no_lock_behind(tmp_path):
    code = ("import sys, time\nfrom nnlib import checkpoint\n"
            "with checkpoint.locked(sys.argv[1]):\n"
            "    print('held', flush=True)\n    time.sleep(300)\n")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], env=env,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "held\n"
        holder = f"process {proc.pid} on {socket.gethostname()}"
        with pytest.raises(CheckpointInUseError, match=f"in use by {holder} "):
            make(blobs(), tmp_path).train()
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
    assert (tmp_path / "checkpoint.lock").read_text() == holder + "\n"  # as it was killed
    s = make(blobs(), tmp_path).train()
    assert s.epoch == 3


def test_solvers_without_a_checkpoint_dir_take_no_lock(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    d = blobs()

    def nested(solver):
        make(d, num_epochs=1).train()
    make(d, num_epochs=1, epoch_callback=nested).train()
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- unusable folders
@pytest.mark.parametrize("where", ["below_a_file", "a_file"])
def test_an_unusable_checkpoint_dir_fails_before_the_first_epoch(tmp_path, where):
    d = blobs()
    (tmp_path / "file").write_text("")
    folder = tmp_path / "file" / "run" if where == "below_a_file" else tmp_path / "file"
    s = make(d, folder)
    start = {k: v.copy() for k, v in s.model.params.items()}
    reason = "Not a directory" if where == "below_a_file" else "File exists"
    with pytest.raises(CheckpointError, match=(
            f"^checkpoint folder {folder} cannot be written \\({reason}\\); give the Solver a "
            r"checkpoint_dir \(or checkpoint_name\) in a folder this process may create and "
            "write files in$")):
        s.train()
    assert s.epoch == 0 and s.loss_history == []
    same_params(s.model.params, start)


def test_a_folder_where_no_file_can_be_created_fails(tmp_path, monkeypatch):
    def refuse(**kw):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(checkpoint.tempfile, "mkstemp", refuse)
    with pytest.raises(CheckpointError, match=f"folder {tmp_path} cannot be written "
                                              r"\(Permission denied\)"):
        make(blobs(), tmp_path).train()
    assert not (tmp_path / "checkpoint.lock").exists()  # checked before the lock


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into read-only folders")
def test_a_read_only_checkpoint_dir_fails(tmp_path):
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(CheckpointError, match="cannot be written"):
            make(blobs(), tmp_path).train()
    finally:
        tmp_path.chmod(0o700)


def test_a_lock_file_that_cannot_be_opened_fails(tmp_path):
    (tmp_path / "checkpoint.lock").mkdir()
    with pytest.raises(CheckpointError, match=f"^lock file {tmp_path / 'checkpoint.lock'} "
                                              r"cannot be written \(Is a directory\); give"):
        make(blobs(), tmp_path).train()


def test_checkpoint_name_in_an_unusable_folder_fails_before_training(tmp_path):
    (tmp_path / "file").write_text("")
    s = make(blobs(), checkpoint_name=str(tmp_path / "file" / "run"))
    with pytest.raises(CheckpointError, match=f"checkpoint folder {tmp_path / 'file'} cannot"):
        s.train()
    assert s.loss_history == []
    s = make(blobs(), checkpoint_name=str(tmp_path / "new" / "run"), num_epochs=1).train()
    assert [p.name for p in (tmp_path / "new").iterdir()] == ["run_epoch_1.npz"]


# ----------------------------------------------------------------------- fingerprint
def reference_fingerprint(X, y):
    """The documented fingerprint, computed from whole arrays in one go."""
    h = hashlib.sha256()
    for name, a in (("X_train", X), ("y_train", y)):
        h.update(f"{name} {a.dtype} {a.shape} {a.dtype.descr}\n".encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return (f"X_train {X.dtype} {X.shape}, y_train {y.dtype} {y.shape}; "
            f"sha256 {h.hexdigest()[:16]}")


def test_the_fingerprint_names_the_data_and_hashes_their_bytes():
    X = np.arange(12, dtype=np.float32).reshape(4, 3)
    y = np.array([0, 1, 2, 1])
    fp = checkpoint.fingerprint(X, y)
    assert fp == reference_fingerprint(X, y)
    assert fp.startswith("X_train float32 (4, 3), y_train int64 (4,); sha256 ")
    assert len(fp.rsplit(" ", 1)[1]) == 16
    assert checkpoint.fingerprint(np.asfortranarray(X), y) == fp  # layout does not matter
    assert checkpoint.fingerprint(X.copy(), y.copy()) == fp
    wide = np.zeros((4, 6), np.float32)
    wide[:, ::2] = X
    assert checkpoint.fingerprint(wide[:, ::2], y) == fp
    others = [checkpoint.fingerprint(X + np.eye(4, 3, dtype=np.float32) * 1e-6, y),
              checkpoint.fingerprint(X, y[::-1]),
              checkpoint.fingerprint(X.view(np.int32), y),  # same bytes, another dtype
              checkpoint.fingerprint(X.reshape(4, 3, 1), y),  # same bytes, another shape
              checkpoint.fingerprint(X, y.astype(np.int32))]
    assert len({fp, *others}) == 6
    assert {o.rsplit(" ", 1)[1] for o in others[2:4]} != {fp.rsplit(" ", 1)[1]}


def test_the_fingerprint_hashes_in_chunks(monkeypatch):
    chunks = []
    real = np.ascontiguousarray

    def spy(a):
        chunks.append(a.shape)
        return real(a)
    monkeypatch.setattr(checkpoint.np, "ascontiguousarray", spy)
    X = np.arange(10 * 3, dtype=np.float32).reshape(10, 3)
    y = np.arange(30, dtype=np.uint8)
    fp = checkpoint.fingerprint(X, y)
    assert chunks == [(10, 3), (30,)]  # 16 MiB at a time
    big = np.zeros((3, 1 << 22), np.float32)  # 16 MiB a row
    chunks.clear()
    checkpoint.fingerprint(big, y)
    assert chunks == [(1, 1 << 22)] * 3 + [(30,)]
    monkeypatch.setattr(checkpoint, "CHUNK_BYTES", 48)
    chunks.clear()
    assert checkpoint.fingerprint(X, y) == fp
    assert chunks == [(4, 3), (4, 3), (2, 3), (30,)]  # 48 one-byte labels fit in one
    chunks.clear()
    checkpoint.fingerprint(np.zeros((2, 13), np.float32), y)  # a row above the chunk size
    assert chunks[:2] == [(1, 13), (1, 13)]


def test_soft_labels_are_fingerprinted_with_their_fields():
    from nnlib.classifiers import soft_labels
    X = np.zeros((3, 2), np.float32)
    probs = np.full((3, 2), 0.5, np.float32)
    a = checkpoint.fingerprint(X, soft_labels(np.array([0, 1, 1]), probs))
    b = checkpoint.fingerprint(X, soft_labels(np.array([0, 1, 0]), probs))
    assert a != b and "y_train [('label', '<i8'), ('soft', '<f4', (2,))] (3,)" in a


# ------------------------------------------------------------ resuming other data
def test_resuming_with_other_training_data_is_refused(tmp_path):
    d = blobs()
    make(d, tmp_path, num_epochs=1).train()
    path = tmp_path / "checkpoint.npz"
    saved = path.read_bytes()
    fp = read_state(path)["data"]
    assert fp == reference_fingerprint(d["X_train"], d["y_train"])
    changed = dict(d, X_train=d["X_train"].copy())
    changed["X_train"][7, 2] += 1
    here = reference_fingerprint(changed["X_train"], d["y_train"])
    message = (f"checkpoint {path} was made with other training data ({fp} there, {here} "
               "here); use another checkpoint_dir, or resume=False to start afresh")
    with pytest.raises(CheckpointError, match=f"^{re.escape(message)}$"):
        make(changed, tmp_path)
    with pytest.raises(CheckpointError, match="other training data"):
        make(dict(d, y_train=(d["y_train"] + 1) % 3), tmp_path)
    other = make(changed)
    with pytest.raises(CheckpointError, match="other training data"):
        other.load_checkpoint(tmp_path)
    assert other.epoch == 0 and other.loss_history == []  # left as it was
    assert path.read_bytes() == saved
    # the same data in other arrays resume; resume=False starts afresh
    same = dict(d, X_train=np.asfortranarray(d["X_train"]), y_train=d["y_train"].copy())
    assert make(same, tmp_path).epoch == 1
    fresh = make(changed, tmp_path, resume=False, num_epochs=1).train()
    assert fresh.epoch == 1 and read_state(path)["data"] == here


def test_old_checkpoints_without_a_fingerprint_resume_with_a_warning(tmp_path):
    d = blobs()
    whole = make(d, num_epochs=4).train()
    make(d, tmp_path, num_epochs=2).train()
    path = tmp_path / "checkpoint.npz"
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    state = json.loads(str(arrays["state"]))
    del state["data"], state["stopped_under"]
    arrays["state"] = np.array(json.dumps(state))
    np.savez(path, **arrays)
    with pytest.warns(UserWarning, match=f"^checkpoint {path} was written before checkpoints "
                                         "recorded their training data: it is resumed "
                                         "without checking that the data are the same$"):
        s = make(d, tmp_path, num_epochs=4)
    assert s.epoch == 2
    other = make(dict(d, X_train=d["X_train"] + 1))  # with other data, too: it cannot know
    with pytest.warns(UserWarning, match="before checkpoints recorded"):
        other.load_checkpoint(tmp_path)
    s.train()
    same_params(s.model.params, whole.model.params)
    assert read_state(path)["data"] == s.data_fingerprint()  # recorded from now on
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make(d, tmp_path, num_epochs=4)
    make(d, tmp_path, seed=5, resume=False, num_epochs=1).train()
    state = read_state(path)
    state.pop("data")
    arrays = {"state": np.array(json.dumps(state))}
    with np.load(path) as z:
        arrays.update({k: z[k] for k in z.files if k != "state"})
    np.savez(path, **arrays)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # another run is refused before any warning
        with pytest.raises(CheckpointError, match="another run"):
            make(d, tmp_path)


def test_the_fingerprint_is_computed_once(monkeypatch, tmp_path):
    calls = []
    real = checkpoint.fingerprint

    def counting(X, y):
        calls.append(len(X))
        return real(X, y)
    monkeypatch.setattr(checkpoint, "fingerprint", counting)
    s = make(blobs(), num_epochs=3)
    assert calls == []  # not without checkpoints
    s.train()
    assert calls == []
    s = make(blobs(), tmp_path, num_epochs=3).train()
    assert calls == [120]


def test_a_rule_state_that_cannot_be_stored_names_its_type(tmp_path):
    from nnlib.optim import sgd

    def rule(w, dw, config):
        config["seen"] = {1}
        return sgd(w, dw, config)
    with pytest.raises(TypeError, match="^cannot store set in a checkpoint$"):
        make(blobs(), tmp_path, update_rule=rule, num_epochs=1).train()
