"""A teacher's class probabilities for distillation, computed once and cached: the cache
file is named by a fingerprint of the teacher's file and of the images, so a re-run
reads it back and a changed teacher or data set computes it afresh."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm import tqdm

from nnlib.atomic import atomic_open
from nnlib.cnn.augment import as_images
from nnlib.digest import arrays_digest, hash_file
from nnlib.errors import READ_ERRORS
from nnlib.loaded import LoadedModel


def fingerprint(teacher_path, images):
    """SHA-256 (first 16 hex digits) of the teacher file's bytes and of the images."""
    return arrays_digest([images], hash_file(teacher_path))[:16]


def teacher_probabilities(teacher_path, images, cache_dir, batch_size=256, progress=False):
    """The saved Keras model's class probabilities (N, C) float32 for uint8 images
    (N, 48, 48); cached in ``cache_dir`` as ``teacher-<fingerprint>.npz``. A cache file
    that cannot be read is computed again and replaced (never trusted, never deleted
    before its replacement is written)."""
    cache = Path(cache_dir) / f"teacher-{fingerprint(teacher_path, images)}.npz"
    if cache.exists():
        try:
            with np.load(cache, allow_pickle=False) as z:
                probs = z["probs"]
            if probs.shape[0] == len(images) and np.isfinite(probs).all():
                return probs
        except READ_ERRORS:
            pass
    # as saved, not folded: the probabilities are training targets, and folding would
    # change them by about 1e-6 from those a trained student learnt from
    model = LoadedModel(teacher_path, fold=False).model
    X = as_images(images)
    chunk = 16 * batch_size
    probs = np.concatenate([
        np.asarray(model.predict(X[i:i + chunk], batch_size=batch_size, verbose=0))
        for i in tqdm(range(0, len(X), chunk), desc="teacher", unit="chunk", leave=False,
                      disable=None if progress else True)]).astype(np.float32)
    with atomic_open(cache) as f:
        np.savez_compressed(f, probs=probs)
    return probs
