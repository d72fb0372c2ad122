"""Helpers the notebooks call (they define no functions of their own beyond a few lines)."""
import types

import numpy as np
import pytest

from nnlib import timing
from nnlib.hpo import best_epoch
from nnlib.loaded import mirror_accuracies, mirrored


def test_best_epoch_is_counted_from_one():
    trial = types.SimpleNamespace(user_attrs={"val_acc_history": [0.2, 0.5, 0.4],
                                              "train_acc_history": [0.3, 0.6, 0.9]})
    assert best_epoch(trial) == (2, 0.6, 0.5)


def test_mirror_accuracies_add_the_mirror_views_scores():
    X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    Xm = np.array([[0.0, 3.0], [0.0, 1.0], [2.0, 0.0]])
    y = np.array([1, 1, 0])
    # alone: argmax 0, 1, 0 (ties go to the first class) -> 2 of 3 right;
    # with the mirror view: sums (1, 3), (0, 2), (3, 1) -> argmax 1, 1, 0 -> all right
    assert mirror_accuracies(lambda A: A, X, Xm, y) == (pytest.approx(2 / 3), 1.0)


def test_mirrored_flips_left_right():
    a = np.arange(12).reshape(1, 2, 3, 2)
    np.testing.assert_array_equal(mirrored(a)[0, :, :, 0], [[4, 2, 0], [10, 8, 6]])
    np.testing.assert_array_equal(mirrored(a[..., 0])[0], [[4, 2, 0], [10, 8, 6]])


def test_timed_predictions_warm_up_then_keep_the_fastest_pass(monkeypatch):
    clock = iter([0.0, 2.0, 10.0, 11.0, 20.0, 24.0])  # passes of 2 s, 1 s, 4 s
    monkeypatch.setattr(timing.time, "perf_counter", lambda: next(clock))
    seen = []
    pred, rate = timing.timed_predictions(lambda x: seen.append(len(x)) or x * 2,
                                          np.arange(600), repeats=3)
    assert seen == [256 + 600 % 256, 600, 600, 600]  # a warm-up of one whole and the partial
    assert rate == 600 / 1.0
    np.testing.assert_array_equal(pred, np.arange(600) * 2)


def test_timed_predictions_stop_after_one_long_pass(monkeypatch):
    clock = iter([0.0, 30.0])
    monkeypatch.setattr(timing.time, "perf_counter", lambda: next(clock))
    _, rate = timing.timed_predictions(lambda x: x, np.arange(300), repeats=3)
    assert rate == 300 / 30.0


def test_upload_box_shows_each_uploads_table(monkeypatch):
    pytest.importorskip("ipywidgets")
    from nnlib import predict
    shown = []
    record = {"file": "me.jpg", "faces": [{"face": 0, "box": [1, 2, 3, 4], "emotion": "happy",
                                           "probability": 0.9}]}
    monkeypatch.setattr(predict, "predict_upload",
                        lambda value, model: shown.append((value, model)) or [
                            (record, None), ({"file": "x", "faces": [], "problem": "no face"},
                                             None)])
    box = predict.upload_box("MODEL")
    upload, out = box.children
    printed = []
    monkeypatch.setattr("builtins.print", lambda *a, **k: printed.append(" ".join(map(str, a))))
    upload.value = ({"name": "me.jpg", "content": b"x", "size": 1, "type": "image/jpeg",
                     "last_modified": __import__("datetime").datetime(2026, 1, 1)},)
    assert shown and shown[0][1] == "MODEL"
    printed = [p for p in printed if not p.startswith("\x1b")]  # clear_output's codes
    assert "happy" in printed[0] and printed[1:] == ["no face"]
