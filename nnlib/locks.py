"""An exclusive lock on a file, naming its holder: one process at a time trains into a
checkpoint folder (``nnlib.checkpoint``) or re-runs a checkout's notebooks
(``nnlib.pipeline``). The kernel releases the lock when its process ends, however it ends,
so a killed run never blocks the next one."""
from __future__ import annotations

import contextlib
import os
import socket

try:
    import fcntl
except ImportError:  # Windows: no flock, so nothing is locked there
    fcntl = None


class LockHeld(RuntimeError):
    """Another process holds the lock; ``holder`` names it ("process N on HOST")."""

    def __init__(self, path, holder):
        super().__init__(f"{path} is held by {holder or 'another process'}")
        self.path, self.holder = path, holder or "another process"


def acquire(path):
    """Take the lock of the file ``path`` (created if missing), writing this process's
    name into it; returns its descriptor for ``release``. Raises ``LockHeld`` if another
    process holds it, OSError if the file cannot be opened."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise LockHeld(path, os.pread(fd, 256, 0).decode(errors="replace").strip()) \
                    from None
        os.ftruncate(fd, 0)
        os.write(fd, f"process {os.getpid()} on {socket.gethostname()}\n".encode())
    except BaseException:
        os.close(fd)
        raise
    return fd


def release(fd):
    """Give the lock of ``acquire`` back; the file no longer names a holder."""
    try:
        os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # releases the lock


@contextlib.contextmanager
def exclusive(path):
    """Hold the lock of the file ``path`` for the block (``acquire``, ``release``)."""
    fd = acquire(path)
    try:
        yield path
    finally:
        release(fd)
