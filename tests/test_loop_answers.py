"""AnnotationLoop keeps every oracle answer, also the ones it cannot take yet."""

import re

import numpy as np
import pytest

from .conftest import read_annotations
from .test_loop import RecordingOracle, _loop

ADVICE = re.escape("pass classes=[...] (every class) to BoostMISClassifier")


def _never_asked(idx):
    raise AssertionError(f"the oracle was asked about rows {list(idx)}")


@pytest.fixture
def without_class_2(iris_data):
    """Iris with no row labeled 2, and the answers of an annotator who finds
    that class: 2 for the even rows, the truth for the others."""
    X, y, y_partial = iris_data
    y_start = np.where(y_partial == 2, -1, y_partial)
    return X, np.where(np.arange(len(y)) % 2 == 0, 2, y), y_start


def _stopped_by_class_2(data, state_dir):
    """The first round of a loop whose answers include the undeclared class 2:
    the error, the loop and the rows asked."""
    X, y, y_start = data
    oracle = RecordingOracle(y, y_start)
    loop = _loop(oracle, state_dir=state_dir)
    with pytest.raises(ValueError, match=ADVICE) as error:
        loop.fit(X, y_start)
    (asked,) = oracle.calls
    assert len(set(y[asked])) > 1 and 2 in y[asked], "a round of 2s and other classes"
    return error.value, loop, asked


def test_an_undeclared_class_stops_the_round_after_recording_it(
    without_class_2, tmp_path
):
    X, y, y_start = without_class_2
    error, loop, asked = _stopped_by_class_2(without_class_2, tmp_path)
    assert "labels [2] in cycle 0 that are not among the classes [0, 1]" in str(error)
    assert str(tmp_path / "annotations.csv") in str(error)
    # every answer is in the log, those of the declared classes in y_ as well
    assert read_annotations(tmp_path) == [(int(i), int(y[i]), 0) for i in asked]
    taken = asked[y[asked] != 2]
    np.testing.assert_array_equal(loop.annotated_indices_, taken)
    np.testing.assert_array_equal(loop.y_[taken], y[taken])
    assert loop.unknown_answers_ == {int(i): 2 for i in asked[y[asked] == 2]}
    assert (loop.y_[asked[y[asked] == 2]] == -1).all()


@pytest.mark.filterwarnings("ignore::sklearn_boostmis.PseudoLabelCollapseWarning")
def test_a_resume_with_the_class_declared_uses_the_logged_answers(
    without_class_2, tmp_path
):
    X, y, y_start = without_class_2
    _, _, asked = _stopped_by_class_2(without_class_2, tmp_path)
    oracle = RecordingOracle(y, y_start)
    oracle.labeled[asked] = True  # asserts that no logged row is asked again
    declared = _loop(oracle, state_dir=tmp_path).set_params(
        estimator__classes=[0, 1, 2]
    )
    loop = declared.fit(X, y_start)
    assert loop.start_cycle_ == 1 and len(oracle.calls) == 1
    np.testing.assert_array_equal(loop.y_[asked], y[asked])
    np.testing.assert_array_equal(loop.annotated_indices_[: len(asked)], asked)
    assert loop.estimator_.classes_.tolist() == [0, 1, 2]
    assert loop.unknown_answers_ == {}
    logged = [row[0] for row in read_annotations(tmp_path)]
    assert len(logged) == len(set(logged)) == len(asked) + len(oracle.calls[0])


def test_a_resume_without_the_class_gives_the_same_advice_and_asks_nothing(
    without_class_2, tmp_path
):
    X, y, y_start = without_class_2
    _, _, asked = _stopped_by_class_2(without_class_2, tmp_path)
    log = (tmp_path / "annotations.csv").read_bytes()
    loop = _loop(_never_asked, state_dir=tmp_path)
    for _ in range(2):  # and again: the log is unchanged, nothing asked
        with pytest.raises(ValueError, match=ADVICE) as error:
            loop.fit(X, y_start)
        assert "holds labels ['2']" in str(error.value)
        assert "not among the classes [0, 1]" in str(error.value)
        assert (tmp_path / "annotations.csv").read_bytes() == log
    assert loop.unknown_answers_ == {int(i): "2" for i in asked[y[asked] == 2]}


def test_without_a_state_dir_the_answers_stay_in_the_loop(iris_data):
    X, _, y_partial = iris_data
    loop = _loop(lambda idx: np.full(len(idx), 7))
    with pytest.raises(ValueError, match="without a state_dir a new fit asks again"):
        loop.fit(X, y_partial)
    np.testing.assert_array_equal(loop.y_, y_partial)
    assert loop.unknown_answers_ and set(loop.unknown_answers_.values()) == {7}
