import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier

from sklearn_boostmis._labels import labeled_mask
from sklearn_boostmis.scoring import make_labeled_scorer


def test_a_list_of_strings_keeps_the_integer_minus_one_unlabeled():
    # numpy alone would make it the string '-1', a class
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert labeled_mask(["a", -1, "b"]).tolist() == [True, False, True]
    X = np.zeros((4, 1))
    clf = DummyClassifier(strategy="constant", constant="a").fit(X, ["a", "b"] * 2)
    scorer = make_labeled_scorer("accuracy")
    assert scorer(clf, X, ["a", -1, "b", -1]) == 0.5
    with pytest.warns(UserWarning, match="string '-1'"):  # strings only: a class
        assert labeled_mask(["a", "-1"]).tolist() == [True, True]
    with pytest.raises(ValueError, match="1 missing label"):
        labeled_mask(["a", None, -1])


def test_scorer_on_dataframe_and_repr():
    X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0]})
    y = np.array([1, 0, -1, 1])
    clf = DummyClassifier(strategy="constant", constant=1).fit(X.iloc[:2], [1, 0])
    scorer = make_labeled_scorer("accuracy")
    assert scorer(clf, X, y) == pytest.approx(2 / 3)
    assert "accuracy" in repr(scorer) or "make_labeled_scorer" in repr(scorer)


@pytest.mark.parametrize(
    "y",
    [
        np.array([1.0, np.nan, 0.0]),
        np.array(["a", None, "b"], dtype=object),
        pd.Series(["a", None, "b"], dtype="string"),
    ],
)
def test_missing_labels_are_refused_not_scored_as_wrong(y):
    X = np.zeros((3, 1))
    clf = DummyClassifier(strategy="most_frequent").fit(
        X[[0, 2]], np.asarray(y)[[0, 2]]
    )
    with pytest.raises(ValueError, match="y has 1 missing label.*with -1"):
        make_labeled_scorer("accuracy")(clf, X, y)
    assert labeled_mask(np.array([1.0, -1.0])).tolist() == [True, False]


def test_nothing_to_score_and_length_mismatch_are_clear_errors():
    X = np.zeros((3, 1))
    clf = DummyClassifier(strategy="most_frequent").fit(X, [0, 1, 1])
    scorer = make_labeled_scorer("accuracy")
    with pytest.raises(ValueError, match="every row of y is unlabeled"):
        scorer(clf, X, np.full(3, -1))
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        scorer(clf, X, np.array([0, 1]))


def test_sample_weight_follows_the_labeled_rows_also_through_routing():
    from sklearn import config_context
    from sklearn.metrics import accuracy_score
    from sklearn.model_selection import KFold, cross_validate

    X = np.arange(12.0).reshape(-1, 1)
    y = np.array([0, 1, -1, 1, 0, -1, 1, 1, -1, 0, 1, 1])
    weights = np.arange(1.0, 13.0)
    clf = DummyClassifier(strategy="constant", constant=1).fit(X, np.abs(y))
    scorer = make_labeled_scorer("accuracy")
    rows = y != -1
    expected = accuracy_score(
        y[rows], clf.predict(X[rows]), sample_weight=weights[rows]
    )
    assert scorer(clf, X, y, sample_weight=weights) == pytest.approx(expected)
    with config_context(enable_metadata_routing=True):
        scores = cross_validate(
            DummyClassifier(strategy="constant", constant=1).set_fit_request(
                sample_weight=False
            ),
            X,
            y,
            cv=KFold(2),
            scoring=make_labeled_scorer("accuracy").set_score_request(
                sample_weight=True
            ),
            params={"sample_weight": weights},
        )["test_score"]
    halves = [slice(0, 6), slice(6, 12)]
    expected = [
        accuracy_score(
            y[h][rows[h]], np.ones(rows[h].sum()), sample_weight=weights[h][rows[h]]
        )
        for h in halves
    ]
    np.testing.assert_allclose(scores, expected)


def test_plain_function_scorer_under_routing_and_bad_weights():
    from sklearn import config_context
    from sklearn.model_selection import KFold, cross_validate

    X, y = np.arange(8.0).reshape(-1, 1), np.array([0, 1, -1, 1, 0, 1, -1, 0])
    scorer = make_labeled_scorer(lambda est, X, y: float(len(y)))
    with config_context(enable_metadata_routing=True):
        scores = cross_validate(DummyClassifier(), X, y, cv=KFold(2), scoring=scorer)[
            "test_score"
        ]
    assert scores.tolist() == [3.0, 3.0]  # the labeled rows of each half
    with pytest.raises(TypeError, match="make_scorer"):
        scorer.set_score_request(sample_weight=True)
    clf = DummyClassifier().fit(X, y)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        make_labeled_scorer("accuracy")(clf, X, y, sample_weight=np.ones(3))
