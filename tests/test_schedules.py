"""Schedules against values written out by hand."""
import math

import numpy as np
import pytest

from nnlib.schedules import make_schedule


def values(spec, base, n, metrics=None):
    s = make_schedule(spec, base)
    metrics = metrics or [None] * n
    return [s(e, m) for e, m in zip(range(1, n + 1), metrics)]


def test_step_exponential_and_constant():
    assert values({"name": "step", "step_size": 2, "gamma": 0.5}, 1.0, 5) == [
        1.0, 0.5, 0.5, 0.25, 0.25]
    assert np.allclose(values({"name": "exponential", "gamma": 0.9}, 2.0, 3),
                       [1.8, 1.62, 1.458])
    assert values(None, 0.3, 3) == [0.3, 0.3, 0.3]


def test_cosine_anneals_from_base_to_min_value():
    s = make_schedule({"name": "cosine", "num_epochs": 4, "min_value": 0.1}, 1.1)
    expected = [1.1, 0.953553, 0.6, 0.246447, 0.1, 0.1]
    assert np.allclose([s(e) for e in range(6)], expected, atol=1e-6)
    with pytest.raises(ValueError, match="num_epochs"):
        make_schedule({"name": "cosine"}, 1.0)


def test_plateau_decays_after_patience_bad_epochs():
    spec = {"name": "plateau", "factor": 0.5, "patience": 1, "mode": "max"}
    metrics = [0.5, 0.6, 0.6, 0.55, 0.7, 0.69, 0.68, 0.67, 0.66]
    # bad epochs: 3 (1), 4 (2 > 1: decay), 6 (1), 7 (2: decay), 8 (1), 9 (2: decay)
    assert values(spec, 1.0, 9, metrics) == [1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25, 0.125]
    low = {"name": "plateau", "factor": 0.1, "patience": 0, "mode": "min", "min_value": 0.05}
    assert values(low, 1.0, 4, [1.0, 2.0, 3.0, 0.5]) == [1.0, 0.1, 0.05, 0.05]


def test_linear_ramp_and_bad_specs():
    assert np.allclose(values({"name": "linear", "end": 0.9, "num_epochs": 4}, 0.5, 5),
                       [0.6, 0.7, 0.8, 0.9, 0.9])
    with pytest.raises(ValueError, match="'end'"):
        make_schedule({"name": "linear"}, 0.5)
    with pytest.raises(ValueError, match="unknown schedule"):
        make_schedule({"name": "zigzag"}, 1.0)
    with pytest.raises(ValueError, match="'name'"):
        make_schedule({"gamma": 0.5}, 1.0)
    assert make_schedule({"name": "step", "base": 0.2}, 1.0)(0) == 0.2
    assert math.isclose(make_schedule({"name": "step"}, 1.0)(10), 0.1)


def test_schedule_defaults():
    """The documented defaults: step 0.1 every 10, exponential 0.95, cosine to 0,
    linear ramp over 1 epoch, plateau mode max, patience 3, factor 0.5."""
    assert make_schedule({"name": "step"}, 1.0)(9) == 1.0
    assert make_schedule({"name": "exponential"}, 1.0)(2) == pytest.approx(0.9025)
    cos = make_schedule({"name": "cosine", "num_epochs": 2}, 1.0)
    assert [cos(e) for e in (0, 1, 2)] == pytest.approx([1.0, 0.5, 0.0])
    assert make_schedule({"name": "linear", "end": 0.9}, 0.5)(1) == pytest.approx(0.9)
    plateau = make_schedule({"name": "plateau"}, 1.0)
    values = [plateau(e, m) for e, m in enumerate([0.5, 0.4, 0.4, 0.4, 0.4], start=1)]
    assert values == [1.0, 1.0, 1.0, 1.0, 0.5]  # four bad epochs > patience 3
    assert plateau(6) == 0.5  # without a metric: the current value
    s = make_schedule({"name": "plateau", "patience": 0, "mode": "min"}, 1.0)
    assert [s(e, m) for e, m in enumerate([1.0, 1.0, 0.5], start=1)] == [1.0, 0.5, 0.5]
    assert repr(make_schedule({"name": "step", "gamma": 0.5}, 2.0)) == "Step(base=2, gamma=0.5)"
