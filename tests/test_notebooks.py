"""The committed notebooks are valid nbformat and show results only: no machine paths in
papermill's record, no output on a cell that cannot have one."""
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("Q[0-9]_*.ipynb"))


def test_there_are_notebooks():
    assert len(NOTEBOOKS) == 8


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_valid_nbformat(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)  # raises on, e.g., a markdown cell carrying "outputs"
    for cell in nb.cells:
        if cell.cell_type != "code":
            assert "outputs" not in cell and "execution_count" not in cell


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_papermill_record_names_no_machine_folder(path):
    record = nbformat.read(path, as_version=4).metadata.get("papermill", {})
    for key in ("input_path", "output_path"):
        assert "/" not in str(record.get(key) or ""), (key, record.get(key))
    text = path.read_text()
    for folder in ("/work/", "/home/", "/root/", "/tmp/"):
        assert folder not in text, f"{path.name} names the machine folder {folder}"
