"""AnnotationLoop's cycle: fit, select, ask, record; its parameters and hook."""

import os

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from sklearn_boostmis import BoostMISClassifier
from sklearn_boostmis.loop import AnnotationLoop
from sklearn_boostmis.query import InformativeQuerySampler
from sklearn_boostmis.thresholds import AdaptiveThreshold

from .conftest import read_annotations

FAST = dict(max_epochs=5, batch_size=16, module_params={"hidden_units": (32,)})
K = 4


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


def test_refit_is_the_final_fit(iris_data):
    X, y, y_partial = iris_data
    final = _loop(lambda idx: y[idx], final_fit=True).fit(X, y_partial, X, y)
    loop = _loop(lambda idx: y[idx]).fit(X, y_partial, X, y)
    assert loop.refit(X, X, y) is loop.estimator_
    assert loop.history_ == final.history_
    np.testing.assert_allclose(
        loop.estimator_.predict_proba(X), final.estimator_.predict_proba(X)
    )


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


def test_image_validation_rows_may_carry_the_channel_axis(digits_data):
    X, y, y_partial = digits_data
    images = X[:200].reshape(-1, 8, 8)
    loop = AnnotationLoop(
        BoostMISClassifier(random_state=0, max_epochs=1),
        oracle=lambda idx: y[idx],
        n_cycles=0,
    ).fit(images, y_partial[:200], X_val=images[:50, None], y_val=y[:50])
    assert loop.history_[0]["val_accuracy"] is not None


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


def test_pipeline_estimator_matches_the_bare_classifier(iris_data):
    from sklearn.pipeline import make_pipeline

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


@pytest.mark.filterwarnings("ignore:y contains no unlabeled samples")
@pytest.mark.parametrize("final_fit", [False, True])
def test_the_rounds_end_when_no_row_is_left_to_ask(iris_data, final_fit):
    X, y, _ = iris_data
    y_start = np.where(np.arange(len(y)) % 25 == 0, -1, y)  # 6 rows to ask
    loop = AnnotationLoop(
        BoostMISClassifier(random_state=0, **FAST),
        oracle=RecordingOracle(y, y_start),
        n_cycles=3,
        budget=6,
        final_fit=final_fit,
    ).fit(X, y_start)
    # the first round asks every row; only a final fit may follow it
    expected = [6, 0] if final_fit else [6]
    assert [h["n_queried"] for h in loop.history_] == expected


class CycleRecorder:
    """An on_cycle_end that records what each call sees."""

    def __init__(self, state_dir=None):
        self.state_dir = state_dir
        self.calls = []

    def __call__(self, loop, cycle, estimator):
        logged = len(read_annotations(self.state_dir)) if self.state_dir else None
        entry = loop.history_[-1]
        self.calls.append((cycle, entry["cycle"], estimator is loop.estimator_, logged))


def test_on_cycle_end_is_called_after_each_cycle_is_recorded(iris_data, tmp_path):
    X, y, y_partial = iris_data
    recorder = CycleRecorder(tmp_path)
    loop = _loop(RecordingOracle(y, y_partial), tmp_path, final_fit=True)
    loop.set_params(on_cycle_end=recorder).fit(X, y_partial)
    n_queried = [h["n_queried"] for h in loop.history_]
    # each call: the cycle's history entry and fitted estimator, its answers logged
    assert recorder.calls == [
        (0, 0, True, n_queried[0]),
        (1, 1, True, n_queried[0] + n_queried[1]),
        (2, 2, True, n_queried[0] + n_queried[1]),  # the final fit
    ]


def test_on_cycle_end_must_be_callable(iris_data):
    X, _, y_partial = iris_data
    loop = _loop(_refuse).set_params(on_cycle_end="report")
    with pytest.raises(ValueError, match="'on_cycle_end' parameter of AnnotationLoop"):
        loop.fit(X, y_partial)
