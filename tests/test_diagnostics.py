import warnings

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.model_selection import train_test_split

from sklearn_boostmis import BoostMISClassifier, PseudoLabelCollapseWarning
from sklearn_boostmis.diagnostics import starved_classes, warn_on_collapse


def test_starved_classes_compares_pseudo_to_labeled_shares():
    labeled = [0] * 90 + [1] * 10
    # 10% of the labels, 0.5% of the pseudo-labels: starved
    assert starved_classes(labeled, [0] * 398 + [1] * 2, 2) == [
        (1, 0.1, pytest.approx(0.005))
    ]
    # 1.5% is above a tenth of 10%: not starved
    assert starved_classes(labeled, [0] * 394 + [1] * 6, 2) == []
    # class 2 was expected 2 times among 40 pseudo-labels: too few to judge
    three = [0] * 85 + [1] * 10 + [2] * 5
    assert starved_classes(three, [0] * 30 + [1] * 10, 3) == []
    assert starved_classes(three, [0] * 90 + [1] * 10, 3) == [(2, 0.05, 0.0)]
    # ... unless all of at least 20 pseudo-labels are of one class
    assert starved_classes(labeled, [0] * 19, 2) == []
    assert starved_classes(labeled, [0] * 20, 2) == [(1, 0.1, 0.0)]
    assert starved_classes(labeled, [], 2) == []
    assert starved_classes(labeled, [0] * 50, 2, fraction=0.0) == []
    with pytest.raises(ValueError, match=r"labeled must hold .* in \[0, 2\)"):
        starved_classes([0, 1, 2], [0] * 30, 2)
    with pytest.raises(ValueError, match="pseudo must hold"):
        starved_classes(labeled, [0, -1], 2)


def test_warn_on_collapse_needs_starved_predictions_too():
    classes = np.array(["benign", "malignant"], dtype=object)
    labeled, pseudo = [0] * 9 + [1], [0] * 100
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # the predictions still name class 1 often enough: no warning
        warn_on_collapse(classes, labeled, pseudo, lambda: [0] * 99 + [1] * 2)

        def never_called():
            raise AssertionError("predictions are only needed for suspects")

        warn_on_collapse(classes, labeled, [0] * 90 + [1] * 10, never_called)
    with pytest.warns(PseudoLabelCollapseWarning, match="'malignant' is 10.0%"):
        collapsed = warn_on_collapse(classes, labeled, pseudo, lambda: [0] * 100)
    assert collapsed == ["malignant"]


def _imbalanced(seed):
    """95:5 classes, 40 stratified labels: BoostMIS collapses onto class 0."""
    X, y = make_classification(
        n_samples=600,
        n_features=20,
        n_informative=5,
        weights=[0.95],
        class_sep=1.0,
        random_state=seed,
    )
    keep, _ = train_test_split(
        np.arange(len(y)), train_size=40, stratify=y, random_state=seed
    )
    y_partial = np.full_like(y, -1)
    y_partial[keep] = y[keep]
    return X.astype(np.float32), y, y_partial


def test_fit_warns_when_the_minority_class_collapses():
    X, y, y_partial = _imbalanced(0)
    with pytest.warns(PseudoLabelCollapseWarning, match="class 1 ") as record:
        clf = BoostMISClassifier(max_epochs=10, prior_correction=None, random_state=0)
        clf.fit(X, y_partial)
    assert record[0].filename == __file__  # points at the caller of fit
    assert clf.collapsed_classes_ == [1]
    # the warning is about a real failure: the minority is barely predicted
    assert (clf.predict(X) == 1).sum() < 0.3 * (y == 1).sum()
    assert (clf.transduction_ == 1).sum() < 0.3 * (y_partial == 1).sum() + 5


def test_fit_warns_when_every_pseudo_label_is_one_class(iris_data):
    # 40 / 1 / 1 labels: the labeled shares expect too few pseudo-labels of
    # classes 1 and 2 to judge them, but the model predicts class 0 everywhere
    X, y, _ = iris_data
    y_partial = np.full_like(y, -1)
    for c, n in ((0, 40), (1, 1), (2, 1)):
        y_partial[np.flatnonzero(y == c)[:n]] = c
    with pytest.warns(PseudoLabelCollapseWarning) as record:
        clf = BoostMISClassifier(prior_correction=None, random_state=0)
        clf.fit(X, y_partial)
    assert [str(w.message)[:8] for w in record] == ["class 1 ", "class 2 "]
    assert clf.collapsed_classes_ == [1, 2]
    assert (clf.predict(X) == 0).all()  # a real failure (labels only: 0.65 acc)


def test_the_default_prior_correction_does_not_collapse_there():
    X, y, y_partial = _imbalanced(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PseudoLabelCollapseWarning)
        clf = BoostMISClassifier(max_epochs=10, random_state=0).fit(X, y_partial)
    assert clf.collapsed_classes_ == []
    paper = BoostMISClassifier(max_epochs=10, prior_correction=None, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PseudoLabelCollapseWarning)
        paper.fit(X, y_partial)
    assert (clf.predict(X) == 1).sum() > (paper.predict(X) == 1).sum()


@pytest.mark.parametrize(
    "params", [{"lambda_u": 0.0}, {"class_weight": "balanced", "lambda_u": 0.0}]
)
def test_no_warning_without_the_consistency_loss(params):
    X, _, y_partial = _imbalanced(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PseudoLabelCollapseWarning)
        clf = BoostMISClassifier(max_epochs=10, random_state=0, **params)
        assert clf.fit(X, y_partial).collapsed_classes_ == []


def test_no_warning_on_a_healthy_fit(digits_data):
    X, _, y_partial = digits_data
    with warnings.catch_warnings():
        warnings.simplefilter("error", PseudoLabelCollapseWarning)
        clf = BoostMISClassifier(max_epochs=10, random_state=0).fit(X, y_partial)
    assert len(np.unique(clf.transduction_[y_partial == -1])) == 11  # 10 and -1
    assert clf.collapsed_classes_ == []
