"""A finished run's weights kept once, in the model file that holds them, and read back
only while their digest still matches; model archives checked before Keras reads them."""
import hashlib
import json
import os
import re
import struct
import zipfile

import numpy as np
import pytest

pytest.importorskip("keras")

import keras  # noqa: E402

from nnlib.cnn import ensemble  # noqa: E402
from nnlib.cnn.io import load_keras_model, save_keras_model  # noqa: E402
from nnlib.cnn.stored import (  # noqa: E402
    STORED_NAME,
    best_weights,
    file_digest,
    find_layer,
    store_run_weights,
)
from nnlib.digest import arrays_digest as weights_digest  # noqa: E402
from nnlib.io import ModelError  # noqa: E402


def tiny(seed):
    """Input (3,) -> Dense(2): five weights, drawn from ``seed``."""
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(2, name="dense")(inputs), name="net")
    rng = np.random.default_rng(seed)
    model.set_weights([rng.standard_normal(w.shape).astype(np.float32)
                       for w in model.get_weights()])
    return model


@pytest.fixture
def stored_run(tmp_path):
    """A finished run whose best weights (of ``tiny(0)``) now live only in member_0 of an
    ensemble file; returns (run folder, ensemble file, the weights)."""
    run = tmp_path / "run"
    run.mkdir()
    best = tiny(0)
    save_keras_model(best, run / "best.keras")
    (run / "run.json").write_text(json.dumps({"finished": True}))
    holder = tmp_path / "ens.keras"
    save_keras_model(ensemble([best, tiny(1)]), holder)
    before = hashlib.sha256((run / "best.keras").read_bytes()).hexdigest()
    assert store_run_weights(run, holder, "member_0") is True
    text = (run / STORED_NAME).read_text()
    ref = json.loads(text)
    assert ref == {"file": "../ens.keras", "layer": "member_0",
                   "weights_sha256": weights_digest(best.get_weights()), "file_sha256": before}
    assert text == json.dumps(ref, indent=1) + "\n"  # the layout of the committed records
    assert not (run / "best.keras").exists()
    return run, holder, best.get_weights()


def replace_file(path, model):
    """Save ``model`` over ``path`` with another modification time, as a later save
    would have."""
    stat = path.stat()
    save_keras_model(model, path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10 ** 9))


def edit_ref(run, **changes):
    ref = json.loads((run / STORED_NAME).read_text())
    (run / STORED_NAME).write_text(json.dumps({**ref, **changes}))


def test_stored_weights_read_back(stored_run):
    run, _, weights = stored_run
    back = best_weights(run)
    assert len(back) == 2 and all(np.array_equal(a, b) for a, b in zip(back, weights))
    assert file_digest(run / "best.keras") == json.loads(
        (run / STORED_NAME).read_text())["file_sha256"]


def test_a_changed_weight_is_caught(stored_run):
    run, holder, _ = stored_run
    best_weights(run)  # read once: the holder is kept in memory by size and time
    model = load_keras_model(holder)
    w = model.get_layer("member_0").get_weights()
    w[0][1, 1] = np.nextafter(w[0][1, 1], np.float32(np.inf))  # the smallest change
    model.get_layer("member_0").set_weights(w)
    replace_file(holder, model)
    with pytest.raises(ValueError, match=f"{holder} no longer holds the best weights of {run} "
                                         r"\(layer 'member_0', as .*stored.json says\)"):
        best_weights(run)


def test_a_missing_layer_is_caught(stored_run):
    run, holder, _ = stored_run
    edit_ref(run, layer="member_7")
    with pytest.raises(ValueError, match=f"{holder} has no layer 'member_7', which holds the "
                                         f"best weights of {run}"):
        best_weights(run)
    replace_file(holder, tiny(0))  # the right weights, but no longer in that layer
    edit_ref(run, layer="member_0")
    with pytest.raises(ValueError, match="has no layer 'member_0'"):
        best_weights(run)


def test_a_wrong_file_is_caught(stored_run, tmp_path):
    run, _, _ = stored_run
    save_keras_model(ensemble([tiny(2), tiny(0)]), tmp_path / "other.keras")
    edit_ref(run, file="../other.keras")  # member_0 there holds other weights
    with pytest.raises(ValueError, match="other.keras no longer holds the best weights"):
        best_weights(run)
    edit_ref(run, file="../gone.keras")
    with pytest.raises(FileNotFoundError, match="gone.keras is missing: it holds the best "
                                                f"weights of {run}"):
        best_weights(run)
    (tmp_path / "text.keras").write_text("no model")
    edit_ref(run, file="../text.keras")
    with pytest.raises(ModelError, match="text.keras is not a readable Keras model file"):
        best_weights(run)


@pytest.mark.parametrize("text, why", [("{not json", "JSONDecodeError"), ("[1]", "TypeError"),
                                       ('{"file": "../ens.keras"}', "KeyError"),
                                       ('{"layer": "member_0", "weights_sha256": "0"}',
                                        "KeyError")])
def test_a_damaged_record_is_caught(stored_run, text, why):
    run, _, _ = stored_run
    (run / STORED_NAME).write_text(text)
    with pytest.raises(ValueError, match=re.escape(f"{run / STORED_NAME} is damaged ({why}: ")
                       + f".*\\); restore it from git, or delete {re.escape(str(run))} to "
                         "train this run again$"):
        best_weights(run)


def test_a_run_with_its_own_file_reads_that(tmp_path):
    save_keras_model(tiny(3), tmp_path / "best.keras")
    (tmp_path / STORED_NAME).write_text("damaged, but not read")
    assert np.array_equal(best_weights(tmp_path)[1], tiny(3).get_weights()[1])
    assert file_digest(tmp_path / "best.keras") == hashlib.sha256(
        (tmp_path / "best.keras").read_bytes()).hexdigest()
    with pytest.raises(FileNotFoundError, match="no model file at"):
        best_weights(tmp_path / "nothing")


def test_storing_refuses_what_it_cannot_vouch_for(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    save_keras_model(tiny(0), run / "best.keras")
    save_keras_model(ensemble([tiny(1), tiny(0)]), tmp_path / "ens.keras")
    with pytest.raises(ValueError, match=f"^{run} holds no finished run; only a finished "
                                         "run's weights can be stored elsewhere$"):
        store_run_weights(run, tmp_path / "ens.keras", "member_1")
    (run / "run.json").write_text(json.dumps({"finished": False}))
    with pytest.raises(ValueError, match="holds no finished run"):
        store_run_weights(run, tmp_path / "ens.keras", "member_1")
    (run / "run.json").write_text(json.dumps({"finished": True}))
    for layer in ("member_0", "member_5"):
        with pytest.raises(ValueError, match=f"ens.keras layer '{layer}' does not hold the "
                                             "best weights of .*; nothing was removed"):
            store_run_weights(run, tmp_path / "ens.keras", layer)
        assert (run / "best.keras").exists() and not (run / STORED_NAME).exists()
    assert store_run_weights(run, tmp_path / "ens.keras", "member_1") is True
    assert store_run_weights(run, tmp_path / "ens.keras", "member_1") is False  # done already


def test_the_digest_covers_dtype_shape_and_values():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    h = hashlib.sha256()
    h.update(b"<f4(2, 3)")
    h.update(a.tobytes())
    assert weights_digest([a]) == h.hexdigest()
    b = np.ones(2, np.float64)
    h.update(b"<f8(2,)")
    h.update(b.tobytes())
    assert weights_digest([a, b]) == h.hexdigest()
    assert weights_digest([np.asfortranarray(a)]) == weights_digest([a])
    changed = [a.astype(np.float64), a.reshape(3, 2), a.T, a + 1]
    assert len({weights_digest([w]) for w in [a, *changed]}) == 5
    assert weights_digest([a, b]) != weights_digest([b, a])
    prefixed = hashlib.sha256(b"file")
    expected = hashlib.sha256(b"file" + b"<f4(2, 3)" + a.tobytes()).hexdigest()
    assert weights_digest([a], prefixed) == expected and weights_digest([]) == hashlib.sha256(
        b"").hexdigest()


def test_layers_are_found_inside_nested_models():
    net = ensemble([tiny(0), tiny(1)])
    assert find_layer(net, net.name) is net
    assert find_layer(net, "member_1").name == "member_1"
    inner = find_layer(net, "dense")  # the first member's, depth first
    assert np.array_equal(inner.get_weights()[1], tiny(0).get_weights()[1])
    assert find_layer(net, "nothing") is None


def test_an_archive_that_would_inflate_past_any_model_is_not_read(tmp_path, monkeypatch):
    path = tmp_path / "bomb.keras"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("model.weights.h5", bytes(1000))
    raw = bytearray(path.read_bytes())
    at = raw.index(b"PK\x01\x02") + 24  # the declared size: 1,000 bytes -> 2 GiB
    raw[at:at + 4] = struct.pack("<I", 2 ** 31)
    path.write_bytes(bytes(raw))
    monkeypatch.setattr(keras.saving, "load_model", lambda *a, **k: pytest.fail("read it"))
    with pytest.raises(ModelError, match=f"{path} would inflate to 2,147,483,648 bytes"):
        load_keras_model(path)
