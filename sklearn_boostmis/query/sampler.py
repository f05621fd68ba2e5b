"""The BoostMIS query strategy: AUS + BUS over the EMA teacher (method page,
:ref:`method-combining`), a thin layer over the functions of
:mod:`~sklearn_boostmis.query` for modAL and
:class:`~sklearn_boostmis.AnnotationLoop`."""

from contextlib import contextmanager
from numbers import Integral, Real
from typing import NamedTuple

import numpy as np
import torch
from sklearn import config_context, get_config
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError
from sklearn.model_selection._search import BaseSearchCV
from sklearn.pipeline import Pipeline
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from .._threads import torch_threads
from ._dask import is_dask_array, teacher_outputs_by_partition
from .aus import aus_ranking
from .bus import APPROXIMATE_FROM, bus_ranking, knn_density, resolve_knn_backend
from .combine import (
    attribute,
    interleave_rankings,
    low_confidence_candidates,
    union_candidates,
)

__all__ = ["InformativeQuerySampler", "QueryUnion", "unwrap_classifier"]


def unwrap_classifier(classifier, X):
    """Find the fitted classifier to query and the input it expects.

    Parameters
    ----------
    classifier : estimator
        A fitted :class:`~sklearn_boostmis.BoostMISClassifier` (or any object
        with its ``teacher_outputs``, ``teacher_`` and ``settled_threshold_``),
        or wrappers of one, unwrapped repeatedly: a Pipeline (its other steps
        transform ``X``), a search fitted with ``refit=True``, a fitted
        meta-estimator such as AnnotationLoop (its ``estimator_``) or a modAL
        learner.
    X : array-like of shape (n_samples, n_features) or images
        The pool, in the representation the outer object receives; images
        ``(n_samples, [channels,] height, width)`` for an image classifier.

    Returns
    -------
    classifier : estimator
        The object that has ``teacher_outputs``.
    X : array-like
        The pool as that object receives it (transformed by the steps of the
        pipelines on the way; ``teacher_outputs`` validates it).

    Raises
    ------
    NotFittedError
        If a pipeline step, a search or a wrapper is not fitted.
    TypeError
        If a search was fitted with ``refit=False`` (it holds no fitted
        estimator), or the innermost estimator has no ``teacher_outputs``.
    """
    clf = classifier
    for _ in range(32):  # wrappers never nest deeper in practice
        if hasattr(clf, "teacher_outputs"):
            return clf, X
        if isinstance(clf, Pipeline):
            if len(clf.steps) > 1:
                X = clf[:-1].transform(X)
            clf = clf.steps[-1][1]
        elif hasattr(clf, "best_estimator_"):
            clf = clf.best_estimator_
        elif isinstance(clf, BaseSearchCV):
            # its `estimator` is the unfitted template: never query with it
            _no_refit_error(clf)
        elif hasattr(clf, "estimator_"):
            clf = clf.estimator_
        elif hasattr(clf, "estimator"):
            # a modAL learner fits its `estimator` in place; a meta-estimator
            # such as an unfitted AnnotationLoop holds its unfitted template
            try:
                check_is_fitted(clf.estimator)
            except NotFittedError:
                raise NotFittedError(
                    f"This {type(clf).__name__} instance is not fitted yet: fit "
                    "it before querying with it."
                ) from None
            clf = clf.estimator
        else:
            break
    raise TypeError(
        "InformativeQuerySampler needs a fitted BoostMISClassifier (an "
        "estimator with teacher_outputs, teacher_ and settled_threshold_), "
        "optionally inside a Pipeline, a search or a modAL learner; got "
        f"{type(clf).__name__}."
    )


def _no_refit_error(search):
    name = type(search).__name__
    if not hasattr(search, "cv_results_"):
        raise NotFittedError(
            f"This {name} instance is not fitted yet: fit it (with refit=True) "
            "before querying with it."
        )
    raise TypeError(
        f"This {name} was fitted with refit={search.refit!r} and holds no fitted "
        "best_estimator_ to query with: fit it with refit=True, or pass a "
        "classifier fitted with its best_params_."
    )


class QueryUnion(NamedTuple):
    """Result of :meth:`~sklearn_boostmis.InformativeQuerySampler.select_union`.

    Attributes
    ----------
    indices : ndarray of int, shape (N_A,)
        Unique positions in the pool: the AUS top-K in order, then the BUS
        top-K entries not already present.
    from_aus, from_bus : ndarray of bool, shape (N_A,)
        Whether each index is in the AUS (resp. BUS) top-K.
    scores : ndarray of float, shape (N_A,) or None
        The score of the selector that supplied each index: the AUS KL score
        when AUS picked it, else the BUS density-weighted entropy (the two
        scales are not comparable).
    """

    indices: np.ndarray
    from_aus: np.ndarray
    from_bus: np.ndarray
    scores: np.ndarray | None = None

    def picked_by(self):
        """``"aus"``, ``"bus"``, ``"both"`` (or ``"none"``) for each index: see
        :func:`~sklearn_boostmis.query.attribute`."""
        return attribute(self.from_aus, self.from_bus)


class InformativeQuerySampler(BaseEstimator):
    """BoostMIS informative query strategy (AUS + BUS), modAL compatible.

    Ranks the "unselected" rows of a pool (max p below the threshold, or all
    rows when fewer remain) by the EMA teacher of a fitted
    :class:`~sklearn_boostmis.BoostMISClassifier` with AUS and BUS. The user
    guide, :ref:`user-guide-query`, explains its use (de-duplicate the pool
    first) and :ref:`user-guide-dask` a pool given as a dask array.

    Parameters
    ----------
    xi : float, default=10.0
        AUS finite-difference step (absolute feature units).
    eps : float, default=1.0
        AUS perturbation norm (absolute feature units).
    n_power : int, default=1
        AUS power iterations.
    symmetric : bool, default=False
        AUS score ``max(KL(+r_adv), KL(-r_adv))``.
    n_neighbors : int, default=10
        k of the BUS kNN density.
    density : {"knn_mean_cosine", "knn_degree", "settles"}, default="knn_mean_cosine"
        BUS density (see :func:`~sklearn_boostmis.query.knn_density`) of
        ``Z = teacher.embed(X)`` (or ``X``) among the whole pool.
    beta_d : float, default=1.0
        Density exponent of BUS.
    knn_backend : {"auto", "torch", "faiss", "ivf"}, default="auto"
        Search engine of the BUS kNN density, as ``backend`` of
        :func:`~sklearn_boostmis.query.knn_density` (``"ivf"`` seeded by
        ``random_state``). The engine that ran is ``knn_backend_``.
    approximate_from : int, default=50_000
        Pool size from which ``knn_backend="auto"`` searches approximately.
    n_probe : int, default=8
        Inverted lists searched for each list by the approximate search
        (``"ivf"``), as ``n_probe`` of
        :func:`~sklearn_boostmis.query.knn_density`: more is slower and finds
        more of the exact neighbours (time grows as ``sqrt(n_probe)``).
        Unused by the exact engines.
    balance : bool, default=True
        Class-balanced BUS quota per predicted class.
    selectors : {"both", "aus", "bus"}, default="both"
        Which selectors rank the pool. ``"both"`` is BoostMIS; the others
        run AUS or BUS alone (ablations).
    candidate_threshold : float or None, default=None
        Rows with ``max p < candidate_threshold`` are candidates. None uses
        the classifier's ``settled_threshold_`` (``alpha + beta`` for the
        adaptive threshold, a ``FixedThreshold``'s value; kept by
        :func:`~sklearn_boostmis.save_weights`).
    batch_size : int, default=1024
        Rows per forward (and AUS backward) pass.
    random_state : int, RandomState instance or None, default=None
        Seeds the AUS random start (and the approximate kNN index). An int
        gives identical queries on every call with the same model and pool.

    Attributes
    ----------
    knn_backend_ : {"torch", "faiss", "ivf"} or None
        The kNN engine of the last query's BUS density (``"ivf"``:
        approximate); None when it needed none (``density="settles"``, or
        ``selectors="aus"``). Set by every query.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.preprocessing import scale
    >>> from sklearn_boostmis import BoostMISClassifier
    >>> from sklearn_boostmis.query import InformativeQuerySampler
    >>> X, y = load_iris(return_X_y=True)
    >>> X = scale(X)
    >>> y_partial = np.where(np.arange(150) % 10 == 0, y, -1)
    >>> clf = BoostMISClassifier(max_epochs=5, random_state=0).fit(X, y_partial)
    >>> sampler = InformativeQuerySampler(random_state=0)
    >>> unlabeled = np.flatnonzero(y_partial == -1)
    >>> idx, scores = sampler(clf, X[unlabeled], n_instances=3)
    >>> idx.shape, scores.dtype
    ((3,), dtype('float64'))
    """

    _parameter_constraints: dict = {
        "xi": [Interval(Real, 0, None, closed="neither")],
        "eps": [Interval(Real, 0, None, closed="neither")],
        "n_power": [Interval(Integral, 0, None, closed="left")],
        "symmetric": ["boolean"],
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "density": [StrOptions({"knn_mean_cosine", "knn_degree", "settles"})],
        "beta_d": [Interval(Real, 0, None, closed="left")],
        "knn_backend": [StrOptions({"auto", "torch", "faiss", "ivf"})],
        "approximate_from": [Interval(Integral, 1, None, closed="left")],
        "n_probe": [Interval(Integral, 1, None, closed="left")],
        "balance": ["boolean"],
        "selectors": [StrOptions({"both", "aus", "bus"})],
        "candidate_threshold": [None, Interval(Real, 0, 1, closed="both")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        xi=10.0,
        eps=1.0,
        n_power=1,
        symmetric=False,
        n_neighbors=10,
        density="knn_mean_cosine",
        beta_d=1.0,
        knn_backend="auto",
        approximate_from=APPROXIMATE_FROM,
        n_probe=8,
        balance=True,
        selectors="both",
        candidate_threshold=None,
        batch_size=1024,
        random_state=None,
    ):
        self.xi = xi
        self.eps = eps
        self.n_power = n_power
        self.symmetric = symmetric
        self.n_neighbors = n_neighbors
        self.density = density
        self.beta_d = beta_d
        self.knn_backend = knn_backend
        self.approximate_from = approximate_from
        self.n_probe = n_probe
        self.balance = balance
        self.selectors = selectors
        self.candidate_threshold = candidate_threshold
        self.batch_size = batch_size
        self.random_state = random_state

    # -- public API --------------------------------------------------------
    def rankings(self, classifier, X_pool, quota):
        """Each selector's ranking of ``X_pool`` and its scores, for a caller
        that combines them otherwise than :meth:`__call__` and :meth:`select_union`.

        Parameters
        ----------
        classifier, X_pool : estimator, array-like
            As in :meth:`select_union`.
        quota : int
            K >= 1, the length of each ranking (at most ``len(X_pool)``).

        Returns
        -------
        aus, bus : ndarray of int64
            The AUS (resp. BUS) top-K positions in ``X_pool``, best first;
            empty for a selector that ``selectors`` leaves out. BUS's ranking
            takes the predicted classes in turn (``balance=True``), so its
            scores need not decrease along it.
        aus_scores, bus_scores : ndarray of float64, shape (n_samples,)
            Each selector's score of every row of the pool (0 for a row that
            is not a candidate, and for a selector left out).
        """
        n_pool = _num_rows(X_pool)
        k = min(self._check_count(quota, "quota", n_pool, at_most_pool=False), n_pool)
        with self._validated():
            clf, X = unwrap_classifier(classifier, X_pool)
            return self._rank(clf, X, k)

    def __call__(self, classifier, X_pool, n_instances=1):
        """Pick exactly ``n_instances`` rows of ``X_pool`` (modAL contract).

        With ``selectors="both"``, the two rankings are interleaved ``a0, b0,
        a1, b1, ...``, repeats dropped (method page, :ref:`method-combining`).

        Parameters
        ----------
        classifier : estimator
            A fitted BoostMISClassifier, or a wrapper of one (see
            :func:`~sklearn_boostmis.query.unwrap_classifier`).
        X_pool : array-like of shape (n_samples, n_features), or images
            Unlabeled rows to choose from (at least one).
        n_instances : int, default=1
            Number of rows to pick, from 1 to ``len(X_pool)``: more raises a
            ValueError, as modAL's contract is exactly ``n_instances``.

        Returns
        -------
        indices : ndarray of int64, shape (n_instances,)
            Unique positions in ``X_pool``, in selection order.
        scores : ndarray of float64, shape (n_instances,)
            The raw score of the selector that contributed each index (AUS KL
            or BUS density-weighted entropy; the two scales differ). With
            ``selectors="both"``, an index in both rankings takes the score
            of the one where it ranks higher (AUS on ties).
        """
        n = self._check_count(
            n_instances, "n_instances", _num_rows(X_pool), at_most_pool=True
        )
        with self._validated():
            aus, bus, aus_scores, bus_scores = self.rankings(classifier, X_pool, n)
            idx = interleave_rankings(aus, bus, n).numpy()
        aus_leads = _positions(idx, aus, n) <= _positions(idx, bus, n)
        return idx, np.where(aus_leads, aus_scores[idx], bus_scores[idx])

    def select_union(self, classifier, X_pool, quota):
        """AUS top-K union BUS top-K: one BoostMIS annotation round.

        Parameters
        ----------
        classifier : estimator
            As in :meth:`__call__`.
        X_pool : array-like of shape (n_samples, n_features), or images
            Unlabeled rows (at least one).
        quota : int
            K >= 1, each selector's quota. Unlike :meth:`__call__`, a quota
            larger than the pool does not raise: each selector then takes
            ``min(K, len(X_pool))`` rows, so the union is the whole pool.

        Returns
        -------
        union : QueryUnion
            ``indices`` (size N_A in ``[K', 2K']`` with both selectors, ``K'``
            with one, where ``K' = min(K, len(X_pool))``; never more than
            ``len(X_pool)``) and, per index, whether AUS and/or BUS picked it.
        """
        with self._validated():
            aus, bus, aus_scores, bus_scores = self.rankings(classifier, X_pool, quota)
            idx = union_candidates(aus, bus, quota).numpy()
        from_aus = np.isin(idx, aus)
        return QueryUnion(
            indices=idx,
            from_aus=from_aus,
            from_bus=np.isin(idx, bus),
            scores=np.where(from_aus, aus_scores[idx], bus_scores[idx]),
        )

    # -- the work ------------------------------------------------------------
    @contextmanager
    def _validated(self):
        """Validate the parameters once; the functions inside skip theirs."""
        if not get_config()["skip_parameter_validation"]:
            self._validate_params()
        with config_context(skip_parameter_validation=True):
            yield

    def _rank(self, clf, X, k):
        """:meth:`rankings` of the unwrapped classifier, with ``k <= len(X)``."""
        with torch_threads(getattr(clf, "n_jobs", None)):
            if is_dask_array(X):  # scored partition by partition on dask
                proba, Z = teacher_outputs_by_partition(
                    clf, X, batch_size=self.batch_size
                )
            else:
                proba, Z, X = clf.teacher_outputs(X, batch_size=self.batch_size)
            threshold = self.candidate_threshold
            if threshold is None:
                threshold = clf.settled_threshold_
            candidates = low_confidence_candidates(proba, threshold, k)
            rows = X if Z is None else Z  # modules without embed(): the input
            empty = (np.empty(0, dtype=np.int64), np.zeros(len(proba)))
            self.knn_backend_ = None
            aus, aus_scores = empty
            if self.selectors in ("both", "aus"):
                embedded = Z is not None
                aus, aus_scores = self._aus(clf.teacher_, rows, embedded, candidates, k)
            bus, bus_scores = empty
            if self.selectors in ("both", "bus"):
                bus, bus_scores = self._bus(proba, rows, candidates, k)
        return aus, bus, aus_scores, bus_scores

    def _aus(self, teacher, rows, embedded, candidates, k):
        """AUS top-``k`` candidates (pool positions) and every row's score."""
        seed = check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
        generator = torch.Generator(device=rows.device).manual_seed(int(seed))
        n_pool = len(rows)
        # perturb the scoring pass's representations; no copy if all are candidates
        rows = rows if len(candidates) == n_pool else rows[candidates]
        rank, scores = aus_ranking(
            teacher,
            rows,
            embedded=embedded,
            xi=self.xi,
            eps=self.eps,
            n_power=self.n_power,
            symmetric=self.symmetric,
            batch_size=self.batch_size,
            generator=generator,
        )
        return _on_pool(candidates, rank[:k], scores, n_pool)

    def _bus(self, proba, rows, candidates, k):
        """BUS top-``k`` candidates (pool positions) and every row's score."""
        # the density of a candidate is taken among the whole pool
        if self.density != "settles":
            self.knn_backend_ = resolve_knn_backend(
                self.knn_backend, len(rows), rows.device, self.approximate_from
            )
        seed = None  # drawn for the approximate index only: the stream stays as it was
        if self.knn_backend_ == "ivf":
            seed = check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
        rho = knn_density(
            rows.flatten(start_dim=1),
            n_neighbors=self.n_neighbors,
            method=self.density,
            backend=self.knn_backend,
            approximate_from=self.approximate_from,
            n_probe=self.n_probe,
            random_state=seed,
        )
        rank, scores = bus_ranking(
            proba[candidates],
            rho[candidates],
            k,
            beta_d=self.beta_d,
            balance=self.balance,
        )
        return _on_pool(candidates, rank, scores, len(proba))

    @staticmethod
    def _check_count(n, name, n_pool, *, at_most_pool):
        if isinstance(n, bool) or not isinstance(n, Integral):
            raise TypeError(f"{name} must be an int, got {type(n).__name__}.")
        if n_pool == 0:
            raise ValueError("X_pool is empty (0 rows): there is nothing to query.")
        if n < 1 or (at_most_pool and n > n_pool):
            bounds = f"in [1, len(X_pool)={n_pool}]" if at_most_pool else ">= 1"
            raise ValueError(f"{name} must be {bounds}, got {n}.")
        return int(n)


def _on_pool(candidates, rank, scores, n_pool):
    """A ranking of the candidates as pool positions, and the candidates'
    scores spread over the pool (0 elsewhere), both on the host."""
    candidates = candidates.cpu()
    on_pool = torch.zeros(n_pool, dtype=torch.float64)
    on_pool[candidates] = scores.detach().double().cpu()
    return candidates[rank.cpu()].numpy(), on_pool.numpy()


def _positions(indices, ranking, missing):
    """The place of each index in ``ranking``, ``missing`` where it is absent."""
    place = {int(v): r for r, v in enumerate(ranking.tolist())}
    return np.array([place.get(i, missing) for i in indices.tolist()])


def _num_rows(X):
    return int(X.shape[0]) if hasattr(X, "shape") else len(X)
