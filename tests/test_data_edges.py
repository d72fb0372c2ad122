"""Bad and unusual data a new user may have: 16-bit images, FIFOs, sockets and broken
links in a data folder, CSVs without Usage or with stray quotes, decompression bombs,
wrong CIFAR-10 labels, a blocked cache, paths that leave the data folder. Every expected
value is written out here, not computed by the code under test."""
import csv
import os
import pickle
import re
import signal
import socket
import struct
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image

import nnlib.data
from nnlib.data import (
    CIFAR10_CLASSES,
    FER2013_CLASSES,
    DataError,
    cache_dir,
    list_images,
    load_cifar10,
    load_fer2013,
    read_fer_csv_rows,
    read_fer_labels_file,
    read_fer_labels_rows,
    read_images,
    stratified_split,
    subsample,
)
from nnlib.images import class_folder_files, file_problem, read_cifar_batch, read_image
from nnlib.paths import PROJ_ROOT

PIX = " ".join(["9"] * 2304)


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NNLIB_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def deadline():
    """Fail, rather than hang, if a loader opens a FIFO."""
    def expire(*_):
        raise TimeoutError("blocked: a FIFO was opened")
    old = signal.signal(signal.SIGALRM, expire)
    signal.alarm(30)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def gray(path, value, shape=(48, 48), mode="L"):
    """A PNG of one grey level; mode "RGB" stores it in three equal channels."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full(shape, value, np.uint8), "L").convert(mode).save(path)
    return path


def write_csv(path, rows, header=("emotion", "pixels", "Usage")):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def png_header(path, width, height):
    """A PNG that declares width x height 8-bit grey pixels and holds none of them."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))
    path.write_bytes(b"\x89PNG\r\n\x1a\n"
                     + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))
    return path


# ------------------------------------------------------------------------- 16-bit images
# 16-bit levels and their 8-bit values round(g * 255 / 65535), worked out by hand:
# 257 = 1 * 257 -> 1; 32768 -> 127.502 -> 128; 1000 -> 3.891 -> 4; 128 -> 0.498 -> 0;
# 129 -> 0.502 -> 1; 65278 -> 253.996 -> 254
LEVELS16 = [0, 257, 32768, 65535, 1000, 128, 129, 65278]
LEVELS8 = [0, 1, 128, 255, 4, 0, 1, 254]


def test_16bit_png_is_scaled_not_clipped(tmp_path):
    p = tmp_path / "g16.png"
    Image.fromarray(np.array([LEVELS16], np.uint16)).save(p)
    assert Image.open(p).mode == "I;16"
    assert read_image(p, "L").tolist() == [LEVELS8]
    rgb = read_image(p, "RGB")
    assert rgb.shape == (1, 8, 3) and rgb.dtype == np.uint8
    assert rgb[..., 0].tolist() == rgb[..., 2].tolist() == [LEVELS8]
    # through a loader: a 48x48 16-bit face of level 40000 -> 155.65 -> 156
    root = tmp_path / "fer2013"
    (root / "train" / "fear").mkdir(parents=True)
    Image.fromarray(np.full((48, 48), 40000, np.uint16)).save(
        root / "train" / "fear" / "Training_0.png")
    d = load_fer2013(root, val_size=None)
    assert d["X_train"].dtype == np.uint8 and (d["X_train"] == 156).all()
    assert d["y_train"].tolist() == [2]


@pytest.mark.parametrize("level", [70000, -5])
def test_32bit_levels_beyond_16_bits_are_refused(tmp_path, level):
    p = tmp_path / "wide.tif"
    Image.fromarray(np.array([[0, level]], np.int32), "I").save(p)
    with pytest.raises(DataError, match=re.escape(
            f"{p} holds grey levels outside 0..65535, so its bit depth is unknown; save it "
            "as an 8-bit or 16-bit image")):
        read_image(p, "L")


# ------------------------------------------------------- what is not an image file
def test_fifos_sockets_links_and_other_files_are_skipped_with_reasons(tmp_path, deadline,
                                                                      monkeypatch):
    root = tmp_path / "fer2013"
    happy = root / "train" / "happy"
    gray(happy / "Training_0.png", 10)
    gray(root / "train" / "sad" / "Training_1.png", 20)
    gray(tmp_path / "elsewhere.png", 30)
    (happy / "linked.png").symlink_to(tmp_path / "elsewhere.png")  # read: a link to a file
    (happy / "gone.png").symlink_to(tmp_path / "nowhere.png")
    os.mkfifo(happy / "pipe.png")
    os.mkfifo(root / "stray.fifo")  # beside the layout: never opened
    monkeypatch.chdir(happy)  # a short socket address
    sock = socket.socket(socket.AF_UNIX)
    sock.bind("sock.png")
    try:
        gray(happy / "anim.gif", 0)
        gray(happy / "b.webp", 0)
        (happy / "README").write_text("faces")
        (happy / ".DS_Store").write_bytes(b"\0")  # hidden: left out without a word
        gray(root / "train" / "loose.png", 0)
        with pytest.warns(UserWarning) as record:
            d = load_fer2013(root, val_size=None)
    finally:
        sock.close()
    assert sorted(d["X_train"][:, 0, 0].tolist()) == [10, 20, 30]
    assert d["y_train"].tolist() == [3, 3, 4]  # Training_0, linked (happy); Training_1 (sad)
    assert [str(w.message) for w in record] == [
        f"{root / 'train'}: skipped 7 entries that are no images it can read: "
        "1 a broken symbolic link (e.g. happy/gone.png); "
        "2 not a regular file (a FIFO, socket or device) (e.g. happy/pipe.png); "
        "1 outside the class folders (e.g. loose.png); "
        "1 the unsupported suffix (none) (e.g. happy/README); "
        "1 the unsupported suffix .gif (e.g. happy/anim.gif); "
        "1 the unsupported suffix .webp (e.g. happy/b.webp). "
        "Only regular .bmp/.jpeg/.jpg/.png files are read; convert, move or remove the "
        "others"]


def test_list_images_reports_unless_given_a_list(tmp_path):
    gray(tmp_path / "b.png", 0)
    gray(tmp_path / "a.JPG", 0)
    (tmp_path / "c.tif").write_bytes(b"II*\0")
    (tmp_path / "sub").mkdir()  # folders are no entries to report
    with pytest.warns(UserWarning, match=r"skipped 1 entries .*: 1 the unsupported suffix "
                                         r"\.tif \(e\.g\. c\.tif\)\. Only"):
        assert list_images(tmp_path) == [tmp_path / "a.JPG", tmp_path / "b.png"]
    skipped = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(list_images(tmp_path, skipped)) == 2
    assert skipped == [(tmp_path / "c.tif", "the unsupported suffix .tif")]


def test_file_problem_names_each_kind(tmp_path):
    gray(tmp_path / "ok.png", 0)
    (tmp_path / "link.png").symlink_to(tmp_path / "ok.png")
    (tmp_path / "broken.png").symlink_to(tmp_path / "missing.png")
    os.mkfifo(tmp_path / "fifo.png")
    assert file_problem(tmp_path / "ok.png") is None
    assert file_problem(tmp_path / "link.png") is None
    assert file_problem(tmp_path / "broken.png") == "a broken symbolic link"
    assert file_problem(tmp_path / "fifo.png") == "not a regular file (a FIFO, socket or device)"
    assert file_problem(tmp_path) == "a folder"
    assert file_problem(tmp_path / "missing.png") == "no such file"


def test_class_folder_files_keep_their_order_and_labels(tmp_path):
    for cls, name in (("surprise", "b.png"), ("angry", "z.png"), ("surprise", "a.png")):
        gray(tmp_path / cls / name, 0)
    paths, labels = class_folder_files(tmp_path, FER2013_CLASSES)
    assert [p.relative_to(tmp_path).as_posix() for p in paths] == [
        "angry/z.png", "surprise/a.png", "surprise/b.png"]
    assert labels.tolist() == [0, 5, 5] and labels.dtype == np.int64


# ------------------------------------------------------------------------- FER CSVs
def test_csv_without_usage_is_training_data_or_test_data(tmp_path):
    p = write_csv(tmp_path / "fer2013.csv", [[3, PIX], [6, PIX]], header=("emotion", "pixels"))
    X, y, usages = read_fer_csv_rows(p)
    assert usages == ["Training", "Training"] and y.tolist() == [3, 6] and (X == 9).all()
    assert read_fer_csv_rows(p, default_usage="test")[2] == ["test", "test"]
    d = load_fer2013(tmp_path, val_size=None)
    assert d["y_train"].tolist() == [3, 6] and "X_test" not in d
    from nnlib.evaluate import load_fer_eval_data
    X, y, _, counts = load_fer_eval_data(p)
    assert counts == {"test": 2} and y.tolist() == [3, 6]


def test_blank_usage_cells_take_the_default(tmp_path):
    p = write_csv(tmp_path / "f.csv", [[1, PIX, ""], [2, PIX, "PublicTest"], [4, PIX, "  "]])
    assert read_fer_csv_rows(p)[2] == ["Training", "PublicTest", "Training"]
    assert read_fer_csv_rows(p, default_usage="test")[2] == ["test", "PublicTest", "test"]
    write_csv(p, [[1, PIX, "test"]])  # the default is no value a file may hold
    with pytest.raises(DataError, match="line 2: unknown Usage 'test'"):
        read_fer_csv_rows(p, default_usage="test")


@pytest.mark.parametrize("reader", ["csv", "labels"])
def test_csv_with_a_stray_quote_or_a_non_utf8_byte(tmp_path, reader):
    if reader == "csv":
        p = tmp_path / "fer2013.csv"
        lines = ["emotion,pixels,Usage", f"0,{PIX},Training", f'1,"{PIX},Training',
                 f"2,{PIX},Training"]
    else:
        p = tmp_path / "labels_public.txt"
        gray(tmp_path / "Train" / "a.png", 0)
        lines = ["img,emotion", "Train/a.png,0", '"Train/a.png,1', "Train/a.png,2"]
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=re.escape(
            f"{p}, line 3: malformed CSV (unexpected end of data); look for a stray double "
            'quote (") on that line or after it and remove it')):
        load_fer2013(tmp_path, cache=False)
    raw = [line.replace('"', "").encode() for line in lines]
    raw[3] += b"\xe9"  # Latin-1 e-acute at the end of line 4
    p.write_bytes(b"\n".join(raw) + b"\n")
    with pytest.raises(DataError, match=re.escape(
            f"{p}, line 4: byte 0xe9 is not UTF-8 text; save the file as UTF-8 (CSV UTF-8)")):
        load_fer2013(tmp_path, cache=False)


def test_a_non_utf8_header_names_line_1(tmp_path):
    p = tmp_path / "f.csv"
    p.write_bytes(b"emotion,pixels,Usage\xff\n")
    with pytest.raises(DataError, match=r"f\.csv, line 1: byte 0xff is not UTF-8"):
        read_fer_csv_rows(p)


# ---------------------------------------------------------------------- big images
def test_a_200_megapixel_png_is_refused(tmp_path):
    p = png_header(tmp_path / "huge.png", 20000, 10000)
    with pytest.raises(DataError, match=re.escape(
            f"{p} is far too large for a data set image (Image size (200000000 pixels) "
            "exceeds limit of 178956970 pixels")) as e:
        read_image(p, "L")
    assert str(e.value).endswith("; remove it or shrink it")


def test_an_image_above_the_warning_limit_is_refused_too(tmp_path, monkeypatch):
    p = gray(tmp_path / "train" / "sad" / "a.png", 0)  # 2304 pixels: 1x to 2x the limit
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 2000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the conversion must not depend on the filters
        with pytest.raises(DataError, match=f"{re.escape(str(p))} is far too large"):
            read_image(p, "L")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 2304)
    assert read_image(p, "L").shape == (48, 48)


# -------------------------------------------------------------------- CIFAR-10 batches
def cifar_batches(folder, labels=(0, 9), data=None):
    folder.mkdir(parents=True, exist_ok=True)
    rows = np.arange(2 * 3072).reshape(2, 3072) % 251
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (folder / name).write_bytes(pickle.dumps(
            {b"data": rows.astype(np.uint8) if data is None else data,
             b"labels": list(labels)}, protocol=2))
    return rows


@pytest.mark.parametrize("label", [10, -1])
def test_cifar_label_outside_the_classes(tmp_path, label):
    folder = tmp_path / "cifar10" / "cifar-10-batches-py"
    cifar_batches(folder)
    (folder / "data_batch_3").write_bytes(pickle.dumps(
        {b"data": np.zeros((2, 3072), np.uint8), b"labels": [9, label]}))
    with pytest.raises(DataError, match=re.escape(
            f"{folder / 'data_batch_3'}: image 1 has the label {label}, outside CIFAR-10's "
            "0..9; replace the file by the original (the CIFAR-10 python version)")):
        load_cifar10(tmp_path / "cifar10")


@pytest.mark.parametrize("data", [np.full((2, 3072), 256), np.full((2, 3072), -1),
                                  np.zeros((2, 3072))])
def test_cifar_pixels_outside_a_byte(tmp_path, data):
    folder = tmp_path / "b"
    cifar_batches(folder, data=data)
    with pytest.raises(DataError, match=r"data_batch_1 is not a CIFAR-10 python batch "
                                        r"\(ValueError\('pixel values are not integers in "
                                        r"0\.\.255'\)\)"):
        read_cifar_batch(folder / "data_batch_1")


def test_cifar_batch_rows_become_images(tmp_path):
    folder = tmp_path / "b"
    rows = cifar_batches(folder, labels=np.array([0, 9], np.uint8),
                         data=np.arange(2 * 3072).reshape(2, 3072) % 256)
    X, y = read_cifar_batch(folder / "test_batch")
    assert X.shape == (2, 32, 32, 3) and X.flags.c_contiguous and y.tolist() == [0, 9]
    assert X.dtype == np.uint8 and y.dtype == np.int64
    # pixel (row 1, column 2) of image 1: red at 1*32+2, green 1024 later, blue 2048 later
    assert X[1, 1, 2].tolist() == [(3072 + 34 + k * 1024) % 256 for k in range(3)]
    assert rows.shape == (2, 3072)
    d = load_cifar10(tmp_path / "b", val_size=None, cache=False)  # root holding the batches
    assert d["X_train"].shape == (10, 32, 32, 3) and d["y_test"].tolist() == [0, 9]


# ---------------------------------------------------------------------------- cache
def test_cache_below_a_file_or_replaced_by_a_folder(tmp_path, monkeypatch):
    root = tmp_path / "fer2013"
    gray(root / "train" / "happy" / "a.png", 7)
    (tmp_path / "file").write_text("x")
    monkeypatch.setenv("NNLIB_CACHE", str(tmp_path / "file" / "cache"))
    with pytest.warns(RuntimeWarning) as record:
        d = load_fer2013(root, val_size=None)
    assert (d["X_train"] == 7).all() and d["y_train"].tolist() == [3]
    assert len(record) == 1 and re.fullmatch(
        rf"cannot write the cache file {re.escape(str(tmp_path / 'file' / 'cache'))}/"
        r"fer2013-[0-9a-f]{16}\.npz \(.*Not a directory.*\); the data were loaded without "
        "it: remove what is in the way or set NNLIB_CACHE to a folder you can write",
        str(record[0].message))
    monkeypatch.setenv("NNLIB_CACHE", str(tmp_path / "cache"))
    load_fer2013(root, val_size=None)
    (cache_file,) = (tmp_path / "cache").iterdir()
    assert re.fullmatch(r"fer2013-[0-9a-f]{16}\.npz", cache_file.name)
    cache_file.unlink()
    cache_file.mkdir()
    with pytest.warns(RuntimeWarning) as record:
        d = load_fer2013(root, val_size=None)
    assert (d["X_train"] == 7).all()
    assert [str(w.message)[:len(f"cannot write the cache file {cache_file} (")]
            for w in record] == [f"cannot write the cache file {cache_file} ("]


def test_a_cached_load_decodes_nothing(tmp_path, monkeypatch):
    root = tmp_path / "fer2013"
    gray(root / "train" / "happy" / "a.png", 7)
    first = load_fer2013(root, val_size=None)
    monkeypatch.setattr(nnlib.data, "read_images", lambda *a, **k: pytest.fail("decoded"))
    again = load_fer2013(root, val_size=None)
    np.testing.assert_array_equal(again["X_train"], first["X_train"])
    assert again["classes"] == FER2013_CLASSES
    with pytest.raises(pytest.fail.Exception):
        load_fer2013(root, val_size=None, cache=False)


def test_cache_key_covers_file_names_and_class_folders(tmp_path):
    root = tmp_path / "fer2013"
    gray(root / "train" / "angry" / "Training_0.png", 5)
    gray(root / "train" / "happy" / "Training_1.png", 6)
    gray(root / "test" / "angry" / "PublicTest_0.png", 8)
    first = load_fer2013(root, val_size=None)
    assert first["y_train"].tolist() == [0, 3] and "X_private" not in first
    # the same bytes in another class folder: other labels, another cache file
    (root / "train" / "angry" / "Training_0.png").rename(
        root / "train" / "happy" / "Training_0.png")
    moved = load_fer2013(root, val_size=None)
    assert moved["y_train"].tolist() == [3, 3]
    assert sorted(moved["X_train"][:, 0, 0].tolist()) == [5, 6]
    # the same bytes under another name: another split
    (root / "test" / "angry" / "PublicTest_0.png").rename(
        root / "test" / "angry" / "PrivateTest_0.png")
    renamed = load_fer2013(root, val_size=None)
    assert renamed["X_test"].shape == (0, 48, 48) and renamed["X_private"][0, 0, 0] == 8
    assert len(list((tmp_path / "cache").glob("fer2013-*.npz"))) == 3


def test_the_fingerprint_reads_only_the_files_loaded(tmp_path, monkeypatch):
    root = tmp_path / "fer2013"
    images = [gray(root / "train" / "sad" / f"{i}.png", i) for i in range(3)]
    (root / "stray.zip").write_bytes(b"PK" * 1000)
    (root / "train" / "notes.txt").write_text("x")
    opened = []
    real_open = open

    def spy(path, *args, **kwargs):
        opened.append(path)
        return real_open(path, *args, **kwargs)
    monkeypatch.setattr(nnlib.data, "open", spy, raising=False)
    with pytest.warns(UserWarning, match="notes.txt"):
        load_fer2013(root, val_size=None)
    assert opened == images
    (root / "stray.zip").write_bytes(b"other")  # no file loaded changed: the same cache
    with pytest.warns(UserWarning):
        load_fer2013(root, val_size=None)
    assert len(list((tmp_path / "cache").iterdir())) == 1
    with pytest.raises(DataError, match=re.escape(
            f"cannot read {root / 'gone.png'} (No such file or directory); make it readable "
            "or remove it")):
        nnlib.data._fingerprint(root, [root / "gone.png"])


# ------------------------------------------------------------------------ FER splits
def fer_layout(root, layout):
    """Two Training, two PublicTest and one PrivateTest image (level = 10 * index) in
    ``layout``; returns the expected {split: (levels, labels)}."""
    items = [("Training", 0, "angry"), ("Training", 1, "happy"), ("PublicTest", 2, "sad"),
             ("PublicTest", 3, "fear"), ("PrivateTest", 4, "neutral")]
    if layout == "csv":
        root.mkdir()
        write_csv(root / "fer2013.csv", [
            [FER2013_CLASSES.index(c), " ".join([str(10 * i)] * 2304), u] for u, i, c in items])
    elif layout == "folders":
        for u, i, c in items:
            gray(root / ("train" if u == "Training" else "test") / c / f"{u}_{i}.png", 10 * i,
                 mode="RGB")  # a colour file: read as grey
    else:
        rows = []
        for u, i, c in items:
            name = f"{'Train' if u == 'Training' else 'Test'}/{u}_{i}.png"
            gray(root / name, 10 * i, mode="RGB")
            rows.append(f"{name},{FER2013_CLASSES.index(c)}\n")
        (root / "labels_public.txt").write_text("img,emotion\n" + "".join(rows))
    return {"train": ([0, 10], [0, 3]), "test": ([20, 30], [4, 2]), "private": ([40], [6])}


@pytest.mark.parametrize("layout", ["csv", "folders", "labels"])
def test_fer_splits_in_every_layout(tmp_path, layout):
    expected = fer_layout(tmp_path / "fer2013", layout)
    d = load_fer2013(tmp_path / "fer2013", val_size=None)
    assert sorted(k for k in d if k.startswith("X_")) == ["X_private", "X_test", "X_train"]
    for split, (levels, labels) in expected.items():
        got = sorted(zip(d[f"X_{split}"][:, 0, 0].tolist(), d[f"y_{split}"].tolist()))
        assert got == sorted(zip(levels, labels)), split
        assert d[f"X_{split}"].shape[1:] == (48, 48)


# ----------------------------------------------------------------- labels_public.txt
@pytest.mark.parametrize("img", ["../outside.png", "Train/../../outside.png", "ABS"])
def test_labels_paths_may_not_leave_the_folder(tmp_path, img):
    root = tmp_path / "fer2013"
    gray(root / "Train" / "a.png", 0)
    gray(tmp_path / "outside.png", 0)  # exists: it would be read
    img = str(tmp_path / "outside.png") if img == "ABS" else img
    (root / "labels_public.txt").write_text(f"img,emotion\nTrain/a.png,0\n{img},1\n")
    with pytest.raises(DataError, match=re.escape(
            f"{root / 'labels_public.txt'}, line 3: the image path {img!r} leads out of "
            f"{root}; give paths inside it, such as Train/0.png")):
        load_fer2013(root)


def test_labels_rows_that_are_no_regular_files(tmp_path, deadline):
    gray(tmp_path / "Train" / "a.png", 0)
    os.mkfifo(tmp_path / "Train" / "p.png")
    (tmp_path / "Train" / "l.png").symlink_to(tmp_path / "none.png")
    p = tmp_path / "labels_public.txt"
    for name, why in (("p.png", "not a regular file (a FIFO, socket or device)"),
                      ("l.png", "a broken symbolic link"), ("z.png", "no such file")):
        p.write_text(f"img,emotion\nTrain/a.png,0\nTrain/{name},1\n")
        with pytest.raises(DataError, match=re.escape(
                f"{p} lists 1 missing images, e.g. {tmp_path / 'Train' / name} ({why})")):
            read_fer_labels_rows(p)


# ------------------------------------------------------------------- decoding details
def test_read_images_shows_progress_only_when_asked(tmp_path, monkeypatch):
    import tqdm
    calls = []

    def spy(items, **kwargs):
        calls.append(kwargs)
        return items
    monkeypatch.setattr(tqdm, "tqdm", spy)
    files = [gray(tmp_path / f"{i}.png", i) for i in range(2)]
    assert read_images(files, "L")[:, 0, 0].tolist() == [0, 1]
    read_images(files, "L", progress=True)
    bar = {"desc": "reading images", "unit": "img", "leave": False}
    assert calls == [{**bar, "disable": True}, {**bar, "disable": None}]  # None: a terminal


def test_read_images_of_other_shapes_or_none(tmp_path):
    a = gray(tmp_path / "a.png", 1)
    b = gray(tmp_path / "b.png", 2, shape=(32, 32))
    with pytest.raises(DataError, match=re.escape(
            f"image {b} has shape (32, 32), expected (48, 48) like the others; resize it or "
            "remove it")):
        read_images([a, b], "L")
    with pytest.raises(DataError, match=r"a\.png has shape \(48, 48\), expected \(32, 32\)"):
        read_images([a], "L", shape=(32, 32))
    empty = read_images([], "L")
    assert empty.shape == (0,) and empty.dtype == np.uint8
    assert read_images([], "L", shape=(48, 48)).shape == (0, 48, 48)


def test_palette_image_with_transparency(tmp_path):
    p = tmp_path / "p.png"
    Image.fromarray(np.arange(4, dtype=np.uint8).reshape(2, 2)).convert("P").save(
        p, transparency=bytes(4))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow's advice to convert such files to RGBA
        assert read_image(p, "L").tolist() == [[0, 1], [2, 3]]


def test_colour_and_grey_files_get_the_loader_mode(tmp_path):
    root = tmp_path / "cifar10"
    gray(root / "train" / "ship" / "a.png", 77)  # grey files: three equal channels
    gray(root / "train" / "ship" / "b.png", 78)
    gray(root / "test" / "frog" / "c.png", 79)
    d = load_cifar10(root, val_size=None)
    assert d["X_train"].shape == (2, 48, 48, 3) and d["X_test"].shape == (1, 48, 48, 3)
    assert d["X_train"][:, 5, 5].tolist() == [[77] * 3, [78] * 3]
    assert d["y_train"].tolist() == [8, 8] and d["y_test"].tolist() == [6]
    rgb = tmp_path / "rgb.png"
    Image.fromarray(np.array([[[200, 100, 50]]], np.uint8)).save(rgb)
    assert read_image(rgb, "L").tolist() == [[124]]  # 0.299 * 200 + 0.587 * 100 + 0.114 * 50


def test_a_link_to_a_fifo_is_no_broken_link(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "link.png").symlink_to(tmp_path / "fifo")
    assert file_problem(tmp_path / "link.png") == "not a regular file (a FIFO, socket or device)"


def test_class_folder_files_of_a_missing_or_empty_folder(tmp_path):
    with pytest.raises(DataError, match=re.escape(f"missing folder {tmp_path / 'none'}")):
        class_folder_files(tmp_path / "none", FER2013_CLASSES)
    (tmp_path / "sad").mkdir()
    paths, labels = class_folder_files(tmp_path, FER2013_CLASSES)
    assert paths == [] and labels.shape == (0,) and labels.dtype == np.int64
    (tmp_path / "fer" / "train" / "sad").mkdir(parents=True)
    with pytest.raises(DataError, match=re.escape(
            f"{tmp_path / 'fer' / 'train'} holds no images in class folders ['angry', "
            "'disgust', 'fear', 'happy', 'sad', 'surprise', 'neutral']")):
        load_fer2013(tmp_path / "fer")


def py2_batch(rows, labels):
    """A CIFAR-10 batch pickled the way the official files are (Python 2 str keys)."""
    def ints(values):
        return b"](" + b"".join(b"K" + bytes([v]) for v in values) + b"e"
    return (b"\x80\x02}(U\x04data](" + b"".join(ints(r) for r in rows) + b"e"
            + b"U\x06labels" + ints(labels) + b"u.")


def test_official_python2_batches(tmp_path):
    rows = np.random.default_rng(0).integers(0, 256, (2, 3072)).tolist()
    (tmp_path / "test_batch").write_bytes(py2_batch(rows, [4, 2]))
    X, y = read_cifar_batch(tmp_path / "test_batch")
    assert y.tolist() == [4, 2] and y.dtype == np.int64
    # pixel (row 0, column 1) of image 1: channel planes of 1024 values each
    assert X[1, 0, 1].tolist() == [rows[1][1], rows[1][1025], rows[1][2049]]


# ---------------------------------------------------------------- cache and defaults
def test_default_folders_seeds_and_sizes(tmp_path, monkeypatch):
    monkeypatch.delenv("NNLIB_CACHE")
    assert cache_dir() == PROJ_ROOT / ".cache"
    monkeypatch.setenv("NNLIB_CACHE", str(tmp_path / "cache"))
    X, y = np.arange(40), np.repeat([0, 1], 20)
    for a, b in zip(stratified_split(X, y, 0.25), stratified_split(X, y, 0.25, seed=0)):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(subsample(X, y, 10), stratified_split(X, y, 10, seed=0)[2:]):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(subsample(X, y, 10, seed=4), stratified_split(X, y, 10, seed=4)[2:]):
        np.testing.assert_array_equal(a, b)
    calls = []
    monkeypatch.setattr(nnlib.data, "stratified_split",
                        lambda X, y, size, seed: calls.append((size, seed)) or (X, y, X, y))
    monkeypatch.setenv("NNLIB_DATA", str(tmp_path))
    gray(tmp_path / "cifar10" / "train" / "cat" / "a.png", 0, mode="RGB")
    gray(tmp_path / "cifar10" / "test" / "cat" / "a.png", 0, mode="RGB")
    assert load_cifar10()["y_train"].tolist() == [3]
    gray(tmp_path / "fer2013" / "train" / "sad" / "a.png", 0)
    assert load_fer2013()["y_train"].tolist() == [4]
    assert calls == [(5000, 0), (0.1, 0)]


def test_cifar_root_needs_both_image_folders(tmp_path):
    root = tmp_path / "c"
    gray(root / "train" / "cat" / "a.png", 0)
    with pytest.raises(DataError, match=re.escape(
            f"no CIFAR-10 data at {root}: expected {root}/cifar-10-batches-py/ (data_batch_1..5, "
            f"test_batch) or {root}/train/<class>/ and {root}/test/<class>/ image folders. Get "
            "it from https://www.cs.toronto.edu/~kriz/cifar.html (CIFAR-10 python version) and "
            "set NNLIB_DATA to the folder that holds cifar10/")):
        load_cifar10(root)
    assert CIFAR10_CLASSES[3] == "cat"


def test_a_moved_data_folder_keeps_its_cache(tmp_path, monkeypatch):
    sets = (("fer2013", load_fer2013, "fear", 2), ("cifar10", load_cifar10, "cat", 3))
    for name, load, cls, _ in sets:
        gray(tmp_path / "a" / name / "train" / cls / "Training_0.png", 3, mode="RGB")
        gray(tmp_path / "a" / name / "test" / cls / "PublicTest_0.png", 4, mode="RGB")
        load(tmp_path / "a" / name, val_size=None)
    (tmp_path / "a").rename(tmp_path / "b")
    monkeypatch.setattr(nnlib.data, "read_images", lambda *a, **k: pytest.fail("decoded"))
    for name, load, _, label in sets:
        again = load(tmp_path / "b" / name, val_size=None)
        assert (again["X_test"] == 4).all() and again["y_train"].tolist() == [label]
    assert len(list((tmp_path / "cache").iterdir())) == 2


def test_a_new_cache_version_makes_a_new_cache_file(tmp_path, monkeypatch):
    gray(tmp_path / "train" / "sad" / "a.png", 0)
    load_fer2013(tmp_path, val_size=None)
    monkeypatch.setattr(nnlib.data, "CACHE_VERSION", nnlib.data.CACHE_VERSION + 1)
    load_fer2013(tmp_path, val_size=None)
    assert len(list((tmp_path / "cache").iterdir())) == 2


class Marker:
    """Unpickling it creates the file ``path``."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def cache_with(tmp_path, **arrays):
    """Load a one-image FER2013 folder, then replace its cache file by ``arrays``."""
    gray(tmp_path / "fer2013" / "train" / "sad" / "a.png", 5)
    load_fer2013(tmp_path / "fer2013", val_size=None)
    (path,) = (tmp_path / "cache").iterdir()
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    return path


ONE = np.zeros((1, 48, 48), np.uint8)
CLASSES = np.array(FER2013_CLASSES)


@pytest.mark.parametrize("arrays, problem", [
    ({"X_train": ONE, "y_train": [0], "classes": np.array(["a", "b"])},
     "class names array(['a', 'b'], dtype='<U1') differ from ['angry', 'disgust', 'fear', "
     "'happy', 'sad', 'surprise', 'neutral']"),
    ({"X_test": ONE, "y_test": [0], "classes": CLASSES},
     "unexpected entries ['X_test', 'classes', 'y_test']"),
    ({"X_train": ONE, "y_train": [0], "X_val": ONE, "classes": CLASSES},
     "unexpected entries ['X_train', 'X_val', 'classes', 'y_train']"),
    ({"X_train": ONE.astype(float), "y_train": [0], "classes": CLASSES},
     "split train: (1, 48, 48) float64 images for (1,) labels"),
    ({"X_train": ONE[0], "y_train": [0], "classes": CLASSES},
     "split train: (48, 48) uint8 images for (1,) labels"),
    ({"X_train": ONE, "y_train": [0, 1], "classes": CLASSES},
     "split train: (1, 48, 48) uint8 images for (2,) labels"),
    ({"X_train": ONE, "y_train": [0.0], "classes": CLASSES}, "split train: labels outside 0..6"),
    ({"X_train": ONE, "y_train": [7], "classes": CLASSES}, "split train: labels outside 0..6"),
    ({"X_train": ONE, "y_train": [-1], "classes": CLASSES}, "split train: labels outside 0..6"),
])
def test_an_inconsistent_cache_is_rebuilt(tmp_path, arrays, problem):
    path = cache_with(tmp_path, **arrays)
    with pytest.warns(RuntimeWarning) as record:
        d = load_fer2013(tmp_path / "fer2013", val_size=None)
    assert [str(w.message) for w in record] == [
        f"cache file {path} is unreadable or inconsistent ({problem}); rebuilding it from "
        "the data"]
    assert (d["X_train"] == 5).all() and d["y_train"].tolist() == [4]


def test_a_pickle_in_a_cache_file_is_never_run(tmp_path):
    marker = tmp_path / "ran"
    cache_with(tmp_path, X_train=np.array([Marker(marker)], dtype=object), y_train=[0],
               classes=CLASSES)
    with pytest.warns(RuntimeWarning, match="Object arrays cannot be loaded"):
        assert (load_fer2013(tmp_path / "fer2013", val_size=None)["X_train"] == 5).all()
    assert not marker.exists()


def test_a_consistent_cache_is_served_as_it_is(tmp_path):
    cache_with(tmp_path, X_train=ONE + 9, y_train=[6], classes=CLASSES)
    d = load_fer2013(tmp_path / "fer2013", val_size=None)
    assert (d["X_train"] == 9).all() and d["y_train"].tolist() == [6]
    assert d["classes"] == FER2013_CLASSES and type(d["classes"]) is tuple


# ------------------------------------------------------------------- messages in full
def test_csv_header_messages(tmp_path):
    p = tmp_path / "f.csv"
    p.write_text("")
    with pytest.raises(DataError, match=re.escape(
            f"{p} is empty; expected a header emotion,pixels,Usage and one row per image")):
        read_fer_csv_rows(p)
    p.write_text("emotion,Usage\n")
    with pytest.raises(DataError, match=re.escape(
            f"{p}: header ['emotion', 'Usage'] lacks columns ['pixels']; expected "
            "emotion,pixels,Usage")):
        read_fer_csv_rows(p)
    p.write_text('"emotion,pixels,Usage\n0,1,Training\n')
    with pytest.raises(DataError, match=re.escape(f"{p}, line 1: malformed CSV")):
        read_fer_csv_rows(p)
    p.write_text(f'emotion,pixels,Usage\n0,"{PIX},Training\n0,{PIX},Training\n')
    with pytest.raises(DataError, match=re.escape(f"{p}, line 2: malformed CSV")):
        read_fer_csv_rows(p)


def test_labels_file_without_training_rows(tmp_path):
    root = tmp_path / "fer2013"
    gray(root / "Test" / "a.png", 0)
    (root / "labels_public.txt").write_text("img,emotion\nTest/a.png,0\n")
    message = re.escape(f"{root / 'labels_public.txt'} lists no Train/ images to train on; to "
                        "test a model on it, use python -m nnlib.evaluate")
    with pytest.raises(DataError, match=message):
        load_fer2013(root)
    with pytest.raises(DataError, match=message):
        read_fer_labels_file(root / "labels_public.txt")
