"""Keras and TensorFlow, imported on first use (so that importing nnlib sets nothing):
TensorFlow is the default backend unless ``KERAS_BACKEND`` names another, and its C++
start-up logs are kept quiet unless ``TF_CPP_MIN_LOG_LEVEL`` is set."""
from __future__ import annotations

import os


def _defaults():
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def import_keras():
    """The ``keras`` module, with the environment defaults above."""
    _defaults()
    import keras
    return keras


def import_tensorflow():
    """The ``tensorflow`` module, with the environment defaults above."""
    _defaults()
    import tensorflow as tf
    return tf
