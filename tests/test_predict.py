"""nnlib.faces and nnlib.predict: photos read in every colour mode and rotation, faces
found where they are and framed as FER2013's, predictions equal to evaluate's, and the
command line's outputs, messages and exit statuses."""
import csv
import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from nnlib.data import FER2013_CLASSES, data_root, read_images
from nnlib.faces import (
    FRAME_PER_BOX,
    crop_face,
    detect_faces,
    face_frame,
    frame_per_box,
    grayscale,
    open_photo,
)
from nnlib.loaded import LoadedModel
from nnlib.paths import MODELS_DIR
from nnlib.predict import main, photo_files, predict, predict_upload, probabilities

skimage_data = pytest.importorskip("skimage.data")
MLP = MODELS_DIR / "fer2013_fcnet.npz"
MLP_STUDENT = MODELS_DIR / "fer2013_fcnet_distilled.npz"
CNN_STUDENT = MODELS_DIR / "fer2013_cnn_small.keras"
FER_TEST = data_root() / "fer2013" / "test"
# the astronaut's face, checked by eye once on the drawn box: brow to chin, ear to ear
ASTRONAUT_FACE = (177, 67, 93, 93)
needs_fer = pytest.mark.skipif(not FER_TEST.is_dir(), reason="FER2013 is not under $NNLIB_DATA")
needs_keras = pytest.mark.skipif(importlib.util.find_spec("keras") is None,
                                 reason="Keras is not installed")


def near(box, want, tol=8):
    return all(abs(a - b) <= tol for a, b in zip(box, want))


@pytest.fixture(scope="module")
def astronaut():
    return skimage_data.astronaut()  # (512, 512, 3) uint8, a portrait


@pytest.fixture
def photos(tmp_path, astronaut):
    """A folder with the astronaut, a grey picture without a face, a broken JPEG, a text
    file named like an image, and a text file that is not searched."""
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(astronaut).save(folder / "astronaut.jpg", quality=95)
    Image.new("RGB", (300, 200), (120, 130, 140)).save(folder / "wall.png")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a JPEG")
    (folder / "letter.png").write_text("a text file with an image's name")
    (folder / "notes.txt").write_text("not an image: not searched")
    return folder


@pytest.fixture(scope="module")
def mlp():
    return LoadedModel(MLP)


@pytest.fixture(scope="module")
def cnn():
    if importlib.util.find_spec("keras") is None:
        pytest.skip("Keras is not installed")
    return LoadedModel(CNN_STUDENT)


@pytest.fixture(scope="module")
def fer_files():
    """200 PublicTest crops, every emotion, the same each run."""
    if not FER_TEST.is_dir():
        pytest.skip("FER2013 is not under $NNLIB_DATA")
    files = sorted(FER_TEST.glob("*/PublicTest_*"))
    return files[::len(files) // 200][:200]


# ---------------------------------------------------------------------------- faces
def test_the_astronauts_face_is_found_where_it_is(astronaut):
    boxes = detect_faces(grayscale(Image.fromarray(astronaut)))
    assert len(boxes) == 1 and near(boxes[0], ASTRONAUT_FACE)


def test_a_large_photo_is_searched_smaller_and_boxed_in_its_own_pixels(astronaut):
    big = Image.fromarray(astronaut).resize((2048, 2048))  # 4x: searched at 800 px
    boxes = detect_faces(grayscale(big))
    assert len(boxes) == 1 and near(boxes[0], [4 * v for v in ASTRONAUT_FACE], tol=32)


@needs_fer
def test_fer2013_frames_are_about_frame_per_box_detected_boxes(fer_files):
    crops = read_images(fer_files[:60], "L")
    ratios, centres = frame_per_box(crops)
    assert len(ratios) >= 30  # the cascade finds most faces once they have a border
    assert abs(np.median(ratios) - FRAME_PER_BOX) < 0.1
    assert np.allclose(np.median(centres, axis=0), 0.5, atol=0.03)


def test_face_frame_and_crop(rng):
    gray = rng.integers(1, 256, (300, 400), dtype=np.uint8)
    assert face_frame((100, 50, 80, 80), margin=1.25) == (90, 40, 190, 140)
    want = np.asarray(Image.fromarray(gray[40:140, 90:190]).resize((48, 48)))
    assert np.array_equal(crop_face(gray, (100, 50, 80, 80), margin=1.25), want)
    # at the corner the frame passes the edge: edge pixels are repeated, never black
    corner = crop_face(gray, (0, 0, 60, 60), margin=1.5)
    assert corner.shape == (48, 48) and corner.min() > 0


def test_photos_of_every_mode_and_rotation(tmp_path, astronaut):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0], rgba[:2, :, 3], rgba[2:, :, 3] = 200, 255, 0  # bottom half transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    got = np.asarray(open_photo(tmp_path / "a.png"))
    assert (got[:2] == [200, 0, 0]).all() and (got[2:] == 255).all()  # on white
    wide = np.array([[0, 32768], [65535, 257]], dtype=np.uint16)
    Image.fromarray(wide).save(tmp_path / "w.png")  # 16-bit grey: scaled, not clipped
    assert grayscale(open_photo(tmp_path / "w.png")).tolist() == [[0, 128], [255, 1]]
    Image.fromarray(astronaut).convert("P").save(tmp_path / "p.png")
    assert open_photo(tmp_path / "p.png").mode == "RGB"
    # stored lying on its side (400 x 512 stored, 512 x 400 seen) with EXIF orientation 6:
    # shown upright after turning 90 degrees clockwise
    upright = Image.fromarray(astronaut[:400])
    exif = Image.Exif()
    exif[0x0112] = 6
    upright.transpose(Image.Transpose.ROTATE_90).save(tmp_path / "r.jpg", exif=exif,
                                                        quality=95)
    photo = open_photo(tmp_path / "r.jpg")
    assert photo.size == (512, 400)
    boxes = detect_faces(grayscale(photo))
    assert len(boxes) == 1 and near(boxes[0], ASTRONAUT_FACE)


# ------------------------------------------------------------------------ predictions
def test_record_of_the_astronaut(tmp_path, astronaut, mlp):
    Image.fromarray(astronaut).save(tmp_path / "me.png")
    (record,) = predict([tmp_path / "me.png"], model=mlp)
    assert record["file"] == str(tmp_path / "me.png") and record["problem"] is None
    assert record["size"] == [512, 512]
    (face,) = record["faces"]
    assert face["face"] == 0 and near(face["box"], ASTRONAUT_FACE)
    probs = face["probabilities"]
    assert list(probs) == list(FER2013_CLASSES)
    assert abs(sum(probs.values()) - 1) < 1e-9 and min(probs.values()) >= 0
    top = max(probs, key=probs.get)
    assert face["emotion"] == top and face["class_id"] == FER2013_CLASSES.index(top)
    assert face["probability"] == probs[top]
    # the same face cropped here by hand, classified by LoadedModel, softmax done here
    gray = np.asarray(Image.fromarray(astronaut).convert("L"))
    x, y, w, _ = face["box"]  # a square of FRAME_PER_BOX sides on the box's centre
    side = FRAME_PER_BOX * w
    left, top_y = round(x + w / 2 - side / 2), round(y + w / 2 - side / 2)
    crop = np.asarray(Image.fromarray(gray[top_y:top_y + round(side), left:left + round(side)])
                      .resize((48, 48)))[None]
    assert mlp.predict(crop)[0] == face["class_id"]
    pre, net = mlp.preprocessor, mlp.model
    s = (net.scores(pre.transform(crop)) + net.scores(pre.transform(crop[:, :, ::-1]))) / 2
    e = np.exp(s[0] - s[0].max())
    assert np.allclose(list(probs.values()), e / e.sum(), atol=1e-6)


@needs_fer
@pytest.mark.parametrize("path", [MLP, MLP_STUDENT], ids=["mlp", "mlp_student"])
def test_no_detect_predicts_as_evaluate_does(path, fer_files):
    loaded = LoadedModel(path)
    records = predict(fer_files, model=loaded, detect=False)
    want = loaded.predict(read_images(fer_files, "L"))  # evaluate's reading and model
    got = [r["faces"][0]["class_id"] for r in records]
    assert got == want.tolist() and all(r["faces"][0]["box"] == [0, 0, 48, 48]
                                        for r in records)


@needs_fer
@needs_keras
def test_cnn_student_predicts_as_evaluate_does(fer_files, cnn):
    X = read_images(fer_files, "L")
    probs = probabilities(cnn, X)
    assert probs.shape == (200, 7) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)
    assert np.array_equal(probs.argmax(axis=1), cnn.predict(X))
    records = predict(fer_files[:20], model=cnn, detect=False)
    assert [r["faces"][0]["class_id"] for r in records] == cnn.predict(X[:20]).tolist()


@needs_keras
def test_cnn_student_on_the_astronaut(tmp_path, astronaut, cnn):
    Image.fromarray(astronaut).save(tmp_path / "me.png")
    (face,) = predict([tmp_path / "me.png"], model=cnn)[0]["faces"]
    assert near(face["box"], ASTRONAUT_FACE)
    assert abs(sum(face["probabilities"].values()) - 1) < 1e-5


def test_probabilities_sum_to_one_and_refuse_other_sizes(mlp, rng):
    X = rng.integers(0, 256, (5, 48, 48), dtype=np.uint8)
    p = probabilities(mlp, X)
    assert p.shape == (5, 7) and np.allclose(p.sum(axis=1), 1)
    assert np.array_equal(p.argmax(axis=1), mlp.predict(X))
    assert probabilities(mlp, X[:0]).shape == (0, 7)
    with pytest.raises(ValueError, match="48"):
        probabilities(mlp, X[:, :40])


@needs_fer
def test_a_users_file_named_like_a_split_is_a_photo(tmp_path, fer_files, mlp):
    (tmp_path / "Training_me.jpg").write_bytes(fer_files[0].read_bytes())
    (record,) = predict([tmp_path], model=mlp, detect=False)
    assert record["file"].endswith("Training_me.jpg") and len(record["faces"]) == 1


def test_a_folder_mixing_faces_no_faces_and_broken_files(photos, mlp):
    assert [p.name for p in photo_files([photos])] == ["astronaut.jpg", "broken.jpg",
                                                        "letter.png", "wall.png"]
    records = {r["file"]: r for r in predict([photos, photos / "missing.png"], model=mlp)}
    assert len(records[str(photos / "astronaut.jpg")]["faces"]) == 1
    for name, why in (("wall.png", "no face found"), ("broken.jpg", "cannot decode"),
                      ("letter.png", "not an image"), ("missing.png", "no such file")):
        r = records[str(photos / name)]
        assert r["faces"] == [] and r["problem"].startswith(str(photos / name))
        assert why in r["problem"] and "\n" not in r["problem"]


# ---------------------------------------------------------------------- command line
def run_main(capsys, *argv):
    with pytest.raises(SystemExit) as stop:
        main([*map(str, argv)])
        raise SystemExit(0)
    out, err = capsys.readouterr()
    return stop.value.code, out, err


def test_cli_table_messages_and_status(photos, capsys):
    code, out, err = run_main(capsys, "--model", MLP, photos)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["file", "face", "box", "(x,", "y,", "w,", "h)", "emotion", "p"]
    assert len(lines) == 2 and lines[1].startswith(str(photos / "astronaut.jpg"))
    problems = err.splitlines()
    assert len(problems) == 3
    assert problems[0].startswith(f"{photos / 'broken.jpg'}: cannot decode")
    assert problems[1].startswith(f"{photos / 'letter.png'}: not an image")
    assert problems[2].startswith(f"{photos / 'wall.png'}: no face found")
    code, out, err = run_main(capsys, "--model", MLP, photos / "wall.png")
    assert code == 2 and out == "" and len(err.splitlines()) == 2
    assert err.splitlines()[-1].startswith("error: no face")


def test_cli_refuses_bad_models_and_outputs_in_one_line(photos, tmp_path, capsys):
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"no zip archive")
    for model in (tmp_path / "nothing.npz", garbage, tmp_path / "model.txt", tmp_path):
        code, out, err = run_main(capsys, "--model", model, photos / "astronaut.jpg")
        assert code == 2 and out == "" and len(err.splitlines()) == 1, err
        assert err.startswith("error: ") and "Traceback" not in err
    image = photos / "astronaut.jpg"
    before = image.read_bytes()
    for option in ("--json", "--csv"):
        code, _, err = run_main(capsys, "--model", MLP, option, image, image)
        assert code == 2 and "is the input" in err and len(err.splitlines()) == 1
    assert image.read_bytes() == before
    code, _, err = run_main(capsys, "--model", MLP, tmp_path / "empty-folder-none")
    assert code == 2 and "no such file" in err


def test_cli_ctrl_c(photos, capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr("nnlib.predict.predict_photos", interrupted)
    code, out, err = run_main(capsys, "--model", MLP, photos)
    assert code == 130 and err.strip() == "interrupted" and out == ""


def test_cli_json_csv_and_annotations(photos, tmp_path, capsys, mlp):
    out_json, out_csv, drawn = tmp_path / "r.json", tmp_path / "r.csv", tmp_path / "drawn"
    code, _, _ = run_main(capsys, "--model", MLP, "--json", out_json, "--csv", out_csv,
                          "--annotate", drawn, photos)
    assert code == 0
    records = json.loads(out_json.read_text())
    assert records == predict([photos], model=mlp)
    (face,) = records[0]["faces"]
    rows = list(csv.DictReader(out_csv.open()))
    assert len(rows) == 1 and rows[0]["file"] == str(photos / "astronaut.jpg")
    assert [int(rows[0][k]) for k in "xywh"] == face["box"]
    assert rows[0]["emotion"] == face["emotion"]
    assert np.allclose([float(rows[0][c]) for c in FER2013_CLASSES],
                       list(face["probabilities"].values()), atol=1e-6)
    assert sorted(p.name for p in drawn.iterdir()) == ["astronaut.annotated.png"]
    with Image.open(drawn / "astronaut.annotated.png") as im:
        im.verify()
    with Image.open(drawn / "astronaut.annotated.png") as im:
        got = np.asarray(im.convert("RGB")).astype(int)
    source = np.asarray(open_photo(photos / "astronaut.jpg")).astype(int)
    assert got.shape == source.shape  # the photo's size
    x, y, w, h = face["box"]
    assert np.abs(got[y + h // 2, x] - source[y + h // 2, x]).sum() > 60  # the box's edge
    assert np.array_equal(got[-50:, :100], source[-50:, :100])  # far from it: untouched
    # into the photos' own folder: nothing of theirs is replaced
    before = {p.name: p.read_bytes() for p in photos.iterdir()}
    assert run_main(capsys, "--model", MLP, "--annotate", photos, photos)[0] == 0
    assert {p.name: p.read_bytes() for p in photos.iterdir() if p.name in before} == before


def test_cli_runs_as_a_module(photos):
    r = subprocess.run([sys.executable, "-m", "nnlib.predict", "--model", str(MLP),
                        str(photos / "astronaut.jpg")], capture_output=True, text=True)
    assert r.returncode == 0 and "astronaut.jpg" in r.stdout and r.stderr == ""


def test_uploads_of_either_ipywidgets_version(tmp_path, astronaut, mlp):
    Image.fromarray(astronaut).save(tmp_path / "me.png")
    content = memoryview((tmp_path / "me.png").read_bytes())
    v8 = ({"name": "me.png", "content": content}, {"name": "junk.png", "content": b"junk"})
    (record, drawn), (bad, nothing) = predict_upload(v8, mlp)
    assert record["file"] == "me.png" and near(record["faces"][0]["box"], ASTRONAUT_FACE)
    assert drawn.size == (512, 512) and nothing is None
    assert bad["faces"] == [] and bad["problem"].startswith("junk.png: not an image")
    v7 = {"me.png": {"metadata": {"name": "me.png"}, "content": bytes(content)}}
    assert predict_upload(v7, mlp)[0][0] == record
