"""Data loaders for CIFAR-10 and FER2013 in their common layouts.

Each loader returns a dict with uint8 images ``X_train`` (N, H, W[, C]), int64 labels
``y_train`` (N,), the same for ``val`` and ``test`` (and ``private`` for FER2013's
PrivateTest, where present), and ``classes`` (names in label-id order).

Data sets are read from ``$NNLIB_DATA`` if set, else ``./data``; decoded arrays are
cached as npz files under ``$NNLIB_CACHE`` (default ``./.cache``), keyed on the names and
bytes of the files read. Image files are listed and decoded by ``nnlib.images``.
"""
from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

import numpy as np

from nnlib.atomic import atomic_open
from nnlib.digest import hash_file
from nnlib.errors import READ_ERRORS
from nnlib.fer_files import (  # noqa: F401  (read_fer_*_rows, fer_usage: nnlib.data's API)
    FER_TEST_SPLITS,
    fer_layout,
    fer_usage,
    read_fer_csv_rows,
    read_fer_labels_rows,
)
from nnlib.images import (  # noqa: F401  (IMAGE_SUFFIXES, list_images: nnlib.data's API)
    IMAGE_SUFFIXES,
    DataError,
    class_folder_files,
    file_problem,
    list_images,
    read_cifar_batch,
    read_images,
)
from nnlib.paths import PROJ_ROOT, default_data_root

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck")
# the original label ids of the FER2013 CSV release
FER2013_CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
CIFAR10_SOURCE = "https://www.cs.toronto.edu/~kriz/cifar.html (CIFAR-10 python version)"
FER2013_SOURCE = ("the Kaggle challenge 'Challenges in Representation Learning: Facial "
                  "Expression Recognition Challenge' (fer2013.csv)")
CIFAR10_BATCHES = (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch")
FER_VAL_SIZE = 0.1  # the share of FER2013's training images held out for validation
CACHE_VERSION = 3  # 3: 16-bit images scaled, no longer clipped


def data_root():
    """Folder holding the data sets (``nnlib.paths.default_data_root``)."""
    return default_data_root()


def cache_dir():
    return Path(os.environ.get("NNLIB_CACHE") or PROJ_ROOT / ".cache")


# ---------------------------------------------------------------------------- split
def stratified_split(X, y, val_size, seed=0):
    """Seeded stratified split of (X, y) into train and validation parts.

    val_size: a fraction in (0, 1) or a number of samples.
    Returns X_train, y_train, X_val, y_val.
    """
    from sklearn.model_selection import train_test_split
    X_tr, X_val, y_tr, y_val = train_test_split(X, y, test_size=val_size, stratify=y,
                                                random_state=seed)
    return X_tr, y_tr, X_val, y_val


# ---------------------------------------------------------------------------- cache
def _cached(name, root, files, build, classes, use_cache):
    """``build()`` once, then its arrays read back from an npz keyed on the ``files`` it
    reads (see ``_fingerprint``), named ``<name>-<16 hex digits>.npz``.

    A cache file that cannot be read or does not hold a sound data set (shapes, label
    count, label range, class names) is rebuilt, and one that cannot be written (a folder
    in its place, a cache folder below a file) is done without: each with a warning."""
    if not use_cache:
        return build()
    path = cache_dir() / f"{name}-{_fingerprint(root, files)[:16]}.npz"
    if path.is_file():  # a folder or FIFO in its place is reported when writing
        try:
            with np.load(path, allow_pickle=False) as z:  # pragma: no mutate (the default)
                out = {k: z[k] for k in z.files}
            return _check_dataset(out, classes)
        except READ_ERRORS as e:
            warnings.warn(f"cache file {path} is unreadable or inconsistent ({e}); "
                          "rebuilding it from the data", RuntimeWarning, stacklevel=3)
    out = _check_dataset(build(), classes)
    try:
        with atomic_open(path) as f:
            np.savez(f, **{k: np.asarray(v) for k, v in out.items()})
    except OSError as e:
        warnings.warn(f"cannot write the cache file {path} ({e}); the data were loaded "
                      "without it: remove what is in the way or set NNLIB_CACHE to a folder "
                      "you can write", RuntimeWarning, stacklevel=3)
    return out


def _check_dataset(out, classes):
    """``out`` with ``classes`` as a tuple, after checking every split's images and
    labels against each other and against the class names; raises ValueError."""
    out = dict(out)
    if tuple(str(c) for c in np.asarray(out.get("classes", ())).tolist()) != tuple(classes):
        raise ValueError(f"class names {out.get('classes')!r} differ from {list(classes)}")
    out["classes"] = tuple(classes)
    splits = [k[2:] for k in out if k.startswith("X_")]
    if "train" not in splits or set(out) != {"classes"} | {f"{p}_{s}" for s in splits
                                                           for p in ("X", "y")}:
        raise ValueError(f"unexpected entries {sorted(out)}")
    for s in splits:
        X, y = np.asarray(out[f"X_{s}"]), np.asarray(out[f"y_{s}"])
        if X.dtype != np.uint8 or X.ndim not in (3, 4) or y.shape != (len(X),):
            raise ValueError(f"split {s}: {X.shape} {X.dtype} images for {y.shape} labels")
        if not np.issubdtype(y.dtype, np.integer) or (
                len(y) and (y.min() < 0 or y.max() >= len(classes))):
            raise ValueError(f"split {s}: labels outside 0..{len(classes) - 1}")
    return out


def _fingerprint(root, files):
    """Identity of the data a loader reads: the name relative to ``root`` and a hash of
    the bytes of each of ``files`` (and the cache version), so that renaming a file,
    moving it to another class folder or editing it in place (even to the same size)
    never serves an old cache. Files are read in chunks; nothing else is read."""
    h = hashlib.blake2b(repr(CACHE_VERSION).encode())
    for p in files:
        h.update(os.fsencode(os.path.relpath(p, root)))
        try:
            with open(p, "rb") as f:
                h.update(hash_file(f, "blake2b").digest())  # pragma: no mutate (any hash)
        except OSError as e:
            raise DataError(f"cannot read {p} ({e.strerror}); make it readable or remove "
                            "it") from None
    return h.hexdigest()


def _with_val(out, val_size, seed):
    if not val_size:
        return dict(out)
    X_tr, y_tr, X_val, y_val = stratified_split(out["X_train"], out["y_train"], val_size, seed)
    return dict(out, X_train=X_tr, y_train=y_tr, X_val=X_val, y_val=y_val)


# ------------------------------------------------------------------------- CIFAR-10
def load_cifar10(root=None, val_size=5000, seed=0, cache=True):
    """CIFAR-10 as uint8 (N, 32, 32, 3) images with a stratified validation split.

    root: a folder holding either ``cifar-10-batches-py/`` (the official python
    version) or ``train/<class>/`` and ``test/<class>/`` image folders; default
    ``data_root()/cifar10``. The official files are pickles: they are read with an
    unpickler that admits only the types those files hold, so a crafted file cannot
    run code.
    """
    root = Path(root) if root is not None else data_root() / "cifar10"
    batches = root / "cifar-10-batches-py"
    if (root / "data_batch_1").exists():
        batches = root
    if batches.is_dir():
        files = [batches / name for name in CIFAR10_BATCHES]
        for path in files:
            if not path.is_file():
                raise DataError(f"missing CIFAR-10 file {path}; get the python version from "
                                f"{CIFAR10_SOURCE}")
        build = lambda: _cifar10_batches(files)  # noqa: E731
    elif (root / "train").is_dir() and (root / "test").is_dir():
        train, test = (_class_files(root / s, CIFAR10_CLASSES) for s in ("train", "test"))
        files = train[0] + test[0]
        build = lambda: {"X_train": read_images(train[0], "RGB"), "y_train": train[1],  # noqa: E731
                         "X_test": read_images(test[0], "RGB"), "y_test": test[1],
                         "classes": CIFAR10_CLASSES}
    else:
        raise DataError(
            f"no CIFAR-10 data at {root}: expected {root}/cifar-10-batches-py/ "
            f"(data_batch_1..5, test_batch) or {root}/train/<class>/ and {root}/test/<class>/ "
            f"image folders. Get it from {CIFAR10_SOURCE} and set NNLIB_DATA to the folder "
            "that holds cifar10/")
    out = _cached("cifar10", root, files, build, CIFAR10_CLASSES, cache)
    return _with_val(out, val_size, seed)


def _class_files(folder, classes):
    """``class_folder_files`` of a folder that must hold images."""
    paths, labels = class_folder_files(folder, classes)
    if not paths:
        raise DataError(f"{folder} holds no images in class folders {list(classes)}")
    return paths, labels


def _cifar10_batches(files):
    """The official batches ``files`` (CIFAR10_BATCHES: the training ones, then the test
    one) as a dict of splits."""
    parts = [read_cifar_batch(path) for path in files[:-1]]
    X_te, y_te = read_cifar_batch(files[-1])
    return {"X_train": np.concatenate([p[0] for p in parts]),
            "y_train": np.concatenate([p[1] for p in parts]),
            "X_test": X_te, "y_test": y_te, "classes": CIFAR10_CLASSES}


# -------------------------------------------------------------------------- FER2013
def load_fer2013(root=None, val_size=0.1, seed=0, cache=True):
    """FER2013 as uint8 (N, 48, 48) images with the original label ids (0=angry ... 6=neutral).

    root (default ``data_root()/fer2013``) holds one of:
    - ``fer2013.csv`` (Kaggle: emotion,pixels,Usage): Training (or no Usage) -> train,
      PublicTest -> test, PrivateTest -> private;
    - ``train/<emotion>/`` and ``test/<emotion>/`` image folders, test files told apart
      by their ``PublicTest_`` / ``PrivateTest_`` prefixes (unprefixed files count as test);
    - ``labels_public.txt`` (img,emotion) with ``Train/`` and ``Test/`` (split alike).
    The validation split is a seeded stratified part of the training data.
    """
    root = Path(root) if root is not None else data_root() / "fer2013"
    layout = fer_layout(root)
    if layout == "csv":
        files = [root / "fer2013.csv"]
        build = lambda: read_fer_csv(files[0])  # noqa: E731
    elif layout == "folders" and (root / "train").is_dir():
        train = _class_files(root / "train", FER2013_CLASSES)
        test = _class_files(root / "test", FER2013_CLASSES) if (root / "test").is_dir() else None
        files = train[0] + (test[0] if test else [])
        build = lambda: _fer_folders(train, test)  # noqa: E731
    elif layout == "labels":
        rows = read_fer_labels_rows(root / "labels_public.txt")
        files = [root / "labels_public.txt", *rows[0]]
        build = lambda: _labels_splits(files[0], *rows)  # noqa: E731
    else:
        raise DataError(
            f"no FER2013 data at {root}: expected {root}/fer2013.csv, {root}/train/<emotion>/ "
            f"image folders, or {root}/labels_public.txt with Train/ and Test/. Get it from "
            f"{FER2013_SOURCE} and set NNLIB_DATA to the folder that holds fer2013/")
    out = _cached("fer2013", root, files, build, FER2013_CLASSES, cache)
    return _with_val(out, val_size, seed)


def _fer_folders(train, test):
    """Images of the (paths, labels) of ``train`` and ``test`` (or None) as splits."""
    out = {"X_train": read_images(train[0], "L"), "y_train": train[1],
           "classes": FER2013_CLASSES}
    if test:
        _add_test_splits(out, read_images(test[0], "L"), test[1], test[0])
    return out


def _add_test_splits(out, X, y, paths):
    """Store FER2013 test images X (N, 48, 48) and labels y (N,) in ``out``: as private
    those whose file name starts with PrivateTest_, as test the others."""
    private = np.array([fer_usage(p) == "PrivateTest" for p in paths])  # never empty here
    out.update(X_test=X[~private], y_test=y[~private])
    if private.any():
        out.update(X_private=X[private], y_private=y[private])


def read_fer_csv(path):
    """Kaggle ``fer2013.csv`` -> dict of splits by its Usage column (rows without a
    Usage are training rows): train, test (PublicTest) and private (PrivateTest)."""
    X, y, usages = read_fer_csv_rows(path)
    usages = np.array(usages)
    if not (usages == "Training").any():
        raise DataError(f"{path} holds no Training rows to train on; to test a model on "
                        "it, use python -m nnlib.evaluate")
    out = {"classes": FER2013_CLASSES}
    for usage, key in (("Training", "train"), ("PublicTest", "test"),
                       ("PrivateTest", "private")):
        sel = usages == usage
        if sel.any():
            out[f"X_{key}"], out[f"y_{key}"] = X[sel], y[sel]
    return out


def read_fer_labels_file(path):
    """Coursework layout: ``labels_public.txt`` (img,emotion) beside Train/ and Test/, as
    splits train, test and (files named PrivateTest_*) private."""
    return _labels_splits(path, *read_fer_labels_rows(path))


def _labels_splits(path, paths, labels, folders):
    """The splits of the rows (paths, labels (N,), folders) of the labels file ``path``."""
    folders = np.array(folders)
    if not (folders == "train").any():
        raise DataError(f"{path} lists no Train/ images to train on; to test a model on it, "
                        "use python -m nnlib.evaluate")
    train = np.flatnonzero(folders == "train")
    out = {"X_train": read_images([paths[i] for i in train], "L"), "y_train": labels[train],
           "classes": FER2013_CLASSES}
    test = np.flatnonzero(folders == "test")
    if len(test):
        files = [paths[i] for i in test]
        _add_test_splits(out, read_images(files, "L"), labels[test], files)
    return out


def fer_split(seed=0):
    """FER2013 (``load_fer2013``) with the validation split all its experiments share: a
    seeded, stratified tenth of the training images."""
    return load_fer2013(val_size=FER_VAL_SIZE, seed=seed)


def shrink(data, sizes, seed=0):
    """Cut the splits of ``data`` named in ``sizes`` (e.g. {"train": 2000, "val": 500}) to
    seeded stratified subsets of those sizes (the smoke profile's few images), in place;
    returns ``data``."""
    for split, n in sizes.items():
        data[f"X_{split}"], data[f"y_{split}"] = subsample(data[f"X_{split}"],
                                                           data[f"y_{split}"], n, seed)
    return data


def subsample(X, y, n, seed=0):
    """A seeded stratified subset of n samples (all of them when n >= len(X))."""
    if n is None or n >= len(X):
        return X, y
    _, _, X_s, y_s = stratified_split(X, y, n, seed)
    return X_s, y_s
