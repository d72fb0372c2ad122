"""nnlib.pipeline without kernels (papermill's executor replaced by a stand-in), except
for one run of a real notebook."""
import os
import re
import shutil
import signal
from pathlib import Path

import nbformat
import papermill
import pytest
from papermill.exceptions import PapermillExecutionError

from nnlib import pipeline
from nnlib.pipeline import _parse_value, clean_outputs

KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


@pytest.fixture(autouse=True)
def _environment():
    """The pipeline sets NNLIB_PROFILE and PGPASSWORD for its kernels: undo it."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A project in tmp_path: its folders, the pipeline pointed at them."""
    for name, folder in (("NOTEBOOKS_DIR", "notebooks"), ("FIGURES_DIR", "figures"),
                         ("GENERATED_DIR", "report/generated"), ("MODELS_DIR", "models")):
        (tmp_path / folder).mkdir(parents=True)
        monkeypatch.setattr(pipeline, name, tmp_path / folder)
    monkeypatch.setattr(pipeline, "RUNS_DIR", tmp_path / "runs")
    monkeypatch.setattr(pipeline, "PROJ_ROOT", tmp_path)
    return tmp_path


def make_notebook(path, *sources, parameters="profile = None"):
    """A notebook at ``path``: a cell tagged parameters (if ``parameters``), then
    ``sources``."""
    nb = nbformat.v4.new_notebook()
    if parameters is not None:
        cell = nbformat.v4.new_code_cell(parameters)
        cell.metadata["tags"] = ["parameters"]
        nb.cells.append(cell)
    nb.cells += [nbformat.v4.new_code_cell(s) for s in sources]
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nbformat.write(nb, path)
    return path


def tree(folder):
    """Every file under ``folder`` (runs/ left out), by relative path, with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.relative_to(folder).parts[0] != "runs"}


class FakePapermill:
    """Stands in for papermill.execute_notebook: records each call and what the kernel
    would have seen, writes the executed notebook (one stdout and one noise output, a
    record with this machine's paths), then calls ``effect``."""

    def __init__(self, monkeypatch, effect=None):
        self.calls, self.effect = [], effect
        monkeypatch.setattr(papermill, "execute_notebook", self)

    def __call__(self, input_path, output_path, **kwargs):
        store = pipeline.RUNS_DIR / "pipeline" / "snapshot"
        self.calls.append({"input": input_path, "output": output_path, **kwargs,
                           "log": str(kwargs["stdout_file"].name),
                           "NNLIB_PROFILE": os.environ.get("NNLIB_PROFILE"),
                           "PGPASSWORD": os.environ.get("PGPASSWORD"),
                           "NNLIB_DATA": os.environ.get("NNLIB_DATA"),
                           "NNLIB_CACHE": os.environ.get("NNLIB_CACHE"),
                           "blas": (os.environ.get("OPENBLAS_CORETYPE"),
                                    os.environ.get("NNLIB_THREADS")),
                           "saved": sorted(str(p.relative_to(store))
                                           for p in store.rglob("*") if p.is_file())})
        nb = nbformat.read(input_path, as_version=4)
        nb.cells[-1].outputs = [
            nbformat.v4.new_output("stream", name="stdout", text="ran\n"),
            nbformat.v4.new_output("stream", name="stderr", text=" 10%|#   | 1/10 [00:01]\n")]
        nb.metadata["papermill"] = {"input_path": input_path, "output_path": output_path}
        nbformat.write(nb, output_path)
        if self.effect:
            self.effect()


def error(ename="ValueError", evalue="bad\n   value", exec_count=3):
    return PapermillExecutionError(cell_index=2, exec_count=exec_count, source="x",
                                   ename=ename, evalue=evalue, traceback=[])


def test_progress_bars_and_start_up_logs_leave_the_notebook():
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("train()")
    stream = nbformat.v4.new_output
    cell.outputs = [
        stream("stream", name="stderr", text="\r  0%|          | 0/10 [00:00<?, ?batch/s]"),
        stream("stream", name="stderr", text="0batch [00:00, ?batch/s]\n"),  # no total
        stream("stream", name="stdout", text="(Epoch 1 / 2) loss 1.0\n"),
        stream("stream", name="stdout", text="(Epoch 2 / 2) loss 0.5\n"),
        stream("stream", name="stderr", text="\r 50%|#####     | 5/10 [00:01<00:01, 5.0batch/s]"
                                            "\r                \r\n"),
        stream("stream", name="stderr", text="/home/me/.venv/tqdm/auto.py:21: TqdmWarning: "
                                            "IProgress not found. Please update jupyter\n"
                                            "  from .autonotebook import tqdm as notebook_tqdm\n"),
        stream("stream", name="stderr", text="I0000 00:00:1795544938.109766   20250 port.cc:153]"
                                            " oneDNN custom operations are on.\n"
                                            "RuntimeWarning: loss became nan\n"),
    ]
    nb.cells = [cell]
    clean_outputs(nb)
    assert [(o.name, o.text) for o in cell.outputs] == [
        ("stdout", "(Epoch 1 / 2) loss 1.0\n(Epoch 2 / 2) loss 0.5\n"),
        ("stderr", "RuntimeWarning: loss became nan\n")]
    assert nb.metadata["kernelspec"]["display_name"] == "Python 3 (ipykernel)"  # as Lab has it


def test_each_noise_pattern_goes_and_results_stay():
    stream = nbformat.v4.new_output
    nb = nbformat.v4.new_notebook()
    note = nbformat.v4.new_markdown_cell("# Results")
    cell = nbformat.v4.new_code_cell("fit()")
    cell.outputs = [
        stream("stream", name="stdout", text="epoch 1\n\n   \n"),  # stdout stays as printed
        stream("stream", name="stdout", text="epoch 2\n"),
        stream("stream", name="stderr", text="\n   \n"),
        stream("stream", name="stderr", text="UserWarning: a\n\nUserWarning: b\n"),
        stream("stream", name="stderr", text="WARNING: All log messages before absl::"
                                            "InitializeLog() is called are written to STDERR\n"
                                            "UserWarning: only 2 classes\n"),
        stream("stream", name="stderr", text="W0000 00:00:1795544938.1 77 cuda_dnn.cc:8310] "
                                            "Unable to register cuDNN factory\n"
                                            "E0000 00:00:1795544938.2 77 cuda_blas.cc:1418] "
                                            "Unable to register cuBLAS factory\n"),
        stream("display_data", data={"text/plain": "<Figure size 640x480 with 1 Axes>"}),
        stream("stream", name="stdout", text="done\n"),
        stream("execute_result", data={"text/plain": "0.482"}, execution_count=1),
        stream("error", ename="ValueError", evalue="bad", traceback=[]),
    ]
    quiet = nbformat.v4.new_code_cell("import tensorflow")
    quiet.outputs = [stream("stream", name="stderr", text="  from .autonotebook import tqdm\n")]
    unrun = nbformat.v4.new_code_cell("pass")
    del unrun["outputs"]  # as some editors store a cell never run
    nb.cells = [note, cell, quiet, unrun]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nb.metadata["papermill"] = {
        "input_path": "/home/me/nnlib-report/runs/pipeline/input/Q5_fer2013_fcnet.ipynb",
        "output_path": "/home/me/nnlib-report/runs/pipeline/Q5_fer2013_fcnet.ipynb",
        "parameters": {"n_trials": 2}, "duration": 12.5}
    assert clean_outputs(nb) is nb
    assert [o.output_type for o in cell.outputs] == [
        "stream", "stream", "display_data", "stream", "execute_result", "error"]
    assert cell.outputs[0].text == "epoch 1\n\n   \nepoch 2\n"
    assert (cell.outputs[1].name, cell.outputs[1].text) == (
        "stderr", "UserWarning: a\nUserWarning: b\nUserWarning: only 2 classes\n")
    assert cell.outputs[3].text == "done\n"  # not joined across the figure
    assert cell.outputs[4].data == {"text/plain": "0.482"}
    assert quiet.outputs == unrun.outputs == []
    assert "outputs" not in note
    assert nb.metadata["papermill"] == {
        "input_path": "Q5_fer2013_fcnet.ipynb", "output_path": "Q5_fer2013_fcnet.ipynb",
        "parameters": {"n_trials": 2}}  # the duration dropped: it changes every run
    assert nb.metadata["kernelspec"] == {"display_name": "Python 3 (ipykernel)",
                                         "language": "python", "name": "python3"}
    bare = nbformat.v4.new_notebook()  # run by hand: no record of papermill's to clean
    bare.metadata["papermill"] = {"input_path": "Q1.ipynb", "output_path": None}
    assert clean_outputs(bare).metadata["papermill"] == {"input_path": "Q1.ipynb",
                                                         "output_path": None}
    assert "papermill" not in clean_outputs(nbformat.v4.new_notebook()).metadata


def test_styled_tables_keep_their_html_without_the_object_address():
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("df.style")
    styled = {"text/html": "<table></table>",
              "text/plain": "<pandas.io.formats.style.Styler at 0x7f2bf1b15610>"}
    plain = {"text/html": "<table></table>", "text/plain": "   a\n0  1"}
    cell.outputs = [nbformat.v4.new_output("execute_result", data=styled, execution_count=1),
                    nbformat.v4.new_output("display_data", data=plain)]
    nb.cells = [cell]
    clean_outputs(nb)
    assert dict(cell.outputs[0].data) == {"text/html": "<table></table>"}
    assert cell.outputs[1].data["text/plain"] == "   a\n0  1"  # a real text view stays


def test_parameters_from_the_command_line():
    assert _parse_value(["n", "3"]) == ("n", 3)
    assert _parse_value(["lr", "1e-3"]) == ("lr", 0.001)
    assert _parse_value(["sizes", "[64, 32]"]) == ("sizes", [64, 32])
    assert _parse_value(["fold", "true"]) == ("fold", True)
    assert _parse_value(["members", "null"]) == ("members", None)
    assert _parse_value(["tag", '"3"']) == ("tag", "3")
    assert _parse_value(["tag", "[3,"]) == ("tag", "[3,")
    assert _parse_value(["storage", "postgresql://u@h:1/db"]) == ("storage", "postgresql://u@h:1/db")
    assert _parse_value(["flags", '{"a": true}']) == ("flags", {"a": True})


def test_notebooks_are_chosen_by_their_ids(project):
    nbs = project / "notebooks"
    for name in ("Q4_b.ipynb", "Q1_a.ipynb", "Q2_c.ipynb", "Q10_x.ipynb", "notes.ipynb",
                 "Q3_draft.txt"):
        (nbs / name).write_text("{}")
    assert pipeline.notebooks() == [nbs / "Q1_a.ipynb", nbs / "Q2_c.ipynb", nbs / "Q4_b.ipynb"]
    assert pipeline.notebooks(["q4", "Q1"]) == [nbs / "Q1_a.ipynb", nbs / "Q4_b.ipynb"]
    with pytest.raises(pipeline.UsageError) as e:
        pipeline.notebooks([])
    assert str(e.value) == ("--only needs question ids, e.g. --only Q1 Q4; leave it out to run "
                            "every notebook (Q1 Q2 Q4)")
    with pytest.raises(pipeline.UsageError) as e:
        pipeline.notebooks(["Q1", "Q9", "x"])
    assert str(e.value) == f"--only Q9 x: no such notebook in {nbs}; the ids are Q1 Q2 Q4"
    for path in nbs.glob("Q[0-9]_*.ipynb"):
        path.unlink()
    with pytest.raises(pipeline.UsageError) as e:
        pipeline.notebooks()
    assert str(e.value) == f"no notebooks Q<n>_*.ipynb in {nbs}"


def test_each_notebook_gets_the_parameters_it_declares(project):
    nbs = project / "notebooks"
    q1 = make_notebook(nbs / "Q1_a.ipynb", "pass")
    q5 = make_notebook(nbs / "Q5_b.ipynb", "pass",
                       parameters="profile = None\nstorage = None  # a URL\nn_trials = None")
    q7 = make_notebook(nbs / "Q7_c.ipynb", "pass", parameters=None)
    given = pipeline.notebook_parameters([q1, q5], {"storage": "sqlite://", "n_trials": 2})
    assert given == {q1: {}, q5: {"storage": "sqlite://", "n_trials": 2}}
    assert pipeline.notebook_parameters([q7], {}) == {q7: {}}
    with pytest.raises(pipeline.UsageError) as e:
        pipeline.notebook_parameters([q1, q5], {"n_trials": 2, "epochs": 3})
    assert str(e.value) == ("-p epochs: not a parameter of Q1_a.ipynb (its parameters: profile) "
                            "nor of Q5_b.ipynb (its parameters: profile, storage, n_trials)")
    with pytest.raises(pipeline.UsageError) as e:
        pipeline.notebook_parameters([q7], {"epochs": 3})
    assert str(e.value) == "-p epochs: not a parameter of Q7_c.ipynb (its parameters: none)"
    with pytest.raises(pipeline.UsageError) as e:
        pipeline.notebook_parameters([q1], {"profile": "full"})
    assert str(e.value) == ("-p profile: choose the profile with --profile smoke or --profile "
                            "full (it also decides where the exports go)")


def test_passwords_leave_the_urls_for_pgpassword(monkeypatch):
    monkeypatch.delenv("PGPASSWORD", raising=False)
    params = {"storage": "postgresql://user:s3cret@db.example:5432/studies", "n": 3,
              "name": "plain", "also": "postgresql://other:s3cret@db.example/studies"}
    assert pipeline.hide_passwords(params) == {
        "storage": "postgresql://user@db.example:5432/studies", "n": 3, "name": "plain",
        "also": "postgresql://other@db.example/studies"}
    assert os.environ["PGPASSWORD"] == "s3cret"
    del os.environ["PGPASSWORD"]
    assert pipeline.hide_passwords({"storage": "postgresql://u@h/db"}) == {
        "storage": "postgresql://u@h/db"}
    assert "PGPASSWORD" not in os.environ
    with pytest.raises(pipeline.UsageError) as e:
        pipeline.hide_passwords({"a": "postgresql://u:one@h/db", "b": "postgresql://u:two@h/db"})
    assert str(e.value) == ("-p: URLs with different passwords, but PGPASSWORD holds one; keep "
                            "them in ~/.pgpass and leave them out of the URLs")
    assert "PGPASSWORD" not in os.environ


def test_restore_puts_every_file_back_and_keeps_the_run_s_aside(tmp_path, monkeypatch):
    figures, generated, models = tmp_path / "figures", tmp_path / "gen" / "generated", \
        tmp_path / "models"
    (figures / "sub").mkdir(parents=True)
    generated.mkdir(parents=True)
    (figures / "change.pdf").write_bytes(b"old")
    (figures / "keep.txt").write_bytes(b"keep")
    (figures / "sub" / "gone.txt").write_bytes(b"gone")
    (figures / "sub" / "deep").mkdir()
    (figures / "sub" / "deep" / "kept.txt").write_bytes(b"deep")
    (generated / "q1.tex").write_bytes(b"tex")
    roots = (figures, generated, models)
    store, aside = tmp_path / "store", tmp_path / "aside"
    store.mkdir()
    (store / "stale").write_bytes(b"stale")
    pipeline.snapshot(roots, store)
    saved = tree(store)
    assert saved.pop("COMPLETE") == "".join(f"{r}\n" for r in roots).encode()
    assert saved == {"0/change.pdf": b"old", "0/keep.txt": b"keep",
                     "0/sub/deep/kept.txt": b"deep", "0/sub/gone.txt": b"gone",
                     "1/q1.tex": b"tex"}
    before, kept = tree(tmp_path / "figures"), (figures / "keep.txt").stat().st_ino
    # the run: changes one file, removes one, adds some (one in a folder it makes)
    (figures / "change.pdf").write_bytes(b"new")
    (figures / "sub" / "gone.txt").unlink()
    (figures / "new").mkdir()
    (figures / "new" / "added.png").write_bytes(b"added")
    (figures / "new" / "added.pdf").write_bytes(b"added too")
    (generated / "extra.tex").write_bytes(b"extra")
    models.mkdir()
    (models / "m.npz").write_bytes(b"model")
    (aside / "older").mkdir(parents=True)
    (aside / "older" / "run.txt").write_bytes(b"older")
    handlers, move = [], shutil.move

    def spy(*args):
        handlers.append(signal.getsignal(signal.SIGINT))
        return move(*args)

    monkeypatch.setattr(shutil, "move", spy)
    handler = signal.getsignal(signal.SIGINT)
    changed = pipeline.restore(roots, store, aside)
    assert sorted(changed) == sorted([figures / "change.pdf", figures / "sub" / "gone.txt",
                                      figures / "new" / "added.png", figures / "new" / "added.pdf",
                                      generated / "extra.tex", models / "m.npz"])
    assert len(changed) == 6
    assert tree(tmp_path / "figures") == before
    assert tree(generated) == {"q1.tex": b"tex"}
    assert tree(models) == {}
    assert (figures / "keep.txt").stat().st_ino == kept  # an unchanged file is left alone
    assert tree(aside) == {"figures/change.pdf": b"new", "figures/new/added.png": b"added",
                           "figures/new/added.pdf": b"added too",
                           "generated/extra.tex": b"extra", "models/m.npz": b"model"}
    assert not store.exists()
    assert handlers == [signal.SIG_IGN] * 4  # Ctrl-C cannot stop it half way
    assert signal.getsignal(signal.SIGINT) is handler


def test_restore_with_nothing_changed(tmp_path):
    figures = tmp_path / "figures"
    figures.mkdir()
    (figures / "a.pdf").write_bytes(b"a")
    pipeline.snapshot((figures,), tmp_path / "store")
    assert pipeline.restore((figures,), tmp_path / "store", tmp_path / "aside") == []
    assert tree(figures) == {"a.pdf": b"a"}
    assert not (tmp_path / "aside").exists()


def test_a_notebook_that_ran_replaces_the_tracked_one_cleaned(project, monkeypatch):
    nb = make_notebook(project / "notebooks" / "Q1_demo.ipynb", "print('ran')")
    (project / "figures" / "q1.pdf").write_bytes(b"old")
    fake = FakePapermill(monkeypatch, lambda: (project / "figures" / "q1.pdf").write_bytes(b"new"))
    target = project / "runs" / "out" / "Q1_demo.ipynb"
    roots = (project / "figures",)
    pipeline.run_notebook(nb, target, roots, {"n": 1}, timeout=7)
    work = project / "runs" / "pipeline"
    [call] = fake.calls
    assert call["input"] == str(work / "input" / "Q1_demo.ipynb")
    assert call["output"] == str(work / "Q1_demo.ipynb")
    assert call["log"] == str(work / "Q1_demo.log")
    assert call["stderr_file"] is call["stdout_file"]
    assert (call["parameters"], call["cwd"], call["execution_timeout"]) == (
        {"n": 1}, str(project / "notebooks"), 7)
    assert (call["log_output"], call["progress_bar"], call["shutdown_kernel"]) == (
        True, True, "immediate")
    assert call["saved"] == ["0/q1.pdf", "COMPLETE"]
    done = nbformat.read(target, as_version=4)
    assert [dict(o) for o in done.cells[-1].outputs] == [
        {"output_type": "stream", "name": "stdout", "text": "ran\n"}]
    assert done.metadata["papermill"] == {"input_path": "Q1_demo.ipynb",
                                          "output_path": "Q1_demo.ipynb"}
    assert target.read_text().endswith("}\n")
    assert (project / "figures" / "q1.pdf").read_bytes() == b"new"
    assert not (work / "Q1_demo.ipynb").exists()  # the copy is there only after a failure
    assert not (work / "snapshot").exists()
    pipeline.run_notebook(nb, target, roots, {})
    assert fake.calls[-1]["parameters"] is None
    assert fake.calls[-1]["execution_timeout"] is None


@pytest.mark.parametrize("raised, message", [
    (error(), "failed in cell 3: ValueError: bad value"),
    (RuntimeError("Kernel died\n before replying"), "failed: RuntimeError: Kernel died before "
                                                    "replying"),
])
def test_a_failed_notebook_leaves_every_tracked_file_as_it_was(project, monkeypatch, raised,
                                                               message):
    nb = make_notebook(project / "notebooks" / "Q1_demo.ipynb", "raise ValueError")
    (project / "figures" / "q1.pdf").write_bytes(b"old")
    (project / "report" / "generated" / "q1.json").write_bytes(b"{}")

    def effect():
        (project / "figures" / "q1.pdf").write_bytes(b"new")
        (project / "figures" / "q1_more.png").write_bytes(b"more")
        (project / "models" / "q1.npz").write_bytes(b"model")
        raise raised

    FakePapermill(monkeypatch, effect)
    before = tree(project)
    roots = (project / "figures", project / "report" / "generated", project / "models")
    with pytest.raises(pipeline.NotebookFailed) as e:
        pipeline.run_notebook(nb, nb, roots)
    assert str(e.value) == (
        f"Q1_demo.ipynb {message}; see runs/pipeline/Q1_demo.ipynb and runs/pipeline/"
        "Q1_demo.log; figures/, report/generated/, models/ are as they were (the files of the "
        "failed run: runs/pipeline/failed/Q1_demo/)")
    assert tree(project) == before
    failed = nbformat.read(project / "runs" / "pipeline" / "Q1_demo.ipynb", as_version=4)
    assert failed.cells[-1].outputs[0].text == "ran\n"  # the executed copy stays to be read
    assert tree(project / "runs" / "pipeline" / "failed" / "Q1_demo") == {
        "figures/q1.pdf": b"new", "figures/q1_more.png": b"more", "models/q1.npz": b"model"}


def test_a_failure_that_changed_nothing_and_a_smoke_run_say_less(project, monkeypatch):
    nb = make_notebook(project / "notebooks" / "Q1_demo.ipynb", "raise ValueError")

    def effect():
        raise error(exec_count=2)

    FakePapermill(monkeypatch, effect)
    see = "see runs/pipeline/Q1_demo.ipynb and runs/pipeline/Q1_demo.log"
    with pytest.raises(pipeline.NotebookFailed) as e:
        pipeline.run_notebook(nb, nb, (project / "figures",))
    assert str(e.value) == (f"Q1_demo.ipynb failed in cell 2: ValueError: bad value; {see}; "
                            "figures/ are as they were")
    with pytest.raises(pipeline.NotebookFailed) as e:
        pipeline.run_notebook(nb, nb)
    assert str(e.value) == f"Q1_demo.ipynb failed in cell 2: ValueError: bad value; {see}"


@pytest.mark.parametrize("raised", [KeyboardInterrupt(), error("KeyboardInterrupt", "")])
def test_ctrl_c_in_the_pipeline_or_the_kernel_puts_the_files_back(project, monkeypatch,
                                                                  raised):
    nb = make_notebook(project / "notebooks" / "Q1_demo.ipynb", "train()")
    (project / "figures" / "q1.pdf").write_bytes(b"old")

    def effect():
        (project / "figures" / "q1.pdf").write_bytes(b"half")
        raise raised

    FakePapermill(monkeypatch, effect)
    before = tree(project)
    with pytest.raises(pipeline.Interrupted) as e:
        pipeline.run_notebook(nb, nb, (project / "figures",))
    assert isinstance(e.value, KeyboardInterrupt)
    assert str(e.value) == ("Q1_demo.ipynb stopped; see runs/pipeline/Q1_demo.ipynb and "
                            "runs/pipeline/Q1_demo.log; figures/ are as they were (the files of "
                            "the failed run: runs/pipeline/failed/Q1_demo/)")
    assert tree(project) == before


def test_restore_moves_nothing_without_its_complete_snapshot(tmp_path):
    figures = tmp_path / "figures"
    figures.mkdir()
    (figures / "q1.pdf").write_bytes(b"tracked")
    store = tmp_path / "runs" / "store"  # its parent made too
    for made in (False, True):  # no snapshot at all; one cut short (no COMPLETE)
        if made:
            pipeline.snapshot((figures,), store)
            (store / pipeline.COMPLETE).unlink()
        with pytest.raises(pipeline.SnapshotMissing, match=re.escape(
                f"the copy of {figures}/, {tmp_path}/ taken before the run ({store}) is "
                "missing, so nothing was put back or moved")):
            pipeline.restore((figures, tmp_path), store, tmp_path / "aside")
        assert tree(figures) == {"q1.pdf": b"tracked"}
        assert not (tmp_path / "aside").exists()


def test_a_run_whose_snapshot_vanished_leaves_the_tracked_files(project, monkeypatch):
    nb = make_notebook(project / "notebooks" / "Q1_demo.ipynb", "train()")
    (project / "figures" / "q1.pdf").write_bytes(b"old")

    def effect():  # something else removes the copy, then the run fails
        shutil.rmtree(project / "runs" / "pipeline" / "snapshot")
        (project / "figures" / "q1.pdf").write_bytes(b"new")
        raise KeyboardInterrupt

    FakePapermill(monkeypatch, effect)
    with pytest.raises(pipeline.Interrupted, match=r"the copy of figures/ taken before the run "
                       r"\(runs/pipeline/snapshot\) is missing, so nothing was put back or "
                       r"moved: `git status` shows what the failed run changed$"):
        pipeline.run_notebook(nb, nb, (project / "figures",))
    assert tree(project / "figures") == {"q1.pdf": b"new"}  # not deleted, not moved


def test_a_second_run_in_one_checkout_is_refused(project, monkeypatch, capsys):
    from nnlib import locks
    make_notebook(project / "notebooks" / "Q1_demo.ipynb", "pass")
    fake = FakePapermill(monkeypatch)
    (project / "runs" / "pipeline").mkdir(parents=True)
    fd = locks.acquire(project / "runs" / "pipeline" / pipeline.LOCK)  # another run holds it
    try:
        with pytest.raises(SystemExit) as e:
            pipeline.main(["--profile", "smoke"])
    finally:
        locks.release(fd)
    assert e.value.code == 2 and not fake.calls
    assert re.fullmatch(r"error: another run of the pipeline, process \d+ on \S+, is using this "
                        r"checkout \(it holds runs/pipeline/pipeline\.lock\); wait until it has "
                        r"finished\n", capsys.readouterr().err)
    pipeline.main(["--profile", "smoke"])  # once it is given back, a run goes ahead
    assert len(fake.calls) == 1


def test_paths_outside_the_project_are_shown_whole(tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline, "PROJ_ROOT", tmp_path / "project")
    assert pipeline._shown(tmp_path / "project" / "runs" / "a.log") == Path("runs/a.log")
    assert pipeline._shown(tmp_path / "elsewhere" / "a.log") == tmp_path / "elsewhere" / "a.log"


def test_run_under_the_full_profile(project, monkeypatch):
    nbs = project / "notebooks"
    q1 = make_notebook(nbs / "Q1_a.ipynb", "pass")
    q5 = make_notebook(nbs / "Q5_b.ipynb", "pass",
                       parameters="profile = None\nstorage = None\nn_trials = None")
    (project / "models" / "m.npz").write_bytes(b"m")
    (project / "figures" / "f.pdf").write_bytes(b"f")
    (project / "report" / "generated" / "g.tex").write_bytes(b"g")
    monkeypatch.chdir(project)
    monkeypatch.setenv("NNLIB_DATA", "data")
    monkeypatch.setenv("NNLIB_CACHE", "cache")
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.delenv("OPENBLAS_CORETYPE", raising=False)
    monkeypatch.delenv("NNLIB_THREADS", raising=False)
    monkeypatch.setattr(pipeline.platform, "machine", lambda: "x86_64")
    fake = FakePapermill(monkeypatch)
    pipeline.run("full", params={"n_trials": 2, "storage": "postgresql://u:pw@h/db"})
    assert [(c["input"].rsplit("/", 1)[1], c["parameters"]) for c in fake.calls] == [
        ("Q1_a.ipynb", None), ("Q5_b.ipynb", {"storage": "postgresql://u@h/db", "n_trials": 2})]
    assert {(c["NNLIB_PROFILE"], c["PGPASSWORD"], c["NNLIB_DATA"], c["NNLIB_CACHE"])
            for c in fake.calls} == {("full", "pw", str(project / "data"), str(project / "cache"))}
    assert fake.calls[0]["saved"] == ["0/f.pdf", "1/g.tex", "2/m.npz", "COMPLETE"]
    # the BLAS arithmetic that trained the committed networks, unless the user set another
    assert {c["blas"] for c in fake.calls} == {("Haswell", "2")}
    monkeypatch.setenv("NNLIB_THREADS", "all")
    pipeline.run("full", ["Q1"])
    assert fake.calls[-1]["blas"] == ("Haswell", "all")
    for nb in (q1, q5):
        assert nbformat.read(nb, as_version=4).cells[-1].outputs[0].text == "ran\n"
    assert not (project / "runs" / "full").exists()


def test_run_under_the_smoke_profile_leaves_the_tracked_notebooks(project, monkeypatch,
                                                                   capsys):
    q1 = make_notebook(project / "notebooks" / "Q1_a.ipynb", "pass")
    (project / "figures" / "f.pdf").write_bytes(b"f")
    tracked = q1.read_bytes()
    monkeypatch.setenv("NNLIB_CACHE", "")
    monkeypatch.delenv("OPENBLAS_CORETYPE", raising=False)
    monkeypatch.delenv("NNLIB_THREADS", raising=False)
    fake = FakePapermill(monkeypatch)
    pipeline.run("smoke", ["Q1"], timeout=9)
    [call] = fake.calls
    assert (call["NNLIB_PROFILE"], call["saved"], call["execution_timeout"]) == ("smoke", [], 9)
    assert call["NNLIB_CACHE"] == ""
    assert call["blas"] == (None, None)  # the smoke profile leaves BLAS its own ways
    shown = capsys.readouterr()
    assert "notebooks (smoke): 100%" in shown.err
    assert re.fullmatch(r"Q1_a\.ipynb: \d s\n", shown.out)  # how long it took
    assert q1.read_bytes() == tracked
    out = project / "runs" / "smoke" / "notebooks" / "Q1_a.ipynb"
    assert nbformat.read(out, as_version=4).cells[-1].outputs[0].text == "ran\n"


def one_line(capsys):
    """The one line on stderr, below the progress bar of the notebooks if there is one."""
    err = capsys.readouterr().err
    *bars, line = err.removesuffix("\n").split("\n")
    assert err.endswith("\n") and all("nb/s]" in bar for bar in bars), err
    return line


@pytest.mark.parametrize("argv, message", [
    (["--only"], "error: --only needs question ids, e.g. --only Q1 Q4; leave it out to run "
                 "every notebook (Q1 Q5)"),
    (["--only", "Q9"], "error: --only Q9: no such notebook in {nbs}; the ids are Q1 Q5"),
    (["--profile", "smoke", "-p", "profile", "full"],
     "error: -p profile: choose the profile with --profile smoke or --profile full (it also "
     "decides where the exports go)"),
    (["--only", "Q1", "-p", "storage", "sqlite://"],
     "error: -p storage: not a parameter of Q1_a.ipynb (its parameters: profile)"),
    (["--profile", "fast"], "error: argument --profile: invalid choice: 'fast' (choose from "
                            "'smoke', 'full') (see --help)"),
    (["-p", "n"], "error: argument -p/--param: expected 2 arguments (see --help)"),
])
def test_mistakes_get_one_line_and_status_2(project, monkeypatch, capsys, argv, message):
    make_notebook(project / "notebooks" / "Q1_a.ipynb", "pass")
    make_notebook(project / "notebooks" / "Q5_b.ipynb", "pass",
                  parameters="profile = None\nstorage = None")
    fake = FakePapermill(monkeypatch)
    before = tree(project)
    with pytest.raises(SystemExit) as e:
        pipeline.main(argv)
    assert e.value.code == 2
    assert one_line(capsys) == message.format(nbs=project / "notebooks")
    assert fake.calls == []
    assert tree(project) == before
    assert not (project / "runs").exists()


@pytest.mark.parametrize("raised, status, message", [
    (error(), 1, "error: Q1_a.ipynb failed in cell 3: ValueError: bad value; see "
                 "runs/pipeline/Q1_a.ipynb and runs/pipeline/Q1_a.log; figures/, "
                 "report/generated/, models/ are as they were"),
    (KeyboardInterrupt(), 130, "interrupted: Q1_a.ipynb stopped; see runs/pipeline/Q1_a.ipynb "
                               "and runs/pipeline/Q1_a.log; figures/, report/generated/, "
                               "models/ are as they were"),
])
def test_a_failed_run_gets_one_line_and_its_status(project, monkeypatch, capsys, raised,
                                                   status, message):
    make_notebook(project / "notebooks" / "Q1_a.ipynb", "pass")

    def effect():
        raise raised

    FakePapermill(monkeypatch, effect)
    with pytest.raises(SystemExit) as e:
        pipeline.main(["--only", "Q1"])
    assert e.value.code == status
    assert one_line(capsys) == message


def test_ctrl_c_between_notebooks(monkeypatch, capsys):
    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "run", interrupted)
    with pytest.raises(SystemExit) as e:
        pipeline.main([])
    assert e.value.code == 130
    assert one_line(capsys) == "interrupted: no notebook was running; no file is half written"


def test_the_help_says_what_each_option_does(monkeypatch, capsys):
    with pytest.raises(SystemExit) as e:
        pipeline.main(["--help"])
    assert e.value.code == 0
    shown = " ".join(capsys.readouterr().out.split())  # as wrapped for no terminal width
    for text in (
            "usage: python -m nnlib.pipeline [-h] [--profile {smoke,full}] [--only [ONLY ...]] "
            "[--timeout TIMEOUT] [-p NAME VALUE]",
            "Re-execute the numbered notebooks with papermill, in order.",
            "--profile {smoke,full} smoke (minutes, a test) or full (the results; 2 to 3.5 hours)",
            "--only [ONLY ...] question ids, e.g. Q1 Q4",
            "--timeout TIMEOUT seconds per cell",
            "-p NAME VALUE, --param NAME VALUE a papermill parameter of the notebooks, e.g. -p "
            "storage URL (VALUE is read as JSON when it parses, else as a string); a password in "
            "a URL is passed in PGPASSWORD instead",
            "The smoke profile runs every notebook on small subsets in a few minutes and writes "
            "into runs/smoke/; the full profile reproduces the committed results (2 to 3.5 hours "
            "on two cores from a fresh clone) and rewrites the notebooks, figures/, "
            "report/generated/ and models/."):
        assert text in shown


def test_the_command_line_reaches_the_run(project, monkeypatch, capsys):
    make_notebook(project / "notebooks" / "Q1_a.ipynb", "pass",
                  parameters="profile = None\nsizes = None\nname = None")
    fake = FakePapermill(monkeypatch)
    pipeline.main(["--profile", "smoke", "--timeout", "5", "-p", "sizes", "[64, 32]",
                   "--param", "name", "q1"])
    [call] = fake.calls
    assert (call["NNLIB_PROFILE"], call["execution_timeout"], call["parameters"]) == (
        "smoke", 5, {"sizes": [64, 32], "name": "q1"})
    assert "error" not in capsys.readouterr().err


def test_explicit_parameters_win_and_stale_injected_cells_go(project, monkeypatch):
    """A notebook once run with -p epochs 5 (its injected cell committed) runs again
    without it: the profile comes from --profile, the budget from the notebook."""
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("profile = None\nepochs = None")
    params.metadata["tags"] = ["parameters"]
    stale = nbformat.v4.new_code_cell('# Parameters\nprofile = "full"\nepochs = 5\n')
    stale.metadata["tags"] = ["injected-parameters"]
    body = nbformat.v4.new_code_cell(
        "from nnlib.export import get_profile\nprint(get_profile(profile), epochs)")
    nb.cells = [params, stale, body]
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata["papermill"] = {"parameters": {"profile": "full", "epochs": 5}}
    nbformat.write(nb, project / "notebooks" / "Q9_demo.ipynb")
    monkeypatch.delenv("NNLIB_PROFILE", raising=False)
    out = project / "runs" / "smoke" / "notebooks" / "Q9_demo.ipynb"

    def printed(path):
        nb = nbformat.read(path, as_version=4)
        return nb.cells[-1].outputs[0]["text"].strip(), len(nb.cells), \
            nb.metadata["papermill"].get("parameters")

    pipeline.run("smoke", ["Q9"])
    assert printed(out) == ("smoke None", 2, None)
    pipeline.run("smoke", ["Q9"], params={"epochs": 3})
    assert printed(out) == ("smoke 3", 3, {"epochs": 3})


def test_clean_outputs_drops_the_run_times_and_markdown_outputs():
    import nbformat

    from nnlib.pipeline import clean_outputs
    nb = nbformat.v4.new_notebook()
    nb.metadata["papermill"] = {"start_time": "2026-01-01T00:00:00", "end_time": "x",
                                "duration": 3.5, "exception": None, "version": "2.7.0"}
    code = nbformat.v4.new_code_cell("1")
    code.metadata["execution"] = {"iopub.execute_input": "2026-01-01T00:00:00Z"}
    code.metadata["papermill"] = {"duration": 0.1, "start_time": "a", "end_time": "b",
                                  "status": "completed", "exception": False}
    text = nbformat.v4.new_markdown_cell("# title")
    text["outputs"], text["execution_count"] = [], None  # as a cell turned into markdown
    nb.cells = [code, text]
    clean_outputs(nb)
    assert nb.metadata["papermill"] == {"exception": None, "version": "2.7.0"}
    assert code.metadata == {"papermill": {"status": "completed", "exception": False}}
    assert "outputs" not in text and "execution_count" not in text
    nbformat.validate(nb)


def test_clean_outputs_gives_styled_tables_the_same_ids_on_every_run():
    import pandas as pd
    df = pd.DataFrame({"a": [1.5, 2.25], "b": ["x", "T_00000"]})

    def ran():
        """A notebook as one run leaves it: two cells showing a styled table each (pandas
        draws a new random id for each), the second with one table twice."""
        nb = nbformat.v4.new_notebook()
        cells = [nbformat.v4.new_code_cell("t"), nbformat.v4.new_code_cell("t; t")]
        for cell, n in zip(cells, (1, 2)):
            cell.outputs = [nbformat.v4.new_output(
                "display_data", {"text/html": df.style.format(precision=1).to_html()})
                for _ in range(n)]
        nb.cells = cells
        return nb

    def table_id(html):
        return re.search(r'<table id="([^"]+)"', html).group(1)

    first, second = ran(), ran()
    html = [o.data["text/html"] for c in first.cells for o in c.outputs]
    assert len({table_id(h) for h in html}) == 3  # three random ids
    clean_outputs(first)
    clean_outputs(second)
    assert [c.outputs for c in first.cells] == [c.outputs for c in second.cells]
    cleaned = [o.data["text/html"] for c in first.cells for o in c.outputs]
    assert [table_id(h) for h in cleaned] == ["T_cell0_0_0", "T_cell1_0_0", "T_cell1_1_0"]
    for before, after in zip(html, cleaned):
        # the same table: only its id changed, in every id and CSS rule that names it
        assert before.count(table_id(before)) > 2
        assert after == before.replace(table_id(before), table_id(after))
        assert "T_00000" in after  # a value that looks like an id stays
