"""Every project path in one place (notebooks never write '../figures' strings)."""
from pathlib import Path

PROJ_ROOT = Path(__file__).resolve().parents[1]
FIGURES_DIR = PROJ_ROOT / "figures"
REPORT_DIR = PROJ_ROOT / "report"
GENERATED_DIR = REPORT_DIR / "generated"
MODELS_DIR = PROJ_ROOT / "models"
NOTEBOOKS_DIR = PROJ_ROOT / "notebooks"
RUNS_DIR = PROJ_ROOT / "runs"  # checkpoints and logs of long runs (not committed)
