import csv
import pickle

import numpy as np
import pytest
from PIL import Image

from nnlib.data import FER2013_CLASSES, DataError, load_cifar10, load_fer2013, stratified_split


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NNLIB_CACHE", str(tmp_path / "cache"))


def write_images(folder, classes, n, shape, mode, prefix=""):
    rng = np.random.default_rng(0)
    for c in classes:
        (folder / c).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            a = rng.integers(0, 256, shape, dtype=np.uint8)
            Image.fromarray(a, mode).save(folder / c / f"{prefix}{i:04d}.png")


def test_cifar10_folders_and_cache(tmp_path):
    root = tmp_path / "cifar10"
    classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
               "ship", "truck"]
    write_images(root / "train", classes, 6, (32, 32, 3), "RGB")
    write_images(root / "test", classes, 2, (32, 32, 3), "RGB")
    d = load_cifar10(root, val_size=20, seed=0)
    assert d["X_train"].shape == (40, 32, 32, 3) and d["X_train"].dtype == np.uint8
    assert d["y_train"].shape == (40,) and d["y_val"].shape == (20,)
    assert d["X_val"].shape == (20, 32, 32, 3) and d["X_test"].shape == (20, 32, 32, 3)
    assert np.array_equal(np.bincount(d["y_val"]), [2] * 10)  # stratified
    assert d["classes"][0] == "airplane"
    assert len(list((tmp_path / "cache").glob("cifar10-*.npz"))) == 1
    d2 = load_cifar10(root, val_size=20, seed=0)  # from the cache, identical
    assert np.array_equal(d["X_train"], d2["X_train"]) and d2["classes"] == d["classes"]
    # a saved PNG decodes to the pixels written
    a = np.asarray(Image.open(root / "test" / "bird" / "0000.png"))
    assert any(np.array_equal(a, x) for x in d["X_test"][d["y_test"] == 2])


def test_cifar10_official_batches(tmp_path):
    folder = tmp_path / "cifar10" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (20, 3072), dtype=np.uint8)
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": data, b"labels": list(range(10)) * 2}, f)
    d = load_cifar10(tmp_path / "cifar10", val_size=10, cache=False)
    assert d["X_train"].shape == (90, 32, 32, 3) and d["X_test"].shape == (20, 32, 32, 3)
    # channel-major rows: the first 1024 values are the red plane
    with open(folder / "test_batch", "rb") as f:
        raw = pickle.load(f)[b"data"][0]
    assert np.array_equal(d["X_test"][0][..., 0].ravel(), raw[:1024])


def test_fer_folders_with_prefixes(tmp_path):
    root = tmp_path / "fer2013"
    write_images(root / "train", FER2013_CLASSES, 10, (48, 48), "L", "Training_")
    write_images(root / "test", FER2013_CLASSES, 2, (48, 48), "L", "PublicTest_")
    write_images(root / "test", FER2013_CLASSES, 1, (48, 48), "L", "PrivateTest_")
    d = load_fer2013(root, val_size=0.2, seed=1)
    assert d["X_train"].shape == (56, 48, 48) and d["X_val"].shape == (14, 48, 48)
    assert d["X_test"].shape == (14, 48, 48) and d["X_private"].shape == (7, 48, 48)
    # original ids whatever the folder order: sad is 4, neutral is 6
    assert FER2013_CLASSES[4] == "sad" and FER2013_CLASSES[6] == "neutral"
    assert set(d["y_test"]) == set(range(7))


def test_fer_csv(tmp_path):
    root = tmp_path / "fer2013"
    root.mkdir()
    rng = np.random.default_rng(0)
    with open(root / "fer2013.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["emotion", "pixels", "Usage"])
        for i in range(28):
            usage = ["Training", "Training", "PublicTest", "PrivateTest"][i % 4]
            w.writerow([i % 7, " ".join(map(str, rng.integers(0, 256, 2304))), usage])
    d = load_fer2013(root, val_size=7, seed=0)
    assert d["X_train"].shape == (7, 48, 48) and d["X_val"].shape == (7, 48, 48)
    assert d["X_test"].shape == (7, 48, 48) and d["X_private"].shape == (7, 48, 48)
    with open(root / "fer2013.csv", "a") as f:
        f.write("9,1 2 3,Training\n")
    with pytest.raises(DataError, match="line 30"):
        load_fer2013(root, cache=False)


def test_fer_labels_public_layout(tmp_path):
    root = tmp_path / "fer2013"
    (root / "Train").mkdir(parents=True)
    (root / "Test").mkdir()
    rows = []
    for i in range(14):
        split = "Train" if i < 10 else "Test"
        Image.fromarray(np.full((48, 48), i, np.uint8), "L").save(root / split / f"{i}.jpg")
        rows.append((f"{split}/{i}.jpg", i % 7))
    with open(root / "labels_public.txt", "w") as f:
        f.write("img,emotion\n" + "".join(f"{a},{b}\n" for a, b in rows))
    d = load_fer2013(root, val_size=None)
    assert d["X_train"].shape == (10, 48, 48) and d["X_test"].shape == (4, 48, 48)
    assert d["y_test"].tolist() == [3, 4, 5, 6]
    # the labels file names its images, so it wins over image folders beside it
    write_images(root / "train", ["happy"], 3, (48, 48), "L")
    again = load_fer2013(root, val_size=None, cache=False)
    np.testing.assert_array_equal(again["X_train"], d["X_train"])


def test_missing_and_malformed_data(tmp_path):
    with pytest.raises(DataError, match="no CIFAR-10 data at .*cs.toronto.edu"):
        load_cifar10(tmp_path / "nothing")
    with pytest.raises(DataError, match="no FER2013 data at .*Kaggle"):
        load_fer2013(tmp_path / "nothing")
    root = tmp_path / "fer2013"
    write_images(root / "train", ["happy"], 2, (48, 48), "L")
    (root / "train" / "bored").mkdir()
    with pytest.raises(DataError, match=r"class folders \['bored'\]"):
        load_fer2013(root, val_size=None, cache=False)
    (root / "train" / "bored").rmdir()
    (root / "train" / "happy" / "broken.jpg").write_bytes(b"not an image")
    with pytest.raises(DataError, match="cannot decode image .*broken.jpg"):
        load_fer2013(root, val_size=None, cache=False)


def test_stratified_split_is_seeded():
    X = np.arange(100)
    y = np.repeat([0, 1], [80, 20])
    a = stratified_split(X, y, 0.25, seed=3)
    b = stratified_split(X, y, 0.25, seed=3)
    assert np.array_equal(a[2], b[2]) and np.bincount(a[3]).tolist() == [20, 5]
