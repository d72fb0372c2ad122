import json

import pandas as pd
import pytest

from nnlib import export
from nnlib.export import Exporter, get_profile, macro_name
from nnlib.pipeline import notebooks


def test_macro_names_have_no_digits():
    assert macro_name(4, "test_accuracy") == "QFourTestAccuracy"
    assert macro_name(5, "l2_val_accuracy") == "QFiveLTwoValAccuracy"
    assert macro_name(6, "macro_f1") == "QSixMacroFOne"


def test_explicit_profile_beats_the_environment(monkeypatch):
    monkeypatch.delenv("NNLIB_PROFILE", raising=False)
    assert get_profile(None) == "full"
    monkeypatch.setenv("NNLIB_PROFILE", "smoke")
    assert get_profile(None) == "smoke" and get_profile("full") == "full"
    monkeypatch.setenv("NNLIB_PROFILE", "huge")
    with pytest.raises(ValueError, match="NNLIB_PROFILE"):
        get_profile(None)
    with pytest.raises(ValueError, match="the profile parameter"):
        get_profile("fast")


def test_budget_parameters_override_the_profile():
    from nnlib.export import choose_budget
    budgets = {"full": {"epochs": 60, "trials": 16}, "smoke": {"epochs": 2, "trials": 2}}
    assert choose_budget("full", budgets, epochs=None, trials=None) == budgets["full"]
    assert choose_budget("smoke", budgets, epochs=5, trials=None) == {"epochs": 5, "trials": 2}
    with pytest.raises(ValueError, match=r"unknown budget parameter\(s\) \['epoch'\]"):
        choose_budget("full", budgets, epoch=3)


def test_smoke_exports_stay_out_of_the_report(tmp_path, monkeypatch):
    monkeypatch.setattr(export, "RUNS_DIR", tmp_path / "runs")
    ex = Exporter(4, "smoke")
    ex.values(test_accuracy=0.6074, best_epoch=54, arch="2048-1024", loss=11731.9, lr=0.0162,
              reg=9.083e-05)
    ex.table(pd.DataFrame({"a": [1]}), "t", index=False)
    gen = tmp_path / "runs" / "smoke" / "generated"
    assert json.loads((gen / "q4.json").read_text())["best_epoch"] == 54
    macros = (gen / "q4_values.tex").read_text()
    assert "\\newcommand{\\QFourTestAccuracy}{60.7\\%}" in macros
    assert "\\newcommand{\\QFourBestEpoch}{54}" in macros
    assert "\\newcommand{\\QFourLoss}{11{,}732}" in macros  # no exponent for thousands
    assert "\\newcommand{\\QFourLr}{0.0162}" in macros
    assert "\\newcommand{\\QFourReg}{\\ensuremath{9.083\\times10^{-5}}}" in macros
    assert (gen / "q4_t.tex").read_text().startswith("\\begin{tabular}")


def test_pipeline_finds_the_numbered_notebooks():
    names = [nb.name.split("_")[0] for nb in notebooks()]
    assert names == sorted(names) and {"Q1", "Q4", "Q5", "Q6"} <= set(names)
    assert [nb.name for nb in notebooks(["q2"])] == ["Q2_dropout.ipynb"]


def test_an_unchanged_figure_exports_byte_for_byte(tmp_path, monkeypatch):
    import time

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    monkeypatch.setattr(export, "RUNS_DIR", tmp_path / "runs")
    ex = Exporter(4, "smoke")
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    assert ex.figure(fig, "line") is None  # a cell ending with it shows no path
    pdf = ex.figures_dir / "q4_line.pdf"
    first = (pdf.read_bytes(), pdf.with_suffix(".png").read_bytes())
    time.sleep(1.1)  # a date in the file would now differ
    ex.figure(fig, "line")
    assert (pdf.read_bytes(), pdf.with_suffix(".png").read_bytes()) == first
    plt.close(fig)


def test_project_root_without_an_editable_install(tmp_path, monkeypatch):
    import nnlib.paths as paths
    project = tmp_path / "proj"
    (project / "notebooks").mkdir(parents=True)
    (project / "pyproject.toml").write_text("[project]\nname = 'nnlib'\n")
    (project / "sub").mkdir()
    site = tmp_path / "site-packages" / "nnlib"
    site.mkdir(parents=True)
    monkeypatch.setattr(paths, "__file__", str(site / "paths.py"))
    monkeypatch.delenv("NNLIB_ROOT", raising=False)
    assert paths.find_root(project / "sub") == project
    assert paths.find_root(tmp_path) == tmp_path  # nothing found: the working directory
    monkeypatch.setenv("NNLIB_ROOT", str(tmp_path))
    assert paths.find_root(project) == tmp_path


@pytest.mark.parametrize("v, shown", [(0.4820284, "0.482"), (91.6, "91.6"), (2.30271, "2.303"),
                                      (12345.6, "12,346"), (9.854443e-09, "9.85e-09"),
                                      (0.0, "0"), (-0.25, "-0.25"), (float("nan"), "nan")])
def test_tables_show_floats_briefly(v, shown):
    from nnlib.export import format_float
    assert format_float(v) == shown


def test_figure_texts_are_legible_at_print_size():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nnlib.export import PRINT_WIDTH_IN, legible
    fig, ax = plt.subplots(figsize=(2 * PRINT_WIDTH_IN, 2))  # shrunk to half in print
    ax.plot([0, 1], label="a")
    ax.legend(fontsize=6)
    ax.annotate("n=3", (0.5, 0.5), fontsize=5)
    ax.set_xlabel("epoch", fontsize=20)
    assert legible(fig) >= 7 - 1e-6
    fig.canvas.draw()
    scale = PRINT_WIDTH_IN / fig.get_tightbbox(fig.canvas.get_renderer()).width
    assert min(t.get_fontsize() for t in ax.get_legend().get_texts()) * scale >= 7 - 1e-6
    assert ax.xaxis.label.get_fontsize() == 20  # large enough already: unchanged
    small, ax2 = plt.subplots(figsize=(3, 2))  # printed at its own size
    ax2.set_title("t", fontsize=6)
    legible(small)
    assert ax2.title.get_fontsize() >= 7


def test_tables_use_the_report_notation(tmp_path, monkeypatch):
    import pandas as pd
    monkeypatch.setattr("nnlib.export.RUNS_DIR", tmp_path)
    ex = Exporter(5, "smoke")
    ex.table(pd.DataFrame({"F1 (CNN)": [0.5], "setting": ["L2 lambda = 0.001"],
                           "F10": [1]}), "t", index=False)
    tex = (tmp_path / "smoke" / "generated" / "q5_t.tex").read_text()
    assert "$F_1$ (CNN)" in tex and r"L2 $\lambda$ = 0.001" in tex and "F10" in tex
