"""Labeled and unlabeled batches for one training step (losses on the method
page, :ref:`method-losses`).

An epoch is one pass over the unlabeled rows in batches of ``mu * B``, each
drawn with a labeled batch of ``B`` rows from a stream of reshuffled passes over
the labeled rows (with no unlabeled rows, one pass over the labeled rows). By
default the arrays are moved to the model's device once, so a step only indexes
device tensors: no per-sample collation and no host-to-device copy per batch.
With ``data_on_device=False`` they stay in host memory and each batch is copied
(:meth:`SemiSupervisedDataset.take`).
"""

import torch
from torch.utils.data import Dataset


def fits_on_device(nbytes, device, fraction=0.5):
    """Whether arrays of ``nbytes`` bytes should be kept on ``device``.

    The rule behind ``data_on_device="auto"``: always on the CPU; on a CUDA
    device when the arrays take less than ``fraction`` of its free memory
    (:func:`torch.cuda.mem_get_info`), leaving the rest to the network.
    """
    device = torch.device(device)
    if device.type != "cuda":
        return True
    free, _ = torch.cuda.mem_get_info(device)
    return nbytes < fraction * free


class SemiSupervisedDataset(Dataset):
    """Labeled rows, their encoded labels (0..C-1) and unlabeled rows.

    Parameters
    ----------
    X_labeled : array-like of shape (n_labeled, ...)
    y_labeled : array-like of shape (n_labeled,)
        Encoded labels 0..C-1; never -1.
    X_unlabeled : array-like of shape (n_unlabeled, ...)
    device : str or torch.device, default="cpu"
        The compute device: batches, indices and the training state live there.
    data_on_device : bool, default=True
        Store the arrays on ``device`` (moved once). False keeps them in host
        memory and copies each batch to ``device``.
    w_labeled : array-like of shape (n_labeled,), default=None
        Sample weights of the labeled rows in the supervised loss; None weighs
        every row 1. When given, a training step holds a fifth element, the
        weights of its labeled rows.
    """

    def __init__(
        self,
        X_labeled,
        y_labeled,
        X_unlabeled,
        device="cpu",
        data_on_device=True,
        w_labeled=None,
    ):
        self.device = torch.device(device)
        self.data_on_device = bool(data_on_device)
        store = self.device if self.data_on_device else torch.device("cpu")

        def stored(array, dtype=torch.float32):
            return torch.as_tensor(array, dtype=dtype, device=store)

        self.X_labeled = stored(X_labeled)
        self.y_labeled = stored(y_labeled, torch.long)
        self.X_unlabeled = stored(X_unlabeled)
        if len(self.X_labeled) == 0:
            raise ValueError("SemiSupervisedDataset needs at least one labeled row")
        if len(self.X_labeled) != len(self.y_labeled):
            raise ValueError("X_labeled and y_labeled have different lengths")
        if self.y_labeled.min() < 0:
            raise ValueError("encoded labels must be >= 0; -1 marks unlabeled rows")
        self.w_labeled = None if w_labeled is None else stored(w_labeled)
        if self.w_labeled is not None and self.w_labeled.shape != self.y_labeled.shape:
            raise ValueError("w_labeled and y_labeled have different lengths")

    @property
    def n_labeled(self):
        return len(self.X_labeled)

    @property
    def n_unlabeled(self):
        return len(self.X_unlabeled)

    def __len__(self):
        return self.n_unlabeled or self.n_labeled

    def take(self, idx, *arrays):
        """``array[idx]`` on the compute device for each array; host-stored rows
        go through pinned memory on a GPU, so the copy does not block the host."""
        # not `rows.device == self.device`: "cuda" != "cuda:0" in torch
        if self.data_on_device:
            return tuple(rows[idx] for rows in arrays)
        idx = idx.to("cpu")  # once for all arrays
        return tuple(self._gather_to_device(rows, idx) for rows in arrays)

    def _gather_to_device(self, rows, idx):
        if self.device.type == "cuda":
            batch = torch.empty(
                (len(idx), *rows.shape[1:]), dtype=rows.dtype, pin_memory=True
            )
            torch.index_select(rows, 0, idx, out=batch)
        else:
            batch = rows[idx]
        return batch.to(self.device, non_blocking=True)

    def __getitem__(self, i):  # only for tools that inspect a Dataset
        if self.n_unlabeled:
            return self.X_unlabeled[i], torch.tensor(-1)
        return self.X_labeled[i], self.y_labeled[i]


def _chunks(n, size, min_size=2):
    """Boundaries of batches of ``size`` over ``n`` rows; a last batch smaller than
    ``min_size`` is merged into the one before it (BatchNorm cannot train on one
    row, and each of ``min_size // 2`` processes needs two)."""
    bounds = [(s, min(s + size, n)) for s in range(0, n, size)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] < min_size:
        bounds[-2] = (bounds[-2][0], n)
        bounds.pop()
    return bounds


class SemiSupervisedBatches:
    """Iterable of training steps ``(x_labeled, y_labeled, x_unlabeled, idx)``.

    ``x_unlabeled`` and ``idx`` are None when there are no unlabeled rows. A
    dataset with sample weights (``w_labeled``) adds a fifth element, the
    weights of the step's labeled rows. All randomness comes from ``generator``.

    With ``num_shards`` processes (data-parallel training; see the user guide),
    every process draws the same permutations from an identically seeded
    ``generator`` and process ``shard_index`` takes every ``num_shards``-th row
    of a step of ``num_shards * mu * B`` unlabeled and ``num_shards * B``
    labeled rows (``batch_size`` is per process).
    """

    def __init__(self, dataset, batch_size, mu, generator, num_shards=1, shard_index=0):
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.mu = int(mu)
        self.generator = generator
        self.num_shards = int(num_shards)
        self.shard_index = int(shard_index)
        if not 0 <= self.shard_index < self.num_shards:
            raise ValueError(
                f"shard_index must be in [0, {self.num_shards}), got {shard_index}"
            )
        rows = dataset.n_unlabeled or dataset.n_labeled
        if rows < self.num_shards:
            raise ValueError(
                f"{self.num_shards} processes need at least as many "
                f"{'unlabeled' if dataset.n_unlabeled else 'labeled'} rows; got {rows}"
            )
        self._labeled_order = torch.empty(0, dtype=torch.long, device=dataset.device)
        self._cursor = 0

    def _steps(self, n, per_process):
        """Global step boundaries over ``n`` rows, ``per_process`` rows each."""
        shards = self.num_shards
        return _chunks(n, shards * per_process, min_size=2 * shards)

    def _shard(self, positions):
        """This process's share of a global step's positions."""
        if self.num_shards == 1:
            return positions
        return positions[self.shard_index :: self.num_shards]

    def __len__(self):
        ds = self.dataset
        if ds.n_unlabeled:
            return len(self._steps(ds.n_unlabeled, self.mu * self.batch_size))
        return len(self._steps(ds.n_labeled, self._labeled_only_size))

    @property
    def _labeled_only_size(self):
        # With no unlabeled rows to join them, batches of one row would fail in
        # BatchNorm: B = 1 trains on pairs.
        return max(self.batch_size, 2)

    def _permutation(self, n):
        return torch.randperm(n, generator=self.generator, device=self.dataset.device)

    def _next_labeled(self, size):
        """``size`` labeled positions from successive reshuffled passes."""
        parts = []
        while size > 0:
            if self._cursor >= len(self._labeled_order):
                self._labeled_order = self._permutation(self.dataset.n_labeled)
                self._cursor = 0
            take = self._labeled_order[self._cursor : self._cursor + size]
            self._cursor += len(take)
            size -= len(take)
            parts.append(take)
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def __iter__(self):
        ds = self.dataset
        if not ds.n_unlabeled:
            order = self._permutation(ds.n_labeled)
            for start, stop in self._steps(ds.n_labeled, self._labeled_only_size):
                labeled = self._labeled(self._shard(order[start:stop]))
                yield *labeled[:2], None, None, *labeled[2:]
            return
        order = self._permutation(ds.n_unlabeled)
        for start, stop in self._steps(ds.n_unlabeled, self.mu * self.batch_size):
            idx_u = self._shard(order[start:stop])
            idx_l = self._shard(self._next_labeled(self.num_shards * self.batch_size))
            labeled = self._labeled(idx_l)
            (x_unl,) = ds.take(idx_u, ds.X_unlabeled)
            yield *labeled[:2], x_unl, idx_u, *labeled[2:]

    def _labeled(self, idx):
        """Rows, labels and (with sample weights) weights of labeled positions,
        gathered in one call; a step holds the weights last."""
        ds = self.dataset
        weights = [] if ds.w_labeled is None else [ds.w_labeled]
        return ds.take(idx, ds.X_labeled, ds.y_labeled, *weights)
