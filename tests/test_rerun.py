"""Re-running Q1-Q3 (full profile) on another BLAS kernel changes no committed file."""
import filecmp
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_q1_to_q3_rerun_on_another_blas_kernel_leaves_every_file_as_committed(tmp_path):
    copied = [ROOT / "pyproject.toml", *sorted((ROOT / "notebooks").glob("Q[123]_*.ipynb")),
              *sorted((ROOT / "figures").glob("q[123]_*")),
              *sorted((ROOT / "report" / "generated").glob("q[123][._]*"))]
    assert len(copied) > 10
    for path in copied:
        (tmp_path / path.relative_to(ROOT)).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, tmp_path / path.relative_to(ROOT))
    env = {**os.environ, "NNLIB_ROOT": str(tmp_path), "OPENBLAS_CORETYPE": "Prescott"}
    env.pop("NNLIB_PROFILE", None)
    done = subprocess.run([sys.executable, "-m", "nnlib.pipeline", "--profile", "full",
                           "--only", "Q1", "Q2", "Q3"], env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    changed = [str(p.relative_to(ROOT)) for p in copied
               if not filecmp.cmp(p, tmp_path / p.relative_to(ROOT), shallow=False)]
    assert changed == []
    new = {p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file()
           and "runs" not in p.relative_to(tmp_path).parts}
    assert new == {p.relative_to(ROOT) for p in copied}
