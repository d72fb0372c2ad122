"""Image files of the data sets: listing a folder's images and decoding them (and the
batches of the CIFAR-10 python version) to uint8 arrays.

Only regular files (symbolic links resolved) with a suffix in ``IMAGE_SUFFIXES`` are
read; any other entry of a data folder is left out and reported in one warning that
says how many and why. 16-bit grey levels are scaled to 0..255, not clipped, and an
image above Pillow's decompression-bomb limit is refused, naming the file.
"""
from __future__ import annotations

import os
import pickle
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp"}
# bit depth of Pillow's "I" modes as PNG gives them (16-bit grey: I;16, or I in old Pillow)
WIDE_BITS = 16


class DataError(ValueError):
    """A data set is missing or malformed."""


def read_image(path, mode):
    """Decode one image file as uint8 (H, W) for mode "L" or (H, W, 3) for "RGB".

    16-bit grey levels g become round(g * 255 / 65535), so that 65535 is white rather
    than every level above 255 (the clipping of Pillow's own conversion)."""
    try:
        with warnings.catch_warnings():
            # between 1x and 2x its pixel limit Pillow only warns, then decodes gigabytes
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                if im.mode.startswith("I"):
                    return np.asarray(Image.fromarray(_scale_wide(np.asarray(im), path))
                                      .convert(mode))
                return np.asarray(im.convert(mode))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise DataError(f"{path} is far too large for a data set image ({e}); remove it or "
                        "shrink it") from None
    except (UnidentifiedImageError, OSError, SyntaxError, EOFError) as e:
        raise DataError(f"cannot decode image {path}: {e}; delete or replace the file") from None


def _scale_wide(levels, path):
    """uint8 (H, W) grey levels of the WIDE_BITS-bit ``levels`` (H, W), rounded."""
    top = 2 ** WIDE_BITS - 1
    if levels.size and (levels.min() < 0 or levels.max() > top):
        raise DataError(f"{path} holds grey levels outside 0..{top}, so its bit depth is "
                        "unknown; save it as an 8-bit or 16-bit image")
    return np.rint(levels * (255 / top)).astype(np.uint8)


def file_problem(path):
    """Why ``path`` is no regular file to read (symbolic links followed), or None."""
    if os.path.isfile(path):
        return None
    if os.path.isdir(path):
        return "a folder"
    if os.path.lexists(path):  # exists itself, but leads to no file
        return ("a broken symbolic link" if os.path.islink(path) and not os.path.exists(path)
                else "not a regular file (a FIFO, socket or device)")
    return "no such file"


def _skip_reason(path):
    """None for an image file to read, "" for an entry left out silently (folders, and
    hidden files such as .DS_Store), else why ``path`` is left out."""
    if path.name.startswith(".") or path.is_dir():
        return ""
    problem = file_problem(path)
    if problem:
        return problem
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        return f"the unsupported suffix {path.suffix or '(none)'}"
    return None


def list_images(folder, skipped=None):
    """Image files directly in ``folder``, sorted by name.

    The other entries (but folders and hidden files) are appended to ``skipped`` as
    (path, reason); without a ``skipped`` list they are reported in one warning."""
    folder = Path(folder)
    own = [] if skipped is None else skipped
    images = []
    for p in folder.iterdir():
        reason = _skip_reason(p)
        if reason is None:
            images.append(p)
        elif reason:
            own.append((p, reason))
    if skipped is None:
        warn_skipped(folder, own)
    return sorted(images)


def warn_skipped(folder, skipped):
    """One warning that names ``folder`` and says how many entries of ``skipped``
    ((path, reason) pairs) were left out, for what reasons, and what to do."""
    if not skipped:
        return
    names = {}
    for path, reason in skipped:
        names.setdefault(reason, []).append(os.path.relpath(path, folder))
    reasons = "; ".join(f"{len(n)} {r} (e.g. {min(n)})" for r, n in sorted(names.items()))
    warnings.warn(f"{folder}: skipped {len(skipped)} entries that are no images it can read: "
                  f"{reasons}. Only regular {'/'.join(sorted(IMAGE_SUFFIXES))} files are read; "
                  "convert, move or remove the others",
                  stacklevel=3)


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
    name, or a folder inside a class folder, is an error. Entries that are no images,
    and files lying beside the class folders, are reported in one warning."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"missing folder {folder}")
    index = {c: i for i, c in enumerate(classes)}
    entries = sorted(folder.iterdir())
    subdirs = [p for p in entries if p.is_dir()]
    unknown = [p.name for p in subdirs if p.name.lower() not in index]
    if unknown:
        raise DataError(f"{folder} has class folders {unknown} that are not among the "
                        f"expected classes {list(classes)}; rename or remove them")
    # images here have no class: report them with the others left out
    skipped = [(p, "outside the class folders") for p in entries if _skip_reason(p) != ""]
    paths, labels = [], []
    for sub in subdirs:
        nested = sorted(p.name for p in sub.iterdir() if p.is_dir())
        if nested:
            raise DataError(f"{sub} holds the folder(s) {nested}: images must lie directly "
                            f"in the class folder; move them into {sub} or remove the folder")
        files = list_images(sub, skipped)
        paths += files
        labels += [index[sub.name.lower()]] * len(files)
    warn_skipped(folder, skipped)
    return paths, np.array(labels, dtype=np.int64)


def read_cifar_batch(path):
    """Images uint8 (N, 32, 32, 3) and labels int64 (N,) of one file of the CIFAR-10
    python version (a pickled dict of channel-major b"data" rows and b"labels")."""
    try:
        with open(path, "rb") as f:
            d = _CifarUnpickler(f, encoding="bytes").load()
        raw = np.asarray(d[b"data"])
        if not np.issubdtype(raw.dtype, np.integer) or raw.size and (
                raw.min() < 0 or raw.max() > 255):
            raise ValueError("pixel values are not integers in 0..255")
        X = raw.astype(np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        y = np.asarray(d[b"labels"], dtype=np.int64)
        if len(y) != len(X):
            raise ValueError(f"{len(X)} images but {len(y)} labels")
    except (pickle.UnpicklingError, KeyError, ValueError, EOFError, TypeError,
            AttributeError, IndexError) as e:
        raise DataError(f"{path} is not a CIFAR-10 python batch ({e!r})") from None
    bad = np.flatnonzero((y < 0) | (y > 9))
    if len(bad):
        raise DataError(f"{path}: image {bad[0]} has the label {y[bad[0]]}, outside CIFAR-10's "
                        "0..9; replace the file by the original (the CIFAR-10 python version)")
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
