"""Distil Q6's ensemble into one small CNN outside the notebook, with the settings of the
Q7 notebook's full profile, so that the long run can train in the background (an
interrupted run resumes from its ``backup/``). The notebook then reads the finished run
back instead of training it again, provided the settings and the run folder match; both
train through ``nnlib.cnn.distill.train_student``.

    python scripts/train_q7_student.py --temperature 4 --alpha 0.5 --epochs 3 \\
        --run-dir runs/full/q7/cnn_T4_a0.5_3ep
"""
import argparse
from pathlib import Path

from nnlib.cnn import ARCHITECTURES, build_cnn
from nnlib.cnn.distill import train_student
from nnlib.cnn.stored import best_weights
from nnlib.cnn.teacher import teacher_probabilities
from nnlib.data import load_fer2013
from nnlib.paths import MODELS_DIR, RUNS_DIR

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
parser.add_argument("--temperature", type=float, required=True)
parser.add_argument("--alpha", type=float, required=True, help="weight of the soft targets")
parser.add_argument("--epochs", type=int, required=True)
parser.add_argument("--lr", type=float, default=5e-4)
parser.add_argument("--arch", default="small", choices=sorted(ARCHITECTURES))
parser.add_argument("--start", default="compact:0",
                    help="ARCH:SEED of the Q6 member whose slimmed weights start the student")
parser.add_argument("--run-dir", type=Path, required=True)
args = parser.parse_args()

fer = load_fer2013(val_size=0.1, seed=0)  # the Q7 notebook's split (Q5's and Q6's)
soft = teacher_probabilities(MODELS_DIR / "fer2013_cnn.keras", fer["X_train"],
                             RUNS_DIR / "full" / "q7", progress=True)
start_arch, start_seed = args.start.split(":")
start = build_cnn(start_arch)
start.set_weights(best_weights(MODELS_DIR / "fer2013_cnn_members" / f"seed{start_seed}"))
_, run = train_student(start, args.arch, fer, soft, args.run_dir, args.temperature,
                       args.alpha, args.epochs, lr=args.lr)
print(f"{args.run_dir}: best validation accuracy {max(run.history['val_accuracy']):.4f}")
