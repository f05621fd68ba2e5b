import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.base import clone

from sklearn_boostmis import BoostMISClassifier
from sklearn_boostmis.imbalance import (
    PriorCorrection,
    check_class_prior,
    make_prior_correction,
    smoothed_prior,
)
from sklearn_boostmis.losses import masked_consistency_loss, supervised_loss

from .conftest import FAST


def test_prior_is_add_one_smoothed_over_every_known_class():
    prior = smoothed_prior(torch.tensor([0, 0, 0, 2]), n_classes=4)
    np.testing.assert_allclose(prior.numpy(), np.array([4, 1, 2, 1]) / 8)
    assert float(prior.sum()) == pytest.approx(1.0)


def test_declared_classes_without_labels_get_a_positive_prior(iris_data):
    X, y, _ = iris_data
    y_partial = np.full_like(y, -1)
    y_partial[[0, 1, 2, 50, 51]] = y[[0, 1, 2, 50, 51]]  # classes 0 and 1 only
    clf = BoostMISClassifier(
        classes=[0, 1, 2], prior_correction="align", random_state=0, **FAST
    ).fit(X, y_partial)
    np.testing.assert_allclose(clf.class_prior_, np.array([4, 3, 1]) / 8)
    assert np.isfinite(clf.predict_proba(X)).all()


def test_class_prior_is_recomputed_at_every_fit(iris_data):
    X, y, y_partial = iris_data
    clf = BoostMISClassifier(random_state=0, warm_start=True, **FAST)
    clf.fit(X, y_partial)
    first = clf.class_prior_.copy()
    more = y_partial.copy()
    more[np.flatnonzero((y == 2) & (y_partial == -1))[:10]] = 2
    clf.fit(X, more)
    assert clf.class_prior_[2] > first[2]


def test_logit_adjusted_supervised_loss_matches_a_hand_computed_value():
    policy = PriorCorrection(tau=1.0).start(torch.tensor([0.75, 0.25]))
    logits = torch.tensor([[2.0, 0.0]])
    loss = supervised_loss(policy.adjust_logits(logits), torch.tensor([1]))
    a, b = 2.0 + math.log(0.75), 0.0 + math.log(0.25)
    expected = -(b - math.log(math.exp(a) + math.exp(b)))
    assert float(loss) == pytest.approx(expected, rel=1e-6)


def test_logit_adjusted_consistency_loss_matches_a_hand_computed_value():
    policy = PriorCorrection(tau=0.5).start(torch.tensor([0.5, 0.5]))
    logits = torch.tensor([[1.0, 0.0], [0.0, 3.0]])
    loss = masked_consistency_loss(
        policy.adjust_logits(logits), torch.tensor([1, 1]), torch.tensor([True, False])
    )
    # a uniform prior shifts every logit alike: plain CE of the masked row / 2
    expected = -math.log(math.exp(0.0) / (math.exp(1.0) + math.exp(0.0))) / 2
    assert float(loss) == pytest.approx(expected, rel=1e-6)


def test_a_uniform_prior_leaves_the_losses_unchanged():
    policy = PriorCorrection().start(torch.full((3,), 1 / 3))
    logits = torch.randn(5, 3, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0, 1, 2, 0, 1])
    assert float(supervised_loss(policy.adjust_logits(logits), y)) == pytest.approx(
        float(supervised_loss(logits, y)), rel=1e-6
    )


def test_adjusted_teacher_is_the_prior_calibrated_softmax():
    prior = torch.tensor([0.8, 0.2])
    policy = PriorCorrection(pseudo_labels="adjust", tau=1.0).start(prior)
    logits = torch.tensor([[0.0, 1.0]])
    expected = F.softmax(logits + prior.log(), dim=1)
    torch.testing.assert_close(policy.pseudo_label_proba(logits), expected)
    assert policy.p_hat_ is None


def test_distribution_alignment_keeps_an_ema_of_the_mean_prediction():
    prior = torch.tensor([0.5, 0.5])
    policy = PriorCorrection(tau=0.0, momentum=0.9).start(prior)
    first = torch.log(torch.tensor([[0.9, 0.1], [0.7, 0.3]]))  # mean (0.8, 0.2)
    aligned = policy.pseudo_label_proba(first)
    torch.testing.assert_close(policy.p_hat_, torch.tensor([0.8, 0.2]))
    # p * pi / p_hat, normalised: (0.9/0.8, 0.1/0.2) -> (0.6923, 0.3077)
    torch.testing.assert_close(
        aligned[0], torch.tensor([1.125, 0.5]) / 1.625, rtol=1e-5, atol=1e-6
    )
    second = torch.log(torch.tensor([[0.4, 0.6], [0.4, 0.6]]))  # mean (0.4, 0.6)
    policy.pseudo_label_proba(second)
    expected = 0.9 * torch.tensor([0.8, 0.2]) + 0.1 * torch.tensor([0.4, 0.6])
    torch.testing.assert_close(policy.p_hat_, expected)


def test_alignment_moves_the_pseudo_label_marginal_to_the_prior():
    prior = torch.tensor([0.7, 0.3])
    policy = PriorCorrection(tau=0.0).start(prior)
    logits = torch.randn(2000, 2, generator=torch.Generator().manual_seed(0))
    logits[:, 0] += 2.0  # a teacher biased to class 0 (mean about 0.85)
    aligned = policy.pseudo_label_proba(logits)
    torch.testing.assert_close(aligned.mean(dim=0), prior, atol=0.03, rtol=0)


def _imbalanced_labels(y_partial):
    """Iris with 5 labels of class 0 and 2 of each other class (prior 5:2:2)."""
    y = y_partial.copy()
    for c in (1, 2):
        y[np.flatnonzero(y == c)[2:]] = -1
    return y


@pytest.mark.parametrize("decision", ["prior", "balanced"])
def test_decision_rule_of_predict_proba_predict_and_queries(iris_data, decision):
    X, _, y_partial = iris_data
    policy = PriorCorrection(pseudo_labels="adjust", decision=decision)
    clf = BoostMISClassifier(prior_correction=policy, random_state=0, **FAST)
    clf.fit(X, _imbalanced_labels(y_partial))
    logits = clf.net_.forward(X, training=False)
    log_prior = torch.from_numpy(clf.class_prior_).log()
    expected = logits + log_prior if decision == "prior" else logits
    proba = F.softmax(expected, 1).numpy()
    np.testing.assert_allclose(clf.predict_proba(X), proba, atol=1e-6)
    np.testing.assert_allclose(np.exp(clf.predict_log_proba(X)), proba, atol=1e-6)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[proba.argmax(1)])
    np.testing.assert_allclose(clf.teacher_outputs(X)[0].numpy(), proba, atol=1e-6)
    other = F.softmax(logits if decision == "prior" else logits + log_prior, 1)
    assert not np.allclose(proba, other.numpy(), atol=1e-3)  # the rules differ here


def test_logit_adjustment_with_the_balanced_rule_raises_minority_recall(digits_data):
    X, y, _ = digits_data
    y = (y == 9).astype(int)
    rng = np.random.RandomState(0)
    y_partial = np.full_like(y, -1)
    y_partial[rng.choice(np.flatnonzero(y == 0), 60, replace=False)] = 0
    y_partial[rng.choice(np.flatnonzero(y == 1), 3, replace=False)] = 1
    common = dict(lambda_u=0.0, random_state=0, max_epochs=15)
    plain = BoostMISClassifier(**common).fit(X, y_partial)
    balanced = PriorCorrection(pseudo_labels="adjust", decision="balanced")
    adjusted = BoostMISClassifier(prior_correction=balanced, **common)
    adjusted.fit(X, y_partial)
    recall = {
        name: np.mean(model.predict(X[y == 1]) == 1)
        for name, model in [("plain", plain), ("adjusted", adjusted)]
    }
    assert recall["adjusted"] > recall["plain"]


def test_none_and_a_correction_without_effect_train_identically(iris_data):
    X, _, y_partial = iris_data
    off = PriorCorrection(tau=0.0, pseudo_labels=None)
    paper = BoostMISClassifier(prior_correction=None, random_state=0, **FAST).fit(
        X, y_partial
    )
    neutral = BoostMISClassifier(prior_correction=off, random_state=0, **FAST)
    neutral.fit(X, y_partial)
    np.testing.assert_array_equal(paper.predict_proba(X), neutral.predict_proba(X))


def test_prior_correction_is_cloned_not_fitted_in_place(iris_data):
    X, _, y_partial = iris_data
    policy = PriorCorrection(momentum=0.5)
    clf = BoostMISClassifier(prior_correction=policy, random_state=0, **FAST)
    clf.fit(X, y_partial)
    assert not hasattr(policy, "prior_")
    assert clone(clf).get_params()["prior_correction"].momentum == 0.5


@pytest.mark.parametrize(
    "value, error, match",
    [
        ("balanced", ValueError, "prior_correction"),
        (0.5, ValueError, "prior_correction"),
        (PriorCorrection(tau=-1), ValueError, "tau"),
        (PriorCorrection(pseudo_labels="uniform"), ValueError, "pseudo_labels"),
        (PriorCorrection(momentum=1.0), ValueError, "momentum"),
    ],
)
def test_bad_prior_corrections_are_refused(iris_data, value, error, match):
    X, _, y_partial = iris_data
    with pytest.raises(error, match=match):
        BoostMISClassifier(prior_correction=value, **FAST).fit(X, y_partial)


def test_make_prior_correction_shortcuts():
    assert make_prior_correction(None) is None
    assert make_prior_correction("align").pseudo_labels == "align"
    assert make_prior_correction("adjust").pseudo_labels == "adjust"
    classwise = make_prior_correction("classwise")
    assert (classwise.pseudo_labels, classwise.classwise) == ("align", True)
    with pytest.raises(TypeError, match="PriorCorrection"):
        make_prior_correction(object())


def test_classwise_thresholds_lower_the_bar_of_an_under_represented_class():
    policy = PriorCorrection(classwise=True, floor=0.5, momentum=0.0)
    policy.start(torch.tensor([0.5, 0.5]))
    policy.passed_share_ = torch.tensor([0.9, 0.1])  # class 1 rarely passes
    # ratio (1.8, 0.2) -> b = (1, 1/9) -> class thresholds eps * (1, max(0.5, 0.059))
    mask = policy.classwise_mask(
        torch.tensor([0.9, 0.6, 0.4]), torch.tensor([0, 1, 1]), torch.tensor(0.95)
    )
    assert mask.tolist() == [False, True, False]
    # momentum 0: the share is the step's share of the rows that passed
    torch.testing.assert_close(policy.passed_share_, torch.tensor([0.0, 1.0]))


def test_classwise_share_is_a_moving_average_and_ignores_empty_steps():
    policy = PriorCorrection(classwise=True, momentum=0.5).start(
        torch.tensor([0.5, 0.5])
    )
    mask = policy.classwise_mask(
        torch.tensor([0.1, 0.2]), torch.tensor([0, 1]), torch.tensor(0.95)
    )
    assert not mask.any()
    torch.testing.assert_close(policy.passed_share_, torch.tensor([0.5, 0.5]))
    policy.classwise_mask(torch.tensor([0.99]), torch.tensor([0]), torch.tensor(0.95))
    torch.testing.assert_close(policy.passed_share_, torch.tensor([0.75, 0.25]))


def test_classwise_thresholds_train_and_differ_from_the_global_one(iris_data):
    X, _, y_partial = iris_data
    common = dict(random_state=0, **FAST)
    glob = BoostMISClassifier(prior_correction=PriorCorrection(), **common)
    per_class = BoostMISClassifier(
        prior_correction=PriorCorrection(classwise=True, floor=0.1), **common
    )
    glob.fit(X, y_partial)
    per_class.fit(X, y_partial)
    assert not np.array_equal(glob.predict_proba(X), per_class.predict_proba(X))
    with pytest.raises(ValueError, match="floor"):
        BoostMISClassifier(
            prior_correction=PriorCorrection(classwise=True, floor=1.5), **FAST
        ).fit(X, y_partial)


def test_a_given_unlabeled_prior_is_the_target_of_pseudo_labels_only():
    labeled, unlabeled = torch.tensor([0.5, 0.5]), torch.tensor([0.8, 0.2])
    policy = PriorCorrection().start(labeled, unlabeled_prior=unlabeled)
    logits = torch.randn(2000, 2, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(policy.adjust_logits(logits), logits + labeled.log())
    torch.testing.assert_close(
        policy.adjust_logits(logits, unlabeled=True), logits + unlabeled.log()
    )
    aligned = policy.pseudo_label_proba(logits)  # aligned to 0.8 / 0.2, not 0.5
    torch.testing.assert_close(aligned.mean(dim=0), unlabeled, atol=0.03, rtol=0)


def test_classwise_thresholds_are_normalised_by_the_unlabeled_prior():
    labeled, unlabeled = torch.tensor([0.5, 0.5]), torch.tensor([0.8, 0.2])
    policy = PriorCorrection(classwise=True, momentum=0.0)
    policy.start(labeled, unlabeled_prior=unlabeled)
    # pseudo-labels pass 50 / 50: against 0.8 / 0.2, class 0 is short (b_0 =
    # (0.5 / 0.8) / (0.5 / 0.2) = 0.25) and gets eps * max(0.5, 0.25 / 1.75)
    policy.classwise_mask(torch.ones(100), torch.tensor([0, 1] * 50), eps=0.9)
    mask = policy.classwise_mask(torch.tensor([0.85, 0.85]), torch.tensor([0, 1]), 0.9)
    assert mask.tolist() == [True, False]  # 0.85 >= 0.45 for class 0, < 0.9 for 1
    # under the labeled prior 0.5 / 0.5 the same shares leave both thresholds at eps
    policy = PriorCorrection(classwise=True, momentum=0.0).start(labeled)
    policy.classwise_mask(torch.ones(100), torch.tensor([0, 1] * 50), eps=0.9)
    mask = policy.classwise_mask(torch.tensor([0.85, 0.85]), torch.tensor([0, 1]), 0.9)
    assert mask.tolist() == [False, False]


def test_check_class_prior_normalises_and_refuses_bad_shares():
    np.testing.assert_allclose(check_class_prior([3, 1], 2).numpy(), [0.75, 0.25])
    for bad in ([0.5, 0.3, 0.2], [[0.5, 0.5]], [1.0, 0.0], [1.0, -1.0], [1.0, np.nan]):
        with pytest.raises(ValueError, match="class_prior"):
            check_class_prior(bad, 2)


def test_class_prior_sets_the_pseudo_label_target_and_the_decision_rule(iris_data):
    X, _, y_partial = iris_data
    y = _imbalanced_labels(y_partial)
    clf = BoostMISClassifier(class_prior=[2, 1, 1], random_state=0, **FAST)
    clf.fit(X, y)
    np.testing.assert_allclose(clf.class_prior_, [0.5, 0.25, 0.25])
    correction = clf.net_.prior_correction_
    labeled = smoothed_prior(np.searchsorted(clf.classes_, y[y != -1]), 3)
    torch.testing.assert_close(correction.prior_, labeled)  # the supervised loss
    np.testing.assert_allclose(correction.unlabeled_prior_.numpy(), clf.class_prior_)
    logits = clf.net_.forward(X, training=False)
    expected = F.softmax(logits + torch.tensor([0.5, 0.25, 0.25]).log(), 1)
    np.testing.assert_allclose(clf.predict_proba(X), expected.numpy(), atol=1e-6)
    assert clone(clf).get_params()["class_prior"] == [2, 1, 1]


def test_class_prior_none_trains_as_the_labeled_prior_given_explicitly(iris_data):
    X, _, y_partial = iris_data
    y = _imbalanced_labels(y_partial)
    default = BoostMISClassifier(random_state=0, **FAST).fit(X, y)
    given = BoostMISClassifier(
        class_prior=default.class_prior_, random_state=0, **FAST
    ).fit(X, y)
    np.testing.assert_allclose(
        default.predict_proba(X), given.predict_proba(X), rtol=0, atol=1e-5
    )
    other = BoostMISClassifier(class_prior=[0.1, 0.1, 0.8], random_state=0, **FAST)
    assert not np.allclose(other.fit(X, y).predict_proba(X), default.predict_proba(X))


@pytest.mark.parametrize(
    "settings, match",
    [
        ({"class_prior": [0.5, 0.5]}, "one share per class"),
        ({"class_prior": [0.5, 0.5, 0.0]}, "positive"),
        ({"class_prior": [1, 1, 1], "prior_correction": None}, "prior_correction"),
        ({"class_prior": "balanced"}, "class_prior"),
    ],
)
def test_bad_class_priors_are_refused_and_the_fit_kept(iris_data, settings, match):
    X, _, y_partial = iris_data
    clf = BoostMISClassifier(random_state=0, **FAST).fit(X, y_partial)
    net, prior = clf.net_, clf.class_prior_
    clf.set_params(**settings)
    with pytest.raises(ValueError, match=match):
        clf.fit(X, y_partial)
    assert clf.net_ is net and clf.class_prior_ is prior
