"""Exports from the notebooks: figures, LaTeX tables, value macros and JSON results.

The full profile writes into ``figures/`` and ``report/generated/``, which the report
includes; the smoke profile writes into ``runs/smoke/`` so a test run never overwrites
the report's inputs.
"""
from __future__ import annotations

import json
import os
import re

import numpy as np

from nnlib.atomic import atomic_open, write_text
from nnlib.paths import FIGURES_DIR, GENERATED_DIR, RUNS_DIR

PROFILES = ("smoke", "full")
# the report's text width (16.6 cm): a wider figure is shrunk to it there, a narrower one
# is shown at its own size; every text must stay legible at that print size
PRINT_WIDTH_IN = 16.6 / 2.54
MIN_POINTS = 7
_NUMBER_WORDS = ["Zero", "One", "Two", "Three", "Four", "Five", "Six", "Seven", "Eight", "Nine"]


def get_profile(explicit=None):
    """The run profile: ``explicit`` (a notebook's ``profile`` parameter) when it is given,
    else $NNLIB_PROFILE when set, else "full"."""
    profile = explicit or os.environ.get("NNLIB_PROFILE") or "full"
    if profile not in PROFILES:
        source = "the profile parameter" if explicit else "NNLIB_PROFILE"
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r} (check {source})")
    return profile


def choose_budget(profile, budgets, **given):
    """A notebook's budget: ``budgets[profile]`` (a dict of epochs, trials, ...) with each
    ``given`` value that is not None (a papermill parameter) in its place.

    >>> choose_budget("smoke", {"smoke": {"epochs": 2}, "full": {"epochs": 60}}, epochs=None)
    {'epochs': 2}
    """
    budget = dict(budgets[profile])
    unknown = sorted(set(given) - set(budget))
    if unknown:
        raise ValueError(f"unknown budget parameter(s) {unknown}; this notebook's are "
                         f"{sorted(budget)}")
    budget.update({k: v for k, v in given.items() if v is not None})
    return budget


def format_float(v):
    """How the notebooks' tables show a float: thousands separators for large values,
    four significant digits for ordinary ones, two for tiny ones in scientific form
    (0.482, 2.303, 12,345, 9.85e-09)."""
    a = abs(v)  # (NaN and infinities fall through and print as nan, inf, -inf)
    if float(f"{a:.4g}") >= 1000:  # also 999.96, which rounds to a thousand
        return f"{v:,.0f}"
    if a >= 1e-3 or a == 0:
        return f"{v:.4g}"
    return f"{v:.2e}"


class Latex(str):
    r"""Text that is LaTeX already (``Latex(r"$\lambda$")``): exported as it is, where other
    text has its special characters escaped."""


# each LaTeX special character as text, replaced in one pass (so that the backslashes the
# escapes bring are not escaped again)
_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
            "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
            "^": r"\textasciicircum{}"}
_SPECIAL = re.compile("|".join(map(re.escape, _ESCAPES)))


def latex_escape(text):
    r"""``text`` with LaTeX's special characters written as text ("a_b & c%" ->
    "a\_b \& c\%"); ``Latex`` text and anything that is not a str is returned unchanged."""
    if not isinstance(text, str) or isinstance(text, Latex):
        return text
    return _SPECIAL.sub(lambda m: _ESCAPES[m.group()], text)


def macro_name(question, key):
    """``(4, "test_accuracy")`` -> ``QFourTestAccuracy`` (LaTeX names take no digits)."""
    if not re.search(r"[A-Za-z0-9]", key):
        raise ValueError(f"the value name {key!r} has no letters or digits to name its LaTeX "
                         "macro after; use a name like 'test_accuracy'")
    words = re.split(r"[^A-Za-z0-9]+", key)
    name = f"Q{question}" + "".join(w[:1].upper() + w[1:] for w in words)
    return re.sub(r"\d", lambda m: _NUMBER_WORDS[int(m.group())], name)


class Exporter:
    """Writes one question's exports; ``question`` is its number (4 for Q4)."""

    def __init__(self, question, profile):
        """Also sets how the notebook shows its pandas tables (``format_float``)."""
        try:
            import pandas as pd
            pd.set_option("display.float_format", format_float)
        except ImportError:  # nnlib without its notebooks extra
            pass
        self.question = int(question)
        if self.question < 1:
            raise ValueError(f"question is the question's number (4 for Q4), got {question!r}")
        self.profile = profile
        if profile == "full":
            self.figures_dir, self.generated_dir = FIGURES_DIR, GENERATED_DIR
        else:
            self.figures_dir = RUNS_DIR / profile / "figures"
            self.generated_dir = RUNS_DIR / profile / "generated"
        self.figures_dir.mkdir(parents=True, exist_ok=True)
        self.generated_dir.mkdir(parents=True, exist_ok=True)
        self.results = {}

    def figure(self, fig, name):
        """Save a matplotlib figure as vector PDF (report) and PNG (README), its texts
        made legible at print size first (``legible``). Returns nothing, so that a
        notebook cell ending with it shows no path of this machine."""
        legible(fig)
        stem = self.figures_dir / f"q{self.question}_{name}"
        # no creation date: an unchanged figure re-exports byte for byte
        with atomic_open(stem.with_suffix(".pdf")) as f:
            fig.savefig(f, format="pdf", bbox_inches="tight", metadata={"CreationDate": None})
        with atomic_open(stem.with_suffix(".png")) as f:
            fig.savefig(f, format="png", bbox_inches="tight", dpi=120)

    def table(self, df, name, escape=True, formats=None, **to_latex):
        """Write a pandas DataFrame as a LaTeX tabular (booktabs) for \\input (returns
        nothing, like ``figure``). The text shown (cells, headers, index, ``na_rep`` and
        what ``formatters`` and ``float_format`` return) has its LaTeX special characters
        escaped, except ``Latex`` text; ``escape=False`` writes a table whose text is LaTeX.
        ``formats``: column -> format string (``"{:.3f}"``), for the columns ``df`` has, as
        ``styled`` shows them in the notebook."""
        if formats:
            to_latex["formatters"] = {**{k: v.format for k, v in formats.items()
                                         if k in df.columns}, **to_latex.get("formatters", {})}
        if escape:
            df, to_latex = _escaped(df, to_latex)
        write_text(self.generated_dir / f"q{self.question}_{name}.tex",
                   report_notation(df.to_latex(escape=False, **to_latex)))

    def values(self, **values):
        """Record headline values: JSON (``qN.json``) and LaTeX macros (``qN_values.tex``).

        Floats are written to the macros with 4 significant digits (those of 1,000 and more
        whole, with thousands separators; an exponent as 10 to a power), except that a float
        in [0, 1] whose key ends in ``accuracy``, ``rate`` (not ``learning_rate``) or ``acc``
        is shown as a percentage with one decimal; ints get thousands separators, booleans
        yes/no; text has its LaTeX special characters escaped (not ``Latex`` text); a list
        is shown as its items, each so formatted, separated by commas. NumPy scalars count
        as the Python values they hold.
        """
        values = {key: _plain(key, value) for key, value in values.items()}
        results = {**self.results, **values}
        macros = {}  # macro name -> key, in the order of the keys
        for key in sorted(results):
            macro = macro_name(self.question, key)
            if macro in macros:
                raise ValueError(f"the values {macros[macro]!r} and {key!r} would both be the "
                                 f"LaTeX macro \\{macro}: rename one of them")
            macros[macro] = key
        text = json.dumps(results, indent=2, sort_keys=True) + "\n"
        self.results = results
        lines = [f"% generated by notebook Q{self.question} ({self.profile} profile)"]
        lines += [f"\\newcommand{{\\{macro}}}{{{_format(key, results[key])}}}"
                  for macro, key in macros.items()]
        write_text(self.generated_dir / f"q{self.question}.json", text)
        write_text(self.generated_dir / f"q{self.question}_values.tex", "\n".join(lines) + "\n")


    def summary(self):
        """The values recorded so far (``values``) as a table to show, one row each, in
        the report's form (accuracies as percentages, large numbers with separators)."""
        import pandas as pd
        return pd.DataFrame({"value": {k: _shown(k, v) for k, v in sorted(self.results.items())}})


def styled(df, formats, na_rep="-", precision=3):
    """``df`` to show in a notebook, the columns named in ``formats`` (column -> format
    string such as ``"{:.3f}"``) so formatted, other floats to ``precision`` decimals."""
    return df.style.format({k: v for k, v in formats.items() if k in df.columns},
                           na_rep=na_rep, precision=precision)


def _shown(key, value):
    """A value of ``Exporter.results`` as ``summary`` shows it (as the report does, in
    plain text)."""
    if isinstance(value, list):
        return ", ".join(_shown(key, v) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{100 * value:.1f}%" if _is_share(key, value) else format_float(value)
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


# the report's notation for words that tables spell plainly in the notebooks
# (not a LaTeX command already there, like the \lambda of a table written in LaTeX)
_NOTATION = ((re.compile(r"(?<!\\)\bF1\b"), r"$F_1$"),
             (re.compile(r"(?<!\\)\blambda\b"), r"$\\lambda$"),
             (re.compile(r"(?<!\\)\balpha\b"), r"$\\alpha$"))


def report_notation(latex):
    """A LaTeX table's "F1", "lambda" and "alpha" written as the report's $F_1$, $\\lambda$
    and $\\alpha$."""
    for pattern, replacement in _NOTATION:
        latex = pattern.sub(replacement, latex)
    return latex


def legible(fig, width=PRINT_WIDTH_IN, min_points=MIN_POINTS):
    """Raise every text of ``fig`` (labels, ticks, legends, annotations) to at least
    ``min_points`` at print size: the saved figure (its tight bounding box) shrunk to
    ``width`` inches if it is wider. Returns the smallest font size at print size."""
    from matplotlib.text import Text

    def print_scale():
        fig.canvas.draw()  # lays the figure out again with the current fonts
        saved = fig.get_tightbbox(fig.canvas.get_renderer()).width
        return min(1.0, width / saved)

    texts = [t for t in fig.findobj(Text) if t.get_text() and t.get_visible()]
    for _ in range(4):  # larger fonts can widen the figure: check again
        scale = print_scale()
        small = [t for t in texts if t.get_fontsize() * scale < min_points - 1e-6]
        for t in small:
            t.set_fontsize(min_points / scale * 1.02)
        if not small:
            break
    # one more layout pass, also when the fonts settled: constrained layout moves a little
    # on each draw, and the committed figures were saved after this pass
    return min((t.get_fontsize() for t in texts), default=min_points) * print_scale()


def _plain(key, value):
    """``value`` as the Python value it holds (NumPy scalars too); refuses what the macros
    cannot show."""
    if isinstance(value, (list, tuple)):
        return [_plain(key, v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if not isinstance(value, (bool, int, float, str)):
        raise TypeError(f"value {key!r} is a {type(value).__name__}: export a number, a bool, "
                        "text or a list of them (e.g. float(x) for a one-element array)")
    return value


def _format(key, value):
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        value += 0.0  # -0.0 -> 0.0: no "-0" in the report
        if _is_share(key, value):
            return f"{100 * value:.1f}\\%"
        text = f"{value:.4g}"
        if abs(value) < 1e9 and abs(float(text)) >= 1000:  # no exponent: "11{,}732"
            return f"{value:,.0f}".replace(",", "{,}")
        if "e" in text:  # 9.083e-05 -> 9.083 x 10^-5, in text and in formulas alike
            mantissa, exponent = text.split("e")
            return f"\\ensuremath{{{mantissa}\\times10^{{{int(exponent)}}}}}"
        return text
    if isinstance(value, int):
        return f"{value:,}".replace(",", "{,}")
    if isinstance(value, list):
        return ", ".join(_format(key, v) for v in value)
    return latex_escape(value)


def _is_share(key, value):
    """Whether the float ``value`` of ``key`` is a share to show as a percentage."""
    return (key.endswith(("accuracy", "rate", "acc")) and not key.endswith("learning_rate")
            and 0 <= value <= 1)


def _escaped(df, to_latex):
    """``df`` and ``to_latex``'s options with each text that the table shows escaped once:
    labels and text cells here, and the output of formatters as they return it (pandas'
    escape=True escapes cells before formatting them and leaves the formatted text as it is)."""
    opts = dict(to_latex)
    formatters = opts.get("formatters")
    by_column = formatters if isinstance(formatters, dict) else {}
    # an axis whose labels a formatter shows ("__index__") is escaped as that formatter returns
    label_axes = [axis for axis in ("index", "columns") if f"__{axis}__" not in by_column]
    if isinstance(formatters, (list, tuple)):
        opts["formatters"] = [_escaping(f) for f in formatters]
    elif formatters:
        opts["formatters"] = {key if key in _AXIS_FORMATTERS else _escape_label(key):
                              _escaping(f) for key, f in formatters.items()}
    df = df.copy()  # the caller's frame stays as it is
    if label_axes:
        df = df.rename(**dict.fromkeys(label_axes, _escape_label))
        df = df.rename_axis(**dict.fromkeys(label_axes, _escape_label))
    if opts.get("float_format") is not None:
        float_format = opts["float_format"]
        opts["float_format"] = _escaping(float_format.__mod__ if isinstance(float_format, str)
                                         else float_format)
    opts["na_rep"] = latex_escape(opts.get("na_rep", "NaN"))
    for option in ("header", "columns"):
        if isinstance(opts.get(option), (list, tuple)):
            opts[option] = [_escape_label(label) for label in opts[option]]
    if not isinstance(formatters, (list, tuple)):
        for i, label in enumerate(df.columns):
            column = df.iloc[:, i]
            # text columns (object, string, category): numbers hold no special characters,
            # and formatted text is escaped as its formatter returns it
            if column.dtype.kind == "O" and label not in opts.get("formatters", {}):
                df.isetitem(i, column.map(latex_escape))
    return df, opts


_AXIS_FORMATTERS = ("__index__", "__columns__")


def _escape_label(label):
    if isinstance(label, tuple):  # a MultiIndex label
        return tuple(latex_escape(part) for part in label)
    return latex_escape(label)


def _escaping(formatter):
    """``formatter`` (a callable or a str.format pattern) with its output escaped."""
    if isinstance(formatter, str):
        formatter = formatter.format
    return lambda value: latex_escape(formatter(value))
