"""Atomic file replacement (nnlib.atomic): what a crash, an error or a kill leaves behind."""
import os
import re
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from nnlib import atomic
from nnlib.atomic import TMP_PREFIX, atomic_open, temporary_path, write_bytes, write_text


@pytest.fixture
def umask():
    """Sets the umask to 0o027 for the test (and checks that nothing changed it)."""
    old = os.umask(0o027)
    yield 0o027
    assert os.umask(old) == 0o027


def leftovers(folder):
    return sorted(p.name for p in Path(folder).iterdir() if p.name.startswith(TMP_PREFIX))


def fd_path(fd):
    return os.readlink(f"/proc/self/fd/{fd}")


def test_the_file_is_fsynced_before_the_rename_and_the_folder_after(tmp_path, monkeypatch):
    target = tmp_path / "out.txt"
    target.write_text("old")
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        name = fd_path(fd)
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            events.append(("fsync folder", name))
        else:  # the data is all there when it is fsynced, under the temporary name
            events.append(("fsync file", name, Path(name).read_text()))
        real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", str(src), str(dst), Path(dst).read_text()))
        real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "fsync", fsync)
    monkeypatch.setattr(atomic.os, "replace", replace)
    with atomic_open(target, "w") as f:
        f.write("new text")
        tmp = f.name
    assert events == [("fsync file", tmp, "new text"),
                      ("replace", tmp, str(target), "old"),
                      ("fsync folder", str(tmp_path))]
    assert target.read_text() == "new text" and leftovers(tmp_path) == []


def test_the_temporary_file_lies_beside_the_target(tmp_path):
    target = tmp_path / "a" / "b" / "model.keras"  # folders made as needed
    with temporary_path(target) as tmp:
        assert tmp.parent == target.parent
        assert tmp.name.startswith(f"{TMP_PREFIX}model-") and tmp.suffix == ".keras"
        assert tmp.is_file() and not target.exists()
        tmp.write_bytes(b"weights")
    assert target.read_bytes() == b"weights" and not tmp.exists()
    with atomic_open(target) as f:  # binary by default
        assert Path(f.name).parent == target.parent and f.mode == "wb"
        f.write(b"new")
    assert target.read_bytes() == b"new" and leftovers(target.parent) == []


@pytest.mark.parametrize("error", [ValueError, KeyboardInterrupt, SystemExit])
def test_an_error_in_the_writer_keeps_the_old_file(tmp_path, error):
    target = tmp_path / "t.tex"
    target.write_text("old")
    with pytest.raises(error):
        with atomic_open(target, "w") as f:
            f.write("half")
            raise error()
    assert target.read_text() == "old" and leftovers(tmp_path) == []
    with pytest.raises(error):
        with temporary_path(tmp_path / "new.npz"):
            raise error()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.tex"]


@pytest.mark.parametrize("call", ["fsync", "replace", "fchmod"])
def test_a_failing_fsync_rename_or_chmod_keeps_the_old_file(tmp_path, monkeypatch, call):
    target = tmp_path / "t.json"
    target.write_text("old")

    def fails(*args):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(atomic.os, call, fails)
    with pytest.raises(OSError, match="No space left"):
        write_text(target, "new")
    assert target.read_text() == "old" and leftovers(tmp_path) == []


def test_a_failing_cleanup_does_not_hide_the_error(tmp_path, monkeypatch):
    def cannot_unlink(path):
        raise PermissionError("read-only folder")
    monkeypatch.setattr(atomic.os, "unlink", cannot_unlink)
    with pytest.raises(ValueError, match="the writer's error"):
        with atomic_open(tmp_path / "x"):
            raise ValueError("the writer's error")


def test_an_existing_file_keeps_its_mode(tmp_path, umask):
    target = tmp_path / "shared.txt"
    for mode in (0o640, 0o600, 0o755, 0o444):
        target.write_text("old")
        target.chmod(mode)
        with atomic_open(target, "w") as f:
            # the writer works on a private file it can write, whatever the target's mode
            assert stat.S_IMODE(os.stat(f.name).st_mode) == 0o600
            f.write("new")
        assert stat.S_IMODE(target.stat().st_mode) == mode and target.read_text() == "new"
        target.chmod(0o644)


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o077, 0o002])
def test_a_new_file_gets_the_mode_open_would_give_it(tmp_path, mask):
    old = os.umask(mask)
    try:
        path = write_text(tmp_path / f"new{mask}.txt", "a")
        with open(tmp_path / "plain.txt", "w"):
            pass
        expected = stat.S_IMODE((tmp_path / "plain.txt").stat().st_mode)
        assert expected == 0o666 & ~mask  # what open() does, checked independently
        assert stat.S_IMODE(path.stat().st_mode) == expected
        assert os.umask(mask) == mask  # reading the umask left it as it was
    finally:
        os.umask(old)
        (tmp_path / "plain.txt").unlink(missing_ok=True)


def test_the_folder_fsync_tolerates_platforms_without_it(tmp_path, monkeypatch):
    closed = []
    real_close = os.close
    monkeypatch.setattr(atomic.os, "close", lambda fd: closed.append(fd) or real_close(fd))

    def no_dir_fsync(fd):
        raise OSError(22, "Invalid argument")
    monkeypatch.setattr(atomic.os, "fsync", no_dir_fsync)
    atomic._fsync_dir(tmp_path)  # no error, and its handle closed
    assert len(closed) == 1

    def no_dir_handles(path, flags):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(atomic.os, "open", no_dir_handles)
    atomic._fsync_dir(tmp_path)
    assert len(closed) == 1


def test_write_helpers_and_modes(tmp_path):
    assert write_bytes(tmp_path / "b.bin", b"\x00\x01") == tmp_path / "b.bin"
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    assert write_text(str(tmp_path / "t.txt"), "é") == tmp_path / "t.txt"
    assert (tmp_path / "t.txt").read_bytes() == "é".encode()
    write_text(tmp_path / "t.txt", "é", encoding="latin-1")
    assert (tmp_path / "t.txt").read_bytes() == b"\xe9"
    with atomic_open(tmp_path / "u.txt", "w", encoding="utf-16") as f:
        f.write("x")
    assert (tmp_path / "u.txt").read_text(encoding="utf-16") == "x"
    for mode in ("r", "a", "rb+", "x"):
        with pytest.raises(ValueError, match=rf"^atomic_open writes whole files: mode must "
                                             rf"contain 'w', got {re.escape(repr(mode))}$"):
            with atomic_open(tmp_path / "t.txt", mode):
                pass
    assert (tmp_path / "t.txt").read_bytes() == b"\xe9" and leftovers(tmp_path) == []


def test_a_killed_writer_leaves_the_old_file(tmp_path):
    target = tmp_path / "results.json"
    target.write_text("old results")
    writer = textwrap.dedent(f"""
        import sys, time
        from nnlib.atomic import atomic_open
        with atomic_open({str(target)!r}, "w") as f:
            f.write("new, half written")
            f.flush()
            print("writing", flush=True)
            time.sleep(60)
            f.write(" and the rest")
    """)
    proc = subprocess.Popen([sys.executable, "-c", writer], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "writing\n"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=30)
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    assert target.read_text() == "old results"
    left = leftovers(tmp_path)  # the killed process's temporary file, beside the target
    assert len(left) == 1 and left[0].endswith(".json")
    assert (tmp_path / left[0]).read_text() == "new, half written"
