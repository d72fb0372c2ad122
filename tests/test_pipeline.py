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


def test_parameters_from_the_command_line():
    assert _parse_value(["n", "3"]) == ("n", 3)
    assert _parse_value(["storage", "postgresql://u@h:1/db"]) == ("storage", "postgresql://u@h:1/db")
    assert _parse_value(["flags", '{"a": true}']) == ("flags", {"a": True})
