"""Class-prior corrections for imbalanced data (the ``prior_correction`` parameter).

A :class:`PriorCorrection` adds the smoothed labeled prior (:func:`smoothed_prior`)
to the supervised loss, and the prior of the unlabeled rows (the labeled one
unless the estimator's ``class_prior`` gives it) where pseudo-labels are made and
learnt, and sets the decision rule of ``predict_proba``;
the method page states each part with its equation (:ref:`method-imbalance`). In
data-parallel training each process keeps its own ``p_hat_``.
"""

from numbers import Real

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator, clone
from sklearn.utils._param_validation import Interval, StrOptions

from ._utils import TensorStateMixin


def smoothed_prior(encoded_labels, n_classes):
    """``(n_c + 1) / (n_L + C)`` for each class ``c`` in ``0..n_classes-1``.

    Parameters
    ----------
    encoded_labels : torch.LongTensor or array-like of shape (n_labeled,)
        Labels encoded 0..C-1.
    n_classes : int
        C, every class the model knows (also those without a label).

    Returns
    -------
    prior : torch.Tensor of shape (n_classes,), float32
        Positive and summing to 1.

    Examples
    --------
    >>> [round(p, 4) for p in smoothed_prior([0, 0, 0, 1], n_classes=3).tolist()]
    [0.5714, 0.2857, 0.1429]
    """
    labels = torch.as_tensor(encoded_labels, dtype=torch.long).reshape(-1)
    counts = torch.bincount(labels.cpu(), minlength=int(n_classes)).to(torch.float32)
    return (counts + 1.0) / (len(labels) + int(n_classes))


def check_class_prior(class_prior, n_classes):
    """A user's ``class_prior`` as a float32 tensor summing to 1.

    Parameters
    ----------
    class_prior : array-like of shape (n_classes,)
        Positive shares (or counts) of the classes, in ``classes_`` order.
    n_classes : int
        The number of classes the model knows.

    Returns
    -------
    prior : torch.Tensor of shape (n_classes,), float32

    Raises
    ------
    ValueError
        If the shape is not ``(n_classes,)`` or a share is not finite and positive.

    Examples
    --------
    >>> check_class_prior([89, 11], n_classes=2).tolist()
    [0.8899999856948853, 0.10999999940395355]
    """
    prior = np.asarray(class_prior, dtype=np.float64)
    if prior.shape != (int(n_classes),):
        raise ValueError(
            f"class_prior must have one share per class ({int(n_classes)}, in "
            f"classes_ order), got shape {prior.shape}"
        )
    if not (np.isfinite(prior).all() and (prior > 0).all()):
        raise ValueError(
            "class_prior must be finite and positive for every class (a class "
            f"with share 0 could never be predicted), got {prior.tolist()}"
        )
    return torch.as_tensor(prior / prior.sum(), dtype=torch.float32)


class PriorCorrection(TensorStateMixin, BaseEstimator):
    """Logit-adjusted losses and prior-corrected pseudo-labels.

    Parameters
    ----------
    tau : float, default=1.0
        Strength of the logit adjustment of both losses, ``CE(z + tau log pi,
        y)`` (``pi`` the labeled prior in the supervised loss, the unlabeled
        rows' prior in the consistency loss); 1 is Fisher-consistent for the
        balanced error. 0 keeps plain cross-entropy (and the usual decision
        rule).
    pseudo_labels : {"align", "adjust"} or None, default="align"
        How the teacher's weak-view probabilities are corrected before the
        threshold and the pseudo-label are taken: ``"adjust"``, the
        prior-calibrated ``q = softmax(z + tau log pi_u)``; ``"align"``, ``q``
        aligned to that prior, ``normalise(q * pi_u / p_hat)`` (``p_hat`` a
        moving average of the mean ``q``); None, the plain ``softmax(z)``.
        ``pi_u`` is the prior of the unlabeled rows: the labeled prior unless
        the estimator's ``class_prior`` gives it.
    momentum : float, default=0.99
        Weight of the previous ``p_hat`` in its moving average, per step.
    classwise : bool, default=False
        Per-class thresholds, FlexMatch's rule normalised by the prior
        (``eps_t * max(floor, b_c / (2 - b_c))``, :ref:`method-imbalance`): a
        class under-represented among the pseudo-labels that passed, relative
        to its share of ``pi_u``, gets a lower threshold.
    floor : float, default=0.5
        Lowest fraction of eps_t a class threshold may fall to (``classwise``).
    decision : {"prior", "balanced"}, default="prior"
        What ``predict_proba`` returns, and so ``predict`` and the queries:
        ``"prior"``, the posterior under the estimator's ``class_prior_``
        (the labeled prior unless ``class_prior`` is given), ``softmax(z + tau
        log pi)``; ``"balanced"``, the class-balanced posterior ``softmax(z)``.

    Attributes
    ----------
    prior_ : torch.Tensor of shape (n_classes,)
        The smoothed labeled prior of the current fit.
    unlabeled_prior_ : torch.Tensor of shape (n_classes,)
        ``pi_u``, the prior of the unlabeled rows (``prior_`` unless given).
    p_hat_ : torch.Tensor of shape (n_classes,) or None
        The moving average of the teacher's mean probability (``"align"``);
        None before the first unlabeled batch.

    Examples
    --------
    >>> import torch
    >>> policy = PriorCorrection().start(torch.tensor([0.9, 0.1]))
    >>> logits = torch.zeros(4, 2)  # a teacher that cannot tell the classes apart
    >>> aligned = policy.pseudo_label_proba(logits).mean(dim=0)  # to the prior
    >>> [round(p, 4) for p in aligned.tolist()]
    [0.9, 0.1]
    """

    _parameter_constraints: dict = {
        "tau": [Interval(Real, 0, None, closed="left")],
        "pseudo_labels": [StrOptions({"align", "adjust"}), None],
        "momentum": [Interval(Real, 0, 1, closed="left")],
        "classwise": ["boolean"],
        "floor": [Interval(Real, 0, 1, closed="both")],
        "decision": [StrOptions({"prior", "balanced"})],
    }

    def __init__(
        self,
        tau=1.0,
        pseudo_labels="align",
        momentum=0.99,
        classwise=False,
        floor=0.5,
        decision="prior",
    ):
        self.tau = tau
        self.pseudo_labels = pseudo_labels
        self.momentum = momentum
        self.classwise = classwise
        self.floor = floor
        self.decision = decision

    def decision_logits(self, logits, prior):
        """The logits ``predict_proba`` takes the softmax of (``decision``).

        Parameters
        ----------
        logits : torch.Tensor of shape (n_samples, n_classes)
            The network's ``z``.
        prior : array-like of shape (n_classes,)
            The fitted ``class_prior_``.
        """
        self._validate_params()
        if self.decision == "balanced" or not self.tau:
            return logits
        log_prior = torch.as_tensor(prior, dtype=logits.dtype, device=logits.device)
        return logits + float(self.tau) * log_prior.log()

    def start(self, prior, device="cpu", unlabeled_prior=None):
        """Reset the state for a new ``fit`` with the labeled class ``prior``
        and the prior of the unlabeled rows (None: the same ``prior``)."""
        self._validate_params()
        self.prior_ = torch.as_tensor(prior, dtype=torch.float32, device=device)
        self.unlabeled_prior_ = self.prior_
        if unlabeled_prior is not None:
            self.unlabeled_prior_ = torch.as_tensor(
                unlabeled_prior, dtype=torch.float32, device=device
            )
        self.adjustment_ = float(self.tau) * self.prior_.log()
        self.unlabeled_adjustment_ = float(self.tau) * self.unlabeled_prior_.log()
        self.p_hat_ = None
        self.passed_share_ = self.unlabeled_prior_.clone()  # no evidence: b_c = 1
        return self

    def classwise_mask(self, max_proba, pseudo_labels, eps):
        """The mask under per-class thresholds (``classwise``); updates the
        moving share of each class among the pseudo-labels that passed."""
        ratio = self.passed_share_ / self.unlabeled_prior_
        b = ratio / ratio.max()
        scale = (b / (2.0 - b)).clamp_min(float(self.floor))
        mask = max_proba >= eps * scale[pseudo_labels]
        counts = torch.bincount(pseudo_labels[mask], minlength=len(ratio))
        total = counts.sum()
        share = counts.float() / total.clamp_min(1)
        moved = torch.lerp(share, self.passed_share_, float(self.momentum))
        # a step where nothing passed says nothing (no host sync to test it)
        self.passed_share_ = torch.where(total > 0, moved, self.passed_share_)
        return mask

    def adjust_logits(self, logits, unlabeled=False):
        """``z + tau log pi``: what a loss sees in place of ``z``; ``pi`` is the
        labeled prior, or the unlabeled rows' prior where ``unlabeled``."""
        return logits + (self.unlabeled_adjustment_ if unlabeled else self.adjustment_)

    def pseudo_label_proba(self, logits_weak):
        """Corrected probabilities of a batch of the teacher's weak-view logits
        (updates ``p_hat_`` with ``"align"``)."""
        logits_weak = logits_weak.float()
        if self.pseudo_labels is None:
            return F.softmax(logits_weak, dim=1)
        proba = F.softmax(self.adjust_logits(logits_weak, unlabeled=True), dim=1)
        if self.pseudo_labels == "adjust":
            return proba
        return self._align(proba)

    def _align(self, proba):
        mean = proba.mean(dim=0)
        if self.p_hat_ is None:
            self.p_hat_ = mean
        else:
            self.p_hat_ = torch.lerp(mean, self.p_hat_, float(self.momentum))
        aligned = proba * (self.unlabeled_prior_ / self.p_hat_.clamp_min(1e-6))
        return aligned / aligned.sum(dim=1, keepdim=True)


PRIOR_CORRECTIONS = {
    "align": lambda: PriorCorrection(pseudo_labels="align"),
    "adjust": lambda: PriorCorrection(pseudo_labels="adjust"),
    "classwise": lambda: PriorCorrection(pseudo_labels="align", classwise=True),
}


def make_prior_correction(prior_correction):
    """Build a policy from the estimator's ``prior_correction`` parameter.

    None gives None (the paper's method); a string one of
    :data:`PRIOR_CORRECTIONS`; a :class:`PriorCorrection` is cloned.
    """
    if prior_correction is None:
        return None
    if isinstance(prior_correction, str):
        if prior_correction not in PRIOR_CORRECTIONS:
            raise ValueError(
                "prior_correction must be None, 'align', 'adjust', 'classwise' or a "
                f"PriorCorrection, got {prior_correction!r}"
            )
        return PRIOR_CORRECTIONS[prior_correction]()
    if not isinstance(prior_correction, PriorCorrection):
        raise TypeError(
            "prior_correction must be None, 'align', 'adjust', 'classwise' or a "
            f"PriorCorrection, got {type(prior_correction).__name__}"
        )
    return clone(prior_correction)
