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
    assert tuple(fig.get_size_inches()) == (6.3, 3.3)  # the report's text width
    assert tuple(plot_confusion(cm, ["a", "b"], figsize=(8, 3.6)).get_size_inches()) == (8, 3.6)


def test_confusion_shape_must_match_classes():
    with pytest.raises(ValueError, match=r"shape \(2, 2\), expected \(3, 3\)"):
        plot_confusion(np.eye(2, dtype=int), ["a", "b", "c"])


def test_learning_curves_plot_losses_and_errors():
    from nnlib.plots import plot_curves
    h = {"train_loss_history": [2.0, 1.0], "val_loss_history": [2.5, 1.5],
         "train_acc_history": [0.4, 0.7], "val_acc_history": [0.3, 0.6]}
    fig = plot_curves(h, "title", best_epoch=2)
    loss, err = fig.axes
    np.testing.assert_allclose(loss.lines[1].get_ydata(), [2.5, 1.5])
    np.testing.assert_allclose(err.lines[0].get_ydata(), [0.6, 0.3])  # 1 - accuracy
    assert err.lines[2].get_xdata()[0] == 2  # the best epoch's marker
    with pytest.raises(ValueError, match="differ in length"):
        plot_curves(dict(h, val_acc_history=[0.1]))
    acc = plot_curves(h, metric="accuracy").axes[1]
    np.testing.assert_allclose(acc.lines[0].get_ydata(), [0.4, 0.7])
    np.testing.assert_allclose(acc.lines[1].get_ydata(), [0.3, 0.6])
    assert acc.get_ylabel() == "accuracy"
    with pytest.raises(ValueError, match="metric must be"):
        plot_curves(h, metric="f1")


def test_run_curves_plot_each_run_with_its_own_marker():
    from nnlib.plots import plot_runs
    runs = {"seed 0": {"loss": [2.0, 1.0], "val_loss": [2.2, 1.4], "accuracy": [0.3, 0.6],
                       "val_accuracy": [0.25, 0.5]},
            "seed 1": {"loss": [1.8, 0.9, 0.7], "val_loss": [2.0, 1.3, 1.2],
                       "accuracy": [0.35, 0.62, 0.7], "val_accuracy": [0.3, 0.55, 0.58]}}
    fig = plot_runs(runs)
    loss, acc = fig.axes[:2]
    np.testing.assert_allclose(acc.lines[2].get_ydata(), [0.3, 0.55, 0.58])  # seed 1, val
    assert acc.lines[3].get_linestyle() == "--"  # its training curve
    assert loss.lines[0].get_marker() != loss.lines[2].get_marker()
    # a run that continues another starts after the epochs it continues
    acc = plot_runs(runs, offsets={"seed 1": 5}).axes[1]
    np.testing.assert_array_equal(acc.lines[2].get_xdata(), [6, 7, 8])
    np.testing.assert_array_equal(acc.lines[0].get_xdata(), [1, 2])
    below = plot_runs(runs, legend_below=True)
    assert below.axes[1].get_legend() is None
    assert [t.get_text() for t in below.legends[0].get_texts()] == ["seed 0", "seed 1"]
    with pytest.raises(ValueError, match="'seed 2' lacks \\['val_accuracy'\\]"):
        plot_runs({"seed 2": {"loss": [1], "val_loss": [1], "accuracy": [1]}})


def test_learning_curves_of_a_solver():
    from types import SimpleNamespace

    from nnlib.plots import plot_curves
    solver = SimpleNamespace(train_loss_history=[2.0, 1.0], val_loss_history=[2.5, 1.5],
                             train_acc_history=[0.4, 0.7], val_acc_history=[0.3, 0.6])
    err = plot_curves(solver).axes[1]
    np.testing.assert_allclose(err.lines[1].get_ydata(), [0.7, 0.4])


def test_plot_loss_panels_draws_each_run():
    from nnlib.plots import plot_loss_panels
    runs = {"lr 0.1": {"train_loss_history": [2.0, 1.5, 1.2], "val_loss_history": [2.1, 1.6, 1.7],
                       "val_acc_history": [0.2, 0.4, 0.3]},
            "lr 1": {"train_loss_history": [3.0, 4.0], "val_loss_history": [3.5, 5.0],
                     "val_acc_history": [0.1, 0.1]}}
    fig = plot_loss_panels(runs)
    axes = fig.axes
    assert [ax.get_title() for ax in axes] == ["lr 0.1", "lr 1"]
    train, val, best = axes[0].lines
    assert list(train.get_ydata()) == [2.0, 1.5, 1.2] and list(val.get_xdata()) == [1, 2, 3]
    assert list(best.get_xdata()) == [2, 2]  # the second epoch: the best validation accuracy
    assert list(axes[1].lines[2].get_xdata()) == [1, 1]  # ties: the first
