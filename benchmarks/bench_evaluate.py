"""Where the time of ``python -m nnlib.evaluate`` goes for a saved Keras model.

Measures, in one run: the whole command (Python and TensorFlow start-up included), then
in this process the import, the model's loading, the decoding of the images, and the
prediction of each member of an ensemble under each test-time view; and compares the
prediction time with the arithmetic lower bound (the model's multiply-adds at the
float32 GEMM peak measured here).

    python benchmarks/bench_evaluate.py --model models/fer2013_cnn.keras \\
        --data $NNLIB_DATA/fer2013 [--split PublicTest] [--json OUT]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_mlp import sgemm_peak  # noqa: E402

from nnlib.atomic import write_text  # noqa: E402


def conv_dense_macs(model):
    """Multiply-adds of one image through ``model`` (convolutions and dense layers of
    every nested model; each nested model counted once per call in its parent)."""
    total = 0
    for layer in model.layers:
        if hasattr(layer, "layers"):  # a nested model (a member, or a member's wrapper)
            total += conv_dense_macs(layer) * max(1, len(getattr(layer, "_inbound_nodes", [1])))
            continue
        kind = type(layer).__name__
        if kind == "Conv2D":
            k = layer.kernel.shape  # (kh, kw, in, out)
            out = layer.output.shape  # (None, h, w, out)
            total += int(np.prod(k)) * out[1] * out[2]
        elif kind == "Dense":
            total += int(np.prod(layer.kernel.shape))
    return total


def timed(f):
    t = time.perf_counter()
    out = f()
    return out, time.perf_counter() - t


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--split", default="test")
    parser.add_argument("--json")
    args = parser.parse_args(argv)

    cmd = [sys.executable, "-m", "nnlib.evaluate", "--model", args.model, "--data", args.data,
           "--split", args.split]
    run, cli_s = timed(lambda: subprocess.run(cmd, capture_output=True, text=True))
    if run.returncode:
        sys.exit(run.stderr)
    n = int(run.stdout.split(" on ")[1].split(" images")[0].replace(",", ""))
    print(f"python -m nnlib.evaluate: {cli_s:6.1f} s for {n:,} images "
          f"({n / cli_s:.0f} images/s end to end)")

    _, import_s = timed(lambda: __import__("nnlib.cnn"))
    from nnlib.cnn import load_keras_model
    from nnlib.cnn.augment import as_images
    from nnlib.evaluate import load_fer_eval_data
    from nnlib.loaded import LoadedModel
    model, load_s = timed(lambda: load_keras_model(args.model))
    (X, y, _, _), read_s = timed(lambda: load_fer_eval_data(args.data, args.split))
    _, predict_s = timed(lambda: LoadedModel(args.model).predict(X))
    print(f"  import {import_s:5.1f} s | load model {load_s:5.1f} s | read images {read_s:5.1f} s"
          f" | predict {predict_s:5.1f} s ({len(X) / predict_s:.0f} images/s)")

    images = as_images(X)
    members = [m for m in model.layers if hasattr(m, "layers")]
    inner = members[0].layers if len(members) == 1 else []
    parts = [m for m in inner if hasattr(m, "layers")] or members
    for m in parts:
        _, s = timed(lambda m=m: m.predict(images, batch_size=256, verbose=0))
        print(f"  {m.name:>12}: {m.count_params():>10,} parameters, {s:5.1f} s a view "
              f"({conv_dense_macs(m) / 1e6:7.1f} M multiply-adds an image)")
    macs = conv_dense_macs(model)
    peak = sgemm_peak()
    bound = 2 * macs * len(X) / peak
    print(f"  the saved model: {macs / 1e9:.2f} G multiply-adds an image (views included); "
          f"at the sgemm peak ({peak / 1e9:.0f} GFLOP/s) predicting {len(X):,} images takes "
          f"at least {bound:.1f} s; measured {predict_s:.1f} s ({bound / predict_s:.0%} of peak)")
    if args.json:
        write_text(args.json, json.dumps({
            "cli_seconds": round(cli_s, 1), "images": n, "predict_seconds": round(predict_s, 1),
            "import_seconds": round(import_s, 1), "load_seconds": round(load_s, 1),
            "read_seconds": round(read_s, 1), "gmacs_per_image": round(macs / 1e9, 3),
            "sgemm_gflops": round(peak / 1e9, 1), "lower_bound_seconds": round(bound, 1),
            "cores": os.cpu_count()}, indent=2) + "\n")


if __name__ == "__main__":
    main()
