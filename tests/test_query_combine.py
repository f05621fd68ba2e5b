import numpy as np
import pytest
import torch

from sklearn_boostmis.query import attribute, interleave_rankings, union_candidates


def test_union_by_hand():
    a = torch.tensor([5, 3, 8, 1])
    b = torch.tensor([3, 7, 5, 2])
    assert union_candidates(a, b, 3).tolist() == [5, 3, 8, 7]
    assert union_candidates(a, b, 1).tolist() == [5, 3]
    assert union_candidates(a, a, 3).tolist() == [5, 3, 8]
    got = union_candidates([0, 1], [2, 3], 2)
    assert got.tolist() == [0, 1, 2, 3] and got.dtype == torch.long


def test_interleave_by_hand():
    a = torch.tensor([5, 3, 8, 1])
    b = torch.tensor([3, 7, 5, 2])
    # a0 b0 a1(dup) b1 a2 b2(dup) a3 b3 -> 5 3 7 8 1 2
    assert interleave_rankings(a, b, 6).tolist() == [5, 3, 7, 8, 1, 2]
    assert interleave_rankings(a, b, 3).tolist() == [5, 3, 7]
    assert interleave_rankings(a, b, 0).tolist() == []


def test_interleave_uneven_lengths():
    # after b runs out, the rest of a follows
    assert interleave_rankings([1, 2, 3, 4], [9], 4).tolist() == [1, 9, 2, 3]
    assert interleave_rankings([1], [9, 1, 8], 3).tolist() == [1, 9, 8]


def test_interleave_too_short_raises():
    with pytest.raises(ValueError, match="distinct"):
        interleave_rankings([1, 2], [2, 1], 3)


def test_an_empty_list_is_an_empty_ranking():
    assert union_candidates([], [1, 2], 3).tolist() == [1, 2]
    assert interleave_rankings([], [1], 1).tolist() == [1]


def test_invalid_rankings():
    with pytest.raises(ValueError):
        union_candidates(torch.tensor([0.5]), [1], 1)
    with pytest.raises(ValueError):
        interleave_rankings([1], [2], -1)


def test_attribute_names_the_selector_of_each_row():
    from_aus = np.array([True, False, True, False])
    from_bus = np.array([False, True, True, False])
    assert attribute(from_aus, from_bus).tolist() == ["aus", "bus", "both", "none"]
    assert attribute([], []).tolist() == []
