"""Digests of files and arrays, in one place for every module that records or compares them
(the data cache's key, a run's settings, stored weights, a teacher's cache file). Files are
hashed in chunks, never read whole; arrays are hashed with their dtype and shape. The values
are recorded in committed run files, so they must never change."""
from __future__ import annotations

import hashlib

import numpy as np

CHUNK = 1 << 20  # bytes read at a time


def hash_file(source, algorithm="sha256", h=None):  # pragma: no mutate (the name's case)
    """The hash object ``h`` (else a new ``algorithm`` one) fed with the bytes of
    ``source``: a path, or a file opened in binary mode (read from where it stands)."""
    h = hashlib.new(algorithm) if h is None else h
    if hasattr(source, "read"):
        for chunk in iter(lambda: source.read(CHUNK), b""):
            h.update(chunk)
        return h
    with open(source, "rb") as f:
        return hash_file(f, h=h)


def file_sha256(path):
    """SHA-256 (hex) of the bytes of the file at ``path``."""
    return hash_file(path).hexdigest()


def arrays_digest(arrays, h=None):
    """SHA-256 (hex) of a list of arrays (each one's dtype, shape and values, in C order),
    fed into the hash ``h`` when given (e.g. one that has already read a file)."""
    h = hashlib.sha256() if h is None else h
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()
