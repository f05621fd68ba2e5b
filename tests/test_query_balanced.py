import pytest
import torch

from sklearn_boostmis.query import balanced_top_k


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


def test_ties_break_by_lower_index():
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
