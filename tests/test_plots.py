import matplotlib
import numpy as np
import pytest

from nnlib.plots import plot_confusion

matplotlib.use("Agg")


def test_confusion_figure_shows_counts_and_row_percentages():
    cm = np.array([[8, 2], [0, 0]])  # an empty row must not divide by zero
    fig = plot_confusion(cm, ["a", "b"])
    counts, pct = fig.axes[:2]
    assert [t.get_text() for t in counts.texts] == ["8", "2", "0", "0"]
    assert [t.get_text() for t in pct.texts] == ["80", "20", "0", "0"]


def test_confusion_shape_must_match_classes():
    with pytest.raises(ValueError, match=r"shape \(2, 2\), expected \(3, 3\)"):
        plot_confusion(np.eye(2, dtype=int), ["a", "b", "c"])
