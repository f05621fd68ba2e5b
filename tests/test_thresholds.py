import pytest
import torch
from sklearn.base import clone

from sklearn_boostmis.thresholds import (
    AdaptiveThreshold,
    BaseThreshold,
    FixedThreshold,
    make_threshold,
)


def probs(*max_probs):
    """Two-class probabilities whose maximum (class 0) is each value."""
    p = torch.tensor(max_probs, dtype=torch.float32)
    return torch.stack([p, 1 - p], dim=1)


def idx(*positions):
    return torch.tensor(positions)


def test_fixed_threshold_masks_with_greater_or_equal():
    policy = FixedThreshold(0.8).start(n_unlabeled=3, n_passes=1)
    mask, labels = policy(probs(0.8, 0.79, 0.95), idx(0, 1, 2))
    assert mask.tolist() == [True, False, True]  # T6: >=
    assert labels.tolist() == [0, 0, 0]
    assert float(policy.last_threshold_) == pytest.approx(0.8)


def test_adaptive_first_pass_is_alpha_when_nothing_annotated():
    policy = AdaptiveThreshold(alpha=0.9, beta=0.05).start(4, n_passes=10)
    assert float(policy.current_threshold()) == pytest.approx(0.9)  # T3, T5


def test_adaptive_count_ratio_sequence_by_hand():
    # U has 4 rows; alpha + beta = 0.95 decides Count.
    policy = AdaptiveThreshold(alpha=0.9, beta=0.05, t_max=10).start(4, n_passes=20)
    policy(probs(0.99, 0.96, 0.97, 0.5), idx(0, 1, 2, 3))  # 3 confident
    assert int(policy.count()) == 3
    policy.end_pass()  # Count_{t-1} = 3
    # same pass: the threshold is computed before the batch is recorded
    policy(probs(0.96, 0.2), idx(0, 1))  # row 1 unset -> Count = 2
    assert int(policy.count()) == 2
    assert float(policy.current_threshold()) == pytest.approx(0.9 * 2 / 3)
    mask, _ = policy(probs(0.61, 0.59), idx(2, 3))
    # eps = 0.6 before this batch; row 2 drops out of Count, row 3 stays out
    assert mask.tolist() == [True, False]
    assert float(policy.last_threshold_) == pytest.approx(0.6)
    assert float(policy.current_threshold()) == pytest.approx(0.9 * 1 / 3)


def test_adaptive_ratio_clipped_to_one():
    policy = AdaptiveThreshold(t_max=5).start(3, n_passes=10)
    policy(probs(0.99, 0.1, 0.1), idx(0, 1, 2))
    policy.end_pass()  # Count_{t-1} = 1
    policy(probs(0.99, 0.99), idx(1, 2))  # Count_t = 3 > 1
    assert float(policy.current_threshold()) == pytest.approx(0.9)


def test_adaptive_zero_previous_count_gives_ratio_one():
    policy = AdaptiveThreshold(t_max=5).start(2, n_passes=10)
    policy(probs(0.5, 0.5), idx(0, 1))
    policy.end_pass()  # Count_{t-1} = 0
    assert float(policy.current_threshold()) == pytest.approx(0.9)


def test_adaptive_switches_to_alpha_plus_beta_at_t_max():
    policy = AdaptiveThreshold(alpha=0.8, beta=0.1, t_max=2).start(2, n_passes=10)
    policy(probs(0.99, 0.99), idx(0, 1))
    policy.end_pass()
    policy(probs(0.5, 0.5), idx(0, 1))  # Count drops to 0: eps = 0
    assert float(policy.current_threshold()) == pytest.approx(0.0)
    policy.end_pass()  # t = 2 = T_max
    assert float(policy.current_threshold()) == pytest.approx(0.9)


def test_adaptive_default_t_max_is_half_the_passes():
    policy = AdaptiveThreshold().start(2, n_passes=9)
    assert policy.t_max_ == 4


def test_annotation_term_uses_n_annotated_over_two_k():
    policy = AdaptiveThreshold(alpha=0.9, beta=0.05, n_annotated=15, quota=10)
    policy.start(2, n_passes=4)
    assert float(policy.current_threshold()) == pytest.approx(0.9 + 0.05 * 15 / 20)


def test_annotation_term_needs_quota():
    with pytest.raises(ValueError, match="quota"):
        AdaptiveThreshold(n_annotated=5).start(2, n_passes=4)


def test_make_threshold_strings_and_objects():
    assert isinstance(make_threshold("adaptive"), AdaptiveThreshold)
    fixed = make_threshold("fixed", alpha=0.7, beta=0.2)
    assert fixed.threshold == pytest.approx(0.9)
    user = FixedThreshold(0.5)
    built = make_threshold(user)
    assert built is not user and built.threshold == 0.5
    with pytest.raises(ValueError, match="adaptive"):
        make_threshold("flex")
    with pytest.raises(TypeError, match="subclass of sklearn_boostmis.thresholds.B"):
        make_threshold(0.95)


def test_make_threshold_gives_the_annotation_round_to_an_adaptive_copy():
    built = make_threshold("adaptive", 0.8, 0.1, 5, n_annotated=12, quota=8)
    assert built.get_params() == dict(
        alpha=0.8, beta=0.1, t_max=5, n_annotated=12, quota=8
    )
    user = AdaptiveThreshold(alpha=0.7, n_annotated=3, quota=2)
    copy = make_threshold(user, n_annotated=12, quota=8)
    assert (copy.alpha, copy.n_annotated, copy.quota) == (0.7, 12, 8)
    assert (user.n_annotated, user.quota) == (3, 2)  # unchanged
    assert make_threshold(user).n_annotated == 3  # None keeps the policy's own
    fixed = make_threshold("fixed", n_annotated=12, quota=8)  # no N_A term
    assert fixed.get_params() == {"threshold": pytest.approx(0.95)}
    policy = make_threshold("adaptive", n_annotated=12, quota=8).start(4, n_passes=4)
    assert float(policy.current_threshold()) == pytest.approx(0.9 + 0.05 * 12 / 16)


@pytest.mark.parametrize("threshold", ["adaptive", "fixed"])
def test_make_threshold_refuses_an_unreachable_alpha_plus_beta(threshold):
    with pytest.raises(ValueError, match=r"alpha \+ beta = 1.1 > 1"):
        make_threshold(threshold, alpha=0.9, beta=0.2)


class HalfThreshold(BaseThreshold):
    """The documented way to write a policy: only current_threshold()."""

    def current_threshold(self):
        return torch.tensor(0.5, device=self.device_)


class DuckThreshold:
    def start(self, n_unlabeled, n_passes, device="cpu"):
        return self

    def __call__(self, proba_weak, idx):
        return proba_weak.max(1).values > 0.5, proba_weak.argmax(1)

    def end_pass(self):
        pass


def test_a_policy_of_ones_own_subclasses_base_threshold(iris_data):
    from sklearn_boostmis import BoostMISClassifier

    X, _, y_partial = iris_data
    clf = BoostMISClassifier(threshold=HalfThreshold(), max_epochs=2).fit(X, y_partial)
    assert clf.threshold_history_.tolist() == [0.5, 0.5]
    with pytest.raises(ValueError, match="threshold.*BaseThreshold"):  # before training
        BoostMISClassifier(threshold=DuckThreshold(), max_epochs=2).fit(X, y_partial)


class FloatThreshold(BaseThreshold):
    def __init__(self, eps=0.6):
        self.eps = eps

    def current_threshold(self):
        return self.eps  # a number, not a tensor


def test_a_policy_may_return_a_number(iris_data):
    from sklearn_boostmis import BoostMISClassifier

    X, _, y_partial = iris_data
    clf = BoostMISClassifier(threshold=FloatThreshold(), max_epochs=2)
    assert clf.fit(X, y_partial).threshold_history_.tolist() == [0.6, 0.6]
    mask, _ = FloatThreshold().start(2, 1)(probs(0.6, 0.5), idx(0, 1))
    assert mask.tolist() == [True, False]


@pytest.mark.parametrize(
    "policy, name",
    [
        (FixedThreshold(1.2), "threshold = 1.2"),
        (FixedThreshold(-0.1), "threshold = -0.1"),
        (AdaptiveThreshold(alpha=0.9, beta=0.2), "alpha \\+ beta = 1.1"),
    ],
)
def test_a_threshold_no_probability_can_pass_is_refused(policy, name):
    with pytest.raises(ValueError, match=f"{name} is outside \\[0, 1\\]"):
        policy.start(n_unlabeled=2, n_passes=1)


def test_state_pickles_on_cpu_and_clone_drops_state():
    import pickle

    policy = AdaptiveThreshold().start(3, n_passes=2)
    restored = pickle.loads(pickle.dumps(policy))
    assert restored.confident_.device.type == "cpu"
    assert not hasattr(clone(policy), "confident_")
