import json
import re

import numpy as np
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
    with pytest.raises(ValueError, match=r"^profile must be one of \('smoke', 'full'\), got "
                                         r"'huge' \(check NNLIB_PROFILE\)$"):
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


@pytest.mark.parametrize("v, shown", [
    (0.4820284, "0.482"), (91.6, "91.6"), (2.30271, "2.303"), (12345.6, "12,346"),
    (9.854443e-09, "9.85e-09"), (0.0, "0"), (-0.25, "-0.25"), (float("nan"), "nan"),
    (float("inf"), "inf"), (float("-inf"), "-inf"), (-12345.6, "-12,346"), (1000.0, "1,000"),
    (999.4, "999.4"), (999.96, "1,000"), (1234567.0, "1,234,567"), (123.456, "123.5"),
    (0.001, "0.001"), (0.000999, "9.99e-04"), (-1e-05, "-1.00e-05")])
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


# ------------------------------------------------------------------ values and macros
def smoke_exporter(tmp_path, monkeypatch, question=4):
    monkeypatch.setattr(export, "RUNS_DIR", tmp_path / "runs")
    return Exporter(question, "smoke")


def macros(ex):
    """{macro name: body} of the exporter's values file, its comment line checked."""
    lines = (ex.generated_dir / f"q{ex.question}_values.tex").read_text().splitlines()
    assert lines[0] == f"% generated by notebook Q{ex.question} ({ex.profile} profile)"
    found = {}
    for line in lines[1:]:
        m = re.fullmatch(r"\\newcommand\{\\(\w+)\}\{(.*)\}", line)
        assert m, line
        found[m.group(1)] = m.group(2)
    return found


def shown(tmp_path, monkeypatch, key, value):
    ex = smoke_exporter(tmp_path, monkeypatch)
    ex.values(**{key: value})
    return macros(ex)[macro_name(4, key)]


@pytest.mark.parametrize("key, value, expected", [
    # percentages: keys ending in accuracy, rate or acc, values in [0, 1]
    ("test_accuracy", 0.6074, r"60.7\%"), ("agreement_rate", 0.936, r"93.6\%"),
    ("val_acc", 1.0, r"100.0\%"), ("val_acc", 0.0, r"0.0\%"), ("val_acc", 0.99951, r"100.0\%"),
    ("test_accuracy", 1.5, "1.5"), ("test_accuracy", -0.25, "-0.25"),
    ("accuracy_gap", 0.5, "0.5"), ("learning_rate", 0.0162, "0.0162"),
    ("min_rate", 144.0, "144"),
    # other floats: 4 significant digits, thousands whole with separators, exponents as 10^n
    ("loss", 11731.9, "11{,}732"), ("loss", 1000.0, "1{,}000"), ("loss", 999.96, "1{,}000"),
    ("loss", 999.4, "999.4"), ("loss", -2500.4, "-2{,}500"), ("loss", 0.0, "0"),
    ("loss", -0.0, "0"), ("loss", 4.0, "4"), ("loss", 30.52, "30.52"),
    ("loss", 0.000921, "0.000921"), ("loss", 0.0015684, "0.001568"),
    ("loss", 999999999.0, "999{,}999{,}999"), ("loss", 1e9, r"\ensuremath{1\times10^{9}}"),
    ("loss", 2.5e12, r"\ensuremath{2.5\times10^{12}}"),
    ("reg", 9.0832e-05, r"\ensuremath{9.083\times10^{-5}}"),
    ("err", -3.13e-09, r"\ensuremath{-3.13\times10^{-9}}"), ("err", float("nan"), "nan"),
    # ints with separators, booleans as words
    ("n", 0, "0"), ("n", 999, "999"), ("n", 1000, "1{,}000"), ("n", 3589, "3{,}589"),
    ("n", -12345, "-12{,}345"), ("n", 12860803, "12{,}860{,}803"),
    ("flip", True, "yes"), ("flip", False, "no"),
    # lists: each item formatted, text escaped
    ("seeds", [9, 10, 8], "9, 10, 8"), ("seeds", (1000, 2), "1{,}000, 2"),
    ("member_accuracy", [0.5, 0.25], r"50.0\%, 25.0\%"),
    ("networks", ["vgg_small", "vgg"], r"vgg\_small, vgg"), ("flags", [True, False], "yes, no"),
    # text: LaTeX's special characters escaped, LaTeX text kept
    ("run", "T2_a0.5_150ep", r"T2\_a0.5\_150ep"), ("arch", "964-953", "964-953"),
    ("note", "a&b%c$d#e_f{g}h~i^j\\k", r"a\&b\%c\$d\#e\_f\{g\}h\textasciitilde{}i"
                                       r"\textasciicircum{}j\textbackslash{}k"),
    ("note", "100% of 5 & up", r"100\% of 5 \& up"),
    ("symbol", export.Latex(r"$\lambda$"), r"$\lambda$"),
    # NumPy scalars as the Python values they hold
    ("test_accuracy", np.float64(0.5), r"50.0\%"), ("loss", np.float32(0.25), "0.25"),
    ("n", np.int64(3589), "3{,}589"), ("n", np.uint8(7), "7"), ("flip", np.bool_(True), "yes"),
    ("seeds", [np.int64(1000), np.int32(2)], "1{,}000, 2"),
])
def test_values_are_shown_as_the_report_writes_them(tmp_path, monkeypatch, key, value, expected):
    assert shown(tmp_path, monkeypatch, key, value) == expected


def test_numpy_scalars_are_stored_as_python_values(tmp_path, monkeypatch):
    ex = smoke_exporter(tmp_path, monkeypatch)
    ex.values(a=np.float64(0.5), b=np.float32(0.25), c=np.int64(3), d=np.bool_(False),
              e=[np.int64(1), 2], f="x")
    text = (ex.generated_dir / "q4.json").read_text()
    assert text == ('{\n  "a": 0.5,\n  "b": 0.25,\n  "c": 3,\n  "d": false,\n  "e": [\n'
                    '    1,\n    2\n  ],\n  "f": "x"\n}\n')
    assert [type(ex.results[k]) for k in "abcdf"] == [float, float, int, bool, str]
    ex.values(z=1, y=2)  # the file lists the keys sorted, whatever the order given
    assert list(json.loads((ex.generated_dir / "q4.json").read_text())) == list("abcdefyz")
    assert [type(v) for v in ex.results["e"]] == [int, int]


@pytest.mark.parametrize("value, kind", [(np.array([1.0, 2.0]), "ndarray"), (None, "NoneType"),
                                         ({"a": 1}, "dict"), ([1, None], "NoneType")])
def test_values_the_macros_cannot_show_are_refused(tmp_path, monkeypatch, value, kind):
    ex = smoke_exporter(tmp_path, monkeypatch)
    ex.values(kept=1)
    before = {p.name: p.read_bytes() for p in ex.generated_dir.iterdir()}
    with pytest.raises(TypeError, match=rf"^value 'bad' is a {kind}: export a number, a bool, "
                                        r"text or a list of them"):
        ex.values(bad=value)
    assert ex.results == {"kept": 1}
    assert {p.name: p.read_bytes() for p in ex.generated_dir.iterdir()} == before


def test_values_accumulate_in_key_order(tmp_path, monkeypatch):
    ex = smoke_exporter(tmp_path, monkeypatch, question=6)
    ex.values(zeta=1, alpha_rate=0.5)
    ex.values(mid="m", zeta=2)  # a later value replaces the earlier one
    lines = (ex.generated_dir / "q6_values.tex").read_text().splitlines()
    assert lines == ["% generated by notebook Q6 (smoke profile)",
                     r"\newcommand{\QSixAlphaRate}{50.0\%}", r"\newcommand{\QSixMid}{m}",
                     r"\newcommand{\QSixZeta}{2}"]
    assert json.loads((ex.generated_dir / "q6.json").read_text()) == {
        "alpha_rate": 0.5, "mid": "m", "zeta": 2}


@pytest.mark.parametrize("first, second", [("q5_acc", "q5-acc"), ("l2_acc", "lTwo_acc"),
                                           ("testAccuracy", "test_accuracy"),
                                           ("f1", "F_1"), ("a_b", "a__b")])
def test_two_names_for_one_macro_are_refused(tmp_path, monkeypatch, first, second):
    ex = smoke_exporter(tmp_path, monkeypatch, question=7)
    macro = macro_name(7, first)
    assert macro_name(7, second) == macro
    a, b = sorted([first, second])
    message = (rf"^the values '{re.escape(a)}' and '{re.escape(b)}' would both be the LaTeX "
               rf"macro \\{macro}: rename one of them$")
    with pytest.raises(ValueError, match=message):
        ex.values(**{first: 2, second: 3})
    assert not (ex.generated_dir / "q7_values.tex").exists()
    ex.values(**{first: 2})
    with pytest.raises(ValueError, match=message):  # also against an earlier call's value
        ex.values(**{second: 3})
    assert ex.results == {first: 2}
    assert macros(ex) == {macro: "2"}


@pytest.mark.parametrize("question, key, name", [
    (4, "test_accuracy", "QFourTestAccuracy"), (7, "q5_test_accuracy", "QSevenQFiveTestAccuracy"),
    (6, "compare_compact_batch_128_accuracy", "QSixCompareCompactBatchOneTwoEightAccuracy"),
    (6, "macroF1", "QSixMacroFOne"), (1, "__x__", "QOneX"), (2, "n-trials", "QTwoNTrials"),
    (3, "2", "QThreeTwo"), (5, "x0 9", "QFiveXZeroNine"), (10, "acc", "QOneZeroAcc"),
    (8, "a", "QEightA"), (9, "a", "QNineA"), (4, "X", "QFourX"), (4, "Z_9", "QFourZNine")])
def test_macro_names(question, key, name):
    assert macro_name(question, key) == name


@pytest.mark.parametrize("key", ["_", "", "-"])
def test_a_name_without_letters_is_refused(key):
    with pytest.raises(ValueError, match=rf"^the value name '{key}' has no letters or digits "
                                         r"to name its LaTeX macro after; use a name like "
                                         r"'test_accuracy'$"):
        macro_name(4, key)


def test_the_question_is_a_positive_number(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match=r"^question is the question's number \(4 for Q4\), "
                                         r"got 0$"):
        smoke_exporter(tmp_path, monkeypatch, question=0)
    assert smoke_exporter(tmp_path, monkeypatch, question="3").question == 3
    assert smoke_exporter(tmp_path, monkeypatch, question=1).question == 1


# ------------------------------------------------------------------------- tables
def table_text(tmp_path, monkeypatch, df, **kwargs):
    ex = smoke_exporter(tmp_path, monkeypatch, question=5)
    assert ex.table(df, "t", **kwargs) is None
    return (ex.generated_dir / "q5_t.tex").read_text()


def body(latex):
    """The rows of a tabular between \\midrule and \\bottomrule."""
    return latex.split("\\midrule\n")[1].split("\\bottomrule")[0].splitlines()


def test_table_text_is_escaped_once(tmp_path, monkeypatch):
    df = pd.DataFrame({"a_b %": ["x&y", "r$s#t{u}~v^w\\z"], "pct": [0.5, float("nan")],
                       "up": ["p_q", "~"]},
                      index=pd.Index(["i_1", "i%2"], name="idx_name"))
    before = df.copy()
    tex = table_text(tmp_path, monkeypatch, df, na_rep="n/a_%",
                     formatters={"pct": "{:.1%}".format, "up": str.upper})
    assert tex.splitlines()[2:4] == [r" & a\_b \% & pct & up \\", r"idx\_name &  &  &  \\"]
    assert body(tex) == [
        r"i\_1 & x\&y & 50.0\% & P\_Q \\",
        r"i\%2 & r\$s\#t\{u\}\textasciitilde{}v\textasciicircum{}w\textbackslash{}z & n/a\_\% & "
        r"\textasciitilde{} \\"]
    pd.testing.assert_frame_equal(df, before)  # the caller's frame is left as it was


def test_float_format_header_and_column_choices_are_escaped(tmp_path, monkeypatch):
    df = pd.DataFrame({"share_%": [0.5, 0.25], "name": ["a_1", "b"], "n": [1, 2000]})
    tex = table_text(tmp_path, monkeypatch, df, index=False, float_format="%.1f%%",
                     header=["s_1", "t&"], columns=["share_%", "name"])
    assert tex.splitlines()[:3] == [r"\begin{tabular}{rl}", r"\toprule", r"s\_1 & t\& \\"]
    assert body(tex) == [r"0.5\% & a\_1 \\", r"0.2\% & b \\"]
    tex = table_text(tmp_path, monkeypatch, df, index=False,
                     float_format=lambda v: f"{v:.2f}_", formatters={"n": "{:,}%"})
    assert body(tex) == [r"0.50\_ & a\_1 & 1\% \\", r"0.25\_ & b & 2,000\% \\"]


def test_list_and_label_formatters_are_escaped(tmp_path, monkeypatch):
    df = pd.DataFrame({"x": ["a_b", "c"], "y": [1.0, 2.5]}, index=["r_1", "r2"])
    tex = table_text(tmp_path, monkeypatch, df, formatters=[str.upper, "{:.1f}%".format])
    assert body(tex) == [r"r\_1 & A\_B & 1.0\% \\", r"r2 & C & 2.5\% \\"]
    tex = table_text(tmp_path, monkeypatch, df, formatters={"__index__": lambda s: s + "_i",
                                                            "__columns__": lambda s: s + "&"})
    assert tex.splitlines()[2] == r" & x\& & y\& \\"
    assert df["x"].tolist() == ["a_b", "c"]  # the caller's frame is left as it was
    tex = table_text(tmp_path, monkeypatch, df, formatters={"__index__": lambda s: s + "_i"})
    assert tex.splitlines()[2] == r" & x & y \\"
    assert body(tex)[0] == r"r\_1\_i & a\_b & 1.000000 \\"
    assert body(tex) == [r"r\_1\_i & a\_b & 1.000000 \\", r"r2\_i & c & 2.500000 \\"]


def test_multiindex_columns_and_their_formatters(tmp_path, monkeypatch):
    df = pd.DataFrame([[0.5, "a_b"]], columns=pd.MultiIndex.from_tuples([("m_1", "v%"),
                                                                          ("m_1", "t")]))
    tex = table_text(tmp_path, monkeypatch, df, index=False,
                     formatters={("m_1", "v%"): "{:.0%}".format})
    assert r"\multicolumn{2}{r}{m\_1} \\" in tex and r"v\% & t \\" in tex
    assert body(tex) == [r"50\% & a\_b \\"]


def test_latex_cells_and_latex_tables_are_kept(tmp_path, monkeypatch):
    df = pd.DataFrame({"setting": [export.Latex(r"$\lambda$ = 0.1"), "reg_2 = 0.2"],
                       "F1": [0.5, 0.25]})
    tex = table_text(tmp_path, monkeypatch, df, index=False, float_format="%.2f",
                     formatters={"setting": lambda s: s if isinstance(s, export.Latex) else s})
    assert body(tex) == [r"$\lambda$ = 0.1 & 0.50 \\", r"reg\_2 = 0.2 & 0.25 \\"]
    raw = pd.DataFrame({"value": [r"He (std $\sqrt{2/\text{fan-in}}$)", r"1\% and $\alpha$"]})
    tex = table_text(tmp_path, monkeypatch, raw, index=False, escape=False)
    assert body(tex) == [r"He (std $\sqrt{2/\text{fan-in}}$) \\", r"1\% and $\alpha$ \\"]


def test_tables_are_escaped_once_whatever_pandas_is_set_to(tmp_path, monkeypatch):
    df = pd.DataFrame({"a_b": ["c_d"]})
    with pd.option_context("styler.format.escape", "latex"):
        tex = table_text(tmp_path, monkeypatch, df, index=False)
    assert tex.splitlines()[2] == r"a\_b \\" and body(tex) == [r"c\_d \\"]


@pytest.mark.parametrize("index", [True, False])
def test_tables_escape_as_pandas_does_for_its_characters(tmp_path, monkeypatch, index):
    # pandas escapes & % $ # _ { } as this module does (its ~ ^ \ differ): an independent check
    df = pd.DataFrame({"c_1 & 2": ["a%b", "#{x}$"], "n": [1234, 5], "v": [0.51234, None]},
                      index=pd.Index(["r_1", "r{2}"], name="i#"))
    kwargs = dict(index=index, float_format="%.3f", formatters={"n": "{:,}".format})
    expected = df.to_latex(escape=True, **{**kwargs, "formatters": {"n": "{:,}".format}})
    assert table_text(tmp_path, monkeypatch, df, **kwargs) == expected


def test_latex_escape_leaves_latex_and_other_types():
    from nnlib.export import Latex, latex_escape
    assert latex_escape("50% & up_") == r"50\% \& up\_"
    assert latex_escape(r"\textbf{x}") == r"\textbackslash{}textbf\{x\}"
    assert latex_escape(Latex(r"\textbf{x}")) == r"\textbf{x}"
    assert latex_escape(3) == 3 and latex_escape(None) is None


def test_report_notation_spares_latex_commands():
    from nnlib.export import report_notation
    assert (report_notation(r"F1 lambda alpha F10 lambdas")
            == r"$F_1$ $\lambda$ $\alpha$ F10 lambdas")
    assert report_notation(r"$\lambda$ $\alpha$ \F1") == r"$\lambda$ $\alpha$ \F1"


def test_profiles_choose_the_folders(tmp_path, monkeypatch):
    monkeypatch.setattr(export, "FIGURES_DIR", tmp_path / "fig")
    monkeypatch.setattr(export, "GENERATED_DIR", tmp_path / "report" / "gen")
    monkeypatch.setattr(export, "RUNS_DIR", tmp_path / "runs")
    full = Exporter(3, "full")
    assert (full.figures_dir, full.generated_dir) == (tmp_path / "fig", tmp_path / "report" / "gen")
    assert full.figures_dir.is_dir() and full.generated_dir.is_dir()
    fast = Exporter(3, "fast")
    assert fast.figures_dir == tmp_path / "runs" / "fast" / "figures"
    assert fast.generated_dir == tmp_path / "runs" / "fast" / "generated"
    assert fast.figures_dir.is_dir() and fast.generated_dir.is_dir()
    fast.values(a=1)
    assert (tmp_path / "runs" / "fast" / "generated" / "q3.json").is_file()
    assert not list((tmp_path / "report").rglob("q3*"))
    assert pd.get_option("display.float_format") is export.format_float


def test_profile_choices_and_messages(monkeypatch):
    monkeypatch.setenv("NNLIB_PROFILE", "full")
    assert get_profile("smoke") == "smoke" and get_profile("") == "full"
    monkeypatch.setenv("NNLIB_PROFILE", "")
    assert get_profile(None) == "full"
    with pytest.raises(ValueError, match=r"^profile must be one of \('smoke', 'full'\), got "
                                         r"'fast' \(check the profile parameter\)$"):
        get_profile("fast")


def test_budgets_take_given_values_and_keep_the_table():
    from nnlib.export import choose_budget
    budgets = {"full": {"epochs": 60, "trials": 16, "seeds": [0]}, "smoke": {"epochs": 2}}
    budget = choose_budget("full", budgets, trials=0, epochs=None)
    assert budget == {"epochs": 60, "trials": 0, "seeds": [0]}  # 0 is a value, None is not
    budget["epochs"] = 1
    assert budgets["full"] == {"epochs": 60, "trials": 16, "seeds": [0]}
    assert choose_budget("smoke", budgets) == {"epochs": 2}
    with pytest.raises(ValueError, match=r"^unknown budget parameter\(s\) \['a', 'b'\]; this "
                                         r"notebook's are \['epochs', 'seeds', 'trials'\]$"):
        choose_budget("full", budgets, b=1, a=None, epochs=3)


def test_figures_are_saved_with_the_documented_settings(tmp_path, monkeypatch):
    import io

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    ex = smoke_exporter(tmp_path, monkeypatch, question=2)
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([0, 1], [1, 0])
    ax.set_title("t", fontsize=5)
    ex.figure(fig, "line")
    assert ax.title.get_fontsize() >= 7  # made legible before saving
    for fmt, options in (("png", {"dpi": 120}), ("pdf", {"metadata": {"CreationDate": None}})):
        expected = io.BytesIO()
        fig.savefig(expected, format=fmt, bbox_inches="tight", **options)
        assert (ex.figures_dir / f"q2_line.{fmt}").read_bytes() == expected.getvalue()
    with matplotlib.rc_context({"savefig.format": "svg"}):  # each file in its own format
        ex.figure(fig, "line")
    assert (ex.figures_dir / "q2_line.png").read_bytes().startswith(b"\x89PNG")
    assert (ex.figures_dir / "q2_line.pdf").read_bytes().startswith(b"%PDF")
    plt.close(fig)


def test_legible_raises_small_texts_only_as_far_as_needed():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nnlib.export import MIN_POINTS, PRINT_WIDTH_IN, legible
    assert MIN_POINTS == 7 and PRINT_WIDTH_IN == pytest.approx(6.535433, abs=1e-6)
    assert legible(plt.figure(figsize=(3, 2))) == 7  # no text: the minimum
    fig, ax = plt.subplots(figsize=(2 * PRINT_WIDTH_IN, 2))
    ax.plot([0, 1], label="a")
    ax.legend(fontsize=6)
    hidden = ax.text(0.5, 0.5, "hidden", fontsize=5)
    hidden.set_visible(False)
    smallest = legible(fig)
    assert 7 <= smallest < 7.3  # 2% above the minimum, not more
    assert hidden.get_fontsize() == 5  # not shown: not raised
    narrow, ax2 = plt.subplots(figsize=(3, 2))
    ax2.set_title("t", fontsize=6)
    assert 7 <= legible(narrow, min_points=7) < 7.3
    assert ax2.title.get_fontsize() == pytest.approx(7 * 1.02)
    ax2.set_title("t", fontsize=6)
    legible(narrow, min_points=9)
    assert ax2.title.get_fontsize() == pytest.approx(9 * 1.02)
    for size in (7, 7 - 1e-6):  # large enough already (within 1e-6 of it): unchanged
        ax2.set_title("t", fontsize=size)
        legible(narrow)
        assert ax2.title.get_fontsize() == size
    ax2.set_title("t", fontsize=6)
    legible(narrow, width=1.5)  # printed at about half its width
    narrow.canvas.draw()
    scale = 1.5 / narrow.get_tightbbox(narrow.canvas.get_renderer()).width
    assert scale < 0.6 and 7 <= ax2.title.get_fontsize() * scale < 7.3
    plt.close("all")


def test_summary_shows_each_value_as_the_report_does(tmp_path, monkeypatch):
    import nnlib.export as ex
    monkeypatch.setattr(ex, "FIGURES_DIR", tmp_path / "f")
    monkeypatch.setattr(ex, "GENERATED_DIR", tmp_path / "g")
    e = ex.Exporter(9, "full")
    e.values(val_accuracy=0.61234, best_lr=0.0123456, train_n=25838, big=12345.6,
             tiny=2.5e-9, flip=True, arch="512-256", sizes=[1, 2000], learning_rate=0.5)
    got = e.summary()["value"].to_dict()
    assert got == {"arch": "512-256", "best_lr": "0.01235", "big": "12,346",
                   "flip": "yes", "learning_rate": "0.5", "sizes": "1, 2,000",
                   "tiny": "2.50e-09", "train_n": "25,838", "val_accuracy": "61.2%"}


def test_table_formats_and_styled_show_the_same_text(tmp_path, monkeypatch):
    import pandas as pd

    import nnlib.export as ex
    monkeypatch.setattr(ex, "FIGURES_DIR", tmp_path / "f")
    monkeypatch.setattr(ex, "GENERATED_DIR", tmp_path / "g")
    df = pd.DataFrame({"minutes": [1.25, float("nan")], "n": [1234, 5]})
    formats = {"minutes": "{:.1f}", "n": "{:,.0f}", "absent": "{:.9f}"}
    ex.Exporter(9, "full").table(df, "t", index=False, na_rep="-", formats=formats)
    tex = (tmp_path / "g" / "q9_t.tex").read_text()
    assert "1.2 & 1,234" in tex and "- & 5" in tex
    html = ex.styled(df, formats).to_html()
    assert ">1.2<" in html and ">1,234<" in html and ">-<" in html
