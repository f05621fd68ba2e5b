"""Answers read as the annotation log reads them back; the class prior persists."""

import numpy as np
import pytest

from sklearn_boostmis import AnnotationLoop, BoostMISClassifier, InformativeQuerySampler
from sklearn_boostmis.persistence import load_weights, save_weights

from .conftest import FAST


def _loop(state_dir, oracle):
    return AnnotationLoop(
        BoostMISClassifier(random_state=0, **FAST),
        InformativeQuerySampler(random_state=0),
        oracle,
        n_cycles=1,
        budget=2,
        final_fit=False,
        state_dir=state_dir,
    )


@pytest.mark.parametrize("answer, expected", [("", None), ("1", 1)])
def test_an_answer_is_judged_as_the_log_reads_it_back(
    iris_data, tmp_path, answer, expected
):
    X, y, y_partial = iris_data
    asked = []

    def oracle(indices):
        asked.extend(indices.tolist())
        return [answer] + [y[i] for i in indices[1:]]

    first = _loop(tmp_path, oracle).fit(X, y_partial)
    row = asked[0]
    if expected is None:
        assert row in first.skipped_indices_ and first.y_[row] == -1
    else:
        assert first.y_[row] == expected
    assert first.unknown_answers_ == {}
    resumed = _loop(tmp_path, oracle).fit(X, y_partial)  # nothing asked again
    assert len(asked) == len(set(asked))
    np.testing.assert_array_equal(resumed.y_, first.y_)
    np.testing.assert_array_equal(resumed.skipped_indices_, first.skipped_indices_)


def test_a_string_that_is_no_class_is_still_refused(iris_data, tmp_path):
    X, y, y_partial = iris_data

    def oracle(indices):
        return ["seven"] + [y[i] for i in indices[1:]]

    with pytest.raises(ValueError, match="not among the classes"):
        _loop(tmp_path, oracle).fit(X, y_partial)


def test_save_and_load_weights_keep_the_class_prior(iris_data, tmp_path):
    X, _, y_partial = iris_data
    clf = BoostMISClassifier(prior_correction="align", random_state=0, **FAST)
    clf.fit(X, y_partial)
    save_weights(clf, tmp_path / "w.safetensors")
    same = BoostMISClassifier(prior_correction="align", **FAST)
    loaded = load_weights(same, tmp_path / "w.safetensors")
    np.testing.assert_allclose(loaded.class_prior_, clf.class_prior_)
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
