"""Train the candidates of Q6's comparison (``nnlib.cnn.CANDIDATES``) outside the
notebook, with its settings (``nnlib.cnn.Q6_BUDGETS["full"]``), e.g. on a GPU machine;
the notebook then reads the runs back
from ``models/fer2013_cnn_compare/`` (history and record, no weights). With
``--ablation``: the ablations of "compact" instead, on the budget's share of the training
faces, into ``models/fer2013_cnn_ablations/``.

    python scripts/train_q6_member.py --write-arrays split.npz.xz
    KERAS_BACKEND=jax python scripts/compare_q6_candidates.py --arrays split.npz.xz \\
        --seed 0 --epochs 30 --run-root OUT --archive OUT.tar
    python scripts/compare_q6_candidates.py --arrays split.npz.xz --seed 0 --ablation
"""
import argparse
import tarfile
from pathlib import Path

from nnlib.atomic import temporary_path
from nnlib.cnn import CANDIDATES, Q6_BUDGETS, candidate_dir, study_data, train_candidate
from nnlib.io import read_arrays
from nnlib.paths import MODELS_DIR

FULL = Q6_BUDGETS["full"]
parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--arrays", required=True, help="the split, from train_q6_member.py")
parser.add_argument("--seed", type=int, required=True)
parser.add_argument("--ablation", action="store_true",
                    help="the ablations of compact, with their budget (default: the comparison)")
parser.add_argument("--epochs", type=int,
                    help=f"default: the Q6 notebook's ({FULL['comparison']['epochs']}; ablations "
                         f"{FULL['ablation']['epochs']})")
parser.add_argument("--candidates", nargs="+",
                    help=f"names from {list(CANDIDATES)} (default: the study's)")
parser.add_argument("--run-root", type=Path, help="default: models/fer2013_cnn_compare "
                                                  "(ablations: models/fer2013_cnn_ablations)")
parser.add_argument("--archive", type=Path,
                    help="after each run, rewrite this .tar with every finished run so far")
args = parser.parse_args()
study = FULL["ablation" if args.ablation else "comparison"]
args.epochs = args.epochs or study["epochs"]
args.candidates = args.candidates or study["candidates"]
args.run_root = args.run_root or MODELS_DIR / ("fer2013_cnn_ablations" if args.ablation
                                                else "fer2013_cnn_compare")
unknown = sorted(set(args.candidates) - set(CANDIDATES))
if unknown:
    parser.error(f"unknown candidates {unknown}; choose from {list(CANDIDATES)}")

import keras  # noqa: E402  (after nnlib.cnn has chosen the default backend)

# the notebook's share of the training faces
data = study_data(study, {k: v for k, v in read_arrays(args.arrays).items()
                          if k in ("X_train", "y_train", "X_val", "y_val")})
done = []
for name in args.candidates:
    params, run = train_candidate(name, data, args.run_root, args.epochs, args.seed,
                                  jit_compile=keras.backend.backend() == "jax")
    done.append(candidate_dir(name, args.seed))
    print(f"{name}, seed {args.seed}: {params:,} parameters, {run.epochs} epochs, "
          f"{run.seconds:.0f} s, best validation accuracy {max(run.history['val_accuracy']):.4f}",
          flush=True)
    if args.archive:
        with temporary_path(args.archive) as tmp, tarfile.open(tmp, "w") as tar:
            for d in done:
                tar.add(args.run_root / d, arcname=d)
