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
| ``train`` | ``train_cnn`` (resumable, crash-safe), ``measure_throughput`` |
| ``run_folder`` | a run's record, history and checkpoint; ``stop_run``, ``drop_weights`` |
| ``recipes`` | ``train_member``, ``train_candidate``, ``train_student``: one path; |
| | ``compare_candidates`` over seeds, on a study's share of the faces (``study_data``) |
| ``budgets`` | the Q6 and Q7 notebooks' budgets (``q6_budget``), shared with their scripts |
| ``ensemble`` | test-time augmentation, ensembles, choosing members and views, ``predict_keras`` |
| ``stored`` | a finished run's weights kept once, in the ensemble that holds them |
| ``teacher`` | a teacher's class probabilities for distillation, cached by fingerprint |
| ``distill`` | a student's start (``slim``), its targets and loss (``keras_distillation_loss``) |
| ``fold`` | ``fold_batch_norm``: a trained network for faster prediction, the same function |
| ``io`` | ``load_keras_model`` (safe mode, clear errors), ``save_keras_model`` (atomic) |
"""
from nnlib.cnn.augment import AUGMENT, make_dataset, random_affine
from nnlib.cnn.budgets import Q6_BUDGETS, Q7_BUDGETS, member_specs, q6_budget
from nnlib.cnn.distill import keras_distillation_loss, slim
from nnlib.cnn.ensemble import (
    Selection,
    ensemble,
    keras_accuracy,
    member_scores,
    predict_keras,
    select_members,
    with_tta,
)
from nnlib.cnn.io import load_keras_model, save_keras_model
from nnlib.cnn.models import (
    ARCHITECTURES,
    BN_MOMENTUM,
    WEIGHT_DECAY,
    build_cnn,
    configure_tensorflow,
    device_description,
    processor_name,
)
from nnlib.cnn.recipes import (
    CANDIDATES,
    MEMBER_DEFAULTS,
    candidate_dir,
    compare_candidates,
    store_in_ensemble,
    study_data,
    train_candidate,
    train_member,
    train_student,
)
from nnlib.cnn.run_folder import TrainedRun, drop_weights, stop_run
from nnlib.cnn.train import PATIENCE, measure_throughput, train_cnn

__all__ = [
    "ARCHITECTURES", "AUGMENT", "BN_MOMENTUM", "CANDIDATES", "MEMBER_DEFAULTS", "PATIENCE",
    "Q6_BUDGETS", "Q7_BUDGETS", "Selection", "TrainedRun", "WEIGHT_DECAY",
    "build_cnn", "candidate_dir", "compare_candidates", "configure_tensorflow",
    "device_description",
    "drop_weights", "ensemble", "keras_accuracy", "keras_distillation_loss", "load_keras_model",
    "make_dataset", "measure_throughput", "member_scores", "member_specs", "predict_keras",
    "processor_name", "q6_budget", "random_affine", "save_keras_model", "select_members", "slim",
    "stop_run", "store_in_ensemble", "study_data", "train_candidate", "train_cnn", "train_member",
    "train_student", "with_tta",
]
