"""How many threads nnlib's matrix products use: the one place that decides it.

NumPy's BLAS (OpenBLAS) splits each product evenly between its threads, and a thread that
finishes early spins while it waits for the others. On an idle machine that is fastest.
When another process keeps a core busy, the thread sharing that core falls behind, and
the others burn their time waiting for it: on 2 cores with one busy, nnlib trained at a
third of its idle speed. So nnlib sizes the BLAS pool to the cores that are idle when
training starts (``Solver.train`` calls ``thread_policy``), which costs nothing when the
machine is idle (all cores are then used).

``NNLIB_THREADS`` overrides the choice: a number (that many threads), ``auto`` (the
default: the idle cores), or ``all`` (leave BLAS its own setting). threadpoolctl applies it
to every BLAS library loaded in the process, and only for the duration of the call.
"""
from __future__ import annotations

import contextlib
import os
import time

ENV = "NNLIB_THREADS"


def usable_cores():
    """Cores this process may run on (its CPU affinity, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


_measured = {}  # the last measurement: {"at": time, "cores": n}, reused for MAX_AGE s
MAX_AGE = 30.0


def idle_cores(window=0.25):
    """Cores left idle by the machine's other work, measured over ``window`` seconds from
    /proc/stat (at least 1; a measurement is reused for ``MAX_AGE`` seconds); all usable
    cores where /proc/stat cannot be read."""
    now = time.monotonic()
    if _measured and now - _measured["at"] < MAX_AGE:
        return _measured["cores"]
    n = _measure_idle_cores(window)
    _measured.update(at=now, cores=n)
    return n


def _measure_idle_cores(window):
    cores = usable_cores()
    try:
        first = _cpu_times()
        time.sleep(window)
        second = _cpu_times()
    except (OSError, ValueError, IndexError):
        return cores
    total = sum(second) - sum(first)
    idle = (second[3] + second[4]) - (first[3] + first[4])  # idle + iowait
    if total <= 0:
        return cores
    busy_cores = (os.cpu_count() or cores) * (1 - idle / total)
    # a core counts as busy once another process holds about half of it
    return max(1, min(cores, round(cores - busy_cores + 0.2)))


def _cpu_times():
    with open("/proc/stat") as f:
        fields = f.readline().split()
    if fields[0] != "cpu":
        raise ValueError("unexpected /proc/stat")
    return [int(v) for v in fields[1:8]]


def blas_threads():
    """The number of BLAS threads for a training run, or None to leave BLAS's own."""
    setting = os.environ.get(ENV, "auto").strip().lower()
    if setting == "all":
        return None
    if setting == "auto":
        return idle_cores()
    try:
        n = int(setting)
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(f"{ENV}={setting!r}: use a number of threads (1 or more), "
                         "'auto' or 'all'")
    return n


_active = []  # the numbers set by the enclosing thread_policy blocks


@contextlib.contextmanager
def thread_policy(threads=None):
    """Run the block with ``threads`` BLAS threads (None: inside another ``thread_policy``
    block, that block's number; else ``blas_threads()``'s choice). Yields the number in
    force (None: BLAS's own). ``with thread_policy(1): solver.train()`` trains on one."""
    if threads is None and _active:
        n = _active[-1]
    else:
        n = blas_threads() if threads is None else int(threads)
    _active.append(n)
    try:
        if n is None:
            yield None
        else:
            from threadpoolctl import threadpool_limits
            with threadpool_limits(limits=n, user_api="blas"):
                yield n
    finally:
        _active.pop()
