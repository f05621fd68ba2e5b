import math

import numpy as np
import pytest
import torch

from sklearn_boostmis import BoostMISClassifier
from sklearn_boostmis.losses import supervised_loss

from .conftest import FAST


def test_weighted_supervised_loss_matches_a_hand_computed_value():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    y = torch.tensor([0, 1, 1])
    ce = [
        math.log(1 + math.exp(-2.0)),
        math.log(1 + math.exp(-1.0)),
        math.log(2.0),
    ]
    s, w = [1.0, 3.0, 0.0], [2.0, 0.5]
    row = [s[i] * w[int(y[i])] for i in range(3)]
    expected = sum(r * c for r, c in zip(row, ce, strict=True)) / sum(row)
    loss = supervised_loss(logits, y, torch.tensor(w), torch.tensor(s))
    assert float(loss) == pytest.approx(expected, rel=1e-6)


def test_unit_weights_give_the_unweighted_model(iris_data):
    X, _, y_partial = iris_data
    plain = BoostMISClassifier(random_state=0, **FAST).fit(X, y_partial)
    ones = BoostMISClassifier(random_state=0, **FAST).fit(
        X, y_partial, sample_weight=np.ones(len(y_partial))
    )
    np.testing.assert_allclose(plain.predict_proba(X), ones.predict_proba(X), atol=1e-5)


def test_weights_move_the_model_toward_the_heavy_class(iris_data):
    X, y, y_partial = iris_data
    weights = np.where(y_partial == 2, 20.0, 1.0)
    plain = BoostMISClassifier(random_state=0, lambda_u=0.0, **FAST).fit(X, y_partial)
    heavy = BoostMISClassifier(random_state=0, lambda_u=0.0, **FAST).fit(
        X, y_partial, sample_weight=weights
    )
    assert (heavy.predict(X) == 2).sum() > (plain.predict(X) == 2).sum()


def test_weights_of_unlabeled_rows_are_not_used(iris_data):
    X, _, y_partial = iris_data
    a = np.ones(len(y_partial))
    b = np.where(y_partial == -1, 7.0, 1.0)
    fit_a = BoostMISClassifier(random_state=0, **FAST).fit(
        X, y_partial, sample_weight=a
    )
    fit_b = BoostMISClassifier(random_state=0, **FAST).fit(
        X, y_partial, sample_weight=b
    )
    np.testing.assert_array_equal(fit_a.predict_proba(X), fit_b.predict_proba(X))


@pytest.mark.parametrize(
    "weights, match",
    [
        (lambda n, lab: -np.ones(n), "Negative values"),
        (lambda n, lab: np.ones(n - 1), "sample_weight"),
        (lambda n, lab: np.where(lab, 0.0, 1.0), "0 on every labeled row"),
    ],
)
def test_bad_sample_weights_are_refused(iris_data, weights, match):
    X, _, y_partial = iris_data
    with pytest.raises(ValueError, match=match):
        BoostMISClassifier(**FAST).fit(
            X, y_partial, sample_weight=weights(len(y_partial), y_partial != -1)
        )


def test_grid_search_passes_sample_weight(iris_data):
    from sklearn.model_selection import GridSearchCV

    from sklearn_boostmis import make_labeled_scorer

    X, _, y_partial = iris_data
    search = GridSearchCV(
        BoostMISClassifier(random_state=0, **FAST),
        {"lambda_u": [0.0, 1.0]},
        scoring=make_labeled_scorer("accuracy"),
        cv=2,
    )
    search.fit(X, y_partial, sample_weight=np.ones(len(y_partial)))
    assert search.best_score_ > 0.5
