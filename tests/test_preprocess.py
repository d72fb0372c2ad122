"""Preprocessing and augmentation against values computed here by hand."""
import numpy as np
import pytest

from nnlib.preprocess import Preprocessor, random_flip_shift, random_hflip


def images(n=50, shape=(4, 5), seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, *shape), dtype=np.uint8)


def test_mean_and_std_come_from_training_data_and_apply_to_new_data():
    X, new = images(), images(seed=1)
    pre = Preprocessor(center="image", scale="std").fit(X)
    F = X.astype(np.float64)
    mean = F.mean(axis=0)
    std = (F - mean).std()
    np.testing.assert_allclose(pre.transform(new), ((new - mean) / std).reshape(len(new), -1),
                               rtol=1e-5, atol=1e-5)
    T = pre.transform(X)
    assert abs(T.mean()) < 1e-5 and abs(T.std() - 1) < 1e-4
    assert T.dtype == np.float32 and T.shape == (50, 20)


def test_channel_centering_and_grayscale():
    X = images(shape=(3, 3, 3))
    pre = Preprocessor(center="channel", scale=None).fit(X)
    channel_means = X.reshape(-1, 3).astype(np.float64).mean(axis=0)
    np.testing.assert_allclose(pre.transform(X[:2]),
                               (X[:2] - channel_means).reshape(2, -1), atol=1e-4)
    gray = Preprocessor(grayscale=True, center=None, scale=None).fit(X)
    luma = X[:2].astype(np.float64) @ [0.299, 0.587, 0.114]
    np.testing.assert_allclose(gray.transform(X[:2]), luma.reshape(2, -1), atol=1e-3)
    assert gray.image_shape == (3, 3)


def test_zca_whitens_the_training_data():
    X = np.random.default_rng(0).multivariate_normal(
        np.zeros(6), np.diag([100, 50, 10, 5, 1, 1]) + 2, size=2000)
    X = np.clip(X + 128, 0, 255).astype(np.uint8).reshape(2000, 2, 3)
    pre = Preprocessor(center="image", scale="std", zca=1e-6).fit(X)
    Z = pre.transform(X).astype(np.float64)
    cov = Z.T @ Z / len(Z)
    np.testing.assert_allclose(cov, np.eye(6), atol=1e-3)  # whitened: identity covariance
    plain = Preprocessor(center="image", scale="std").fit(X).transform(X)
    assert not np.allclose(plain.T @ plain / len(plain), np.eye(6), atol=0.1)
    # ZCA is symmetric: W = U diag(1/sqrt(s + eps)) U^T
    np.testing.assert_allclose(pre.whitening, pre.whitening.T, atol=1e-6)


def test_transform_checks_shapes_and_fit():
    with pytest.raises(RuntimeError, match="before fit"):
        Preprocessor().transform(images())
    pre = Preprocessor().fit(images())
    with pytest.raises(ValueError, match="trained on"):
        pre.transform(images(shape=(5, 4)))


def test_flips_mirror_left_right_for_about_half_of_the_images():
    X = images(n=200, shape=(3, 4)).astype(np.float32)
    out = random_hflip((3, 4))(X.reshape(200, -1), np.random.default_rng(0)).reshape(X.shape)
    mirrored = np.array([np.array_equal(o, x[:, ::-1]) and not np.array_equal(o, x)
                         for o, x in zip(out, X)])
    same = np.array([np.array_equal(o, x) for o, x in zip(out, X)])
    assert (mirrored | same).all()  # left-right only: never upside down
    assert 70 < mirrored.sum() < 130
    np.testing.assert_array_equal(X, images(n=200, shape=(3, 4)).astype(np.float32))


def shifted(img, dy, dx):
    """The image moved by (dy, dx) pixels with zeros coming in, written out by loops."""
    H, W = img.shape
    out = np.zeros_like(img)
    for i in range(H):
        for j in range(W):
            si, sj = i - dy, j - dx
            if 0 <= si < H and 0 <= sj < W:
                out[i, j] = img[si, sj]
    return out


def test_shifts_move_images_by_up_to_max_shift_with_zero_padding():
    X = (images(n=100, shape=(5, 6)).astype(np.float32) + 1)  # no zero pixels
    out = random_flip_shift((5, 6), max_shift=2, flip=False)(
        X.reshape(100, -1), np.random.default_rng(3)).reshape(X.shape)
    seen = set()
    for o, x in zip(out, X):
        matches = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                   if np.array_equal(o, shifted(x, dy, dx))]
        assert len(matches) == 1
        seen.add(matches[0])
    assert len(seen) >= 15  # most of the 25 shifts occur in 100 draws


def test_augmentation_is_seeded():
    X = images(n=20, shape=(4, 4)).astype(np.float32).reshape(20, -1)
    aug = random_flip_shift((4, 4), max_shift=1)
    a = aug(X, np.random.default_rng(5))
    np.testing.assert_array_equal(a, aug(X, np.random.default_rng(5)))
    assert not np.array_equal(a, aug(X, np.random.default_rng(6)))
