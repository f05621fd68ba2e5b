import torch

from sklearn_boostmis.memory import PseudoLabelMemory


def test_since_tracks_continuous_passing_with_same_label():
    memory = PseudoLabelMemory(3)
    idx = torch.tensor([0, 1, 2])
    memory.update(idx, torch.tensor([1, 0, 2]), torch.tensor([True, True, False]), 1)
    memory.update(idx, torch.tensor([1, 2, 2]), torch.tensor([True, True, True]), 2)
    labels, since = memory.transduction()
    assert labels.tolist() == [1, 2, 2]
    assert since.tolist() == [1, 2, 2]  # row 1 changed label: its streak restarts
    memory.update(torch.tensor([0]), torch.tensor([1]), torch.tensor([False]), 3)
    labels, since = memory.transduction()
    assert labels.tolist() == [-1, 2, 2]
    assert since.tolist() == [-1, 2, 2]


def test_unvisited_rows_are_unlabeled():
    labels, since = PseudoLabelMemory(2).transduction()
    assert labels.tolist() == [-1, -1] and since.tolist() == [-1, -1]
