"""How many CPU threads torch uses while the estimator computes.

torch's default, one intra-op thread per core, trains a small model many times
slower when other jobs share the cores (``benchmarks/threads.py``); the
estimators set the count for a call and restore the caller's afterwards.
"""

import contextlib

import torch
from joblib import effective_n_jobs


def n_threads(n_jobs):
    """Threads for ``n_jobs``, with joblib's convention: None means 1 (or the
    ``n_jobs`` of an enclosing :func:`joblib.parallel_config`), -1 all cores."""
    return max(1, int(effective_n_jobs(n_jobs)))


@contextlib.contextmanager
def torch_threads(n_jobs):
    """Run the block with ``n_threads(n_jobs)`` torch intra-op threads, then
    restore the count the calling thread had.

    With torch's OpenMP backend (the Linux and Windows builds) the count is a
    setting of the calling thread, so blocks in other threads do not see it.
    """
    wanted = n_threads(n_jobs)
    caller = torch.get_num_threads()
    if caller != wanted:
        torch.set_num_threads(wanted)
    try:
        yield wanted
    finally:
        if torch.get_num_threads() != caller:
            torch.set_num_threads(caller)
