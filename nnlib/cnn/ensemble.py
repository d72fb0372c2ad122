"""Test-time augmentation (``with_tta``: mirror images and shifts), ensembles that average
their members' scores, the choice of members and views on validation data
(``select_members``), and prediction of class ids."""
from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

from nnlib.cnn.augment import as_images
from nnlib.cnn.backend import import_keras


@functools.cache
def tta_layers():
    """The layers of test-time augmentation, registered so that a saved TTA model loads
    in Keras's safe mode."""
    keras = import_keras()

    @keras.saving.register_keras_serializable(package="nnlib")
    class HorizontalFlip(keras.layers.Layer):
        """Mirror images left-right (axis 2 of N, H, W, C)."""

        def call(self, x):
            return keras.ops.flip(x, axis=2)

    @keras.saving.register_keras_serializable(package="nnlib")
    class Translate(keras.layers.Layer):
        """Move images by ``dx`` pixels right and ``dy`` down; the uncovered border
        mirrors the image."""

        def __init__(self, dx=0, dy=0, **kwargs):
            super().__init__(**kwargs)
            self.dx, self.dy = int(dx), int(dy)

        def call(self, x):
            p = max(abs(self.dx), abs(self.dy))
            h, w = x.shape[1], x.shape[2]
            padded = keras.ops.pad(x, [[0, 0], [p, p], [p, p], [0, 0]], mode="symmetric")
            return padded[:, p - self.dy:p - self.dy + h, p - self.dx:p - self.dx + w, :]

        def get_config(self):
            return {**super().get_config(), "dx": self.dx, "dy": self.dy}

    return HorizontalFlip, Translate


def with_tta(model, flip=True, shift=0):
    """A model that averages ``model``'s scores over views of each image: the image,
    its mirror image (``flip``) and, for ``shift`` > 0, both moved by ``shift`` pixels
    up, down, left and right (up to 10 views)."""
    keras = import_keras()
    HorizontalFlip, Translate = tta_layers()
    inputs = keras.Input(model.input_shape[1:], name="image")
    offsets = [(0, 0)] + ([(shift, 0), (-shift, 0), (0, shift), (0, -shift)] if shift else [])
    views = []
    for dx, dy in offsets:
        x = Translate(dx, dy, name=f"move_{dx}_{dy}")(inputs) if (dx, dy) != (0, 0) else inputs
        views.append(x)
        if flip:
            views.append(HorizontalFlip(name=f"mirror_{dx}_{dy}")(x))
    if len(views) == 1:
        return model
    outputs = keras.layers.Average(name="tta")([model(v) for v in views])
    return keras.Model(inputs, outputs, name=f"{model.name}_tta")


def ensemble(models):
    """A model that averages the class scores of ``models`` (same input shape); a list of
    one model is returned as it is. The members may share names: each is wrapped in a
    model of its own name, ``member_<i>``."""
    keras = import_keras()
    if not models:
        raise ValueError("an ensemble needs at least one model")
    if len(models) == 1:
        return models[0]
    inputs = keras.Input(models[0].input_shape[1:], name="image")
    scores = []
    for i, m in enumerate(models):
        member_in = keras.Input(m.input_shape[1:], name=f"image_{i}")
        scores.append(keras.Model(member_in, m(member_in), name=f"member_{i}")(inputs))
    outputs = keras.layers.Average(name="members")(scores)
    return keras.Model(inputs, outputs, name=f"ensemble_{len(models)}")


def keras_accuracy(model, X, y, flip=False):
    """Accuracy on labels ``y`` (N,) of a Keras classifier for images ``X`` (N, H, W, 1)
    float32, alone or (``flip``) under its mirror view (``with_tta``), in batches of 256."""
    scores = (with_tta(model) if flip else model).predict(X, batch_size=256, verbose=0)
    return float(np.mean(np.asarray(scores).argmax(1) == y))


def predict_keras(model, images, batch_size=256):
    """Class ids (N,) for uint8 images (N, 48, 48) or (N, 48, 48, 1)."""
    return np.asarray(model.predict(as_images(images), batch_size=batch_size,
                                    verbose=0)).argmax(axis=1)


def member_scores(models, images, views, batch_size=256):
    """Class scores of each model under each test-time view: {(i, view name): (N, C)}.
    ``views`` maps a name to ``with_tta`` keywords, e.g. {"flip": dict(flip=True)}."""
    X = as_images(images)
    return {(i, v): np.asarray(with_tta(m, **kw).predict(X, batch_size=batch_size, verbose=0))
            for i, m in enumerate(models) for v, kw in views.items()}


class Selection(NamedTuple):
    """What ``select_members`` chose, and the evidence: ``alone`` (each model's accuracy
    with no extra view), ``ranked`` (model indices, best first), ``grid`` (accuracy of the
    best k models, rows k = 1.., under each view, columns), and the choice: the first
    ``n_members`` of ``ranked`` under ``view``."""
    alone: list
    ranked: list
    grid: object
    n_members: int
    view: str

    @property
    def kept(self):
        return self.ranked[:self.n_members]


def select_members(scores, y, views):
    """Choose an ensemble on validation data: rank the models by their accuracy alone
    (no extra view), then take the best k of them under the view that scores highest;
    on ties, the fewest members, then the earliest view in ``views``.

    scores: ``member_scores``'s dict {(i, view): (N, C)}; y: (N,) true classes;
    views: the view names, cheapest first. Returns a ``Selection``."""
    import pandas as pd  # here: half a second to import, and only this needs it
    views = list(views)
    y = np.asarray(y)
    n = 1 + max(i for i, _ in scores)

    def accuracy(which, v):
        return float(np.mean(np.mean([scores[i, v] for i in which], axis=0).argmax(1) == y))

    alone = [accuracy([i], views[0]) for i in range(n)]
    ranked = sorted(range(n), key=lambda i: -alone[i])  # stable: ties keep their order
    sizes = range(1, n + 1)
    grid = pd.DataFrame({v: [accuracy(ranked[:k], v) for k in sizes] for v in views},
                        index=pd.Index(sizes, name="members"))
    k, view = max(((k, v) for k in sizes for v in views),
                  key=lambda kv: (grid.loc[kv], -kv[0], -views.index(kv[1])))
    return Selection(alone, ranked, grid, int(k), view)
