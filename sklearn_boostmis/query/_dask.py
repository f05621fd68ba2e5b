"""Scoring a dask pool partition by partition (user guide,
:ref:`user-guide-dask`): only the teacher's outputs come back to be ranked."""

import torch


def is_dask_array(X):
    """Whether ``X`` is a dask array (checked without importing dask)."""
    return type(X).__module__.startswith("dask.array") and hasattr(X, "to_delayed")


def teacher_outputs_by_partition(classifier, X, *, batch_size=1024):
    """``classifier.teacher_outputs`` of a dask array, one task per partition.

    Each partition is scored where dask runs it (the workers of the current
    ``distributed.Client``, if any); the outputs are concatenated in row order.

    Parameters
    ----------
    classifier : estimator
        Has the ``teacher_outputs`` of a fitted
        :class:`~sklearn_boostmis.BoostMISClassifier`; its teacher must have the
        ``embed``/``head`` split of the module protocol.
    X : dask.array.Array of shape (n_samples, ...)
        The pool, chunked along its first axis only.
    batch_size : int, default=1024
        Rows per forward pass on a worker.

    Returns
    -------
    proba : torch.Tensor of shape (n_samples, n_classes)
    embedding : torch.Tensor of shape (n_samples, ...)
        As ``teacher_outputs`` returns them, on the CPU.

    Raises
    ------
    ValueError
        If ``X`` is chunked along another axis than the first, or the module
        has no ``embed``/``head`` (its input would have to come back whole).
    """
    import dask

    if any(n > 1 for n in X.numblocks[1:]):
        raise ValueError(
            "A dask pool must be chunked along rows only, got chunks "
            f"{X.chunks}: rechunk it, e.g. X.rechunk({{1: -1}})."
        )
    model = dask.delayed(classifier, pure=True, traverse=False)
    parts = [
        dask.delayed(_partition_outputs, pure=True)(model, block, batch_size)
        for block in X.to_delayed().ravel()
    ]
    probas, embeddings = zip(*dask.compute(*parts), strict=True)
    return torch.cat(probas), torch.cat(embeddings)


def _partition_outputs(classifier, block, batch_size):
    proba, embedding, _ = classifier.teacher_outputs(block, batch_size=batch_size)
    if embedding is None:
        raise ValueError(
            f"{type(classifier.teacher_).__name__} has no embed()/head(): a dask "
            "pool needs a module with the embed/head split, whose "
            "representations come back instead of the input."
        )
    return proba.cpu(), embedding.cpu()
