"""Train one member of the Q6 ensemble outside the notebook, with the settings the Q6
notebook's full profile uses, so that a long member can train in the background (and
across sessions: an interrupted run resumes from its ``backup/``). The notebook then
reads the finished member back instead of training it again, provided its ``budget``
lists the member with the same seed (its position in the list) and settings.

    python scripts/train_q6_member.py --seed 6 --epochs 32 --arch vgg_small
    python scripts/train_q6_member.py --seed 5 --epochs 8 --init 4 --lr 3e-4
"""
import argparse

from nnlib.cnn import ARCHITECTURES, build_cnn, configure_tensorflow, train_cnn
from nnlib.data import load_fer2013
from nnlib.paths import MODELS_DIR

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--seed", type=int, required=True, help="the member's place in the list")
parser.add_argument("--epochs", type=int, required=True)
parser.add_argument("--arch", default="compact", choices=sorted(ARCHITECTURES))
parser.add_argument("--lr", type=float, default=1e-3)
parser.add_argument("--init", type=int, help="seed of a finished member to start from")
parser.add_argument("--patience", type=int, default=20)
args = parser.parse_args()

member_dir = MODELS_DIR / "fer2013_cnn_members"
configure_tensorflow(seed=args.seed)
fer = load_fer2013(val_size=0.1, seed=0)
data = {k: fer[k] for k in ("X_train", "y_train", "X_val", "y_val")}
model = build_cnn(args.arch)
start = None if args.init is None else member_dir / f"seed{args.init}" / "best.keras"
run = train_cnn(model, data, member_dir / f"seed{args.seed}", epochs=args.epochs, lr=args.lr,
                patience=args.patience, seed=args.seed, verbose=2, init=start)
print(f"done: {run.epochs} epochs, {run.seconds / 60:.1f} min, {run.images_per_s:.0f} "
      f"images/s, best validation accuracy {max(run.history['val_accuracy']):.4f}", flush=True)
