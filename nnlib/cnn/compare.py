"""Candidate networks and training settings compared on validation over several seeds
(``train_candidate``), for the choices of Q6's design that rest on evidence. The runs
keep their history and record but not their weights (``drop_weights``), so a re-run
reads the comparison back instead of training it again."""
from __future__ import annotations

from pathlib import Path

from nnlib.cnn.models import build_cnn, configure_tensorflow
from nnlib.cnn.train import drop_weights, train_cnn

# name -> the architecture and what differs from its defaults: build_cnn's overrides,
# or train_cnn's batch_size and weight_decay (0 also drops the L2 penalty of the layers)
CANDIDATES = {
    "compact": dict(arch="compact"),
    "tiny": dict(arch="tiny"),
    "wide": dict(arch="wide"),
    "vgg_small": dict(arch="vgg_small"),
    "compact, no dropout": dict(arch="compact", dropout=0.0),
    "compact, no dense layer": dict(arch="compact", dense=0),
    "compact, no weight decay": dict(arch="compact", weight_decay=0.0),
    "compact, batch 128": dict(arch="compact", batch_size=128),
}
TRAIN_KEYS = ("batch_size", "weight_decay")


def candidate_dir(name, seed):
    """The folder name of one run: "compact, no dropout", seed 1 -> "compact-no-dropout_seed1"."""
    return "-".join(name.replace(",", "").split()) + f"_seed{seed}"


def train_candidate(name, data, run_root, epochs, seed, jit_compile=False, verbose=0):
    """Train (or read back) candidate ``name`` of CANDIDATES with ``seed`` for ``epochs``
    in ``run_root / candidate_dir(name, seed)``, then drop its weights.
    Returns (parameters, ``TrainedRun``)."""
    spec = dict(CANDIDATES[name])
    arch = spec.pop("arch")
    train = {k: spec.pop(k) for k in TRAIN_KEYS if k in spec}
    configure_tensorflow(seed=seed)
    model = build_cnn(arch, l2=train.get("weight_decay", 1e-4), **spec)
    run_dir = Path(run_root) / candidate_dir(name, seed)
    run = train_cnn(model, data, run_dir, epochs=epochs, seed=seed, jit_compile=jit_compile,
                    verbose=verbose, **train)
    if (run_dir / "best.keras").exists():
        drop_weights(run_dir)
    return model.count_params(), run
