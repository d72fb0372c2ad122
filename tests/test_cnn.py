import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("keras")

from nnlib.cnn import (  # noqa: E402
    MEMBER_DEFAULTS,
    build_cnn,
    configure_tensorflow,
    ensemble,
    load_keras_model,
    predict_keras,
    random_affine,
    save_keras_model,
    select_members,
    stop_run,
    store_in_ensemble,
    train_cnn,
    train_member,
    with_tta,
)
from nnlib.data import FER2013_CLASSES  # noqa: E402
from nnlib.loaded import LoadedModel  # noqa: E402


def assert_same_weights(a, b):
    """Two lists of weights hold the same arrays."""
    assert len(a) == len(b)
    for w1, w2 in zip(a, b):
        np.testing.assert_array_equal(w1, w2)


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
    hist, epochs, secs, rate = train_cnn(model, data, run, epochs=2, batch_size=16,
                                         steps_per_execution=2, verbose=0)[:4]
    assert epochs == 2
    return model, data, run, hist, secs, rate


def test_training_writes_resumable_run(trained):
    model, data, run, hist, secs, rate = trained
    assert len(hist["loss"]) == 2 and len(hist["seconds"]) == 2
    assert secs == pytest.approx(sum(hist["seconds"])) and secs > 0
    assert (run / "best.keras").exists() and (run / "history.csv").exists()
    best = load_keras_model(run / "best.keras")
    assert_same_weights(model.get_weights(), best.get_weights())  # the best epoch's
    assert not (run / "backup").exists()  # removed once a run completes
    assert json.loads((run / "run.json").read_text())["device"].startswith("tensorflow, ")
    # a finished run with the same settings is read back, not repeated
    again = build_cnn("tiny")
    hist2, epochs2, secs2, _ = train_cnn(again, data, run, epochs=2, batch_size=16,
                                         steps_per_execution=2, verbose=0)[:4]
    assert hist2 == hist and secs2 == secs and epochs2 == 2
    assert_same_weights(again.get_weights(), best.get_weights())
    # the images/s count the training passes only
    train_seconds = secs - sum(hist["val_seconds"])
    assert 0 < sum(hist["val_seconds"]) < secs
    assert rate == pytest.approx(2 * 64 / train_seconds)


def test_finished_run_reads_back_without_its_history(trained, tmp_path):
    import shutil
    data, run, secs = trained[1], trained[2], trained[4]
    shutil.copytree(run, tmp_path / "run")
    (tmp_path / "run" / "history.csv").unlink()
    model = build_cnn("tiny")
    run2 = train_cnn(model, data, tmp_path / "run", epochs=2, batch_size=16,
                     steps_per_execution=2, verbose=0)
    assert run2.history is None and run2.epochs == 2
    assert run2.seconds == pytest.approx(secs) and run2.images_per_s > 0
    best = load_keras_model(run / "best.keras")
    assert_same_weights(model.get_weights(), best.get_weights())


def test_warm_restart_starts_from_init_and_records_it(trained, tmp_path):
    import hashlib
    data, run = trained[1], trained[2]
    init = run / "best.keras"
    model = build_cnn("tiny")  # fresh weights, replaced by init's
    train_cnn(model, data, tmp_path, epochs=1, batch_size=16, lr=1e-12,
              steps_per_execution=2, verbose=0, init=init)
    settings = json.loads((tmp_path / "run.json").read_text())["settings"]
    assert settings["init"] == hashlib.sha256(init.read_bytes()).hexdigest()
    start = load_keras_model(init)
    np.testing.assert_allclose(model.get_layer("conv1_1").get_weights()[0],
                               start.get_layer("conv1_1").get_weights()[0], atol=1e-6)


def test_ensemble_averages_members_and_loads_in_safe_mode(trained, tmp_path):
    model, data = trained[:2]
    configure_tensorflow(seed=1)
    other = build_cnn("tiny")  # same names as `model`, other weights
    X = data["X_val"][..., None].astype(np.float32)
    expected = (model.predict(X, verbose=0) + other.predict(X, verbose=0)) / 2
    path = tmp_path / "ensemble.keras"
    with_tta(ensemble([model, other]), flip=False).save(path)
    np.testing.assert_allclose(load_keras_model(path).predict(X, verbose=0), expected,
                               atol=1e-6)
    assert ensemble([model]) is model
    with pytest.raises(ValueError, match="at least one"):
        ensemble([])


def test_tta_model_saves_and_loads_in_safe_mode(trained, tmp_path):
    model, data = trained[:2]
    path = tmp_path / "cnn.keras"
    with_tta(model, flip=True, shift=2).save(path)
    loaded = load_keras_model(path)
    X = data["X_val"].astype(np.float32)
    # the ten views by hand: shifts with mirrored borders, each also flipped
    padded = np.pad(X, [(0, 0), (2, 2), (2, 2)], mode="symmetric")
    views = [padded[:, 2 - dy:50 - dy, 2 - dx:50 - dx]
             for dx, dy in [(0, 0), (2, 0), (-2, 0), (0, 2), (0, -2)]]
    views += [v[:, :, ::-1] for v in views]
    expected = np.mean([model.predict(v[..., None], verbose=0) for v in views], axis=0)
    np.testing.assert_allclose(loaded.predict(X[..., None], verbose=0), expected, atol=1e-5)
    assert predict_keras(loaded, data["X_val"]).shape == (32,)
    assert with_tta(model, flip=False) is model


def test_evaluate_dispatches_on_keras_files(trained, tmp_path):
    model, data = trained[:2]
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


def test_unfinished_run_with_other_settings_raises(trained, tmp_path):
    data = trained[1]
    (tmp_path / "backup").mkdir()
    (tmp_path / "run.json").write_text(json.dumps({"settings": {"epochs": 99},
                                                   "finished": False}))
    with pytest.raises(ValueError, match="unfinished run with other settings"):
        train_cnn(build_cnn("tiny"), data, tmp_path, epochs=2, verbose=0)


def test_a_finished_run_is_never_overwritten_by_other_settings(trained, tmp_path):
    model, data, run = trained[:3]
    import shutil
    shutil.copytree(run, tmp_path / "run")
    before = {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir() if p.is_file()}
    with pytest.raises(ValueError, match=r"finished run with other settings \(epochs\)"):
        train_cnn(build_cnn("tiny"), data, tmp_path / "run", epochs=3, batch_size=16,
                  steps_per_execution=2, verbose=0)
    assert {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir()
            if p.is_file()} == before


def test_random_affine_warps_one_image_at_a_time():
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 255, (16, 12, 10, 1)).astype(np.float32)
    same = random_affine(X, shift=0, rotation=0, zoom=0, flip=False).numpy()
    np.testing.assert_allclose(same, X, atol=1e-3)
    flipped = random_affine(X, shift=0, rotation=0, zoom=0, flip=True).numpy()
    mirrored = [np.allclose(f, x[:, ::-1], atol=1e-3) for f, x in zip(flipped, X)]
    kept = [np.allclose(f, x, atol=1e-3) for f, x in zip(flipped, X)]
    assert all(m or k for m, k in zip(mirrored, kept)) and any(mirrored) and any(kept)
    # a shift moves the content: a bright column ends up elsewhere in some images
    X2 = np.zeros((32, 20, 20, 1), np.float32)
    X2[:, :, 10] = 255
    moved = random_affine(X2, shift=0.2, rotation=0, zoom=0, flip=False).numpy()
    assert np.any(moved[:, 10, :, 0].argmax(axis=1) != 10)


def test_warped_copy_is_one_fixed_warp_per_image():
    from nnlib.cnn.augment import warped_copy
    rng = np.random.default_rng(1)
    X = rng.integers(0, 256, (12, 20, 20)).astype(np.uint8)
    np.testing.assert_array_equal(warped_copy(X, shift=0, rotation=0, zoom=0), X)
    a, b = warped_copy(X, seed=3), warped_copy(X, seed=3)
    assert a.dtype == np.uint8 and a.shape == X.shape
    np.testing.assert_array_equal(a, b)  # the seed alone decides
    assert not np.array_equal(a, warped_copy(X, seed=4))
    assert all(not np.array_equal(w, x) for w, x in zip(a, X))
    # no mirror: a bright column on the left stays on the left
    X2 = np.zeros((16, 20, 20), np.uint8)
    X2[:, :, 3] = 255
    assert (warped_copy(X2)[:, 10].argmax(axis=1) < 10).all()


def test_random_affine_layer_augments_only_while_training(tmp_path):
    import keras

    from nnlib.cnn.augment import random_affine_layer
    RandomAffine = random_affine_layer()
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 255, (16, 12, 10, 1)).astype(np.float32)
    layer = RandomAffine(seed=1)
    np.testing.assert_array_equal(np.asarray(layer(X)), X)  # inference: the identity
    assert not np.allclose(np.asarray(layer(X, training=True)), X, atol=1)
    flips = RandomAffine(shift=0, rotation=0, zoom=0, seed=1)
    out = np.asarray(flips(X, training=True))
    mirrored = [np.allclose(o, x[:, ::-1], atol=1e-3) for o, x in zip(out, X)]
    kept = [np.allclose(o, x, atol=1e-3) for o, x in zip(out, X)]
    assert all(m or k for m, k in zip(mirrored, kept)) and any(mirrored) and any(kept)
    X2 = np.zeros((32, 20, 20, 1), np.float32)
    X2[:, :, 10] = 255
    moved = np.asarray(RandomAffine(shift=0.2, rotation=0, zoom=0, flip=False, seed=1)(
        X2, training=True))
    assert np.any(moved[:, 10, :, 0].argmax(axis=1) != 10)
    # a model holding it saves and loads in safe mode, its settings kept
    model = keras.Sequential([keras.Input((12, 10, 1)),
                              RandomAffine(shift=0.05, zoom=0, seed=3, name="augment")])
    model.save(tmp_path / "augment.keras")
    again = load_keras_model(tmp_path / "augment.keras").get_layer("augment")
    assert (again.shift, again.zoom, again.seed) == (0.05, 0, 3)


def test_in_graph_augmentation_trains_the_bare_model(trained, tmp_path):
    # the path another backend takes on a GPU machine; the saved network has no
    # augmentation layer, so it loads and scores as one trained through tf.data
    data = trained[1]
    configure_tensorflow(seed=0)
    model = build_cnn("tiny")
    run = train_cnn(model, data, tmp_path, epochs=2, batch_size=16, steps_per_execution=2,
                    verbose=0, augment_in_graph=True)
    assert run.epochs == 2 and len(run.history["val_accuracy"]) == 2
    best = load_keras_model(tmp_path / "best.keras")
    assert [w.name for w in best.weights] == [w.name for w in model.weights]
    assert predict_keras(best, data["X_val"]).shape == (len(data["y_val"]),)


def test_stop_run_closes_an_interrupted_run(trained, tmp_path):
    import shutil
    data, run = trained[1], trained[2]
    with pytest.raises(FileNotFoundError, match="run.json, history.csv and best.keras"):
        stop_run(tmp_path, "time limit")
    shutil.copytree(run, tmp_path / "run")
    with pytest.raises(ValueError, match="finished run"):
        stop_run(tmp_path / "run", "time limit")
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    (tmp_path / "run" / "run.json").write_text(json.dumps(
        {"settings": record["settings"], "finished": False}))  # as when the run was killed
    (tmp_path / "run" / "backup").mkdir()
    closed = stop_run(tmp_path / "run", "time limit", device="jax, a GPU")
    assert closed.epochs == 2 and closed.stopped == "time limit"
    assert not (tmp_path / "run" / "backup").exists()
    # train_cnn with the same settings reads it back instead of training again
    model = build_cnn("tiny")
    again = train_cnn(model, data, tmp_path / "run", epochs=2, batch_size=16,
                      steps_per_execution=2, verbose=0)
    assert again.history == trained[3] and again.stopped == "time limit"
    assert again.device == "jax, a GPU"
    best = load_keras_model(run / "best.keras")
    assert_same_weights(model.get_weights(), best.get_weights())


def test_train_member_reads_back_members_and_warm_restarts(trained, tmp_path):
    data = trained[1]
    spec = dict(seed=0, arch="tiny", epochs=1, batch_size=16)
    model, run = train_member(spec, tmp_path, data, verbose=0)
    settings = json.loads((tmp_path / "seed0" / "run.json").read_text())["settings"]
    assert run.epochs == 1 and settings["seed"] == 0
    assert (settings["lr"], settings["patience"]) == (MEMBER_DEFAULTS["lr"],
                                                      MEMBER_DEFAULTS["patience"])
    warm, _ = train_member(dict(spec, seed=1, init=0, lr=3e-4), tmp_path, data, verbose=0)
    assert "init" in json.loads((tmp_path / "seed1" / "run.json").read_text())["settings"]
    again, run2 = train_member(spec, tmp_path, data, verbose=0)  # read back, not trained
    assert run2.history == run.history
    assert_same_weights(model.get_weights(), again.get_weights())


def test_members_stored_once_in_the_ensemble_read_back(trained, tmp_path):
    data = trained[1]
    spec = dict(seed=0, arch="tiny", epochs=1, batch_size=16)
    first, run0 = train_member(spec, tmp_path, data, verbose=0)
    warm_spec = dict(spec, seed=1, init=0, lr=3e-4)
    warm, run1 = train_member(warm_spec, tmp_path, data, verbose=0)
    path = tmp_path / "ensemble.keras"
    save_keras_model(with_tta(ensemble([warm, first])), path)  # member_0 is seed 1
    assert store_in_ensemble(path, tmp_path, [1, 0]) == [1, 0]
    assert not list(tmp_path.glob("seed*/best.keras"))
    assert store_in_ensemble(path, tmp_path, [1, 0]) == []  # nothing left to do
    # both read back from the ensemble, the warm restart's settings (which name its
    # start's file) still match, and nothing is trained again
    for s, model, run in ((spec, first, run0), (warm_spec, warm, run1)):
        again, run2 = train_member(s, tmp_path, data, verbose=0)
        assert run2.history == run.history
        assert_same_weights(model.get_weights(), again.get_weights())
    assert not list(tmp_path.glob("seed*/best.keras"))
    # an ensemble that no longer holds the member's weights is named, not used
    save_keras_model(with_tta(ensemble([build_cnn("tiny"), first])), path)
    with pytest.raises(ValueError, match="no longer holds the best weights"):
        train_member(warm_spec, tmp_path, data, verbose=0)
    path.unlink()  # a missing one too
    with pytest.raises(FileNotFoundError, match="is missing: it holds the best weights"):
        train_member(warm_spec, tmp_path, data, verbose=0)


def test_storing_weights_that_differ_removes_nothing(trained, tmp_path):
    data = trained[1]
    model, _ = train_member(dict(seed=0, arch="tiny", epochs=1, batch_size=16), tmp_path,
                            data, verbose=0)
    path = tmp_path / "ensemble.keras"
    save_keras_model(ensemble([build_cnn("tiny"), model]), path)
    with pytest.raises(ValueError, match="does not hold the best weights"):
        store_in_ensemble(path, tmp_path, [0, 5])
    assert (tmp_path / "seed0" / "best.keras").exists()


def test_select_members_ranks_then_picks_size_and_view():
    y = np.array([0, 1, 2, 0])
    onehot = np.eye(3)
    right, wrong = onehot[y], onehot[[1, 2, 0, 1]]
    half = onehot[[0, 1, 0, 1]]  # 2 of 4 right
    scores = {(0, "none"): half, (0, "flip"): right,  # better with the mirror view
              (1, "none"): right, (1, "flip"): right,
              (2, "none"): wrong, (2, "flip"): wrong}
    sel = select_members(scores, y, ["none", "flip"])
    assert sel.alone == [0.5, 1.0, 0.0] and sel.ranked == [1, 0, 2]
    assert sel.grid.loc[2, "flip"] == 1.0 and sel.grid.loc[3, "none"] < 1.0
    # model 1 alone is already perfect: ties go to the fewest members, then the first view
    assert (sel.n_members, sel.view, sel.kept) == (1, "none", [1])


def test_save_keras_model_skips_an_unchanged_model(trained, tmp_path):
    model = trained[0]
    path = tmp_path / "m.keras"
    assert save_keras_model(model, path)
    before = path.read_bytes()
    assert not save_keras_model(model, path) and path.read_bytes() == before
    other = build_cnn("tiny")  # same configuration, other weights
    assert save_keras_model(other, path)
    np.testing.assert_array_equal(load_keras_model(path).get_weights()[0],
                                  other.get_weights()[0])
    path.write_text("not a keras file")
    assert save_keras_model(model, path)


def test_saved_models_are_compressed_without_loss(trained, tmp_path):
    import zipfile
    model = build_cnn("compact")  # enough weights for the compression to show
    raw, packed = tmp_path / "raw.keras", tmp_path / "packed.keras"
    model.save(raw)  # Keras's own archive: stored, not compressed
    assert save_keras_model(model, packed)
    with zipfile.ZipFile(packed) as z:
        assert {i.compress_type for i in z.infolist()} == {zipfile.ZIP_DEFLATED}
    assert packed.stat().st_size < 0.95 * raw.stat().st_size
    for a, b in zip(load_keras_model(packed).get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    # an uncompressed file of the same network is rewritten compressed, once
    raw.replace(packed)
    assert save_keras_model(model, packed) and not save_keras_model(model, packed)


class Killed(Exception):
    pass


def kill_nth_save(monkeypatch, n):
    """Make the n-th ``Model.save`` write part of its file and die (a simulated kill)."""
    import keras
    real, calls = keras.Model.save, []

    def save(self, path, *args, **kwargs):
        calls.append(path)
        if len(calls) == n:
            with open(path, "wb") as f:
                f.write(b"PK\x03\x04 part of an archive")
            raise Killed
        return real(self, path, *args, **kwargs)
    monkeypatch.setattr(keras.Model, "save", save)


def test_killed_save_keras_model_keeps_the_old_file(trained, tmp_path, monkeypatch):
    path = tmp_path / "m.keras"
    save_keras_model(trained[0], path)
    before = path.read_bytes()
    kill_nth_save(monkeypatch, 1)
    with pytest.raises(Killed):
        save_keras_model(build_cnn("tiny"), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.keras"]


@pytest.mark.parametrize("kill_at", [1, 2, 3])  # the n-th write of best.keras
def test_train_cnn_killed_while_saving_the_best_epoch_resumes(trained, tmp_path, monkeypatch,
                                                               kill_at):
    data = trained[1]
    configure_tensorflow(seed=0)
    model = build_cnn("tiny")
    kill_nth_save(monkeypatch, kill_at)
    opts = dict(epochs=3, batch_size=16, steps_per_execution=2, verbose=0, patience=5)
    try:
        train_cnn(model, data, tmp_path, **opts)
    except Killed:
        pass
    monkeypatch.undo()
    run = train_cnn(build_cnn("tiny"), data, tmp_path, **opts)
    assert run.epochs == 3 and len(run.history["loss"]) == 3
    rows = (tmp_path / "history.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["0", "1", "2"]
    assert json.loads((tmp_path / "run.json").read_text())["finished"]
    assert not (tmp_path / "backup").exists()
    load_keras_model(tmp_path / "best.keras")


def test_train_cnn_never_deletes_a_checkpoint_it_cannot_read(trained, tmp_path):
    data = trained[1]
    opts = dict(epochs=2, batch_size=16, steps_per_execution=2, verbose=0)
    (tmp_path / "run.json").write_text("{half a record")
    (tmp_path / "backup").mkdir()
    (tmp_path / "backup" / "latest.weights.h5").write_bytes(b"progress")
    with pytest.raises(ValueError, match=r"run.json is damaged"):
        train_cnn(build_cnn("tiny"), data, tmp_path, **opts)
    assert (tmp_path / "backup" / "latest.weights.h5").read_bytes() == b"progress"


def keras_lambda_model(path):
    import keras
    inputs = keras.Input((48, 48, 1))
    x = keras.layers.Lambda(lambda t: t * 2.0)(inputs)
    x = keras.layers.Flatten()(x)
    keras.Model(inputs, keras.layers.Dense(7, activation="softmax")(x)).save(path)


@pytest.mark.parametrize("damage, message", [
    ("truncate", "not a readable Keras model file"),
    ("garble", "not a readable Keras model file"),
    ("lambda", "safe mode refuses"),
    ("nan", "holds NaN or inf"),
])
def test_bad_keras_file_gets_one_clear_line(trained, tmp_path, capsys, damage, message):
    from nnlib.evaluate import main
    from nnlib.io import ModelError
    path = tmp_path / "m.keras"
    if damage == "lambda":
        keras_lambda_model(path)
    elif damage == "nan":
        model = build_cnn("tiny")
        weights = model.get_weights()
        weights[0][0, 0, 0, 0] = np.nan
        model.set_weights(weights)
        model.save(path)
    else:
        trained[0].save(path)
        raw = bytearray(path.read_bytes())
        if damage == "truncate":
            raw = raw[:len(raw) // 2]
        else:
            for i in range(100, len(raw) - 100, 5):
                raw[i] ^= 0xA5
        path.write_bytes(bytes(raw))
    with pytest.raises(ModelError, match=message):
        load_keras_model(path)
    data = tmp_path / "d" / "happy"
    data.mkdir(parents=True)
    Image.fromarray(np.zeros((48, 48), np.uint8), "L").save(data / "PublicTest_1.png")
    with pytest.raises(SystemExit) as e:
        main(["--model", str(path), "--data", str(tmp_path / "d")])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1 and str(path) in err


def test_teacher_probabilities_are_cached_by_fingerprint(trained, tmp_path, monkeypatch):
    from nnlib.cnn import teacher
    model, data = trained[0], trained[1]
    path = tmp_path / "teacher.keras"
    save_keras_model(model, path)
    X = data["X_val"]
    probs = teacher.teacher_probabilities(path, X, tmp_path / "cache")
    np.testing.assert_allclose(probs, model.predict(X[..., None].astype(np.float32),
                                                    verbose=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-5)
    (cache,) = (tmp_path / "cache").iterdir()

    class NoModel:
        def __init__(self, *a, **k):
            raise AssertionError("the cache should have been read")
    monkeypatch.setattr(teacher, "LoadedModel", NoModel)
    np.testing.assert_array_equal(teacher.teacher_probabilities(path, X, tmp_path / "cache"),
                                  probs)
    monkeypatch.undo()
    # other images: another file; a damaged cache file: computed again
    teacher.teacher_probabilities(path, X[:5], tmp_path / "cache")
    assert len(list((tmp_path / "cache").iterdir())) == 2
    cache.write_bytes(b"PK\x03\x04 damaged")
    np.testing.assert_array_equal(teacher.teacher_probabilities(path, X, tmp_path / "cache"),
                                  probs)


def test_augmented_batches_are_the_same_on_every_run(trained):
    from nnlib.cnn import make_dataset
    data = trained[1]

    def epochs(seed, n=2):
        ds = make_dataset(data["X_train"], data["y_train"], 16, True, seed=seed)
        return [[(x.numpy(), y.numpy()) for x, y in ds] for _ in range(n)]

    a, b = epochs(0), epochs(0)
    for ea, eb in zip(a, b):
        for (xa, ya), (xb, yb) in zip(ea, eb):
            np.testing.assert_array_equal(xa, xb)
            np.testing.assert_array_equal(ya, yb)
    assert not np.array_equal(a[0][0][0], a[1][0][0])  # a new shuffle and warps each epoch
    assert not np.array_equal(a[0][0][0], epochs(1, 1)[0][0][0])


def test_processor_names():
    from nnlib.cnn import processor_name
    assert processor_name("jax, NVIDIA H100 80GB HBM3") == "H100 80GB HBM3"
    assert processor_name("tensorflow, CPU (2 CPU cores)") == "CPU (2 CPU cores)"
    assert processor_name(None) == "not recorded"


def test_build_cnn_overrides_and_no_dense_layer():
    plain, no_dense = build_cnn("tiny"), build_cnn("tiny", dense=0, dropout=0.0)
    names = {layer.name for layer in no_dense.layers}
    assert "dense" not in names and "bn_dense" not in names
    # the classifier reads the 16 pooled channels of "tiny" directly: 16 * 7 + 7 weights
    assert no_dense.get_layer("scores").count_params() == 16 * 7 + 7
    # dense (16 * 32 + 32), its batch normalisation (4 * 32), the wider classifier
    dense_weights = (16 * 32 + 32) + 4 * 32 + 32 * 7 - 16 * 7
    assert plain.count_params() - no_dense.count_params() == dense_weights
    assert no_dense.get_layer("dropout").rate == 0.0
    with pytest.raises(ValueError, match="unknown settings"):
        build_cnn("tiny", kernel_size=5)


def test_build_cnn_design_ablations():
    plain = build_cnn("tiny")  # filters (8, 16), one conv per block, dense 32
    no_bn = build_cnn("tiny", batch_norm=False)
    assert not [la for la in no_bn.layers if "batch_normalization" in la.__class__.__name__.lower()]
    # each conv gains a bias and loses its batch normalisation's 4 per channel; the dense
    # layer loses its 4 * 32
    assert plain.count_params() - no_bn.count_params() == (4 - 1) * (8 + 16) + 4 * 32
    strided = build_cnn("tiny", downsample="stride")
    assert not [la for la in strided.layers if la.name.startswith("pool")]
    assert strided.count_params() == plain.count_params()  # the same weights, other strides
    # each block halves the resolution either way: 48 -> 24 -> 12
    assert strided.get_layer("relu2_1").output.shape[1:3] == (12, 12)
    assert plain.get_layer("pool2").output.shape[1:3] == (12, 12)
    valid = build_cnn("tiny", padding="valid")  # 48 -conv-> 46 -pool-> 23 -conv-> 21 -> 10
    assert valid.get_layer("relu1_1").output.shape[1:3] == (46, 46)
    assert valid.get_layer("pool2").output.shape[1:3] == (10, 10)
    assert valid.count_params() == plain.count_params()
    deeper = build_cnn("tiny", convs=2)  # a second 3x3 conv per block, the same widths
    assert deeper.get_layer("conv2_2").count_params() == 3 * 3 * 16 * 16
    with pytest.raises(ValueError, match="downsample must be"):
        build_cnn("tiny", downsample="average")


def test_the_fully_connected_control_has_q5s_layers():
    from nnlib.cnn.models import build_mlp
    model = build_mlp()
    # by hand: dense layers without biases, batch norms of 4 per unit, the classifier
    assert model.count_params() == (2304 * 964 + 4 * 964) + (964 * 953 + 4 * 953) + (953 * 7 + 7)
    assert [la.units for la in model.layers if la.name.startswith("dense")] == [964, 953]
    assert model.output_shape == (None, 7)
    assert build_mlp(l2=0).get_layer("dense1").kernel_regularizer is None


def test_shuffled_pixels_are_one_fixed_permutation_of_positions(tmp_path):
    import keras
    plain = build_cnn("tiny")
    shuffled = build_cnn("tiny", shuffle_pixels=True)
    assert shuffled.count_params() == plain.count_params()  # no weights of its own
    # the layer's output for two images, each pixel numbered: channels move together
    x = np.arange(2 * 48 * 48 * 2, dtype="float32").reshape(2, 48, 48, 2)
    layer = shuffled.get_layer("shuffle_pixels")
    out = np.asarray(layer(x))
    order = np.random.default_rng(0).permutation(48 * 48)  # drawn here, from the seed
    for i in range(2):
        flat = x[i].reshape(48 * 48, 2)
        assert np.array_equal(out[i].reshape(48 * 48, 2), flat[order])
    assert not np.array_equal(out, x) and np.array_equal(np.asarray(layer(x)), out)
    # saved and loaded in safe mode, it shuffles the same way
    shuffled.save(tmp_path / "s.keras")
    again = load_keras_model(tmp_path / "s.keras")
    images = np.random.default_rng(1).integers(0, 256, (3, 48, 48, 1)).astype("float32")
    assert np.allclose(again.predict(images, verbose=0), shuffled.predict(images, verbose=0))
    probe = keras.Model(again.input, again.get_layer("shuffle_pixels").output)
    assert np.allclose(np.asarray(probe(images))[0].ravel(), images[0].ravel()[order] / 255)


def test_train_cnn_with_sgd_records_its_optimizer(trained, tmp_path):
    data = trained[1]
    opts = dict(epochs=1, batch_size=16, steps_per_execution=2, verbose=0)
    configure_tensorflow(seed=0)
    model = build_cnn("tiny")
    train_cnn(model, data, tmp_path / "sgd", optimizer="sgd", lr=0.01, **opts)
    record = json.loads((tmp_path / "sgd" / "run.json").read_text())
    assert record["settings"]["optimizer"] == "sgd" and record["settings"]["lr"] == 0.01
    # AdamW, the default, is not written: earlier runs' records still match
    assert "optimizer" not in json.loads((trained[2] / "run.json").read_text())["settings"]
    with pytest.raises(ValueError, match="other settings"):  # the same folder, AdamW
        train_cnn(build_cnn("tiny"), data, tmp_path / "sgd", lr=0.01, **opts)
    with pytest.raises(ValueError, match="optimizer must be"):
        train_cnn(build_cnn("tiny"), data, tmp_path / "rmsprop", optimizer="rmsprop", **opts)
    assert not (tmp_path / "rmsprop").exists()  # refused before anything is written
    from nnlib.cnn.train import _compile
    _compile(model, dict(lr=0.01, epochs=2, weight_decay=1e-4, optimizer="sgd"), 4,
             "sparse_categorical_crossentropy", "accuracy", 1, False)
    assert type(model.optimizer).__name__ == "SGD"
    assert model.optimizer.momentum == 0.9 and model.optimizer.weight_decay == 1e-4


def test_dropped_weights_read_back_history_only(trained, tmp_path):
    import shutil

    from nnlib.cnn.run_folder import drop_weights
    data, run, hist = trained[1], trained[2], trained[3]
    shutil.copytree(run, tmp_path / "run")
    drop_weights(tmp_path / "run")
    assert not (tmp_path / "run" / "best.keras").exists()
    configure_tensorflow(seed=3)
    model = build_cnn("tiny")
    built = [w.copy() for w in model.get_weights()]
    again = train_cnn(model, data, tmp_path / "run", epochs=2, batch_size=16,
                      steps_per_execution=2, verbose=0)
    assert again.history == hist and again.epochs == 2
    assert_same_weights(model.get_weights(), built)  # left as built: nothing to load
    with pytest.raises(ValueError, match="no finished run"):
        drop_weights(tmp_path / "empty")


def test_candidate_dirs_are_distinct():
    from nnlib.cnn.recipes import CANDIDATES, candidate_dir
    assert candidate_dir("compact, no dropout", 1) == "compact-no-dropout_seed1"
    assert len({candidate_dir(n, 0) for n in CANDIDATES}) == len(CANDIDATES)


def test_compare_candidates_scores_each_run_by_its_best_epoch(monkeypatch):
    from types import SimpleNamespace

    from nnlib.cnn import recipes
    curves = {("a", 0): [0.2, 0.5, 0.4], ("a", 1): [0.3, 0.35, 0.6], ("b", 0): [0.7, 0.1],
              ("b", 1): [0.1, 0.65]}

    def fake(name, data, run_root, epochs, seed, jit_compile=False):
        val = curves[name, seed]
        return {"a": 10, "b": 20}[name], SimpleNamespace(
            history={"val_accuracy": val, "accuracy": [v + 0.25 for v in val]})
    monkeypatch.setattr(recipes, "train_candidate", fake)
    monkeypatch.setattr(recipes, "study_data", lambda study, data: data)
    runs, summary = recipes.compare_candidates(
        dict(candidates=["b", "a"], epochs=3, seeds=[0, 1], fraction=1.0), {}, "root")
    assert list(runs["val accuracy"]) == [0.7, 0.65, 0.5, 0.6]
    assert list(runs["best epoch"]) == [1, 2, 2, 3]
    assert list(runs["train accuracy"]) == [0.95, 0.9, 0.75, 0.85]  # at the best epoch
    assert list(summary["candidate"]) == ["b", "a"]  # in the order asked for
    a = summary.set_index("candidate").loc["a"]
    assert a["parameters"] == 10 and a["best_epoch"] == 2.5
    assert a["train"] == pytest.approx(0.8)
    assert a["mean"] == pytest.approx(0.55) and a["sd"] == pytest.approx(np.std([0.5, 0.6],
                                                                               ddof=1))


def test_a_study_trains_on_its_stratified_share_of_the_faces():
    from nnlib.cnn import study_data
    y = np.repeat(np.arange(7), [40, 4, 20, 60, 30, 16, 30])  # 200 faces, imbalanced
    data = {"X_train": np.arange(200)[:, None] * np.ones((1, 3)), "y_train": y,
            "X_val": np.zeros((5, 3)), "y_val": np.arange(5)}
    half = study_data(dict(fraction=0.5), data)
    assert len(half["y_train"]) == 100 and half["X_val"] is data["X_val"]
    assert np.bincount(half["y_train"]).tolist() == [20, 2, 10, 30, 15, 8, 15]
    rows = half["X_train"][:, 0].astype(int)
    assert len(set(rows)) == 100 and (y[rows] == half["y_train"]).all()  # faces, not copies
    assert np.array_equal(study_data(dict(fraction=0.5), data)["X_train"], half["X_train"])
    assert study_data(dict(fraction=1.0), data)["X_train"] is data["X_train"]


def test_the_q6_budget_takes_the_notebooks_parameters():
    from nnlib.cnn import Q6_BUDGETS, q6_budget
    full = Q6_BUDGETS["full"]
    assert q6_budget("full") == full
    b = q6_budget("full", members=2, compare_epochs=5)
    assert b["members"] == full["members"][:2] and b["comparison"]["epochs"] == 5
    assert b["comparison"]["seeds"] == full["comparison"]["seeds"]
    assert full["comparison"]["epochs"] == 30 and len(full["members"]) == 10  # untouched
    for budget in Q6_BUDGETS.values():  # both studies in one shape
        assert set(budget["comparison"]) == set(budget["ablation"]) == {
            "fraction", "epochs", "seeds", "candidates"}


def test_ablations_change_one_design_choice_of_compact():
    from nnlib.cnn import CANDIDATES, Q6_BUDGETS
    from nnlib.cnn.recipes import CONTROLS
    # the full comparison trains the controls too, at its own budget
    assert set(CONTROLS) <= set(Q6_BUDGETS["full"]["comparison"]["candidates"])
    for profile in Q6_BUDGETS.values():
        names = profile["ablation"]["candidates"]
        assert names[0] == "compact" and set(names) <= set(CANDIDATES)
        for name in names[1:]:
            if name in CONTROLS:  # not a CNN, trained alike
                assert CANDIDATES[name] == {"arch": "mlp"}
                continue
            spec = dict(CANDIDATES[name])
            assert spec.pop("arch") == "compact"
            # SGD brings its own learning rate; every other ablation changes one setting
            assert len(spec) == 1 or set(spec) == {"optimizer", "lr"}, name
