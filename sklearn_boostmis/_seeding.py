"""Seeding torch for one block without touching any other random stream."""

import contextlib
import os
import threading

import torch


def cuda_indices(device):
    """The CUDA device ``device`` names, as a list of indices (empty for others)."""
    device = torch.device(device)
    if device.type != "cuda":
        return []
    return [device.index if device.index is not None else torch.cuda.current_device()]


# torch's default generators are process-wide: two seeded blocks running in
# threads at once (joblib's threading backend, a dask worker with several
# threads) would reseed and restore each other's stream.
_SEEDED_BLOCK = threading.RLock()


def _new_lock_in_child():
    # a process forked while another thread held the lock would wait forever
    global _SEEDED_BLOCK
    _SEEDED_BLOCK = threading.RLock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_lock_in_child)


@contextlib.contextmanager
def torch_seeded(seed, device="cpu"):
    """Seed the CPU generator and ``device``'s for the block, then restore both.

    ``torch.manual_seed`` also reseeds every CUDA device while
    ``torch.random.fork_rng`` restores only the devices it is given: seeding
    just the forked generators leaves every other stream as it was. Blocks in
    different threads of one process run one at a time, so that each draws
    the stream its seed gives.
    """
    cuda = cuda_indices(device)
    with _SEEDED_BLOCK, torch.random.fork_rng(devices=cuda):
        torch.default_generator.manual_seed(seed)
        for index in cuda:
            with torch.cuda.device(index):
                torch.cuda.manual_seed(seed)
        yield
