import pytest

from sklearn_boostmis import BoostMISClassifier
from sklearn_boostmis.progress import FitProgress

from .conftest import FAST


class _Clock:
    """A monotonic clock that advances one second per reading."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        self.now += 1.0
        return self.now


def test_lines_count_steps_and_extrapolate_the_time_left(iris_data, monkeypatch):
    X, _, y_partial = iris_data
    monkeypatch.setattr("sklearn_boostmis.progress.time.monotonic", _Clock())
    lines = []
    progress = FitProgress(interval=10, prefix="cycle 2", sink=lines.append)
    clf = BoostMISClassifier(random_state=0, callbacks=[progress], **FAST)
    clf.fit(X, y_partial)
    total = sum(len(epoch["batches"]) for epoch in clf.history_)
    # one clock reading at train begin, one per step: a line every 10 steps
    assert len(lines) == total // 10
    assert lines[0] == (
        f"cycle 2: step 10 / {total:,}, 10 s elapsed, about {total - 10} s left"
    )


def test_a_fit_shorter_than_the_interval_prints_nothing(iris_data):
    X, _, y_partial = iris_data
    lines = []
    progress = FitProgress(interval=3600, sink=lines.append)
    BoostMISClassifier(random_state=0, callbacks=[progress], **FAST).fit(X, y_partial)
    assert lines == []


def test_interval_must_be_positive(iris_data):
    X, _, y_partial = iris_data
    clf = BoostMISClassifier(callbacks=[FitProgress(interval=0)], **FAST)
    with pytest.raises(ValueError, match="interval must be > 0"):
        clf.fit(X, y_partial)
