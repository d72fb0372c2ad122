"""The README's command blocks run as written, with smaller budgets.

Each block marked ``<!-- README block: NAME -->`` is run by bash from the project root.
The only changes are listed in SMALLER: the data folder becomes a small copy of it, the
photos are made here, and searches use the smoke profile and one trial, so that a
command renamed, a flag dropped or a path moved fails here.
"""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
FER = Path(os.environ.get("NNLIB_DATA") or ROOT.parent / "shared" / "datasets") / "fer2013"


def block(name):
    found = re.search(rf"<!-- README block: {name} -->\n```bash\n(.*?)```", README, re.S)
    assert found, f"README.md has no block {name}"
    return found.group(1)


def run(script, tmp_path, smaller):
    for old, new in smaller:
        assert old in script, f"the README block no longer says {old!r}"
        script = script.replace(old, new)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


@pytest.fixture
def small_fer(tmp_path):
    """Six PublicTest faces of each class, in the test folder's layout."""
    if not (FER / "test").is_dir():
        pytest.skip(f"no FER2013 test folder at {FER}")
    small = tmp_path / "fer2013" / "test"
    for folder in sorted((FER / "test").iterdir()):
        (small / folder.name).mkdir(parents=True)
        for path in sorted(folder.glob("PublicTest_*"))[:6]:
            shutil.copy(path, small / folder.name / path.name)
    return small


@pytest.fixture
def venv_python():
    if not (ROOT / ".venv" / "bin" / "python").exists():
        pytest.skip("no .venv: the README's commands run make setup's environment")


def test_evaluate_block(venv_python, small_fer, tmp_path):
    done = run(block("evaluate"), tmp_path, [
        ("../shared/datasets/fer2013/test", str(small_fer)),
        ("--json out.json", f"--json {tmp_path / 'out.json'}")])
    assert done.stdout.count("classification rate:") == 4
    assert done.stdout.count("on 42 images (42 PublicTest)") == 4
    assert (tmp_path / "out.json").is_file()


def test_predict_block(venv_python, small_fer, tmp_path):
    from skimage import data as samples
    Image.fromarray(samples.astronaut()).save(tmp_path / "photo.jpg")
    (tmp_path / "my_photos").mkdir()
    Image.fromarray(np.full((64, 64), 128, np.uint8)).save(tmp_path / "my_photos" / "wall.png")
    shutil.copy(tmp_path / "photo.jpg", tmp_path / "my_photos" / "me.jpg")
    done = run(block("predict"), tmp_path, [
        ("photo.jpg my_photos/", f"{tmp_path}/photo.jpg {tmp_path}/my_photos/"),
        ("photo.jpg --json out.json", f"{tmp_path}/photo.jpg --json {tmp_path}/out.json"),
        ("photo.jpg --annotate annotated/", f"{tmp_path}/photo.jpg --annotate {tmp_path}/ann/"),
        ("../shared/datasets/fer2013/test/happy", str(small_fer / "happy"))])
    assert "wall.png: no face found" in done.stderr
    assert (tmp_path / "out.json").is_file() and any((tmp_path / "ann").iterdir())
    assert done.stdout.count("happy") >= 6


@pytest.mark.skipif(not shutil.which("pg_ctl") and not list(
    Path("/usr/lib/postgresql").glob("*/bin/pg_ctl")), reason="no PostgreSQL here")
def test_search_block(venv_python, tmp_path):
    if not (FER / "train").is_dir():
        pytest.skip(f"no FER2013 at {FER}")
    script = block("search")
    study = f"readme-{os.getpid()}"
    done = run(script, tmp_path, [
        ("--only Q5", "--profile smoke --only Q5"),
        ("--study q5-lr --n-trials 10", "--study q5-lr --n-trials 1 --profile smoke"),
        ("--study my-dropout --n-trials 10", f"--study {study} --n-trials 1 --profile smoke")])
    assert re.search(r"^q5-lr: \d+ finished trials$", done.stdout, re.M), done.stdout
    assert re.search(rf"^{study}: 1 finished trials$", done.stdout, re.M), done.stdout
