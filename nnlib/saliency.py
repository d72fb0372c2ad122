"""Saliency maps: which pixels of a 48x48 face drove a saved model's decision, as the
gradient of the chosen class's output with respect to the input grey levels.

An nnlib network is differentiated by its own layers' backward functions
(``nnlib.layers``), through its preprocessing (centring, scaling, whitening) and, where
the model has the mirror view, through both views, as ``LoadedModel.predict`` scores them;
a Keras model by ``tf.GradientTape`` through the whole saved model (test-time views,
members, softmax).
"""
from __future__ import annotations

import numpy as np

from nnlib.layers import linear_backward, linear_forward, relu_backward, relu_forward


def mlp_gradient(model, preprocessor, image, cls):
    """d score[cls] / d image for a ``FullyConnectedNet`` behind a ``Preprocessor``:
    image uint8 or float (H, W) grey levels -> float (H, W) (per grey level).

    Forward through the layers keeping their inputs, then ``linear_backward`` and
    ``relu_backward`` from a one-hot upstream gradient down to the features; the
    preprocessing F = ((x - mean) / std) @ whitening is affine, so its backward pass is
    dF @ whitening.T / std."""
    X = np.asarray(image, dtype=np.float32)[None]
    h = preprocessor.transform(X)
    L = model.num_layers
    params = {k: v.astype(np.float64) for k, v in model.params.items()}
    h = h.astype(np.float64)  # float64: the map is compared with numerical gradients
    caches = []
    for i in range(1, L):
        z = linear_forward(h, params[f"W{i}"], params[f"b{i}"])
        caches.append((h, z))
        h = relu_forward(z)
    dout = np.zeros((1, model.num_classes))
    dout[0, cls] = 1.0
    dh, _, _ = linear_backward(dout, h, params[f"W{L}"], params[f"b{L}"])
    for i in range(L - 1, 0, -1):
        h_in, z = caches[i - 1]
        dh, _, _ = linear_backward(relu_backward(dh, z), h_in, params[f"W{i}"],
                                   params[f"b{i}"])
    if preprocessor.whitening is not None:
        dh = dh @ preprocessor.whitening.T.astype(np.float64)
    return dh.reshape(X.shape[1:]) / float(preprocessor.std)


def mlp_saliency(loaded, image, cls):
    """d score / d image (H, W) of the score ``LoadedModel.predict`` ranks for an nnlib
    model: the class's score, plus that of the mirrored face where the model has the
    mirror view (its gradient mirrored back)."""
    grad = mlp_gradient(loaded.model, loaded.preprocessor, image, cls)
    if loaded.info.get("tta_flip", False):
        mirrored = np.asarray(image)[:, ::-1]
        grad = grad + mlp_gradient(loaded.model, loaded.preprocessor, mirrored, cls)[:, ::-1]
    return grad


def keras_saliency(model, image, cls):
    """d output[cls] / d image (H, W) of a Keras model (its output: the class
    probabilities, averaged over its views and members), by ``tf.GradientTape``."""
    from nnlib.cnn.backend import import_tensorflow
    tf = import_tensorflow()
    x = tf.constant(np.asarray(image, dtype=np.float32)[None, :, :, None])
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = model(x, training=False)[0, cls]
    return tape.gradient(out, x).numpy()[0, :, :, 0].astype(np.float64)


def saliency(loaded, image, cls=None):
    """(gradient (H, W), class): the gradient of ``loaded``'s (a ``LoadedModel``) output for
    class ``cls`` (default: its prediction) with respect to the face ``image`` uint8
    (H, W). For the map, take its absolute value."""
    image = np.asarray(image)
    if cls is None:
        cls = int(loaded.predict(image[None])[0])
    if loaded.kind == "nnlib":
        return mlp_saliency(loaded, image, cls), cls
    return keras_saliency(loaded.model, image, cls), cls


def saliency_map(grad, sigma=1.0):
    """A map in [0, 1] (H, W) of where the gradient ``grad`` (H, W) is large: |grad|
    smoothed by a Gaussian of ``sigma`` px (a raw gradient speckles from pixel to pixel)
    over its 99th percentile, clipped (a few pixels would otherwise wash out the rest)."""
    from scipy.ndimage import gaussian_filter
    heat = gaussian_filter(np.abs(np.asarray(grad, dtype=np.float64)), sigma)
    top = np.percentile(heat, 99)
    return np.clip(heat / top, 0, 1) if top > 0 else np.zeros_like(heat)


def saliency_figure(rows, classes):
    """A figure with one column per model: its face crop with the saliency map laid over
    it (``saliency_map``), titled with the model and its emotion, above its class
    probabilities as bars.

    rows: (model name, face uint8 (H, W), gradient (H, W), probabilities (C,)) tuples;
    classes: the C class names."""
    import matplotlib.pyplot as plt
    n = len(rows)
    fig, axes = plt.subplots(2, n, figsize=(1.75 * n + 0.6, 3.9), squeeze=False,
                             gridspec_kw={"height_ratios": [1.15, 1]}, layout="constrained")
    for k, (name, face, grad, probs) in enumerate(rows):
        top = int(np.argmax(probs))
        heat = saliency_map(grad)
        ax = axes[0, k]
        ax.imshow(face, cmap="gray", vmin=0, vmax=255)
        # the map's colour, opaque where it is high: the face shows through the rest
        ax.imshow(plt.get_cmap("inferno")(heat), alpha=0.15 + 0.75 * heat)
        ax.set_title(f"{name}\n{classes[top]} {probs[top]:.2f}", fontsize=8)
        ax.set_axis_off()
        bars = axes[1, k]
        bars.barh(range(len(classes)), probs, color=["C3" if c == top else "C0"
                                                     for c in range(len(classes))])
        bars.set(xlim=(0, 1), yticks=range(len(classes)))
        bars.set_yticklabels(classes if k == 0 else [], fontsize=8)
        bars.invert_yaxis()  # angry at the top, FER2013's order downwards
        bars.tick_params(axis="x", labelsize=7)
        bars.set_xlabel("probability", fontsize=8)
        bars.grid(axis="x", alpha=0.3)
    return fig
