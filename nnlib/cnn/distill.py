"""Distillation into a small CNN: the student's start, a slimmed copy of a trained network
(``slim``); its training targets (``distillation_targets``); and the Keras loss and
accuracy that ``train_cnn`` trains on them (``keras_distillation_loss``,
``label_accuracy``), the same loss as the NumPy ``nnlib.classifiers.distillation_loss``.
With the teacher itself rather than its cached probabilities, ``teaching_model`` runs it
beside the student on each augmented batch ("consistent teaching", Beyer et al., 2022).
``distillation_setup`` is what ``train_cnn`` asks of this module; the recipe that trains a
student (``train_student``) is in ``nnlib.cnn.recipes``."""
from __future__ import annotations

import functools

import numpy as np

from nnlib.cnn.backend import import_keras
from nnlib.cnn.models import ARCHITECTURES, build_cnn
from nnlib.digest import arrays_digest


def slim(model, arch):
    """A ``build_cnn(arch)`` network started from the weights of ``model`` (built by
    ``build_cnn`` with the same number of blocks, convolutions per block and dense units,
    and at least as many filters): each convolution keeps the filters whose batch
    normalisation scale |gamma| is largest ("network slimming", Liu et al., 2017), in their
    order, and the next layer keeps the matching input channels."""
    spec = ARCHITECTURES[arch]
    blocks, convs = len(spec["filters"]), spec["convs"]
    shape = [(b, k) for b in range(1, blocks + 1) for k in range(1, convs + 1)]
    names = [f"conv{b}_{k}" for b, k in shape]
    have = {layer.name for layer in model.layers}
    if (not set(names) <= have or f"conv{blocks + 1}_1" in have or f"conv1_{convs + 1}" in have
            or "dense" not in have or model.get_layer("dense").units != spec["dense"]):
        raise ValueError(f"slim: {model.name} does not have the layout of {arch!r} "
                         "(blocks, convolutions per block, dense units)")
    student = build_cnn(arch, input_shape=model.input_shape[1:],
                        num_classes=model.output_shape[-1])
    kept = None  # the input channels the next layer keeps
    for (b, k), name in zip(shape, names):
        (kernel,) = model.get_layer(name).get_weights()
        bn = model.get_layer(f"bn{b}_{k}").get_weights()
        n = student.get_layer(name).filters
        if n > kernel.shape[-1]:
            raise ValueError(f"slim: {name} has {kernel.shape[-1]} filters, {arch!r} needs {n}")
        keep = np.sort(np.argsort(-np.abs(bn[0]), kind="stable")[:n])
        if kept is not None:
            kernel = kernel[:, :, kept, :]
        student.get_layer(name).set_weights([kernel[..., keep]])
        student.get_layer(f"bn{b}_{k}").set_weights([w[keep] for w in bn])
        kept = keep
    dense_kernel, dense_bias = model.get_layer("dense").get_weights()
    student.get_layer("dense").set_weights([dense_kernel[kept], dense_bias])
    for name in ("bn_dense", "scores"):
        student.get_layer(name).set_weights(model.get_layer(name).get_weights())
    return student


def distillation_targets(labels, soft=None, num_classes=7):
    """Training targets float32 (N, 1 + C): the true class id in column 0, then the
    teacher's probabilities at the distillation temperature (``nnlib.soften``); where
    ``soft`` is None (validation data), the one-hot row of the true class instead."""
    labels = np.asarray(labels)
    if soft is None:
        soft = np.eye(num_classes, dtype=np.float32)[labels]
    soft = np.asarray(soft, dtype=np.float32)
    if soft.ndim != 2 or len(soft) != len(labels):
        raise ValueError(f"distillation_targets: soft must have shape ({len(labels)}, C), "
                         f"got {soft.shape}")
    return np.concatenate([labels[:, None].astype(np.float32), soft], axis=1)


@functools.cache
def _loss_class():
    keras = import_keras()
    ops = keras.ops

    @keras.saving.register_keras_serializable(package="nnlib")
    class DistillationLoss(keras.losses.Loss):
        """``alpha`` T^2 times the cross-entropy of the student's scores at temperature T
        with the soft targets (columns 1.. of y_true), plus ``1 - alpha`` times the
        cross-entropy with the true class (column 0). The student's outputs are
        probabilities: softmax(log p / T) is the softmax of its logits at T.
        ``online``: y_pred is ``teaching_model``'s (N, 2C), the student's probabilities
        then the teacher's, and the soft targets are the teacher's softened at T (no
        gradient flows into them); y_true holds the class only."""

        def __init__(self, temperature=1.0, alpha=1.0, online=False, name="distillation",
                     **kwargs):
            super().__init__(name=name, **kwargs)
            self.temperature, self.alpha = float(temperature), float(alpha)
            self.online = bool(online)

        def call(self, y_true, y_pred):
            if self.online:
                c = y_pred.shape[-1] // 2
                teacher = ops.log(ops.clip(ops.stop_gradient(y_pred[:, c:]), 1e-7, 1.0))
                targets = ops.softmax(teacher / self.temperature, axis=-1)
                y_pred = y_pred[:, :c]
            else:
                targets = y_true[:, 1:]
            log_p = ops.log(ops.clip(y_pred, 1e-7, 1.0))
            labels = ops.cast(y_true[:, 0], "int32")
            hard = -ops.take_along_axis(log_p, labels[:, None], axis=1)[:, 0]
            log_q = ops.log_softmax(log_p / self.temperature, axis=-1)
            soft = -ops.sum(targets * log_q, axis=-1) * self.temperature ** 2
            return self.alpha * soft + (1.0 - self.alpha) * hard

        def get_config(self):
            # "online" only where set, so that the configs saved before it stay the same
            return {**super().get_config(), "temperature": self.temperature,
                    "alpha": self.alpha, **({"online": True} if self.online else {})}

    return DistillationLoss


def keras_distillation_loss(temperature, alpha, online=False):
    """The Keras loss for ``distillation_targets``, or with ``online`` for the outputs of
    ``teaching_model`` (see ``DistillationLoss``)."""
    return _loss_class()(temperature, alpha, online)


def label_accuracy(num_classes=None):
    """Keras metric "accuracy": the share of images whose top class is the true class
    (column 0 of ``distillation_targets``), among the first ``num_classes`` columns of
    the outputs (None: all; ``teaching_model`` appends the teacher's)."""
    keras = import_keras()
    ops = keras.ops

    def correct(y_true, y_pred):
        if num_classes is not None:
            y_pred = y_pred[:, :num_classes]
        return ops.cast(ops.equal(ops.cast(ops.argmax(y_pred, axis=-1), "int32"),
                                  ops.cast(y_true[:, 0], "int32")), "float32")

    return keras.metrics.MeanMetricWrapper(correct, name="accuracy")


# two computations of the same targets may differ by this much per image, on average, in
# each of targets_fingerprint's sums (float32 round-off is about 6e-8)
TARGETS_TOLERANCE = 1e-6


def targets_fingerprint(targets):
    """What identifies ``distillation_targets`` (N, 1 + C) from one machine to another: the
    SHA-256 of the classes (column 0), N, and per soft column three sums over the images
    (plain, of squares, and weighted by the position i / N). The teacher's float32
    probabilities differ in their last bits from one CPU to another, and so would a digest
    of the targets; the sums agree up to round-off, while another temperature, teacher or
    order of the images changes them."""
    targets = np.asarray(targets, dtype=np.float32)
    soft = targets[:, 1:].astype(np.float64)
    position = np.arange(len(soft)) / len(soft)
    sums = np.concatenate([soft.sum(axis=0), (soft ** 2).sum(axis=0), position @ soft])
    return {"classes": arrays_digest([targets[:, 0]]), "n": len(targets),
            "sums": [float(v) for v in sums]}


def same_targets(a, b):
    """Whether two ``targets_fingerprint`` are of the same targets: the same classes and N,
    and sums that differ by at most TARGETS_TOLERANCE per image."""
    if not (isinstance(a, dict) and isinstance(b, dict)):
        return a == b
    return (a.get("classes") == b.get("classes") and isinstance(a.get("n"), int)
            and a["n"] == b.get("n") and len(a.get("sums", ())) == len(b.get("sums", ()))
            and all(abs(x - y) <= TARGETS_TOLERANCE * a["n"]
                    for x, y in zip(a["sums"], b["sums"])))


def same_settings(a, b):
    """Whether two ``train_cnn`` settings are the same run's: equal, except that the
    distillation targets are compared by ``same_targets``."""
    da, db = a.get("distillation"), b.get("distillation")
    if not (isinstance(da, dict) and isinstance(db, dict)):
        return a == b
    without = ({**a, "distillation": {**da, "targets": None}},
               {**b, "distillation": {**db, "targets": None}})
    return without[0] == without[1] and same_targets(da.get("targets"), db.get("targets"))


def distillation_setup(num_classes, distillation, y_train, y_val, teacher=None):
    """What ``train_cnn`` trains a distillation run on: (its settings entry, the loss, the
    metric, y_train, y_val). ``distillation``: dict with ``temperature`` and ``alpha``
    (and whatever else identifies the run). Without a teacher, y_train holds
    ``distillation_targets`` (their ``targets_fingerprint`` joins the settings); with one,
    class ids (N,) (the digest of the teacher's weights joins them)."""
    t, alpha = distillation["temperature"], distillation["alpha"]
    if teacher is not None:
        labels = np.asarray(y_train)
        if labels.ndim != 1:
            raise ValueError(f"with a teacher, y_train holds class ids (N,), got "
                             f"{labels.shape}")
        # column 0 of y_true is the class, as in distillation_targets
        return ({**distillation, "teacher": arrays_digest(teacher.get_weights())},
                keras_distillation_loss(t, alpha, online=True), label_accuracy(num_classes),
                labels[:, None].astype(np.float32),
                np.asarray(y_val)[:, None].astype(np.float32))
    y_train = np.asarray(y_train, dtype=np.float32)
    if y_train.ndim != 2 or y_train.shape[1] != num_classes + 1:
        raise ValueError(f"distillation needs y_train of shape (N, 1 + {num_classes}) from "
                         f"distillation_targets, got {y_train.shape}")
    return ({**distillation, "targets": targets_fingerprint(y_train)},
            keras_distillation_loss(t, alpha), label_accuracy(), y_train,
            distillation_targets(y_val, num_classes=num_classes))


def teaching_model(student, teacher, augment=None):
    """A Keras model that trains ``student`` beside a frozen ``teacher`` (both: images
    (N, 48, 48, 1) -> probabilities (N, C)): it maps images, augmented by the layer
    ``augment`` if given, to (N, 2C), the student's probabilities then the teacher's on
    the same augmented images, for ``keras_distillation_loss(..., online=True)``. The teacher
    always predicts in inference mode and is set untrainable."""
    keras = import_keras()
    teacher.trainable = False
    images = keras.Input(student.input_shape[1:], name="image")
    x = images if augment is None else augment(images)
    both = keras.layers.Concatenate(name="student_teacher")(
        [student(x), teacher(x, training=False)])
    return keras.Model(images, both, name="teaching")
