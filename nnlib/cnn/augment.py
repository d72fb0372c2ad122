"""Augmentation: one random affine warp per image (flip, rotation, zoom, shift), as a
tf.data map for the CPU (``random_affine``, ``make_dataset``) or as a registered Keras
layer inside the training step for JAX or PyTorch (``RandomAffine``)."""
from __future__ import annotations

import numpy as np

from nnlib.cnn.backend import import_tensorflow, keras_layer

# the largest warp of a training image: a shift (fraction of the size), a rotation
# (fraction of a turn) and a zoom (fraction of the scale), each drawn uniformly up to it
AUGMENT = dict(shift=0.1, rotation=0.05, zoom=0.1)


def _affine_transforms(ops, theta, scale, mirror, tx, ty, h, w):
    """(N, 8) projective transforms (the inverse map: output pixel -> input pixel) of
    rotations ``theta`` (radians), zooms ``scale`` (> 1 zooms out), mirrors ``mirror``
    (-1 flips left-right, 1 keeps) and shifts ``tx``, ``ty`` (pixels), all (N,), about the
    image centre; ``ops`` is ``tensorflow`` or ``keras.ops``."""
    cos, sin = ops.cos(theta) * scale, ops.sin(theta) * scale
    # output pixel (x, y) samples input A @ ((x, y) - centre) + centre + shift
    a0, a1, b0, b1 = cos * mirror, -sin, sin * mirror, cos
    cx, cy = (w - 1) / 2, (h - 1) / 2
    a2 = cx - a0 * cx - a1 * cy + tx
    b2 = cy - b0 * cx - b1 * cy + ty
    zero = ops.zeros_like(theta)
    return ops.stack([a0, a1, a2, b0, b1, b2, zero, zero], axis=1)


def random_affine(images, shift=AUGMENT["shift"], rotation=AUGMENT["rotation"],
                  zoom=AUGMENT["zoom"], flip=True, seed=None):
    """Augment a batch (N, H, W, C) with one random affine warp per image: a left-right
    flip, a rotation of up to ``rotation`` of a turn, a zoom of up to ``zoom`` and a
    shift of up to ``shift`` of the size, composed into a single bilinear resampling
    (three times cheaper than one Keras layer per transform, and one interpolation
    instead of three blurs the faces less). Borders repeat the nearest pixel.
    ``seed``: an int64 tensor of shape (2,) makes the draws a function of it (stateless
    random ops, so that parallel batches do not race for one generator's state)."""
    tf = import_tensorflow()
    n = tf.shape(images)[0]
    h = tf.cast(tf.shape(images)[1], tf.float32)
    w = tf.cast(tf.shape(images)[2], tf.float32)
    draws = iter(range(5))

    def uniform(limit):
        if seed is None:
            return tf.random.uniform([n], -limit, limit)
        return tf.random.stateless_uniform([n], seed + [0, next(draws)], -limit, limit)

    theta = uniform(rotation) * 2 * np.pi
    scale = 1.0 + uniform(zoom)
    mirror = tf.where(uniform(1.0) < 0.0, -1.0, 1.0) if flip else tf.ones([n])
    transforms = _affine_transforms(tf, theta, scale, mirror, uniform(shift) * w,
                                    uniform(shift) * h, h, w)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=transforms, output_shape=tf.shape(images)[1:3],
        fill_value=0.0, interpolation="BILINEAR", fill_mode="NEAREST")


@keras_layer
def random_affine_layer(keras):
    """``RandomAffine`` (``keras_layer``)."""

    class RandomAffine(keras.layers.Layer):
        """``random_affine`` as a Keras layer of any backend: while training, one random
        flip, rotation, zoom and shift per image, drawn from the layer's own seeded
        generator and applied as one bilinear warp; the identity otherwise."""

        def __init__(self, shift=AUGMENT["shift"], rotation=AUGMENT["rotation"],
                     zoom=AUGMENT["zoom"], flip=True, seed=None, **kwargs):
            super().__init__(**kwargs)
            self.shift, self.rotation, self.zoom, self.flip = shift, rotation, zoom, flip
            self.seed = seed
            self.generator = keras.random.SeedGenerator(seed)

        def call(self, images, training=False):
            if not training:
                return images
            ops = keras.ops
            n, h, w = ops.shape(images)[0], images.shape[1], images.shape[2]

            def uniform(limit):
                return keras.random.uniform((n,), -limit, limit, seed=self.generator)

            theta = uniform(self.rotation) * 2 * np.pi
            scale = 1.0 + uniform(self.zoom)
            mirror = (ops.where(uniform(1.0) < 0, -1.0, 1.0) if self.flip
                      else ops.ones((n,)))
            transforms = _affine_transforms(ops, theta, scale, mirror,
                                            uniform(self.shift) * w,
                                            uniform(self.shift) * h, h, w)
            return ops.image.affine_transform(images, transforms, interpolation="bilinear",
                                              fill_mode="nearest")

        def get_config(self):
            return {**super().get_config(), "shift": self.shift, "rotation": self.rotation,
                    "zoom": self.zoom, "flip": self.flip, "seed": self.seed}

    return RandomAffine


def make_dataset(X, y, batch_size, training, seed=0, shift=AUGMENT["shift"],
                 rotation=AUGMENT["rotation"], zoom=AUGMENT["zoom"]):
    """A tf.data pipeline of (image, label) batches.

    Training batches are shuffled each epoch, augmented by ``random_affine`` and of a
    fixed size (the last partial batch is dropped, so the graph is traced once). The
    shuffle and the warps follow ``seed`` alone: each batch's warps are drawn from a
    seed of its own (a seeded random stream, new each epoch), so the batches are the same
    on every run although they are augmented in parallel.
    """
    tf = import_tensorflow()
    X = np.asarray(X, dtype=np.float32)[..., None] if np.ndim(X) == 3 else X
    ds = tf.data.Dataset.from_tensor_slices((X, y))
    if training:
        ds = ds.shuffle(len(X), seed=seed, reshuffle_each_iteration=True)
        ds = ds.batch(batch_size, drop_remainder=True)
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        ds = tf.data.Dataset.zip(ds, seeds).map(
            lambda batch, s: (random_affine(batch[0], shift, rotation, zoom, seed=s), batch[1]),
            num_parallel_calls=tf.data.AUTOTUNE)
    else:
        ds = ds.batch(batch_size)
    return ds.prefetch(tf.data.AUTOTUNE)


def warped_copy(images, seed=0, shift=0.05, rotation=0.03, zoom=0.05):
    """One fixed random warp of each uint8 image (N, H, W): ``random_affine`` without the
    flip (the Solver's augmentation mirrors), seeded by ``seed`` alone; uint8 (N, H, W).
    A copy of the training set for a teacher to label (a transfer set for distillation)."""
    tf = import_tensorflow()
    seed = tf.constant([seed, 0], tf.int64)
    out = random_affine(tf.constant(as_images(images)), shift, rotation, zoom, flip=False,
                        seed=seed).numpy()[..., 0]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def as_images(X):
    """float32 (N, H, W, 1) from uint8 (N, H, W) or (N, H, W, 1)."""
    X = np.asarray(X, dtype=np.float32)
    return X[..., None] if X.ndim == 3 else X
