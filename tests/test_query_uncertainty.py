import math

import numpy as np
import pytest
import torch

from sklearn_boostmis.query import density_weighted_entropy, entropy


def test_entropy_by_hand():
    proba = torch.tensor([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [1 / 3, 1 / 3, 1 / 3]])
    H = entropy(proba)
    torch.testing.assert_close(H, torch.tensor([0.0, math.log(2), math.log(3)]))
    assert not torch.isnan(H).any()


def test_entropy_accepts_numpy_and_keeps_dtype():
    proba = np.array([[0.2, 0.8]])
    H = entropy(proba)
    assert H.dtype == torch.float64
    np.testing.assert_allclose(H.numpy(), [-(0.2 * np.log(0.2) + 0.8 * np.log(0.8))])
    with pytest.raises(ValueError):
        entropy(torch.tensor([0.5, 0.5]))


def test_density_weighted_entropy_by_hand():
    proba = torch.tensor([[0.5, 0.5], [0.5, 0.5], [0.5, 0.5], [0.9, 0.1]])
    density = torch.tensor([0.25, 1.0, -0.4, 1.0])
    h2 = math.log(2)
    h_skew = -(0.9 * math.log(0.9) + 0.1 * math.log(0.1))
    s = density_weighted_entropy(proba, density)
    torch.testing.assert_close(s, torch.tensor([0.25 * h2, h2, 0.0, h_skew]))
    s2 = density_weighted_entropy(proba, density, beta=2.0)
    torch.testing.assert_close(s2, torch.tensor([0.0625 * h2, h2, 0.0, h_skew]))
    # beta = 0 ignores density (negative clipped to 0, 0 ** 0 == 1)
    s0 = density_weighted_entropy(proba, density, beta=0.0)
    torch.testing.assert_close(s0, entropy(proba))


def test_density_shape_mismatch():
    with pytest.raises(ValueError):
        density_weighted_entropy(torch.full((3, 2), 0.5), torch.ones(2))
