"""nnlib.digest against hashlib, computed here independently: files (by path or open file,
in chunks, never read whole) and lists of arrays (dtype, shape, values)."""
import hashlib
import io

import numpy as np
import pytest

from nnlib import digest


@pytest.fixture
def data_file(tmp_path):
    path = tmp_path / "blob.bin"
    path.write_bytes(np.random.default_rng(0).bytes(3 * 1000 + 17))
    return path


@pytest.mark.parametrize("chunk", [1000, 1 << 20])
def test_files_hash_as_hashlib_does_in_chunks(data_file, monkeypatch, chunk):
    monkeypatch.setattr(digest, "CHUNK", chunk)
    raw = data_file.read_bytes()
    assert digest.file_sha256(data_file) == hashlib.sha256(raw).hexdigest()
    assert digest.file_sha256(str(data_file)) == hashlib.sha256(raw).hexdigest()
    assert (digest.hash_file(data_file, "blake2b").digest()
            == hashlib.blake2b(raw).digest())
    with open(data_file, "rb") as f:  # an open file: read from where it stands
        f.read(5)
        assert digest.hash_file(f, "md5").hexdigest() == hashlib.md5(raw[5:]).hexdigest()
    prefixed = hashlib.sha256(b"prefix")
    assert (digest.hash_file(data_file, h=prefixed).hexdigest()
            == hashlib.sha256(b"prefix" + raw).hexdigest())
    (data_file.parent / "empty").write_bytes(b"")
    assert digest.file_sha256(data_file.parent / "empty") == hashlib.sha256(b"").hexdigest()


def test_a_file_is_never_read_whole(data_file, monkeypatch):
    monkeypatch.setattr(digest, "CHUNK", 1000)
    sizes = []

    class Spy(io.BytesIO):
        def read(self, n=-1):
            sizes.append(n)
            return super().read(n)

    raw = data_file.read_bytes()
    assert digest.hash_file(Spy(raw)).hexdigest() == hashlib.sha256(raw).hexdigest()
    assert sizes == [1000] * 5  # four chunks (the last one short), then the end


def test_arrays_hash_their_dtype_shape_and_values():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    b = np.ones(2, np.float64)
    expected = hashlib.sha256(b"<f4(2, 3)" + a.tobytes() + b"<f8(2,)" + b.tobytes())
    assert digest.arrays_digest([a, b]) == expected.hexdigest()
    assert digest.arrays_digest([np.asfortranarray(a), b]) == expected.hexdigest()
    assert digest.arrays_digest([]) == hashlib.sha256(b"").hexdigest()
    # fed into a hash that has already read something (a file's bytes)
    assert (digest.arrays_digest([a], hashlib.sha256(b"file"))
            == hashlib.sha256(b"file<f4(2, 3)" + a.tobytes()).hexdigest())
    assert digest.arrays_digest([a.T]) == hashlib.sha256(
        b"<f4(3, 2)" + np.ascontiguousarray(a.T).tobytes()).hexdigest()
