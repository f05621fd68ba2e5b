"""Class-balanced top-k selection of the Balanced Uncertainty Selector (BUS).

Implements the "Balanced" rule of BUS (method page, :ref:`method-bus`).
"""

import torch

__all__ = ["balanced_top_k"]


def balanced_top_k(scores, predicted_class, k, n_classes):
    """Pick ``k`` candidates with an equal quota per predicted class.

    Implements the balance of BUS (method page, :ref:`method-bus`): split
    candidates by predicted class; each class gets ``floor(k / C)`` picks by
    highest score; the unused quota of small classes, plus the remainder
    ``k - C * floor(k / C)``, goes to the best remaining candidates overall by
    score.

    Parameters
    ----------
    scores : torch.Tensor or array-like of shape (n_samples,)
        Selection scores, higher is better (e.g. density-weighted entropy).
    predicted_class : torch.Tensor or array-like of int, shape (n_samples,)
        Predicted class of every candidate, in ``[0, n_classes)``.
    k : int
        Number of candidates to pick.
    n_classes : int
        Number of classes ``C``.

    Returns
    -------
    positions : torch.LongTensor of shape (min(k, n_samples),)
        Unique positions into ``scores``, in selection order: first the quota
        picks in rounds (round ``r`` holds the ``r``-th best candidate of
        every class that still has quota, by decreasing score), then the
        redistributed picks by decreasing score. Any prefix of the result is
        therefore close to class-balanced. Equal scores are broken by lower
        position.
    """
    scores = torch.as_tensor(scores)
    predicted_class = torch.as_tensor(predicted_class, device=scores.device)
    if predicted_class.numel() == 0:  # torch.as_tensor([]) is float
        predicted_class = predicted_class.long()
    if scores.dim() != 1 or predicted_class.shape != scores.shape:
        raise ValueError(
            "scores and predicted_class must be 1-D of the same length, got "
            f"{tuple(scores.shape)} and {tuple(predicted_class.shape)}."
        )
    if int(n_classes) != n_classes or n_classes < 1:
        raise ValueError(f"n_classes must be a positive int, got {n_classes}.")
    if int(k) != k or k < 0:
        raise ValueError(f"k must be a non-negative int, got {k}.")
    if predicted_class.is_floating_point() or predicted_class.is_complex():
        raise ValueError("predicted_class must hold integers.")
    if scores.numel() and (
        predicted_class.min() < 0 or predicted_class.max() >= n_classes
    ):
        raise ValueError(f"predicted_class must lie in [0, {n_classes}).")
    if scores.is_floating_point() and torch.isnan(scores).any():
        raise ValueError("scores contain NaN.")

    n, k = scores.numel(), min(int(k), scores.numel())
    quota = int(k) // int(n_classes)
    order = torch.argsort(scores, descending=True, stable=True)
    cls = predicted_class[order].long()
    # rank[i] = rank of order[i] inside its predicted class (0 = best).
    rank = torch.empty(n, dtype=torch.long, device=scores.device)
    for c in range(int(n_classes)):
        in_c = cls == c
        rank[in_c] = torch.arange(int(in_c.sum()), device=scores.device)
    is_quota = rank < quota
    quota_pos = is_quota.nonzero().flatten()
    # Rounds: sort quota picks by (rank, position in score order).
    by_round = torch.argsort(rank[quota_pos] * n + quota_pos, stable=True)
    quota_pos = quota_pos[by_round]
    fill_pos = (~is_quota).nonzero().flatten()[: k - quota_pos.numel()]
    return order[torch.cat([quota_pos, fill_pos])]
