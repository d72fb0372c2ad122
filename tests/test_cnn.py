import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("keras")

from nnlib.cnn import (  # noqa: E402
    build_cnn,
    configure_tensorflow,
    load_keras_model,
    predict_keras,
    train_cnn,
    with_flip_tta,
)
from nnlib.data import FER2013_CLASSES  # noqa: E402
from nnlib.evaluate import LoadedModel  # noqa: E402


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    configure_tensorflow(seed=0)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 7, 96)
    X = rng.integers(0, 50, (96, 48, 48)).astype(np.uint8)
    X[np.arange(96), :, y * 6] = 255  # a learnable cue: a bright column per class
    data = {"X_train": X[:64], "y_train": y[:64], "X_val": X[64:], "y_val": y[64:]}
    run = tmp_path_factory.mktemp("run")
    model = build_cnn("tiny")
    hist, secs, rate = train_cnn(model, data, run, epochs=2, batch_size=16,
                                 steps_per_execution=2, verbose=0)
    return model, data, run, hist


def test_training_writes_resumable_run(trained):
    model, data, run, hist = trained
    assert len(hist["loss"]) == 2
    assert (run / "best.keras").exists() and (run / "history.csv").exists()
    assert not (run / "backup").exists()  # removed once a run completes


def test_tta_model_saves_and_loads_in_safe_mode(trained, tmp_path):
    model, data, _, _ = trained
    path = tmp_path / "cnn.keras"
    with_flip_tta(model).save(path)
    loaded = load_keras_model(path)
    X = data["X_val"]
    p1 = loaded.predict(X[..., None].astype(np.float32), verbose=0)
    p2 = (model.predict(X[..., None].astype(np.float32), verbose=0)
          + model.predict(X[:, :, ::-1, None].astype(np.float32), verbose=0)) / 2
    np.testing.assert_allclose(p1, p2, atol=1e-5)
    assert predict_keras(loaded, X).shape == (32,)


def test_evaluate_dispatches_on_keras_files(trained, tmp_path):
    model, data, _, _ = trained
    path = tmp_path / "cnn.keras"
    model.save(path)
    assert LoadedModel(path).kind == "keras"
    folder = tmp_path / "test"
    for i, (x, label) in enumerate(zip(data["X_val"], data["y_val"])):
        (folder / FER2013_CLASSES[label]).mkdir(parents=True, exist_ok=True)
        Image.fromarray(x, "L").save(folder / FER2013_CLASSES[label] / f"{i}.png")
    r = subprocess.run([sys.executable, "-m", "nnlib.evaluate", "--model", str(path),
                        "--data", str(folder)], capture_output=True, text=True, check=True)
    assert "classification rate" in r.stdout and "on 32 images" in r.stdout


def test_unknown_architecture():
    with pytest.raises(ValueError, match="unknown architecture"):
        build_cnn("resnet1000")
