"""Adversarial Unstability Selector (AUS): virtual adversarial KL scores
(method page, :ref:`method-aus`)."""

import warnings
from numbers import Integral, Real

import torch
import torch.nn.functional as F
from sklearn.utils._param_validation import Interval, validate_params

from ..modules import eval_mode, supports_embedding

__all__ = ["adversarial_instability", "aus_ranking"]

_TINY = 1e-12


def _kl(log_p, logits_q):
    """Per-sample ``KL(p || softmax(logits_q))`` with ``p = exp(log_p)``."""
    log_q = F.log_softmax(logits_q, dim=-1)
    return F.kl_div(log_q, log_p, reduction="none", log_target=True).sum(dim=-1)


def _unit(d):
    """L2-normalise every sample of ``d`` over all non-batch dimensions."""
    norm = d.flatten(start_dim=1).norm(dim=1)
    return d / (norm + _TINY).view(-1, *([1] * (d.dim() - 1)))


def _score_batch(embed, head, x, *, xi, eps, n_power, symmetric, generator):
    with torch.no_grad():
        z = embed(x).detach()
        log_p = F.log_softmax(head(z), dim=-1)
    d = torch.rand(z.shape, generator=generator, device=z.device, dtype=z.dtype)
    d = _unit(d - 0.5)
    for _ in range(n_power):
        d = d.detach().requires_grad_(True)
        with torch.enable_grad():
            kl = _kl(log_p, head(z + xi * d)).sum()
            (g,) = torch.autograd.grad(kl, d)
        d = _unit(g.detach())
    r_adv = eps * d.detach()
    with torch.no_grad():
        score = _kl(log_p, head(z + r_adv))
        if symmetric:
            score = torch.maximum(score, _kl(log_p, head(z - r_adv)))
    return score


@validate_params(
    {
        "xi": [Interval(Real, 0, None, closed="neither")],
        "eps": [Interval(Real, 0, None, closed="neither")],
        "n_power": [Interval(Integral, 0, None, closed="left")],
        "symmetric": ["boolean"],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "embedded": ["boolean"],
    },
    prefer_skip_nested_validation=True,
)
def adversarial_instability(
    module,
    X,
    *,
    xi=10.0,
    eps=1.0,
    n_power=1,
    symmetric=False,
    batch_size=1024,
    generator=None,
    embedded=False,
):
    """Virtual adversarial instability of each sample (AUS score).

    Implements the AUS equations (method page, :ref:`method-aus`):
    ``score(u) = KL(p || softmax(h(z + r_adv)))``, ``r_adv`` found by
    ``n_power`` power iterations from a random start.

    Parameters
    ----------
    module : torch.nn.Module
        The task network. If it exposes ``embed(X) -> Z`` and
        ``head(Z) -> logits`` (the module protocol, method page,
        :ref:`method-module-protocol`), the perturbation is applied to the
        representation ``Z``; otherwise it is applied to the input ``X``
        (``z = X``, ``h = module``) and a ``UserWarning`` is emitted.
    X : torch.Tensor of shape (n_samples, ...)
        Samples to score, already on the module's device.
    xi : float, default=10.0
        Finite-difference step of the power iteration, in absolute feature
        units.
    eps : float, default=1.0
        Norm of the adversarial perturbation ``r_adv``, in absolute feature
        units.
    n_power : int, default=1
        Number of power iterations (``ip``); ``0`` scores a random direction.
    symmetric : bool, default=False
        If True, ``score = max(KL at +r_adv, KL at -r_adv)``, which removes
        the arbitrary sign of ``r_adv`` (never below the one-sided score).
    batch_size : int, default=1024
        Number of samples scored per forward/backward pass.
    generator : torch.Generator, optional
        Source of the random start ``d`` (must live on the device of ``Z``).
        The noise is drawn batch by batch, so scores are reproducible for a
        given generator state *and* ``batch_size``.
    embedded : bool, default=False
        If True, ``X`` holds the representations ``Z = module.embed(inputs)``
        (as :meth:`~sklearn_boostmis.BoostMISClassifier.teacher_outputs` returns
        them): only ``module.head`` runs. Needs a module with ``embed``/``head``.

    Returns
    -------
    scores : torch.Tensor of shape (n_samples,)
        Per-sample KL divergence (floating point, >= 0 up to rounding), on
        ``X``'s device. Higher means less stable, i.e. more informative.

    Notes
    -----
    The ``.grad`` of the module's parameters is never touched. Every submodule
    runs in eval mode, its previous mode restored afterwards, even on error.
    A zero gradient leaves ``d = 0``, giving a score of 0.
    """
    parameter = next(module.parameters(), None)
    X = torch.as_tensor(X)
    if parameter is not None and X.is_floating_point():
        X = X.to(parameter.dtype)  # e.g. float64 arrays for a float32 module
    split = supports_embedding(module)
    if embedded and not split:
        raise ValueError(
            f"embedded=True needs a module with embed()/head(); "
            f"{type(module).__name__} has none"
        )
    if not split:
        warnings.warn(
            f"{type(module).__name__} does not expose embed()/head(); "
            "representation-space perturbation is unavailable, so AUS perturbs "
            "the input instead.",
            UserWarning,
            stacklevel=2,
        )
    embed = module.embed if split and not embedded else torch.nn.Identity()
    head = module.head if split else module

    with eval_mode(module):
        scores = [
            _score_batch(
                embed,
                head,
                X[start : start + batch_size],
                xi=xi,
                eps=eps,
                n_power=n_power,
                symmetric=symmetric,
                generator=generator,
            )
            for start in range(0, X.shape[0], batch_size)
        ]
    if not scores:
        return torch.empty(0, device=X.device)
    return torch.cat(scores).to(X.device)


def aus_ranking(module, X, **kwargs):
    """Rows of ``X`` ranked by adversarial instability (AUS), best first.

    Parameters
    ----------
    module : torch.nn.Module
        The EMA teacher.
    X : torch.Tensor of shape (n_samples, ...)
        Candidates (or their representations, with ``embedded=True``), on
        the module's device.
    **kwargs
        ``xi``, ``eps``, ``n_power``, ``symmetric``, ``batch_size``,
        ``generator``, ``embedded``: see :func:`adversarial_instability`.

    Returns
    -------
    ranking : torch.LongTensor of shape (n_samples,)
        Positions into ``X``; ties go to the lower position.
    scores : torch.Tensor of shape (n_samples,)
        The AUS score of every row (in row order, not ranking order).
    """
    scores = adversarial_instability(module, X, **kwargs)
    return torch.argsort(scores, descending=True, stable=True), scores
