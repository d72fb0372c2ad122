"""Train one member of the Q6 ensemble outside the notebook, with the settings the Q6
notebook's full profile uses, so that a long member can train in the background (and
across sessions: an interrupted run resumes from its ``backup/``) or on a GPU machine.
The notebook then reads the finished member back instead of training it again, provided
its ``budget`` lists the member with the same seed (its ``seed``, else its place in the
list) and settings (epochs, arch, lr, init, patience, batch_size); both train through
``nnlib.cnn.train_member``. A seed that the full profile's budget lists
(``nnlib.cnn.Q6_BUDGETS``) takes its settings from there, each option given here in their
place; another seed needs --epochs (and trains from scratch unless --init is given).

    python scripts/train_q6_member.py --seed 5   # = --epochs 8 --init 4 --lr 3e-4

On a GPU machine without TensorFlow or the image folders (Keras's JAX backend; the split
written here once with --write-arrays, then carried there):

    python scripts/train_q6_member.py --write-arrays split.npz.xz
    KERAS_BACKEND=jax python scripts/train_q6_member.py --arrays split.npz.xz \\
        --seed 6 --arch vgg_small --epochs 200 --minutes 7 --member-dir OUT

A run that will not be resumed (stopped by a time limit, its backup lost) is closed at
its last epoch, its best epoch kept, and the notebook then reads it back:

    python scripts/train_q6_member.py --seed 7 --stop "time limit" --device "jax, H100"
"""
import argparse
from pathlib import Path

from nnlib.cnn import ARCHITECTURES, MEMBER_DEFAULTS, Q6_BUDGETS, member_specs, train_member
from nnlib.io import read_arrays, write_arrays
from nnlib.paths import MODELS_DIR

SPLIT = ("X_train", "y_train", "X_val", "y_val")
CPU_ARCH = "compact"  # the full profile's members trained on the CPU


def notebook_split():
    from nnlib.data import load_fer2013
    fer = load_fer2013(val_size=0.1, seed=0)  # the Q6 notebook's split
    return {k: fer[k] for k in SPLIT}


parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
parser.add_argument("--seed", type=int, help="the member's seed in the notebook's list")
parser.add_argument("--epochs", type=int, help="epochs (at most, with --minutes)")
parser.add_argument("--minutes", type=float,
                    help="time budget: fewer epochs if the measured speed needs it")
parser.add_argument("--arch", choices=sorted(ARCHITECTURES),
                    help=f"default: the budget's, else {CPU_ARCH}")
parser.add_argument("--lr", type=float, help="default: the budget's, else MEMBER_DEFAULTS'")
parser.add_argument("--init", type=int, help="seed of a finished member to start from")
parser.add_argument("--patience", type=int, help="default: the budget's, else MEMBER_DEFAULTS'")
parser.add_argument("--batch-size", type=int,
                    help="default: the budget's, else MEMBER_DEFAULTS'")
parser.add_argument("--member-dir", type=Path, default=MODELS_DIR / "fer2013_cnn_members")
parser.add_argument("--arrays", help="read the split from this .npz[.xz] (--write-arrays)")
parser.add_argument("--write-arrays", help="write the notebook's split to this .npz[.xz]")
parser.add_argument("--stop", metavar="REASON",
                    help="close the member's unfinished run at its last epoch instead of "
                         "training (nnlib.cnn.stop_run), e.g. when its checkpoint is lost")
parser.add_argument("--device", help="with --stop: where the run trained")
args = parser.parse_args()

if args.stop:
    from nnlib.cnn import stop_run
    run = stop_run(args.member_dir / f"seed{args.seed}", args.stop, args.device)
    print(f"seed {args.seed} closed after {run.epochs} epochs: {args.stop}")
    raise SystemExit(0)

if args.write_arrays:
    write_arrays(args.write_arrays, **notebook_split())
    raise SystemExit(0)
if args.seed is None:
    parser.error("--seed is required to train")
listed = {m["seed"]: m for m in member_specs(Q6_BUDGETS["full"], CPU_ARCH)}
spec = listed.get(args.seed, {**MEMBER_DEFAULTS, "seed": args.seed, "arch": CPU_ARCH})
spec.update({k: v for k, v in dict(arch=args.arch, epochs=args.epochs, lr=args.lr,
                                   patience=args.patience, batch_size=args.batch_size,
                                   init=args.init).items() if v is not None})
if "epochs" not in spec:
    parser.error(f"--epochs is required for seed {args.seed}, which the budget does not list")

import keras  # noqa: E402  (after nnlib.cnn has chosen the default backend)

data = ({k: v for k, v in read_arrays(args.arrays).items() if k in SPLIT} if args.arrays
        else notebook_split())
# XLA for JAX (without it every op runs alone); TensorFlow's choice is measured in Q6
jit_compile = keras.backend.backend() == "jax"
epochs = spec["epochs"]
if args.minutes:
    from nnlib.cnn import measure_throughput
    rate = measure_throughput(spec["arch"], spec["batch_size"], steps=90,
                              jit_compile=jit_compile)
    # 0.8: validation passes, compilation and the augmentation are not in the measurement;
    # processes sharing one GPU each get less than it measures alone
    epochs = max(1, min(epochs, int(0.8 * args.minutes * 60 * rate / len(data["X_train"]))))
    print(f"measured {rate:.0f} images/s: {epochs} epochs fit in {args.minutes} min", flush=True)
spec["epochs"] = epochs
print("member:", spec, flush=True)
model, run = train_member(spec, args.member_dir, data, jit_compile=jit_compile)
best = max(run.history["val_accuracy"]) if run.history else float("nan")
print(f"done: seed {args.seed}, {run.epochs} epochs, {run.seconds / 60:.1f} min, "
      f"{run.images_per_s:.0f} images/s on {run.device}, best validation accuracy {best:.4f}",
      flush=True)
