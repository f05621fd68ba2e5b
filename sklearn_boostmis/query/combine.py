"""Combining the AUS and BUS rankings.

Implements the union and the interleave of the two rankings (method page,
:ref:`method-combining`), and names the selector that picked each row.
"""

import numpy as np
import torch

__all__ = ["attribute", "interleave_rankings", "union_candidates"]


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


def union_candidates(rank_a, rank_b, k):
    """Union of the top-``k`` of two rankings (the annotation candidates).

    Implements the union (method page, :ref:`method-combining`): candidates =
    AUS top-K union BUS top-K, of size ``N_A`` in ``[K, 2K]`` (``N_A`` feeds
    the adaptive threshold).

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
    if int(k) != k or k < 0:
        raise ValueError(f"k must be a non-negative int, got {k}.")
    a = _as_ranking(rank_a, "rank_a")[: int(k)]
    b = _as_ranking(rank_b, "rank_b")[: int(k)].to(a.device)
    return _first_occurrences(torch.cat([a, b]))


def interleave_rankings(rank_a, rank_b, n):
    """Deterministic interleave of two rankings, de-duplicated, cut at ``n``.

    Implements the interleave (method page, :ref:`method-combining`): a
    caller asking for exactly ``n`` samples (modAL's ``n_instances``) gets the
    interleave ``a0, b0, a1, b1, ...`` of the AUS and BUS rankings with
    repeats dropped, cut at ``n``. When one ranking is exhausted, the rest of
    the other follows.

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
    if int(n) != n or n < 0:
        raise ValueError(f"n must be a non-negative int, got {n}.")
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
    return merged[: int(n)]


def attribute(from_aus, from_bus):
    """Name the selector that picked each row.

    Parameters
    ----------
    from_aus, from_bus : array-like of bool, shape (n_rows,)
        Whether AUS (resp. BUS) picked each row, as in
        :class:`~sklearn_boostmis.query.QueryUnion`.

    Returns
    -------
    selector : ndarray of str, shape (n_rows,)
        ``"aus"``, ``"bus"``, ``"both"``, or ``"none"`` for a row neither
        selector picked (e.g. a random query).

    Examples
    --------
    >>> attribute([True, False, True, False], [False, True, True, False]).tolist()
    ['aus', 'bus', 'both', 'none']
    """
    from_aus = np.asarray(from_aus, dtype=bool)
    from_bus = np.asarray(from_bus, dtype=bool)
    names = np.array(["none", "aus", "bus", "both"], dtype=object)
    return names[from_aus.astype(int) + 2 * from_bus.astype(int)]
