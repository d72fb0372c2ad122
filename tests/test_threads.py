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


def stat_text(per_cpu):
    """/proc/stat with the machine's line and one line per CPU; ``per_cpu``: {id: jiffies
    as (user, nice, system, idle, iowait, irq, softirq, steal)}."""
    total = [sum(col) for col in zip(*per_cpu.values())]
    lines = [" ".join(["cpu", ""] + [str(v) for v in total + [0, 0]])]
    lines += [" ".join([f"cpu{i}"] + [str(v) for v in t + (0, 0)]) for i, t in per_cpu.items()]
    return "\n".join(lines + ["intr 1 2 3", "ctxt 4", "cpu_weird line", ""])


def fake_machine(monkeypatch, tmp_path, first, second, cpus=None, count=None):
    """/proc/stat reads ``first`` until the measurement's sleep, ``second`` after it; the
    process may run on ``cpus`` (default: all of them)."""
    stat = tmp_path / "stat"
    stat.write_text(stat_text(first))
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        stat.write_text(stat_text(second))
    monkeypatch.setattr(threads, "STAT", str(stat))
    monkeypatch.setattr(threads.time, "sleep", sleep)
    def affinity(pid):
        assert pid == 0  # this process
        return set(first) if cpus is None else set(cpus)
    monkeypatch.setattr(threads.os, "sched_getaffinity", affinity)
    monkeypatch.setattr(threads.os, "cpu_count", lambda: len(first) if count is None else count)
    return slept


def idle_ticks(idle=100, iowait=0):
    return (0, 0, 0, idle, iowait, 0, 0, 0)


def busy_ticks(user=100, system=0, steal=0):
    return (user, 0, system, 0, 0, 0, 0, steal)


def mix(busy, n=100):
    """n jiffies of which ``busy`` were spent on work (user), the rest idle."""
    return (busy, 0, 0, n - busy, 0, 0, 0, 0)


ZERO = (0,) * 8


@pytest.mark.parametrize("busy, expected", [(2, 2), (50, 1), (30, 2), (98, 1), (34, 2),
                                            (36, 1)])
def test_idle_cores_leave_out_the_cores_others_use(monkeypatch, tmp_path, busy, expected):
    # the machine's load spread evenly over 2 cores: busy% of each; one core counts as busy
    # once other work holds more than 0.7 of a core (here 2 x 35%)
    fake_machine(monkeypatch, tmp_path, {0: ZERO, 1: ZERO}, {0: mix(busy), 1: mix(busy)})
    assert idle_cores(window=0) == expected


def test_iowait_counts_as_idle(monkeypatch, tmp_path):
    # four cores: one busy, three waiting for the disk (idle for BLAS)
    first = dict.fromkeys(range(4), ZERO)
    second = {0: busy_ticks(), 1: idle_ticks(0, 100), 2: idle_ticks(40, 60), 3: idle_ticks()}
    fake_machine(monkeypatch, tmp_path, first, second)
    assert idle_cores(window=0) == 3


def test_an_iowait_counter_that_steps_back_adds_nothing(monkeypatch, tmp_path):
    # the kernel's iowait estimate can fall between two reads; the negative difference would
    # shrink the measured total and the idle time, and two idle cores of three look busy
    first = {0: (0, 0, 0, 0, 500, 0, 0, 0), 1: (0, 0, 0, 0, 500, 0, 0, 0), 2: ZERO}
    second = {0: (0, 0, 0, 100, 400, 0, 0, 0), 1: (0, 0, 0, 100, 400, 0, 0, 0),
              2: busy_ticks(100)}
    fake_machine(monkeypatch, tmp_path, first, second)
    assert idle_cores(window=0) == 2


def test_stolen_time_counts_as_busy(monkeypatch, tmp_path):
    first = {0: ZERO, 1: ZERO}
    fake_machine(monkeypatch, tmp_path, first, {0: busy_ticks(0, steal=100), 1: idle_ticks()})
    assert idle_cores(window=0) == 1


def test_every_time_field_counts(monkeypatch, tmp_path):
    # cpu0: nice, system, irq and softirq (busy); cpu1 idle: one core is busy
    first = {0: ZERO, 1: ZERO}
    fake_machine(monkeypatch, tmp_path, first, {0: (0, 25, 25, 0, 0, 25, 25, 0), 1: idle_ticks()})
    assert idle_cores(window=0) == 1
    # busy in nothing but nice time on both cores (a niced job): no core idle, still 1
    threads._measured.clear()
    fake_machine(monkeypatch, tmp_path, first, {0: (0, 100, 0, 0, 0, 0, 0, 0),
                                                1: (0, 100, 0, 0, 0, 0, 0, 0)})
    assert idle_cores(window=0) == 1


def test_only_this_process_s_cpus_count(monkeypatch, tmp_path):
    # cpus 0 and 1 fully busy with other work, 2 and 3 (this process's) idle
    first = dict.fromkeys(range(4), ZERO)
    second = {0: busy_ticks(), 1: busy_ticks(), 2: idle_ticks(), 3: idle_ticks()}
    fake_machine(monkeypatch, tmp_path, first, second, cpus={2, 3})
    assert idle_cores(window=0) == 2
    assert threads.usable_cores() == 2
    threads._measured.clear()
    fake_machine(monkeypatch, tmp_path, first, second, cpus={1, 2, 3})
    assert idle_cores(window=0) == 2
    # a quarter of this process's 4 cores busy (one core), the machine's 8 half busy
    first = dict.fromkeys(range(8), ZERO)
    second = {0: busy_ticks(), **{i: idle_ticks() for i in (1, 2, 3)},
              **{i: busy_ticks() for i in range(4, 8)}}
    threads._measured.clear()
    fake_machine(monkeypatch, tmp_path, first, second, cpus={0, 1, 2, 3})
    assert idle_cores(window=0) == 3


def test_a_stat_file_without_this_process_s_cpus_uses_the_machine_line(monkeypatch, tmp_path):
    # a container's /proc/stat numbers its CPUs 0.. while the affinity names the host's ids;
    # the machine's busy cores may then be this process's: each one counts against it
    first = dict.fromkeys(range(4), ZERO)
    for second, expected in (({0: busy_ticks(), 1: idle_ticks(), 2: idle_ticks(),
                               3: idle_ticks()}, 1),
                             ({0: mix(20), 1: idle_ticks(), 2: idle_ticks(), 3: idle_ticks()}, 2)):
        threads._measured.clear()
        fake_machine(monkeypatch, tmp_path, first, second, cpus={12, 13}, count=4)
        assert idle_cores(window=0) == expected


def test_the_measurement_window_and_its_reuse(monkeypatch, tmp_path):
    slept = fake_machine(monkeypatch, tmp_path, {0: ZERO, 1: ZERO}, {0: busy_ticks(),
                                                                     1: idle_ticks()})
    now = [1000.0]
    monkeypatch.setattr(threads.time, "monotonic", lambda: now[0])
    assert idle_cores() == 1 and slept == [0.25]  # the default window
    now[0] += threads.MAX_AGE - 0.01
    assert idle_cores(window=3) == 1 and slept == [0.25]  # reused, not measured again
    now[0] += 0.01
    assert idle_cores(window=3) == 2 and slept == [0.25, 3]  # MAX_AGE old: measured again
    assert threads._measured == {"at": now[0], "cores": 2}
    assert threads.MAX_AGE == 30.0


def test_an_unreadable_or_idle_stat_gives_every_usable_core(monkeypatch, tmp_path):
    fake_machine(monkeypatch, tmp_path, {0: ZERO, 1: ZERO, 2: ZERO}, {0: ZERO, 1: ZERO, 2: ZERO})
    assert idle_cores(window=0) == 3  # no time passed: nothing to measure
    threads._measured.clear()
    monkeypatch.setattr(threads, "STAT", str(tmp_path / "missing"))
    assert idle_cores(window=0) == 3
    for text in ("intr 1 2\n", "cpu  1 2 3 4\ncpu0 1 2 3 4\ncpu1 1 2 3 4\ncpu2 1 2 3 4\n",
                 "cpu  1 2 x 4 5\ncpu0 1 2 x 4 5\n"):
        (tmp_path / "stat").write_text(text)
        monkeypatch.setattr(threads, "STAT", str(tmp_path / "stat"))
        threads._measured.clear()
        assert idle_cores(window=0) == 3, text
    # lines without iowait (a kernel older than 2.6) are refused, even when they change
    before, after = "cpu  0 0 0 0\ncpu{i} 0 0 0 0\n", "cpu  300 0 0 0\ncpu{i} 100 0 0 0\n"
    (tmp_path / "stat").write_text("".join(before.format(i=i) for i in range(3)))
    monkeypatch.setattr(threads.time, "sleep", lambda s: (tmp_path / "stat").write_text(
        "".join(after.format(i=i) for i in range(3))))
    threads._measured.clear()
    assert idle_cores(window=0) == 3
    with pytest.raises(ValueError, match=r"^unexpected .*stat: no 'cpu' line with idle and "
                                         r"iowait times$"):
        threads._cpu_times()


def test_one_jiffy_is_a_measurement(monkeypatch, tmp_path):
    fake_machine(monkeypatch, tmp_path, {0: ZERO, 1: ZERO}, {0: busy_ticks(1), 1: ZERO})
    assert idle_cores(window=0) == 1  # all the time measured was busy


def test_cpu_times_sum_the_chosen_cpus(monkeypatch, tmp_path):
    (tmp_path / "stat").write_text(stat_text({0: (1, 2, 3, 4, 5, 6, 7, 8),
                                              1: (10, 20, 30, 40, 50, 60, 70, 80),
                                              2: (100, 0, 0, 0, 0, 0, 0, 0)}))
    monkeypatch.setattr(threads, "STAT", str(tmp_path / "stat"))
    assert threads._cpu_times() == [111, 22, 33, 44, 55, 66, 77, 88]
    assert threads._cpu_times({0, 2}) == [101, 2, 3, 4, 5, 6, 7, 8]
    assert threads._cpu_times({1}) == [10, 20, 30, 40, 50, 60, 70, 80]
    with pytest.raises(ValueError, match=r"lists 1 of this process's 2 CPUs"):
        threads._cpu_times({1, 5})
    # an old kernel's lines without steal (or irq) times: the missing ones count as 0
    (tmp_path / "stat").write_text("cpu  1 2 3 4 5\ncpu0 1 2 3 4 5 6 7\n")
    assert threads._cpu_times() == [1, 2, 3, 4, 5, 0, 0, 0]
    assert threads._cpu_times({0}) == [1, 2, 3, 4, 5, 6, 7, 0]


def test_without_cpu_affinity_the_machine_s_cores_count(monkeypatch, tmp_path):
    fake_machine(monkeypatch, tmp_path, {0: ZERO, 1: ZERO, 2: ZERO},
                 {0: busy_ticks(), 1: idle_ticks(), 2: idle_ticks()})

    def no_affinity(pid):
        raise AttributeError("sched_getaffinity")
    monkeypatch.setattr(threads.os, "sched_getaffinity", no_affinity)
    assert threads.usable_cores() == 3 and threads._usable_cpus() is None
    assert idle_cores(window=0) == 2
    monkeypatch.setattr(threads.os, "cpu_count", lambda: None)
    assert threads.usable_cores() == 1


def test_the_real_machine_gives_a_usable_count():
    n = idle_cores(window=0.01)
    assert 1 <= n <= threads.usable_cores()


def test_the_environment_overrides_the_choice(monkeypatch, tmp_path):
    fake_machine(monkeypatch, tmp_path, {0: ZERO, 1: ZERO}, {0: mix(50), 1: mix(50)})
    monkeypatch.delenv("NNLIB_THREADS", raising=False)
    assert blas_threads() == 1  # auto by default
    for auto in ("auto", " AUTO ", "", " "):
        monkeypatch.setenv("NNLIB_THREADS", auto)
        assert blas_threads() == 1
    monkeypatch.setenv("NNLIB_THREADS", "3")
    assert blas_threads() == 3
    monkeypatch.setenv("NNLIB_THREADS", "1")
    assert blas_threads() == 1
    for everything in ("all", "All"):
        monkeypatch.setenv("NNLIB_THREADS", everything)
        assert blas_threads() is None
    for bad in ("0", "-2", "many", "1.5"):
        monkeypatch.setenv("NNLIB_THREADS", bad)
        with pytest.raises(ValueError, match=rf"^NNLIB_THREADS={bad.lower()!r}: use a number of "
                                             r"threads \(1 or more\), 'auto' or 'all'$"):
            blas_threads()


def need_blas():
    if not blas_now():
        pytest.skip("no BLAS library that threadpoolctl can control")


def test_policy_sets_blas_threads_for_the_block_only():
    need_blas()
    before = blas_now()
    with thread_policy(1) as n:
        assert n == 1 and blas_now() == {1}
        with thread_policy() as inner:  # an inner block keeps the outer choice
            assert inner == 1 and blas_now() == {1}
    assert blas_now() == before and threads._active == []


def test_nested_policies_restore_the_outer_setting_also_on_errors():
    need_blas()
    before = blas_now()
    with thread_policy(1):
        with pytest.raises(RuntimeError):
            with thread_policy(2) as inner:
                assert inner == 2 and blas_now() == {2} and threads._active == [1, 2]
                raise RuntimeError("training failed")
        assert blas_now() == {1} and threads._active == [1]
        with thread_policy() as same:
            assert same == 1
    assert blas_now() == before and threads._active == []
    with pytest.raises(KeyboardInterrupt):
        with thread_policy(1):
            raise KeyboardInterrupt
    assert blas_now() == before and threads._active == []


def test_a_policy_of_blas_s_own_setting(monkeypatch):
    need_blas()
    before = blas_now()
    monkeypatch.setenv("NNLIB_THREADS", "all")
    with thread_policy() as n:
        assert n is None and blas_now() == before and threads._active == [None]
        with thread_policy() as inner:  # inside: still BLAS's own
            assert inner is None
        with thread_policy(1) as one:
            assert one == 1 and blas_now() == {1}
        assert blas_now() == before
    monkeypatch.setenv("NNLIB_THREADS", "1")
    with thread_policy() as n:
        assert n == 1 and blas_now() == {1}
    with thread_policy("2") as n:
        assert n == 2


@pytest.mark.parametrize("bad", [0, -1])
def test_a_policy_needs_a_thread(bad):
    with pytest.raises(ValueError, match=rf"^thread_policy\({bad}\): use 1 or more threads, or "
                                         r"None for NNLIB_THREADS's choice$"):
        with thread_policy(bad):
            pass
    assert threads._active == []


def test_solver_trains_under_the_policy(monkeypatch):
    need_blas()
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
