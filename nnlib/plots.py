"""Figures shared by the notebooks (matplotlib is imported when a function is called)."""
from __future__ import annotations

import numpy as np


def plot_confusion(cm, classes):
    """Two heat maps of a confusion matrix ``cm`` (C, C) of counts (rows: true class,
    columns: predicted): the counts, and each row as a percentage of its true class.
    Returns the matplotlib figure."""
    import matplotlib.pyplot as plt
    cm = np.asarray(cm)
    if cm.ndim != 2 or cm.shape != (len(classes), len(classes)):
        raise ValueError(f"plot_confusion: cm has shape {cm.shape}, expected "
                         f"({len(classes)}, {len(classes)}) for {len(classes)} classes")
    pct = 100 * cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.8))
    for ax, M, fmt, title in ((axes[0], cm, "d", "counts"),
                              (axes[1], pct, ".0f", "% of true class")):
        ax.imshow(M, cmap="Blues")
        for i in range(len(classes)):
            for j in range(len(classes)):
                ax.text(j, i, format(M[i, j], fmt), ha="center", va="center", fontsize=7,
                        color="white" if M[i, j] > M.max() / 2 else "black")
        ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(len(classes)), classes, fontsize=8)
        ax.set_xlabel("predicted")
        ax.set_title(title, fontsize=9)
        ax.grid(False)
    axes[0].set_ylabel("true")
    fig.tight_layout()
    return fig
