"""Faces in ordinary photos: reading a photo (any size, colour mode and EXIF rotation),
finding its faces with OpenCV's Haar frontal-face cascade (shipped inside
``opencv-python-headless``, so nothing is downloaded), and cropping each face the way
FER2013's faces are framed, as 48x48 grayscale.

Boxes are ``(x, y, w, h)`` in pixels of the photo as it is meant to be seen (after its
EXIF rotation): left, top, width, height.
"""
from __future__ import annotations

import functools
import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

CASCADE = "haarcascade_frontalface_default.xml"
# FER2013's crop around the cascade's box: a square of FRAME_PER_BOX times the box's side,
# on the box's centre. Measured (``frame_per_box``): on 400 PublicTest faces, upscaled 4x
# and given a mirrored border of 24-48 px (without one the cascade misses a face that
# fills its frame, and finds the others' boxes too small), the frame is a median 1.04-1.07
# of the box's side, its centre within 1% of the box's. FER2013's faces are cut that
# tightly: brow to chin, the hair and the ears mostly outside.
FRAME_PER_BOX = 1.05
FACE_SIZE = 48
# photos are searched at most this large (longer side, px): a 12-megapixel photo takes
# seconds at full size and its faces are far larger than the 48 px the models see; the
# larger the search, the more fine texture the cascade takes for a face (the astronaut's
# photo upscaled, searched at 1024-1280 px: a helmet's reflection, a badge). 800 px keeps
# faces of 4% of the photo's side
DETECT_SIDE = 800
# the cascade's own window is 24 px; smaller boxes in a photo are mostly false alarms
MIN_FACE = 30
# detections that must overlap for a face: OpenCV's usual 5 still let a false face of the
# astronaut's photo through (searched at 800 px from 2048 or 3000); 6 leaves it out and
# frames FER2013's faces as 5 does (``frame_per_box``: the same median)
NEIGHBOURS = 6
WIDE_TOP = 2 ** 16 - 1  # 16-bit grey levels, scaled to 0..255 as nnlib.images does


class PhotoError(ValueError):
    """A photo cannot be read; the message names it."""


def open_photo(source, name=None):
    """The photo in ``source`` (a path, bytes or a PIL image) as an RGB PIL image, upright.

    EXIF rotation is applied (``ImageOps.exif_transpose``); transparent parts become white
    (a cut-out's background, not black); 16-bit grey levels are scaled to 8 bits (65535 is
    white), palettes and CMYK converted. Raises ``PhotoError`` naming ``name`` (default:
    the path) for a file that is missing, not an image, truncated or absurdly large."""
    name = name or (str(source) if isinstance(source, (str, Path)) else "image")
    try:
        with warnings.catch_warnings():
            # between 1x and 2x its pixel limit Pillow only warns, then decodes gigabytes
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            if isinstance(source, Image.Image):
                return _as_rgb(ImageOps.exif_transpose(source))
            data = bytes(source) if isinstance(source, (bytes, bytearray, memoryview)) else None
            with Image.open(io.BytesIO(data) if data is not None else source) as im:
                im.load()
                return _as_rgb(ImageOps.exif_transpose(im))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise PhotoError(f"{name}: too large to be a photo (over "
                         f"{Image.MAX_IMAGE_PIXELS:,} pixels)") from None
    except FileNotFoundError:
        raise PhotoError(f"{name}: no such file or folder") from None
    except IsADirectoryError:
        raise PhotoError(f"{name}: a folder, not an image") from None
    except UnidentifiedImageError:
        raise PhotoError(f"{name}: not an image file Pillow can read") from None
    except (OSError, SyntaxError, EOFError, ValueError) as e:
        raise PhotoError(f"{name}: cannot decode the image ({_one_line(e)})") from None


def _as_rgb(im):
    if im.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):
        levels = np.asarray(im, dtype=np.int64)
        if levels.size and (levels.min() < 0 or levels.max() > WIDE_TOP):
            raise ValueError("grey levels outside 0..65535: unknown bit depth")
        im = Image.fromarray(np.rint(levels * (255 / WIDE_TOP)).astype(np.uint8), "L")
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba).convert("RGB")
    return im.convert("RGB")


def grayscale(photo):
    """uint8 (H, W): the photo converted to Pillow's "L" (ITU-R 601-2 luma), as nnlib's
    data loaders convert FER2013's images."""
    return np.asarray(photo.convert("L"), dtype=np.uint8)


@functools.cache
def cascade(name=CASCADE):
    """OpenCV's Haar cascade ``name`` (loaded once); ``RuntimeError`` with the fix if this
    OpenCV lacks it (OpenCV 5 moved the Haar cascades out of its Python wheels)."""
    try:
        import cv2
    except ImportError:
        raise RuntimeError("face finding needs OpenCV: pip install 'opencv-python-headless<5'"
                           " (or pass --no-detect for images that are face crops)") from None
    path = Path(getattr(getattr(cv2, "data", None), "haarcascades", "")) / name
    if not hasattr(cv2, "CascadeClassifier") or not path.is_file():
        raise RuntimeError(f"OpenCV {cv2.__version__} ships no Haar face cascade: "
                           "pip install 'opencv-python-headless<5'")
    detector = cv2.CascadeClassifier(str(path))
    if detector.empty():
        raise RuntimeError(f"OpenCV could not load {path}; reinstall opencv-python-headless")
    return detector


def detect_faces(gray, min_face=MIN_FACE, max_side=DETECT_SIDE, name=CASCADE,
                 neighbours=NEIGHBOURS):
    """Boxes (x, y, w, h) of the frontal faces in ``gray`` uint8 (H, W), left to right.

    The photo is searched at most ``max_side`` px large, histogram-equalised (evens out dim
    or backlit photos; the crops themselves are not equalised); boxes are in ``gray``'s
    pixels. ``min_face``: the smallest side searched, in ``gray``'s pixels."""
    import cv2
    gray = np.ascontiguousarray(gray, dtype=np.uint8)
    scale = min(1.0, max_side / max(gray.shape))
    small = gray
    if scale < 1:
        size = (max(1, round(gray.shape[1] * scale)), max(1, round(gray.shape[0] * scale)))
        small = np.asarray(Image.fromarray(gray).resize(size, Image.Resampling.BOX))
    side = max(1, round(min_face * scale))
    if min(small.shape) < side:
        return []
    found = cascade(name).detectMultiScale(cv2.equalizeHist(small), scaleFactor=1.1,
                                           minNeighbors=neighbours, minSize=(side, side))
    boxes = [tuple(int(round(v / scale)) for v in box) for box in np.reshape(found, (-1, 4))]
    return sorted(boxes, key=lambda b: (b[0], b[1]))


def face_frame(box, margin=FRAME_PER_BOX):
    """The square (left, top, right, bottom) that frames a face as FER2013 does: ``margin``
    times the side of the detected ``box`` (x, y, w, h), on its centre."""
    x, y, w, h = box
    side = margin * max(w, h)
    cx, cy = x + w / 2, y + h / 2
    left, top = int(round(cx - side / 2)), int(round(cy - side / 2))
    size = max(1, int(round(side)))
    return left, top, left + size, top + size


def crop_face(gray, box, size=FACE_SIZE, margin=FRAME_PER_BOX):
    """uint8 (size, size): the face at ``box`` of ``gray`` (H, W), framed by ``face_frame``
    and resized with Pillow. Where the frame passes the photo's edge the edge pixels are
    repeated (a black band would be a feature FER2013's faces rarely have)."""
    left, top, right, bottom = face_frame(box, margin)
    h, w = gray.shape
    pad = max(0, -left, -top, right - w, bottom - h)
    if pad:
        gray = np.pad(gray, pad, mode="edge")
    crop = gray[top + pad:bottom + pad, left + pad:right + pad]
    return resized(crop, size)


def resized(gray, size=FACE_SIZE):
    """uint8 (size, size) of ``gray`` (H, W) with Pillow's default (bicubic, antialiased)
    resampling; an image of that size already is returned as it is."""
    if gray.shape == (size, size):
        return np.asarray(gray, dtype=np.uint8)
    return np.asarray(Image.fromarray(np.ascontiguousarray(gray)).resize((size, size)))


def face_crops(photo, detect=True, size=FACE_SIZE):
    """The faces of an RGB PIL ``photo``: their boxes [(x, y, w, h)] and crops uint8
    (K, size, size). ``detect`` False: the whole photo is the one face (a face crop such
    as FER2013's), resized to size x size."""
    gray = grayscale(photo)
    if not detect:
        return [(0, 0, gray.shape[1], gray.shape[0])], resized(gray, size)[None]
    boxes = detect_faces(gray)
    crops = [crop_face(gray, b, size) for b in boxes]
    return boxes, np.stack(crops) if crops else np.zeros((0, size, size), np.uint8)


def frame_per_box(crops, upscale=192, border=24, **detect):
    """How many detected box sides FER2013's frame is: for each of ``crops`` uint8
    (N, h, w), upscaled to ``upscale`` px and given a mirrored ``border`` (px), the frame's
    side over the side of the largest box found. Returns the ratios (M,) of the M crops in
    which a face was found, and the box centres (M, 2) as fractions of the frame."""
    ratios, centres = [], []
    for crop in crops:
        big = np.asarray(Image.fromarray(np.asarray(crop, np.uint8)).resize((upscale, upscale)))
        boxes = detect_faces(np.pad(big, border, mode="reflect"), min_face=upscale // 4,
                             **detect)
        if boxes:
            x, y, w, h = max(boxes, key=lambda b: b[2] * b[3])
            ratios.append(upscale / w)
            centres.append(((x - border + w / 2) / upscale, (y - border + h / 2) / upscale))
    return np.array(ratios), np.array(centres).reshape(-1, 2)


def _one_line(e):
    return " ".join(str(e).split()) or type(e).__name__
