import numpy as np
import pytest

from sklearn_boostmis._labels import check_partial_labels, labeled_mask


def test_labeled_mask_for_ints_objects_and_strings():
    assert labeled_mask([0, -1, 2]).tolist() == [True, False, True]
    assert labeled_mask(np.array(["a", -1], dtype=object)).tolist() == [True, False]
    assert labeled_mask(np.array(["a", "b"])).tolist() == [True, True]
    with pytest.warns(UserWarning, match="string '-1', which is a class here"):
        assert labeled_mask(np.array(["a", "-1"])).tolist() == [True, True]


def test_check_partial_labels_finds_or_declares_the_classes():
    y = np.array(["b", -1, "a", -1], dtype=object)
    labeled, classes = check_partial_labels(y)
    assert labeled.tolist() == [True, False, True, False]
    assert classes.tolist() == ["a", "b"]
    _, declared = check_partial_labels(y, classes=["c", "a", "b"])
    assert declared.dtype == object and declared.tolist() == ["a", "b", "c"]
    with pytest.raises(ValueError, match=r"y has labels \['b'\] that are not in"):
        check_partial_labels(y, classes=["a", "c"])


@pytest.mark.parametrize(
    "y, match",
    [
        (np.array(["a", "b"]), "dtype object"),
        (np.array([0.0, np.nan, 1.0]), "y has 1 missing label"),
        (np.array([-1, -1]), "no labeled samples"),
        (np.array([0, -1, 0]), "at least 2 labeled classes"),
        (np.array([0.5, 1.5, -1]), "Unknown label type"),
    ],
)
def test_check_partial_labels_refuses(y, match):
    with pytest.raises(ValueError, match=match):
        check_partial_labels(y)


def test_check_partial_labels_warns_at_the_callers_line():
    y = np.array(["a", "-1", -1], dtype=object)
    with pytest.warns(UserWarning, match="string '-1'") as record:
        _, classes = check_partial_labels(y)
    assert record[0].filename == __file__
    assert classes.tolist() == ["-1", "a"]
