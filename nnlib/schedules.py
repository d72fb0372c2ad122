"""Learning-rate and momentum schedules, evaluated once per epoch.

A schedule is built from a plain dict (so it can be written to JSON), e.g.
``{"name": "step", "step_size": 10, "gamma": 0.5}``, and called as
``schedule(epoch, metric) -> value`` after each epoch; ``epoch`` counts finished
epochs and ``metric`` is the monitored validation metric (used by "plateau" only).
"""
from __future__ import annotations

import math


class Schedule:
    """Base class: holds the base value and a JSON-able state."""

    def __init__(self, base, **options):
        self.base = float(base)
        self.options = options
        self.state = {}

    def __call__(self, epoch, metric=None):
        raise NotImplementedError

    def __repr__(self):
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return f"{type(self).__name__}(base={self.base:g}, {opts})"


class Constant(Schedule):
    def __call__(self, epoch, metric=None):
        return self.base


class Step(Schedule):
    """Multiply by ``gamma`` every ``step_size`` epochs."""

    def __call__(self, epoch, metric=None):
        o = self.options
        return self.base * o.get("gamma", 0.1) ** (epoch // o.get("step_size", 10))


class Exponential(Schedule):
    """Multiply by ``gamma`` after every epoch (the classic ``lr_decay``)."""

    def __call__(self, epoch, metric=None):
        return self.base * self.options.get("gamma", 0.95) ** epoch


class Cosine(Schedule):
    """Cosine annealing from base to ``min_value`` over ``num_epochs`` epochs."""

    def __call__(self, epoch, metric=None):
        o = self.options
        lo, T = o.get("min_value", 0.0), o["num_epochs"]
        return lo + 0.5 * (self.base - lo) * (1 + math.cos(math.pi * min(epoch, T) / T))


class Plateau(Schedule):
    """Multiply by ``factor`` when the metric has not improved for ``patience`` epochs.

    ``mode`` is "max" for accuracies and "min" for losses.
    """

    def __call__(self, epoch, metric=None):
        o, s = self.options, self.state
        s.setdefault("value", self.base)
        if metric is None:
            return s["value"]
        better = (lambda a, b: a > b) if o.get("mode", "max") == "max" else (lambda a, b: a < b)
        if "best" not in s or better(metric, s["best"]):
            s["best"], s["bad_epochs"] = metric, 0
        else:
            s["bad_epochs"] = s.get("bad_epochs", 0) + 1
            if s["bad_epochs"] > o.get("patience", 3):
                s["value"] = max(s["value"] * o.get("factor", 0.5), o.get("min_value", 0.0))
                s["bad_epochs"] = 0
        return s["value"]


class LinearRamp(Schedule):
    """Move linearly from base to ``end`` over ``num_epochs`` epochs, then stay there
    (e.g. momentum 0.5 -> 0.9, Sutskever et al., 2013)."""

    def __call__(self, epoch, metric=None):
        o = self.options
        frac = min(epoch / max(o.get("num_epochs", 1), 1), 1.0)
        return self.base + frac * (o["end"] - self.base)


SCHEDULES = {"constant": Constant, "step": Step, "exponential": Exponential,
             "cosine": Cosine, "plateau": Plateau, "linear": LinearRamp}


def make_schedule(spec, base):
    """Build a schedule from a dict spec {"name": ..., **options}; None means constant."""
    if spec is None:
        return Constant(base)
    if isinstance(spec, Schedule):
        return spec
    if not isinstance(spec, dict) or "name" not in spec:
        raise ValueError(f"a schedule is a dict with a 'name' key, got {spec!r}")
    options = dict(spec)
    name = options.pop("name")
    if name not in SCHEDULES:
        raise ValueError(f"unknown schedule {name!r}; choose one of {sorted(SCHEDULES)}")
    if name == "linear" and "end" not in options:
        raise ValueError("the 'linear' schedule needs an 'end' value")
    if name == "cosine" and "num_epochs" not in options:
        raise ValueError("the 'cosine' schedule needs 'num_epochs'")
    options.pop("base", None)
    return SCHEDULES[name](spec.get("base", base), **options)
