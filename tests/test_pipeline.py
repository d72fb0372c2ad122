import nbformat

from nnlib.pipeline import _parse_value, clean_outputs


def test_progress_bars_and_start_up_logs_leave_the_notebook():
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("train()")
    stream = nbformat.v4.new_output
    cell.outputs = [
        stream("stream", name="stderr", text="\r  0%|          | 0/10 [00:00<?, ?batch/s]"),
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
    assert _parse_value(["storage", "postgresql://u@h:1/db"]) == ("storage", "postgresql://u@h:1/db")
    assert _parse_value(["flags", '{"a": true}']) == ("flags", {"a": True})


def test_explicit_parameters_win_and_stale_injected_cells_go(tmp_path, monkeypatch):
    """A notebook once run with -p epochs 5 (its injected cell committed) runs again
    without it: the profile comes from --profile, the budget from the notebook."""
    from nnlib import pipeline
    nb_dir, runs = tmp_path / "notebooks", tmp_path / "runs"
    nb_dir.mkdir()
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("profile = None\nepochs = None")
    params.metadata["tags"] = ["parameters"]
    stale = nbformat.v4.new_code_cell('# Parameters\nprofile = "full"\nepochs = 5\n')
    stale.metadata["tags"] = ["injected-parameters"]
    body = nbformat.v4.new_code_cell(
        "from nnlib.export import get_profile\nprint(get_profile(profile), epochs)")
    nb.cells = [params, stale, body]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, nb_dir / "Q9_demo.ipynb")
    monkeypatch.setattr(pipeline, "NOTEBOOKS_DIR", nb_dir)
    monkeypatch.setattr(pipeline, "RUNS_DIR", runs)
    monkeypatch.delenv("NNLIB_PROFILE", raising=False)

    def printed(path):
        cells = nbformat.read(path, as_version=4).cells
        return cells[-1].outputs[0]["text"].strip(), len(cells)

    pipeline.run("smoke", ["Q9"])
    assert printed(runs / "smoke" / "notebooks" / "Q9_demo.ipynb") == ("smoke None", 2)
    pipeline.run("smoke", ["Q9"], params={"profile": "full", "epochs": 3})
    assert printed(runs / "smoke" / "notebooks" / "Q9_demo.ipynb") == ("full 3", 3)
