"""A saved FER2013 model behind one interface, whichever kind it is: an nnlib ``.npz``
(``nnlib.io``) or a Keras ``.keras`` file (``nnlib.cnn``, imported only for one, since
importing TensorFlow takes seconds)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
from tqdm import tqdm

from nnlib.data import FER2013_CLASSES
from nnlib.io import ModelError, load_model


def mirrored(images):
    """Images (N, H, W) or (N, H, W, C) flipped left-right (the mirror view)."""
    return np.asarray(images)[:, :, ::-1]  # axis 2 is the width in both layouts


def mirror_accuracies(scores, X, X_mirror, y):
    """Accuracy on labels ``y`` (N,) of the class scores ``scores(X)`` (a function of
    features (N, D) -> (N, C), e.g. an nnlib network's ``loss``), alone and summed with
    those of ``X_mirror``, the features of the mirrored images (the mirror view)."""
    s = scores(X)
    return (float(np.mean(s.argmax(1) == y)),
            float(np.mean((s + scores(X_mirror)).argmax(1) == y)))


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
            self.model, self.preprocessor, self.info = load_model(self.path)
            if self.preprocessor is None:
                raise ModelError(f"{self.path} holds no preprocessing statistics; save it "
                                 "with save_model(path, model, preprocessor)")
            self.input_shape = tuple(self.preprocessor.image_shape)  # (H, W) or (H, W, C)
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
            self.model = model
            if fold:  # the same predictions, faster (the scores change by about 1e-6)
                try:
                    self.model = fold_batch_norm(model)
                except ValueError:  # a network that does not fold runs as saved
                    pass
            self.input_shape = tuple(self.model.input_shape[1:])  # (H, W[, C]), None: any
            self.info = {}
            self.kind = "keras"
        else:
            raise ModelError(f"{self.path}: unknown model type {suffix!r}; expected an nnlib "
                             ".npz or a Keras .keras file")
        classes = (self.model.num_classes if self.kind == "nnlib"
                   else self.model.output_shape[-1])
        if classes != len(FER2013_CLASSES) or len(self.input_shape) not in (2, 3):
            raise ModelError(f"{self.path} is not a FER2013 classifier: it predicts {classes} "
                             f"classes from inputs {self.input_shape}, expected "
                             f"{len(FER2013_CLASSES)} classes from 48x48 images")

    def predict(self, images, progress=False):
        """Class ids (N,) of grayscale images (N, H, W) or (N, H, W, 1); ``progress``: a
        progress bar on a terminal while a Keras model predicts (in chunks of whole
        batches, so the predictions are the same)."""
        images = np.asarray(images)
        if images.ndim == 4 and images.shape[-1] == 1:
            images = images[..., 0]
        self._check_shape(images)
        if self.kind == "nnlib":
            scores = self.model.scores(self.preprocessor.transform(images))
            if self.info.get("tta_flip"):  # average with the mirrored faces
                scores = scores + self.model.scores(
                    self.preprocessor.transform(mirrored(images)))
            return scores.argmax(axis=1)
        from nnlib.cnn import predict_keras
        chunk = 16 * 256  # whole batches of predict_keras's 256
        parts = [predict_keras(self.model, images[i:i + chunk])
                 for i in tqdm(range(0, len(images), chunk), desc="predicting", unit="chunk",
                               leave=False, disable=None if progress else True)]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def predict_proba(self, images):
        """Class probabilities (N, 7) of grayscale images (N, H, W) or (N, H, W, 1), under
        the views ``predict`` uses (their argmax is its ids): an nnlib network's softmax of
        its scores, averaged with the mirrored faces' where ``tta_flip``; a Keras model's
        output (its softmax averaged over its test-time views and members)."""
        images = np.asarray(images)
        if images.ndim == 4 and images.shape[-1] == 1:
            images = images[..., 0]
        self._check_shape(images)
        if not len(images):
            return np.zeros((0, len(FER2013_CLASSES)))
        if self.kind == "nnlib":
            scores = self.model.scores(self.preprocessor.transform(images))
            if self.info.get("tta_flip"):  # summed in float32 as predict sums them
                scores = (scores + self.model.scores(
                    self.preprocessor.transform(mirrored(images)))) / 2
            scores = scores.astype(np.float64)  # pragma: no mutate (None is float64 too)
            e = np.exp(scores - scores.max(axis=1, keepdims=True))
            return e / e.sum(axis=1, keepdims=True)
        from nnlib.cnn.augment import as_images
        # batches of 256 as predict_keras runs them: the same arithmetic, the same outputs
        return np.asarray(self.model.predict(as_images(images), batch_size=256, verbose=0),
                          dtype=np.float64)

    def _check_shape(self, images):
        """Raise ValueError naming the model file unless it takes ``images``' shape (checked
        here: a network fed another shape fails deep inside, or broadcasts into garbage)."""
        want = self.input_shape if len(self.input_shape) == 3 else (*self.input_shape, 1)
        got = images.shape[1:] if images.ndim == 4 else (*images.shape[1:], 1)
        if len(got) != len(want) or any(w not in (None, g) for w, g in zip(want, got)):
            raise ValueError(f"the model {self.path} takes {_dims(want)} images, got "
                             f"{_dims(got)}; resize or convert the data set, or pick the "
                             "right model")


def _dims(shape):
    """(48, 48, 1) -> '48x48' (grayscale), (48, 48, 3) -> '48x48x3'; any size: '?'."""
    shape = shape[:-1] if shape[-1] == 1 else shape
    return "x".join("?" if s is None else str(s) for s in shape)
