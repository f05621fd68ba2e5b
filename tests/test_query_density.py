import sys

import numpy as np
import pytest
import torch

from sklearn_boostmis.query import density as density_mod
from sklearn_boostmis.query import knn_density


def _brute(Z, k, method, reference=None):
    """Reference density from the full n x n (or n x m) cosine matrix."""
    Zn = Z / np.linalg.norm(Z, axis=1, keepdims=True)
    if reference is not None:
        Rn = reference / np.linalg.norm(reference, axis=1, keepdims=True)
        S = Zn @ Rn.T
        if method == "settles":
            return S.mean(axis=1)
        return np.sort(S, axis=1)[:, ::-1][:, :k].mean(axis=1)
    n = len(Z)
    S = Zn @ Zn.T
    np.fill_diagonal(S, -np.inf)
    if method == "settles":
        np.fill_diagonal(S, 0.0)
        return S.sum(axis=1) / (n - 1)
    k = min(k, n - 1)
    nn_idx = np.argsort(-S, axis=1, kind="stable")[:, :k]
    if method == "knn_mean_cosine":
        return np.take_along_axis(S, nn_idx, axis=1).mean(axis=1)
    A = np.zeros((n, n), dtype=bool)
    A[np.repeat(np.arange(n), k), nn_idx.ravel()] = True
    return (A | A.T).sum(axis=1) / k


@pytest.fixture
def Z():
    return np.random.default_rng(0).normal(size=(37, 5))


METHODS = ["knn_mean_cosine", "knn_degree", "settles"]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("chunk_size", [1, 5, 16, 37, 1000])
def test_matches_brute_force(Z, method, chunk_size):
    got = knn_density(
        torch.as_tensor(Z),
        n_neighbors=4,
        method=method,
        chunk_size=chunk_size,
        backend="torch",
    )
    assert got.dtype == torch.float64 and got.shape == (37,)
    np.testing.assert_allclose(got.numpy(), _brute(Z, 4, method), rtol=1e-10)


@pytest.mark.parametrize("method", METHODS)
def test_fewer_rows_than_neighbors(method):
    Z = np.random.default_rng(1).normal(size=(4, 3))
    got = knn_density(
        torch.as_tensor(Z), n_neighbors=10, method=method, backend="torch"
    )
    np.testing.assert_allclose(got.numpy(), _brute(Z, 10, method), rtol=1e-10)


@pytest.mark.parametrize("method", METHODS)
def test_single_row_is_zero(method):
    got = knn_density(torch.ones(1, 3), method=method)
    assert torch.equal(got, torch.zeros(1))
    assert knn_density(torch.ones(0, 3), method=method).shape == (0,)


def test_degree_is_hub_count_by_hand():
    # Points on the unit circle at angles 0, 10, 20, 180 degrees, k = 1.
    # kNN: 0->1, 1->0 (tie with 2, lower index), 2->1, 3->2 (cos 180-20 > 180-0)
    ang = np.deg2rad([0.0, 10.0, 20.0, 180.0])
    Z = torch.as_tensor(np.stack([np.cos(ang), np.sin(ang)], 1))
    got = knn_density(Z, n_neighbors=1, method="knn_degree", backend="torch")
    # neighbours in the symmetrised graph: 0:{1}, 1:{0,2}, 2:{1,3}, 3:{2}
    np.testing.assert_allclose(got.numpy(), [1.0, 2.0, 2.0, 1.0])


def test_ties_break_by_lower_index():
    # Row 0 has three exactly equidistant neighbours (duplicates); with k = 1
    # it must pick row 1, so only row 1 gets an in-edge from row 0.
    Z = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [0.0, 1.0]])
    idx, _ = density_mod._knn_torch(Z, Z, 1, 2, exclude_self=True)
    assert idx[:, 0].tolist() == [1, 2, 1, 1]


@pytest.mark.parametrize("method", ["knn_mean_cosine", "settles"])
def test_reference_set(Z, method):
    ref = np.random.default_rng(2).normal(size=(11, 5))
    got = knn_density(
        torch.as_tensor(Z),
        n_neighbors=3,
        method=method,
        chunk_size=7,
        reference=torch.as_tensor(ref),
        backend="torch",
    )
    np.testing.assert_allclose(got.numpy(), _brute(Z, 3, method, ref), rtol=1e-10)


def test_zero_row_has_zero_similarity():
    Z = torch.tensor([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0]])
    got = knn_density(Z, method="settles")
    np.testing.assert_allclose(got.numpy(), [0.0, 0.5, 0.5])


def test_dense_cluster_denser_than_outlier():
    rng = np.random.default_rng(3)
    cluster = np.array([1.0, 0.0, 0.0]) + 0.05 * rng.normal(size=(30, 3))
    outlier = np.array([[0.0, 0.0, 1.0]])
    Z = torch.as_tensor(np.vstack([cluster, outlier]), dtype=torch.float32)
    for method in ["knn_mean_cosine", "settles"]:
        rho = knn_density(Z, n_neighbors=5, method=method, backend="torch")
        assert rho[-1] < rho[:-1].min(), method
    # nobody picks the outlier: it keeps the minimum degree k (normalised: 1)
    rho = knn_density(Z, n_neighbors=5, method="knn_degree", backend="torch")
    assert rho[-1] == 1.0 and rho[:-1].mean() > 1.2


def test_invalid_arguments(Z):
    Z = torch.as_tensor(Z)
    with pytest.raises(ValueError, match="method"):
        knn_density(Z, method="bogus")
    with pytest.raises(ValueError, match="backend"):
        knn_density(Z, backend="bogus")
    with pytest.raises(ValueError, match="reference"):
        knn_density(Z, method="knn_degree", reference=Z)
    with pytest.raises(ValueError):
        knn_density(Z, n_neighbors=0)
    with pytest.raises(ValueError):
        knn_density(Z[0])


@pytest.mark.parametrize("method", ["knn_mean_cosine", "knn_degree"])
def test_faiss_matches_torch(Z, method):
    pytest.importorskip("faiss")
    Zt = torch.as_tensor(Z, dtype=torch.float32)
    torch_rho = knn_density(Zt, n_neighbors=4, method=method, backend="torch")
    faiss_rho = knn_density(Zt, n_neighbors=4, method=method, backend="faiss")
    auto_rho = knn_density(Zt, n_neighbors=4, method=method, backend="auto")
    torch.testing.assert_close(faiss_rho, torch_rho, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(auto_rho, faiss_rho)


def test_faiss_reference(Z):
    pytest.importorskip("faiss")
    ref = torch.as_tensor(np.random.default_rng(4).normal(size=(9, 5)))
    got = knn_density(torch.as_tensor(Z), n_neighbors=3, reference=ref, backend="faiss")
    np.testing.assert_allclose(
        got.numpy(), _brute(Z, 3, "knn_mean_cosine", ref.numpy()), rtol=1e-5
    )


def test_auto_falls_back_to_torch_without_faiss(Z, monkeypatch):
    monkeypatch.setitem(sys.modules, "faiss", None)  # makes `import faiss` fail
    Zt = torch.as_tensor(Z)
    auto = knn_density(Zt, n_neighbors=4, backend="auto")
    # exact float64 equality only holds on the torch path (faiss is float32)
    assert torch.equal(auto, knn_density(Zt, n_neighbors=4, backend="torch"))


@pytest.mark.parametrize("method", ["knn_mean_cosine", "knn_degree"])
@pytest.mark.parametrize("chunk_size", [1, 4, 100])
def test_massive_ties_match_stable_brute_force(method, chunk_size):
    # one-hot rows: every cosine is exactly 0 or 1, so ties are everywhere
    labels = np.array([0, 1, 0, 2, 0, 1, 2, 2, 0, 3, 1])
    Z = np.eye(4)[labels]
    got = knn_density(
        torch.as_tensor(Z),
        n_neighbors=3,
        method=method,
        chunk_size=chunk_size,
        backend="torch",
    )
    np.testing.assert_array_equal(got.numpy(), _brute(Z, 3, method))


def test_reference_smaller_than_k(Z):
    ref = np.random.default_rng(5).normal(size=(3, 5))
    got = knn_density(
        torch.as_tensor(Z), n_neighbors=10, reference=ref, backend="torch"
    )
    np.testing.assert_allclose(got.numpy(), _brute(Z, 3, "settles", ref), rtol=1e-10)
