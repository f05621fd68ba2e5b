"""Pseudo-label threshold policies (method page, :ref:`method-adaptive-threshold`).

The engine calls a policy's ``start(n_unlabeled, n_passes, device)`` once per
``fit``, ``__call__(proba_weak, idx) -> (mask, pseudo_labels)`` on every training
step and ``end_pass()`` after each pass over the unlabeled set. ``FixedThreshold``
is FixMatch; ``AdaptiveThreshold`` is the paper's eps_t; a policy of one's own
subclasses :class:`BaseThreshold`. All state lives in tensors on the model's
device: no host synchronisation happens in a training step.
"""

import torch
from sklearn.base import BaseEstimator, clone

from ._utils import TensorStateMixin


class BaseThreshold(TensorStateMixin, BaseEstimator):
    """Common part of the threshold policies.

    Subclasses implement :meth:`current_threshold` (the current eps as a 0-d tensor;
    a number is converted) and may override :meth:`start`, :meth:`observe` and
    :meth:`end_pass`. The estimator clones the policy, so ``__init__`` stores
    each argument under its own name and does nothing else. Per-unlabeled-row
    tensors are named in ``row_state_attributes`` (merged across data-parallel
    processes once per pass).
    """

    def start(self, n_unlabeled, n_passes, device="cpu"):
        """Reset the state for a new ``fit`` of ``n_passes`` passes over U."""
        self.pass_ = 0
        self.n_passes_ = int(n_passes)
        self.device_ = torch.device(device)
        return self

    def current_threshold(self):
        """Current threshold eps_t as a 0-d float tensor on the device."""
        raise NotImplementedError

    def observe(self, max_proba, idx):
        """Update per-sample state from a batch (after the mask was taken)."""

    def end_pass(self):
        """Advance t after a full pass over the unlabeled set (T2)."""
        self.pass_ += 1

    def settled_threshold(self):
        """The threshold the policy ends at (a float): by default the current one."""
        return float(self.current_threshold())

    def __call__(self, proba_weak, idx):
        """Pseudo-labels and mask for a batch of weak-view probabilities.

        Parameters
        ----------
        proba_weak : torch.Tensor of shape (n, n_classes)
            Class probabilities of the weak view, computed without gradient.
        idx : torch.LongTensor of shape (n,)
            Positions of the rows in the unlabeled set.

        Returns
        -------
        mask : torch.Tensor of shape (n,), bool
            ``max_c q_c >= eps_t`` (T6: ``>=``).
        pseudo_labels : torch.LongTensor of shape (n,)
            Hard pseudo-labels ``argmax_c q_c``.
        """
        max_proba, pseudo_labels = proba_weak.max(dim=1)
        eps = self.current_threshold()
        if not torch.is_tensor(eps):  # a policy of one's own may return a float
            eps = torch.as_tensor(float(eps), device=max_proba.device)
        mask = max_proba >= eps
        self.last_threshold_ = eps
        self.observe(max_proba, idx)
        return mask, pseudo_labels


class FixedThreshold(BaseThreshold):
    """A constant threshold: FixMatch's rule (eps = 0.95 by default).

    Parameters
    ----------
    threshold : float, default=0.95
        Confidence a pseudo-label needs to enter the unsupervised loss.

    Examples
    --------
    >>> import torch
    >>> policy = FixedThreshold(0.9).start(n_unlabeled=2, n_passes=1)
    >>> mask, labels = policy(torch.tensor([[0.95, 0.05], [0.5, 0.5]]),
    ...                       torch.tensor([0, 1]))
    >>> mask.tolist(), labels.tolist()
    ([True, False], [0, 0])
    """

    def __init__(self, threshold=0.95):
        self.threshold = threshold

    def start(self, n_unlabeled, n_passes, device="cpu"):
        _check_reachable(float(self.threshold), "threshold")
        super().start(n_unlabeled, n_passes, device)
        self.eps_ = torch.tensor(float(self.threshold), device=self.device_)
        return self

    def current_threshold(self):
        return self.eps_


class AdaptiveThreshold(BaseThreshold):
    r"""The paper's adaptive threshold eps_t.

    .. math::

        \epsilon_t = \alpha \min\left(1, \frac{Count_t}{Count_{t-1}}\right)
                     + \beta \frac{N_A}{2K} \quad (t < T_{max}),
        \qquad \epsilon_t = \alpha + \beta \quad (t \ge T_{max})

    with :math:`Count_t = \#\{u \in U : \max_c p(c|A_w(u)) \ge \alpha+\beta\}`.
    The method page states it (:ref:`method-adaptive-threshold`) with the
    choices T1-T7 where the paper is silent (:ref:`method-threshold-choices`).

    Parameters
    ----------
    alpha : float, default=0.9
        Weight of the learning-status term.
    beta : float, default=0.05
        Weight of the annotation term; ``alpha + beta`` is the settled threshold.
    t_max : int or None, default=None
        Pass (0-based) from which the threshold is ``alpha + beta``. None means
        half the passes of the current fit (T4).
    n_annotated : int, default=0
        N_A, the size of the last AUS+BUS union (0 before the first annotation
        round, T5). Set by the annotation loop.
    quota : int or None, default=None
        K, each selector's per-cycle quota. Required when ``n_annotated > 0``.

    Examples
    --------
    >>> import torch
    >>> policy = AdaptiveThreshold().start(n_unlabeled=3, n_passes=4)
    >>> round(float(policy.current_threshold()), 4)  # Count_{t-1} = 0: ratio 1, N_A = 0
    0.9
    """

    # per-unlabeled-row state, merged across data-parallel processes each pass
    row_state_attributes = ("confident_",)

    def __init__(self, alpha=0.9, beta=0.05, t_max=None, n_annotated=0, quota=None):
        self.alpha = alpha
        self.beta = beta
        self.t_max = t_max
        self.n_annotated = n_annotated
        self.quota = quota

    def _annotation_term(self):
        if not self.n_annotated:
            return 0.0
        if not self.quota or self.quota < 1:
            raise ValueError(
                "AdaptiveThreshold needs quota=K >= 1 when n_annotated > 0, "
                f"got quota={self.quota!r}"
            )
        return self.beta * self.n_annotated / (2.0 * self.quota)

    def start(self, n_unlabeled, n_passes, device="cpu"):
        super().start(n_unlabeled, n_passes, device)
        self.t_max_ = (
            max(1, self.n_passes_ // 2) if self.t_max is None else int(self.t_max)
        )
        self.settled_ = float(self.alpha) + float(self.beta)
        _check_reachable(self.settled_, "alpha + beta")
        self.settled_eps_ = torch.tensor(self.settled_, device=self.device_)
        self.confident_ = torch.zeros(
            int(n_unlabeled), dtype=torch.bool, device=self.device_
        )
        self.count_prev_ = torch.zeros((), dtype=torch.float32, device=self.device_)
        self.annotation_term_ = self._annotation_term()
        return self

    def settled_threshold(self):
        return self.settled_

    def count(self):
        """Count_t: unlabeled rows whose last weak-view confidence >= alpha+beta."""
        return self.confident_.sum()

    def current_threshold(self):
        if self.pass_ >= self.t_max_:
            return self.settled_eps_
        count = self.count().to(torch.float32)
        ratio = torch.where(
            self.count_prev_ > 0,
            count / self.count_prev_.clamp_min(1.0),
            torch.ones_like(count),
        ).clamp(0.0, 1.0)
        return self.alpha * ratio + self.annotation_term_

    def observe(self, max_proba, idx):
        self.confident_[idx] = max_proba >= self.settled_

    def end_pass(self):
        self.count_prev_ = self.count().to(torch.float32)
        super().end_pass()


def _check_reachable(threshold, name):
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(
            f"{name} = {threshold:g} is outside [0, 1]: no softmax probability "
            "would pass it (or every one would), so pseudo-labeling would be off "
            "or unfiltered (for the labels only use lambda_u=0)"
        )


def make_threshold(
    threshold, alpha=0.9, beta=0.05, t_max=None, *, n_annotated=None, quota=None
):
    """Build a policy from the estimator's ``threshold`` parameter.

    Parameters
    ----------
    threshold : {"adaptive", "fixed"} or BaseThreshold
        ``"adaptive"``: :class:`AdaptiveThreshold` with ``alpha``, ``beta``
        and ``t_max``; ``"fixed"``: :class:`FixedThreshold` at
        ``alpha + beta``; a policy object is cloned.
    alpha, beta, t_max : float, float, int or None
        As in :class:`AdaptiveThreshold`; only used with a string.
    n_annotated, quota : int or None, default=None
        N_A and K of the last annotation round, given to an adaptive policy
        (from ``"adaptive"`` or an :class:`AdaptiveThreshold` object). None
        leaves the policy's own values.

    Returns
    -------
    policy : BaseThreshold
        A new object: the argument is never changed.

    Examples
    --------
    >>> policy = make_threshold("adaptive", n_annotated=12, quota=8)
    >>> policy.n_annotated, policy.quota
    (12, 8)
    """
    if isinstance(threshold, str):
        if threshold not in ("adaptive", "fixed"):
            raise ValueError(
                f"threshold must be 'adaptive', 'fixed' or a threshold object, "
                f"got {threshold!r}"
            )
        if alpha + beta > 1:  # said before any training
            raise ValueError(
                f"alpha + beta = {alpha + beta:g} > 1: eps_t settles at "
                "alpha + beta, which no softmax probability reaches, so no "
                "pseudo-label would ever pass (for the labels only use lambda_u=0)"
            )
        if threshold == "fixed":
            return FixedThreshold(alpha + beta)
        threshold = AdaptiveThreshold(alpha=alpha, beta=beta, t_max=t_max)
    elif isinstance(threshold, BaseThreshold):
        threshold = clone(threshold)
    else:
        raise TypeError(
            "a threshold object must be an instance of a subclass of "
            "sklearn_boostmis.thresholds.BaseThreshold (implementing "
            f"current_threshold()); got {type(threshold).__name__}"
        )
    if n_annotated is not None and isinstance(threshold, AdaptiveThreshold):
        threshold.set_params(n_annotated=n_annotated, quota=quota)
    return threshold
