"""FER2013's files: which layout a folder holds (``fer_layout``), the rows of its CSV and
of the coursework's ``labels_public.txt``, and the split a file name announces. The
loaders (``nnlib.data``) and the evaluate command read FER2013 through these alone."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from nnlib.images import DataError, file_problem

# FER2013's test splits, told apart by the CSV's Usage column or a file-name prefix
FER_TEST_SPLITS = ("PublicTest", "PrivateTest")


def fer_layout(root):
    """The FER2013 layout of the folder ``root``, the first found of: "csv"
    (``fer2013.csv``), "labels" (``labels_public.txt`` beside ``Train/`` and ``Test/``),
    "folders" (``train/`` and ``test/`` holding one folder per emotion); else None."""
    root = Path(root)
    if (root / "fer2013.csv").is_file():
        return "csv"
    if (root / "labels_public.txt").is_file():  # it names its images: it comes first
        return "labels"
    if (root / "train").is_dir() or (root / "test").is_dir():
        return "folders"
    return None


def _csv_rows(path, check_header):
    """(line number, row dict) of each row of the UTF-8 CSV ``path`` (a byte-order mark
    allowed) once ``check_header(field names or None)`` accepts its header. Bytes that
    are no UTF-8 and broken quoting raise a DataError naming the line."""
    line = 1  # where the record being read begins
    try:
        # pragma below: equivalent mutants (the csv module reads \n, \r\n or \r endings
        # either way; codec names are case-blind); likewise the int64 labels further down
        with open(path, newline="", encoding="utf-8-sig") as f:  # pragma: no mutate
            reader = csv.DictReader(f, strict=True)
            check_header(reader.fieldnames)
            line = reader.line_num + 1
            for row in reader:
                yield reader.line_num, row
                line = reader.line_num + 1
    except UnicodeDecodeError as e:
        with open(path, "rb") as f:  # the decoder reads in chunks: find the line here
            line = next(n for n, raw in enumerate(f, start=1)
                        if raw.decode("utf-8", "ignore").encode() != raw)  # pragma: no mutate
        raise DataError(f"{path}, line {line}: byte {e.object[e.start]:#04x} is not UTF-8 "
                        "text; save the file as UTF-8 (CSV UTF-8)") from None
    except csv.Error as e:
        raise DataError(f"{path}, line {line}: malformed CSV ({e}); look for a stray double "
                        'quote (") on that line or after it and remove it') from None


def read_fer_csv_rows(path, default_usage="Training"):
    """Every row of a Kaggle-style FER2013 CSV (emotion,pixels[,Usage]): images uint8
    (N, 48, 48), labels (N,) and each row's Usage (Training, PublicTest or PrivateTest;
    ``default_usage`` where the column is absent or empty: "Training" to train on such a
    CSV, the evaluation tool passes "test")."""
    X, y, usages = [], [], []
    path = Path(path)

    def check_header(fields):
        if fields is None:
            raise DataError(f"{path} is empty; expected a header emotion,pixels,Usage and "
                            "one row per image")
        missing = {"emotion", "pixels"} - set(fields)
        if missing:
            raise DataError(f"{path}: header {fields} lacks columns {sorted(missing)}; "
                            "expected emotion,pixels,Usage")

    for line, row in _csv_rows(path, check_header):
        try:
            label = int(row["emotion"])
            pixels = np.array(row["pixels"].split(), dtype=np.uint8)
            if not 0 <= label < 7 or pixels.size != 48 * 48:
                raise ValueError
        except (ValueError, AttributeError, OverflowError):
            raise DataError(f"{path}, line {line}: expected an emotion id in 0..6 and "
                            "2304 pixel values in 0..255") from None
        usage = (row.get("Usage") or "").strip()
        if usage and usage not in ("Training", *FER_TEST_SPLITS):
            raise DataError(f"{path}, line {line}: unknown Usage {usage!r}; expected "
                            "Training, PublicTest or PrivateTest")
        X.append(pixels.reshape(48, 48))
        y.append(label)
        usages.append(usage or default_usage)
    if not X:
        raise DataError(f"{path} holds no data rows")
    return np.stack(X), np.array(y, dtype=np.int64), usages  # pragma: no mutate


def read_fer_labels_rows(path):
    """Coursework layout: the image paths, labels and ``train``/``test`` folder of each
    row of ``labels_public.txt`` (img,emotion; paths relative to its folder, which they
    may not leave), checked to be regular files."""
    path = Path(path)
    paths, labels, folders = [], [], []

    def check_header(fields):
        if not {"img", "emotion"} <= set(fields or ()):
            raise DataError(f"{path}: expected a header img,emotion, got {fields}")

    for line, row in _csv_rows(path, check_header):
        try:
            label = int(row["emotion"])
            if not 0 <= label < 7 or not row["img"]:
                raise ValueError
        except (ValueError, TypeError):
            raise DataError(f"{path}, line {line}: expected an image path and an emotion "
                            f"id in 0..6, got {row['img']!r}, {row['emotion']!r}") from None
        img = Path(row["img"])
        if img.is_absolute() or ".." in img.parts:
            raise DataError(f"{path}, line {line}: the image path {row['img']!r} leads out "
                            f"of {path.parent}; give paths inside it, such as Train/0.png")
        paths.append(path.parent / img)
        labels.append(label)
        folders.append("test" if row["img"].lower().startswith("test") else "train")
    bad = [(p, why) for p in paths if (why := file_problem(p))]
    if bad:
        raise DataError(f"{path} lists {len(bad)} missing images, e.g. {bad[0][0]} "
                        f"({bad[0][1]})")
    return paths, np.array(labels, dtype=np.int64), folders  # pragma: no mutate


def fer_usage(name):
    """The FER2013 split a file name announces: Training, PublicTest or PrivateTest by
    its prefix, else "test" (a test image of unknown split)."""
    for usage in ("Training", *FER_TEST_SPLITS):
        if Path(name).name.startswith(usage + "_"):
            return usage
    return "test"
