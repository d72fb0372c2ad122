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
    return len(_usable_cpus() or range(os.cpu_count() or 1))


def _usable_cpus():
    """The ids of the CPUs this process may run on; None where the platform cannot tell."""
    try:
        return set(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return None


_measured = {}  # the last measurement: {"at": time, "cores": n}, reused for MAX_AGE s
MAX_AGE = 30.0
STAT = "/proc/stat"


def idle_cores(window=0.25):
    """Cores of this process's CPU affinity left idle by the machine's other work, measured
    over ``window`` seconds from /proc/stat (at least 1; a measurement is reused for
    ``MAX_AGE`` seconds); all usable cores where /proc/stat cannot be read."""
    now = time.monotonic()
    if _measured and now - _measured["at"] < MAX_AGE:
        return _measured["cores"]
    n = _measure_idle_cores(window)
    _measured.update(at=now, cores=n)
    return n


def _measure_idle_cores(window):
    cores = usable_cores()
    cpus = _usable_cpus()
    try:
        try:
            first = _cpu_times(cpus)
        except ValueError:  # a /proc/stat without this process's CPUs (a container's view)
            cpus = None
            first = _cpu_times()
        time.sleep(window)
        second = _cpu_times(cpus)
    except (OSError, ValueError):
        return cores
    # iowait can step back (the kernel estimates it per CPU): a field that fell adds nothing
    ticks = [max(0, b - a) for a, b in zip(first, second)]
    total = sum(ticks)
    if total <= 0:
        return cores
    idle = ticks[3] + ticks[4]  # idle and iowait: a core waiting for a disk runs nothing
    # the cores that other work keeps busy: on this process's CPUs, else on the machine
    measured = len(cpus) if cpus else os.cpu_count() or cores
    busy_cores = measured * (1 - idle / total)
    # a core counts as busy once other work holds more than about 70% of it, so that a
    # light background load (a shell, a notebook kernel) keeps it in the pool
    return max(1, min(cores, round(cores - busy_cores + 0.2)))


def _cpu_times(cpus=None):
    """The jiffies so far of the CPUs ``cpus`` (ids; None: the whole machine), summed field
    by field: user, nice, system, idle, iowait, irq, softirq, steal (time another virtual
    machine ran on the core: busy, for this process). Guest time is part of user time."""
    with open(STAT) as f:
        lines = [line.split() for line in f if line.startswith("cpu")]
    if cpus is None:
        rows = [fields[1:] for fields in lines if fields[0] == "cpu"]
    else:
        rows = [fields[1:] for fields in lines if fields[0][3:].isdigit()
                and int(fields[0][3:]) in cpus]
        if len(rows) != len(cpus):
            raise ValueError(f"{STAT} lists {len(rows)} of this process's {len(cpus)} CPUs")
    if not rows or min(len(r) for r in rows) < 5:
        raise ValueError(f"unexpected {STAT}: no 'cpu' line with idle and iowait times")
    return [sum(int(r[i]) for r in rows if i < len(r)) for i in range(8)]


def blas_threads():
    """The number of BLAS threads for a training run, or None to leave BLAS's own."""
    setting = os.environ.get(ENV, "").strip().lower() or "auto"  # unset or empty: auto
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
    elif threads is None:
        n = blas_threads()
    else:
        n = int(threads)
        if n < 1:
            raise ValueError(f"thread_policy({threads!r}): use 1 or more threads, or None for "
                             f"{ENV}'s choice")
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
