import numpy as np
import pytest
import torch

from sklearn_boostmis.data import SemiSupervisedBatches, SemiSupervisedDataset, _chunks


def make(n_lab=10, n_unl=25, d=3):
    X_l = np.arange(n_lab * d, dtype=np.float32).reshape(n_lab, d)
    y_l = np.arange(n_lab) % 2
    X_u = -np.arange(1, n_unl * d + 1, dtype=np.float32).reshape(n_unl, d)
    return SemiSupervisedDataset(X_l, y_l, X_u)


def test_an_epoch_visits_every_unlabeled_row_once():
    batches = SemiSupervisedBatches(
        make(), batch_size=4, mu=2, generator=torch.Generator()
    )
    seen = []
    for x_l, y_l, x_u, idx in batches:
        assert len(x_l) == len(y_l) == 4
        assert torch.equal(x_u, batches.dataset.X_unlabeled[idx])
        seen.append(idx)
    seen = torch.cat(seen)
    assert sorted(seen.tolist()) == list(range(25))
    assert len(batches) == 3  # 8 + 8 + 9: the single leftover row joins the last


def test_labeled_stream_is_reshuffled_passes():
    ds = make(n_lab=5, n_unl=40)
    batches = SemiSupervisedBatches(ds, batch_size=3, mu=1, generator=torch.Generator())
    rows = torch.cat([x_l[:, 0] for x_l, *_ in batches])  # 14 batches x 3 = 42 rows
    counts = torch.bincount((rows / 3).long(), minlength=5)
    assert counts.max() - counts.min() <= 1  # passes, not i.i.d. draws
    assert (counts > 0).all()


def test_labeled_only_epoch_is_one_pass():
    ds = make(n_lab=9, n_unl=0)
    batches = list(SemiSupervisedBatches(ds, 4, 2, torch.Generator()))
    assert [len(b[0]) for b in batches] == [4, 5]
    assert all(b[2] is None and b[3] is None for b in batches)
    assert len(ds) == 9


def test_labeled_only_batches_of_one_become_pairs():  # BatchNorm needs two rows
    batches = SemiSupervisedBatches(make(n_lab=5, n_unl=0), 1, 2, torch.Generator())
    assert [len(b[0]) for b in batches] == [2, 3] and len(batches) == 2


def test_same_seed_same_order_different_seed_different():
    def order(seed):
        g = torch.Generator().manual_seed(seed)
        return torch.cat([b[3] for b in SemiSupervisedBatches(make(), 4, 2, g)])

    assert torch.equal(order(0), order(0))
    assert not torch.equal(order(0), order(1))


@pytest.mark.parametrize(
    "n, size, expected",
    [
        (10, 4, [(0, 4), (4, 8), (8, 10)]),
        (9, 4, [(0, 4), (4, 9)]),
        (1, 4, [(0, 1)]),
        (8, 4, [(0, 4), (4, 8)]),
    ],
)
def test_chunks_never_leave_a_single_row(n, size, expected):
    assert _chunks(n, size) == expected


def test_dataset_validation():
    with pytest.raises(ValueError, match="at least one labeled"):
        SemiSupervisedDataset(np.zeros((0, 2)), np.zeros(0), np.zeros((3, 2)))
    with pytest.raises(ValueError, match=">= 0"):
        SemiSupervisedDataset(np.zeros((2, 2)), np.array([0, -1]), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="lengths"):
        SemiSupervisedDataset(np.zeros((2, 2)), np.array([0]), np.zeros((3, 2)))


def _shard_epochs(dataset, num_shards, batch_size=4, mu=2, epochs=2):
    """Per shard: the (labeled rows, unlabeled positions) of each step, by epoch."""
    out = []
    for shard in range(num_shards):
        batches = SemiSupervisedBatches(
            dataset,
            batch_size,
            mu,
            torch.Generator().manual_seed(3),
            num_shards=num_shards,
            shard_index=shard,
        )
        out.append([[(b[0][:, 0], b[3]) for b in batches] for _ in range(epochs)])
    return out


@pytest.mark.parametrize("num_shards", [2, 3])
def test_shards_partition_every_epoch_with_equal_step_counts(num_shards):
    ds = make(n_lab=7, n_unl=53)
    shards = _shard_epochs(ds, num_shards)
    for epoch in range(2):
        steps = [len(shard[epoch]) for shard in shards]
        assert len(set(steps)) == 1  # DDP needs the same number of steps
        rows = [torch.cat([idx for _, idx in shard[epoch]]) for shard in shards]
        assert sorted(torch.cat(rows).tolist()) == list(range(53))  # disjoint cover
        for shard in shards:
            assert all(len(lab) == 4 and len(idx) >= 2 for lab, idx in shard[epoch])
    # the global labeled stream is split too: one step's rows differ per shard
    firsts = [shard[0][0][0].tolist() for shard in shards]
    assert len({tuple(f) for f in firsts}) == num_shards


def test_one_shard_is_the_unsharded_iterator():
    ds = make()
    a = _shard_epochs(ds, 1)[0]
    plain = SemiSupervisedBatches(ds, 4, 2, torch.Generator().manual_seed(3))
    b = [[(x[0][:, 0], x[3]) for x in plain] for _ in range(2)]
    for epoch_a, epoch_b in zip(a, b, strict=True):
        for (la, ia), (lb, ib) in zip(epoch_a, epoch_b, strict=True):
            assert torch.equal(la, lb) and torch.equal(ia, ib)


def test_shard_arguments_are_checked():
    with pytest.raises(ValueError, match="shard_index must be in"):
        SemiSupervisedBatches(make(), 4, 2, torch.Generator(), 2, 2)
    with pytest.raises(ValueError, match="4 processes need at least as many unlabeled"):
        SemiSupervisedBatches(make(n_unl=3), 4, 2, torch.Generator(), 4, 0)


def test_data_on_device_takes_rows_without_a_copy(monkeypatch):
    # "cpu:0" stands for "cuda": the stored tensors report "cpu" / "cuda:0",
    # which torch does not count as equal to the device the dataset was given
    ds = SemiSupervisedDataset(
        np.ones((4, 2)), np.array([0, 1, 0, 1]), np.zeros((6, 2)), device="cpu:0"
    )
    assert ds.X_labeled.device != ds.device
    moves = []
    real_to = torch.Tensor.to

    def counting_to(self, *args, **kwargs):
        moves.append(args)
        return real_to(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "to", counting_to)
    x, y = ds.take(torch.tensor([2, 0]), ds.X_labeled, ds.y_labeled)
    assert moves == []
    assert torch.equal(x, ds.X_labeled[[2, 0]]) and y.tolist() == [0, 0]


def test_host_data_moves_the_index_once(monkeypatch):
    ds = SemiSupervisedDataset(
        np.ones((4, 2)), np.array([0, 1, 0, 1]), np.zeros((6, 2)), data_on_device=False
    )
    idx = torch.tensor([3, 1])
    index_moves = []
    real_to = torch.Tensor.to

    def counting_to(self, *args, **kwargs):
        if self is idx:
            index_moves.append(args)
        return real_to(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "to", counting_to)
    x, y = ds.take(idx, ds.X_labeled, ds.y_labeled)
    assert x.shape == (2, 2) and y.tolist() == [1, 1]
    assert len(index_moves) == 1
