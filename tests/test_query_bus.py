import math
import sys

import numpy as np
import pytest
import torch

from sklearn_boostmis.query import (
    balanced_top_k,
    bus,
    density_weighted_entropy,
    entropy,
    knn_density,
)

# -- density -----------------------------------------------------------------


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
    idx, _ = bus._knn_torch(Z, Z, 1, 2, exclude_self=True)
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


# -- entropy and density-aware entropy ---------------------------------------
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


# -- class-balanced top-k ----------------------------------------------------
def test_equal_quota_by_hand():
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    pred = torch.tensor([0, 0, 0, 1, 1, 1])
    # plain top-4 would be [0, 1, 2, 3]; balanced gives two of each class,
    # in rounds: (0, 3), then (1, 4)
    assert balanced_top_k(scores, pred, 4, 2).tolist() == [0, 3, 1, 4]


def test_small_class_quota_is_redistributed():
    scores = torch.tensor([0.1, 0.9, 0.8, 0.7, 0.6, 0.5, 0.95, 0.2])
    pred = torch.tensor([2, 0, 0, 0, 0, 1, 1, 1])
    # k = 7, C = 3: quota 2 per class; class 2 has only position 0.
    # quota picks: class 0 -> 1, 2; class 1 -> 6, 5; class 2 -> 0
    # rounds by score: (6, 1, 0), (2, 5); 2 left (1 unused + remainder 1)
    # go to the best remaining overall: 3 (0.7), 4 (0.6)
    got = balanced_top_k(scores, pred, 7, 3)
    assert got.tolist() == [6, 1, 0, 2, 5, 3, 4]
    assert got.dtype == torch.long


def test_remainder_goes_to_best_remaining():
    scores = torch.tensor([0.5, 0.4, 0.3, 0.9, 0.1])
    pred = torch.tensor([0, 0, 0, 1, 1])
    # k = 3, C = 2: quota 1 each -> 3 (class 1), 0 (class 0); remainder 1 -> 1
    assert balanced_top_k(scores, pred, 3, 2).tolist() == [3, 0, 1]


def test_balanced_ties_break_by_lower_index():
    scores = torch.tensor([1.0, 1.0, 1.0, 1.0])
    pred = torch.tensor([1, 0, 1, 0])
    assert balanced_top_k(scores, pred, 3, 2).tolist() == [0, 1, 2]


def test_k_larger_than_pool_and_empty_class():
    scores = torch.tensor([0.3, 0.2, 0.1])
    pred = torch.tensor([0, 0, 0])
    assert balanced_top_k(scores, pred, 10, 4).tolist() == [0, 1, 2]
    assert balanced_top_k(scores, pred, 0, 4).tolist() == []


def test_random_pool_properties():
    g = torch.Generator().manual_seed(0)
    scores = torch.rand(200, generator=g)
    pred = torch.randint(0, 5, (200,), generator=g)
    got = balanced_top_k(scores, pred, 23, 5)
    assert got.numel() == got.unique().numel() == 23
    counts = torch.bincount(pred[got], minlength=5)
    assert torch.all(counts >= 4)  # floor(23 / 5) per class, all classes large
    # within each class the picks are that class's best ones
    for c in range(5):
        mine = scores[got[pred[got] == c]]
        others = scores[(pred == c)]
        assert mine.min() >= others.sort(descending=True).values[counts[c] - 1]


def test_empty_lists():
    assert balanced_top_k([], [], 3, 3).tolist() == []


def test_invalid_inputs():
    with pytest.raises(ValueError):
        balanced_top_k(torch.ones(3), torch.tensor([0, 1, 2]), 2, 2)
    with pytest.raises(ValueError):
        balanced_top_k(torch.ones(3), torch.tensor([0, 1]), 2, 2)
    with pytest.raises(ValueError):
        balanced_top_k(torch.tensor([0.1, float("nan")]), torch.tensor([0, 1]), 1, 2)


# -- streamed and approximate search -----------------------------------------
@pytest.mark.parametrize("method", ["knn_mean_cosine", "knn_degree"])
@pytest.mark.parametrize("block", [1, 2, 5, 36])
def test_reference_blocks_find_the_one_block_neighbours(Z, method, block, monkeypatch):
    Zt = torch.as_tensor(Z)
    expected = knn_density(Zt, n_neighbors=4, method=method, backend="torch")
    monkeypatch.setattr(bus, "_REFERENCE_BLOCK", block)
    for chunk_size in (1, 7, 100):
        got = knn_density(
            Zt, n_neighbors=4, method=method, chunk_size=chunk_size, backend="torch"
        )
        torch.testing.assert_close(got, expected, rtol=1e-12, atol=0)


@pytest.mark.parametrize("block", [1, 2, 3])
def test_reference_blocks_break_ties_by_lower_index(block, monkeypatch):
    labels = np.array([0, 1, 0, 2, 0, 1, 2, 2, 0, 3, 1])
    Z = np.eye(4)[labels]
    monkeypatch.setattr(bus, "_REFERENCE_BLOCK", block)
    for method in ("knn_mean_cosine", "knn_degree"):
        got = knn_density(
            torch.as_tensor(Z), n_neighbors=3, method=method, backend="torch"
        )
        np.testing.assert_array_equal(got.numpy(), _brute(Z, 3, method))
    ref = np.eye(4)[[3, 0, 0, 1, 2, 1]]
    got = knn_density(torch.as_tensor(Z), n_neighbors=2, reference=ref, backend="torch")
    np.testing.assert_array_equal(got.numpy(), _brute(Z, 2, "knn_mean_cosine", ref))


def test_similarity_blocks_do_not_grow_with_the_pool(monkeypatch):
    widths = []
    topk = bus._topk_lowest_index

    def recording(sims, k):
        widths.append(sims.shape)
        return topk(sims, k)

    monkeypatch.setattr(bus, "_topk_lowest_index", recording)
    monkeypatch.setattr(bus, "_REFERENCE_BLOCK", 8)
    Z = torch.randn(50, 3, generator=torch.Generator().manual_seed(0))
    knn_density(Z, n_neighbors=3, chunk_size=4, backend="torch")
    assert max(rows * cols for rows, cols in widths) <= 4 * 8


def _clusters(n, seed=0, n_clusters=8, dim=6):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_clusters, dim)) * 5
    return torch.as_tensor(
        centres[rng.integers(n_clusters, size=n)] + rng.normal(size=(n, dim)),
        dtype=torch.float32,
    )


def test_approximate_search_is_deterministic_with_a_seed():
    Z = _clusters(2000)
    runs = [knn_density(Z, backend="ivf", n_probe=2, random_state=s) for s in (0, 0, 1)]
    assert torch.equal(runs[0], runs[1])
    assert not torch.equal(runs[0], runs[2])
    exact = knn_density(Z, backend="torch")
    # nearly every true neighbour is found on clustered rows
    assert (runs[0] - exact).abs().mean() < 5e-3
    assert (runs[0] <= exact + 1e-6).all()  # missed neighbours only lower it


@pytest.mark.parametrize("method", ["knn_mean_cosine", "knn_degree"])
def test_approximate_search_of_every_list_is_exact(method):
    Z = _clusters(1500, seed=1, dim=3)
    # the number of lists grows with n_probe: at 75 it is 75, every list probed
    every = len(Z) // 20
    assert bus._ivf_size(len(Z), every) == every
    exact = knn_density(Z, method=method, backend="torch")
    got = knn_density(Z, method=method, backend="ivf", n_probe=every)
    # float32 sums in other block shapes: equal to about 1e-5, not bit for bit
    torch.testing.assert_close(got, exact, rtol=1e-4, atol=1e-5)
    if method == "knn_mean_cosine":
        reference = _clusters(400, seed=2, dim=3)
        exact = knn_density(Z, reference=reference, backend="torch")
        got = knn_density(Z, reference=reference, backend="ivf", n_probe=every)
        torch.testing.assert_close(got, exact, rtol=1e-4, atol=1e-5)


def test_lists_with_too_few_rows_to_search_are_searched_exactly():
    Z = _clusters(80, seed=3, n_clusters=2)
    assert bus._ivf_size(len(Z), 1) == 4  # about 20 rows per list
    got = knn_density(Z, n_neighbors=50, backend="ivf", n_probe=1)
    exact = knn_density(Z, n_neighbors=50, backend="torch")
    torch.testing.assert_close(got, exact, rtol=1e-5, atol=1e-6)


def test_auto_is_exact_below_the_size_threshold_and_approximate_from_it():
    faiss = bus._faiss_available()
    assert bus.resolve_knn_backend("auto", 99, "cpu", 100) == (
        "faiss" if faiss else "torch"
    )
    assert bus.resolve_knn_backend("auto", 99, "meta", 100) == "torch"
    assert bus.resolve_knn_backend("auto", 100, "cpu", 100) == "ivf"
    assert bus.resolve_knn_backend("auto", 100, "meta", 100) == "ivf"
    Z = _clusters(500)
    small = knn_density(Z, backend="auto", approximate_from=501)
    assert torch.equal(small, knn_density(Z, backend="faiss" if faiss else "torch"))
    large = knn_density(Z, backend="auto", approximate_from=500, random_state=0)
    assert torch.equal(large, knn_density(Z, backend="ivf", random_state=0))


def test_faiss_without_faiss_says_how_to_install_it(Z, monkeypatch):
    monkeypatch.setitem(sys.modules, "faiss", None)
    with pytest.raises(ImportError, match=r"sklearn-boostmis\[faiss\]"):
        knn_density(torch.as_tensor(Z), backend="faiss")
    assert bus.resolve_knn_backend("auto", 10, "cpu", 100) == "torch"
    # the approximate search needs no faiss
    assert knn_density(torch.as_tensor(Z), backend="ivf").shape == (len(Z),)


def test_faiss_needs_the_cpu():
    pytest.importorskip("faiss")
    with pytest.raises(ValueError, match="CPU"):
        bus.resolve_knn_backend("faiss", 10, "meta", 100)
