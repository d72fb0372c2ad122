"""Classify the facial expressions in one's own photos with a saved FER2013 model.

    python -m nnlib.predict --model models/fer2013_cnn_small.keras PHOTO|FOLDER ...
        [--no-detect] [--json OUT] [--csv OUT] [--annotate FOLDER]

Each face found (OpenCV's Haar cascade, ``nnlib.faces``) is cropped as FER2013 frames its
faces, made 48x48 grayscale and classified under the model's test-time views (those of
``nnlib.evaluate``: the mirror view where the model has one). ``--no-detect``: each image
is one face crop already (FER2013's own images), resized whole. A folder is searched for
images in it and in its subfolders; any file name is a photo (no FER2013 split is read
from it). The table goes to stdout; a file that cannot be read or shows no face gets one
line on stderr and the others go on. Exit status: 0 if any face was classified, else 2;
130 on Ctrl-C.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import os
import re
import sys
from pathlib import Path

import numpy as np

from nnlib.atomic import atomic_open, write_text
from nnlib.data import FER2013_CLASSES
from nnlib.faces import FACE_SIZE, PhotoError, face_crops, open_photo
from nnlib.loaded import LoadedModel
from nnlib.paths import MODELS_DIR

DEFAULT_MODEL = MODELS_DIR / "fer2013_cnn_small.keras"  # Q7's CNN student: accurate, fast
# what a folder is searched for; a file named on the command line is tried whatever its name
PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
# a box's colour on annotated photos, by class id (Okabe-Ito: distinct to colour-blind eyes)
COLOURS = ("#D55E00", "#009E73", "#CC79A7", "#F0E442", "#0072B2", "#E69F00", "#FFFFFF")
NO_FACE = "no face found (pass --no-detect if the image is a face crop)"


def probabilities(loaded, images):
    """Class probabilities (N, 7) of ``loaded`` (a ``LoadedModel``) for grayscale uint8
    ``images`` (N, H, W): ``LoadedModel.predict_proba``, whose argmax is its ``predict``."""
    return loaded.predict_proba(images)


def load(model):
    """A ``LoadedModel`` of ``model`` (a path or one already loaded)."""
    return model if isinstance(model, LoadedModel) else LoadedModel(model)


def face_record(index, box, probs):
    """One face: its index in the photo, box [x, y, w, h], emotion, class id, top
    probability and the probabilities by class name (FER2013's order)."""
    top = int(np.argmax(probs))
    return {"face": index, "box": [int(v) for v in box], "emotion": FER2013_CLASSES[top],
            "class_id": top, "probability": float(probs[top]),
            "probabilities": {c: float(p) for c, p in zip(FER2013_CLASSES, probs)}}


def predict_photos(photos, model, detect=True):
    """Records for ``photos``, (name, RGB PIL image or ``PhotoError``) pairs: for each,
    {"file": name, "size": [W, H], "faces": [face_record ...], "problem": why no face was
    classified, or None}. All faces go through the model in one batch."""
    loaded = load(model)
    size = loaded.input_shape[0] or FACE_SIZE
    records, boxes, crops = [], [], []
    for name, photo in photos:
        if isinstance(photo, PhotoError):
            records.append({"file": name, "size": None, "faces": [], "problem": str(photo)})
            boxes.append([])
            continue
        found, faces = face_crops(photo, detect, size)
        records.append({"file": name, "size": list(photo.size), "faces": [],
                        "problem": None if found else f"{name}: {NO_FACE}"})
        boxes.append(found)
        crops.append(faces)
    probs = probabilities(loaded, np.concatenate(crops) if crops else np.zeros((0, size, size)))
    k = 0
    for record, found in zip(records, boxes):
        record["faces"] = [face_record(i, b, probs[k + i]) for i, b in enumerate(found)]
        k += len(found)
    return records


def predict(paths, model=DEFAULT_MODEL, detect=True):
    """Records (``predict_photos``) for the image files ``paths`` (str or Path) and the
    images in the folders among them (``photo_files``), in that order; a path that does
    not exist gets a record with its problem."""
    return predict_photos(_photos(photo_files(paths)), model, detect)


def _photos(files):
    for path in files:  # one photo in memory at a time
        try:
            yield str(path), open_photo(path)
        except PhotoError as e:
            yield str(path), e


def photo_files(paths):
    """``paths`` with each folder among them replaced by the image files (by suffix,
    ``PHOTO_SUFFIXES``) in it and its subfolders, sorted, hidden ones left out. Files
    are kept whatever their names, and so are paths that do not exist (to be reported)."""
    files = []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.suffix.lower() in PHOTO_SUFFIXES
                            and f.is_file() and not any(
                                part.startswith(".") for part in f.relative_to(p).parts))
        else:
            files.append(p)
    return files


def predict_upload(value, model, detect=True):
    """[(record, annotated photo or None)] for the files of an ipywidgets ``FileUpload``'s
    ``value`` (version 8: a tuple of dicts with name and content; version 7: a dict of
    them by name), in memory: nothing is written."""
    items = value.values() if isinstance(value, dict) else value
    photos = []
    for item in items:
        name = item.get("name") or item.get("metadata", {}).get("name") or "upload"
        try:
            photos.append((name, open_photo(item["content"], name)))
        except PhotoError as e:
            photos.append((name, e))
    records = predict_photos(photos, model, detect)
    return [(r, None if isinstance(photo, PhotoError) else annotated(photo, r["faces"]))
            for r, (_, photo) in zip(records, photos)]


def upload_box(model, shown_size=640):
    """An ipywidgets box in which a person uploads photos and sees, for each, the table
    of its faces (or why there is none) and the photo annotated, at most ``shown_size``
    pixels wide: the notebook's front door to ``predict_upload``."""
    import ipywidgets as widgets  # the notebooks extra's, imported only here
    from IPython.display import display

    upload = widgets.FileUpload(accept="image/*", multiple=True, description="Photos")
    results = widgets.Output()

    def classify(change):
        with results:
            results.clear_output()
            for record, drawn in predict_upload(change["new"], model):
                print(format_table([record]) if record["faces"] else record["problem"])
                if drawn is not None:
                    drawn.thumbnail((shown_size, shown_size))  # a phone's photo, at screen size
                    display(drawn)

    upload.observe(classify, names="value")
    return widgets.VBox([upload, results])


def format_table(records):
    """The classified faces as a text table: file, face index, box, emotion, its
    probability."""
    rows = [(r["file"], str(f["face"]), ", ".join(map(str, f["box"])), f["emotion"],
             f"{f['probability']:.3f}") for r in records for f in r["faces"]]
    head = ("file", "face", "box (x, y, w, h)", "emotion", "p")
    widths = [max(len(x) for x in col) for col in zip(head, *rows)]
    right = (False, True, False, False, True)
    return "\n".join("  ".join(x.rjust(w) if r else x.ljust(w)
                               for x, w, r in zip(row, widths, right)).rstrip()
                     for row in (head, *rows))


def to_csv(records):
    """One row per face: file, face, x, y, w, h, emotion, probability and the seven
    class probabilities."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["file", "face", "x", "y", "w", "h", "emotion", "probability",
                     *FER2013_CLASSES])
    for r in records:
        for f in r["faces"]:
            writer.writerow([r["file"], f["face"], *f["box"], f["emotion"],
                             f"{f['probability']:.6f}",
                             *(f"{f['probabilities'][c]:.6f}" for c in FER2013_CLASSES)])
    return out.getvalue()


def annotated(photo, faces):
    """A copy of the RGB PIL ``photo`` with each face's box and "emotion p" drawn."""
    from PIL import ImageDraw, ImageFont
    image = photo.copy()
    draw = ImageDraw.Draw(image)
    for f in faces:
        x, y, w, h = f["box"]
        colour = COLOURS[f["class_id"]]
        line = max(2, round(max(image.size) / 300))
        draw.rectangle([x, y, x + w - 1, y + h - 1], outline=colour, width=line)
        font = ImageFont.load_default(size=max(10, round(w / 7)))
        text = f"{f['face']}: {f['emotion']} {f['probability']:.2f}"
        left, top, right, bottom = draw.textbbox((x, y), text, font=font)
        up = y - (bottom - top) - 2 * line >= 0  # the label above the box if it fits
        ty = y - (bottom - top) - 2 * line if up else y + h
        draw.rectangle([x, ty, x + right - left + 2 * line, ty + bottom - top + 2 * line],
                       fill="black")
        draw.text((x + line - (left - x), ty + line - (top - y)), text, fill=colour, font=font)
    return image


def annotation_paths(files, folder):
    """Where ``--annotate folder`` puts each of ``files``: {str(file): folder /
    "<stem>.annotated.png"}, numbered when two files share a stem."""
    out, used = {}, set()
    for file in map(str, files):
        stem, n = Path(file).stem, 1
        name = f"{stem}.annotated.png"
        while name in used:
            n += 1
            name = f"{stem}-{n}.annotated.png"
        used.add(name)
        out[file] = Path(folder) / name
    return out


def write_annotated(records, folder):
    """Write each photo of ``records`` that has faces, annotated (``annotated``), to its
    ``annotation_paths``, atomically."""
    paths = annotation_paths([r["file"] for r in records], folder)
    for r in records:
        if r["faces"]:
            with atomic_open(paths[r["file"]]) as f:
                annotated(open_photo(r["file"]), r["faces"]).save(f, format="PNG")


def _check_outputs(args, files):
    """Refuse, before any work, an output that is an input (a photo, the model) or a
    folder where a file goes; raises ValueError."""
    inputs = [*files, Path(args.model)]

    def clash(out):
        return next((p for p in inputs if _same(out, p)), None)

    for option in ("json", "csv"):
        out = getattr(args, option)
        if out is None:
            continue
        if Path(out).is_dir():
            raise ValueError(f"--{option} {out} is a folder; give a file name")
        if clash(out):
            raise ValueError(f"--{option} {out} is the input {clash(out)}; write to another "
                             "file")
    if args.annotate is not None:
        if Path(args.annotate).exists() and not Path(args.annotate).is_dir():
            raise ValueError(f"--annotate {args.annotate} is a file; give a folder")
        for target in annotation_paths(files, args.annotate).values():
            if clash(target):
                raise ValueError(f"--annotate {args.annotate} would overwrite the input "
                                 f"{clash(target)}; choose another folder")


def _same(a, b):
    a, b = Path(a), Path(b)
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist
        return a.resolve() == b.resolve()


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m nnlib.predict",
        description="Find the faces in photos and classify their expressions with a saved "
                    "FER2013 model (nnlib .npz or Keras .keras).")
    parser.add_argument("paths", nargs="+", metavar="IMAGE|FOLDER",
                        help="photos, or folders searched for photos (subfolders too)")
    parser.add_argument("--model", default=str(DEFAULT_MODEL),
                        help="model file (.npz or .keras); default: Q7's CNN student")
    parser.add_argument("--no-detect", dest="detect", action="store_false",
                        help="each image is one face crop already (like FER2013's): "
                             "classify it whole")
    parser.add_argument("--json", help="also write the records to this JSON file")
    parser.add_argument("--csv", help="also write one row per face to this CSV file")
    parser.add_argument("--annotate", metavar="FOLDER",
                        help="write each photo with faces, boxes and labels drawn, here "
                             "(<name>.annotated.png)")
    parser.error = lambda message: _fail(2, f"error: {message} (see --help)")
    args = parser.parse_args(argv)
    try:
        files = photo_files(args.paths)
        if not files:
            raise ValueError(f"no image files ({', '.join(sorted(PHOTO_SUFFIXES))}) in "
                             f"{', '.join(args.paths)}")
        _check_outputs(args, files)
        records = predict_photos(_photos(files), args.model, args.detect)
        for r in records:
            if r["problem"]:
                print(r["problem"], file=sys.stderr)
        if any(r["faces"] for r in records):
            print(format_table(records))
        if args.json:  # atomic: an interrupted write leaves no partial file
            write_text(Path(args.json), json.dumps(records, indent=2) + "\n")
        if args.csv:
            write_text(Path(args.csv), to_csv(records))
        if args.annotate:
            write_annotated(records, args.annotate)
    except (FileNotFoundError, ValueError, OSError, RuntimeError) as e:  # ModelError too
        _fail(2, f"error: {_one_line(e)}")
    except KeyboardInterrupt:  # Ctrl-C: no traceback, the shell's status for SIGINT
        _fail(130, "\ninterrupted")
    if not any(r["faces"] for r in records):
        _fail(2, f"error: no face classified in the {len(records)} file(s) given")


def _fail(status, message):
    print(message, file=sys.stderr)
    sys.exit(status)


def _one_line(e):
    """An exception's message on one line, without terminal colour codes."""
    return " ".join(re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", str(e)).split())


if __name__ == "__main__":
    main()
