"""make data: the CIFAR-10 download checked against its MD5, from a local HTTP server."""
import functools
import hashlib
import http.server
import io
import pickle
import tarfile
import threading

import numpy as np
import pytest

from nnlib import download
from nnlib.data import load_cifar10


def _batch(n, seed):
    rng = np.random.default_rng(seed)
    return pickle.dumps({b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                         b"labels": [int(v) for v in rng.integers(0, 10, n)]})


def _archive(extra=None):
    """A small archive laid out as the official one: cifar-10-batches-py/<files>."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        files = {name: _batch(20, i) for i, name in enumerate(download.CIFAR10_FILES)}
        files.update(extra or {})
        for name, data in files.items():
            info = tarfile.TarInfo(name if "/" in name else f"cifar-10-batches-py/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture
def server(tmp_path):
    """An HTTP server on 127.0.0.1 serving tmp_path/www; yields its base URL."""
    www = tmp_path / "www"
    www.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(www))
    handler.log_message = lambda *a: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield www, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_download_checks_the_md5_and_unpacks_a_loadable_data_set(server, tmp_path):
    www, url = server
    data = _archive()
    (www / "c.tar.gz").write_bytes(data)
    root = tmp_path / "data"
    folder, fetched = download.get_cifar10(root, url=f"{url}/c.tar.gz",
                                           md5=hashlib.md5(data).hexdigest())
    assert fetched and folder == root / "cifar10"
    assert sorted(p.name for p in root.iterdir()) == ["cifar10"]  # archive removed
    d = load_cifar10(folder, val_size=10, cache=False)
    assert d["X_train"].shape == (90, 32, 32, 3) and d["X_test"].shape == (20, 32, 32, 3)
    expected = pickle.loads(_batch(20, download.CIFAR10_FILES.index("test_batch")))
    np.testing.assert_array_equal(
        d["X_test"], expected[b"data"].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    # a second call finds it and fetches nothing
    assert download.get_cifar10(root, url=f"{url}/missing", md5="0")[1] is False


def test_a_wrong_checksum_leaves_nothing(server, tmp_path):
    www, url = server
    (www / "c.tar.gz").write_bytes(_archive())
    root = tmp_path / "data"
    with pytest.raises(download.DownloadError, match="checksum .* is not the published 0+"):
        download.get_cifar10(root, url=f"{url}/c.tar.gz", md5="0" * 32)
    assert list(root.iterdir()) == []


def test_an_unreachable_url_is_one_error_naming_it(server, tmp_path):
    _, url = server
    with pytest.raises(download.DownloadError, match="cannot download .*/nothing-here"):
        download.fetch(f"{url}/nothing-here", tmp_path / "x.tar.gz", "0" * 32)
    assert list(tmp_path.iterdir()) == [tmp_path / "www"]


def test_an_archive_with_other_members_is_refused(tmp_path):
    data = _archive({"../evil.txt": b"x"})
    archive = tmp_path / "c.tar.gz"
    archive.write_bytes(data)
    with pytest.raises(download.DownloadError, match="not the CIFAR-10 python archive"):
        download.unpack_cifar10(archive, tmp_path / "cifar10")
    assert not (tmp_path / "cifar10").exists() and not (tmp_path.parent / "evil.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.tar.gz"]


def test_the_command_explains_where_fer2013_goes(tmp_path, capsys, monkeypatch):
    (tmp_path / "cifar10" / "train").mkdir(parents=True)
    (tmp_path / "cifar10" / "test").mkdir()
    with pytest.raises(SystemExit) as exit_:
        download.main(["--data", str(tmp_path)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Kaggle" in err and f"{tmp_path}/fer2013/fer2013.csv" in err
    (tmp_path / "fer2013" / "train").mkdir(parents=True)
    download.main(["--data", str(tmp_path)])
    assert "already in" in capsys.readouterr().out
