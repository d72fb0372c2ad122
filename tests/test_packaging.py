"""The declared dependencies match what the code imports, and the lock file and
environment.yml agree with them."""
import ast
import json
import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
# import name -> distribution name, where they differ
DIST = {"PIL": "pillow", "sklearn": "scikit-learn", "yaml": "pyyaml",
        "cv2": "opencv-python-headless", "skimage": "scikit-image"}
# declared, but never imported by name: what each one is for
NOT_IMPORTED = {
    "jinja2": "pandas' to_latex", "papermill": "the pipeline runs it as a module",
    "ipykernel": "the notebooks' kernel", "ipywidgets": "tqdm's bars in JupyterLab",
    "jupyterlab": "make lab", "psycopg": "SQLAlchemy's postgresql:// driver",
    "pytest": "tests", "nbval": "make test-notebooks", "ruff": "make lint",
    "keras": "", "tensorflow": "", "jax": "", "torch": "",  # imported lazily by name below
}


def declared():
    reqs = [Requirement(r) for r in PYPROJECT["project"]["dependencies"]]
    for items in PYPROJECT["project"]["optional-dependencies"].values():
        reqs += [Requirement(r) for r in items if not r.startswith("nnlib[")]
    return reqs


def imported_modules():
    """Top-level modules imported by the package, scripts, benchmarks and notebooks."""
    sources = [p.read_text() for d in ("nnlib", "scripts", "benchmarks", "tests")
               for p in (ROOT / d).rglob("*.py")]
    for nb in (ROOT / "notebooks").glob("*.ipynb"):
        cells = json.loads(nb.read_text())["cells"]
        sources += ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    names = set()
    for src in sources:
        src = "\n".join(line for line in src.splitlines() if not line.startswith(("%", "!")))
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names.add(node.module.split(".")[0])
    return names


def normal(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_imported_package_is_declared():
    import sys
    local = {p.stem for d in ("benchmarks", "scripts", "tests") for p in (ROOT / d).glob("*.py")}
    third_party = {m for m in imported_modules()
                   if m not in sys.stdlib_module_names and m not in local | {"nnlib"}}
    names = {normal(r.name) for r in declared()}
    undeclared = sorted(m for m in third_party if normal(DIST.get(m, m)) not in names)
    # sqlalchemy comes with optuna, and the tests name it only to catch its errors
    assert undeclared in ([], ["sqlalchemy"]), undeclared


def test_every_declared_package_is_used():
    used = {normal(DIST.get(m, m)) for m in imported_modules()}
    unused = sorted(r.name for r in declared()
                    if normal(r.name) not in used and normal(r.name) not in NOT_IMPORTED)
    assert unused == []


def test_lock_pins_every_declared_package_within_its_range():
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            r = Requirement(line)
            (version,) = [s.version for s in r.specifier]
            pins[normal(r.name)] = version
    for r in declared():
        if r.name in ("jax", "torch"):  # optional backends, outside the "all" extra
            continue
        assert normal(r.name) in pins, f"{r.name} is not in requirements.lock: make lock"
        assert r.specifier.contains(pins[normal(r.name)], prereleases=True), \
            f"requirements.lock pins {r.name}=={pins[normal(r.name)]}, outside {r.specifier}"


def test_environment_yml_installs_the_lock():
    text = (ROOT / "environment.yml").read_text()
    assert "- -r requirements.lock" in text and "- -e ." in text
    python = re.search(r"- python=(\S+)", text).group(1)
    assert PYPROJECT["project"]["requires-python"] == f">={python}"


@pytest.mark.parametrize("target", ["setup", "lock", "lab", "postgres", "bench", "mutation"])
def test_make_help_lists_every_target(target):
    import subprocess
    out = subprocess.run(["make", "-s", "-C", str(ROOT), "help"], capture_output=True,
                         text=True).stdout
    assert f"make {target} " in out
