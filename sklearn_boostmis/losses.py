"""The BoostMIS/FixMatch losses of one training step.

The equations are on the method page (:ref:`method-losses`).
"""

import torch.nn.functional as F


def supervised_loss(logits, targets, weight=None, sample_weight=None):
    """L_s: mean cross-entropy over the labeled batch.

    With ``weight`` (one float per class) and ``sample_weight`` (one per row),
    each None or a tensor, ``sum_i s_i w[y_i] CE_i / sum_i s_i w[y_i]`` (0 when
    every row of the batch weighs 0).
    """
    if sample_weight is None:
        return F.cross_entropy(logits, targets, weight=weight)
    per_row = F.cross_entropy(logits, targets, weight=weight, reduction="none")
    row_weight = sample_weight if weight is None else sample_weight * weight[targets]
    return per_row.mul(sample_weight).sum() / row_weight.sum().clamp_min(1e-12)


def masked_consistency_loss(logits_strong, pseudo_labels, mask, normalizer="batch"):
    """L_u = (1 / mu B) sum_i m_i CE(yhat_i, p(A_s(u_i))).

    Parameters
    ----------
    logits_strong : torch.Tensor of shape (n, n_classes)
        Logits of the strong views.
    pseudo_labels : torch.LongTensor of shape (n,)
        Hard pseudo-labels from the weak views.
    mask : torch.BoolTensor of shape (n,)
        Which pseudo-labels passed the threshold.
    normalizer : {"batch", "selected"}, default="batch"
        Divide by the unlabeled batch size (FixMatch, T7: the step's number of
        unlabeled rows) or by the number of selected rows (at least 1).
    """
    per_row = F.cross_entropy(logits_strong, pseudo_labels, reduction="none")
    total = (per_row * mask).sum()
    if normalizer == "batch":
        return total / len(per_row)
    if normalizer == "selected":
        return total / mask.sum().clamp_min(1)
    raise ValueError(f"normalizer must be 'batch' or 'selected', got {normalizer!r}")
