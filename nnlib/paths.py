"""Every project path in one place (notebooks never write '../figures' strings).

The project root is ``$NNLIB_ROOT`` if set (a relative one from the working directory);
else the checkout this package was imported from (editable installs and plain checkouts);
else, for an installed copy of nnlib, the nearest folder above the working directory that
holds the project (its ``pyproject.toml`` and ``notebooks/``), then the nearest one above
the installed copy (a virtual environment inside the project); else the working directory.
"""
import os
from pathlib import Path


def is_project(folder):
    """Whether ``folder`` holds the project: its ``pyproject.toml`` and ``notebooks/``."""
    return (folder / "pyproject.toml").is_file() and (folder / "notebooks").is_dir()


def find_root(cwd=None):
    """The project root for a process working in ``cwd`` (default: the working directory)."""
    cwd = Path(cwd or Path.cwd()).resolve()
    if os.environ.get("NNLIB_ROOT"):
        return (cwd / Path(os.environ["NNLIB_ROOT"]).expanduser()).resolve()
    package = Path(__file__).resolve().parent
    if is_project(package.parent):
        return package.parent
    for folder in (cwd, *cwd.parents, *package.parents):
        if is_project(folder):
            return folder
    return cwd


PROJ_ROOT = find_root()
FIGURES_DIR = PROJ_ROOT / "figures"
REPORT_DIR = PROJ_ROOT / "report"
GENERATED_DIR = REPORT_DIR / "generated"
MODELS_DIR = PROJ_ROOT / "models"
NOTEBOOKS_DIR = PROJ_ROOT / "notebooks"
RUNS_DIR = PROJ_ROOT / "runs"  # checkpoints and logs of long runs (not committed)


def default_data_root(root=None):
    """Where the data sets are, for every command, notebook and worker alike:
    ``$NNLIB_DATA``; else ``../shared/datasets`` beside the project when that folder
    exists; else the project's ``data/``."""
    root = Path(root or PROJ_ROOT)
    if os.environ.get("NNLIB_DATA"):
        return (Path.cwd() / Path(os.environ["NNLIB_DATA"]).expanduser()).resolve()
    shared = root.parent / "shared" / "datasets"
    return shared.resolve() if shared.is_dir() else root / "data"
