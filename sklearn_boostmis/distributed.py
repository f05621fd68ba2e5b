"""Hyper-parameter search across processes and GPUs with dask.

A :class:`~sklearn_boostmis.BoostMISClassifier` fit is one process on one
device, so a search scales by running several fits at once: scikit-learn's
``GridSearchCV``/``RandomizedSearchCV`` dispatch their fits through joblib, and
joblib's ``"dask"`` backend sends them to dask workers. With a fixed
``random_state`` the scores equal those of a local run. Fits in threads of one
worker (``--nthreads`` above 1, ``processes=False``) train one at a time,
because torch's random stream is process-wide: parallelism comes from
processes.

Recipe: one worker per GPU
--------------------------
Give each worker a single GPU through ``CUDA_VISIBLE_DEVICES`` and a single
thread, so that one fit at a time runs on each GPU and ``device="auto"``
(``"cuda"`` = the worker's own GPU) needs no change::

    dask scheduler --port 8786 &
    CUDA_VISIBLE_DEVICES=0 OMP_NUM_THREADS=1 dask worker tcp://HOST:8786 \\
        --nworkers 1 --nthreads 1 --name gpu0 --resources GPU=1 &
    CUDA_VISIBLE_DEVICES=1 OMP_NUM_THREADS=1 dask worker tcp://HOST:8786 \\
        --nworkers 1 --nthreads 1 --name gpu1 --resources GPU=1 &

(:func:`gpu_worker_commands` writes these lines.) Then, in the driver::

    import joblib
    from dask.distributed import Client
    from sklearn.model_selection import GridSearchCV

    client = Client("tcp://HOST:8786")
    search = GridSearchCV(BoostMISClassifier(random_state=0), grid, cv=3)
    with joblib.parallel_backend("dask"):
        search.fit(X, y_partial)

On one machine without GPUs, ``LocalCluster(n_workers=k, threads_per_worker=1,
processes=True)`` does the same with CPU processes. Keep ``n_jobs`` of the
search at its default: the dask backend decides the parallelism.
"""

import shlex
from collections.abc import Iterable

from ._utils import is_int

__all__ = ["gpu_worker_commands"]


def gpu_worker_commands(scheduler_address, gpus):
    """Shell commands that start one single-threaded dask worker per GPU.

    Parameters
    ----------
    scheduler_address : str
        Address of a running ``dask scheduler``, e.g. ``"tcp://10.0.0.1:8786"``.
    gpus : int or sequence of int
        The number of GPUs, >= 1 (ids ``0..gpus-1``), or the distinct GPU ids
        (ints >= 0) to use. A ``CUDA_VISIBLE_DEVICES``-style string such as
        ``"0,1"`` is refused: pass ``[int(g) for g in "0,1".split(",")]``.

    Returns
    -------
    commands : list of str
        One command per GPU; each pins its worker to the GPU with
        ``CUDA_VISIBLE_DEVICES``, one thread and ``OMP_NUM_THREADS=1``, and
        declares the resource ``GPU=1``.

    Raises
    ------
    TypeError
        If ``gpus`` is not an int or a sequence of ints (a bool, a float or a
        string is refused).
    ValueError
        If the number of GPUs is below 1, or an id is negative or repeated.

    Examples
    --------
    >>> commands = gpu_worker_commands("tcp://localhost:8786", 2)
    >>> commands[1].split()[:4]
    ['CUDA_VISIBLE_DEVICES=1', 'OMP_NUM_THREADS=1', 'dask', 'worker']
    """
    ids = _gpu_ids(gpus)
    address = shlex.quote(str(scheduler_address))
    return [
        f"CUDA_VISIBLE_DEVICES={gpu} OMP_NUM_THREADS=1 dask worker {address} "
        f"--nworkers 1 --nthreads 1 --name gpu{gpu} --resources GPU=1"
        for gpu in ids
    ]


def _gpu_ids(gpus):
    """The GPU ids that ``gpus`` (a count or a sequence of ids) names."""
    if is_int(gpus):
        if gpus < 1:
            raise ValueError(f"gpus must be >= 1 when it counts GPUs, got {gpus}.")
        return list(range(int(gpus)))
    if isinstance(gpus, str):
        raise TypeError(
            f"gpus must be an int or a sequence of ints, got the string {gpus!r}; "
            f"pass [int(g) for g in {gpus!r}.split(',')] for a list of GPU ids."
        )
    if isinstance(gpus, bytes) or not isinstance(gpus, Iterable):
        raise TypeError(
            "gpus must be an int >= 1 (the number of GPUs) or a sequence of GPU "
            f"ids (ints >= 0), got {gpus!r}."
        )
    ids = list(gpus)
    wrong = [g for g in ids if not is_int(g)]
    if wrong:
        raise TypeError(f"GPU ids must be ints, got {wrong[0]!r} in gpus={gpus!r}.")
    if not ids or min(ids) < 0 or len(set(ids)) < len(ids):
        raise ValueError(
            f"gpus must hold one or more distinct GPU ids >= 0, got {gpus!r}."
        )
    return [int(g) for g in ids]
