import json
import os

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from sklearn_boostmis import BoostMISClassifier
from sklearn_boostmis.loop import AnnotationLoop
from sklearn_boostmis.loop._store import AnnotationStore
from sklearn_boostmis.query import InformativeQuerySampler
from sklearn_boostmis.thresholds import AdaptiveThreshold

from .conftest import read_annotations

FAST = dict(max_epochs=5, batch_size=16, module_params={"hidden_units": (32,)})
K = 4


class _Killed(Exception):
    """Stands in for the process dying."""


class RecordingOracle:
    """Answers with the true labels and records every question."""

    def __init__(self, y_true, y_start):
        self.y_true = y_true
        self.labeled = y_start != -1
        self.calls = []

    def __call__(self, idx):
        self.calls.append(np.array(idx))
        assert not self.labeled[idx].any(), "oracle asked about a labeled row"
        self.labeled[idx] = True
        return self.y_true[idx]


def _refuse(idx):
    raise OSError("no annotator")


def _loop(oracle, state_dir=None, n_cycles=2, final_fit=False):
    return AnnotationLoop(
        BoostMISClassifier(random_state=0, **FAST),
        sampler=InformativeQuerySampler(random_state=0),
        oracle=oracle,
        n_cycles=n_cycles,
        budget=K,
        final_fit=final_fit,
        state_dir=state_dir,
    )


@pytest.fixture(scope="module")
def reference(iris_data):
    """An uninterrupted 2-cycle run (no final fit)."""
    X, y, y_partial = iris_data
    oracle = RecordingOracle(y, y_partial)
    return _loop(oracle).fit(X, y_partial), oracle


def test_two_cycles_with_final_fit(iris_data, tmp_path):
    X, y, y_partial = iris_data
    oracle = RecordingOracle(y, y_partial)
    loop = _loop(oracle, state_dir=tmp_path, final_fit=True).fit(X, y_partial, X, y)

    assert len(oracle.calls) == 2
    hist = loop.history_
    assert [h["cycle"] for h in hist] == [0, 1, 2]
    n0 = int((y_partial != -1).sum())
    assert hist[0]["n_labeled"] == n0
    for before, after in zip(hist, hist[1:], strict=False):
        assert after["n_labeled"] == before["n_labeled"] + before["n_queried"]
    for h, asked in zip(hist[:2], oracle.calls, strict=True):
        assert h["n_queried"] == len(asked) and K <= len(asked) <= 2 * K
        assert sum(h["picks"].values()) == len(asked)
        assert h["picks"]["aus"] + h["picks"]["both"] == K
        assert h["picks"]["bus"] + h["picks"]["both"] == K
        assert 0.0 <= h["val_accuracy"] <= 1.0 and 0.0 <= h["val_f1_macro"] <= 1.0
        assert 0.0 < h["threshold"] <= 1.0
    assert hist[2]["n_queried"] == 0 and hist[2]["picks"] is None
    assert loop.n_annotated_ == len(oracle.calls[-1])

    asked = np.concatenate(oracle.calls)
    np.testing.assert_array_equal(loop.annotated_indices_, asked)
    assert (loop.y_ != -1).sum() == n0 + len(asked)
    np.testing.assert_array_equal(loop.y_[asked], y[asked])
    unchanged = np.setdiff1d(np.arange(len(y)), asked)
    np.testing.assert_array_equal(loop.y_[unchanged], y_partial[unchanged])
    assert (y_partial[asked] == -1).all()  # the caller's y is not modified
    # The final fit saw every answer; cycle 1 was warm-started with N_A.
    assert loop.estimator_.warm_start
    assert loop.estimator_.threshold.n_annotated == len(oracle.calls[-1])
    assert loop.estimator_.threshold.quota == K

    log = read_annotations(tmp_path)
    assert [r[0] for r in log] == asked.tolist()
    assert [r[1] for r in log] == y[asked].tolist()
    n_first, n_second = map(len, oracle.calls)
    assert [r[2] for r in log] == [0] * n_first + [1] * n_second
    files = sorted(os.listdir(tmp_path))
    assert files == ["annotations.csv", "model.pkl", "state.json"]


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


def test_image_validation_rows_may_carry_the_channel_axis(digits_data):
    X, y, y_partial = digits_data
    images = X[:200].reshape(-1, 8, 8)
    loop = AnnotationLoop(
        BoostMISClassifier(random_state=0, max_epochs=1),
        oracle=lambda idx: y[idx],
        n_cycles=0,
    ).fit(images, y_partial[:200], X_val=images[:50, None], y_val=y[:50])
    assert loop.history_[0]["val_accuracy"] is not None


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


def test_fixed_threshold_without_state_dir(iris_data):
    X, y, y_partial = iris_data

    def run():
        oracle = RecordingOracle(y, y_partial)
        loop = AnnotationLoop(
            BoostMISClassifier(random_state=0, threshold="fixed", **FAST),
            oracle=oracle,
            n_cycles=2,
            budget=3,
            final_fit=False,
        ).fit(X, y_partial)
        return loop, [c.tolist() for c in oracle.calls]

    loop, calls = run()
    assert len(calls) == 2 and loop.estimator_.threshold == "fixed"
    # the default sampler is seeded like the classifier: the same questions again
    assert run()[1] == calls
    assert loop.estimator_.warm_start
    assert isinstance(loop.sampler, type(None))  # default sampler, not stored
    assert [h["val_accuracy"] for h in loop.history_] == [None, None]


def test_a_refit_without_fits_keeps_no_earlier_model(iris_data):
    X, y, y_partial = iris_data
    loop = AnnotationLoop(
        BoostMISClassifier(random_state=0, **FAST), oracle=RecordingOracle(y, y_partial)
    )
    loop.set_params(n_cycles=0).fit(X, y_partial)
    assert hasattr(loop, "estimator_")
    loop.set_params(final_fit=False).fit(X, y_partial)  # nothing to fit
    assert loop.history_ == [] and not hasattr(loop, "estimator_")


def test_an_adaptive_threshold_object_also_gets_n_a(iris_data):
    X, y, y_partial = iris_data
    policy = AdaptiveThreshold(alpha=0.8, beta=0.1)
    loop = AnnotationLoop(
        BoostMISClassifier(random_state=0, threshold=policy, **FAST),
        oracle=RecordingOracle(y, y_partial),
        n_cycles=1,
        budget=K,
    ).fit(X, y_partial)
    final = loop.estimator_.threshold
    assert (final.n_annotated, final.quota) == (loop.n_annotated_, K) != (0, None)
    assert (final.alpha, final.beta) == (0.8, 0.1) and policy.n_annotated == 0


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


def test_without_a_state_dir_a_failed_oracle_says_fit_starts_over(iris_data):
    X, _, y_partial = iris_data
    with pytest.raises(RuntimeError, match="without a state_dir, fit starts over"):
        _loop(_refuse).fit(X, y_partial)


def test_invalid_parameters(iris_data):
    X, _, y_partial = iris_data
    with pytest.raises(ValueError, match="oracle"):
        AnnotationLoop(BoostMISClassifier(**FAST)).fit(X, y_partial)
    with pytest.raises(ValueError, match="X_val"):
        _loop(_refuse).fit(X, y_partial, X_val=X)
    with pytest.raises(TypeError, match="needs a BoostMISClassifier.*LogisticReg"):
        AnnotationLoop(LogisticRegression(), oracle=_refuse).fit(X, y_partial)
    unpicklable = make_pipeline(
        FunctionTransformer(lambda x: x), BoostMISClassifier(**FAST)
    )
    with pytest.raises(TypeError, match="state_dir saves the estimator with pickle"):
        AnnotationLoop(unpicklable, oracle=_refuse, state_dir=".").fit(X, y_partial)


@pytest.mark.parametrize(
    "rows, labels, match",
    [
        (slice(None), "unlabeled", "every row of y_val is unlabeled"),
        (slice(None), "short", "inconsistent numbers of samples"),
        (np.s_[:, :2], "true", r"X_val rows have shape \(2,\), but X rows .*\(4,\)"),
    ],
)
def test_bad_validation_set_fails_before_the_first_fit(
    iris_data, monkeypatch, rows, labels, match
):
    X, y, y_partial = iris_data
    y_val = {"unlabeled": np.full(len(y), -1), "short": y[:-1], "true": y}[labels]
    fits = []
    monkeypatch.setattr(AnnotationLoop, "_fit_estimator", lambda *a: fits.append(1))
    with pytest.raises(ValueError, match=match):
        _loop(_refuse).fit(X, y_partial, X_val=X[rows], y_val=y_val)
    assert fits == []


@pytest.mark.parametrize(
    "param, value", [("xi", -1.0), ("selectors", "all"), ("batch_size", 0)]
)
def test_bad_sampler_parameters_fail_before_the_first_fit(
    iris_data, monkeypatch, param, value
):
    X, _, y_partial = iris_data
    fits = []
    monkeypatch.setattr(AnnotationLoop, "_fit_estimator", lambda *a: fits.append(1))
    loop = _loop(_refuse)
    loop.sampler.set_params(**{param: value})
    with pytest.raises(ValueError, match=f"'{param}' parameter of InformativeQuery"):
        loop.fit(X, y_partial)
    assert fits == []


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


def test_a_state_from_before_skips_resumes(iris_data, tmp_path):
    X, y, y_partial = iris_data
    _loop(RecordingOracle(y, y_partial), tmp_path, n_cycles=1).fit(X, y_partial)
    state_file = tmp_path / "state.json"
    state = json.loads(state_file.read_text())
    for entry in state["history"]:
        del entry["n_skipped"]
    state_file.write_text(json.dumps(state))
    more = RecordingOracle(y, y_partial)
    more.labeled[[r[0] for r in read_annotations(tmp_path)]] = True
    loop = _loop(more, tmp_path, n_cycles=2).fit(X, y_partial)
    assert [h["n_skipped"] for h in loop.history_] == [0, 0]


def test_pipeline_estimator_matches_the_bare_classifier(iris_data):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y, y_partial = iris_data
    X_raw = X * 3.0 + 1.0  # the pipeline's scaler undoes this
    X_scaled = StandardScaler().fit_transform(X_raw)
    runs = {}
    for name, estimator, data in [
        ("bare", BoostMISClassifier(random_state=0, **FAST), X_scaled),
        (
            "pipeline",
            make_pipeline(StandardScaler(), BoostMISClassifier(random_state=0, **FAST)),
            X_raw,
        ),
    ]:
        loop = AnnotationLoop(
            estimator,
            sampler=InformativeQuerySampler(random_state=0),
            oracle=RecordingOracle(y, y_partial),
            n_cycles=2,
            budget=K,
        )
        runs[name] = (loop.fit(data, y_partial.copy(), data, y), data)
    (bare, X_bare), (pipe, X_pipe) = runs["bare"], runs["pipeline"]
    np.testing.assert_array_equal(pipe.annotated_indices_, bare.annotated_indices_)
    assert pipe.history_ == bare.history_
    # warm-started through the pipeline: the last fit knew the last round's N_A
    assert pipe.estimator_[-1].threshold.n_annotated == bare.n_annotated_
    np.testing.assert_array_equal(
        pipe.estimator_.predict_proba(X_pipe), bare.estimator_.predict_proba(X_bare)
    )
