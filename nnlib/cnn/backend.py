"""Keras and TensorFlow, imported on first use (so that importing nnlib sets nothing):
TensorFlow is the default backend unless ``KERAS_BACKEND`` names another, and its C++
start-up logs are kept quiet unless ``TF_CPP_MIN_LOG_LEVEL`` is set."""
from __future__ import annotations

import os

_set = []  # non-empty once the defaults are in place


def _defaults():
    # once only: these functions are also called inside tf.data functions that TensorFlow
    # traces, and tracing a call to os.environ prints the whole environment in a warning
    if _set:
        return
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    _set.append(True)


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
