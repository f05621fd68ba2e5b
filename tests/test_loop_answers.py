"""AnnotationLoop reads the oracle's answers (order, skips, classes) and keeps
every one, also the ones it cannot take yet."""

import os
import re

import numpy as np
import pandas as pd
import pytest

from sklearn_boostmis import BoostMISClassifier
from sklearn_boostmis.loop import AnnotationLoop

from .conftest import read_annotations
from .test_loop import FAST, K, RecordingOracle, _loop, _refuse

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


def test_answers_for_other_rows_raise_and_record_nothing(iris_data, tmp_path):
    # answers outside the classes are recorded: tests/test_loop_answers.py
    X, _, y_partial = iris_data
    loop = _loop(lambda idx: np.zeros(len(idx) + 1, int), state_dir=tmp_path)
    with pytest.raises(ValueError, match="returned .* labels for .* nothing was"):
        loop.fit(X, y_partial)
    assert not os.path.exists(tmp_path / "annotations.csv")
    np.testing.assert_array_equal(loop.y_, y_partial)
    assert loop.annotated_indices_.size == 0


def test_an_answer_of_a_declared_class_without_labels_is_taken(iris_data, tmp_path):
    X, _, y_partial = iris_data
    y_two = np.where(y_partial == 2, -1, y_partial)

    def says_2(idx):  # the annotator finds the class no row was labeled with
        return np.full(len(idx), 2)

    undeclared = _loop(says_2, state_dir=tmp_path / "undeclared")
    with pytest.raises(ValueError, match="declared in the classifier's classes"):
        undeclared.fit(X, y_two)

    def declared_loop(n_cycles):
        loop = _loop(says_2, state_dir=tmp_path / "declared", n_cycles=n_cycles)
        return loop.set_params(estimator__classes=[0, 1, 2])

    loop = declared_loop(n_cycles=1).fit(X, y_two)
    asked = loop.annotated_indices_
    assert asked.size > 0 and (loop.y_[asked] == 2).all()
    assert loop.estimator_.classes_.tolist() == [0, 1, 2]
    assert {label for _, label, _ in read_annotations(tmp_path / "declared")} == {2}
    resumed = declared_loop(n_cycles=2).fit(X, y_two)  # reads the 2s back from the log
    np.testing.assert_array_equal(resumed.annotated_indices_[: asked.size], asked)
    assert (resumed.y_[asked] == 2).all() and resumed.start_cycle_ == 1


def test_a_pandas_answer_sheet_is_matched_by_its_index(iris_data):
    pd = pytest.importorskip("pandas")
    X, y, y_partial = iris_data
    frame = pd.DataFrame(X, index=np.random.RandomState(0).permutation(len(X)) + 1000)
    oracles = {
        "positions": lambda idx: pd.Series(y[idx], index=idx).sort_index(),
        "X's index": lambda idx: pd.Series(y[idx], index=frame.index[idx]).sort_index(),
        "default index": lambda idx: pd.Series(y[idx]),
    }
    for name, oracle in oracles.items():
        loop = AnnotationLoop(
            BoostMISClassifier(random_state=0, **{**FAST, "max_epochs": 1}),
            oracle=oracle,
            n_cycles=1,
            budget=K,
            final_fit=False,
        ).fit(frame, y_partial)
        asked = loop.annotated_indices_
        assert len(asked) >= K and (loop.y_[asked] == y[asked]).all(), name
    with pytest.raises(ValueError, match="index matches neither"):
        AnnotationLoop(
            BoostMISClassifier(**{**FAST, "max_epochs": 1}),
            oracle=lambda idx: pd.Series(y[idx], index=idx + 7000),
            n_cycles=1,
            budget=K,
        ).fit(frame, y_partial)


def test_an_index_that_reads_two_ways_is_refused_not_guessed(iris_data):
    pd = pytest.importorskip("pandas")
    X, y, _ = iris_data
    rows = np.r_[0, 50, 100, 1, 51, 101, 2:10, 52:60, 102:110]
    X, y = X[rows], y[rows]
    y_partial = np.where(np.arange(len(y)) < 6, -1, y)  # the pool: rows 0..5
    truth = pd.Series(y)

    def loop(oracle):
        return AnnotationLoop(
            BoostMISClassifier(random_state=0, **{**FAST, "max_epochs": 1}),
            oracle=oracle,
            n_cycles=1,
            budget=6,
            final_fit=False,
        )

    # the rows asked, in the sampler's order, differ from 0..5 in order only
    def sorted_sheet(idx):
        assert sorted(idx) == list(range(6)) and list(idx) != list(range(6))
        return truth[truth.index.isin(idx)]  # index 0..5: rows, or order asked?

    def in_asked_order(idx):  # the same index 0..5, the other reading
        return pd.Series(y[idx])

    for ambiguous in (sorted_sheet, in_asked_order):
        with pytest.raises(ValueError, match="both a default index"):
            loop(ambiguous).fit(X, y_partial)
    for answer in (
        lambda idx: truth[truth.index.isin(idx)].reindex(idx),
        lambda idx: list(y[idx]),
    ):
        fitted = loop(answer).fit(X, y_partial)
        np.testing.assert_array_equal(fitted.y_, y)


def test_bool_answers_are_not_the_class_1(iris_data):
    X, y, y_partial = iris_data
    loop = AnnotationLoop(
        BoostMISClassifier(**{**FAST, "max_epochs": 1}),
        oracle=lambda idx: y[idx] > 0,
        n_cycles=1,
        budget=K,
    )
    with pytest.raises(ValueError, match=r"labels \[(True|False)"):
        loop.fit(X, y_partial)


def test_without_a_state_dir_a_failed_oracle_says_fit_starts_over(iris_data):
    X, _, y_partial = iris_data
    with pytest.raises(RuntimeError, match="without a state_dir, fit starts over"):
        _loop(_refuse).fit(X, y_partial)


@pytest.mark.parametrize("skip", [None, np.nan], ids=["None", "NaN"])
def test_a_skipped_row_stays_unlabeled_and_is_not_asked_again(
    iris_data, tmp_path, skip
):
    X, y, y_partial = iris_data
    truth = RecordingOracle(y, y_partial)

    def skip_first_row(idx):
        answers = list(truth(idx))
        answers[0] = skip
        return answers if skip is None else pd.Series(answers, dtype=float)

    loop = _loop(skip_first_row, state_dir=tmp_path, n_cycles=2).fit(X, y_partial)
    first_asked = truth.calls[0][0]
    assert loop.y_[first_asked] == -1
    assert set(loop.skipped_indices_) == {truth.calls[0][0], truth.calls[1][0]}
    assert not set(loop.annotated_indices_) & set(loop.skipped_indices_)
    assert first_asked not in truth.calls[1]
    assert [h["n_skipped"] for h in loop.history_] == [1, 1]
    assert [h["n_queried"] for h in loop.history_] == [len(c) for c in truth.calls]
    log = read_annotations(tmp_path)
    assert [(i, c) for i, lab, c in log if lab is None] == [
        (truth.calls[0][0], 0),
        (truth.calls[1][0], 1),
    ]

    # A resume remembers the skipped rows: one more cycle asks neither.
    more = RecordingOracle(y, loop.y_)
    again = _loop(more, state_dir=tmp_path, n_cycles=3).fit(X, y_partial)
    np.testing.assert_array_equal(again.skipped_indices_, loop.skipped_indices_)
    assert len(more.calls) == 1
    assert not set(more.calls[0]) & set(loop.skipped_indices_)
    np.testing.assert_array_equal(
        again.annotated_indices_[: len(loop.annotated_indices_)],
        loop.annotated_indices_,
    )


def test_a_float32_nan_answer_is_a_skip(iris_data):
    X, y, y_partial = iris_data
    truth = RecordingOracle(y, y_partial)

    def float32_sheet(idx):
        return [np.float32("nan"), *truth(idx)[1:].astype(np.float32)]

    loop = _loop(float32_sheet, n_cycles=1).fit(X, y_partial)
    np.testing.assert_array_equal(loop.skipped_indices_, truth.calls[0][:1])
