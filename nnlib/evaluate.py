"""Load a saved FER2013 model and test it on a data set.

    python -m nnlib.evaluate --model models/fer2013_fcnet.npz --data DATA [--json OUT]

The model is an nnlib ``.npz`` (``nnlib.io.save_model``) or a Keras ``.keras`` file
(``nnlib.cnn``); the data is a folder with one subfolder per emotion (file prefixes
optional), a flat folder of images (no labels: predictions only), a FER2013 CSV, or a
folder holding ``labels_public.txt``.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from nnlib.data import (
    FER2013_CLASSES,
    IMAGE_SUFFIXES,
    DataError,
    list_images,
    read_class_folders,
    read_fer_csv,
    read_fer_labels_file,
    read_images,
)


class LoadedModel:
    """A saved model behind one interface: ``predict(images uint8 (N, H, W)) -> ids (N,)``."""

    def __init__(self, path):
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"no model file at {self.path}; train it first (notebooks "
                                    "Q5 and Q6) or pass the right --model path")
        suffix = self.path.suffix.lower()
        if suffix == ".npz":
            from nnlib.io import load_model
            self.model, self.preprocessor, self.info = load_model(self.path)
            if self.preprocessor is None:
                raise ValueError(f"{self.path} holds no preprocessing statistics; save it "
                                 "with save_model(path, model, preprocessor)")
            self.input_shape = tuple(self.preprocessor.image_shape)
            self.kind = "nnlib"
        elif suffix == ".keras":
            from nnlib.cnn import load_keras_model
            self.model = load_keras_model(self.path)
            self.input_shape = tuple(self.model.input_shape[1:3])
            self.info = {}
            self.kind = "keras"
        else:
            raise ValueError(f"{self.path}: unknown model type {suffix!r}; expected an nnlib "
                             ".npz or a Keras .keras file")

    def predict(self, images):
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
        from nnlib.cnn import predict_keras
        return predict_keras(self.model, images)


def load_fer_eval_data(path):
    """Images (N, 48, 48) uint8, labels (N,) or None, and file paths (or None) from PATH."""
    path = Path(path)
    if path.is_file() and path.suffix.lower() == ".csv":
        d = read_fer_csv(path)
        X = np.concatenate([d[k] for k in ("X_train", "X_test", "X_private") if k in d])
        y = np.concatenate([d[k] for k in ("y_train", "y_test", "y_private") if k in d])
        return X, y, None
    if path.is_file() and path.name == "labels_public.txt":
        path = path.parent
    if not path.is_dir():
        raise DataError(f"no data at {path}: give a folder of images (with or without emotion "
                        "subfolders), a FER2013 CSV, or a folder with labels_public.txt")
    if (path / "labels_public.txt").is_file():
        d = read_fer_labels_file(path / "labels_public.txt")
        X = np.concatenate([d[k] for k in ("X_train", "X_test") if k in d])
        y = np.concatenate([d[k] for k in ("y_train", "y_test") if k in d])
        return X, y, None
    if any(p.is_dir() for p in path.iterdir()):
        # sorted class folders, sorted files in each: sorted file-path order
        return read_class_folders(path, FER2013_CLASSES, "L")
    files = list_images(path)
    if not files:
        raise DataError(f"{path} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return read_images(files, "L"), None, files


def evaluate(model, data):
    """Test ``model`` (a path or LoadedModel) on ``data`` (a path); returns a metrics dict.

    The dict has accuracy, n, classes, confusion_matrix (rows: true, columns: predicted),
    precision, recall and f1 (one per class), and predictions.
    """
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support
    model = model if isinstance(model, LoadedModel) else LoadedModel(model)
    X, y, _ = load_fer_eval_data(data)
    if y is None:
        raise DataError(f"{data} has no labels: use emotion subfolders, a CSV or "
                        "labels_public.txt to test, or test_fer_model() to predict only")
    pred = model.predict(X)
    labels = list(range(len(FER2013_CLASSES)))
    p, r, f, _ = precision_recall_fscore_support(y, pred, labels=labels, zero_division=0)
    return {"accuracy": float(np.mean(pred == y)), "n": int(len(y)),
            "classes": list(FER2013_CLASSES),
            "confusion_matrix": confusion_matrix(y, pred, labels=labels).tolist(),
            "precision": p.tolist(), "recall": r.tolist(), "f1": f.tolist(),
            "predictions": pred.tolist()}


def test_fer_model(img_folder, model="models/fer2013_fcnet.npz"):
    """Predicted emotion ids (N,) for the images in ``img_folder``, in sorted file-path order.

    img_folder: a flat folder of images or one with emotion subfolders.
    model: path of a saved nnlib ``.npz`` or Keras ``.keras`` model.
    """
    X, _, _ = load_fer_eval_data(img_folder)
    return LoadedModel(model).predict(X)


test_fer_model.__test__ = False  # not a pytest test, despite its name


def format_report(m):
    lines = [f"classification rate: {m['accuracy']:.4f} on {m['n']} images", "",
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
    parser.add_argument("--json", help="also write the metrics to this JSON file")
    args = parser.parse_args(argv)
    try:
        metrics = evaluate(args.model, args.data)
    except (FileNotFoundError, ValueError) as e:
        sys.exit(f"error: {e}")
    print(format_report(metrics))
    if args.json:
        out = {k: v for k, v in metrics.items() if k != "predictions"}
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
