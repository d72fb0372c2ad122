"""The exact McNemar test against binomial tail sums computed here with math.comb."""
from math import comb

import numpy as np
import pytest

from nnlib.significance import mcnemar


def two_sided(k, n):
    """2 * P(X <= min(k, n - k)) for X ~ Binomial(n, 1/2), capped at 1."""
    m = min(k, n - k)
    return min(1.0, 2 * sum(comb(n, i) for i in range(m + 1)) / 2 ** n)


def pairs(both, only_a, only_b, neither, seed=0):
    """Labels and two prediction vectors with the given agreement counts, shuffled."""
    n = both + only_a + only_b + neither
    y = np.random.default_rng(seed).integers(0, 7, n)
    wrong = (y + 1) % 7
    k = both + only_a
    a = np.concatenate([y[:k], wrong[k:]])
    b = np.concatenate([y[:both], wrong[both:k], y[k:k + only_b], wrong[k + only_b:]])
    order = np.random.default_rng(seed + 1).permutation(n)
    return y[order], a[order], b[order]


@pytest.mark.parametrize("only_a, only_b", [(10, 2), (2, 10), (30, 25), (0, 7), (120, 60)])
def test_counts_and_p_match_the_binomial_tails(only_a, only_b):
    y, a, b = pairs(50, only_a, only_b, 40)
    result = mcnemar(y, a, b)
    assert (result["only_a"], result["only_b"]) == (only_a, only_b)
    assert result["p"] == pytest.approx(two_sided(only_a, only_a + only_b), rel=1e-9)


def test_known_value_and_symmetry():
    # 10 against 2: 2 * (1 + 12 + 66) / 4096
    y, a, b = pairs(5, 10, 2, 3)
    assert mcnemar(y, a, b)["p"] == pytest.approx(158 / 4096)
    assert mcnemar(y, b, a)["p"] == pytest.approx(158 / 4096)


def test_images_both_get_right_or_wrong_do_not_count():
    y, a, b = pairs(0, 10, 2, 0)
    y2, a2, b2 = pairs(500, 10, 2, 300)
    assert mcnemar(y, a, b)["p"] == pytest.approx(mcnemar(y2, a2, b2)["p"])


def test_identical_predictions_give_p_one():
    y, a, _ = pairs(20, 5, 0, 5)
    assert mcnemar(y, a, a) == {"only_a": 0, "only_b": 0, "p": 1.0}


def test_mismatched_lengths_are_refused():
    with pytest.raises(ValueError, match="equal-length"):
        mcnemar([0, 1, 2], [0, 1], [0, 1, 2])
