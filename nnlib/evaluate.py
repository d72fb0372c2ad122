"""Load a saved FER2013 model and test it on a data set.

    python -m nnlib.evaluate --model models/fer2013_fcnet.npz --data DATA [--split S] [--json OUT]

The model is an nnlib ``.npz`` (``nnlib.io.save_model``) or a Keras ``.keras`` file
(``nnlib.cnn``); the data is a folder with one subfolder per emotion (file prefixes
optional), a flat folder of images (no labels: predictions only), a FER2013 CSV, or a
folder holding ``labels_public.txt``. Only test images are scored: rows whose Usage (CSV)
or file-name prefix says Training are left out unless ``--split all``; ``--split
PublicTest`` or ``PrivateTest`` keeps one official test split. The report says how many
images of which split were scored.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
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
    fer_usage,
    list_images,
    read_fer_csv_rows,
    read_fer_labels_rows,
    read_images,
)
from nnlib.io import ModelError

# --split: every test image (the default), one official test split, or every image
SPLITS = ("test", *FER_TEST_SPLITS, "all")


class LoadedModel:
    """A saved model behind one interface: ``predict(images uint8 (N, H, W)) -> ids (N,)``;
    ``parameters``: the saved network's parameter count. A Keras model predicts with its
    batch normalisations folded into the layers before them (``nnlib.cnn.fold``) unless
    ``fold`` is False."""

    def __init__(self, path, fold=True):
        self.path = Path(path)
        if self.path.is_dir():
            raise ModelError(f"{self.path} is a folder, not a model file; give the .npz or "
                             ".keras file itself")
        if not self.path.is_file():
            raise FileNotFoundError(f"no model file at {self.path}; train it first (notebooks "
                                    "Q5 and Q6) or pass the right --model path")
        suffix = self.path.suffix.lower()
        if suffix == ".npz":
            from nnlib.io import load_model
            self.model, self.preprocessor, self.info = load_model(self.path)
            if self.preprocessor is None:
                raise ModelError(f"{self.path} holds no preprocessing statistics; save it "
                                 "with save_model(path, model, preprocessor)")
            self.input_shape = tuple(self.preprocessor.image_shape)
            self.kind = "nnlib"
            self.parameters = self.model.num_params()
        elif suffix == ".keras":
            if importlib.util.find_spec("keras") is None:  # without importing it yet
                raise ModelError(f"{self.path} is a Keras model and Keras is not installed "
                                 "here: pip install -e '.[cnn]'")
            from nnlib.cnn import load_keras_model
            from nnlib.cnn.fold import fold_batch_norm
            from nnlib.cnn.models import set_threads
            set_threads()
            model = load_keras_model(self.path)
            self.parameters = model.count_params()  # of the network saved
            # the same predictions, faster (folding changes the scores by about 1e-6)
            self.model = fold_batch_norm(model) if fold else model
            self.input_shape = tuple(self.model.input_shape[1:3])
            self.info = {}
            self.kind = "keras"
        else:
            raise ModelError(f"{self.path}: unknown model type {suffix!r}; expected an nnlib "
                             ".npz or a Keras .keras file")
        classes = (self.model.num_classes if self.kind == "nnlib"
                   else self.model.output_shape[-1])
        if classes != len(FER2013_CLASSES) or len(self.input_shape) < 2:
            raise ModelError(f"{self.path} is not a FER2013 classifier: it predicts {classes} "
                             f"classes from inputs {self.input_shape}, expected "
                             f"{len(FER2013_CLASSES)} classes from 48x48 images")

    def predict(self, images, progress=False):
        """Class ids (N,); ``progress``: a progress bar on a terminal while a Keras model
        predicts (in chunks of whole batches, so the predictions are the same)."""
        images = np.asarray(images)
        if images.ndim == 4 and images.shape[-1] == 1:
            images = images[..., 0]
        if images.shape[1:3] != self.input_shape[:2]:
            raise ValueError(f"the model {self.path} takes {self.input_shape[0]}x"
                             f"{self.input_shape[1]} images, got {images.shape[1]}x"
                             f"{images.shape[2]}; resize the data set or pick the right model")
        if self.kind == "nnlib":
            scores = self.model.scores(self.preprocessor.transform(images))
            if self.info.get("tta_flip", False):  # average with the mirrored faces
                scores = scores + self.model.scores(
                    self.preprocessor.transform(images[:, :, ::-1]))
            return scores.argmax(axis=1)
        from tqdm import tqdm

        from nnlib.cnn import predict_keras
        chunk = 16 * 256  # whole batches of predict_keras's 256
        parts = [predict_keras(self.model, images[i:i + chunk])
                 for i in tqdm(range(0, len(images), chunk), desc="predicting", unit="chunk",
                               leave=False, disable=None if progress else True)]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


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
    if path.is_dir() and (path / "fer2013.csv").is_file():  # a data set's root
        return load_fer_eval_data(path / "fer2013.csv", split, progress)
    if path.is_file() and path.name == "labels_public.txt":
        path = path.parent
    if not path.is_dir():
        raise DataError(f"no data at {path}: give a folder of images (with or without emotion "
                        "subfolders), a FER2013 CSV, or a folder with labels_public.txt")
    if (path / "labels_public.txt").is_file():
        paths, labels, folders = read_fer_labels_rows(path / "labels_public.txt")
        usages = [fer_usage(p) if f == "test" else "Training" for p, f in zip(paths, folders)]
        keep = _keep(usages, split, path / "labels_public.txt")
        files = [paths[i] for i in keep]
        return (read_images(files, "L", progress=progress), labels[keep], files,
                _counts(usages, keep))
    subdirs = sorted(p for p in path.iterdir() if p.is_dir())
    if {p.name for p in subdirs} >= {"test"} and not {p.name.lower() for p in subdirs} & set(
            FER2013_CLASSES):  # a data set's root: its test/ folder holds the test images
        return load_fer_eval_data(path / "test", split, progress)
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


def _keep(usages, split, source):
    """Indices of the rows of ``split``; raises if there are none."""
    if split == "all":
        keep = range(len(usages))
    elif split == "test":
        keep = [i for i, u in enumerate(usages) if u != "Training"]
    else:
        keep = [i for i, u in enumerate(usages) if u == split]
    keep = np.array(list(keep), dtype=np.int64)
    if not len(keep):
        have = ", ".join(f"{n:,} {u}" for u, n in _counts(usages, range(len(usages))).items())
        raise DataError(f"{source} holds no {'test' if split == 'test' else split} images "
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
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support
    model = model if isinstance(model, LoadedModel) else LoadedModel(model)
    X, y, _, counts = load_fer_eval_data(data, split, progress)
    if y is None:
        raise DataError(f"{data} has no labels: use emotion subfolders, a CSV or "
                        "labels_public.txt to test, or test_fer_model() to predict only")
    pred = model.predict(X, progress)
    labels = list(range(len(FER2013_CLASSES)))
    p, r, f, _ = precision_recall_fscore_support(y, pred, labels=labels, zero_division=0)
    return {"accuracy": float(np.mean(pred == y)), "n": int(len(y)), "split": split,
            "counts": counts, "classes": list(FER2013_CLASSES),
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
    scored = ", ".join(f"{n:,} {u}" for u, n in m["counts"].items())
    lines = [f"classification rate: {m['accuracy']:.4f} on {m['n']:,} images ({scored})", "",
             f"{'class':>10} {'precision':>9} {'recall':>7} {'F1':>7}"]
    for c, p, r, f in zip(m["classes"], m["precision"], m["recall"], m["f1"]):
        lines.append(f"{c:>10} {p:9.3f} {r:7.3f} {f:7.3f}")
    lines += ["", "confusion matrix (rows: true, columns: predicted)",
              " " * 10 + "".join(f"{c[:7]:>8}" for c in m["classes"])]
    for c, row in zip(m["classes"], m["confusion_matrix"]):
        lines.append(f"{c:>10}" + "".join(f"{v:8d}" for v in row))
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
    parser.add_argument("--json", help="also write the metrics to this JSON file")
    args = parser.parse_args(argv)
    try:
        if args.json:
            _check_writable(Path(args.json))
        metrics = evaluate(args.model, args.data, args.split, progress=True)
        print(format_report(metrics))
        if args.json:
            out = {k: v for k, v in metrics.items() if k != "predictions"}
            write_text(Path(args.json), json.dumps(out, indent=2) + "\n")
    except (FileNotFoundError, ValueError, OSError) as e:  # DataError, ModelError included
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        sys.exit(2)


def _check_writable(path):
    """Fail before the work, not after it, if the JSON output cannot be written."""
    if path.is_dir():
        raise ValueError(f"--json {path} is a folder; give a file name")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ValueError(f"--json {path}: cannot create its folder ({e.strerror})") from None
    if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ValueError(f"--json {path}: no permission to write there; choose another path")


if __name__ == "__main__":
    main()
