"""Convolutional networks for FER2013 in Keras 3.

TensorFlow is the default backend (a tf.data pipeline feeds the CPU); training also runs
on Keras's JAX or PyTorch backend (``KERAS_BACKEND``), for a GPU machine without
TensorFlow, with the augmentation inside the training graph. Either way the saved
``.keras`` files are the same and load with any backend.

Keras is imported inside the functions, on first use, so ``import nnlib.cnn`` stays light
and sets nothing. Models take uint8-valued images (N, 48, 48, 1); the scaling to [0, 1] is
the model's first layer, so a saved ``.keras`` file carries its preprocessing.

| module | holds |
| --- | --- |
| ``models`` | the architectures and ``build_cnn``, thread and seed settings, the device |
| ``augment`` | random affine warps (tf.data or a Keras layer) and the tf.data pipeline |
| ``train`` | ``train_cnn`` (resumable, crash-safe), ``stop_run``, ``measure_throughput`` |
| ``members`` | ``train_member``: one ensemble member trained or read back; ``store_in_ensemble`` |
| ``ensemble`` | test-time augmentation, ensembles, choosing members and views, ``predict_keras`` |
| ``stored`` | a finished run's weights kept once, in the ensemble that holds them |
| ``teacher`` | a teacher's class probabilities for distillation, cached by fingerprint |
| ``distill`` | a student's start (``slim``), its targets and loss, ``train_student`` |
| ``fold`` | ``fold_batch_norm``: a trained network for faster prediction, the same function |
| ``io`` | ``load_keras_model`` (safe mode, clear errors), ``save_keras_model`` (atomic) |
"""
from nnlib.cnn.augment import make_dataset, random_affine
from nnlib.cnn.ensemble import (
    Selection,
    ensemble,
    member_scores,
    predict_keras,
    select_members,
    with_tta,
)
from nnlib.cnn.io import load_keras_model, save_keras_model
from nnlib.cnn.members import MEMBER_DEFAULTS, store_in_ensemble, train_member
from nnlib.cnn.models import (
    ARCHITECTURES,
    BN_MOMENTUM,
    build_cnn,
    configure_tensorflow,
    device_description,
    processor_name,
)
from nnlib.cnn.train import PATIENCE, TrainedRun, measure_throughput, stop_run, train_cnn

__all__ = [
    "ARCHITECTURES", "BN_MOMENTUM", "MEMBER_DEFAULTS", "PATIENCE", "Selection", "TrainedRun",
    "build_cnn", "configure_tensorflow", "device_description", "ensemble",
    "load_keras_model", "make_dataset", "measure_throughput", "member_scores",
    "predict_keras", "processor_name", "random_affine", "save_keras_model", "select_members",
    "stop_run",
    "store_in_ensemble", "train_cnn", "train_member", "with_tta",
]
