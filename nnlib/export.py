"""Exports from the notebooks: figures, LaTeX tables, value macros and JSON results.

The full profile writes into ``figures/`` and ``report/generated/``, which the report
includes; the smoke profile writes into ``runs/smoke/`` so a test run never overwrites
the report's inputs.
"""
from __future__ import annotations

import json
import os
import re

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
    a = abs(v)
    if a != a or a == float("inf"):
        return str(v)
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 1e-3 or a == 0:
        return f"{v:.4g}"
    return f"{v:.2e}"


def macro_name(question, key):
    """``(4, "test_accuracy")`` -> ``QFourTestAccuracy`` (LaTeX names take no digits)."""
    words = re.split(r"[^A-Za-z0-9]+", key)
    name = "Q" + _NUMBER_WORDS[question] + "".join(w[:1].upper() + w[1:] for w in words)
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

    def table(self, df, name, **to_latex):
        """Write a pandas DataFrame as a LaTeX tabular (booktabs) for \\input (returns
        nothing, like ``figure``)."""
        to_latex.setdefault("escape", True)
        write_text(self.generated_dir / f"q{self.question}_{name}.tex",
                   report_notation(df.to_latex(**to_latex)))

    def values(self, **values):
        """Record headline values: JSON (``qN.json``) and LaTeX macros (``qN_values.tex``).

        Floats are written to the macros with 4 significant digits (those of 1,000 and more
        whole, with thousands separators; an exponent as 10 to a power), except that a float
        in [0, 1] whose key ends in ``accuracy``, ``rate`` or ``acc`` is shown as a
        percentage with one decimal; ints get thousands separators, booleans yes/no.
        """
        results = {**self.results, **values}
        text = json.dumps(results, indent=2, sort_keys=True) + "\n"
        self.results = results
        lines = [f"% generated by notebook Q{self.question} ({self.profile} profile)"]
        for key, value in sorted(self.results.items()):
            lines.append(f"\\newcommand{{\\{macro_name(self.question, key)}}}"
                         f"{{{_format(key, value)}}}")
        write_text(self.generated_dir / f"q{self.question}.json", text)
        write_text(self.generated_dir / f"q{self.question}_values.tex", "\n".join(lines) + "\n")


# the report's notation for words that tables spell plainly in the notebooks
_NOTATION = ((re.compile(r"\bF1\b"), r"$F_1$"), (re.compile(r"\blambda\b"), r"$\\lambda$"),
             (re.compile(r"\balpha\b"), r"$\\alpha$"))


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


def _format(key, value):
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if key.endswith(("accuracy", "rate", "acc")) and 0 <= value <= 1:
            return f"{100 * value:.1f}\\%"
        if 1000 <= abs(value) < 1e9:  # no exponent for thousands: "11{,}732"
            return f"{value:,.0f}".replace(",", "{,}")
        text = f"{value:.4g}"
        if "e" in text:  # 9.083e-05 -> 9.083 x 10^-5, in text and in formulas alike
            mantissa, exponent = text.split("e")
            return f"\\ensuremath{{{mantissa}\\times10^{{{int(exponent)}}}}}"
        return text
    if isinstance(value, int):
        return f"{value:,}".replace(",", "{,}")
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return str(value).replace("_", "\\_").replace("%", "\\%")
