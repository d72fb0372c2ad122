"""python -m nnlib.evaluate: metrics, the model kinds it reads, its command line, its
report and JSON file, and interruption."""
import io
import json
import signal
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from nnlib import FullyConnectedNet, Preprocessor, save_model
from nnlib.data import FER2013_CLASSES, DataError
from nnlib.evaluate import evaluate, format_report, main, test_fer_model
from nnlib.io import ModelError
from nnlib.loaded import LoadedModel


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


# ------------------------------------------------------------------ the model kinds
def saved(path, image_shape=(48, 48), classes=7, hidden=()):
    """A saved nnlib model for images of ``image_shape`` (zero weights: class 0)."""
    pre = Preprocessor(center=None, scale=None).fit(np.zeros((1, 2, 2), np.uint8))
    pre.image_shape = tuple(image_shape)  # not centred: any shape will do
    return save_model(path, FullyConnectedNet(list(hidden), int(np.prod(image_shape)), classes,
                                              weight_scale=0.0), pre)


def test_images_of_another_shape_are_refused_naming_the_model(tmp_path, capsys):
    path = saved(tmp_path / "m.npz")
    X = np.zeros((2, 48, 48), np.uint8)
    loaded = LoadedModel(path)
    assert loaded.input_shape == (48, 48) and loaded.kind == "nnlib" and loaded.info == {}
    assert loaded.predict(X[..., None]).tolist() == [0, 0]  # (N, H, W, 1) is grayscale too
    for bad, got in ((np.zeros((2, 32, 48), np.uint8), "32x48"),
                     (np.zeros((2, 48, 48, 3), np.uint8), "48x48x3"),
                     (np.zeros((2, 48, 48, 1, 1), np.uint8), "48x48x1x1")):
        with pytest.raises(ValueError, match=f"^the model {path} takes 48x48 images, got "
                                             f"{got}; resize or convert the data set, or pick "
                                             "the right model$"):
            loaded.predict(bad)
    rgb = saved(tmp_path / "rgb.npz", (48, 48, 3))
    assert LoadedModel(rgb).predict(np.zeros((1, 48, 48, 3), np.uint8)).tolist() == [0]
    with pytest.raises(ValueError, match="rgb.npz takes 48x48x3 images, got 48x48;"):
        LoadedModel(rgb).predict(X)


def test_models_that_are_no_fer_classifier(tmp_path):
    five = saved(tmp_path / "five.npz", classes=5)
    with pytest.raises(ModelError, match=rf"^{five} is not a FER2013 classifier: it predicts 5 "
                                         r"classes from inputs \(48, 48\), expected 7 classes "
                                         "from 48x48 images$"):
        LoadedModel(five)
    with pytest.raises(ModelError, match=r"predicts 7 classes from inputs \(2304,\)"):
        LoadedModel(saved(tmp_path / "rows.npz", (2304,)))
    with pytest.raises(ModelError, match=r"from inputs \(4, 4, 4, 36\)"):
        LoadedModel(saved(tmp_path / "deep.npz", (4, 4, 4, 36)))
    bare = save_model(tmp_path / "bare.npz", FullyConnectedNet([], 2304, 7))
    with pytest.raises(ModelError, match=f"^{bare} holds no preprocessing statistics; save it "
                                         r"with save_model\(path, model, preprocessor\)$"):
        LoadedModel(bare)
    (tmp_path / "dir.npz").mkdir()
    with pytest.raises(ModelError, match=f"^{tmp_path / 'dir.npz'} is a folder, not a model "
                                         "file; give the .npz or .keras file itself$"):
        LoadedModel(tmp_path / "dir.npz")
    with pytest.raises(FileNotFoundError, match=rf"^no model file at {tmp_path}/none.keras; "
                                                r"train it first \(notebooks Q5 and Q6\) or "
                                                "pass the right --model path$"):
        LoadedModel(tmp_path / "none.keras")
    (tmp_path / "m.onnx").write_bytes(b"x")
    with pytest.raises(ModelError, match=f"^{tmp_path}/m.onnx: unknown model type '.onnx'; "
                                         "expected an nnlib .npz or a Keras .keras file$"):
        LoadedModel(tmp_path / "m.onnx")
    upper = saved(tmp_path / "up.npz").rename(tmp_path / "UP.NPZ")
    assert LoadedModel(upper).parameters == 2304 * 7 + 7


class FakeKeras:
    """Stands in for a Keras model: its scores are the flattened images times
    ``weights``; ``calls`` records each predict call."""

    def __init__(self, weights, input_shape=(None, 48, 48, 1), output_shape=None):
        self.weights, self.input_shape = weights, input_shape
        self.output_shape = output_shape or (None, weights.shape[1])
        self.calls = []

    def count_params(self):
        return self.weights.size

    def predict(self, X, batch_size, verbose):
        self.calls.append((X.shape, X.dtype, batch_size, verbose))
        return X.reshape(len(X), -1) @ self.weights


@pytest.fixture
def keras_file(tmp_path, monkeypatch):
    """A .keras path whose loading, folding and thread settings are stubbed: returns
    (path, {"saved": model read, "folded": its fold, "loaded": paths read, ...})."""
    import importlib.util

    import nnlib.cnn
    import nnlib.cnn.fold
    import nnlib.cnn.models
    state = {"saved": FakeKeras(np.eye(2304, 7)), "folded": FakeKeras(np.eye(2304, 7)[:, ::-1]),
             "loaded": [], "threads": 0}
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: object() if name == "keras" else real(name, *a))

    def load(path):
        state["loaded"].append(path)
        return state["saved"]

    def fold(model):
        if state.get("fold_error"):
            raise ValueError("does not fold")
        assert model is state["saved"]
        return state["folded"]
    monkeypatch.setattr(nnlib.cnn, "load_keras_model", load)
    monkeypatch.setattr(nnlib.cnn.fold, "fold_batch_norm", fold)
    monkeypatch.setattr(nnlib.cnn.models, "set_threads",
                        lambda: state.update(threads=state["threads"] + 1))
    path = tmp_path / "m.Keras"
    path.write_bytes(b"PK")
    return path, state


def test_a_keras_model_predicts_folded_in_chunks(keras_file, capsys):
    path, state = keras_file
    loaded = LoadedModel(path)
    assert state["loaded"] == [path] and state["threads"] == 1 and loaded.kind == "keras"
    assert loaded.model is state["folded"] and loaded.parameters == 2304 * 7
    assert loaded.input_shape == (48, 48, 1) and loaded.info == {}
    images = np.zeros((5000, 48, 48), np.uint8)
    images[:, 0, 2] = 1  # column 2 of the weights, reversed by the fold: class 4
    images[4999, 0, 2], images[4999, 0, 5] = 0, 1  # class 1
    pred = loaded.predict(images)
    assert pred.tolist() == [4] * 4999 + [1] and pred.dtype == np.int64
    # in chunks of 16 whole batches of 256, as float32 (N, 48, 48, 1), silently
    assert state["folded"].calls == [((4096, 48, 48, 1), np.float32, 256, 0),
                                     ((904, 48, 48, 1), np.float32, 256, 0)]
    assert loaded.predict(images[:0]).tolist() == [] and loaded.predict(images[:0]).dtype == int
    assert capsys.readouterr().err == ""  # no progress bar unless asked for
    assert not state["saved"].calls
    as_saved = LoadedModel(path, fold=False)
    assert as_saved.model is state["saved"] and as_saved.predict(images[:1]).tolist() == [2]


def test_a_keras_model_that_does_not_fold_runs_as_saved(keras_file):
    path, state = keras_file
    state["fold_error"] = True
    assert LoadedModel(path).model is state["saved"]


def test_a_keras_model_of_other_shapes(keras_file, tmp_path):
    path, state = keras_file
    state["folded"] = FakeKeras(np.zeros((2304 * 3, 7)), (None, None, None, 3))
    with pytest.raises(ValueError, match=f"^the model {path} takes ...x3 images, got 48x48;"):
        LoadedModel(path).predict(np.zeros((1, 48, 48), np.uint8))
    with pytest.raises(ValueError, match=r"takes \?x\?x3 images"):
        LoadedModel(path).predict(np.zeros((1, 48, 48), np.uint8))
    state["folded"] = FakeKeras(np.eye(2304, 5))
    with pytest.raises(ModelError, match=r"it predicts 5 classes from inputs \(48, 48, 1\)"):
        LoadedModel(path)
    state["folded"] = FakeKeras(np.eye(2304, 7), output_shape=(None, 2, 7))
    assert LoadedModel(path).parameters == 2304 * 7  # the classes: the last axis


def test_a_keras_model_without_keras(tmp_path, monkeypatch):
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "keras" else real(name, *a))
    (tmp_path / "m.keras").write_bytes(b"PK")
    with pytest.raises(ModelError, match=f"^{tmp_path}/m.keras is a Keras model and Keras is "
                                         r"not installed here: pip install -e '\.\[cnn\]'$"):
        LoadedModel(tmp_path / "m.keras")


def test_test_fer_model_reads_the_committed_model_by_default(tmp_path, monkeypatch):
    (tmp_path / "models").mkdir()
    saved(tmp_path / "models" / "fer2013_fcnet.npz")
    (tmp_path / "faces").mkdir()
    for name in ("PublicTest_0.png", "Training_0.png"):
        Image.fromarray(np.zeros((48, 48), np.uint8), "L").save(tmp_path / "faces" / name)
    monkeypatch.chdir(tmp_path)
    assert test_fer_model("faces").tolist() == [0]
    assert test_fer_model("faces", split="all").tolist() == [0, 0]


# ------------------------------------------------------------------- the command line
def test_help_and_usage_mistakes(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert e.value.code == 0 and out.startswith("usage: python -m nnlib.evaluate [-h] --model "
                                                "MODEL --data DATA [--split "
                                                "{test,PublicTest,PrivateTest,all}] [--json JSON]")
    for text in ("[--json JSON] Test a saved FER2013 model (nnlib .npz or Keras .keras) on a "
                 "data set. options:",
                 "--model MODEL model file (.npz or .keras)",
                 "--data DATA folder with emotion subfolders, FER2013 CSV, or folder with "
                 "labels_public.txt",
                 "which images to score: every test image (default), one official test split, "
                 "or all images including Training ones",
                 "--json JSON also write the metrics to this JSON file (not the model, the data "
                 "or a file in the data's folder)"):
        assert text in out, text
    for argv, message in ((["--data", "d"], "the following arguments are required: --model"),
                          (["--model", "m"], "the following arguments are required: --data"),
                          (["--model", "m", "--data", "d", "--split", "Training"],
                           "argument --split: invalid choice: 'Training'")):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2 and message in capsys.readouterr().err


def fer_csv(path, n):
    """A FER2013 CSV of ``n`` black PublicTest faces of class 3 (happy)."""
    path.write_text("emotion,pixels,Usage\n" + f"3,{' '.join(['0'] * 2304)},PublicTest\n" * n)
    return path


def one_line_error(capsys, argv, code=2):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and "\x1b" not in err
    return err


# ------------------------------------------------------------------------ the report
def test_report_numbers():
    m = {"accuracy": 0.123456, "n": 12345, "counts": {"PrivateTest": 2345, "PublicTest": 10000},
         "classes": ["angry", "surprise"], "precision": [0.5, 1 / 3], "recall": [2 / 3, 1.0],
         "f1": [0.0, 0.99996], "confusion_matrix": [[8110, 0], [12, 123456]]}
    assert format_report(m).split("\n") == [
        "classification rate: 0.1235 on 12,345 images (2,345 PrivateTest, 10,000 PublicTest)",
        "",
        "     class precision  recall      F1",
        "     angry    0.5000  0.6667  0.0000",
        "  surprise    0.3333  1.0000  1.0000",
        "",
        "confusion matrix (rows: true, columns: predicted)",
        "             angry surpris",
        "     angry   8,110       0",
        "  surprise      12 123,456",
    ]


def test_cli_report_and_json(tmp_path, model_path, capsys):
    data = fer_csv(tmp_path / "t.csv", 3)
    out = tmp_path / "out" / "metrics.json"  # its folder is made when it is written
    main(["--model", str(model_path), "--data", str(data), "--json", str(out)])
    report = capsys.readouterr().out
    m = json.loads(out.read_text())
    assert report == format_report({**m, "predictions": None}) + "\n"
    assert m["n"] == 3 and m["counts"] == {"PublicTest": 3} and "predictions" not in m
    assert out.read_text() == json.dumps(m, indent=2) + "\n"
    assert sum(m["confusion_matrix"][3]) == 3


# ----------------------------------------------------------------------- interruption
def test_ctrl_c_is_one_line_and_writes_nothing(tmp_path, model_path, capsys, monkeypatch):
    data = fer_csv(tmp_path / "t.csv", 1)
    (tmp_path / "old.json").write_text("old\n")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    for where in ("evaluate", "format_report"):  # while scoring, and before writing
        monkeypatch.setattr(f"nnlib.evaluate.{where}", interrupted)
        for out in (tmp_path / "new.json", tmp_path / "old.json"):
            with pytest.raises(SystemExit) as e:
                main(["--model", str(model_path), "--data", str(data), "--json", str(out)])
            assert e.value.code == 130
            assert capsys.readouterr().err == "interrupted\n"  # not a terminal: one line
        monkeypatch.undo()
    assert not (tmp_path / "new.json").exists() and (tmp_path / "old.json").read_text() == "old\n"

    class Terminal(io.StringIO):
        def isatty(self):
            return True
    monkeypatch.setattr("nnlib.evaluate.evaluate", interrupted)
    monkeypatch.setattr(sys, "stderr", Terminal())
    with pytest.raises(SystemExit):
        main(["--model", str(model_path), "--data", str(data)])
    assert sys.stderr.getvalue() == "\ninterrupted\n"  # off the line that shows ^C
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


def test_sigint_during_evaluation(tmp_path, model_path):
    data = fer_csv(tmp_path / "t.csv", 1)
    # Python's own handler, as a shell gives it (a runner may have SIGINT ignored)
    script = ("import signal, sys, time, nnlib.evaluate as e\n"
              "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
              "def slow(*a, **k):\n    print('ready', flush=True)\n    time.sleep(60)\n"
              "e.evaluate = slow\ne.main(sys.argv[1:])\n")
    p = subprocess.Popen([sys.executable, "-c", script, "--model", str(model_path), "--data",
                          str(data), "--json", str(tmp_path / "m.json")],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline() == "ready\n"
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=30)
    finally:
        p.kill()
    assert p.returncode == 130 and err == "interrupted\n"
    assert not (tmp_path / "m.json").exists()


def test_colour_codes_and_line_breaks_leave_the_message(tmp_path, model_path, capsys,
                                                         monkeypatch):
    def fails(*args, **kwargs):
        raise ValueError("\x1b[1mInput 0 is\n  incompatible\x1b[0m  here\x1b[2K")
    monkeypatch.setattr("nnlib.evaluate.evaluate", fails)
    err = one_line_error(capsys, ["--model", str(model_path), "--data", str(tmp_path)])
    assert err == "error: Input 0 is incompatible here\n"
