"""Figures shared by the notebooks (matplotlib is imported when a function is called)."""
from __future__ import annotations

import numpy as np


def plot_confusion(cm, classes, figsize=(6.3, 3.3)):
    """Two heat maps of a confusion matrix ``cm`` (C, C) of counts (rows: true class,
    columns: predicted): the counts, and each row as a percentage of its true class;
    numbers at 8 pt. The default ``figsize`` (inches) is the report's text width (16 cm),
    so that they print at 8 pt unscaled. Returns the matplotlib figure."""
    import matplotlib.pyplot as plt
    import seaborn as sns
    cm = np.asarray(cm)
    if cm.ndim != 2 or cm.shape != (len(classes), len(classes)):
        raise ValueError(f"plot_confusion: cm has shape {cm.shape}, expected "
                         f"({len(classes)}, {len(classes)}) for {len(classes)} classes")
    pct = 100 * cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig, axes = plt.subplots(1, 2, figsize=figsize, layout="constrained")
    for ax, M, fmt, title in ((axes[0], cm, "d", "counts"),
                              (axes[1], pct, ".0f", "% of true class")):
        sns.heatmap(M, ax=ax, annot=True, fmt=fmt, cmap="Blues", cbar=False, square=True,
                    annot_kws={"fontsize": 8}, xticklabels=classes, yticklabels=classes)
        ax.set_xticklabels(classes, rotation=45, ha="right", fontsize=8)
        ax.set_yticklabels(classes, rotation=0, fontsize=8)
        ax.set_xlabel("predicted class")
        ax.set_title(title, fontsize=9)
    axes[0].set_ylabel("true class")
    return fig


def plot_curves(histories, title=None, best_epoch=None, train_label="training",
                metric="error"):
    """Learning curves: loss (left) and classification error (right; with
    ``metric="accuracy"``, accuracy) per epoch, training against validation.
    ``histories``: a Solver, or a mapping of ``train_loss_history``, ``val_loss_history``,
    ``train_acc_history`` and ``val_acc_history`` to per-epoch lists (e.g. an Optuna
    trial's user attributes); ``best_epoch`` (1-based) is marked with a dotted line.
    ``train_label``: the training curves' legend, or a pair of them (loss, error) where
    they were measured differently (a Solver's training loss is the mean over the epoch's
    batches, in training mode; its accuracy is measured on a subsample in test mode).
    Returns the matplotlib figure."""
    import matplotlib.pyplot as plt
    if not hasattr(histories, "keys"):  # a Solver
        histories = vars(histories)
    h = {k: np.asarray(histories[k], dtype=float) for k in
         ("train_loss_history", "val_loss_history", "train_acc_history", "val_acc_history")}
    lengths = {len(v) for v in h.values()}
    if len(lengths) != 1:
        raise ValueError(f"plot_curves: the histories differ in length ({sorted(lengths)})")
    ep = np.arange(1, lengths.pop() + 1)
    fig, axes = plt.subplots(1, 2, figsize=(8, 2.8))
    loss_label, error_label = (train_label, train_label) if isinstance(train_label, str) \
        else train_label
    # training dashed, validation solid: told apart without colour too
    axes[0].plot(ep, h["train_loss_history"], ls="--", label=loss_label)
    axes[0].plot(ep, h["val_loss_history"], label="validation")
    axes[0].set_ylabel("loss")
    if metric not in ("error", "accuracy"):
        raise ValueError(f"plot_curves: metric must be 'error' or 'accuracy', not {metric!r}")
    shown = (lambda acc: 1 - acc) if metric == "error" else (lambda acc: acc)
    axes[1].plot(ep, shown(h["train_acc_history"]), ls="--", label=error_label)
    axes[1].plot(ep, shown(h["val_acc_history"]), label="validation")
    axes[1].set_ylabel("classification error" if metric == "error" else "accuracy")
    for ax in axes:
        ax.set_xlabel("epoch")
        if best_epoch is not None:
            ax.axvline(best_epoch, color="k", ls=":", lw=1)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=9)
    return fig


def plot_runs(histories, title=None, offsets=None, legend_below=False):
    """Learning curves of several training runs on shared axes: loss (left) and accuracy
    (right) per epoch, validation solid and training dashed, one colour and marker per
    run. ``histories`` maps a label to a mapping of ``loss``, ``val_loss``, ``accuracy``
    and ``val_accuracy`` per-epoch lists (a Keras history); ``offsets`` maps a label to
    the epochs before its first (a run that continues another); ``legend_below``: the
    legend under the panels (for many runs) rather than in the right one. Returns the
    figure."""
    import matplotlib.pyplot as plt
    # the report's width, so that its legend reads at 8 pt
    fig, axes = plt.subplots(1, 2, figsize=(6.5, 3.4 if legend_below else 2.8),
                             layout="constrained")
    markers = "osD^vP*X"
    for n, (label, h) in enumerate(histories.items()):
        missing = {"loss", "val_loss", "accuracy", "val_accuracy"} - set(h)
        if missing:
            raise ValueError(f"plot_runs: the history of {label!r} lacks {sorted(missing)}")
        ep = np.arange(1, len(h["val_loss"]) + 1) + (offsets or {}).get(label, 0)
        style = dict(lw=1, marker=markers[n % len(markers)], ms=3,
                     markevery=max(1, len(ep) // 8), color=f"C{n}")
        for ax, key in zip(axes, ("loss", "accuracy")):
            ax.plot(ep, h[f"val_{key}"], label=label, **style)
            ax.plot(ep, h[key], ls="--", **style)
            ax.set_ylabel(key)
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    if legend_below:
        fig.legend(*axes[1].get_legend_handles_labels(), loc="outside lower center", ncol=2,
                   fontsize=8, title="solid: validation, dashed: training (augmented)",
                   title_fontsize=8)
    else:
        axes[1].legend(fontsize=8, title="solid: validation\ndashed: training (augmented)",
                       title_fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    return fig


def plot_loss_panels(runs, sharey=True):
    """Training (dashed) and validation loss per epoch, one panel per run. ``runs``: title
    -> histories (as ``plot_curves`` takes them); a run's best validation accuracy epoch
    is marked with a dotted line, so a run that ends early shows where its stopping rule
    fired. Returns the matplotlib figure."""
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(runs), figsize=(2.6 * len(runs), 2.5), sharey=sharey,
                             layout="constrained", squeeze=False)
    for ax, (title, h) in zip(axes[0], runs.items()):
        ep = np.arange(1, len(h["val_loss_history"]) + 1)
        ax.plot(ep, h["train_loss_history"], ls="--", label="training")
        ax.plot(ep, h["val_loss_history"], label="validation")
        ax.axvline(1 + int(np.argmax(h["val_acc_history"])), color="k", ls=":", lw=1,
                   label="best validation accuracy")
        ax.set(title=title, xlabel="epoch")
        ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("loss")
    axes[0, -1].legend(fontsize=7)
    return fig
