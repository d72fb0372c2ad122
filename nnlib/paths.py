"""Every project path in one place (notebooks never write '../figures' strings).

The project root is ``$NNLIB_ROOT`` if set; else the checkout this package was imported
from (editable installs and plain checkouts); else, for an installed copy of nnlib, the
nearest folder above the working directory that holds the project (its ``pyproject.toml``
and ``notebooks/``); else the working directory.
"""
import os
from pathlib import Path


def find_root(cwd=None):
    if os.environ.get("NNLIB_ROOT"):
        return Path(os.environ["NNLIB_ROOT"]).resolve()
    source = Path(__file__).resolve().parents[1]
    if (source / "pyproject.toml").is_file() and (source / "notebooks").is_dir():
        return source
    cwd = Path(cwd or Path.cwd()).resolve()
    for folder in (cwd, *cwd.parents):
        if (folder / "pyproject.toml").is_file() and (folder / "notebooks").is_dir():
            return folder
    return cwd


PROJ_ROOT = find_root()
FIGURES_DIR = PROJ_ROOT / "figures"
REPORT_DIR = PROJ_ROOT / "report"
GENERATED_DIR = REPORT_DIR / "generated"
MODELS_DIR = PROJ_ROOT / "models"
NOTEBOOKS_DIR = PROJ_ROOT / "notebooks"
RUNS_DIR = PROJ_ROOT / "runs"  # checkpoints and logs of long runs (not committed)
