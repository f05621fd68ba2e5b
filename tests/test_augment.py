import numpy as np
import pytest
import torch

from sklearn_boostmis.augment import (
    FeatureDropoutNoise,
    GaussianFeatureNoise,
    make_augmentation,
)


@pytest.fixture
def X():
    g = torch.Generator().manual_seed(0)
    scales = torch.tensor([1.0, 10.0, 0.1])
    return torch.randn(20000, 3, generator=g) * scales + 5.0


def test_weak_noise_std_is_relative_to_feature_std(X):
    weak = GaussianFeatureNoise(noise=0.01).fit(X, torch.Generator().manual_seed(1))
    diff = weak(X) - X
    np.testing.assert_allclose(
        diff.std(dim=0).numpy(), 0.01 * X.std(dim=0).numpy(), rtol=0.05
    )
    np.testing.assert_allclose(diff.mean(dim=0).numpy(), 0.0, atol=0.01 * 10 * 0.05)


def test_strong_drops_features_and_adds_larger_noise(X):
    dropout_only = FeatureDropoutNoise(dropout=0.3, noise=0.0)
    out = dropout_only.fit(X, torch.Generator().manual_seed(1))(X)
    zeroed = out == 0
    assert zeroed.float().mean().item() == pytest.approx(0.3, abs=0.01)
    assert torch.equal(out[~zeroed], X[~zeroed])  # kept features are not rescaled

    noise_only = FeatureDropoutNoise(dropout=0.0, noise=0.1)
    diff = noise_only.fit(X, torch.Generator().manual_seed(1))(X) - X
    np.testing.assert_allclose(
        diff.std(dim=0).numpy(), 0.1 * X.std(dim=0).numpy(), rtol=0.05
    )


def test_same_generator_seed_same_views(X):
    a = FeatureDropoutNoise().fit(X, torch.Generator().manual_seed(3))(X[:5])
    b = FeatureDropoutNoise().fit(X, torch.Generator().manual_seed(3))(X[:5])
    c = FeatureDropoutNoise().fit(X, torch.Generator().manual_seed(4))(X[:5])
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_rejects_non_feature_arrays():
    with pytest.raises(ValueError, match="feature vectors"):
        GaussianFeatureNoise().fit(torch.zeros(2, 1, 4, 4))
    with pytest.raises(ValueError, match="at least one row"):
        GaussianFeatureNoise().fit(torch.zeros(0, 3))


@pytest.mark.parametrize("cls", [GaussianFeatureNoise, FeatureDropoutNoise])
def test_used_on_their_own(cls):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        cls()(torch.zeros(2, 3))
    augment = cls().fit(np.random.RandomState(0).randn(5, 3))  # an array, float64
    assert augment(torch.zeros(2, 3)).dtype == torch.float32  # follows x


@pytest.mark.parametrize(
    "augment, match",
    [
        (FeatureDropoutNoise(dropout=1.5), "'dropout' parameter"),
        (FeatureDropoutNoise(noise=-2), "'noise' parameter"),
        (GaussianFeatureNoise(noise=-0.1), "'noise' parameter"),
    ],
)
def test_invalid_parameters_are_refused_in_fit(augment, match):
    with pytest.raises(ValueError, match=match):
        augment.fit(torch.zeros(4, 3))


def test_make_augmentation_resolves_parameter():
    default = GaussianFeatureNoise(0.5)
    resolved = make_augmentation("auto", default)
    assert isinstance(resolved, GaussianFeatureNoise) and resolved is not default
    x = torch.ones(2, 2)
    assert make_augmentation(None, default)(x) is x

    def flip(t):
        return -t

    assert make_augmentation(flip, default) is flip

    class Fitted:  # fit but no get_params: deep-copied, never fitted in place
        def fit(self, X, generator=None):
            self.fitted = True
            return self

        def __call__(self, x):
            return x

    mine = Fitted()
    resolved = make_augmentation(mine, default)
    assert resolved is not mine
    assert resolved.fit(x).fitted and not hasattr(mine, "fitted")
    with pytest.raises(ValueError, match="auto"):
        make_augmentation("strong", default)
    with pytest.raises(TypeError, match="callable"):
        make_augmentation(3, default)


def test_swap_noise_draws_each_feature_from_the_same_column_of_the_batch():
    from sklearn_boostmis.augment import MarginalResamplingNoise

    X = torch.arange(40.0).reshape(8, 5)  # every value is unique
    swap = MarginalResamplingNoise(p=0.5).fit(X, torch.Generator().manual_seed(0))
    out = swap(X)
    for j in range(X.shape[1]):
        assert set(out[:, j].tolist()) <= set(X[:, j].tolist())
    changed = (out != X).float().mean()
    assert 0.2 < float(changed) < 0.6  # about p (1 - 1/8) of the entries


def test_swap_noise_extremes_and_seeding():
    from sklearn_boostmis.augment import MarginalResamplingNoise

    X = torch.randn(16, 4, generator=torch.Generator().manual_seed(1))
    keep = MarginalResamplingNoise(p=0.0).fit(X, torch.Generator().manual_seed(0))
    torch.testing.assert_close(keep(X), X)
    a = MarginalResamplingNoise(p=0.3, noise=0.1).fit(
        X, torch.Generator().manual_seed(0)
    )
    b = MarginalResamplingNoise(p=0.3, noise=0.1).fit(
        X, torch.Generator().manual_seed(0)
    )
    torch.testing.assert_close(a(X), b(X))
    with pytest.raises(ValueError, match="p"):
        MarginalResamplingNoise(p=1.5).fit(X)
