"""Combining the AUS and BUS rankings (method page, :ref:`method-combining`)."""

from numbers import Integral

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, validate_params

__all__ = [
    "attribute",
    "interleave_rankings",
    "low_confidence_candidates",
    "union_candidates",
]


def _as_ranking(rank, name):
    rank = torch.as_tensor(rank)
    if rank.numel() == 0:  # torch.as_tensor([]) is float
        rank = rank.long()
    if rank.dim() != 1 or rank.is_floating_point() or rank.is_complex():
        raise ValueError(f"{name} must be a 1-D sequence of integer positions.")
    return rank.long()


def _first_occurrences(seq):
    """``seq`` with repeated values removed, keeping first occurrences in order."""
    _, first = np.unique(seq.cpu().numpy(), return_index=True)
    keep = torch.as_tensor(np.sort(first), device=seq.device)
    return seq[keep]


def low_confidence_candidates(proba, threshold, n_needed):
    """Positions of the "unselected" rows: ``max p < threshold``.

    Implements the candidate pool (method page, :ref:`method-combining`):
    the unlabeled rows whose confidence stayed below the threshold; if fewer
    than ``n_needed`` rows qualify, every row is a candidate.

    Parameters
    ----------
    proba : torch.Tensor of shape (n_samples, n_classes)
    threshold : float
    n_needed : int

    Returns
    -------
    positions : torch.LongTensor
        Increasing positions into ``proba``.

    Examples
    --------
    >>> import torch
    >>> proba = torch.tensor([[0.99, 0.01], [0.6, 0.4], [0.5, 0.5]])
    >>> low_confidence_candidates(proba, 0.95, 2).tolist()
    [1, 2]
    >>> low_confidence_candidates(proba, 0.95, 3).tolist()
    [0, 1, 2]
    """
    proba = torch.as_tensor(proba)
    low = proba.max(dim=1).values < float(threshold)
    positions = low.nonzero().flatten()
    if positions.numel() < int(n_needed):
        positions = torch.arange(proba.shape[0], device=proba.device)
    return positions


@validate_params(
    {"k": [Interval(Integral, 0, None, closed="left")]},
    prefer_skip_nested_validation=True,
)
def union_candidates(rank_a, rank_b, k):
    """Union of the top-``k`` of two rankings (the annotation candidates).

    Implements the union (method page, :ref:`method-combining`) of the AUS
    and BUS top-K, whose size ``N_A`` feeds the adaptive threshold.

    Parameters
    ----------
    rank_a : torch.Tensor or array-like of int, shape (n_a,)
        First ranking (e.g. AUS), best first.
    rank_b : torch.Tensor or array-like of int, shape (n_b,)
        Second ranking (e.g. BUS), best first.
    k : int
        Number of entries taken from the head of each ranking.

    Returns
    -------
    candidates : torch.LongTensor
        ``rank_a[:k]`` in order, then the entries of ``rank_b[:k]`` not
        already present, in ``rank_b``'s order. Its size is in ``[k, 2k]``
        when both rankings hold at least ``k`` distinct entries.
    """
    a = _as_ranking(rank_a, "rank_a")[:k]
    b = _as_ranking(rank_b, "rank_b")[:k].to(a.device)
    return _first_occurrences(torch.cat([a, b]))


@validate_params(
    {"n": [Interval(Integral, 0, None, closed="left")]},
    prefer_skip_nested_validation=True,
)
def interleave_rankings(rank_a, rank_b, n):
    """Deterministic interleave of two rankings, de-duplicated, cut at ``n``.

    Implements the interleave (method page, :ref:`method-combining`) for a
    caller asking for exactly ``n`` rows (modAL's ``n_instances``):
    ``a0, b0, a1, b1, ...``; once one ranking is exhausted, the other follows.

    Parameters
    ----------
    rank_a : torch.Tensor or array-like of int, shape (n_a,)
        First ranking, best first; it leads each pair.
    rank_b : torch.Tensor or array-like of int, shape (n_b,)
        Second ranking, best first.
    n : int
        Number of positions to return.

    Returns
    -------
    positions : torch.LongTensor of shape (n,)
        Unique positions.

    Raises
    ------
    ValueError
        If the two rankings together hold fewer than ``n`` distinct entries.
    """
    a = _as_ranking(rank_a, "rank_a")
    b = _as_ranking(rank_b, "rank_b").to(a.device)
    m = min(a.numel(), b.numel())
    merged = torch.cat([torch.stack([a[:m], b[:m]], dim=1).flatten(), a[m:], b[m:]])
    merged = _first_occurrences(merged)
    if merged.numel() < n:
        raise ValueError(
            f"The rankings hold only {merged.numel()} distinct positions, "
            f"fewer than n={n}."
        )
    return merged[:n]


def attribute(from_aus, from_bus):
    """The selector that picked each row: ``"aus"``, ``"bus"``, ``"both"`` or
    ``"none"`` (e.g. a random query), from the bool arrays ``from_aus`` and
    ``from_bus`` of :class:`~sklearn_boostmis.query.QueryUnion`.

    Examples
    --------
    >>> attribute([True, False, True, False], [False, True, True, False]).tolist()
    ['aus', 'bus', 'both', 'none']
    """
    from_aus = np.asarray(from_aus, dtype=bool)
    from_bus = np.asarray(from_bus, dtype=bool)
    names = np.array(["none", "aus", "bus", "both"], dtype=object)
    return names[from_aus.astype(int) + 2 * from_bus.astype(int)]
