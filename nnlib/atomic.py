"""Atomic file replacement: a reader (or a process killed mid-write) sees either the old
file or the new one, never half of one.

Each writer goes to a temporary file in the target's folder (so that the final rename
stays on one file system), is flushed and fsynced, and then replaces the target with
``os.replace``; the folder is fsynced too, so that the rename survives a power cut.
A write that fails leaves the target untouched and removes its temporary file.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

TMP_PREFIX = ".tmp-"  # ignored by git: a temporary file left by a killed process


@contextlib.contextmanager
def temporary_path(path):
    """Yield a temporary path beside ``path`` (same suffix, so that writers which pick a
    format by suffix, like Keras, still work); once the block ends without an error the
    file there replaces ``path``. The writer inside the block need not fsync."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f"{TMP_PREFIX}{path.stem}-",
                               suffix=path.suffix)
    try:
        os.close(fd)
        yield Path(tmp)
        with open(tmp, "rb+") as f:
            # mkstemp made the file private (0600); the result keeps the mode of the file it
            # replaces, or gets the one a plain open() would give a new file. Set once the
            # writer is done (a read-only mode would have stopped it) and before the fsync
            # (which then keeps the mode too)
            mode = path.stat().st_mode & 0o777 if path.exists() else 0o666 & ~_umask()
            os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


@contextlib.contextmanager
def atomic_open(path, mode="wb", **kwargs):
    """``open`` for writing whose result replaces ``path`` atomically when the block ends."""
    if not set(mode) & {"w"}:
        raise ValueError(f"atomic_open writes whole files: mode must contain 'w', got {mode!r}")
    with temporary_path(path) as tmp, open(tmp, mode, **kwargs) as f:
        yield f  # closed (so flushed) before temporary_path fsyncs and renames it


def write_bytes(path, data):
    """Replace ``path`` by ``data`` (bytes) atomically."""
    with atomic_open(path) as f:
        f.write(data)
    return Path(path)


def write_text(path, text, encoding="utf-8"):  # pragma: no mutate (the codec's case)
    """Replace ``path`` by ``text`` atomically."""
    return write_bytes(path, text.encode(encoding))


def _umask():
    mask = os.umask(0o022)  # the only way to read it is to set it
    os.umask(mask)
    return mask


def _fsync_dir(folder):
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. a platform without directory handles
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
