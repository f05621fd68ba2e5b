import threading

import numpy as np
import pytest
import torch
from joblib import parallel_config
from skorch.callbacks import Callback

from sklearn_boostmis import BoostMISClassifier, InformativeQuerySampler
from sklearn_boostmis._threads import n_threads, torch_threads

from .conftest import FAST

SEEN = []  # the estimator deep-copies its callbacks: they record here


class RecordThreads(Callback):
    """Records torch's intra-op thread count at every training batch."""

    def on_batch_end(self, net, **kwargs):
        SEEN.append(torch.get_num_threads())


@pytest.fixture
def caller_threads():
    """Give the test a caller whose thread count differs from every n_jobs used."""
    before = torch.get_num_threads()
    torch.set_num_threads(3)
    yield 3
    torch.set_num_threads(before)


@pytest.mark.parametrize("n_jobs, expected", [(None, 1), (1, 1), (2, 2)])
def test_fit_uses_n_jobs_threads_and_restores_the_callers(
    iris_data, caller_threads, n_jobs, expected
):
    X, _, y_partial = iris_data
    SEEN.clear()
    clf = BoostMISClassifier(
        random_state=0, n_jobs=n_jobs, callbacks=[RecordThreads()], **FAST
    ).fit(X, y_partial)
    assert SEEN and set(SEEN) == {expected}
    assert torch.get_num_threads() == caller_threads
    clf.predict_proba(X)
    assert torch.get_num_threads() == caller_threads


def test_prediction_and_queries_run_with_n_jobs_threads(iris_data, caller_threads):
    X, _, y_partial = iris_data
    clf = BoostMISClassifier(random_state=0, **FAST).fit(X, y_partial)
    seen = []
    forward = clf.net_.ema_module_.forward

    def spy(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return forward(*args, **kwargs)

    clf.net_.ema_module_.forward = spy
    clf.predict(X)
    clf.predict_log_proba(X)
    InformativeQuerySampler(random_state=0)(clf, X[y_partial == -1], n_instances=3)
    assert seen and set(seen) == {1}
    assert torch.get_num_threads() == caller_threads


def test_results_do_not_depend_on_n_jobs(iris_data):
    X, _, y_partial = iris_data
    one = BoostMISClassifier(random_state=0, n_jobs=1, **FAST).fit(X, y_partial)
    two = BoostMISClassifier(random_state=0, n_jobs=2, **FAST).fit(X, y_partial)
    np.testing.assert_allclose(one.predict_proba(X), two.predict_proba(X), atol=1e-5)


def test_n_jobs_follows_joblibs_convention():
    assert n_threads(None) == 1
    assert n_threads(3) == 3
    assert n_threads(-1) >= 1
    with parallel_config(n_jobs=2):
        assert n_threads(None) == 2


def test_n_jobs_zero_is_refused(iris_data):
    X, _, y_partial = iris_data
    with pytest.raises(ValueError, match="n_jobs"):
        BoostMISClassifier(n_jobs=0, **FAST).fit(X, y_partial)


def test_nested_and_concurrent_blocks_restore_the_callers_count(caller_threads):
    started, release = threading.Barrier(2), threading.Event()

    def hold():
        with torch_threads(2):
            started.wait()
            release.wait()

    worker = threading.Thread(target=hold)
    worker.start()
    started.wait()
    with torch_threads(1), torch_threads(1):
        pass
    release.set()
    worker.join()
    assert torch.get_num_threads() == caller_threads
