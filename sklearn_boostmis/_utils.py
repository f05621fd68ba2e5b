"""Small helpers shared by several modules: atomic file writes, integer checks,
pickling tensor state, and seeding torch for one block."""

import contextlib
import os
import threading
from numbers import Integral

import torch


def atomic_write(path, data):
    """Write ``data`` (bytes or text) to ``path`` via ``path.tmp`` and os.replace."""
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def is_int(value):
    """Whether ``value`` is an integer: a bool, though Integral, is not one."""
    return isinstance(value, Integral) and not isinstance(value, bool)


class TensorStateMixin:
    """Pickle tensors on the CPU so that a GPU-fitted object loads anywhere."""

    def __getstate__(self):
        state = self.__dict__.copy()
        for key, value in state.items():
            if isinstance(value, torch.Tensor):
                state[key] = value.detach().cpu()
            elif isinstance(value, torch.Generator) and value.device.type != "cpu":
                state[key] = None
        return state


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
    different threads run one at a time (see ``_SEEDED_BLOCK``).
    """
    cuda = cuda_indices(device)
    with _SEEDED_BLOCK, torch.random.fork_rng(devices=cuda):
        torch.default_generator.manual_seed(seed)
        for index in cuda:
            with torch.cuda.device(index):
                torch.cuda.manual_seed(seed)
        yield
