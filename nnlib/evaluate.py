"""Load a saved FER2013 model and test it on a data set.

    python -m nnlib.evaluate --model models/fer2013_fcnet.npz --data DATA [--split S] [--json OUT]

The model is an nnlib ``.npz`` (``nnlib.io.save_model``) or a Keras ``.keras`` file
(``nnlib.cnn``); the data is a folder with one subfolder per emotion (file prefixes
optional), a flat folder of images (no labels: predictions only), a FER2013 CSV, or a
folder holding ``labels_public.txt``. Only test images are scored: rows whose Usage (CSV)
or file-name prefix says Training are left out unless ``--split all``; ``--split
PublicTest`` or ``PrivateTest`` keeps one official test split (``--split all`` on a data
set's root reads its train/ folder too). The report says how many images of which split
were scored. ``--json`` never replaces the model, the data or a file of the data's folder;
Ctrl-C stops with exit code 130 and leaves no partial file.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

import numpy as np

from nnlib.atomic import write_text
from nnlib.data import (
    FER2013_CLASSES,
    FER_TEST_SPLITS,
    IMAGE_SUFFIXES,
    DataError,
    class_folder_files,
    fer_layout,
    fer_usage,
    list_images,
    read_fer_csv_rows,
    read_fer_labels_rows,
    read_images,
)
from nnlib.loaded import LoadedModel

# --split: every test image (the default), one official test split, or every image
SPLITS = ("test", *FER_TEST_SPLITS, "all")


def load_fer_eval_data(path, split="test", progress=False):
    """The images of ``split`` in the data set at ``path``: a FER2013 root in any layout
    ``nnlib.data.load_fer2013`` reads (``fer2013.csv``, ``test/<emotion>/`` or
    ``labels_public.txt``), or a CSV, a folder of emotion folders, or a flat folder.

    split: "test" (every test image: PublicTest, PrivateTest and images of unknown split,
    i.e. everything but Training rows/files), "PublicTest", "PrivateTest" or "all".
    Returns images (N, 48, 48) uint8, labels (N,) or None (a flat folder: no labels),
    file paths (or None for a CSV) and the number of images of each split kept.
    ``progress``: a progress bar while image files are read (on a terminal only).
    """
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    path = Path(path)
    if path.is_file() and path.suffix.lower() == ".csv":
        X, y, usages = read_fer_csv_rows(path, default_usage="test")
        keep = _keep(usages, split, path)
        return X[keep], y[keep], None, _counts(usages, keep)
    if path.is_file() and path.name == "labels_public.txt":
        path = path.parent
    if not path.is_dir():
        raise DataError(f"no data at {path}: give a folder of images (with or without emotion "
                        "subfolders), a FER2013 CSV, or a folder with labels_public.txt")
    layout = fer_layout(path)
    if layout == "csv":  # a data set's root
        return load_fer_eval_data(path / "fer2013.csv", split)  # no image files
    subdirs = sorted(p for p in path.iterdir() if p.is_dir())
    if layout == "folders" and not {p.name.lower() for p in subdirs} & set(FER2013_CLASSES):
        # a data set's root: test/ holds the test images, and train/ the training ones
        parts = [load_fer_eval_data(path / "test", split, progress)]
        if split == "all" and (path / "train").is_dir():
            parts.append(load_fer_eval_data(path / "train", split, progress))
        return _joined(parts)
    if layout == "labels":
        paths, labels, folders = read_fer_labels_rows(path / "labels_public.txt")
        usages = [fer_usage(p) if f == "test" else "Training" for p, f in zip(paths, folders)]
        keep = _keep(usages, split, path / "labels_public.txt")
        files = [paths[i] for i in keep]
        return (read_images(files, "L", progress=progress), labels[keep], files,
                _counts(usages, keep))
    if subdirs:
        files, labels = class_folder_files(path, FER2013_CLASSES)
        if not files:
            raise DataError(f"{path} holds no images in its emotion folders")
    else:
        files, labels = list_images(path), None
        if not files:
            raise DataError(f"{path} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    usages = [fer_usage(f) for f in files]
    keep = _keep(usages, split, path)
    files = [files[i] for i in keep]
    return (read_images(files, "L", progress=progress), None if labels is None else labels[keep],
            files, _counts(usages, keep))


def _joined(parts):
    """``load_fer_eval_data``'s results for several folders, as one."""
    if len(parts) == 1:
        return parts[0]
    counts = {}
    for part in parts:
        for usage, n in part[3].items():
            counts[usage] = counts.get(usage, 0) + n
    labels = [part[1] for part in parts]
    return (np.concatenate([part[0] for part in parts]),
            None if any(y is None for y in labels) else np.concatenate(labels),
            [f for part in parts for f in part[2]], dict(sorted(counts.items())))


def _keep(usages, split, source):
    """Indices of the rows of ``split``; raises if there are none."""
    if split == "all":
        keep = range(len(usages))
    elif split == "test":
        keep = [i for i, u in enumerate(usages) if u != "Training"]
    else:
        keep = [i for i, u in enumerate(usages) if u == split]
    keep = np.array(list(keep))  # int indices; empty: refused below
    if not len(keep):
        have = ", ".join(f"{n:,} {u}" for u, n in _counts(usages, range(len(usages))).items())
        raise DataError(f"{source} holds no {split} images "
                        f"(it holds {have}); choose another --split")
    return keep


def _counts(usages, keep):
    counts = {}
    for i in keep:
        counts[usages[i]] = counts.get(usages[i], 0) + 1
    return dict(sorted(counts.items()))


def evaluate(model, data, split="test", progress=False):
    """Test ``model`` (a path or LoadedModel) on the ``split`` images of ``data`` (a path;
    see ``load_fer_eval_data``); returns a metrics dict.

    The dict has accuracy, n, split, counts (images scored per split), classes,
    confusion_matrix (rows: true, columns: predicted), precision, recall and f1 (one per
    class), and predictions. ``progress``: progress bars on a terminal's stderr.
    """
    model = model if isinstance(model, LoadedModel) else LoadedModel(model)
    X, y, _, counts = load_fer_eval_data(data, split, progress)
    if y is None:
        raise DataError(f"{data} has no labels: use emotion subfolders, a CSV or "
                        "labels_public.txt to test, or test_fer_model() to predict only")
    m = classification_metrics(y, model.predict(X, progress))
    return {"accuracy": m.pop("accuracy"), "n": m.pop("n"), "split": split, "counts": counts,
            **m}


def classification_metrics(y, pred):
    """The FER2013 metrics of predictions ``pred`` (N,) against true class ids ``y`` (N,):
    a dict of accuracy, n, classes, confusion_matrix (rows: true, columns: predicted),
    precision, recall and f1 (one per class), and predictions."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support
    pred = np.asarray(pred)
    labels = list(range(len(FER2013_CLASSES)))
    p, r, f, _ = precision_recall_fscore_support(y, pred, labels=labels, zero_division=0)
    return {"accuracy": float(np.mean(pred == y)), "n": int(len(y)),
            "classes": list(FER2013_CLASSES),
            "confusion_matrix": confusion_matrix(y, pred, labels=labels).tolist(),
            "precision": p.tolist(), "recall": r.tolist(), "f1": f.tolist(),
            "predictions": pred.tolist()}


def test_fer_model(img_folder, model="models/fer2013_fcnet.npz", split="test"):
    """Predicted emotion ids (N,) for the images in ``img_folder``, in sorted file-path order.

    img_folder: a flat folder of images or one with emotion subfolders (or any layout
    ``load_fer_eval_data`` reads); images named ``Training_*`` are left out unless
    ``split="all"``.
    model: path of a saved nnlib ``.npz`` or Keras ``.keras`` model.
    """
    X, _, _, _ = load_fer_eval_data(img_folder, split)
    return LoadedModel(model).predict(X)


test_fer_model.__test__ = False  # not a pytest test, despite its name


def format_report(m):
    """``evaluate``'s metrics as text: rates to 4 decimals, counts with thousands
    separators."""
    scored = ", ".join(f"{n:,} {u}" for u, n in m["counts"].items())
    lines = [f"classification rate: {m['accuracy']:.4f} on {m['n']:,} images ({scored})", "",
             f"{'class':>10} {'precision':>9} {'recall':>7} {'F1':>7}"]
    for c, p, r, f in zip(m["classes"], m["precision"], m["recall"], m["f1"]):
        lines.append(f"{c:>10} {p:9.4f} {r:7.4f} {f:7.4f}")
    lines += ["", "confusion matrix (rows: true, columns: predicted)",
              " " * 10 + "".join(f"{c[:7]:>8}" for c in m["classes"])]
    for c, row in zip(m["classes"], m["confusion_matrix"]):
        lines.append(f"{c:>10}" + "".join(f"{v:8,d}" for v in row))
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m nnlib.evaluate",
        description="Test a saved FER2013 model (nnlib .npz or Keras .keras) on a data set.")
    parser.add_argument("--model", required=True, help="model file (.npz or .keras)")
    parser.add_argument("--data", required=True,
                        help="folder with emotion subfolders, FER2013 CSV, or folder with "
                             "labels_public.txt")
    parser.add_argument("--split", choices=SPLITS, default="test",
                        help="which images to score: every test image (default), one "
                             "official test split, or all images including Training ones")
    parser.add_argument("--json", help="also write the metrics to this JSON file (not the "
                                       "model, the data or a file in the data's folder)")
    args = parser.parse_args(argv)
    try:
        if args.json:
            _check_writable(Path(args.json))
            _check_not_an_input(Path(args.json), Path(args.model), Path(args.data))
        metrics = evaluate(args.model, args.data, args.split, progress=True)
        print(format_report(metrics))
        if args.json:  # atomic: an interrupted write leaves no partial file
            out = {k: v for k, v in metrics.items() if k != "predictions"}
            write_text(Path(args.json), json.dumps(out, indent=2) + "\n")
    except (FileNotFoundError, ValueError, OSError) as e:  # DataError, ModelError included
        print(f"error: {_one_line(e)}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:  # Ctrl-C: no traceback, the shell's status for SIGINT
        # on a terminal, off the line where ^C (or a progress bar) was left
        print("\n" * sys.stderr.isatty() + "interrupted", file=sys.stderr)
        sys.exit(130)


def _one_line(e):
    """An exception's message on one line, without the terminal colour codes that Keras
    puts in its own."""
    return " ".join(re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", str(e)).split())


def _check_writable(path):
    """Fail before the work, not after it, if the JSON output cannot be written (its
    folder is made only when the file is written)."""
    if path.is_dir():
        raise ValueError(f"--json {path} is a folder; give a file name")
    folder = path.parent
    while not folder.exists() and folder != folder.parent:  # the folder that will hold it
        folder = folder.parent
    if not folder.is_dir():
        raise ValueError(f"--json {path}: {folder} is a file, not a folder; choose another "
                         "path")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ValueError(f"--json {path}: no permission to write there; choose another path")


def _check_not_an_input(out, model, data):
    """Refuse a JSON output that would replace the model, the data file or a file of the
    data folder: the same path, a link to one of them or a hard link."""
    target, data = out.resolve(), data.resolve()
    folder = data if data.is_dir() else data.parent if data.name == "labels_public.txt" else None
    for option, path in (("--model", model), ("--data", data)):
        if target == path.resolve() or _same_file(out, path):
            raise ValueError(f"--json {out} is the {option} file {path}; write the metrics "
                             "to another file")
    if folder is None:
        return
    if target.is_relative_to(folder):
        raise ValueError(f"--json {out} lies inside the data folder {folder}; write the "
                         "metrics outside it")
    if out.is_file() and out.stat().st_nlink > 1:  # a hard link into the folder?
        for parent, _, names in os.walk(folder):
            for name in names:
                if _same_file(out, Path(parent, name)):
                    raise ValueError(f"--json {out} is a hard link to {Path(parent, name)} "
                                     "of the data; write the metrics to another file")


def _same_file(a, b):
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist
        return False


if __name__ == "__main__":
    main()
