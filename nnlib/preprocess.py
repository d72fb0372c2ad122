"""Preprocessing whose statistics come from training data only and travel with models."""
from __future__ import annotations

import numpy as np

GRAY_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R BT.601 luma


class Preprocessor:
    """uint8 images (N, H, W[, C]) -> float32 feature rows (N, D).

    Options:
    - grayscale: convert RGB to luma first
    - center: "image" (subtract the mean training image), "channel" (subtract the mean
      of each channel) or None
    - scale: "std" (divide by the training standard deviation, one scalar) or None
    - zca: ZCA whitening strength epsilon (None: off). After centring, features are
      multiplied by ``U diag(1/sqrt(s + zca)) U^T`` from the eigendecomposition of the
      training covariance (Krizhevsky 2009; Lin et al. 2016); the matrix is D x D

    ``fit`` learns the statistics from training images; ``transform`` applies them.
    """

    def __init__(self, grayscale=False, center="image", scale="std", zca=None):
        if center not in ("image", "channel", None):
            raise ValueError(f"center must be 'image', 'channel' or None, got {center!r}")
        if scale not in ("std", None):
            raise ValueError(f"scale must be 'std' or None, got {scale!r}")
        self.grayscale, self.center, self.scale = bool(grayscale), center, scale
        self.zca = None if zca is None else float(zca)
        self.whitening = None
        self.image_shape = None
        self.mean = None
        self.std = None

    def __repr__(self):
        return (f"Preprocessor(grayscale={self.grayscale}, center={self.center!r}, "
                f"scale={self.scale!r}, image_shape={self.image_shape})")

    def _to_float(self, X):
        X = np.asarray(X)
        if self.grayscale and X.ndim == 4 and X.shape[-1] == 3:
            return X.astype(np.float32) @ GRAY_WEIGHTS
        return X.astype(np.float32)

    def fit(self, X):
        """Learn statistics from training images X of shape (N, H, W[, C])."""
        X = np.asarray(X)
        if X.ndim not in (3, 4) or len(X) == 0:
            raise ValueError(f"Preprocessor.fit expects images of shape (N, H, W[, C]), "
                             f"got {X.shape}")
        F = self._to_float(X)
        self.image_shape = tuple(int(s) for s in F.shape[1:])
        if self.center == "image":
            self.mean = F.mean(axis=0, dtype=np.float64).astype(np.float32)
        elif self.center == "channel":
            axes = tuple(range(F.ndim - 1)) if F.ndim == 4 else None
            self.mean = np.asarray(F.mean(axis=axes, dtype=np.float64), dtype=np.float32)
        else:
            self.mean = np.zeros((), np.float32)
        F -= self.mean  # centred once, in place: F is our own float copy
        if self.scale == "std":
            self.std = np.float32(F.std(dtype=np.float64) + 1e-8)
        else:
            self.std = np.float32(1.0)
        if self.zca is not None:
            Z = (F / self.std).reshape(len(F), -1)
            cov = (Z.T @ Z).astype(np.float64) / len(Z)
            s, U = np.linalg.eigh(cov)
            self.whitening = ((U / np.sqrt(np.maximum(s, 0) + self.zca)) @ U.T).astype(np.float32)
        return self

    def transform(self, X):
        """Images (N, H, W[, C]) -> float32 rows (N, D)."""
        if self.image_shape is None:
            raise RuntimeError("Preprocessor.transform called before fit")
        F = self._to_float(X)
        if F.shape[1:] != self.image_shape:
            raise ValueError(f"images have shape {F.shape[1:]} after preprocessing but the "
                             f"model was trained on {self.image_shape}; resize or convert "
                             "the images first")
        F -= self.mean
        F *= np.float32(1.0 / self.std)
        F = F.reshape(len(F), -1)
        if self.whitening is not None:
            F = F @ self.whitening
        return F

    def fit_transform(self, X):
        return self.fit(X).transform(X)

    def config(self):
        return {"grayscale": self.grayscale, "center": self.center, "scale": self.scale,
                "zca": self.zca,
                "image_shape": list(self.image_shape) if self.image_shape else None}

    def arrays(self):
        out = {"mean": self.mean, "std": np.asarray(self.std)}
        if self.whitening is not None:
            out["whitening"] = self.whitening
        return out

    @classmethod
    def from_config(cls, config, arrays):
        pre = cls(config["grayscale"], config["center"], config["scale"], config.get("zca"))
        pre.image_shape = tuple(config["image_shape"]) if config["image_shape"] else None
        pre.mean = arrays["mean"].astype(np.float32)
        pre.std = np.float32(arrays["std"])
        pre.whitening = arrays.get("whitening")
        return pre


def random_hflip(image_shape):
    """Augmentation for the Solver: flip half of a batch of flattened images left-right."""
    return random_flip_shift(image_shape, max_shift=0, flip=True)


def random_flip_shift(image_shape, max_shift=0, flip=True):
    """Augmentation for the Solver: random left-right flips and translations.

    Each image in a batch of flattened images is flipped with probability 1/2 (if
    ``flip``) and shifted by up to ``max_shift`` pixels along each axis, with zero
    padding (zero is the mean after centring). Returns ``f(X_batch, rng) -> X_batch``.
    """
    shape = tuple(image_shape)
    s = int(max_shift)

    def augment(X, rng):
        n = len(X)
        imgs = X.reshape(n, *shape)
        if flip:
            sel = rng.random(n) < 0.5
            imgs = imgs.copy()
            imgs[sel] = imgs[sel][:, :, ::-1]
        if s:
            H, W = shape[0], shape[1]
            pad = [(0, 0), (s, s), (s, s)] + [(0, 0)] * (len(shape) - 2)
            padded = np.pad(imgs, pad)
            dy, dx = rng.integers(0, 2 * s + 1, (2, n))
            out = np.empty_like(imgs)
            for i in range(n):  # per-image crops; cheap next to the GEMMs
                out[i] = padded[i, dy[i]:dy[i] + H, dx[i]:dx[i] + W]
            imgs = out
        return imgs.reshape(X.shape)

    return augment
