"""Feature-vector augmentations (method page, :ref:`method-augmentations`): noise
scaled per feature and feature dropout, since image operations do not exist for
feature vectors (a documented departure from the paper; any callable ``x -> x``
can be passed instead). An augmentation is fitted once per ``fit`` on the
training rows (it learns the per-feature standard deviation sigma_j) and given
the engine's seeded :class:`torch.Generator`: its batched torch operations run
on the model's device, bit-for-bit repeatable on the CPU.
"""

import copy
from numbers import Real

import torch
from sklearn.base import BaseEstimator, _fit_context, clone
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted

from ._utils import TensorStateMixin


class _FeatureAugmentation(TensorStateMixin, BaseEstimator):
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, generator=None):
        """Learn sigma_j from the training rows ``X`` (2-D, a tensor or array)."""
        X = torch.as_tensor(X)
        if X.ndim != 2 or len(X) == 0:
            raise ValueError(
                f"{type(self).__name__} augments feature vectors (n_samples, "
                f"n_features), at least one row; got an array with shape "
                f"{tuple(X.shape)}"
            )
        std = X.std(dim=0, unbiased=False) if len(X) > 1 else torch.zeros_like(X[0])
        self.scale_ = std.to(X.dtype)
        self.noise_std_ = self.noise * self.scale_
        self.generator_ = generator
        return self

    def _noise(self, x):
        noise = torch.randn(
            x.shape, generator=self.generator_, device=x.device, dtype=x.dtype
        )
        return noise * self.noise_std_.to(x.dtype)  # the output keeps x's dtype


class GaussianFeatureNoise(_FeatureAugmentation):
    """Weak view: ``x + N(0, (noise * sigma_j)^2)`` per feature.

    Parameters
    ----------
    noise : float, default=0.01
        Noise standard deviation relative to sigma_j (the feature's), >= 0.

    Examples
    --------
    >>> import torch
    >>> X = torch.randn(100, 3, generator=torch.Generator().manual_seed(0))
    >>> weak = GaussianFeatureNoise(0.01).fit(X, torch.Generator().manual_seed(0))
    >>> weak(X).shape
    torch.Size([100, 3])
    """

    _parameter_constraints: dict = {"noise": [Interval(Real, 0, None, closed="left")]}

    def __init__(self, noise=0.01):
        self.noise = noise

    def __call__(self, x):
        check_is_fitted(self, "noise_std_")
        return x + self._noise(x)


class FeatureDropoutNoise(_FeatureAugmentation):
    """Strong view: feature dropout, then ``N(0, (noise * sigma_j)^2)`` noise.

    Dropped features are set to 0 and the kept ones are *not* rescaled: the
    view must stay in the data's units, unlike dropout inside a network.

    ``FeatureDropoutNoise(0.3, 0.1)`` is a milder view than the defaults; no
    strength is best on every data set (``benchmarks/RESULTS.md``).

    Parameters
    ----------
    dropout : float, default=0.5
        Probability of zeroing each feature of each sample, in [0, 1].
    noise : float, default=0.5
        Noise standard deviation relative to sigma_j (the feature's), >= 0.
    """

    _parameter_constraints: dict = {
        "dropout": [Interval(Real, 0, 1, closed="both")],
        "noise": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(self, dropout=0.5, noise=0.5):
        self.dropout = dropout
        self.noise = noise

    def __call__(self, x):
        check_is_fitted(self, "noise_std_")
        draw = torch.rand(x.shape, generator=self.generator_, device=x.device)
        return x * (draw >= self.dropout) + self._noise(x)


class MarginalResamplingNoise(_FeatureAugmentation):
    """Strong view: swap noise, each feature resampled from another row.

    Each feature of each sample is replaced, with probability ``p``, by the
    same feature of a random row of the batch (SCARF, VIME and SubTab's
    corruption), which keeps every feature's marginal distribution instead of
    moving the point off the data to 0; then ``N(0, (noise * sigma_j)^2)``
    noise is added.

    Parameters
    ----------
    p : float, default=0.3
        Probability of resampling each feature of each sample, in [0, 1].
    noise : float, default=0.0
        Noise standard deviation relative to sigma_j (the feature's), >= 0.

    Examples
    --------
    >>> import torch
    >>> X = torch.randn(100, 3, generator=torch.Generator().manual_seed(0))
    >>> swap = MarginalResamplingNoise(0.3).fit(X, torch.Generator().manual_seed(0))
    >>> swap(X).shape
    torch.Size([100, 3])
    """

    _parameter_constraints: dict = {
        "p": [Interval(Real, 0, 1, closed="both")],
        "noise": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(self, p=0.3, noise=0.0):
        self.p = p
        self.noise = noise

    def __call__(self, x):
        check_is_fitted(self, "noise_std_")
        n, generator = len(x), self.generator_
        donors = torch.randint(n, x.shape, generator=generator, device=x.device)
        swap = torch.rand(x.shape, generator=generator, device=x.device) < self.p
        out = torch.where(swap, torch.gather(x, 0, donors), x)
        return out + self._noise(x) if self.noise else out


def make_augmentation(augment, default):
    """Resolve the estimator's ``weak_augment``/``strong_augment`` parameter.

    ``"auto"`` gives ``default``; ``None`` the identity; an object with ``fit``
    is cloned (a scikit-learn-style one) or deep-copied (it will be fitted on
    the training rows, never the user's object); any other callable is used as
    it is.
    """
    if isinstance(augment, str):
        if augment != "auto":
            raise ValueError(
                f"augmentations must be 'auto', None or a callable, got {augment!r}"
            )
        return clone(default)
    if augment is None:
        return _identity
    if not callable(augment):
        raise TypeError(
            f"augmentations must be 'auto', None or a callable, got "
            f"{type(augment).__name__}"
        )
    if not hasattr(augment, "fit"):
        return augment
    return clone(augment) if hasattr(augment, "get_params") else copy.deepcopy(augment)


def default_augmentations(ndim):
    """The ``"auto"`` weak and strong views for inputs of ``ndim`` dimensions."""
    if ndim == 2:
        return GaussianFeatureNoise(), FeatureDropoutNoise()
    if ndim == 4:
        from .image_augment import StrongImageAugment, WeakImageAugment

        return WeakImageAugment(), StrongImageAugment()
    raise ValueError(f"no default augmentation for {ndim}-dimensional inputs")


def _identity(x):
    return x
