"""nnlib.io at its edges: what a model file must hold before anything is built from it,
archives that would inflate past any model, and arrays carried between machines."""
import json
import lzma
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from nnlib import FullyConnectedNet, Preprocessor
from nnlib.io import (
    MAX_RATIO,
    MAX_UNPACKED_BYTES,
    RATIO_FROM,
    ModelError,
    _first_line,
    check_unpacked_size,
    load_model,
    read_arrays,
    save_model,
    write_arrays,
)

MODELS = Path(__file__).resolve().parents[1] / "models"


def saved(tmp_path, pre=None, hidden=(5,), name="m.npz", **info):
    images = np.random.default_rng(0).integers(0, 256, (6, 48, 48), dtype=np.uint8)
    pre = Preprocessor().fit(images) if pre is None else pre
    model = FullyConnectedNet(list(hidden), input_dim=int(np.prod(pre.image_shape)),
                              num_classes=7, seed=1)
    return save_model(tmp_path / name, model, pre, info=info or None), model, pre


def rewrite(path, edit):
    """Apply ``edit(meta, arrays)`` to the file's header and arrays, and write it back."""
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    original = arrays["meta"]
    meta = json.loads(str(original))
    edit(meta, arrays)
    if arrays.get("meta") is original:  # the edit changed the header, not the entry
        arrays["meta"] = np.array(json.dumps(meta))
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def refused(path, message):
    with pytest.raises(ModelError, match=message) as e:
        load_model(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)


# ----------------------------------------------------------------------- round trip
def test_a_saved_model_reads_back_the_same(tmp_path):
    pre = Preprocessor(center="channel", zca=0.1).fit(
        np.random.default_rng(2).integers(0, 256, (40, 4, 4, 3), dtype=np.uint8))
    path, model, _ = saved(tmp_path, pre, hidden=(6, 5), classes=["a"])
    assert path == tmp_path / "m.npz"
    m, p, info = load_model(path)
    assert info == {"classes": ["a"]} and m.config() == model.config()
    assert all(np.array_equal(m.params[k], model.params[k]) for k in model.params)
    assert p.config() == pre.config() and p.mean.shape == (3,) and p.std.shape == ()
    X = np.random.default_rng(3).integers(0, 256, (5, 4, 4, 3), dtype=np.uint8)
    np.testing.assert_array_equal(p.transform(X), pre.transform(X))
    assert load_model(saved(tmp_path, name="n.npz")[0])[2] == {}  # no info: an empty one
    path = save_model(tmp_path / "bare.npz", model)
    assert load_model(path)[1] is None
    with pytest.raises(TypeError, match="save_model expects a FullyConnectedNet, got dict"):
        save_model(tmp_path / "x.npz", {})


@pytest.mark.parametrize("center, shape, mean", [
    ("image", (48, 48), (48, 48)), ("channel", (48, 48), ()), (None, (48, 48), ()),
    ("channel", (4, 4, 3), (3,)), ("image", (4, 4, 3), (4, 4, 3)), (None, (4, 4, 3), ())])
def test_every_centring_reads_back(tmp_path, center, shape, mean):
    images = np.random.default_rng(0).integers(0, 256, (6, *shape), dtype=np.uint8)
    pre = Preprocessor(center=center).fit(images)
    path = saved(tmp_path, pre)[0]
    assert load_model(path)[1].mean.shape == mean


# --------------------------------------------------------------- the preprocessing
@pytest.mark.parametrize("key, value, message", [
    ("pre/mean", np.zeros(48, np.float32), r"array mean has shape \(48,\), but the model's "
                                           r"48x48 images \(center='image'\) need \(48, 48\); "
                                           "the file is damaged or was not written by "
                                           "save_model$"),
    ("pre/mean", np.zeros((6, 48, 48), np.float32), r"mean has shape \(6, 48, 48\)"),
    ("pre/mean", np.zeros((1, 48), np.float32), r"mean has shape \(1, 48\)"),
    ("pre/mean", np.zeros(2304, np.float32), r"mean has shape \(2304,\)"),
    ("pre/mean", np.zeros((48, 48, 1), np.float32), r"mean has shape \(48, 48, 1\)"),
    ("pre/std", np.ones(1, np.float32), r"array std has shape \(1,\).* need \(\)"),
    ("pre/std", np.ones((48, 48), np.float32), r"array std has shape \(48, 48\)"),
    ("pre/std", np.float32(0), "the preprocessing std must be positive, got 0.0"),
    ("pre/std", np.float32(-2), "std must be positive, got -2.0"),
    ("pre/mean", np.full((48, 48), np.nan, np.float32), "array mean is not a finite numeric"),
    ("pre/mean", np.full((48, 48), "a"), "array mean is not a finite numeric"),
    ("pre/std", np.float32(np.inf), "array std is not a finite numeric"),
    ("pre/whitening", np.eye(3, dtype=np.float32), r"arrays \['whitening'\] that its "
                                                      r"settings do not use \(zca=None\)"),
    ("pre/extra", np.zeros(1), r"arrays \['extra'\] that its settings do not use"),
])
def test_preprocessing_arrays_of_another_shape_are_refused(tmp_path, key, value, message):
    path = saved(tmp_path)[0]
    rewrite(path, lambda m, a: a.update({key: value}))
    refused(path, message)


def test_whitening_must_be_square_over_the_features(tmp_path):
    pre = Preprocessor(zca=0.1).fit(
        np.random.default_rng(0).integers(0, 256, (20, 3, 3), dtype=np.uint8))
    path = saved(tmp_path, pre)[0]
    assert load_model(path)[1].whitening.shape == (9, 9)
    rewrite(path, lambda m, a: a.update({"pre/whitening": np.eye(9)[:, :8]}))
    refused(path, r"array whitening has shape \(9, 8\).* need \(9, 9\)")
    rewrite(path, lambda m, a: a.pop("pre/whitening"))
    refused(path, r"lacks the preprocessing arrays \['whitening'\]; save the model with")


@pytest.mark.parametrize("edit, message", [
    (lambda m, a: m["preprocessor"].update(image_shape=[48, 47]),
     r"image_shape \[48, 47\] does not give the network's 2304 input features"),
    (lambda m, a: m["preprocessor"].update(image_shape=[48, 48.0]), "image_shape"),
    (lambda m, a: m["preprocessor"].update(image_shape=[]), r"image_shape \[\]"),
    (lambda m, a: m["preprocessor"].update(image_shape="48x48"), "image_shape '48x48'"),
    (lambda m, a: m["preprocessor"].update(image_shape=[2304, 1, 0]), "image_shape"),
    (lambda m, a: m["preprocessor"].update(center="pixel"),
     r"invalid preprocessing \(ValueError: center must be"),
    (lambda m, a: m["preprocessor"].pop("zca"), r"preprocessor config lacks \['zca'\]"),
    (lambda m, a: m["preprocessor"].update(flip=True),
     r"unknown preprocessor config keys \['flip'\]"),
    (lambda m, a: a.pop("pre/std"), r"lacks the preprocessing arrays \['std'\]"),
])
def test_bad_preprocessing_settings_are_refused(tmp_path, edit, message):
    path = saved(tmp_path)[0]
    rewrite(path, edit)
    refused(path, message)


# ------------------------------------------------------------ the header and network
@pytest.mark.parametrize("edit, message", [
    (lambda m, a: a.pop("meta"), "has no 'meta' header: it was not written by "
                                 "nnlib.io.save_model$"),
    (lambda m, a: a.update(meta=np.array("{oops")), "the 'meta' header is not JSON"),
    (lambda m, a: a.update(meta=np.array("[1]")), "the 'meta' header must be a JSON object"),
    (lambda m, a: m.update(format="other/1"), "has format 'other/1', expected "
                                              "'nnlib.FullyConnectedNet/1'"),
    (lambda m, a: m.update(owner="me"), r"unknown header keys \['owner'\]"),
    (lambda m, a: m.pop("model"), r"the header lacks \['model'\]"),
    (lambda m, a: m.update(info=[1]), "the header's 'info' must be a JSON object"),
    (lambda m, a: a.update({"weights/W1": np.zeros(1)}), r"unknown entries \['weights/W1'\]"),
    (lambda m, a: m.update(model=[1]), "the model config must be a JSON object, got list"),
    (lambda m, a: m["model"].update(hidden_dims=[0]), r"positive integers.*hidden_dims=\[0\]"),
    (lambda m, a: m["model"].update(hidden_dims=[True]), "layer sizes must be positive"),
    (lambda m, a: m["model"].update(hidden_dims=5), "hidden_dims=5"),
    (lambda m, a: m["model"].update(input_dim=-1), "input_dim=-1"),
    (lambda m, a: m["model"].update(num_classes=1.5), "num_classes=1.5"),
    (lambda m, a: m["model"].update(dtype="float16"), "dtype must be float32 or float64, got "
                                                      "'float16'"),
    (lambda m, a: m["model"].pop("input_dim"), r"the model config lacks \['input_dim'\]$"),
    (lambda m, a: m["model"].pop("hidden_dims"), r"the model config lacks \['hidden_dims'\]$"),
    (lambda m, a: m["model"].pop("num_classes"), r"the model config lacks \['num_classes'\]$"),
    (lambda m, a: (m["model"].update(num_classes=1), a.update({
        "param/W2": np.zeros((5, 1), np.float32), "param/b2": np.zeros(1, np.float32)})),
     r"invalid model config \(FullyConnectedNet: layer sizes"),
    (lambda m, a: a.pop("param/b2"), r"the weights \['W1', 'W2', 'b1'\] do not match the "
                                     r"architecture, which needs \['W1', 'W2', 'b1', 'b2'\]"),
    (lambda m, a: a.update({"param/b2": np.zeros(6)}),
     r"parameter b2 has shape \(6,\) and dtype float64, the architecture needs a float array "
     r"of shape \(7,\)"),
    (lambda m, a: a.update({"param/b2": np.zeros(7, int)}), "parameter b2 has shape"),
    (lambda m, a: a.update({"param/b2": np.full(7, -np.inf)}), "parameter b2 holds NaN or inf "
     "values; the model diverged or the file is damaged: retrain or restore it$"),
])
def test_bad_headers_and_weights_are_refused(tmp_path, edit, message):
    path = saved(tmp_path)[0]
    rewrite(path, edit)
    refused(path, message)


def test_files_that_are_no_model(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"^no model file at {tmp_path}/none.npz; train "
                                                r"one first \(notebook Q5\) or give the right "
                                                "--model path$"):
        load_model(tmp_path / "none.npz")
    pickled = saved(tmp_path, name="pickled.npz")[0]  # an object array runs code on loading
    rewrite(pickled, lambda m, a: a.update({"param/b1": np.array([{}, 1], dtype=object)}))
    refused(pickled, "corrupted: ValueError: .*allow_pickle")
    (tmp_path / "text.npz").write_text("not a zip\n")
    refused(tmp_path / "text.npz", r"is not a readable .npz model file \(truncated or "
                                   r"corrupted: ValueError: .*\); save or copy it again")
    (tmp_path / "zip.npz").write_bytes(b"PK\x03\x04" + bytes(100))
    refused(tmp_path / "zip.npz", r"corrupted: BadZipFile: ")
    raw = saved(tmp_path)[0].read_bytes()
    (tmp_path / "half.npz").write_bytes(raw[:len(raw) // 2])
    refused(tmp_path / "half.npz", "not a readable .npz model file")
    weights64 = saved(tmp_path, name="f64.npz")[0]
    rewrite(weights64, lambda m, a: m["model"].update(dtype="float64"))
    assert load_model(weights64)[0].params["W1"].dtype == np.float64
    # float64 weights in a file of a float32 network (the default) are read as float32
    rewrite(weights64, lambda m, a: (m["model"].pop("dtype"), a.update(
        {k: v.astype(np.float64) for k, v in a.items() if k.startswith("param/")})))
    assert {v.dtype for v in load_model(weights64)[0].params.values()} == {np.dtype(np.float32)}


def test_a_message_is_its_first_line():
    assert _first_line(ValueError("one\ntwo")) == "ValueError: one"
    assert _first_line(EOFError()) == "EOFError" and _first_line(ValueError(" ")) == "ValueError"


# ---------------------------------------------------------------- archive sizes
def zip_with(path, payload, file_size=None, compress_size=None, name="a.npy"):
    """A stored (uncompressed) zip of one entry whose central directory declares
    ``file_size`` and ``compress_size`` where given (a crafted archive)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr(name, payload)
    raw = bytearray(path.read_bytes())
    at = raw.index(b"PK\x01\x02")  # the central directory's entry: sizes at +20 and +24
    if compress_size is not None:
        raw[at + 20:at + 24] = struct.pack("<I", compress_size)
    if file_size is not None:
        raw[at + 24:at + 28] = struct.pack("<I", file_size)
    path.write_bytes(bytes(raw))
    with zipfile.ZipFile(path) as z:  # as declared
        info = z.getinfo(name)
        assert (info.file_size, info.compress_size) == (
            file_size or len(payload), compress_size or len(payload))
    return path


def test_the_limits_leave_room_for_every_committed_model():
    assert MAX_UNPACKED_BYTES == 2 ** 30 and MAX_RATIO == 100 and RATIO_FROM == 2 ** 20
    files = sorted(MODELS.rglob("*.keras")) + sorted(MODELS.rglob("*.npz"))
    if not files:  # a copy of the code without the models (e.g. mutation testing)
        pytest.skip(f"no models in {MODELS}")
    for path in files:
        check_unpacked_size(path)
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
        assert 20 * sum(i.file_size for i in infos) < MAX_UNPACKED_BYTES
        assert all(i.file_size < 40 * max(i.compress_size, 1) for i in infos)


def test_an_archive_that_would_inflate_too_far_is_refused(tmp_path):
    payload = bytes(20_000)
    for size in (len(payload), 100 * 20_000, RATIO_FROM):  # at the limits: read on
        check_unpacked_size(zip_with(tmp_path / "ok.npz", payload, file_size=size))
    check_unpacked_size(zip_with(tmp_path / "ok.npz", bytes(1000), file_size=RATIO_FROM))
    for payload, size, message in (
            (bytes(20_000), 100 * 20_000 + 1, "inflate 20,000 bytes to 2,000,001, more "
                                              "than 100 times; it holds no trained weights"),
            (bytes(1000), RATIO_FROM + 1, "inflate 1,000 bytes to 1,048,577")):
        path = zip_with(tmp_path / "bomb.npz", payload, file_size=size)
        with pytest.raises(ModelError, match=f"{path}: entry a.npy would {message}"):
            check_unpacked_size(path)
        refused(path, "a.npy would inflate")
    # a declared compressed size past the file's own is bounded by the file
    path = zip_with(tmp_path / "lie.npz", bytes(20_000), 3_000_000, 10 ** 9)
    with pytest.raises(ModelError, match=r"would inflate 20,1\d\d bytes to 3,000,000"):
        check_unpacked_size(path)
    path = zip_with(tmp_path / "empty.npz", b"", 2 * RATIO_FROM, 0)
    with pytest.raises(ModelError, match="would inflate 1 bytes to 2,097,152"):
        check_unpacked_size(path)


def test_an_archive_past_the_total_is_refused(tmp_path):
    payload = bytes(MAX_UNPACKED_BYTES // 90)  # within the ratio, not within the total
    check_unpacked_size(zip_with(tmp_path / "ok.keras", payload, MAX_UNPACKED_BYTES))
    path = zip_with(tmp_path / "big.keras", payload, MAX_UNPACKED_BYTES + 1)
    with pytest.raises(ModelError, match=f"^{path} would inflate to 1,073,741,825 bytes, more "
                                         "than the 1,073,741,824 a model may take; it is no "
                                         "model saved by nnlib: restore or copy the right file$"):
        check_unpacked_size(path)
    refused(path.rename(tmp_path / "big.npz"), "would inflate to 1,073,741,825 bytes")


def test_unreadable_archives_are_left_to_the_loader(tmp_path):
    (tmp_path / "text").write_text("no zip")
    assert check_unpacked_size(tmp_path / "text") is None
    assert check_unpacked_size(tmp_path / "none") is None
    assert check_unpacked_size(tmp_path) is None


# ------------------------------------------------------------------ carried arrays
@pytest.mark.parametrize("name, magic", [("d.npz", b"PK"), ("d.npz.xz", b"\xfd7zXZ")])
def test_carried_arrays_read_back_unchanged(tmp_path, name, magic):
    arrays = {"X": np.arange(24, dtype=np.uint8).reshape(2, 3, 4),
              "y": np.array([1.5, -2.0], np.float64)}
    write_arrays(tmp_path / name, **arrays)
    raw = (tmp_path / name).read_bytes()
    assert raw.startswith(magic)
    plain = lzma.decompress(raw) if name.endswith(".xz") else raw
    assert plain.startswith(b"PK")
    back = read_arrays(tmp_path / name)
    assert set(back) == {"X", "y"}
    for k, v in arrays.items():
        assert back[k].dtype == v.dtype and np.array_equal(back[k], v)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]
    with pytest.raises(ValueError, match="allow_pickle"):  # no code runs on reading
        write_arrays(tmp_path / f"o-{name}", o=np.array([{}], dtype=object))
        read_arrays(tmp_path / f"o-{name}")
