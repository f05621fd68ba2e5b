"""AnnotationLoop's state_dir: the log, state and model, and resuming from them."""

import os

import numpy as np
import pytest
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_boostmis import BoostMISClassifier
from sklearn_boostmis.loop import AnnotationLoop
from sklearn_boostmis.loop._store import AnnotationStore
from sklearn_boostmis.query import InformativeQuerySampler

from .conftest import read_annotations
from .test_loop import FAST, K, RecordingOracle, _loop, _refuse


class _Killed(Exception):
    """Stands in for the process dying."""


@pytest.fixture(scope="module")
def reference(iris_data):
    """An uninterrupted 2-cycle run (no final fit)."""
    X, y, y_partial = iris_data
    oracle = RecordingOracle(y, y_partial)
    return _loop(oracle).fit(X, y_partial), oracle


def _assert_same_run(loop, reference):
    ref, _ = reference
    np.testing.assert_array_equal(loop.annotated_indices_, ref.annotated_indices_)
    np.testing.assert_array_equal(loop.annotation_cycles_, ref.annotation_cycles_)
    np.testing.assert_array_equal(loop.y_, ref.y_)
    assert [h["picks"] for h in loop.history_] == [h["picks"] for h in ref.history_]
    assert [h["n_labeled"] for h in loop.history_] == [
        h["n_labeled"] for h in ref.history_
    ]


def test_resume_after_kill_before_next_fit(iris_data, tmp_path, monkeypatch, reference):
    X, y, y_partial = iris_data
    original_fit = BoostMISClassifier.fit
    n_fits = []

    def dying_fit(self, *args, **kwargs):
        n_fits.append(1)
        if len(n_fits) == 2:
            raise _Killed
        return original_fit(self, *args, **kwargs)

    monkeypatch.setattr(BoostMISClassifier, "fit", dying_fit)
    first = RecordingOracle(y, y_partial)
    with pytest.raises(_Killed):
        _loop(first, state_dir=tmp_path).fit(X, y_partial)
    monkeypatch.undo()
    logged = {r[0] for r in read_annotations(tmp_path)}
    assert logged == set(first.calls[0].tolist()) and len(first.calls) == 1

    second = RecordingOracle(y, y_partial)
    loop = _loop(second, state_dir=tmp_path).fit(X, y_partial)
    assert loop.start_cycle_ == 1
    assert len(second.calls) == 1
    assert not logged & set(second.calls[0].tolist())
    _assert_same_run(loop, reference)
    assert len(read_annotations(tmp_path)) == len(reference[0].annotated_indices_)


def test_resume_after_kill_between_log_and_state(
    iris_data, tmp_path, monkeypatch, reference
):
    X, y, y_partial = iris_data
    original_append = AnnotationStore.append

    def append_then_die(self, *args, **kwargs):
        original_append(self, *args, **kwargs)
        raise _Killed

    monkeypatch.setattr(AnnotationStore, "append", append_then_die)
    with pytest.raises(_Killed):
        _loop(RecordingOracle(y, y_partial), state_dir=tmp_path).fit(X, y_partial)
    monkeypatch.undo()
    logged = {r[0] for r in read_annotations(tmp_path)}

    oracle = RecordingOracle(y, y_partial)
    loop = _loop(oracle, state_dir=tmp_path).fit(X, y_partial)
    assert loop.start_cycle_ == 1 and len(oracle.calls) == 1
    assert not logged & set(oracle.calls[0].tolist())
    _assert_same_run(loop, reference)

    # A finished run is not repeated: no question, no fit, same result.
    oracle = RecordingOracle(y, y_partial)
    again = _loop(oracle, state_dir=tmp_path).fit(X, y_partial)
    assert oracle.calls == [] and again.start_cycle_ == 2
    _assert_same_run(again, reference)


def _kill_inside_log_write(monkeypatch, iris_data, state_dir, cycle, torn=False):
    """Run a loop that dies after writing two of cycle ``cycle``'s answers (with
    ``torn``, also part of a third line); return the oracle that answered."""
    X, y, y_partial = iris_data
    original_append = AnnotationStore.append

    def append_part_then_die(self, positions, labels, at):
        if at < cycle:
            return original_append(self, positions, labels, at)
        original_append(self, positions[:2], labels[:2], at)
        if torn:
            with open(os.path.join(state_dir, "annotations.csv"), "a") as f:
                f.write(f"{positions[2]},{labels[2]}")
        raise _Killed

    monkeypatch.setattr(AnnotationStore, "append", append_part_then_die)
    first = RecordingOracle(y, y_partial)
    with pytest.raises(_Killed):
        _loop(first, state_dir=state_dir).fit(X, y_partial)
    monkeypatch.undo()
    return first


def test_resume_after_kill_inside_the_log_write_asks_the_rest(
    iris_data, tmp_path, monkeypatch, reference
):
    # A crash in the middle of the round's write: two whole lines and a torn one.
    X, y, y_partial = iris_data
    first = _kill_inside_log_write(monkeypatch, iris_data, tmp_path, 0, torn=True)
    asked = first.calls[0].tolist()

    second = RecordingOracle(y, y_partial)
    second.labeled[asked[:2]] = True
    with pytest.warns(UserWarning) as record:
        loop = _loop(second, state_dir=tmp_path).fit(X, y_partial)
    messages = [str(w.message) for w in record]
    assert any("dropped an incomplete last line" in m for m in messages)
    assert any(f"2 of the {len(asked)} answers of cycle 0" in m for m in messages)
    assert loop.start_cycle_ == 0
    assert second.calls[0].tolist() == asked[2:]
    _assert_same_run(loop, reference)
    assert [r[0] for r in read_annotations(tmp_path)] == list(
        reference[0].annotated_indices_
    )


def test_oracle_exception_is_wrapped_and_log_intact(iris_data, tmp_path, reference):
    X, y, y_partial = iris_data
    good = RecordingOracle(y, y_partial)

    def flaky(idx):
        if len(good.calls) == 1:
            raise ConnectionError("annotation server down")
        return good(idx)

    with pytest.raises(RuntimeError, match="cycle 1") as info:
        _loop(flaky, state_dir=tmp_path).fit(X, y_partial)
    assert isinstance(info.value.__cause__, ConnectionError)
    log = read_annotations(tmp_path)
    assert [r[0] for r in log] == good.calls[0].tolist()

    # Fitting again resumes at cycle 1 (reusing the saved cycle-1 model).
    oracle = RecordingOracle(y, y_partial)
    loop = _loop(oracle, state_dir=tmp_path).fit(X, y_partial)
    assert len(oracle.calls) == 1 and loop.start_cycle_ == 1
    _assert_same_run(loop, reference)


def test_resume_with_a_changed_estimator_trains_with_its_settings(iris_data, tmp_path):
    X, y, y_partial = iris_data
    good = RecordingOracle(y, y_partial)

    def once(idx):
        return _refuse(idx) if good.calls else good(idx)

    with pytest.raises(RuntimeError, match="cycle 1"):
        _loop(once, state_dir=tmp_path).fit(X, y_partial)
    changed = BoostMISClassifier(
        random_state=0, **{**FAST, "max_epochs": 2, "lr": 0.01}
    )
    second = RecordingOracle(y, y_partial)
    second.labeled = good.labeled.copy()  # asserts no row is asked twice
    loop = AnnotationLoop(
        changed,
        sampler=InformativeQuerySampler(random_state=0),
        oracle=second,
        n_cycles=2,
        budget=K,
        state_dir=tmp_path,
    ).fit(X, y_partial)
    final = loop.estimator_  # the final fit, warm-started from the saved model
    assert final.n_iter_ == 2 and final.lr == 0.01 and final.net_.lr == 0.01
    assert len(final.history_) > 2  # continued the saved model's history


def test_state_dir_from_other_data_is_rejected(iris_data, digits_data, tmp_path):
    X, _, y_partial = iris_data
    with pytest.raises(RuntimeError):  # leaves state.json with a pending query
        _loop(_refuse, state_dir=tmp_path).fit(X, y_partial)
    X_d, y_d, y_d_partial = digits_data
    oracle = RecordingOracle(y_d, y_d_partial)
    with pytest.raises(ValueError, match="shape"):
        _loop(oracle, state_dir=tmp_path).fit(X_d, y_d_partial)
    assert oracle.calls == []


@pytest.mark.parametrize("change", ["X", "y"])
def test_state_dir_from_same_shaped_other_data_is_rejected(iris_data, tmp_path, change):
    X, y, y_partial = iris_data
    with pytest.raises(RuntimeError):  # leaves state.json with a pending query
        _loop(_refuse, state_dir=tmp_path).fit(X, y_partial)
    X_other, y_other = X.copy(), y_partial.copy()
    if change == "X":
        X_other[0, 0] += 1.0
    else:
        y_other[np.flatnonzero(y_other == -1)[0]] = 0
    oracle = RecordingOracle(y, y_other)
    with pytest.raises(ValueError, match="was written for other data"):
        _loop(oracle, state_dir=tmp_path).fit(X_other, y_other)
    assert oracle.calls == []


def test_resume_with_another_kind_of_estimator_is_refused(iris_data, tmp_path):
    X, y, y_partial = iris_data
    with pytest.raises(RuntimeError):  # a bare classifier's model is saved
        _loop(_refuse, state_dir=tmp_path).fit(X, y_partial)
    pipe = make_pipeline(StandardScaler(), BoostMISClassifier(random_state=0, **FAST))
    loop = AnnotationLoop(
        pipe, oracle=_refuse, n_cycles=2, budget=K, state_dir=tmp_path
    )
    with pytest.raises(ValueError, match="holds a BoostMISClassifier model, but"):
        loop.fit(X, y_partial)


def _answer_one_cycle_then_stop(iris_data, state_dir):
    """Run a loop whose annotator answers cycle 0, then gives up; the log."""
    X, y, y_partial = iris_data
    first = RecordingOracle(y, y_partial)

    def answer_once(idx):
        return _refuse(idx) if first.calls else first(idx)

    with pytest.raises(RuntimeError):
        _loop(answer_once, state_dir=state_dir).fit(X, y_partial)
    return read_annotations(state_dir)


def test_torn_last_log_line_is_dropped(iris_data, tmp_path):
    X, y, y_partial = iris_data
    complete = _answer_one_cycle_then_stop(iris_data, tmp_path)
    torn = complete[-1]
    log = tmp_path / "annotations.csv"
    text = log.read_text()
    log.write_text(text[: text.rstrip("\n").rfind("\n") + 1] + f"{torn[0]},{torn[1]}")
    second = RecordingOracle(y, y_partial)
    second.labeled[[r[0] for r in complete[:-1]]] = True
    with pytest.warns(UserWarning, match="dropped an incomplete last line"):
        loop = _loop(second, state_dir=tmp_path).fit(X, y_partial)
    rows = read_annotations(tmp_path)  # well-formed: the next rows start a new line
    assert rows[: len(complete) - 1] == complete[:-1]
    assert len({r[0] for r in rows}) == len(rows)
    asked_again = torn[0] in {int(i) for call in second.calls for i in call}
    assert loop.y_[torn[0]] == (y[torn[0]] if asked_again else -1)


def test_resume_reads_a_spreadsheet_saved_log_and_survives_a_damaged_model(
    iris_data, tmp_path, reference
):
    X, y, y_partial = iris_data
    logged = _answer_one_cycle_then_stop(iris_data, tmp_path)
    log = tmp_path / "annotations.csv"
    log.write_bytes(b"\xef\xbb\xbf" + log.read_bytes())  # saved as "CSV UTF-8"
    (tmp_path / "model.pkl").write_bytes(b"\x80\x04 damaged")
    second = RecordingOracle(y, y_partial)
    second.labeled[[r[0] for r in logged]] = True
    with pytest.warns(UserWarning, match="model.pkl is unreadable"):
        loop = _loop(second, state_dir=tmp_path).fit(X, y_partial)
    assert loop.annotated_indices_[: len(logged)].tolist() == [r[0] for r in logged]
    assert len(loop.annotated_indices_) == len(reference[0].annotated_indices_)


def test_answers_that_cannot_be_logged_stay_in_y_(iris_data, tmp_path, monkeypatch):
    X, y, y_partial = iris_data

    def disk_gone(self, *args):
        raise OSError("Read-only file system")

    monkeypatch.setattr(AnnotationStore, "append", disk_gone)
    truth = RecordingOracle(y, y_partial)

    def skip_first(idx):
        return [None, *truth(idx)[1:]]

    loop = _loop(skip_first, state_dir=tmp_path)
    with pytest.raises(OSError, match="could not record the answers of cycle 0"):
        loop.fit(X, y_partial)
    answered = np.flatnonzero((loop.y_ != -1) & (y_partial == -1))
    assert len(answered) >= K - 1 and (loop.y_[answered] == y[answered]).all()
    np.testing.assert_array_equal(loop.annotated_indices_, truth.calls[0][1:])
    np.testing.assert_array_equal(loop.skipped_indices_, truth.calls[0][:1])


def test_more_cycles_after_a_final_fit_queries_again(iris_data, tmp_path, reference):
    X, y, y_partial = iris_data
    state = str(tmp_path / "state")
    first = _loop(RecordingOracle(y, y_partial), state, n_cycles=1, final_fit=True)
    first.fit(X, y_partial)
    assert [h["n_queried"] > 0 for h in first.history_] == [True, False]
    oracle = RecordingOracle(y, first.y_)
    extended = _loop(oracle, state, n_cycles=2).fit(X, y_partial)
    assert len(oracle.calls) == 1  # cycle 1's query, with the final fit's model
    _assert_same_run(extended, reference)
    assert sorted({c for _, _, c in read_annotations(state)}) == [0, 1]


def test_an_empty_string_class_is_refused_with_a_state_dir(iris_data, tmp_path):
    # An empty label marks a skipped row in the log: the class would be lost.
    X, y, y_partial = iris_data
    names = np.array(["", "versicolor", "virginica"], dtype=object)
    y_named = np.where(y_partial == -1, -1, names[np.maximum(y_partial, 0)])
    loop = _loop(lambda idx: names[y[idx]], state_dir=tmp_path)
    with pytest.raises(ValueError, match="empty string"):
        loop.fit(X, y_named)
    assert not os.listdir(tmp_path)
    assert set(_loop(lambda idx: names[y[idx]], n_cycles=1).fit(X, y_named).y_) == {
        -1,
        *names,
    }


def test_hand_edited_skips_in_the_log(iris_data, tmp_path):
    X, y, y_partial = iris_data
    truth = RecordingOracle(y, y_partial)
    _loop(lambda idx: [None, *truth(idx)[1:]], tmp_path, n_cycles=1).fit(X, y_partial)
    skipped = int(truth.calls[0][0])
    log = tmp_path / "annotations.csv"
    text = log.read_text()
    # The person fills in the label later: the row is labeled, not skipped.
    log.write_text(text + f"{skipped},{y[skipped]},0\n")
    loop = _loop(_refuse, tmp_path, n_cycles=1).fit(X, y_partial)
    assert loop.y_[skipped] == y[skipped] and loop.skipped_indices_.size == 0
    # A skip line after a label (or for an initially labeled row) is a conflict.
    labeled = int(np.flatnonzero(y_partial != -1)[0])
    for row in (skipped, labeled):
        log.write_text(text + f"{skipped},{y[skipped]},0\n{row},,0\n")
        with pytest.raises(ValueError, match=f"Row {row} is labeled .* skips it"):
            _loop(_refuse, tmp_path, n_cycles=1).fit(X, y_partial)


def test_an_open_round_survives_a_shorter_run_with_a_final_fit(
    iris_data, tmp_path, monkeypatch, reference
):
    # Crash inside cycle 1's log write; a run asking for 1 cycle and a final
    # fit must keep the round open, so that a later run asks only its rest.
    X, y, y_partial = iris_data
    first = _kill_inside_log_write(monkeypatch, iris_data, tmp_path, 1)
    with pytest.warns(UserWarning, match="answers of cycle 1"):
        _loop(_refuse, tmp_path, n_cycles=1, final_fit=True).fit(X, y_partial)
    second = RecordingOracle(y, y_partial)
    second.labeled[first.calls[0]] = True
    second.labeled[first.calls[1][:2]] = True
    with pytest.warns(UserWarning, match="answers of cycle 1"):
        loop = _loop(second, tmp_path, n_cycles=2).fit(X, y_partial)
    assert [c.tolist() for c in second.calls] == [first.calls[1][2:].tolist()]
    _assert_same_run(loop, reference)


def test_a_resumed_fit_calls_on_cycle_end_for_the_cycles_it_runs(iris_data, tmp_path):
    X, y, y_partial = iris_data
    logged = _answer_one_cycle_then_stop(iris_data, tmp_path)  # cycle 0 done
    second = RecordingOracle(y, y_partial)
    second.labeled[[r[0] for r in logged]] = True  # asserts no row is asked twice
    cycles = []
    loop = _loop(second, tmp_path, final_fit=True).set_params(
        on_cycle_end=lambda loop, cycle, est: cycles.append(cycle)
    )
    assert loop.fit(X, y_partial).start_cycle_ == 1 and cycles == [1, 2]


@pytest.mark.parametrize("failing", [0, 2], ids=["round", "final fit"])
def test_an_on_cycle_end_error_keeps_the_log_and_a_resume_calls_it_again(
    iris_data, tmp_path, reference, failing
):
    X, y, y_partial = iris_data
    first = RecordingOracle(y, y_partial)
    called = []

    def fails(loop, cycle, estimator):
        called.append(cycle)
        if cycle == failing:
            raise _Killed

    loop = _loop(first, tmp_path, final_fit=failing == 2)
    with pytest.raises(_Killed):
        loop.set_params(on_cycle_end=fails).fit(X, y_partial)
    assert [r[0] for r in read_annotations(tmp_path)] == list(loop.annotated_indices_)
    second = RecordingOracle(y, y_partial)
    second.labeled = first.labeled.copy()  # asserts no row is asked twice
    again = []
    resumed = loop.set_params(
        oracle=second, on_cycle_end=lambda loop, cycle, est: again.append(cycle)
    ).fit(X, y_partial)
    # called again for the cycle whose call failed, then for the cycles after it
    assert again == list(range(failing, 2 + (failing == 2)))
    ref, _ = reference
    np.testing.assert_array_equal(resumed.annotated_indices_, ref.annotated_indices_)
    assert resumed.history_[:2] == ref.history_
