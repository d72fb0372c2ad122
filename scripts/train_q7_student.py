"""Distil Q6's ensemble into one small CNN outside the notebook, with the settings of the
Q7 notebook's full profile, so that the long run can train in the background (an
interrupted run resumes from its ``backup/``). The notebook then reads the finished run
back instead of training it again, provided the settings and the run folder match; both
train through ``nnlib.cnn.train_student``. ``--gpu-run N`` takes the epochs and patience
of the full profile's GPU run N (``nnlib.cnn.Q7_BUDGETS``; the control run trains on the
true classes: temperature 1, alpha 0), each option given here in their place.

    python scripts/train_q7_student.py --temperature 4 --alpha 0.5 --epochs 3 \\
        --run-dir runs/full/q7/cnn_T4_a0.5_3ep

On a GPU machine without TensorFlow or the image folders (Keras's JAX backend): write the
split, the teacher's probabilities and the starting weights here once, carry the file
there, and train from it:

    python scripts/train_q7_student.py --write-arrays q7.npz.xz
    KERAS_BACKEND=jax python scripts/train_q7_student.py --arrays q7.npz.xz \\
        --temperature 2 --alpha 0.5 --gpu-run 0 --run-dir OUT   # --epochs 150 --patience 50

With ``--online`` the teacher itself (``--teacher``, Q6's ensemble) labels each augmented
batch beside the student ("consistent teaching"), instead of its cached probabilities on
the training images as they are; that needs a GPU (on two CPU cores the teacher labels
about 20 images/s).
"""
import argparse
from pathlib import Path

from nnlib.cnn import ARCHITECTURES, Q7_BUDGETS, build_cnn, train_student
from nnlib.cnn.budgets import START_ARCH, START_SEED, STUDENT_ARCH
from nnlib.cnn.stored import best_weights
from nnlib.cnn.teacher import teacher_probabilities
from nnlib.data import load_fer2013
from nnlib.io import read_arrays, write_arrays
from nnlib.paths import MODELS_DIR

GPU_RUNS = Q7_BUDGETS["full"]["gpu_runs"]

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
parser.add_argument("--temperature", type=float)
parser.add_argument("--alpha", type=float, help="weight of the soft targets")
parser.add_argument("--epochs", type=int)
parser.add_argument("--gpu-run", type=int, choices=range(len(GPU_RUNS)),
                    help="the epochs and patience (and for the control, temperature and "
                         "alpha) of the notebook's GPU run of this number")
parser.add_argument("--lr", type=float, help="default: train_student's")
parser.add_argument("--patience", type=int, help="default: train_cnn's")
parser.add_argument("--arch", default=STUDENT_ARCH, choices=sorted(ARCHITECTURES))
parser.add_argument("--start", default=f"{START_ARCH}:{START_SEED}",
                    help="ARCH:SEED of the Q6 member whose slimmed weights start the student")
parser.add_argument("--run-dir", type=Path)
parser.add_argument("--arrays", help="read the data from this .npz[.xz] (--write-arrays)")
parser.add_argument("--online", action="store_true",
                    help="the teacher labels each augmented batch (consistent teaching)")
parser.add_argument("--teacher", type=Path, default=MODELS_DIR / "fer2013_cnn.keras",
                    help="the teacher's .keras file, for --online (default: %(default)s)")
parser.add_argument("--write-arrays", help="write the split, the teacher's probabilities and "
                                           "the start's weights to this .npz[.xz]")
args = parser.parse_args()
if args.gpu_run is not None:
    run_spec = GPU_RUNS[args.gpu_run]
    defaults = dict(epochs=run_spec["epochs"], patience=run_spec.get("patience"))
    if run_spec.get("control"):  # trained on the true classes, as the notebook does
        defaults.update(temperature=1.0, alpha=0.0)
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
start_arch, start_seed = args.start.split(":")
start = build_cnn(start_arch)
SPLIT = ("X_train", "y_train", "X_val", "y_val")

if args.arrays:
    f = read_arrays(args.arrays)
    data, soft = {k: f[k] for k in SPLIT}, f["teacher"]
    start.set_weights([f[f"start_{i}"] for i in range(len(start.weights))])
else:
    fer = load_fer2013(val_size=0.1, seed=0)  # the Q7 notebook's split (Q5's and Q6's)
    data = {k: fer[k] for k in SPLIT}
    soft = teacher_probabilities(MODELS_DIR / "fer2013_cnn.keras", fer["X_train"],
                                 MODELS_DIR / "fer2013_cnn_teacher_probs", progress=True)
    start.set_weights(best_weights(MODELS_DIR / "fer2013_cnn_members" / f"seed{start_seed}"))
if args.write_arrays:
    write_arrays(args.write_arrays, **data, teacher=soft,
                 **{f"start_{i}": w for i, w in enumerate(start.get_weights())})
    raise SystemExit(0)
if None in (args.temperature, args.alpha, args.epochs, args.run_dir):
    parser.error("--temperature, --alpha, --epochs and --run-dir are required to train")

import keras  # noqa: E402  (after nnlib.cnn has chosen the default backend)

if args.online:
    from nnlib.cnn.io import load_keras_model
    soft = load_keras_model(args.teacher)
# XLA for JAX (without it every op runs alone); on TensorFlow Q6 measured it slower
_, run = train_student(start, args.arch, data, soft, args.run_dir, args.temperature,
                       args.alpha, args.epochs, patience=args.patience,
                       jit_compile=keras.backend.backend() == "jax",
                       **({} if args.lr is None else dict(lr=args.lr)))
print(f"{args.run_dir}: {run.epochs} epochs, {run.seconds / 60:.1f} min, "
      f"{run.images_per_s:.0f} images/s on {run.device}; best validation accuracy "
      f"{max(run.history['val_accuracy']):.4f}", flush=True)
