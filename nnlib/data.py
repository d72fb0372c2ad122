"""Data loaders for CIFAR-10 and FER2013 in their common layouts.

Each loader returns a dict with uint8 images ``X_train`` (N, H, W[, C]), int64 labels
``y_train`` (N,), the same for ``val`` and ``test`` (and ``private`` for FER2013's
PrivateTest, where present), and ``classes`` (names in label-id order).

Data sets are read from ``$NNLIB_DATA`` if set, else ``./data``; decoded arrays are
cached as npz files under ``$NNLIB_CACHE`` (default ``./.cache``).
"""
from __future__ import annotations

import csv
import hashlib
import os
import pickle
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from nnlib.atomic import atomic_open
from nnlib.io import READ_ERRORS
from nnlib.paths import PROJ_ROOT

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck")
# the original label ids of the FER2013 CSV release
FER2013_CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp"}
CIFAR10_SOURCE = "https://www.cs.toronto.edu/~kriz/cifar.html (CIFAR-10 python version)"
FER2013_SOURCE = ("the Kaggle challenge 'Challenges in Representation Learning: Facial "
                  "Expression Recognition Challenge' (fer2013.csv)")
CACHE_VERSION = 2
# FER2013's test splits, told apart by the CSV's Usage column or a file-name prefix
FER_TEST_SPLITS = ("PublicTest", "PrivateTest")


class DataError(ValueError):
    """A data set is missing or malformed."""


def data_root():
    """Folder holding the data sets: $NNLIB_DATA, else ./data of the project."""
    return Path(os.environ.get("NNLIB_DATA") or PROJ_ROOT / "data")


def cache_dir():
    return Path(os.environ.get("NNLIB_CACHE") or PROJ_ROOT / ".cache")


# --------------------------------------------------------------------------- images
def read_image(path, mode):
    """Decode one image file with Pillow as a uint8 array (mode "L" or "RGB")."""
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert(mode), dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as e:
        raise DataError(f"cannot decode image {path}: {e}; delete or replace the file") from None


def list_images(folder):
    """Image files directly in ``folder``, sorted by name."""
    return sorted(p for p in Path(folder).iterdir()
                  if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def read_images(paths, mode, shape=None, progress=False):
    """Decode many files into one uint8 array (N, H, W[, C]); all must share one shape.
    ``progress``: a progress bar on a terminal's stderr (none elsewhere)."""
    from tqdm import tqdm
    arrays = []
    for p in tqdm(paths, desc="reading images", unit="img", leave=False,
                  disable=None if progress else True):
        a = read_image(p, mode)
        if shape is None:
            shape = a.shape
        elif a.shape != shape:
            raise DataError(f"image {p} has shape {a.shape}, expected {shape} like the "
                            "others; resize it or remove it")
        arrays.append(a)
    if not arrays:
        return np.zeros((0, *(shape or ())), np.uint8)
    return np.stack(arrays)


def class_folder_files(folder, classes):
    """Image paths in ``folder/<class>/`` (sorted by class folder, then file name) and
    their label ids (N,). classes: names in label-id order; a subfolder with another
    name, or a folder inside a class folder, is an error."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"missing folder {folder}")
    index = {c: i for i, c in enumerate(classes)}
    subdirs = sorted(p for p in folder.iterdir() if p.is_dir())
    unknown = [p.name for p in subdirs if p.name.lower() not in index]
    if unknown:
        raise DataError(f"{folder} has class folders {unknown} that are not among the "
                        f"expected classes {list(classes)}; rename or remove them")
    paths, labels = [], []
    for sub in subdirs:
        nested = sorted(p.name for p in sub.iterdir() if p.is_dir())
        if nested:
            raise DataError(f"{sub} holds the folder(s) {nested}: images must lie directly "
                            f"in the class folder; move them into {sub} or remove the folder")
        files = list_images(sub)
        paths += files
        labels += [index[sub.name.lower()]] * len(files)
    return paths, np.array(labels, dtype=np.int64)


def read_class_folders(folder, classes, mode, prefixes=None):
    """Images in ``folder/<class>/`` -> (X, y, paths); see ``class_folder_files``.

    prefixes: keep only files whose name starts with one of these (e.g. "PublicTest_").
    """
    paths, labels = class_folder_files(folder, classes)
    if prefixes:
        keep = [i for i, p in enumerate(paths) if p.name.startswith(tuple(prefixes))]
        paths, labels = [paths[i] for i in keep], labels[keep]
    if not paths:
        raise DataError(f"{folder} holds no images in class folders {list(classes)}")
    return read_images(paths, mode), labels, paths


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
def _cached(key_parts, build, classes, use_cache=True):
    """``build()`` once, then its arrays read back from an npz keyed on ``key_parts``.

    A cache file that cannot be read or does not hold a sound data set (shapes, label
    count, label range, class names) is rebuilt, with a warning that says so."""
    if not use_cache:
        return build()
    key = hashlib.sha1(repr((CACHE_VERSION, *key_parts)).encode()).hexdigest()[:16]
    path = cache_dir() / f"{key_parts[0]}-{key}.npz"
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as z:
                out = {k: z[k] for k in z.files}
            return _check_dataset(out, classes)
        except READ_ERRORS as e:
            warnings.warn(f"cache file {path} is unreadable or inconsistent ({e}); "
                          "rebuilding it from the data", RuntimeWarning, stacklevel=3)
    out = _check_dataset(build(), classes)
    with atomic_open(path) as f:
        np.savez(f, **{k: np.asarray(v) for k, v in out.items()})
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
                                                           for p in "Xy"}:
        raise ValueError(f"unexpected entries {sorted(out)}")
    for s in splits:
        X, y = np.asarray(out[f"X_{s}"]), np.asarray(out[f"y_{s}"])
        if X.dtype != np.uint8 or X.ndim not in (3, 4) or y.shape != (len(X),):
            raise ValueError(f"split {s}: {X.shape} {X.dtype} images for {y.shape} labels")
        if not np.issubdtype(y.dtype, np.integer) or (
                len(y) and (y.min() < 0 or y.max() >= len(classes))):
            raise ValueError(f"split {s}: labels outside 0..{len(classes) - 1}")
    return out


def _fingerprint(root):
    """Identity of a data folder's content: the relative name and a hash of the bytes of
    every file in it, so that data edited in place (even to the same size) is never
    served from an old cache."""
    root = Path(root)
    h = hashlib.blake2b(digest_size=20)
    for dirpath, dirnames, filenames in sorted(os.walk(root)):
        dirnames.sort()
        rel = os.path.relpath(dirpath, root)
        for name in sorted(filenames):
            with open(os.path.join(dirpath, name), "rb") as f:
                h.update(f"{rel}/{name}:".encode())
                h.update(hashlib.blake2b(f.read(), digest_size=20).digest())
    return h.hexdigest()


def _with_val(out, val_size, seed):
    if not val_size:
        return dict(out)
    X_tr, y_tr, X_val, y_val = stratified_split(out["X_train"], out["y_train"], val_size, seed)
    out = dict(out, X_train=X_tr, y_train=y_tr, X_val=X_val, y_val=y_val)
    return out


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
        build = lambda: _cifar10_batches(batches)  # noqa: E731
    elif (root / "train").is_dir() and (root / "test").is_dir():
        build = lambda: _cifar10_folders(root)  # noqa: E731
    else:
        raise DataError(
            f"no CIFAR-10 data at {root}: expected {root}/cifar-10-batches-py/ "
            f"(data_batch_1..5, test_batch) or {root}/train/<class>/ and {root}/test/<class>/ "
            f"image folders. Get it from {CIFAR10_SOURCE} and set NNLIB_DATA to the folder "
            "that holds cifar10/")
    out = _cached(("cifar10", _fingerprint(root)), build, CIFAR10_CLASSES, cache)
    return _with_val(out, val_size, seed)


def _cifar10_folders(root):
    X_tr, y_tr, _ = read_class_folders(root / "train", CIFAR10_CLASSES, "RGB")
    X_te, y_te, _ = read_class_folders(root / "test", CIFAR10_CLASSES, "RGB")
    return {"X_train": X_tr, "y_train": y_tr, "X_test": X_te, "y_test": y_te,
            "classes": CIFAR10_CLASSES}


def _cifar10_batch(path):
    if not path.is_file():
        raise DataError(f"missing CIFAR-10 file {path}; get the python version from "
                        f"{CIFAR10_SOURCE}")
    try:
        with open(path, "rb") as f:
            d = _CifarUnpickler(f, encoding="bytes").load()
        X = np.asarray(d[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        y = np.asarray(d[b"labels"], dtype=np.int64)
        if len(y) != len(X):
            raise ValueError(f"{len(X)} images but {len(y)} labels")
    except (pickle.UnpicklingError, KeyError, ValueError, EOFError, TypeError,
            AttributeError, IndexError) as e:
        raise DataError(f"{path} is not a CIFAR-10 python batch ({e!r})") from None
    return np.ascontiguousarray(X), y


class _CifarUnpickler(pickle.Unpickler):
    """Unpickles only what the official CIFAR-10 batches hold (dicts, lists, bytes,
    strings, ints and NumPy arrays): any other global, such as a function a crafted
    file would call, is refused before it runs."""

    ALLOWED = {(m, n) for m in ("numpy.core.multiarray", "numpy._core.multiarray")
               for n in ("_reconstruct", "scalar")} | {
        ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refused {module}.{name}: not part of a CIFAR-10 batch")


def _cifar10_batches(folder):
    parts = [_cifar10_batch(folder / f"data_batch_{i}") for i in range(1, 6)]
    X_te, y_te = _cifar10_batch(folder / "test_batch")
    return {"X_train": np.concatenate([p[0] for p in parts]),
            "y_train": np.concatenate([p[1] for p in parts]),
            "X_test": X_te, "y_test": y_te, "classes": CIFAR10_CLASSES}


# -------------------------------------------------------------------------- FER2013
def load_fer2013(root=None, val_size=0.1, seed=0, cache=True):
    """FER2013 as uint8 (N, 48, 48) images with the original label ids (0=angry ... 6=neutral).

    root (default ``data_root()/fer2013``) holds one of:
    - ``fer2013.csv`` (Kaggle: emotion,pixels,Usage): Training -> train,
      PublicTest -> test, PrivateTest -> private;
    - ``train/<emotion>/`` and ``test/<emotion>/`` image folders, test files told apart
      by their ``PublicTest_`` / ``PrivateTest_`` prefixes (unprefixed files count as test);
    - ``labels_public.txt`` (img,emotion) with ``Train/`` and ``Test/`` folders.
    The validation split is a seeded stratified part of the training data.
    """
    root = Path(root) if root is not None else data_root() / "fer2013"
    if (root / "fer2013.csv").is_file():
        build = lambda: read_fer_csv(root / "fer2013.csv")  # noqa: E731
    elif (root / "train").is_dir():
        build = lambda: _fer_folders(root)  # noqa: E731
    elif (root / "labels_public.txt").is_file():
        build = lambda: read_fer_labels_file(root / "labels_public.txt")  # noqa: E731
    else:
        raise DataError(
            f"no FER2013 data at {root}: expected {root}/fer2013.csv, {root}/train/<emotion>/ "
            f"image folders, or {root}/labels_public.txt with Train/ and Test/. Get it from "
            f"{FER2013_SOURCE} and set NNLIB_DATA to the folder that holds fer2013/")
    out = _cached(("fer2013", _fingerprint(root)), build, FER2013_CLASSES, cache)
    return _with_val(out, val_size, seed)


def _fer_folders(root):
    X_tr, y_tr, _ = read_class_folders(root / "train", FER2013_CLASSES, "L")
    out = {"X_train": X_tr, "y_train": y_tr, "classes": FER2013_CLASSES}
    if (root / "test").is_dir():
        X, y, paths = read_class_folders(root / "test", FER2013_CLASSES, "L")
        private = np.array([fer_usage(p) == "PrivateTest" for p in paths], dtype=bool)
        out.update(X_test=X[~private], y_test=y[~private])
        if private.any():
            out.update(X_private=X[private], y_private=y[private])
    return out


def read_fer_csv_rows(path, default_usage="Training"):
    """Every row of a Kaggle-style FER2013 CSV (emotion,pixels[,Usage], a UTF-8 byte-order
    mark allowed): images uint8 (N, 48, 48), labels (N,) and each row's Usage
    (``default_usage`` where the column is absent or empty)."""
    X, y, usages = [], [], []
    path = Path(path)
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None:
            raise DataError(f"{path} is empty; expected a header emotion,pixels,Usage and "
                            "one row per image")
        missing = {"emotion", "pixels"} - set(reader.fieldnames)
        if missing:
            raise DataError(f"{path}: header {reader.fieldnames} lacks columns "
                            f"{sorted(missing)}; expected emotion,pixels,Usage")
        for line, row in enumerate(reader, start=2):
            try:
                label = int(row["emotion"])
                pixels = np.array(row["pixels"].split(), dtype=np.uint8)
                if not 0 <= label < 7 or pixels.size != 48 * 48:
                    raise ValueError
            except (ValueError, AttributeError, OverflowError):
                raise DataError(f"{path}, line {line}: expected an emotion id in 0..6 and "
                                "2304 pixel values in 0..255") from None
            usage = (row.get("Usage") or "").strip() or default_usage
            if usage not in ("Training", *FER_TEST_SPLITS):
                raise DataError(f"{path}, line {line}: unknown Usage {usage!r}; expected "
                                "Training, PublicTest or PrivateTest")
            X.append(pixels.reshape(48, 48))
            y.append(label)
            usages.append(usage)
    if not X:
        raise DataError(f"{path} holds no data rows")
    return np.stack(X), np.array(y, dtype=np.int64), usages


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


def read_fer_labels_rows(path):
    """Coursework layout: the image paths, labels and ``Train``/``Test`` folder of each
    row of ``labels_public.txt`` (img,emotion), checked to exist."""
    path = Path(path)
    paths, labels, folders = [], [], []
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        if not {"img", "emotion"} <= set(reader.fieldnames or ()):
            raise DataError(f"{path}: expected a header img,emotion, got {reader.fieldnames}")
        for line, row in enumerate(reader, start=2):
            try:
                label = int(row["emotion"])
                if not 0 <= label < 7 or not row["img"]:
                    raise ValueError
            except (ValueError, TypeError):
                raise DataError(f"{path}, line {line}: expected an image path and an emotion "
                                f"id in 0..6, got {row['img']!r}, {row['emotion']!r}") from None
            paths.append(path.parent / row["img"])
            labels.append(label)
            folders.append("test" if row["img"].lower().startswith("test") else "train")
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise DataError(f"{path} lists {len(missing)} missing images, e.g. {missing[0]}")
    return paths, np.array(labels, dtype=np.int64), folders


def read_fer_labels_file(path):
    """Coursework layout: ``labels_public.txt`` (img,emotion) beside Train/ and Test/."""
    paths, labels, folders = read_fer_labels_rows(path)
    folders = np.array(folders)
    if not (folders == "train").any():
        raise DataError(f"{path} lists no Train/ images to train on; to test a model on it, "
                        "use python -m nnlib.evaluate")
    out = {"classes": FER2013_CLASSES}
    for split in ("train", "test"):
        idx = np.flatnonzero(folders == split)
        if len(idx):
            out[f"X_{split}"] = read_images([paths[i] for i in idx], "L")
            out[f"y_{split}"] = labels[idx]
    return out


def fer_usage(name):
    """The FER2013 split a file name announces: Training, PublicTest or PrivateTest by
    its prefix, else "test" (a test image of unknown split)."""
    for usage in ("Training", *FER_TEST_SPLITS):
        if Path(name).name.startswith(usage + "_"):
            return usage
    return "test"


def subsample(X, y, n, seed=0):
    """A seeded stratified subset of n samples (all of them when n >= len(X))."""
    if n is None or n >= len(X):
        return X, y
    _, _, X_s, y_s = stratified_split(X, y, n, seed)
    return X_s, y_s
