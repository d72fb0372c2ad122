"""Keras and TensorFlow, imported on first use (so that importing nnlib sets nothing):
TensorFlow is the default backend unless ``KERAS_BACKEND`` names another, and its C++
start-up logs are kept quiet unless ``TF_CPP_MIN_LOG_LEVEL`` is set."""
from __future__ import annotations

import contextlib
import functools
import os
import re
import sys
import tempfile

_set = []  # non-empty once the defaults are in place
# what TensorFlow's C++ side prints while it starts: absl's notice, INFO/WARNING/ERROR lines
# about oneDNN, CUDA drivers and cuInit on a machine without a GPU
START_UP_NOISE = re.compile(
    r"^WARNING: All log messages before absl::InitializeLog\(\) is called|"
    r"^[IWE]\d{4} [\d:. ]+\d+ \w+\.cc:\d+\]|^\s*$")


def _defaults():
    # once only: these functions are also called inside tf.data functions that TensorFlow
    # traces, and tracing a call to os.environ prints the whole environment in a warning
    if _set:
        return
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    _set.append(True)


@contextlib.contextmanager
def quiet_start_up():
    """Hold back what C++ code writes to the standard error while the block runs, then
    write back every line that is not ``START_UP_NOISE``. TensorFlow logs before absl reads
    ``TF_CPP_MIN_LOG_LEVEL``, so that variable alone does not silence these lines."""
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL") not in (None, "2"):  # the user asked for logs
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            lines = held.read().decode(errors="replace").splitlines()
            kept = [line for line in lines if not START_UP_NOISE.search(line)]
            if kept:
                print("\n".join(kept), file=sys.stderr)


def import_keras():
    """The ``keras`` module, with the environment defaults above."""
    _defaults()
    if os.environ["KERAS_BACKEND"] == "tensorflow":
        import_tensorflow()  # first, so that its start-up lines are held back
    import keras
    return keras


def keras_layer(define):
    """A function returning the Keras layer class that ``define(keras)`` makes, defined once
    Keras is imported and registered under the package "nnlib", so that a model holding
    it loads in safe mode."""
    @functools.cache
    def layer_class():
        keras = import_keras()
        return keras.saving.register_keras_serializable(package="nnlib")(define(keras))
    layer_class.__doc__ = define.__doc__
    return layer_class


def import_tensorflow():
    """The ``tensorflow`` module, with the environment defaults above; its devices are
    listed once at import, so that their start-up lines are held back too."""
    _defaults()
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    with quiet_start_up():
        import tensorflow as tf
        tf.config.list_physical_devices()
    return tf
