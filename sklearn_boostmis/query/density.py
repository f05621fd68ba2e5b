"""Representation density for the Balanced Uncertainty Selector (BUS).

Implements the density rho(u) of BUS (method page, :ref:`method-bus`) without
ever materialising an n x n similarity matrix.
"""

import torch
import torch.nn.functional as F

__all__ = ["knn_density"]

_METHODS = ("knn_mean_cosine", "knn_degree", "settles")
_BACKENDS = ("auto", "torch", "faiss")


def _faiss_available():
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


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


def _knn_torch(Q, R, k, chunk_size, exclude_self):
    """k nearest rows of ``R`` (inner product) for every row of ``Q``, chunked."""
    n_q = Q.shape[0]
    idx = torch.empty((n_q, k), dtype=torch.long, device=Q.device)
    val = torch.empty((n_q, k), dtype=Q.dtype, device=Q.device)
    for start in range(0, n_q, chunk_size):
        stop = min(start + chunk_size, n_q)
        sims = Q[start:stop] @ R.T
        if exclude_self:
            rows = torch.arange(stop - start, device=Q.device)
            sims[rows, rows + start] = -torch.inf
        nn_idx = _topk_lowest_index(sims, k)
        idx[start:stop] = nn_idx
        val[start:stop] = sims.gather(1, nn_idx)
    return idx, val


def _knn_faiss(Q, R, k, exclude_self):
    """Same as :func:`_knn_torch` with a faiss ``IndexFlatIP`` (CPU only)."""
    import faiss

    q = Q.detach().to(torch.float32).contiguous().numpy()
    r = R.detach().to(torch.float32).contiguous().numpy()
    index = faiss.IndexFlatIP(r.shape[1])
    index.add(r)
    sims, idx = index.search(q, k + int(exclude_self))
    sims = torch.from_numpy(sims)
    idx = torch.from_numpy(idx).long()
    if exclude_self:
        own = idx == torch.arange(q.shape[0]).unsqueeze(1)
        # Drop the row's own index if found, otherwise the last (k+1-th) hit.
        drop = torch.where(own.any(dim=1), own.to(torch.int8).argmax(dim=1), k)
        keep = torch.ones_like(own)
        keep[torch.arange(q.shape[0]), drop] = False
        sims = sims[keep].view(-1, k)
        idx = idx[keep].view(-1, k)
    return idx, sims.to(Q.dtype)


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


def knn_density(
    Z,
    *,
    n_neighbors=10,
    method="knn_mean_cosine",
    chunk_size=4096,
    reference=None,
    backend="auto",
):
    """Density rho(u) of each representation among the pool (BUS).

    Implements the density of BUS (method page, :ref:`method-bus`):
    rho(u) = mean cosine similarity of z(u) to its k nearest other
    representations (k = 10), or one of the two listed options (kNN degree
    in the symmetrised kNN graph; mean similarity to the whole pool,
    Settles & Craven).

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
          ``|{j != i : j in kNN(i) or i in kNN(j)}|``, divided by k. The
          value is therefore >= 1 (its own k out-neighbours), and grows with
          the number of rows that pick it as a neighbour (hubs of dense
          regions); it is at most ``(n - 1) / k``.
        - ``"settles"``: mean cosine similarity to all other rows,
          ``(sum_j z_j . z_i - z_i . z_i) / (n - 1)`` on normalised rows, in
          O(n D) time and memory; ``n_neighbors``, ``chunk_size`` and
          ``backend`` are unused.
    chunk_size : int, default=4096
        Number of query rows per similarity block. Peak memory is
        O(n k + chunk_size n); no n x n matrix is ever built.
    reference : torch.Tensor or array-like of shape (n_reference, n_features), \
            optional
        If given, neighbours (or the whole-pool mean) are taken among the rows
        of ``reference`` instead of ``Z``, e.g. a random subsample of a very
        large pool (method page, :ref:`method-cost`). Reference rows are
        treated as distinct from the query rows: no self-exclusion is done, so
        do not pass a reference that contains the query rows themselves. Not
        supported with ``method="knn_degree"`` (the graph is defined on one
        pool).
    backend : {"auto", "torch", "faiss"}, default="auto"
        kNN search engine. ``"auto"`` uses faiss (exact ``IndexFlatIP`` on
        L2-normalised float32 rows) when it is importable and ``Z`` is on the
        CPU, and chunked torch matmul + topk otherwise. The torch path breaks
        similarity ties by lower index; faiss's tie order is its own.

    Returns
    -------
    density : torch.Tensor of shape (n_samples,)
        Floating point, on ``Z``'s device. Cosine-based densities lie in
        [-1, 1] and can be negative. A pool with a single row (and no
        reference) has no other rows: its density is defined as 0.
    """
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}.")
    if backend not in _BACKENDS:
        raise ValueError(f"backend must be one of {_BACKENDS}, got {backend!r}.")
    if int(n_neighbors) != n_neighbors or n_neighbors < 1:
        raise ValueError(f"n_neighbors must be a positive int, got {n_neighbors}.")
    if int(chunk_size) != chunk_size or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive int, got {chunk_size}.")
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

    k = min(int(n_neighbors), n_others)
    use_faiss = backend == "faiss" or (
        backend == "auto" and Z.device.type == "cpu" and _faiss_available()
    )
    if use_faiss:
        if Z.device.type != "cpu":
            raise ValueError("backend='faiss' requires Z on the CPU.")
        idx, vals = _knn_faiss(Q, R, k, exclude_self)
    else:
        idx, vals = _knn_torch(Q, R, k, int(chunk_size), exclude_self)
    if method == "knn_mean_cosine":
        return vals.mean(dim=1)
    return _degree(idx, k, int(chunk_size)).to(Q.dtype) / k
