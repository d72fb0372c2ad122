"""Training throughput of the MLP 3072-512-256-10: nnlib's Solver vs Keras 3 (TensorFlow).

Both train with SGD + momentum, batch 128, float32, on the same random data in the same run,
twice: on the idle machine, and while a busy process of its own keeps one core busy (started
before and stopped after that case). nnlib runs as it trains (its momentum update compiled
into one pass by Numba), with NumPy's update (the same bits) and, idle, with an update rule
that does nothing (the bound a free update would set). Keras runs twice:
``model.fit`` as a user compiles it with an accuracy metric, and with no metric (the same
work as nnlib's step: forward, backward, update; nnlib measures accuracy once an epoch on
1,000 training and 1,000 validation samples, which its figure includes). Each case is
measured ``--rounds`` times, the variants interleaved; printed: the median samples/s of
each, the spread (lowest to highest), the ratios of the medians, and the fraction of the
machine's float32 GEMM peak (measured here with NumPy) that nnlib reaches, and the ceiling
its step's matrix products alone set (timed alone, same shapes); under load also nnlib with
BLAS's own thread count (NNLIB_THREADS=all), which is what nnlib's thread policy
(nnlib.threads) replaces.

    python benchmarks/bench_mlp.py [--samples 20480] [--epochs 3] [--rounds 5] [--json OUT]
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from nnlib.atomic import write_text

DIMS = (3072, 512, 256, 10)


def sgemm_peak(n=2048, repeats=5):
    """Best float32 GEMM rate (FLOP/s) of a square n x n product."""
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    b = a.copy()
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * n ** 3 / best


def processor():
    """The CPU's model name (Linux), e.g. "AMD EPYC 7B13"; "unknown" elsewhere."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown"


def _timed(f):
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


def products_ceiling(batch_size, repeats=50):
    """Samples/s of the matrix products of a training step alone (forward for every layer,
    dW for every layer, dX for all but the first), at nnlib's float32: what a step could
    reach with its elementwise work, its update and its evaluation free."""
    rng = np.random.default_rng(0)
    W = [rng.standard_normal((a, b), dtype=np.float32) for a, b in zip(DIMS[:-1], DIMS[1:])]
    h = [rng.standard_normal((batch_size, d), dtype=np.float32) for d in DIMS]
    dW = [np.empty_like(w) for w in W]

    def step():
        for i, w in enumerate(W):
            h[i] @ w
            np.matmul(h[i].T, h[i + 1], out=dW[i])
            if i:
                h[i + 1] @ w.T

    step()
    best = min(_timed(lambda: [step() for _ in range(10)]) / 10 for _ in range(repeats // 10))
    return batch_size / best


def train_flops_per_sample():
    """FLOPs of one training step per sample: forward, dW for every layer, dX but the first."""
    macs = [a * b for a, b in zip(DIMS[:-1], DIMS[1:])]
    return 2 * (2 * sum(macs) + sum(macs[1:]))


def no_update(w, dw, config=None):
    """An update rule that changes nothing: the step with its update free (a bound)."""
    return w, {} if config is None else config


def bench_nnlib(X, y, epochs, batch_size, update="fused"):
    """Samples/s of ``Solver.train`` with SGD + momentum. update: "fused" (as nnlib trains:
    nnlib._fused's compiled pass), "numpy" (NumPy's update, the same bits) or "none"
    (``no_update``: what the step would reach if its update cost nothing)."""
    from nnlib import FullyConnectedNet, Solver, _fused
    if update == "fused" and not _fused.ENABLED:
        sys.exit("bench_mlp: Numba is not installed; pip install numba (or make setup)")
    was, _fused.ENABLED = _fused.ENABLED, update == "fused"
    model = FullyConnectedNet(DIMS[1:-1], input_dim=DIMS[0], num_classes=DIMS[-1],
                              weight_scale="he", seed=0)
    data = {"X_train": X, "y_train": y, "X_val": X[:1000], "y_val": y[:1000]}
    solver = Solver(model, data, update_rule=no_update if update == "none" else "sgd_momentum",
                    optim_config={"learning_rate": 1e-3, "momentum": 0.9},
                    num_epochs=1, batch_size=batch_size, verbose=False, seed=0)
    try:
        solver.train()  # warm-up epoch
        solver.num_epochs = 1 + epochs
        t = time.perf_counter()
        solver.train()
        return epochs * len(X) / (time.perf_counter() - t)
    finally:
        _fused.ENABLED = was


def bench_keras(X, y, epochs, batch_size, metrics=("accuracy",)):
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((DIMS[0],)),
                              keras.layers.Dense(DIMS[1], activation="relu"),
                              keras.layers.Dense(DIMS[2], activation="relu"),
                              keras.layers.Dense(DIMS[3])])
    model.compile(optimizer=keras.optimizers.SGD(1e-3, momentum=0.9),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=list(metrics))
    model.fit(X, y, batch_size=batch_size, epochs=1, verbose=0)  # warm-up (tracing)
    t = time.perf_counter()
    model.fit(X, y, batch_size=batch_size, epochs=epochs, verbose=0)
    return epochs * len(X) / (time.perf_counter() - t)


@contextlib.contextmanager
def one_core_busy(seconds=3600):
    """A process that keeps one core busy (a spinning loop) for the block, at most
    ``seconds``; stopped when the block ends."""
    spin = f"import time\nend = time.time() + {seconds}\nwhile time.time() < end: pass"
    proc = subprocess.Popen([sys.executable, "-c", spin])
    try:
        time.sleep(1.0)  # let it take its core
        yield proc
    finally:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def env(name, value):
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name)
        else:
            os.environ[name] = old


VARIANTS = {  # name -> (label, samples/s of one round)
    "nnlib": ("nnlib Solver.train", lambda X, y, a: bench_nnlib(X, y, a.epochs, a.batch_size)),
    "nnlib_numpy": ("nnlib, NumPy's update",
                    lambda X, y, a: bench_nnlib(X, y, a.epochs, a.batch_size, "numpy")),
    "nnlib_no_update": ("nnlib, update free (bound)",
                        lambda X, y, a: bench_nnlib(X, y, a.epochs, a.batch_size, "none")),
    "keras": ("Keras fit, accuracy metric",
              lambda X, y, a: bench_keras(X, y, a.epochs, a.batch_size)),
    "keras_plain": ("Keras fit, no metric",
                    lambda X, y, a: bench_keras(X, y, a.epochs, a.batch_size, metrics=())),
}


def measure(X, y, args, label, extra=()):
    """Each variant (and the ``extra`` ones) ``args.rounds`` times, interleaved; returns a
    row of medians, spreads and ratios (nnlib's median over each other variant's)."""
    from nnlib import threads
    names = ["nnlib", "nnlib_numpy", *extra] + (
        [] if args.skip_keras else ["keras", "keras_plain"])
    rates = {n: [] for n in names}
    for _ in range(args.rounds):
        for n in names:
            threads._measured.clear()  # nnlib measures the idle cores afresh each time
            rates[n].append(VARIANTS[n][1](X, y, args))
    row = {}
    for n in names:
        med = statistics.median(rates[n])
        row[n] = {"median": round(med), "low": round(min(rates[n])), "high": round(max(rates[n]))}
        print(f"{label:6} {VARIANTS[n][0]:28} {med:8.0f} samples/s "
              f"({min(rates[n]):.0f} to {max(rates[n]):.0f})")
    for n in names[1:]:
        row[f"ratio_{n}"] = round(row["nnlib"]["median"] / row[n]["median"], 2)
        per_round = [a / b for a, b in zip(rates["nnlib"], rates[n])]
        row[f"ratio_{n}_rounds"] = [round(min(per_round), 2), round(max(per_round), 2)]
        print(f"{label:6} ratio nnlib / {VARIANTS[n][0]:15} {row[f'ratio_{n}']:.2f}x "
              f"(rounds {min(per_round):.2f} to {max(per_round):.2f})")
    return row["nnlib"]["median"], row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20480)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--skip-keras", action="store_true")
    parser.add_argument("--skip-loaded", action="store_true")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    X = rng.standard_normal((args.samples, DIMS[0]), dtype=np.float32)
    y = rng.integers(0, DIMS[-1], args.samples)

    peak = sgemm_peak()
    print(f"sgemm peak            {peak / 1e9:8.1f} GFLOP/s ({os.cpu_count()} cores)")
    ours, idle = measure(X, y, args, "idle", extra=["nnlib_no_update"])
    frac = ours * train_flops_per_sample() / peak
    bound = idle["nnlib_no_update"]["median"] * train_flops_per_sample() / peak
    ceiling = products_ceiling(args.batch_size)
    print(f"idle   nnlib at {frac:.0%} of the sgemm peak; with its update free {bound:.0%}")
    print(f"idle   the step's matrix products alone {ceiling:8.0f} samples/s: nnlib reaches "
          f"{ours / ceiling:.0%} of it" + "".join(
              f"; it is {ceiling / idle[n]['median']:.2f}x {VARIANTS[n][0]}"
              for n in ("keras", "keras_plain") if n in idle))
    results = {"processor": processor(), "sgemm_gflops": round(peak / 1e9, 1),
               "cores": os.cpu_count(),
               "batch_size": args.batch_size, "samples": args.samples, "epochs": args.epochs,
               "rounds": args.rounds,
               "idle": dict(idle, nnlib_fraction_of_peak=round(frac, 3),
                            no_update_fraction_of_peak=round(bound, 3),
                            products_ceiling=round(ceiling),
                            nnlib_fraction_of_ceiling=round(ours / ceiling, 3))}
    if not args.skip_loaded:
        with one_core_busy():
            _, loaded = measure(X, y, args, "loaded")
            with env("NNLIB_THREADS", "all"):
                plain = statistics.median(bench_nnlib(X, y, args.epochs, args.batch_size)
                                          for _ in range(args.rounds))
            print(f"loaded nnlib, BLAS's own threads {plain:8.0f} samples/s")
        results["loaded"] = dict(loaded, nnlib_blas_default_samples_per_s=round(plain))
    if args.json:
        write_text(args.json, json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
