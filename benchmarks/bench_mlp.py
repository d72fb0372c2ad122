"""Training throughput of the MLP 3072-512-256-10: nnlib's Solver vs Keras 3 (TensorFlow).

Both train with SGD + momentum, batch 128, float32, on the same random data in the same
run. Prints samples/s of each, their ratio, and the fraction of the machine's float32
GEMM peak (measured here with NumPy) that nnlib reaches.

    python benchmarks/bench_mlp.py [--samples 20480] [--epochs 3]
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

DIMS = (3072, 512, 256, 10)


def sgemm_peak(n=2048, repeats=5):
    """Best float32 GEMM rate (FLOP/s) of a square n x n product."""
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    b = a.copy()
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * n ** 3 / best


def _timed(f):
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


def train_flops_per_sample():
    """FLOPs of one training step per sample: forward, dW for every layer, dX but the first."""
    macs = [a * b for a, b in zip(DIMS[:-1], DIMS[1:])]
    return 2 * (2 * sum(macs) + sum(macs[1:]))


def bench_nnlib(X, y, epochs, batch_size):
    from nnlib import FullyConnectedNet, Solver
    model = FullyConnectedNet(DIMS[1:-1], input_dim=DIMS[0], num_classes=DIMS[-1],
                              weight_scale="he", seed=0)
    data = {"X_train": X, "y_train": y, "X_val": X[:1000], "y_val": y[:1000]}
    solver = Solver(model, data, update_rule="sgd_momentum",
                    optim_config={"learning_rate": 1e-3, "momentum": 0.9},
                    num_epochs=1, batch_size=batch_size, verbose=False, seed=0)
    solver.train()  # warm-up epoch
    solver.num_epochs = 1 + epochs
    t = time.perf_counter()
    solver.train()
    return epochs * len(X) / (time.perf_counter() - t)


def bench_keras(X, y, epochs, batch_size):
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((DIMS[0],)),
                              keras.layers.Dense(DIMS[1], activation="relu"),
                              keras.layers.Dense(DIMS[2], activation="relu"),
                              keras.layers.Dense(DIMS[3])])
    model.compile(optimizer=keras.optimizers.SGD(1e-3, momentum=0.9),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    model.fit(X, y, batch_size=batch_size, epochs=1, verbose=0)  # warm-up (tracing)
    t = time.perf_counter()
    model.fit(X, y, batch_size=batch_size, epochs=epochs, verbose=0)
    return epochs * len(X) / (time.perf_counter() - t)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20480)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--skip-keras", action="store_true")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    X = rng.standard_normal((args.samples, DIMS[0]), dtype=np.float32)
    y = rng.integers(0, DIMS[-1], args.samples)

    peak = sgemm_peak()
    ours = bench_nnlib(X, y, args.epochs, args.batch_size)
    frac = ours * train_flops_per_sample() / peak
    print(f"sgemm peak            {peak / 1e9:8.1f} GFLOP/s")
    print(f"nnlib Solver.train    {ours:8.0f} samples/s  ({frac:.0%} of sgemm peak)")
    results = {"sgemm_gflops": round(peak / 1e9, 1), "nnlib_samples_per_s": round(ours),
               "nnlib_fraction_of_peak": round(frac, 3), "batch_size": args.batch_size,
               "samples": args.samples, "epochs": args.epochs}
    if not args.skip_keras:
        theirs = bench_keras(X, y, args.epochs, args.batch_size)
        print(f"Keras 3 model.fit     {theirs:8.0f} samples/s")
        print(f"ratio nnlib / Keras   {ours / theirs:8.2f}x")
        results.update(keras_samples_per_s=round(theirs), ratio=round(ours / theirs, 2))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
