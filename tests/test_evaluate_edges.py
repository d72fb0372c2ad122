"""python -m nnlib.evaluate at its edges: the mirror view, the metrics against values
worked out by hand, every data layout and split, the report's numbers, outputs that
would replace an input, interruption, and models that do not fit the images."""
import csv
import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import precision_score, recall_score

from nnlib import FullyConnectedNet, Preprocessor, save_model
from nnlib.data import FER2013_CLASSES, DataError
from nnlib.evaluate import (
    SPLITS,
    LoadedModel,
    evaluate,
    load_fer_eval_data,
    main,
    test_fer_model,
)

HAPPY, SAD = FER2013_CLASSES.index("happy"), FER2013_CLASSES.index("sad")


def pixel(r, c):
    return r * 48 + c


def linear_model(path, weights, tta_flip, image_shape=(48, 48)):
    """A saved model whose scores are ``images.reshape(N, -1) @ weights`` (no hidden
    layer, no centring or scaling), so that each class reads chosen pixels."""
    pre = Preprocessor(center=None, scale=None).fit(np.zeros((1, *image_shape), np.uint8))
    model = FullyConnectedNet([], input_dim=int(np.prod(image_shape)), num_classes=7)
    model.params = {"W1": weights.astype(np.float32), "b1": np.zeros(7, np.float32)}
    return save_model(path, model, pre, info=None if tta_flip is None else {"tta_flip": tta_flip})


def image(value_at):
    img = np.zeros((48, 48), np.uint8)
    for (r, c), v in value_at.items():
        img[r, c] = v
    return img


def write_png(path, img):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img, "L").save(path)


def write_csv(path, rows):
    """rows: (label, image, usage); usage "" leaves the column empty."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["emotion", "pixels", "Usage"])
        for label, img, usage in rows:
            w.writerow([label, " ".join(map(str, img.ravel())), usage])
    return path


def one_line_error(capsys, argv, code=2):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and "\x1b" not in err
    return err


@pytest.fixture
def model_path(tmp_path):
    W = np.zeros((2304, 7))
    W[pixel(3, 3), 3] = 1
    return linear_model(tmp_path / "model.npz", W, True)


@pytest.fixture
def labelled(tmp_path):
    """A coursework folder: labels_public.txt beside Test/."""
    d = tmp_path / "course"
    write_png(d / "Test" / "a.png", image({(3, 3): 1}))
    (d / "labels_public.txt").write_text("img,emotion\nTest/a.png,3\n")
    return d


# ------------------------------------------------------------------- the mirror view
def test_the_mirror_view_is_left_right(tmp_path):
    # one bright pixel at row 5, column 2; each class reads where a view would move it
    W = np.zeros((2304, 7))
    W[pixel(5, 2), 0] = 1  # the image itself
    W[pixel(5, 45), 1] = 3  # mirrored left-right
    W[pixel(42, 2), 2] = 3  # upside down
    W[pixel(42, 45), 3] = 3  # turned half round
    X = image({(5, 2): 200})[None]
    assert LoadedModel(linear_model(tmp_path / "tta.npz", W, True)).predict(X).tolist() == [1]
    assert LoadedModel(linear_model(tmp_path / "one.npz", W, False)).predict(X).tolist() == [0]
    assert LoadedModel(linear_model(tmp_path / "no.npz", W, None)).predict(X).tolist() == [0]


def test_the_mirror_view_is_added_to_the_image_itself(tmp_path):
    # the image alone says class 0 (4), its mirror alone class 1 (3); together: 4 + 0 vs 3
    W = np.zeros((2304, 7))
    W[pixel(0, 0), 0], W[pixel(0, 47), 0] = 4, 0
    W[pixel(0, 47), 1] = 3
    W[pixel(0, 0), 2] = 2.5  # mirror and image both feed class 2: 2.5 + 2.5 > 4
    W[pixel(0, 47), 2] = 2.5
    X = image({(0, 0): 1})[None]
    assert LoadedModel(linear_model(tmp_path / "m.npz", W, True)).predict(X).tolist() == [2]


# ------------------------------------------------------------------------- metrics
class Fixed(LoadedModel):
    """A model that predicts ``pred`` whatever the images."""

    def __init__(self, pred):
        self.pred, self.progress = np.array(pred), []

    def predict(self, images, progress=False):
        assert len(images) == len(self.pred)
        self.progress.append(progress)
        return self.pred


def test_precision_and_recall_are_not_swapped(tmp_path):
    y = [0, 0, 0, 0, 1, 1, 2, 3]
    pred = [0, 0, 1, 2, 0, 1, 2, 2]
    data = write_csv(tmp_path / "t.csv", [(c, image({}), "PublicTest") for c in y])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # classes never predicted score 0, quietly
        m = evaluate(Fixed(pred), data)
    # by hand: class 0 is predicted 3 times, rightly twice, and is true 4 times
    assert m["precision"][:4] == pytest.approx([2 / 3, 1 / 2, 1 / 3, 0])
    assert m["recall"][:4] == pytest.approx([2 / 4, 1 / 2, 1, 0])
    assert m["f1"][:4] == pytest.approx([4 / 7, 1 / 2, 1 / 2, 0])
    assert m["precision"][4:] == m["recall"][4:] == m["f1"][4:] == [0, 0, 0]
    assert m["precision"] == pytest.approx(precision_score(y, pred, labels=range(7),
                                                           average=None, zero_division=0))
    assert m["recall"] == pytest.approx(recall_score(y, pred, labels=range(7), average=None,
                                                     zero_division=0))
    cm = np.zeros((7, 7), int)
    for t, p in zip(y, pred):
        cm[t, p] += 1  # rows: true, columns: predicted
    assert m["confusion_matrix"] == cm.tolist() and m["confusion_matrix"][0][1] == 1
    assert m["accuracy"] == 0.5 and m["n"] == 8 and m["split"] == "test"
    assert m["counts"] == {"PublicTest": 8} and m["predictions"] == pred
    assert m["classes"] == list(FER2013_CLASSES)


def test_metrics_of_predictions_match_those_of_evaluate(tmp_path):
    from nnlib.evaluate import classification_metrics
    y = [0, 0, 0, 0, 1, 1, 2, 3]
    pred = [0, 0, 1, 2, 0, 1, 2, 2]
    data = write_csv(tmp_path / "t.csv", [(c, image({}), "PublicTest") for c in y])
    m = classification_metrics(np.array(y), pred)
    assert m["f1"][:4] == pytest.approx([4 / 7, 1 / 2, 1 / 2, 0])  # by hand, as above
    assert m["accuracy"] == 0.5 and m["n"] == 8 and m["predictions"] == pred
    full = evaluate(Fixed(pred), data)
    assert list(full) == ["accuracy", "n", "split", "counts", "classes", "confusion_matrix",
                          "precision", "recall", "f1", "predictions"]
    assert {k: v for k, v in full.items() if k not in ("split", "counts")} == m


def test_unlabelled_images_are_predicted_not_scored(tmp_path):
    flat = tmp_path / "flat"
    for i, v in enumerate([9, 0, 5]):  # read in name order
        write_png(flat / f"face{i}.png", image({(5, 2): v}))
    W = np.zeros((2304, 7))
    W[pixel(5, 2), 4] = 1
    model = linear_model(tmp_path / "m.npz", W, False)
    assert test_fer_model(flat, model=model).tolist() == [4, 0, 4]
    with pytest.raises(DataError, match=f"^{flat} has no labels: use emotion subfolders, a "
                                        "CSV or labels_public.txt to test, or "
                                        r"test_fer_model\(\) to predict only$"):
        evaluate(model, flat)


def test_progress_bars_are_asked_for_by_the_command_line_only(tmp_path, model_path,
                                                              monkeypatch):
    import nnlib.evaluate
    asked, real = [], nnlib.evaluate.read_images
    monkeypatch.setattr(nnlib.evaluate, "read_images", lambda files, mode, progress=False: (
        asked.append(progress), real(files, mode))[1])
    root = tmp_path / "fer"
    write_png(root / "train" / "sad" / "Training_0.png", image({}))
    write_png(root / "test" / "sad" / "PublicTest_0.png", image({}))
    (root / "labels_public.txt").write_text("img,emotion\ntest/sad/PublicTest_0.png,4\n")
    fixed = Fixed([4])
    evaluate(fixed, root)
    evaluate(fixed, root, progress=True)
    assert asked == [False, True] and fixed.progress == [False, True]
    (root / "labels_public.txt").unlink()
    load_fer_eval_data(root, "all", progress=True)
    load_fer_eval_data(root / "test")
    main(["--model", str(model_path), "--data", str(root)])
    test_fer_model(root, model_path)
    assert asked == [False, True, True, True, False, True, False]


# ---------------------------------------------------------- layouts and splits
def counts(data, split):
    return load_fer_eval_data(data, split)[3]


def test_splits_of_class_folders_by_file_name(tmp_path):
    d = tmp_path / "d"
    names = {"happy": ["PrivateTest_1.png", "PublicTest_1.png", "PublicTest_2.png",
                       "Training_1.png", "face.png"], "sad": ["PrivateTest_2.png"]}
    for c, files in names.items():
        for i, name in enumerate(files):
            write_png(d / c / name, image({(0, 0): 10 * i + (c == "sad")}))
    assert counts(d, "test") == {"PrivateTest": 2, "PublicTest": 2, "test": 1}
    assert counts(d, "PublicTest") == {"PublicTest": 2}
    assert counts(d, "PrivateTest") == {"PrivateTest": 2}
    assert counts(d, "all") == {"PrivateTest": 2, "PublicTest": 2, "Training": 1, "test": 1}
    X, y, files, _ = load_fer_eval_data(d, "PrivateTest")
    assert [f.name for f in files] == ["PrivateTest_1.png", "PrivateTest_2.png"]
    assert y.tolist() == [HAPPY, SAD] and X[:, 0, 0].tolist() == [0, 1]
    X, y, files, _ = load_fer_eval_data(d)  # the default: every test image
    assert X[:, 0, 0].tolist() == [0, 10, 20, 40, 1] and y.tolist() == [HAPPY] * 4 + [SAD]
    rgb = np.zeros((48, 48, 3), np.uint8)
    rgb[0, 0] = (200, 100, 0)  # read as grey: its luma, 0.299 R + 0.587 G + 0.114 B
    Image.fromarray(rgb, "RGB").save(d / "sad" / "PublicTest_9.png")
    X, _, _, _ = load_fer_eval_data(d, "PublicTest")
    assert X.shape == (3, 48, 48) and X[2, 0, 0] == round(0.299 * 200 + 0.587 * 100)
    write_png(tmp_path / "t" / "sad" / "Training_0.png", image({}))
    with pytest.raises(DataError, match=r"t holds no PublicTest images \(it holds 1 Training\); "
                                        "choose another --split"):
        load_fer_eval_data(tmp_path / "t", "PublicTest")
    with pytest.raises(DataError, match=r"t holds no test images \(it holds 1 Training\)"):
        load_fer_eval_data(tmp_path / "t")


def test_splits_of_a_csv(tmp_path):
    usages = ["Training", "PublicTest", "Training", "PrivateTest", "", "PublicTest"]
    rows = [(i % 7, image({(1, 1): i}), u) for i, u in enumerate(usages)]
    data = write_csv(tmp_path / "fer.csv", rows)
    assert counts(data, "test") == {"PrivateTest": 1, "PublicTest": 2, "test": 1}
    assert counts(data, "all") == {"PrivateTest": 1, "PublicTest": 2, "Training": 2, "test": 1}
    X, y, files, c = load_fer_eval_data(data, "PublicTest")
    assert X[:, 1, 1].tolist() == [1, 5] and y.tolist() == [1, 5] and files is None
    assert c == {"PublicTest": 2}
    X, y, _, _ = load_fer_eval_data(data, "PrivateTest")
    assert X[:, 1, 1].tolist() == [3] and y.tolist() == [3]
    public = write_csv(tmp_path / "public.csv", rows[:3])
    with pytest.raises(DataError, match=f"^{public} holds no PrivateTest images \\(it holds 1 "
                                        "PublicTest, 2 Training\\); choose another --split$"):
        load_fer_eval_data(public, "PrivateTest")
    # a data set's root holding fer2013.csv reads it
    (tmp_path / "root").mkdir()
    os.replace(data, tmp_path / "root" / "fer2013.csv")
    assert counts(tmp_path / "root", "PrivateTest") == {"PrivateTest": 1}


def test_splits_of_a_labels_file(tmp_path):
    rows = [("Train/PublicTest_9.png", 0), ("Test/PublicTest_1.png", 3),
            ("Test/PrivateTest_1.png", 4), ("Test/x.png", 5), ("test/PublicTest_2.png", 6)]
    for i, (name, _) in enumerate(rows):
        write_png(tmp_path / name, image({(2, 2): i}))
    (tmp_path / "labels_public.txt").write_text(
        "img,emotion\n" + "".join(f"{n},{e}\n" for n, e in rows))
    # Train/ rows are training images, whatever their names say
    assert counts(tmp_path, "test") == {"PrivateTest": 1, "PublicTest": 2, "test": 1}
    assert counts(tmp_path / "labels_public.txt", "all") == {
        "PrivateTest": 1, "PublicTest": 2, "Training": 1, "test": 1}
    X, y, files, _ = load_fer_eval_data(tmp_path, "PublicTest")
    assert X[:, 2, 2].tolist() == [1, 4] and y.tolist() == [3, 6]
    (tmp_path / "train.txt").write_text("img,emotion\nPublicTest_9.png,0\n")  # a Train row
    os.replace(tmp_path / "train.txt", tmp_path / "Train" / "labels_public.txt")
    with pytest.raises(DataError, match=f"^{tmp_path / 'Train' / 'labels_public.txt'} holds no "
                                        r"test images \(it holds 1 Training\)"):
        load_fer_eval_data(tmp_path / "Train" / "labels_public.txt")
    rgb = Image.fromarray(np.full((48, 48, 3), 90, np.uint8), "RGB")
    rgb.save(tmp_path / "Test" / "PrivateTest_1.png")
    assert load_fer_eval_data(tmp_path, "PrivateTest")[0].shape == (1, 48, 48)
    assert [f.name for f in files] == ["PublicTest_1.png", "PublicTest_2.png"]


def test_splits_of_a_data_set_root(tmp_path, model_path, capsys):
    write_png(tmp_path / "fer" / "train" / "sad" / "Training_0.png", image({(3, 3): 7}))
    write_png(tmp_path / "fer" / "test" / "happy" / "PublicTest_0.png", image({(3, 3): 8}))
    write_png(tmp_path / "fer" / "test" / "happy" / "PrivateTest_0.png", image({(3, 3): 9}))
    root = tmp_path / "fer"
    assert counts(root, "test") == {"PrivateTest": 1, "PublicTest": 1}
    rgb = Image.fromarray(np.full((48, 48, 3), 90, np.uint8), "RGB")
    rgb.save(root / "train" / "sad" / "PublicTest_5.png")  # counted with test/'s
    assert counts(root, "all") == {"PrivateTest": 1, "PublicTest": 2, "Training": 1}
    (root / "train" / "sad" / "PublicTest_5.png").unlink()
    assert counts(root, "PublicTest") == {"PublicTest": 1}
    X, y, files, c = load_fer_eval_data(root, "all")  # the training images too
    assert c == {"PrivateTest": 1, "PublicTest": 1, "Training": 1}
    assert X[:, 3, 3].tolist() == [9, 8, 7] and y.tolist() == [HAPPY, HAPPY, SAD]
    assert [f.name for f in files] == ["PrivateTest_0.png", "PublicTest_0.png",
                                       "Training_0.png"]
    for split, scored in (("test", "1 PrivateTest, 1 PublicTest"), ("PublicTest", "1 PublicTest"),
                          ("PrivateTest", "1 PrivateTest"),
                          ("all", "1 PrivateTest, 1 PublicTest, 1 Training")):
        main(["--model", str(model_path), "--data", str(root), "--split", split])
        n = scored.count(",") + 1
        assert f"on {n} images ({scored})\n" in capsys.readouterr().out
    assert set(SPLITS) == {"test", "PublicTest", "PrivateTest", "all"}
    write_png(tmp_path / "only" / "test" / "PublicTest_0.png", image({}))  # no train/
    X, y, files, c = load_fer_eval_data(tmp_path / "only", "all")
    assert len(X) == 1 and y is None and c == {"PublicTest": 1}
    write_png(tmp_path / "only" / "train" / "sad" / "Training_0.png", image({}))
    X, y, files, c = load_fer_eval_data(tmp_path / "only", "all")  # unlabelled test/ images
    assert len(X) == len(files) == 2 and y is None and c == {"PublicTest": 1, "Training": 1}
    write_png(tmp_path / "mixed" / "Happy" / "PublicTest_0.png", image({}))
    write_png(tmp_path / "mixed" / "test" / "PublicTest_1.png", image({}))
    with pytest.raises(DataError, match=r"mixed has class folders \['test'\]"):
        load_fer_eval_data(tmp_path / "mixed")


def test_a_bad_split_or_data_path(tmp_path, model_path, capsys):
    with pytest.raises(DataError, match="unknown split 'Training'; choose one of test, "
                                        "PublicTest, PrivateTest, all"):
        load_fer_eval_data(tmp_path, "Training")
    for where in (tmp_path / "nowhere", write_png(tmp_path / "f" / "a.png", image({})) or
                  tmp_path / "f" / "a.png"):  # an image file is no data set
        with pytest.raises(DataError, match=f"^no data at {where}: give a folder of images "
                                            r"\(with or without emotion subfolders\), a "
                                            "FER2013 CSV, or a folder with labels_public.txt$"):
            load_fer_eval_data(where)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"empty holds no images \(.bmp, .jpeg, .jpg, .png\)$"):
        load_fer_eval_data(tmp_path / "empty")
    (tmp_path / "classes" / "sad").mkdir(parents=True)
    with pytest.raises(DataError, match="classes holds no images in its emotion folders"):
        load_fer_eval_data(tmp_path / "classes")
    err = one_line_error(capsys, ["--model", str(model_path), "--data", str(tmp_path / "no")])
    assert err.startswith("error: no data at ")


# ------------------------------------------------------------ outputs and inputs
def test_an_output_that_is_an_input_is_refused(tmp_path, model_path, labelled, capsys,
                                               monkeypatch):
    data = write_csv(tmp_path / "t.csv", [(3, image({}), "PublicTest")])
    (tmp_path / "link.npz").symlink_to(model_path)
    os.link(model_path, tmp_path / "hard.json")
    os.link(labelled / "Test" / "a.png", tmp_path / "image.json")
    cases = [  # (data, output, what the message says)
        (data, model_path, f"is the --model file {model_path}; write the metrics to "
                           "another file\n"),
        (data, tmp_path / "link.npz", "is the --model file"),
        (data, tmp_path / "hard.json", "is the --model file"),
        (data, tmp_path / "course" / ".." / "t.csv", f"is the --data file {data}; write"),
        (labelled, labelled / "labels_public.txt", f"lies inside the data folder {labelled}; "
                                                   "write the metrics outside it\n"),
        (labelled / "labels_public.txt", labelled / "labels_public.txt", "is the --data file"),
        (labelled / "labels_public.txt", labelled / "Test" / "a.png", "lies inside the data"),
        (labelled, labelled / "Test" / "new.json", "lies inside the data folder"),
        (labelled, tmp_path / "image.json", f"is a hard link to {labelled / 'Test' / 'a.png'} "
                                            "of the data; write the metrics to another file\n"),
    ]
    for source, out, message in cases:
        before = {p: p.read_bytes() for p in (model_path, data, labelled / "Test" / "a.png")}
        err = one_line_error(capsys, ["--model", str(model_path), "--data", str(source),
                                      "--json", str(out)])
        assert err.startswith(f"error: --json {out} {message}"), (out, err)
        assert before == {p: p.read_bytes() for p in before}
    assert not (labelled / "Test" / "new.json").exists()
    # a file of its own beside them is written, without a walk through the data when it
    # has no other name
    (tmp_path / "m.json").write_text("old")
    monkeypatch.setattr(os, "walk", lambda *a: pytest.fail("walked the data"))
    main(["--model", str(model_path), "--data", str(labelled), "--json",
          str(tmp_path / "m.json")])
    monkeypatch.undo()
    main(["--model", str(model_path), "--data", str(data), "--json", str(tmp_path / "n.json")])
    assert json.loads((tmp_path / "m.json").read_text())["n"] == 1


def test_an_output_that_cannot_be_written_fails_first(tmp_path, model_path, capsys,
                                                       monkeypatch):
    data = write_csv(tmp_path / "t.csv", [(3, image({}), "PublicTest")])
    (tmp_path / "file").write_text("x")
    for out, message in ((tmp_path, "is a folder; give a file name"),
                         (tmp_path / "file" / "a" / "m.json",
                          f": {tmp_path / 'file'} is a file, not a folder; choose another path")):
        err = one_line_error(capsys, ["--model", str(model_path), "--data", str(data),
                                      "--json", str(out)])
        assert err == f"error: --json {out}{' ' * (message[0] != ':')}{message}\n"
    assert not (tmp_path / "file" / "a").exists()
    (tmp_path / "locked").mkdir()
    (tmp_path / "locked.json").write_text("x")
    real = os.access  # root may write anywhere: the permissions are those said here
    for denied in (tmp_path / "locked", tmp_path / "locked.json"):
        monkeypatch.setattr(os, "access", lambda p, mode, d=denied: Path(p) != d and real(p, mode))
        out = tmp_path / "locked" / "new" / "m.json" if denied.is_dir() else denied
        err = one_line_error(capsys, ["--model", str(model_path), "--data", str(data),
                                      "--json", str(out)])
        assert err == f"error: --json {out}: no permission to write there; choose another path\n"
        main(["--model", str(model_path), "--data", str(data), "--json",
              str(tmp_path / "free.json")])  # elsewhere: written
        monkeypatch.undo()
