"""Members of an ensemble trained, resumed or read back one at a time (``train_member``);
the Q6 notebook and ``scripts/train_q6_member.py`` both train through it. Once the
ensemble is saved, ``store_in_ensemble`` keeps each member's weights only there."""
from __future__ import annotations

from pathlib import Path

from nnlib.cnn.models import build_cnn, configure_tensorflow
from nnlib.cnn.stored import store_run_weights
from nnlib.cnn.train import PATIENCE, train_cnn

MEMBER_DEFAULTS = dict(lr=1e-3, patience=PATIENCE, batch_size=64)


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
    configure_tensorflow(seed=spec["seed"])
    model = build_cnn(spec["arch"])
    init = spec.get("init")
    run = train_cnn(model, data, member_dir / f"seed{spec['seed']}", epochs=spec["epochs"],
                    batch_size=spec["batch_size"], lr=spec["lr"], patience=spec["patience"],
                    jit_compile=jit_compile, seed=spec["seed"], verbose=verbose,
                    init=None if init is None else member_dir / f"seed{init}" / "best.keras")
    return model, run


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
