import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from nnlib import FullyConnectedNet, Preprocessor, save_model
from nnlib.data import FER2013_CLASSES, DataError
from nnlib.evaluate import LoadedModel, evaluate, test_fer_model


@pytest.fixture
def fer_folder(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "test"
    for c in FER2013_CLASSES:
        (root / c).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 256, (48, 48), dtype=np.uint8), "L").save(
                root / c / f"PublicTest_{i}.png")
    return root


@pytest.fixture
def model_path(tmp_path):
    images = np.random.default_rng(1).integers(0, 256, (30, 48, 48), dtype=np.uint8)
    pre = Preprocessor().fit(images)
    model = FullyConnectedNet([16], input_dim=2304, num_classes=7, seed=0)
    return save_model(tmp_path / "m.npz", model, pre, info={"tta_flip": True})


def test_evaluate_metrics(fer_folder, model_path):
    m = evaluate(model_path, fer_folder)
    assert m["n"] == 21 and m["classes"] == list(FER2013_CLASSES)
    cm = np.array(m["confusion_matrix"])
    assert cm.shape == (7, 7) and cm.sum() == 21 and cm.sum(axis=1).tolist() == [3] * 7
    assert np.isclose(m["accuracy"], np.trace(cm) / 21)
    assert len(m["f1"]) == 7


def test_loaded_model_counts_the_parameters(model_path):
    # 2304 x 16 + 16 weights and biases into the hidden layer, 16 x 7 + 7 out of it
    assert LoadedModel(model_path).parameters == 2304 * 16 + 16 + 16 * 7 + 7


def test_cli_writes_json(fer_folder, model_path, tmp_path):
    out = tmp_path / "metrics.json"
    r = subprocess.run([sys.executable, "-m", "nnlib.evaluate", "--model", str(model_path),
                        "--data", str(fer_folder), "--json", str(out)],
                       capture_output=True, text=True, check=True)
    assert "classification rate" in r.stdout and "confusion matrix" in r.stdout
    m = json.loads(out.read_text())
    assert set(m) == {"accuracy", "n", "split", "counts", "classes", "confusion_matrix",
                      "precision", "recall",
                      "f1"}


def test_cli_reports_errors(tmp_path, fer_folder):
    r = subprocess.run([sys.executable, "-m", "nnlib.evaluate", "--model",
                        str(tmp_path / "none.npz"), "--data", str(fer_folder)],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "no model file" in r.stderr


def test_test_fer_model_flat_and_nested(fer_folder, model_path, tmp_path):
    nested = test_fer_model(fer_folder, model=model_path)
    assert nested.shape == (21,)
    flat = tmp_path / "flat"
    flat.mkdir()
    files = sorted(fer_folder.rglob("*.png"), key=str)
    for i, f in enumerate(files):  # same images, same sorted order under new names
        (flat / f"img_{i:03d}.png").write_bytes(f.read_bytes())
    assert np.array_equal(test_fer_model(flat, model=model_path), nested)


def test_wrong_input_size_and_empty_data(tmp_path, model_path):
    small = tmp_path / "small"
    small.mkdir()
    Image.fromarray(np.zeros((32, 32), np.uint8), "L").save(small / "a.png")
    with pytest.raises(ValueError, match="takes 48x48 images, got 32x32"):
        test_fer_model(small, model=model_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="holds no images"):
        test_fer_model(empty, model=model_path)
    with pytest.raises(ValueError, match="unknown model type"):
        test_fer_model(small, model=tmp_path / "small" / "a.png")
