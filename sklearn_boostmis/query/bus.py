"""Balanced Uncertainty Selector (BUS): density-aware entropy, class-balanced
(method page, :ref:`method-bus`); the density never builds an n x n matrix."""

import math
from numbers import Integral

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions, validate_params

__all__ = [
    "balanced_top_k",
    "bus_ranking",
    "density_weighted_entropy",
    "entropy",
    "knn_density",
]

#: Default number of searched rows from which ``backend="auto"`` is approximate.
APPROXIMATE_FROM = 50_000


def entropy(proba):
    """Shannon entropy of each predicted distribution.

    Implements BUS's ``H(u) = -sum_c p_c log p_c`` (method page,
    :ref:`method-bus`), natural log, with the convention ``0 log 0 = 0``.

    Parameters
    ----------
    proba : torch.Tensor or array-like of shape (n_samples, n_classes)
        Class probabilities (rows summing to 1), e.g. the EMA model's softmax.

    Returns
    -------
    H : torch.Tensor of shape (n_samples,)
        Entropy in nats, in ``[0, log(n_classes)]``, on ``proba``'s device.
    """
    proba = torch.as_tensor(proba)
    if proba.dim() != 2:
        raise ValueError(f"proba must be 2-D, got shape {tuple(proba.shape)}.")
    if not proba.is_floating_point():
        proba = proba.to(torch.float32)
    return -torch.special.xlogy(proba, proba).sum(dim=1)


def density_weighted_entropy(proba, density, beta=1.0):
    """Density-aware entropy ``s(u) = H(u) * rho(u) ** beta``.

    Implements BUS's score (method page, :ref:`method-bus`).

    Parameters
    ----------
    proba : torch.Tensor or array-like of shape (n_samples, n_classes)
        Class probabilities.
    density : torch.Tensor or array-like of shape (n_samples,)
        Density ``rho(u)``, e.g. from
        :func:`sklearn_boostmis.query.knn_density`.
    beta : float, default=1.0
        Exponent ``beta_d`` on the density; ``0`` gives plain entropy.

    Returns
    -------
    scores : torch.Tensor of shape (n_samples,)
        Non-negative scores on ``proba``'s device.

    Notes
    -----
    Negative densities (cosine similarities can be negative) are clipped to 0
    first: a sample with no positively similar neighbours is an outlier and
    scores 0 (method page, :ref:`method-combining`, Q3).
    """
    H = entropy(proba)
    density = torch.as_tensor(density, device=H.device, dtype=H.dtype)
    if density.shape != H.shape:
        raise ValueError(
            f"density must have shape {tuple(H.shape)}, got {tuple(density.shape)}."
        )
    return H * density.clamp(min=0) ** beta


_FAISS_MISSING = (
    "backend={!r} needs faiss, which is not installed: pip install "
    "'sklearn-boostmis[faiss]' (or faiss-cpu), or use backend='torch' (exact) "
    "or 'ivf' (approximate)."
)
# Reference rows per similarity block of the torch search, which bounds its
# memory whatever the pool (256 MiB at the default chunk size).
_REFERENCE_BLOCK = 16384


def _faiss_available():
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def _import_faiss(backend):
    try:
        import faiss
    except ImportError:
        raise ImportError(_FAISS_MISSING.format(backend)) from None
    return faiss


def resolve_knn_backend(backend, n_reference, device, approximate_from):
    """The kNN engine that :func:`knn_density` runs for these arguments.

    Parameters
    ----------
    backend, approximate_from : str, int
        As in :func:`knn_density`.
    n_reference : int
        Number of rows searched (the pool, or the reference set).
    device : torch.device or str
        Device of the representations.

    Returns
    -------
    backend : {"torch", "faiss", "ivf"}
        ``"auto"`` resolved as described in :func:`knn_density`.

    Raises
    ------
    ImportError
        If ``backend="faiss"`` and faiss is not installed.
    ValueError
        If ``backend="faiss"`` and ``device`` is not the CPU.
    """
    on_cpu = torch.device(device).type == "cpu"
    if backend == "auto":
        if n_reference >= approximate_from:
            return "ivf"
        return "faiss" if on_cpu and _faiss_available() else "torch"
    if backend == "faiss":
        _import_faiss(backend)
        if not on_cpu:
            raise ValueError("backend='faiss' requires Z on the CPU.")
    return backend


def _topk_lowest_index(sims, k):
    """Indices of the ``k`` largest entries per row, ties broken by lower index.

    Each row is a set of indices (its order is unspecified). Only rows whose
    k-th and (k+1)-th largest values are equal take the slower exact path.
    """
    if k >= sims.shape[1]:
        return torch.arange(sims.shape[1], device=sims.device).expand(len(sims), k)
    top = sims.topk(k + 1, dim=1)
    idx = top.indices[:, :k].clone()
    tied = (top.values[:, k] == top.values[:, k - 1]).nonzero().flatten()
    if tied.numel():
        rows = sims[tied]
        kth = top.values[tied, k - 1 : k]
        greater = rows > kth
        need = k - greater.sum(dim=1, keepdim=True)
        equal = rows == kth
        chosen = greater | (equal & (equal.cumsum(dim=1) <= need))
        idx[tied] = chosen.nonzero()[:, 1].view(-1, k)
    return idx


def _block_knn(Q, R, k, start, first, exclude_self):
    """k nearest rows of the block ``R`` for every row of the chunk ``Q``,
    whose first rows are rows ``first`` and ``start`` of the searched set:
    their indices there, increasing along each row, and their similarities."""
    sims = Q @ R.T
    if exclude_self:
        own = torch.arange(start, start + len(Q), device=Q.device) - first
        rows = ((own >= 0) & (own < len(R))).nonzero().flatten()
        sims[rows, own[rows]] = -torch.inf
    idx = _topk_lowest_index(sims, min(k, sims.shape[1])).sort(dim=1).values
    return idx + first, sims.gather(1, idx)


def _merge_knn(a, b, k):
    """The k best of two neighbour sets whose indices increase along each row
    and from ``a`` to ``b``; ties still go to the lower index."""
    idx, val = torch.cat([a[0], b[0]], dim=1), torch.cat([a[1], b[1]], dim=1)
    keep = _topk_lowest_index(val, min(k, val.shape[1])).sort(dim=1).values
    return idx.gather(1, keep), val.gather(1, keep)


def _knn_torch(Q, R, k, chunk_size, exclude_self):
    """k nearest rows of ``R`` (inner product) for every row of ``Q``, in
    blocks of ``chunk_size x _REFERENCE_BLOCK`` similarities at most."""
    n_q, n_r = Q.shape[0], R.shape[0]
    idx = torch.empty((n_q, k), dtype=torch.long, device=Q.device)
    val = torch.empty((n_q, k), dtype=Q.dtype, device=Q.device)
    for start in range(0, n_q, chunk_size):
        stop = min(start + chunk_size, n_q)
        if n_r <= _REFERENCE_BLOCK:  # one block: keep topk's order of the rows
            sims = Q[start:stop] @ R.T
            if exclude_self:
                rows = torch.arange(stop - start, device=Q.device)
                sims[rows, rows + start] = -torch.inf
            nn_idx = _topk_lowest_index(sims, k)
            idx[start:stop] = nn_idx
            val[start:stop] = sims.gather(1, nn_idx)
            continue
        best = None
        for first in range(0, n_r, _REFERENCE_BLOCK):
            block = _block_knn(
                Q[start:stop],
                R[first : first + _REFERENCE_BLOCK],
                k,
                start,
                first,
                exclude_self,
            )
            best = block if best is None else _merge_knn(best, block, k)
        idx[start:stop], val[start:stop] = best
    return idx, val


def _drop_own(idx, val, own, k):
    """Drop ``own`` (else the last) from each row's ``k + 1`` neighbours."""
    is_own = idx == own.unsqueeze(1)
    drop = torch.where(is_own.any(dim=1), is_own.to(torch.int8).argmax(dim=1), k)
    keep = torch.ones_like(is_own)
    keep[torch.arange(len(idx), device=idx.device), drop] = False
    return idx[keep].view(-1, k), val[keep].view(-1, k)


def _knn_faiss(Q, R, k, exclude_self):
    """Same as :func:`_knn_torch` with a faiss ``IndexFlatIP`` (CPU only)."""
    faiss = _import_faiss("faiss")
    r = R.detach().to(torch.float32).contiguous().numpy()
    q = Q.detach().to(torch.float32).contiguous().numpy()
    index = faiss.IndexFlatIP(r.shape[1])
    index.add(r)
    sims, idx = index.search(q, k + int(exclude_self))
    idx, sims = torch.from_numpy(idx).long(), torch.from_numpy(sims)
    if exclude_self:
        idx, sims = _drop_own(idx, sims, torch.arange(len(q)), k)
    return idx, sims.to(Q.dtype)


def _ivf_size(n_reference, n_probe):
    """Number of inverted lists: about ``sqrt(n_probe n)`` (balancing n x lists
    against n x n_probe n / lists), with at least 20 training rows per list."""
    n_lists = round(math.sqrt(n_probe * n_reference))
    return int(max(1, min(n_lists, n_reference // 20)))


def _nearest_centroid(X, centroids, chunk_size):
    return torch.cat(
        [
            (X[start : start + chunk_size] @ centroids.T).argmax(dim=1)
            for start in range(0, len(X), chunk_size)
        ]
    )


def _spherical_kmeans(X, n_lists, generator, chunk_size, n_iter=6):
    """Unit centroids of ``X`` (unit rows) by Lloyd's iterations under cosine
    from rows drawn with ``generator``; an empty list keeps its centroid."""
    first = torch.randperm(len(X), generator=generator)[:n_lists]
    centroids = X[first.to(X.device)]
    for _ in range(n_iter):
        assigned = _nearest_centroid(X, centroids, chunk_size)
        sums = torch.zeros_like(centroids).index_add_(0, assigned, X)
        empty = (sums == 0).all(dim=1, keepdim=True)
        centroids = torch.where(empty, centroids, F.normalize(sums, dim=1))
    return centroids


def _lists(assigned, n_lists):
    """Row positions grouped by list (stable) and each list's bounds."""
    order = torch.argsort(assigned, stable=True)
    bounds = torch.searchsorted(
        assigned[order], torch.arange(n_lists + 1, device=assigned.device)
    )
    return order, bounds.tolist()


def _knn_ivf(Q, R, k, chunk_size, exclude_self, n_probe, seed):
    """Approximate :func:`_knn_torch` on inverted lists (``backend="ivf"`` of
    :func:`knn_density`); a list whose probed lists hold too few rows is
    searched among all of ``R``."""
    generator = torch.Generator().manual_seed(int(seed))
    n_lists = _ivf_size(len(R), n_probe)
    sample = torch.randperm(len(R), generator=generator)[: 20 * n_lists]
    centroids = _spherical_kmeans(
        R[sample.sort().values.to(R.device)], n_lists, generator, chunk_size
    )
    r_assigned = _nearest_centroid(R, centroids, chunk_size)
    q_assigned = (
        r_assigned if exclude_self else _nearest_centroid(Q, centroids, chunk_size)
    )
    probes = (centroids @ centroids.T).topk(min(n_probe, n_lists), dim=1).indices
    r_order, r_bounds = _lists(r_assigned, n_lists)
    q_order, q_bounds = _lists(q_assigned, n_lists)
    idx = torch.empty((len(Q), k), dtype=torch.long, device=Q.device)
    val = torch.empty((len(Q), k), dtype=Q.dtype, device=Q.device)
    wanted = k + int(exclude_self)
    for c in range(n_lists):
        rows = q_order[q_bounds[c] : q_bounds[c + 1]]
        if not len(rows):
            continue
        # ascending reference positions, so that ties go to the lower one
        probed = [r_order[r_bounds[p] : r_bounds[p + 1]] for p in probes[c].tolist()]
        searched = torch.cat(probed).sort().values
        if len(searched) < wanted:
            searched = torch.arange(len(R), device=R.device)
        got, sims = _knn_torch(Q[rows], R[searched], wanted, chunk_size, False)
        got = searched[got]
        if exclude_self:
            got, sims = _drop_own(got, sims, rows, k)
        idx[rows], val[rows] = got, sims
    return idx, val


def _degree(idx, k, chunk_size):
    """Degree of every node in the symmetrised kNN graph given out-neighbours."""
    n = idx.shape[0]
    in_degree = torch.bincount(idx.flatten(), minlength=n)
    mutual = torch.empty(n, dtype=torch.long, device=idx.device)
    for start in range(0, n, chunk_size):
        stop = min(start + chunk_size, n)
        rows = torch.arange(start, stop, device=idx.device).view(-1, 1, 1)
        # mutual[i] = |{j in kNN(i) : i in kNN(j)}|
        back = (idx[idx[start:stop]] == rows).any(dim=2)
        mutual[start:stop] = back.sum(dim=1)
    return k + in_degree - mutual


@validate_params(
    {
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "method": [StrOptions({"knn_mean_cosine", "knn_degree", "settles"})],
        "chunk_size": [Interval(Integral, 1, None, closed="left")],
        "backend": [StrOptions({"auto", "torch", "faiss", "ivf"})],
        "approximate_from": [Interval(Integral, 1, None, closed="left")],
        "n_probe": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def knn_density(
    Z,
    *,
    n_neighbors=10,
    method="knn_mean_cosine",
    chunk_size=4096,
    reference=None,
    backend="auto",
    approximate_from=APPROXIMATE_FROM,
    n_probe=8,
    random_state=None,
):
    """Density rho(u) of each representation among the pool (BUS).

    Implements the density of BUS (method page, :ref:`method-bus`), by
    default the mean cosine similarity to the k nearest other rows.

    Parameters
    ----------
    Z : torch.Tensor or array-like of shape (n_samples, n_features)
        Representations of the candidate pool. Rows are L2-normalised
        internally (an all-zero row has cosine 0 to everything).
    n_neighbors : int, default=10
        Number of neighbours k. When fewer than k other rows exist, all of
        them are used (k = n - 1, or the size of ``reference``).
    method : {"knn_mean_cosine", "knn_degree", "settles"}, default="knn_mean_cosine"
        - ``"knn_mean_cosine"``: mean cosine similarity of each row to its k
          nearest *other* rows (the row itself is excluded; exact duplicates
          of it count as neighbours).
        - ``"knn_degree"``: degree of the row in the symmetrised kNN graph,
          ``|{j != i : j in kNN(i) or i in kNN(j)}|``, divided by k: from 1
          up to ``(n - 1) / k`` for the hubs of dense regions.
        - ``"settles"``: mean cosine similarity to all other rows, in O(n D)
          time and memory; ``n_neighbors``, ``chunk_size`` and ``backend``
          are unused.
    chunk_size : int, default=4096
        Number of query rows per similarity block of the torch search, whose
        blocks also take at most 16,384 reference rows: peak memory is
        O(n k + chunk_size min(n, 16384)) besides ``Z``, linear in the pool.
    reference : torch.Tensor or array-like of shape (n_reference, n_features), \
            optional
        If given, neighbours (or the whole-pool mean) are taken among the rows
        of ``reference`` instead of ``Z``, e.g. a random subsample of a very
        large pool (method page, :ref:`method-cost`). No self-exclusion is
        done: do not pass a reference that contains the query rows. Not
        supported with ``method="knn_degree"``.
    backend : {"auto", "torch", "faiss", "ivf"}, default="auto"
        kNN search engine, on L2-normalised rows:

        - ``"torch"``: exact, chunked matmul + topk (any device); similarity
          ties go to the lower index.
        - ``"faiss"``: exact, a faiss ``IndexFlatIP`` on float32 rows (CPU
          only; ``pip install 'sklearn-boostmis[faiss]'``); faiss's tie order
          is its own.
        - ``"ivf"``: approximate inverted lists of a spherical k-means, in
          torch (any device), described on the method page
          (:ref:`method-bus`); time O(n sqrt(n_probe n) D) instead of
          O(n^2 D). A density can only come out lower than the exact one.
        - ``"auto"``: ``"ivf"`` when the searched rows number
          ``approximate_from`` or more; below, ``"faiss"`` when faiss is
          importable and ``Z`` is on the CPU, else ``"torch"``.
    approximate_from : int, default=50_000
        Number of searched rows (``Z``'s, or ``reference``'s) from which
        ``backend="auto"`` searches approximately.
    n_probe : int, default=8
        Lists searched per list by ``"ivf"``: more is slower and closer to
        exact (all lists: exact).
    random_state : int, RandomState instance or None, default=None
        Seeds the ``"ivf"`` lists: an int gives the same densities on every
        call. Unused by the exact backends.

    Returns
    -------
    density : torch.Tensor of shape (n_samples,)
        Floating point, on ``Z``'s device. Cosine-based densities lie in
        [-1, 1] and can be negative. A pool with a single row (and no
        reference) has no other rows: its density is defined as 0.
    """
    if reference is not None and method == "knn_degree":
        raise ValueError("method='knn_degree' does not support a reference set.")

    Z = torch.as_tensor(Z)
    if Z.dim() != 2:
        raise ValueError(f"Z must be 2-D, got shape {tuple(Z.shape)}.")
    if not Z.is_floating_point():
        Z = Z.to(torch.float32)
    Q = F.normalize(Z.detach(), dim=1)
    if reference is None:
        R, exclude_self = Q, True
    else:
        R = torch.as_tensor(reference).to(device=Z.device, dtype=Q.dtype)
        if R.dim() != 2 or R.shape[1] != Q.shape[1]:
            raise ValueError(
                f"reference must have shape (m, {Q.shape[1]}), got {tuple(R.shape)}."
            )
        R, exclude_self = F.normalize(R, dim=1), False
    n = Q.shape[0]
    n_others = R.shape[0] - int(exclude_self)
    if n == 0 or n_others <= 0:
        return torch.zeros(n, dtype=Q.dtype, device=Z.device)

    if method == "settles":
        total = R.sum(dim=0)
        sims = Q @ total
        if exclude_self:
            sims = sims - (Q * Q).sum(dim=1)
        return sims / n_others

    k = min(n_neighbors, n_others)
    backend = resolve_knn_backend(backend, R.shape[0], Z.device, approximate_from)
    if backend == "ivf":
        seed = check_random_state(random_state).randint(np.iinfo(np.int32).max)
        idx, vals = _knn_ivf(Q, R, k, chunk_size, exclude_self, n_probe, seed)
    elif backend == "faiss":
        idx, vals = _knn_faiss(Q, R, k, exclude_self)
    else:
        idx, vals = _knn_torch(Q, R, k, chunk_size, exclude_self)
    if method == "knn_mean_cosine":
        return vals.mean(dim=1)
    return _degree(idx, k, chunk_size).to(Q.dtype) / k


@validate_params(
    {
        "k": [Interval(Integral, 0, None, closed="left")],
        "n_classes": [Interval(Integral, 1, None, closed="left")],
    },
    prefer_skip_nested_validation=True,
)
def balanced_top_k(scores, predicted_class, k, n_classes):
    """Pick ``k`` candidates with an equal quota per predicted class.

    Implements the balance of BUS (method page, :ref:`method-bus`): each
    class gets ``floor(k / C)`` picks; the rest goes to the best remaining
    candidates overall by score.

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
        Unique positions into ``scores``, in selection order: the quota picks
        in rounds (round ``r``: the ``r``-th best of every class with quota
        left, by decreasing score), then the others by decreasing score, so
        any prefix is close to class-balanced. Ties go to the lower position.
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
    if predicted_class.is_floating_point() or predicted_class.is_complex():
        raise ValueError("predicted_class must hold integers.")
    if scores.numel() and (
        predicted_class.min() < 0 or predicted_class.max() >= n_classes
    ):
        raise ValueError(f"predicted_class must lie in [0, {n_classes}).")
    if scores.is_floating_point() and torch.isnan(scores).any():
        raise ValueError("scores contain NaN.")

    n, k = scores.numel(), min(k, scores.numel())
    quota = k // n_classes
    order = torch.argsort(scores, descending=True, stable=True)
    cls = predicted_class[order].long()
    # rank[i] = rank of order[i] inside its predicted class (0 = best).
    rank = torch.empty(n, dtype=torch.long, device=scores.device)
    for c in range(n_classes):
        in_c = cls == c
        rank[in_c] = torch.arange(int(in_c.sum()), device=scores.device)
    is_quota = rank < quota
    quota_pos = is_quota.nonzero().flatten()
    # Rounds: sort quota picks by (rank, position in score order).
    by_round = torch.argsort(rank[quota_pos] * n + quota_pos, stable=True)
    quota_pos = quota_pos[by_round]
    fill_pos = (~is_quota).nonzero().flatten()[: k - quota_pos.numel()]
    return order[torch.cat([quota_pos, fill_pos])]


def bus_ranking(proba, density, k, *, beta_d=1.0, balance=True):
    """Top-``k`` rows by density-aware entropy (BUS), best first.

    Parameters
    ----------
    proba : torch.Tensor of shape (n_samples, n_classes)
        Candidates' class probabilities.
    density : torch.Tensor of shape (n_samples,)
        Candidates' density ``rho``.
    k : int
        Number of rows to rank.
    beta_d : float, default=1.0
        Density exponent.
    balance : bool, default=True
        Class-balanced quota per predicted class (:func:`balanced_top_k`);
        False ranks by score alone.

    Returns
    -------
    ranking : torch.LongTensor of shape (min(k, n_samples),)
    scores : torch.Tensor of shape (n_samples,)
        ``s(u) = H(u) rho(u)^beta_d`` of every row (row order).
    """
    proba = torch.as_tensor(proba)
    scores = density_weighted_entropy(proba, density, beta=beta_d)
    if balance:
        ranking = balanced_top_k(scores, proba.argmax(dim=1), k, proba.shape[1])
    else:
        ranking = torch.argsort(scores, descending=True, stable=True)[:k]
    return ranking, scores
