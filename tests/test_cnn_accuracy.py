"""keras_accuracy: a Keras classifier's accuracy, alone and under its mirror view."""
import numpy as np
import pytest

keras = pytest.importorskip("keras")

from nnlib.cnn import keras_accuracy  # noqa: E402


def test_keras_accuracy_alone_and_mirrored():
    # a "network" that answers class 1 when the left half of the image is brighter, else 0
    inputs = keras.Input((2, 4, 1))
    left = keras.layers.Lambda(lambda x: keras.ops.mean(x[:, :, :2], axis=(1, 2, 3)))(inputs)
    right = keras.layers.Lambda(lambda x: keras.ops.mean(x[:, :, 2:], axis=(1, 2, 3)))(inputs)
    probs = keras.layers.Lambda(lambda lr: keras.ops.softmax(
        keras.ops.stack([lr[1], lr[0]], axis=1) * 10))([left, right])
    model = keras.Model(inputs, probs)
    X = np.zeros((4, 2, 4, 1), np.float32)
    X[0, :, :2] = 1  # left bright -> 1
    X[1, :, 2:] = 1  # right bright -> 0
    X[2, :, :1] = 1  # left bright -> 1
    X[3, :, 3:] = 1  # right bright -> 0
    y = np.array([1, 1, 1, 0])
    assert keras_accuracy(model, X, y) == 0.75
    # mirrored, each image's mean of both views is a tie (0.5, 0.5): argmax picks class 0
    assert keras_accuracy(model, X, y, flip=True) == 0.25
