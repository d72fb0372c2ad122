"""Input checks (nnlib._checks): what passes, what is refused, and what the message says."""
import numpy as np
import pytest

from nnlib._checks import check_array, check_finite, check_labels, check_probability


@pytest.mark.parametrize("values, bad", [
    ([np.inf, 1.0], 1), ([-np.inf, 1.0], 1), ([np.nan, 1.0], 1),
    ([np.nan, np.inf, -np.inf, 0.0], 3), ([[np.nan, np.nan], [1.0, np.inf]], 3)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16])
def test_check_finite_counts_nan_and_inf(values, bad, dtype):
    X = np.array(values, dtype=dtype)
    with pytest.raises(ValueError, match=rf"^X_train contains {bad} NaN or inf values; clean or "
                                         r"impute the data before training \(e\.g\. check the "
                                         r"preprocessing statistics\)$"):
        check_finite(X, "X_train")


@pytest.mark.parametrize("X", [np.array([1, 2, 3]), np.array([[0, -5]], dtype=np.int8),
                               np.array([True, False]), np.array([0.0, -1e308, 1e308]),
                               np.zeros((0, 3)), np.float64(2.0) * np.ones(())])
def test_check_finite_passes_finite_and_integer_arrays(X):
    assert check_finite(X, "X") is None


def test_check_finite_looks_at_floating_arrays_only():
    # what is not a number at all is check_array's to refuse; isfinite cannot read it
    assert check_finite(np.array(["nan", "inf"]), "X") is None


@pytest.mark.parametrize("num_classes", [1, 2, 7])
def test_check_labels_bounds(num_classes):
    top = num_classes - 1
    y = check_labels(np.array([0, top]), 2, num_classes)
    assert y.tolist() == [0, top]
    assert check_labels([top, 0, top], 3, num_classes).tolist() == [top, 0, top]  # a list
    with pytest.raises(ValueError, match=rf"^y holds labels in \[0, {num_classes}\] but there "
                                         rf"are {num_classes} classes; labels must lie in "
                                         rf"\[0, {top}\]$"):
        check_labels(np.array([0, num_classes]), 2, num_classes)
    with pytest.raises(ValueError, match=rf"^labels holds labels in \[-1, {top}\] but there "
                                         rf"are {num_classes} classes"):
        check_labels(np.array([-1, top]), 2, num_classes, name="labels")


def test_check_labels_shape_type_and_empty_batches():
    with pytest.raises(ValueError, match=r"^y must have shape \(3,\) to match the batch, got "
                                         r"\(2,\)$"):
        check_labels(np.array([0, 1]), 3, 2)
    with pytest.raises(ValueError, match=r"^y_val must have shape \(2,\) to match the batch, "
                                         r"got \(2, 1\)$"):
        check_labels(np.array([[0], [1]]), 2, 2, name="y_val")
    with pytest.raises(TypeError, match=r"^y must hold integer class ids, got dtype float64$"):
        check_labels(np.array([0.0, 1.0]), 2, 2)
    with pytest.raises(TypeError, match=r"got dtype bool$"):
        check_labels(np.array([True, False]), 2, 2)
    assert check_labels(np.array([], dtype=np.int64), 0, 3).shape == (0,)
    assert check_labels(np.array([1, 0], dtype=np.uint8), 2, 2).dtype == np.uint8


@pytest.mark.parametrize("p", [0, 0.0, 0.5, 0.999999, np.float32(0.25)])
def test_check_probability_accepts_zero_up_to_one(p):
    assert check_probability(p) is None


@pytest.mark.parametrize("p, shown", [(1, "1"), (1.0, "1.0"), (-0.1, "-0.1"), (1.5, "1.5"),
                                      (float("nan"), "nan"), (-1e-12, "-1e-12")])
def test_check_probability_refuses_one_and_beyond(p, shown):
    with pytest.raises(ValueError, match=rf"^dropout p is the probability of dropping a unit "
                                         rf"and must lie in \[0, 1\), got {shown}$"):
        check_probability(p)


def test_check_array_accepts_numbers_and_booleans():
    X = np.zeros((2, 2), np.float32)
    assert check_array(X, "X") is X  # an array is not copied
    assert check_array([[1, 2]], "X").tolist() == [[1, 2]]
    assert check_array(np.array([True]), "mask").dtype == np.bool_
    for bad, dtype in ((np.array(["a"]), "<U1"), (np.array([None, 1]), "object")):
        with pytest.raises(TypeError, match=rf"^X must be a numeric array, got dtype {dtype}$"):
            check_array(bad, "X")
