"""Fetch the data sets that can be fetched (``make data``).

    python -m nnlib.download [--data FOLDER]

CIFAR-10 comes from its official source, checked against its published MD5 before
anything is unpacked; FER2013 needs a Kaggle account, so the command says where to get it
and where to put it. A data set already in place is left alone. The archive is written
beside its final place under a temporary name and unpacked into a temporary folder that is
renamed into place only once complete: an interrupted download leaves nothing half-made.
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import shutil
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from nnlib.paths import default_data_root

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"  # as published with the archive
CIFAR10_MEMBER = "cifar-10-batches-py"
CIFAR10_FILES = (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta")
FER2013_HELP = (
    "FER2013 needs a Kaggle account: download fer2013.csv from the Kaggle challenge "
    "'Challenges in Representation Learning: Facial Expression Recognition Challenge' "
    "and put it at {folder}/fer2013.csv (or image folders at {folder}/train/<emotion>/ and "
    "{folder}/test/<emotion>/); see data/README.md")
CHUNK = 1 << 20


class DownloadError(RuntimeError):
    """A download failed or its checksum did not match."""


def fetch(url, dest, md5, progress=False, timeout=60):
    """Download ``url`` to ``dest`` (replaced atomically) and check its MD5 on the way;
    a mismatch leaves no file. Returns ``dest``."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".tmp-{dest.name}-")
    digest = hashlib.md5()
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as r:
            total = int(r.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name,
                      disable=not progress) as bar:
                while block := r.read(CHUNK):
                    out.write(block)
                    digest.update(block)
                    bar.update(len(block))
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != md5:
            raise DownloadError(f"{url}: checksum {digest.hexdigest()} is not the published "
                                f"{md5}; the download is damaged or not the official file; "
                                "try again later")
        os.replace(tmp, dest)
    except (urllib.error.URLError, OSError) as e:
        raise DownloadError(f"cannot download {url} ({getattr(e, 'reason', e)}); check the "
                            f"network, or download it by hand into {dest.parent}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return dest


def unpack_cifar10(archive, folder):
    """Unpack the official archive's ``cifar-10-batches-py/`` into ``folder`` (which must
    not exist yet), refusing any other member; the folder appears only when complete."""
    folder = Path(folder)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".tmp-{folder.name}-"))
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = [m for m in tar.getmembers() if m.isfile()]
            names = {Path(m.name).name for m in members}
            wrong = [m.name for m in members if Path(m.name).parent.name != CIFAR10_MEMBER]
            if wrong or not set(CIFAR10_FILES) <= names:
                raise DownloadError(f"{archive} is not the CIFAR-10 python archive "
                                    f"(unexpected {wrong[:3]} or missing files)")
            for m in members:
                m.name = Path(m.name).name  # flat: cifar10/cifar-10-batches-py/<file>
            target = staging / CIFAR10_MEMBER
            tar.extractall(target, members=members, filter="data")
        staging.rename(folder)
    except (tarfile.TarError, OSError, EOFError) as e:
        raise DownloadError(f"{archive} cannot be unpacked ({e}); delete it and run again") \
            from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def cifar10_present(folder):
    folder = Path(folder)
    return ((folder / CIFAR10_MEMBER / "data_batch_1").is_file()
            or (folder / "data_batch_1").is_file()
            or ((folder / "train").is_dir() and (folder / "test").is_dir()))


def fer2013_present(folder):
    folder = Path(folder)
    return ((folder / "fer2013.csv").is_file() or (folder / "train").is_dir()
            or (folder / "labels_public.txt").is_file())


def get_cifar10(root, url=CIFAR10_URL, md5=CIFAR10_MD5, progress=False):
    """``root/cifar10`` holding the official python batches; downloads when missing."""
    folder = Path(root) / "cifar10"
    if cifar10_present(folder):
        return folder, False
    archive = fetch(url, Path(root) / "cifar-10-python.tar.gz", md5, progress=progress)
    unpack_cifar10(archive, folder)
    archive.unlink()
    return folder, True


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m nnlib.download",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None,
                        help="the data folder (default: $NNLIB_DATA, else ../shared/datasets "
                             "when it exists, else ./data)")
    args = parser.parse_args(argv)
    root = args.data or default_data_root()
    try:
        root.mkdir(parents=True, exist_ok=True)
        folder, fetched = get_cifar10(root, progress=True)
        print(f"CIFAR-10: {'downloaded to' if fetched else 'already in'} {folder}")
    except (DownloadError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted: nothing was left half-made", file=sys.stderr)
        sys.exit(130)
    if not fer2013_present(root / "fer2013"):
        print("error: no FER2013 at " + str(root / "fer2013") + ". "
              + FER2013_HELP.format(folder=root / "fer2013"), file=sys.stderr)
        sys.exit(2)
    print(f"FER2013: already in {root / 'fer2013'}")


if __name__ == "__main__":
    main()
