import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.dummy import DummyClassifier
from sklearn.metrics import f1_score
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_validate

from sklearn_boostmis import (
    BoostMISClassifier,
    LabeledStratifiedKFold,
    make_labeled_scorer,
)

from .conftest import FAST


def _partial_labels(n=60, seed=0):
    rng = np.random.RandomState(seed)
    y = rng.randint(0, 3, n)
    y[rng.rand(n) < 0.5] = -1
    return y


@pytest.mark.parametrize("shuffle, random_state", [(False, None), (True, 0)])
def test_test_folds_are_stratifiedkfolds_on_the_labeled_rows(shuffle, random_state):
    y = _partial_labels()
    labeled, unlabeled = np.flatnonzero(y != -1), np.flatnonzero(y == -1)
    folds = LabeledStratifiedKFold(3, shuffle=shuffle, random_state=random_state)
    reference = StratifiedKFold(3, shuffle=shuffle, random_state=random_state)
    pairs = zip(
        folds.split(np.zeros((len(y), 2)), y),
        reference.split(labeled, y[labeled]),
        strict=True,
    )
    for (train, test), (_, ref_test) in pairs:
        np.testing.assert_array_equal(test, labeled[ref_test])
        assert np.isin(unlabeled, train).all()  # every unlabeled row trains
        np.testing.assert_array_equal(np.sort(np.r_[train, test]), np.arange(len(y)))
        assert (np.diff(train) > 0).all()
    assert folds.get_n_splits() == 3


def test_a_named_scorer_equals_the_labeled_scorer_and_the_metric_by_hand(iris_data):
    X, _, y_partial = iris_data
    clf = BoostMISClassifier(random_state=0, **{**FAST, "max_epochs": 5})
    folds = LabeledStratifiedKFold(3)
    scoring = {"named": "f1_macro", "wrapped": make_labeled_scorer("f1_macro")}
    scores = cross_validate(clf, X, y_partial, scoring=scoring, cv=folds)
    np.testing.assert_array_equal(scores["test_named"], scores["test_wrapped"])
    by_hand = []
    for train, test in folds.split(X, y_partial):
        fitted = clone(clf).fit(X[train], y_partial[train])
        predicted = fitted.predict(X[test])
        by_hand.append(f1_score(y_partial[test], predicted, average="macro"))
    np.testing.assert_allclose(scores["test_named"], by_hand)


def test_a_grid_search_on_string_labels_with_a_named_scorer(iris_data):
    X, _, y_partial = iris_data
    names = np.array(["setosa", "versicolor", "virginica"], dtype=object)
    y_named = np.where(y_partial == -1, -1, names[y_partial])
    search = GridSearchCV(
        BoostMISClassifier(random_state=0, **{**FAST, "max_epochs": 3}),
        {"lambda_u": [0.0, 1.0]},
        scoring="f1_macro",
        cv=LabeledStratifiedKFold(3),
    ).fit(X, y_named)
    assert 0.5 < search.best_score_ <= 1.0
    assert search.best_estimator_.classes_.tolist() == names.tolist()


@pytest.mark.parametrize(
    "y",
    [
        np.array(["cat", -1, "dog", "cat", -1, "dog"], dtype=object),
        ["cat", -1, "dog", "cat", -1, "dog"],
        pd.Series(["cat", -1, "dog", "cat", -1, "dog"]),
        np.array(["cat", -1, 7, "cat", -1, 7], dtype=object),  # do not sort
    ],
)
def test_object_labels_beside_the_integer_minus_one(y):
    splits = list(LabeledStratifiedKFold(2).split(np.zeros((6, 1)), y))
    assert [test.tolist() for _, test in splits] == [[0, 2], [3, 5]]
    assert [train.tolist() for train, _ in splits] == [[1, 3, 4, 5], [0, 1, 2, 4]]


def test_the_string_minus_one_is_a_class_with_a_warning():
    y = np.array(["cat", "-1", "cat", "-1"], dtype=object)  # e.g. read from a CSV
    with pytest.warns(UserWarning, match="string '-1', which is a class here"):
        splits = list(LabeledStratifiedKFold(2).split(np.zeros((4, 1)), y))
    assert sorted(np.r_[splits[0][1], splits[1][1]].tolist()) == [0, 1, 2, 3]
    X = np.zeros((4, 1))
    clf = DummyClassifier(strategy="constant", constant="cat").fit(X, y)
    with pytest.warns(UserWarning, match="string '-1'"):  # was silent
        assert make_labeled_scorer("accuracy")(clf, X, y) == 0.5


@pytest.mark.parametrize(
    "y, match",
    [
        (None, "needs y, with -1 for unlabeled rows"),
        (np.full(6, -1), "every row of y is unlabeled"),
        (
            np.array([0, 0, 0, 1, 1, -1]),
            r"LabeledStratifiedKFold\(n_splits=3\) needs at least 3 labeled rows "
            r"\(y != -1\) of each class.*class 1 has 2\. Label more rows, or use "
            "fewer splits",
        ),
        (np.array([0.0, 1.0, np.nan, 0.0, 1.0, 0.0]), "1 missing label"),
        (np.zeros((6, 2)), "y should be a 1d array"),
    ],
)
def test_bad_labels_are_clear_errors(y, match):
    with pytest.raises(ValueError, match=match):
        next(LabeledStratifiedKFold(3).split(np.zeros((6, 1)), y))


def test_bad_settings_fail_at_construction():
    with pytest.raises(ValueError, match="n_splits=2 or more"):
        LabeledStratifiedKFold(1)
    with pytest.raises(ValueError, match="random_state has no effect"):
        LabeledStratifiedKFold(3, random_state=0)
    assert repr(LabeledStratifiedKFold(4)) == (
        "LabeledStratifiedKFold(n_splits=4, random_state=None, shuffle=False)"
    )
