"""Uncertainty scores of the Balanced Uncertainty Selector (BUS).

Implements the entropy and density-aware entropy of BUS (method page,
:ref:`method-bus`).
"""

import torch

__all__ = ["entropy", "density_weighted_entropy"]


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

    Implements BUS's ``s(u) = H(u) * rho(u)^beta_d`` (method page,
    :ref:`method-bus`) with ``beta_d = 1`` by default.

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
    Negative densities are clipped to 0 first. Cosine similarity (hence the
    kNN mean cosine density) can be negative; a negative ``rho`` would flip
    the sign of ``s`` (ranking an uncertain isolated point *below* a certain
    one) and is undefined under a fractional power. A sample with no
    positively similar neighbours is an outlier, and a score of 0 states
    exactly that.
    """
    H = entropy(proba)
    density = torch.as_tensor(density, device=H.device, dtype=H.dtype)
    if density.shape != H.shape:
        raise ValueError(
            f"density must have shape {tuple(H.shape)}, got {tuple(density.shape)}."
        )
    return H * density.clamp(min=0) ** beta
