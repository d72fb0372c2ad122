"""One place decides which FER2013 layout a folder holds; the shared split and the smoke
subsets are one helper each."""
import numpy as np

import nnlib.data
from nnlib.data import fer_split, shrink, subsample
from nnlib.fer_files import fer_layout


def test_fer_layout(tmp_path):
    assert fer_layout(tmp_path) is None
    (tmp_path / "test").mkdir()
    assert fer_layout(tmp_path) == "folders"
    (tmp_path / "labels_public.txt").write_text("img,emotion\n")
    assert fer_layout(tmp_path) == "labels"  # it names its images: before the folders
    (tmp_path / "fer2013.csv").write_text("emotion,pixels,Usage\n")
    assert fer_layout(tmp_path) == "csv"
    other = tmp_path / "other"
    (other / "train").mkdir(parents=True)
    assert fer_layout(other) == "folders"
    (other / "fer2013.csv").mkdir()  # a folder of that name is no CSV
    assert fer_layout(other) == "folders"


def test_fer_split_holds_out_a_tenth(monkeypatch):
    asked = []
    monkeypatch.setattr(nnlib.data, "load_fer2013", lambda **kw: asked.append(kw) or {})
    fer_split()
    fer_split(seed=4)
    assert asked == [{"val_size": 0.1, "seed": 0}, {"val_size": 0.1, "seed": 4}]


def test_shrink_cuts_the_named_splits_only():
    rng = np.random.default_rng(1)
    data = {f"{a}_{s}": (rng.integers(0, 9, (50, 3)) if a == "X" else rng.integers(0, 3, 50))
            for s in ("train", "val", "test") for a in "Xy"}
    before = {k: v.copy() for k, v in data.items()}
    assert shrink(data, {"train": 20, "val": 10}, seed=2) is data
    for split, n in (("train", 20), ("val", 10)):
        X, y = subsample(before[f"X_{split}"], before[f"y_{split}"], n, 2)
        np.testing.assert_array_equal(data[f"X_{split}"], X)
        np.testing.assert_array_equal(data[f"y_{split}"], y)
        assert len(data[f"y_{split}"]) == n
        assert np.bincount(data[f"y_{split}"], minlength=3).min() > 0  # stratified
    np.testing.assert_array_equal(data["X_test"], before["X_test"])


def test_shrink_is_seeded_with_zero_unless_told():
    rng = np.random.default_rng(3)
    X, y = rng.integers(0, 9, (60, 2)), rng.integers(0, 3, 60)
    data = shrink({"X_train": X, "y_train": y}, {"train": 15})
    np.testing.assert_array_equal(data["X_train"], subsample(X, y, 15, 0)[0])
    assert not np.array_equal(data["X_train"], subsample(X, y, 15, 1)[0])
