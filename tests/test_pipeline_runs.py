"""nnlib.pipeline running tiny notebooks in real kernels: what a failure, a success,
a password and Ctrl-C leave in the tracked files, the notebooks and the logs."""
import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from nnlib import pipeline

PASSWORD = "s3cr3t-pw"


@pytest.fixture(autouse=True)
def _environment():
    """The pipeline sets NNLIB_PROFILE and PGPASSWORD for its kernels: undo it."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A project in tmp_path with a committed figure, table and model, the pipeline
    pointed at it (here and, through NNLIB_ROOT, in a child process)."""
    for name, folder in (("NOTEBOOKS_DIR", "notebooks"), ("FIGURES_DIR", "figures"),
                         ("GENERATED_DIR", "report/generated"), ("MODELS_DIR", "models")):
        (tmp_path / folder).mkdir(parents=True)
        monkeypatch.setattr(pipeline, name, tmp_path / folder)
    monkeypatch.setattr(pipeline, "RUNS_DIR", tmp_path / "runs")
    monkeypatch.setattr(pipeline, "PROJ_ROOT", tmp_path)
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "figures" / "q5_curve.pdf").write_bytes(b"%PDF committed")
    (tmp_path / "report" / "generated" / "q5.json").write_text('{"accuracy": 0.4}\n')
    (tmp_path / "models" / "q5.npz").write_bytes(b"committed weights")
    return tmp_path


def make_notebook(path, *sources, parameters="profile = None\nstorage = None"):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(parameters)
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell] + [nbformat.v4.new_code_cell(s) for s in sources]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, path)
    return path


def tree(folder):
    """Every file under ``folder`` (runs/ left out), by relative path, with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.relative_to(folder).parts[0] != "runs"}


def exports(project):
    """A cell that rewrites the committed figure and table and adds a figure and a model."""
    return (f"from pathlib import Path\nroot = Path({str(project)!r})\n"
            "(root / 'figures' / 'q5_curve.pdf').write_bytes(b'%PDF new')\n"
            "(root / 'figures' / 'q5_extra.png').write_bytes(b'png')\n"
            "(root / 'report' / 'generated' / 'q5.json').write_text('{}')\n"
            "(root / 'models' / 'q5_more.npz').write_bytes(b'more')\n"
            "print('exported')")


def test_a_failing_notebook_changes_no_tracked_file(project, capsys):
    make_notebook(project / "notebooks" / "Q5_demo.ipynb", exports(project),
                  "raise ValueError('no convergence')", "print('never')")
    before = tree(project)
    with pytest.raises(SystemExit) as e:
        pipeline.main(["--only", "Q5"])
    assert e.value.code == 1
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == (
        "error: Q5_demo.ipynb failed in cell 3: ValueError: no convergence; see "
        "runs/pipeline/Q5_demo.ipynb and runs/pipeline/Q5_demo.log; figures/, "
        "report/generated/, models/ are as they were (the files of the failed run: "
        "runs/pipeline/failed/Q5_demo/)")
    assert not any("Traceback" in line for line in err)
    assert tree(project) == before  # the notebook too: its last cell is not emptied
    failed = nbformat.read(project / "runs" / "pipeline" / "Q5_demo.ipynb", as_version=4)
    assert [o.get("ename") for c in failed.cells if c.cell_type == "code"
            for o in c.outputs if o.output_type == "error"] == ["ValueError"]
    assert "exported" in (project / "runs" / "pipeline" / "Q5_demo.log").read_text()
    assert tree(project / "runs" / "pipeline" / "failed" / "Q5_demo") == {
        "figures/q5_curve.pdf": b"%PDF new", "figures/q5_extra.png": b"png",
        "generated/q5.json": b"{}", "models/q5_more.npz": b"more"}


def test_a_notebook_that_succeeds_replaces_the_tracked_files(project):
    nb = make_notebook(project / "notebooks" / "Q5_demo.ipynb", exports(project))
    pipeline.main(["--only", "Q5"])
    after = tree(project)
    assert after["figures/q5_curve.pdf"] == b"%PDF new"
    assert after["figures/q5_extra.png"] == b"png"
    assert after["report/generated/q5.json"] == b"{}"
    assert after["models/q5.npz"] == b"committed weights"
    executed = nbformat.read(nb, as_version=4)
    assert executed.cells[-1].outputs[0].text == "exported\n"
    assert executed.metadata["papermill"]["output_path"] == "Q5_demo.ipynb"
    assert not (project / "runs" / "pipeline" / "Q5_demo.ipynb").exists()


def test_a_password_reaches_the_kernel_and_no_file(project, monkeypatch):
    monkeypatch.delenv("PGPASSWORD", raising=False)
    digest = hashlib.sha256(PASSWORD.encode()).hexdigest()  # the notebook holds no password
    nb = make_notebook(project / "notebooks" / "Q5_demo.ipynb",
                       "import hashlib, os\nprint('storage:', storage)\n"
                       "seen = hashlib.sha256(os.environ.get('PGPASSWORD', '').encode())\n"
                       f"print('PGPASSWORD given:', seen.hexdigest() == {digest!r})")
    pipeline.main(["--only", "Q5", "-p", "storage",
                   f"postgresql://user:{PASSWORD}@db.example:5432/studies"])
    text = nb.read_text()
    assert "storage: postgresql://user@db.example:5432/studies\\n" in text
    assert "PGPASSWORD given: True" in text
    log = (project / "runs" / "pipeline" / "Q5_demo.log").read_text()
    assert "storage: postgresql://user@db.example:5432/studies" in log
    assert "PGPASSWORD given: True" in log
    leaks = [p for p in project.rglob("*") if p.is_file() and PASSWORD.encode() in p.read_bytes()]
    assert leaks == []


def test_ctrl_c_puts_the_files_back_and_exits_130(project):
    started = project / "started"
    make_notebook(project / "notebooks" / "Q5_demo.ipynb", exports(project),
                  f"open({str(started)!r}, 'w').close()\nimport time\ntime.sleep(120)")
    before = tree(project)
    # the nnlib under test, in the child too; NNLIB_ROOT, not the working folder, says
    # where the project is
    source = Path(pipeline.__file__).parents[1]
    env = {**os.environ, "NNLIB_ROOT": str(project),
           "PYTHONPATH": os.pathsep.join([str(source), os.environ.get("PYTHONPATH", "")])}
    # as from a terminal, even where this test runs in a process that ignores SIGINT
    # (which its children inherit), as runners in the background do
    command = ("import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
               "runpy.run_module('nnlib.pipeline', run_name='__main__')")
    child = subprocess.Popen([sys.executable, "-c", command, "--only", "Q5"],
                             cwd=source, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not started.exists() and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    if not started.exists():
        child.kill()
        pytest.fail(f"the notebook did not start: {child.communicate()[1]}")
    started.unlink()
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=120)
    assert child.returncode == 130, err
    assert err.splitlines()[-1] == (
        "interrupted: Q5_demo.ipynb stopped; see runs/pipeline/Q5_demo.ipynb and "
        "runs/pipeline/Q5_demo.log; figures/, report/generated/, models/ are as they were "
        "(the files of the failed run: runs/pipeline/failed/Q5_demo/)")
    assert "Traceback" not in err  # neither ours nor the kernel's
    assert tree(project) == before
