import numpy as np
import pytest
from threadpoolctl import threadpool_info

from nnlib import FullyConnectedNet, Solver, threads
from nnlib.threads import blas_threads, idle_cores, thread_policy


def blas_now():
    return {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}


@pytest.fixture(autouse=True)
def fresh(monkeypatch):
    monkeypatch.setattr(threads, "_measured", {})


def fake_stat(monkeypatch, busy_fraction, cores=2):
    """/proc/stat as it reads when ``busy_fraction`` of the machine's time is busy."""
    ticks = iter([[0] * 7, [int(100 * busy_fraction * cores), 0, 0,
                            int(100 * (1 - busy_fraction) * cores), 0, 0, 0]])
    monkeypatch.setattr(threads, "_cpu_times", lambda: next(ticks))
    monkeypatch.setattr(threads, "usable_cores", lambda: cores)
    monkeypatch.setattr(threads.os, "cpu_count", lambda: cores)


@pytest.mark.parametrize("busy, expected", [(0.02, 2), (0.5, 1), (0.3, 2), (0.98, 1)])
def test_idle_cores_leave_out_the_cores_others_use(monkeypatch, busy, expected):
    fake_stat(monkeypatch, busy)
    assert idle_cores(window=0) == expected


def test_the_environment_overrides_the_choice(monkeypatch):
    fake_stat(monkeypatch, 0.5)
    monkeypatch.setenv("NNLIB_THREADS", "auto")
    assert blas_threads() == 1
    monkeypatch.setenv("NNLIB_THREADS", "3")
    assert blas_threads() == 3
    monkeypatch.setenv("NNLIB_THREADS", "all")
    assert blas_threads() is None
    for bad in ("0", "many"):
        monkeypatch.setenv("NNLIB_THREADS", bad)
        with pytest.raises(ValueError, match="NNLIB_THREADS"):
            blas_threads()


def test_policy_sets_blas_threads_for_the_block_only():
    if not blas_now():
        pytest.skip("no BLAS library that threadpoolctl can control")
    before = blas_now()
    with thread_policy(1) as n:
        assert n == 1 and blas_now() == {1}
        with thread_policy() as inner:  # an inner block keeps the outer choice
            assert inner == 1 and blas_now() == {1}
    assert blas_now() == before


def test_solver_trains_under_the_policy(monkeypatch):
    if not blas_now():
        pytest.skip("no BLAS library that threadpoolctl can control")
    monkeypatch.setenv("NNLIB_THREADS", "1")
    rng = np.random.default_rng(0)
    data = {"X_train": rng.standard_normal((40, 5)), "y_train": rng.integers(0, 3, 40),
            "X_val": rng.standard_normal((10, 5)), "y_val": rng.integers(0, 3, 10)}
    solver = Solver(FullyConnectedNet([4], input_dim=5, num_classes=3, seed=0), data,
                    num_epochs=1, batch_size=10, verbose=False)
    seen, step = [], solver.step
    monkeypatch.setattr(solver, "step", lambda X, y: seen.append(blas_now()) or step(X, y))
    solver.train()
    assert seen and all(s == {1} for s in seen)
