"""The model zoo: VGG-style networks for FER2013 (``build_cnn``), the CPU thread and seed
settings, and a description of the device Keras computes on."""
from __future__ import annotations

import os

import numpy as np

from nnlib.cnn.backend import import_keras, import_tensorflow, keras_layer

# filters per block, convolutions per block, dense units, dropout before the classifier
ARCHITECTURES = {
    "tiny": dict(filters=(8, 16), convs=1, dense=32, dropout=0.2),
    "compact": dict(filters=(32, 64, 128, 256), convs=1, dense=256, dropout=0.4),
    # Q7's distilled student: "compact" slimmed to three quarters of its filters
    "small": dict(filters=(24, 48, 96, 192), convs=1, dense=256, dropout=0.4),
    "vgg_small": dict(filters=(32, 64, 128, 256), convs=2, dense=256, dropout=0.5),
    "wide": dict(filters=(64, 128, 256, 256), convs=1, dense=512, dropout=0.5),
    # a GPU's network: about 1 GFLOP an image, 20 times "compact"
    "vgg": dict(filters=(64, 128, 256, 512), convs=2, dense=512, dropout=0.5),
}

# a fully connected network trained with the CNNs' recipe (Q6's like-for-like control):
# Q5's final hidden widths, each dense layer with batch normalisation and ReLU, and
# compact's dropout before the classifier
MLP = dict(hidden=(964, 953), dropout=0.4)

# the design every architecture shares unless an override changes it (Q6's ablations):
# batch normalisation after each convolution, 2x2 max pooling after each block ("stride":
# the block's last convolution strides by 2 instead), zero ("same") padding, the pixels
# where they are (``shuffle_pixels``: one fixed random permutation of the pixel positions
# before the first convolution, which a fully connected network's first layer would absorb
# but which leaves a convolution no neighbourhoods to exploit)
DESIGN = dict(kernel=3, batch_norm=True, downsample="pool", padding="same",
              shuffle_pixels=False)
SHUFFLE_SEED = 0

# With Keras's default 0.99 the moving statistics lag behind a fast-changing network, so
# a short run scores near chance on validation; 0.9 follows within a few dozen steps and
# costs nothing on a long run.
BN_MOMENTUM = 0.9
# the L2 penalty of the layers and AdamW's decoupled weight decay (train_cnn)
WEIGHT_DECAY = 1e-4


def configure_tensorflow(threads=None, seed=0):
    """Thread counts for the CPU (one pool of all cores for each op, ops run one at a
    time, which is fastest for one model on few cores) and seeds everywhere; with
    another Keras backend, only the seeds."""
    set_threads(threads)
    import_keras().utils.set_random_seed(seed)


def set_threads(threads=None):
    """TensorFlow's CPU thread pools (one pool of ``threads`` cores, default all, for each
    op; ops one at a time), without seeding anything (``configure_tensorflow`` adds the
    seeds): for prediction (about 7-13% faster than TensorFlow's defaults on two cores).
    Does nothing with another backend or once TensorFlow has started executing."""
    keras = import_keras()
    if keras.backend.backend() != "tensorflow":
        return
    tf = import_tensorflow()
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads or os.cpu_count())
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # already initialised in this process
        pass


def build_cnn(arch="compact", input_shape=(48, 48, 1), num_classes=7, l2=WEIGHT_DECAY,
              **overrides):
    """A VGG-style network: blocks of 3x3 convolutions (same padding) with batch
    normalisation and ReLU, each followed by 2x2 max pooling; global average pooling,
    one dense layer (none if ``dense`` is 0) with dropout, softmax. ``arch`` names an entry
    of ARCHITECTURES; ``overrides`` replace its keys (filters, convs, dense, dropout) or
    DESIGN's (kernel, batch_norm, downsample, padding, shuffle_pixels)."""
    keras = import_keras()
    layers = keras.layers
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {sorted(ARCHITECTURES)}")
    spec = {**DESIGN, **ARCHITECTURES[arch]}
    unknown = set(overrides) - set(spec)
    if unknown:
        raise ValueError(f"unknown settings {sorted(unknown)}; choose from {sorted(spec)}")
    spec.update(overrides)
    if spec["downsample"] not in ("pool", "stride"):
        raise ValueError(f"downsample must be 'pool' or 'stride', not {spec['downsample']!r}")
    reg = keras.regularizers.l2(l2) if l2 else None
    norm = spec["batch_norm"]
    inputs = keras.Input(input_shape, name="image")
    x = layers.Rescaling(1 / 255.0, name="scale")(inputs)
    if spec["shuffle_pixels"]:  # after any augmentation, which warps the image itself
        x = shuffle_pixels_layer()(seed=SHUFFLE_SEED, name="shuffle_pixels")(x)
    for b, filters in enumerate(spec["filters"], start=1):
        for k in range(spec["convs"]):
            stride = 2 if spec["downsample"] == "stride" and k == spec["convs"] - 1 else 1
            x = layers.Conv2D(filters, spec["kernel"], strides=stride, padding=spec["padding"],
                              use_bias=not norm, kernel_regularizer=reg,
                              name=f"conv{b}_{k + 1}")(x)
            if norm:
                x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"bn{b}_{k + 1}")(x)
            x = layers.ReLU(name=f"relu{b}_{k + 1}")(x)
        if spec["downsample"] == "pool":
            x = layers.MaxPooling2D(2, name=f"pool{b}")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    if spec["dense"]:
        x = layers.Dense(spec["dense"], kernel_regularizer=reg, name="dense")(x)
        if norm:
            x = layers.BatchNormalization(momentum=BN_MOMENTUM, name="bn_dense")(x)
        x = layers.ReLU(name="relu_dense")(x)
    x = layers.Dropout(spec["dropout"], name="dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="scores")(x)
    return keras.Model(inputs, outputs, name=f"fer_{arch}")


def build_mlp(input_shape=(48, 48, 1), num_classes=7, l2=WEIGHT_DECAY):
    """``MLP`` as a Keras network on the CNNs' inputs (uint8 images scaled to [0, 1],
    flattened): dense layers without biases, each followed by batch normalisation and
    ReLU, then dropout and the softmax classifier."""
    keras = import_keras()
    layers = keras.layers
    reg = keras.regularizers.l2(l2) if l2 else None
    inputs = keras.Input(input_shape, name="image")
    x = layers.Flatten(name="flatten")(layers.Rescaling(1 / 255.0, name="scale")(inputs))
    for i, units in enumerate(MLP["hidden"], start=1):
        x = layers.Dense(units, use_bias=False, kernel_regularizer=reg, name=f"dense{i}")(x)
        x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"bn{i}")(x)
        x = layers.ReLU(name=f"relu{i}")(x)
    x = layers.Dropout(MLP["dropout"], name="dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="scores")(x)
    return keras.Model(inputs, outputs, name="fer_mlp")


@keras_layer
def shuffle_pixels_layer(keras):
    """``ShufflePixels`` (``keras_layer``)."""

    class ShufflePixels(keras.layers.Layer):
        """Images (N, H, W, C) with their H*W pixel positions permuted by one fixed
        permutation, drawn from ``seed``; the channels of a pixel move together."""

        def __init__(self, seed=0, **kwargs):
            super().__init__(**kwargs)
            self.seed = seed

        def build(self, input_shape):
            h, w = input_shape[1], input_shape[2]
            self.order = np.random.default_rng(self.seed).permutation(h * w)

        def call(self, images):
            ops = keras.ops
            shape = ops.shape(images)
            flat = ops.reshape(images, (shape[0], -1, shape[3]))
            return ops.reshape(ops.take(flat, self.order, axis=1), shape)

        def get_config(self):
            return {**super().get_config(), "seed": self.seed}

    return ShufflePixels


def device_description():
    """Where Keras computes: its backend and the processor, e.g. "jax, NVIDIA H100"."""
    keras = import_keras()
    backend = keras.backend.backend()
    # each backend's own module, imported only with that backend (it may be absent)
    if backend == "jax":
        import jax
        d = jax.devices()[0]
        name = d.device_kind if d.platform == "gpu" else "CPU"
    elif backend == "torch":
        import torch
        name = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
    else:
        tf = import_tensorflow()
        gpus = tf.config.list_physical_devices("GPU")
        name = (tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU")
                if gpus else "CPU")
    return f"{backend}, {name} ({os.cpu_count()} CPU cores)" if name == "CPU" \
        else f"{backend}, {name}"


def processor_name(device):
    """The processor of a ``device_description``: "jax, NVIDIA H100 80GB HBM3" ->
    "H100 80GB HBM3", "tensorflow, CPU (2 CPU cores)" -> "CPU (2 CPU cores)"; None (a run
    recorded without it) -> "not recorded"."""
    return device.split(", ", 1)[-1].removeprefix("NVIDIA ") if device else "not recorded"
