"""Faults and bad input: interrupted writes, wrong splits, damaged model, data, cache and
checkpoint files. A kill is simulated by failing inside the write, after part of the
file has been written."""
import csv
import json
import os
import pickle
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from PIL import Image

from nnlib import FullyConnectedNet, Preprocessor, Solver, load_model, save_model
from nnlib.data import FER2013_CLASSES, DataError, load_cifar10, load_fer2013
from nnlib.evaluate import evaluate, main, test_fer_model
from nnlib.export import Exporter
from nnlib.io import ModelError
from nnlib.solver import CheckpointError


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NNLIB_CACHE", str(tmp_path / "cache"))


class Killed(Exception):
    pass


def kill_after_partial_write(monkeypatch, module, name):
    """Make ``module.name(file, ...)`` write a few bytes and then die."""
    def partial(f, *args, **kwargs):
        f.write(b"PK\x03\x04 half a file")
        raise Killed
    monkeypatch.setattr(module, name, partial)


def leftovers(folder):
    return [p.name for p in folder.iterdir() if p.name.startswith(".tmp-")]


# ------------------------------------------------------------------- atomic writes
def small_model(seed=0, hidden=8):
    images = np.random.default_rng(seed).integers(0, 256, (20, 48, 48), dtype=np.uint8)
    pre = Preprocessor().fit(images)
    return FullyConnectedNet([hidden], input_dim=2304, num_classes=7, seed=seed), pre


def test_killed_save_model_keeps_the_old_file(tmp_path, monkeypatch):
    model, pre = small_model()
    path = save_model(tmp_path / "m.npz", model, pre)
    before = path.read_bytes()
    kill_after_partial_write(monkeypatch, np, "savez_compressed")
    with pytest.raises(Killed):
        save_model(path, small_model(seed=1)[0], pre)
    assert path.read_bytes() == before and leftovers(tmp_path) == []
    monkeypatch.undo()
    np.testing.assert_array_equal(load_model(path)[0].params["W1"], model.params["W1"])


def test_atomic_writes_keep_the_file_mode(tmp_path):
    from nnlib.atomic import write_text
    new = write_text(tmp_path / "new.txt", "a")
    umask = os.umask(0)
    os.umask(umask)
    assert new.stat().st_mode & 0o777 == 0o666 & ~umask  # as open() would make it
    new.chmod(0o640)
    write_text(new, "b")
    assert new.stat().st_mode & 0o777 == 0o640 and new.read_text() == "b"


def test_killed_exports_keep_the_old_files(tmp_path, monkeypatch):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd
    monkeypatch.setattr("nnlib.export.FIGURES_DIR", tmp_path / "fig")
    monkeypatch.setattr("nnlib.export.GENERATED_DIR", tmp_path / "gen")
    ex = Exporter(5, "full")
    fig, ax = plt.subplots()
    ax.plot([1, 2])
    ex.figure(fig, "curve")
    ex.table(pd.DataFrame({"a": [1]}), "t")
    ex.values(acc=0.5)
    old = {p: p.read_bytes() for p in (tmp_path / "fig").iterdir()}
    old.update({p: p.read_bytes() for p in (tmp_path / "gen").iterdir()})

    def dies(*args, **kwargs):
        raise Killed
    monkeypatch.setattr(fig, "savefig", dies)
    monkeypatch.setattr(pd.DataFrame, "to_latex", dies)
    monkeypatch.setattr("nnlib.export.json.dumps", dies)
    for call in (lambda: ex.figure(fig, "curve"), lambda: ex.table(pd.DataFrame(), "t"),
                 lambda: ex.values(acc=0.7)):
        with pytest.raises(Killed):
            call()
    assert {p: p.read_bytes() for p in old} == old
    plt.close(fig)


# ---------------------------------------------------------------- solver checkpoints
def blobs(n=300, d=10, c=3, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((c, d)) * 3
    y = rng.integers(0, c, n)
    X = (centers[y] + rng.standard_normal((n, d))).astype(np.float32)
    return {"X_train": X[:240], "y_train": y[:240], "X_val": X[240:], "y_val": y[240:]}


def solver(data, folder=None, **kw):
    model = FullyConnectedNet([16], input_dim=10, num_classes=3, dropout=0.1,
                              weight_scale="he", seed=1)
    opts = dict(update_rule="sgd_momentum", optim_config={"learning_rate": 0.05},
                num_epochs=6, batch_size=32, seed=2, verbose=False, checkpoint_dir=folder,
                resume=folder is not None, num_train_samples=50)
    return Solver(model, data, **{**opts, **kw})


def test_killed_checkpoint_write_resumes_from_the_previous_epoch(tmp_path, monkeypatch):
    d = blobs()
    full = solver(d).train()
    s = solver(d, tmp_path)
    real_savez = np.savez
    calls = []

    def savez(f, **arrays):  # dies while writing the 4th epoch's checkpoint
        calls.append(1)
        if len(calls) == 4:
            f.write(b"PK\x03\x04 half")
            raise Killed
        return real_savez(f, **arrays)
    monkeypatch.setattr(np, "savez", savez)
    with pytest.raises(Killed):
        s.train()
    monkeypatch.undo()
    assert leftovers(tmp_path) == []
    resumed = solver(d, tmp_path)
    assert resumed.epoch == 3 and resumed.best_epoch <= 3
    resumed.train()
    for k in full.model.params:
        np.testing.assert_array_equal(resumed.model.params[k], full.model.params[k])
    assert resumed.best_epoch == full.best_epoch
    assert resumed.val_acc_history == full.val_acc_history


@pytest.mark.parametrize("damage", ["truncate", "garble", "no_state", "bad_json", "no_rng"])
def test_damaged_checkpoint_names_the_file_and_is_kept(tmp_path, damage):
    d = blobs()
    solver(d, tmp_path, num_epochs=1).train()
    path = tmp_path / "checkpoint.npz"
    raw = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(raw[:len(raw) // 2])
    elif damage == "garble":
        path.write_bytes(raw[:200] + bytes(255 - b for b in raw[200:400]) + raw[400:])
    else:
        with np.load(path) as z:
            arrays = {k: z[k] for k in z.files}
        state = json.loads(str(arrays.pop("state")))
        if damage == "bad_json":
            arrays["state"] = np.array("{not json")
        elif damage == "no_rng":
            del state["rng"]
            arrays["state"] = np.array(json.dumps(state))
        np.savez(path, **arrays)
    damaged = path.read_bytes()
    with pytest.raises(CheckpointError, match=str(path)):
        solver(d, tmp_path)
    assert path.read_bytes() == damaged  # never deleted or overwritten


def test_train_twice_equals_resuming_the_checkpoint(tmp_path):
    d = blobs()
    a = solver(d, num_epochs=3).train()
    a.num_epochs = 6
    a.train()
    solver(d, tmp_path, num_epochs=3).train()
    b = solver(d, tmp_path, num_epochs=6).train()
    for k in a.model.params:
        np.testing.assert_array_equal(a.model.params[k], b.model.params[k])
    assert a.loss_history == b.loss_history


# ------------------------------------------------------------------ solver edges
def test_divergence_in_the_first_epoch_restores_the_initial_parameters():
    d = blobs()
    s = solver(d, optim_config={"learning_rate": 1e6})
    initial = {k: v.copy() for k, v in s.model.params.items()}
    with pytest.warns(RuntimeWarning, match="initial parameters were restored"):
        s.train()
    for k in initial:
        np.testing.assert_array_equal(s.model.params[k], initial[k])
    assert s.epoch == 0 and "loss became" in s.stop_reason


@pytest.mark.parametrize("options, message", [
    ({"optim_config": {"learning_rate": 0.0}}, "learning_rate must be a finite number > 0"),
    ({"optim_config": {"learning_rate": -1e-3}}, "learning_rate"),
    ({"optim_config": {"learning_rate": float("nan")}}, "learning_rate"),
    ({"optim_config": {"learning_rate": 1e-2, "momentum": 1.0}}, r"momentum must lie in \[0, 1\)"),
    ({"optim_config": {"learning_rate": 1e-2, "momentum": -0.1}}, "momentum"),
    ({"momentum_schedule": {"name": "linear", "end": 1.5}}, "momentum schedule"),
    ({"num_train_samples": 0}, "num_train_samples must be an integer >= 1"),
    ({"batch_size": 0}, "batch_size"),
    ({"num_epochs": -1}, "num_epochs"),
    ({"num_epochs": 2.5}, "num_epochs"),
    ({"lr_decay": 0}, "lr_decay"),
    ({"patience": -1}, "patience"),
    ({"min_delta": -0.1}, "min_delta"),
])
def test_bad_options_fail_before_training(options, message):
    with pytest.raises(ValueError, match=message):
        solver(blobs(), **options)


def test_object_and_non_numeric_inputs_fail_before_training():
    d = blobs()
    with pytest.raises(ValueError, match="X_train must be a numeric NumPy array"):
        solver(dict(d, X_train=d["X_train"].astype(object)))
    with pytest.raises(ValueError, match="X_val must be a numeric"):
        solver(dict(d, X_val=d["X_val"].tolist()))
    with pytest.raises(TypeError, match="integer class ids"):
        solver(dict(d, y_val=d["y_val"].astype(float)))


# ---------------------------------------------------------------- evaluation splits
def fer_csv(path, usages, bom=False, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    with open(path, "w", newline="", encoding="utf-8-sig" if bom else "utf-8") as f:
        w = csv.writer(f)
        w.writerow(["emotion", "pixels", "Usage"])
        for i, usage in enumerate(usages):
            pixels = rng.integers(0, 256, 2304)
            w.writerow([i % 7, " ".join(map(str, pixels)), usage])
            rows.append((i % 7, pixels.astype(np.uint8).reshape(48, 48), usage))
    return rows


def expected_accuracy(model_path, rows, keep):
    """Accuracy computed here, from the model's own parts, on the rows of ``keep``."""
    model, pre, _ = load_model(model_path)
    X = np.stack([r[1] for r in rows if r[2] in keep])
    y = np.array([r[0] for r in rows if r[2] in keep])
    scores = model.scores(pre.transform(X))
    return float(np.mean(scores.argmax(1) == y)), len(y)


def test_evaluation_scores_only_the_test_rows(tmp_path):
    model_path = save_model(tmp_path / "m.npz", *small_model())
    usages = ["Training"] * 30 + ["PublicTest"] * 9 + ["PrivateTest"] * 5
    rows = fer_csv(tmp_path / "fer.csv", usages)
    for split, keep in [("test", {"PublicTest", "PrivateTest"}), ("PublicTest", {"PublicTest"}),
                        ("PrivateTest", {"PrivateTest"}),
                        ("all", {"Training", "PublicTest", "PrivateTest"})]:
        m = evaluate(model_path, tmp_path / "fer.csv", split)
        acc, n = expected_accuracy(model_path, rows, keep)
        assert m["n"] == n and m["accuracy"] == pytest.approx(acc)
        assert sum(m["counts"].values()) == n and set(m["counts"]) == keep


def test_test_only_csv_with_a_byte_order_mark(tmp_path, capsys):
    model_path = save_model(tmp_path / "m.npz", *small_model())
    rows = fer_csv(tmp_path / "public.csv", ["PublicTest"] * 8, bom=True)
    m = evaluate(model_path, tmp_path / "public.csv")
    assert m["n"] == 8 and m["accuracy"] == pytest.approx(
        expected_accuracy(model_path, rows, {"PublicTest"})[0])
    main(["--model", str(model_path), "--data", str(tmp_path / "public.csv")])
    assert "on 8 images (8 PublicTest)" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        main(["--model", str(model_path), "--data", str(tmp_path / "public.csv"),
              "--split", "PrivateTest"])
    assert e.value.code == 2
    assert "holds no PrivateTest images (it holds 8 PublicTest)" in capsys.readouterr().err


def test_labels_file_listing_only_test_images(tmp_path):
    model_path = save_model(tmp_path / "m.npz", *small_model())
    (tmp_path / "Test").mkdir()
    for i in range(5):
        Image.fromarray(np.full((48, 48), 40 * i, np.uint8), "L").save(
            tmp_path / "Test" / f"{i}.jpg")
    (tmp_path / "labels_public.txt").write_text(
        "img,emotion\n" + "".join(f"Test/{i}.jpg,{i}\n" for i in range(5)))
    m = evaluate(model_path, tmp_path)
    assert m["n"] == 5 and m["counts"] == {"test": 5}
    assert len(test_fer_model(tmp_path / "labels_public.txt", model=model_path)) == 5


def test_training_files_in_a_class_folder_are_not_scored(tmp_path):
    model_path = save_model(tmp_path / "m.npz", *small_model())
    for name in ("Training_1.png", "PublicTest_1.png", "PublicTest_2.png", "PrivateTest_1.png"):
        (tmp_path / "d" / "happy").mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.zeros((48, 48), np.uint8), "L").save(tmp_path / "d" / "happy" / name)
    m = evaluate(model_path, tmp_path / "d")
    assert m["counts"] == {"PrivateTest": 1, "PublicTest": 2}
    assert evaluate(model_path, tmp_path / "d", "all")["n"] == 4
    assert len(test_fer_model(tmp_path / "d", model=model_path)) == 3


def test_images_below_a_class_folder_are_refused(tmp_path):
    model_path = save_model(tmp_path / "m.npz", *small_model())
    (tmp_path / "d" / "sad" / "more").mkdir(parents=True)
    Image.fromarray(np.zeros((48, 48), np.uint8), "L").save(tmp_path / "d" / "sad" / "a.png")
    Image.fromarray(np.zeros((48, 48), np.uint8), "L").save(
        tmp_path / "d" / "sad" / "more" / "b.png")
    with pytest.raises(DataError, match=r"sad holds the folder\(s\) \['more'\]"):
        evaluate(model_path, tmp_path / "d")


def test_unwritable_json_fails_before_the_work(tmp_path, capsys, monkeypatch):
    model_path = save_model(tmp_path / "m.npz", *small_model())
    fer_csv(tmp_path / "t.csv", ["PublicTest"] * 3)
    monkeypatch.setattr("nnlib.evaluate.evaluate", lambda *a: pytest.fail("did the work"))
    (tmp_path / "file").write_text("x")
    for target in (tmp_path / "file" / "out.json", tmp_path):
        with pytest.raises(SystemExit) as e:
            main(["--model", str(model_path), "--data", str(tmp_path / "t.csv"),
                  "--json", str(target)])
        assert e.value.code == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "--json" in err and str(target) in err
    monkeypatch.undo()
    main(["--model", str(model_path), "--data", str(tmp_path / "t.csv"),
          "--json", str(tmp_path / "new" / "out.json")])  # the folder is created
    assert json.loads((tmp_path / "new" / "out.json").read_text())["n"] == 3


# ------------------------------------------------------------------ bad model files
def rewrite_npz(path, edit):
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    original = arrays["meta"]
    meta = json.loads(str(original))
    edit(meta, arrays)
    if arrays["meta"] is original:  # the edit changed the header, not the entry
        arrays["meta"] = np.array(json.dumps(meta))
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def damage_truncate(path):
    raw = path.read_bytes()
    path.write_bytes(raw[:len(raw) // 3])


def damage_garble(path):
    raw = bytearray(path.read_bytes())
    for i in range(300, len(raw) - 300, 7):
        raw[i] ^= 0x5A
    path.write_bytes(bytes(raw))


def damage_not_json(path):
    rewrite_npz(path, lambda m, a: a.update(meta=np.array("{model: oops")))


def damage_unknown_key(path):
    rewrite_npz(path, lambda m, a: m["model"].update(activation="tanh"))


def damage_no_preprocessing(path):
    rewrite_npz(path, lambda m, a: a.pop("pre/mean"))


def damage_absurd_sizes(path):  # would need 75 GiB if built before checking
    rewrite_npz(path, lambda m, a: m["model"].update(hidden_dims=[4_000_000]))


def damage_nan_weights(path):
    def edit(m, a):
        a["param/W1"] = a["param/W1"].copy()
        a["param/W1"][0, 0] = np.nan
    rewrite_npz(path, edit)


def damage_not_zip(path):
    path.write_bytes(b"this is not a model\n" * 10)


@pytest.mark.parametrize("damage, message", [
    (damage_truncate, "not a readable .npz model file"),
    (damage_garble, "not a readable .npz model file"),
    (damage_not_zip, "not a readable .npz model file"),
    (damage_not_json, "header is not JSON"),
    (damage_unknown_key, r"unknown model config keys \['activation'\]"),
    (damage_no_preprocessing, r"lacks the preprocessing arrays \['mean'\]"),
    (damage_absurd_sizes, "parameter W1 has shape"),
    (damage_nan_weights, "parameter W1 holds NaN or inf"),
])
def test_bad_model_file_gets_one_clear_line(tmp_path, capsys, damage, message):
    path = save_model(tmp_path / "m.npz", *small_model(hidden=32))
    fer_csv(tmp_path / "t.csv", ["PublicTest"] * 3)
    damage(path)
    with pytest.raises(ModelError, match=message):
        load_model(path)
    with pytest.raises(SystemExit) as e:
        main(["--model", str(path), "--data", str(tmp_path / "t.csv")])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and str(path) in err


def test_cli_errors_have_no_traceback(tmp_path):
    path = tmp_path / "m.npz"
    path.write_bytes(b"garbage")
    r = subprocess.run([sys.executable, "-m", "nnlib.evaluate", "--model", str(path),
                        "--data", str(tmp_path)], capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.count("\n") == 1 and str(path) in r.stderr


# ---------------------------------------------------------------- data and caches
def write_fer(root, labels):
    rows = []
    for i, label in enumerate(labels):
        (root / "train" / FER2013_CLASSES[label]).mkdir(parents=True, exist_ok=True)
        p = root / "train" / FER2013_CLASSES[label] / f"Training_{i}.png"
        Image.fromarray(np.full((48, 48), i, np.uint8), "L").save(p)
        rows.append(p)
    return rows


def test_cache_follows_the_content_not_the_size(tmp_path):
    root = tmp_path / "fer2013"
    write_fer(root, [0, 1, 2, 3])
    first = load_fer2013(root, val_size=None)
    # the same file name and size, other pixels: a corrected image
    p = root / "train" / "angry" / "Training_0.png"
    Image.fromarray(np.full((48, 48), 200, np.uint8), "L").save(p)
    second = load_fer2013(root, val_size=None)
    assert first["X_train"][0].max() == 0 and second["X_train"][0].max() == 200


@pytest.mark.parametrize("damage", ["truncate", "inconsistent"])
def test_damaged_cache_is_rebuilt_with_a_warning(tmp_path, damage):
    root = tmp_path / "fer2013"
    write_fer(root, [0, 1, 2, 3, 4, 5, 6] * 3)
    good = load_fer2013(root, val_size=None)
    (cache_file,) = (tmp_path / "cache").glob("fer2013-*.npz")
    if damage == "truncate":
        cache_file.write_bytes(cache_file.read_bytes()[:500])
    else:  # 5 labels for 21 images
        np.savez(cache_file, X_train=good["X_train"], y_train=good["y_train"][:5],
                 classes=np.array(FER2013_CLASSES))
    with pytest.warns(RuntimeWarning, match=f"cache file {cache_file}.*rebuilding"):
        again = load_fer2013(root, val_size=None)
    np.testing.assert_array_equal(again["y_train"], good["y_train"])
    with np.load(cache_file) as z:  # and the cache is sound again
        assert len(z["y_train"]) == 21


class Payload:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_crafted_cifar_pickle_does_not_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "cifar10" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    ok = {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1],
          b"batch_label": b"x", b"filenames": [b"a.png", b"b.png"]}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (folder / name).write_bytes(pickle.dumps(ok, protocol=2))
    assert load_cifar10(tmp_path / "cifar10", val_size=None, cache=False)["X_train"].shape == (
        10, 32, 32, 3)
    (folder / "data_batch_1").write_bytes(pickle.dumps({b"data": Payload(), b"labels": []}))
    with pytest.raises(DataError, match="data_batch_1 is not a CIFAR-10 python batch.*posix"):
        load_cifar10(tmp_path / "cifar10", cache=False)
    assert not (tmp_path / "pwned").exists()


def test_zip_that_is_not_an_npz_cache(tmp_path):
    root = tmp_path / "fer2013"
    write_fer(root, [0, 1, 2])
    load_fer2013(root, val_size=None)
    (cache_file,) = (tmp_path / "cache").glob("fer2013-*.npz")
    with zipfile.ZipFile(cache_file, "w") as z:
        z.writestr("hello.txt", "not arrays")
    with pytest.warns(RuntimeWarning, match="rebuilding"):
        assert len(load_fer2013(root, val_size=None)["y_train"]) == 3


def test_every_layout_of_a_data_set_root_gives_its_test_split(tmp_path):
    model_path = save_model(tmp_path / "m.npz", *small_model())
    csv_root = tmp_path / "csv"
    csv_root.mkdir()
    fer_csv(csv_root / "fer2013.csv", ["Training"] * 4 + ["PublicTest"] * 3 + ["PrivateTest"] * 2)
    folders = tmp_path / "folders"
    for split, name in (("train", "Training_0.png"), ("test", "PublicTest_0.png"),
                        ("test", "PublicTest_1.png"), ("test", "PrivateTest_0.png")):
        (folders / split / "fear").mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.zeros((48, 48), np.uint8), "L").save(folders / split / "fear" / name)
    assert evaluate(model_path, csv_root, "PublicTest")["counts"] == {"PublicTest": 3}
    assert evaluate(model_path, folders, "PublicTest")["counts"] == {"PublicTest": 2}
    assert evaluate(model_path, folders)["counts"] == {"PrivateTest": 1, "PublicTest": 2}


def test_a_folder_for_a_model_and_an_empty_csv(tmp_path, capsys):
    model_path = save_model(tmp_path / "m.npz", *small_model())
    (tmp_path / "folder.npz").mkdir()
    (tmp_path / "empty.csv").write_text("")
    fer_csv(tmp_path / "t.csv", ["PublicTest"] * 2)
    for model, data, message in ((tmp_path / "folder.npz", tmp_path / "t.csv", "is a folder"),
                                 (model_path, tmp_path / "empty.csv", "empty.csv is empty")):
        with pytest.raises(SystemExit) as e:
            main(["--model", str(model), "--data", str(data)])
        assert e.value.code == 2 and message in capsys.readouterr().err


def test_a_keras_model_without_keras_installed(tmp_path, capsys, monkeypatch):
    import importlib.util
    real_find_spec = importlib.util.find_spec

    def no_keras(name, *args, **kwargs):
        return None if name == "keras" else real_find_spec(name, *args, **kwargs)
    monkeypatch.setattr(importlib.util, "find_spec", no_keras)
    (tmp_path / "m.keras").write_bytes(b"PK")
    fer_csv(tmp_path / "t.csv", ["PublicTest"])
    with pytest.raises(SystemExit) as e:
        main(["--model", str(tmp_path / "m.keras"), "--data", str(tmp_path / "t.csv")])
    assert e.value.code == 2 and "Keras is not installed here" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["split.npz", "split.npz.xz"])
def test_arrays_carried_to_another_machine_read_back_unchanged(tmp_path, name):
    from nnlib.io import read_arrays, write_arrays
    X = np.arange(2 * 48 * 48, dtype=np.uint8).reshape(2, 48, 48)
    y = np.array([3, 6])
    write_arrays(tmp_path / name, X_train=X, y_train=y)
    back = read_arrays(tmp_path / name)
    assert sorted(back) == ["X_train", "y_train"]
    np.testing.assert_array_equal(back["X_train"], X)
    np.testing.assert_array_equal(back["y_train"], y)
    assert list(tmp_path.iterdir()) == [tmp_path / name]  # no temporary file left
