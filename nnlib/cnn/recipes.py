"""The recipes that train a CNN as the notebooks do, each through one path
(``train_recipe``: seeds set, the network built, ``train_cnn`` run, resumed or read back):
Q6's ensemble members (``train_member``) and its candidates compared on validation
(``train_candidate``, ``compare_candidates`` on ``study_data``), Q7's distilled student
(``train_student``).
The notebooks and the scripts both train through them, so that either reads back what the
other trained. Once Q6's ensemble is saved, ``store_in_ensemble`` keeps each member's
weights only there."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from nnlib.classifiers import soften
from nnlib.cnn.distill import distillation_targets, slim
from nnlib.cnn.models import WEIGHT_DECAY, build_cnn, build_mlp, configure_tensorflow
from nnlib.cnn.run_folder import drop_weights
from nnlib.cnn.stored import store_run_weights
from nnlib.cnn.train import PATIENCE, train_cnn
from nnlib.data import subsample
from nnlib.digest import arrays_digest

MEMBER_DEFAULTS = dict(lr=1e-3, patience=PATIENCE, batch_size=64)

# name -> the architecture and what differs from its defaults: build_cnn's overrides, or
# train_cnn's batch_size, weight_decay (0 also drops the L2 penalty of the layers),
# optimizer and lr. The last six change one design choice of "compact" each (Q6's
# ablations): its optimizer (SGD with momentum at the usual rate for batch normalised
# networks), its batch normalisation, its depth alone (two convolutions per block, the
# same widths), stride-2 convolutions instead of pooling, no zero padding, and the pixels
# shuffled (a test of the convolution's inductive bias: neighbouring pixels belong together)
CANDIDATES = {
    "compact": dict(arch="compact"),
    "tiny": dict(arch="tiny"),
    "wide": dict(arch="wide"),
    "vgg_small": dict(arch="vgg_small"),
    "compact, no dropout": dict(arch="compact", dropout=0.0),
    "compact, no dense layer": dict(arch="compact", dense=0),
    "compact, no weight decay": dict(arch="compact", weight_decay=0.0),
    "compact, batch 128": dict(arch="compact", batch_size=128),
    "compact, SGD": dict(arch="compact", optimizer="sgd", lr=0.01),
    "compact, no batch norm": dict(arch="compact", batch_norm=False),
    "compact, two convs per block": dict(arch="compact", convs=2),
    "compact, strided convs": dict(arch="compact", downsample="stride"),
    "compact, valid padding": dict(arch="compact", padding="valid"),
    "compact, shuffled pixels": dict(arch="compact", shuffle_pixels=True),
    "compact, 5x5 kernels": dict(arch="compact", kernel=5),
    "compact, three blocks": dict(arch="compact", filters=(32, 64, 128)),
    # not a CNN: Q5's layers trained with compact's recipe (models.MLP)
    "fully connected": dict(arch="mlp"),
}
TRAIN_KEYS = ("batch_size", "weight_decay", "optimizer", "lr")
# the ablations of "compact" (beside compact itself), the controls trained with them, and
# the architecture comparison: the other candidates (Q6_BUDGETS)
ABLATIONS = ["compact", "compact, SGD", "compact, no batch norm", "compact, two convs per block",
             "compact, strided convs", "compact, valid padding", "compact, 5x5 kernels",
             "compact, three blocks", "compact, shuffled pixels"]
CONTROLS = ["fully connected"]  # trained beside the comparison and the ablations, alike
COMPARED = [name for name in CANDIDATES if name not in ABLATIONS[1:] + CONTROLS]


def train_recipe(seed, build, data, run_dir, **train):
    """Every recipe's one path: seeds everywhere (``configure_tensorflow(seed=seed)``),
    then ``build()`` the network, then ``train_cnn`` it on ``data`` in ``run_dir`` with
    ``seed`` and the keyword arguments ``train``. Returns (the model with its best weights,
    ``TrainedRun``)."""
    configure_tensorflow(seed=seed)
    model = build()
    return model, train_cnn(model, data, run_dir, seed=seed, **train)


def train_member(spec, member_dir, data, jit_compile=False, verbose=2):
    """Train, resume or read back one ensemble member in ``member_dir / f"seed{seed}"``.

    spec: ``seed``, ``arch``, ``epochs``; optionally ``lr``, ``patience``, ``batch_size``
    (else ``MEMBER_DEFAULTS``) and ``init``, the seed of a member in ``member_dir`` whose
    best weights start this one (a warm restart). The Q6 notebook and
    ``scripts/train_q6_member.py`` both train through this, so that either reads back
    what the other trained. Returns (the model with its best weights, ``TrainedRun``).
    """
    spec = {**MEMBER_DEFAULTS, **spec}
    member_dir = Path(member_dir)
    init = spec.get("init")
    return train_recipe(
        spec["seed"], lambda: build_cnn(spec["arch"]), data, member_dir / f"seed{spec['seed']}",
        epochs=spec["epochs"], batch_size=spec["batch_size"], lr=spec["lr"],
        patience=spec["patience"], jit_compile=jit_compile, verbose=verbose,
        init=None if init is None else member_dir / f"seed{init}" / "best.keras")


def store_in_ensemble(ensemble_path, member_dir, seeds):
    """Keep the weights of the members ``seeds`` (in the order of the saved ensemble's
    ``member_0``, ``member_1``, ...) only in ``ensemble_path``: each member folder keeps its
    run record and history and says where its weights are; ``train_member`` reads them
    back from there. Returns the seeds whose ``best.keras`` was removed."""
    if len(seeds) < 2:  # a one-model "ensemble" is the model itself: no member layers
        return []
    member_dir = Path(member_dir)
    return [seed for i, seed in enumerate(seeds)
            if store_run_weights(member_dir / f"seed{seed}", ensemble_path, f"member_{i}")]


def candidate_dir(name, seed):
    """The folder name of one run: "compact, no dropout", seed 1 -> "compact-no-dropout_seed1"."""
    return "-".join(name.replace(",", "").split()) + f"_seed{seed}"


def train_candidate(name, data, run_root, epochs, seed, jit_compile=False, verbose=0):
    """Train (or read back) candidate ``name`` of CANDIDATES with ``seed`` for ``epochs``
    in ``run_root / candidate_dir(name, seed)``, then drop its weights (``drop_weights``:
    the comparison keeps each run's history and record, so a re-run reads it back).
    Returns (parameters, ``TrainedRun``)."""
    spec = dict(CANDIDATES[name])
    arch = spec.pop("arch")
    train = {k: spec.pop(k) for k in TRAIN_KEYS if k in spec}
    run_dir = Path(run_root) / candidate_dir(name, seed)
    l2 = train.get("weight_decay", WEIGHT_DECAY)
    model, run = train_recipe(
        seed, lambda: build_mlp(l2=l2) if arch == "mlp" else build_cnn(arch, l2=l2, **spec),
        data, run_dir, epochs=epochs, jit_compile=jit_compile, verbose=verbose, **train)
    if (run_dir / "best.keras").exists():
        drop_weights(run_dir)
    return model.count_params(), run


def study_data(study, data, seed=0):
    """``data`` with its training part cut to a seeded stratified ``study["fraction"]``
    (a Q6 study: the comparison or the ablations); the validation part unchanged."""
    n = int(len(data["X_train"]) * study["fraction"])
    X, y = subsample(data["X_train"], data["y_train"], n, seed)
    return {**data, "X_train": X, "y_train": y}


def compare_candidates(study, data, run_root, jit_compile=False):
    """Train (or read back) each of a Q6 ``study``'s candidates (dict: candidates, epochs,
    seeds, fraction) with each seed, on its fraction of the training faces
    (``study_data``; ``train_candidate``), and score it by its best validation accuracy.
    Returns (one row per run: candidate, seed, parameters, val accuracy, best epoch, and
    the training accuracy of that epoch (augmented batches, in training mode); one row per
    candidate in the study's order: parameters, mean and sd of the val accuracy over the
    seeds, mean best epoch, mean training accuracy)."""
    data = study_data(study, data)
    rows = []
    for name in study["candidates"]:
        for seed in study["seeds"]:
            params, run = train_candidate(name, data, run_root, study["epochs"], seed,
                                          jit_compile=jit_compile)
            best = int(np.argmax(run.history["val_accuracy"]))
            rows.append((name, seed, params, run.history["val_accuracy"][best], 1 + best,
                         run.history["accuracy"][best]))
    runs = pd.DataFrame(rows, columns=["candidate", "seed", "parameters", "val accuracy",
                                       "best epoch", "train accuracy"])
    summary = runs.groupby("candidate", sort=False).agg(
        parameters=("parameters", "first"), mean=("val accuracy", "mean"),
        sd=("val accuracy", "std"), best_epoch=("best epoch", "mean"),
        train=("train accuracy", "mean")).reset_index()
    return runs, summary


def train_student(start, arch, data, soft, run_dir, temperature, alpha, epochs, lr=5e-4,
                  batch_size=64, patience=None, seed=0, jit_compile=False, verbose=2):
    """Distil into ``slim(start, arch)``: ``train_cnn`` on ``data`` (X_train, y_train,
    X_val, y_val as for ``train_cnn``) with the teacher's probabilities ``soft`` (N, C)
    on the training images, softened at ``temperature`` and weighted by ``alpha``
    against the true classes; resumable in ``run_dir``, read back when finished.
    ``soft`` may instead be the teacher itself (a Keras model): it then labels each
    augmented batch as the student sees it (``teaching_model``; its weights' digest
    joins the settings).
    ``patience``: None for ``train_cnn``'s; ``jit_compile``: True for Keras's JAX backend
    (not part of the settings). Returns (the student with its best weights,
    ``TrainedRun``)."""
    online = not isinstance(soft, np.ndarray)
    # NumPy and the start's weights only (no random draws): the same before the seeds
    targets = (data["y_train"] if online
               else distillation_targets(data["y_train"], soften(soft, temperature)))
    distillation = dict(temperature=float(temperature), alpha=float(alpha),
                        start=arrays_digest(start.get_weights()))
    return train_recipe(
        seed, lambda: slim(start, arch), {**data, "y_train": targets}, run_dir, epochs=epochs,
        lr=lr, batch_size=batch_size, verbose=verbose,
        patience=PATIENCE if patience is None else patience, jit_compile=jit_compile,
        teacher=soft if online else None, distillation=distillation)
