"""The BoostMIS query strategy: AUS + BUS over the EMA teacher.

Implements AUS, BUS and their combination (method page, :ref:`method-aus`,
:ref:`method-bus` and :ref:`method-combining`). The public
functions below do the work (scikit-activeml style); the sampler class is a
thin, parameterised layer that modAL and :class:`~sklearn_boostmis.AnnotationLoop`
call.
"""

from numbers import Integral, Real
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError
from sklearn.model_selection._search import BaseSearchCV
from sklearn.pipeline import Pipeline
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_array, check_is_fitted

from .._threads import torch_threads
from ..modules import eval_mode, supports_embedding
from .adversarial import adversarial_instability
from .balanced import balanced_top_k
from .combine import attribute, interleave_rankings, union_candidates
from .density import knn_density
from .uncertainty import density_weighted_entropy

__all__ = [
    "InformativeQuerySampler",
    "QueryUnion",
    "aus_ranking",
    "bus_ranking",
    "low_confidence_candidates",
    "teacher_outputs",
    "unwrap_classifier",
]

_SELECTORS = ("both", "aus", "bus")


def unwrap_classifier(classifier, X):
    """Find the fitted BoostMIS classifier and the input it expects.

    Unwraps, repeatedly, a fitted hyper-parameter search such as
    :class:`~sklearn.model_selection.GridSearchCV` (its ``best_estimator_``), a
    fitted :class:`~sklearn_boostmis.AnnotationLoop` (its ``estimator_``), a
    modAL learner (its ``.estimator``, when the object has no ``net_`` itself)
    and a scikit-learn :class:`~sklearn.pipeline.Pipeline` (``X`` is transformed
    by all steps but the last, the last step is used).

    Parameters
    ----------
    classifier : estimator
        A fitted :class:`~sklearn_boostmis.BoostMISClassifier` (or any object
        with a fitted skorch engine ``net_`` holding an ``ema_module_``), a
        Pipeline ending in one, a search fitted with ``refit=True`` over either,
        a fitted AnnotationLoop, or a modAL learner wrapping any of these.
    X : array-like of shape (n_samples, n_features) or images
        The pool, in the representation the outer object receives; images
        ``(n_samples, [channels,] height, width)`` for an image classifier.

    Returns
    -------
    classifier : estimator
        The object that owns ``net_``.
    X : ndarray, float32
        The pool as the classifier's network receives it: ``(n_samples,
        n_features_in_)``, or images ``(n_samples, channels, height, width)``.

    Raises
    ------
    NotFittedError
        If the BoostMIS classifier, a pipeline step or a search is not fitted.
    TypeError
        If a search was fitted with ``refit=False`` (it holds no fitted
        estimator), or the innermost estimator has no skorch engine ``net_``
        with an EMA teacher ``ema_module_``.
    """
    from ..classifier import BoostMISClassifier
    from ..loop import AnnotationLoop

    clf = classifier
    for _ in range(32):  # wrappers never nest deeper in practice
        if isinstance(clf, Pipeline):
            if len(clf.steps) > 1:
                X = clf[:-1].transform(X)
            clf = clf.steps[-1][1]
        elif hasattr(clf, "best_estimator_"):
            clf = clf.best_estimator_
        elif isinstance(clf, BaseSearchCV):
            # its `estimator` is the unfitted template: never query with it
            _no_refit_error(clf)
        elif isinstance(clf, AnnotationLoop):
            check_is_fitted(clf, "estimator_")  # not its unfitted template
            clf = clf.estimator_
        elif not hasattr(clf, "net_") and hasattr(clf, "estimator"):
            clf = clf.estimator
        else:
            break
    if isinstance(clf, BoostMISClassifier):
        check_is_fitted(clf, "net_")
        X = clf._validate_input(X, reset=False)  # images (N, [C,] H, W) too
    elif not hasattr(getattr(clf, "net_", None), "ema_module_"):
        raise TypeError(
            "InformativeQuerySampler needs a fitted BoostMISClassifier (an "
            "estimator whose skorch engine `net_` has an EMA teacher "
            "`ema_module_`), optionally inside a Pipeline, a search or a modAL "
            f"learner; got {type(clf).__name__}."
        )
    else:
        X = check_array(X, dtype=np.float32, allow_nd=True)
    return clf, X


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


def teacher_outputs(module, X, *, batch_size=1024, device="cpu"):
    """Class probabilities and representations of the (EMA teacher) module.

    Runs ``module`` in eval mode without gradient, batch by batch, and
    restores every submodule's previous train/eval mode afterwards.

    Parameters
    ----------
    module : torch.nn.Module
        The network, normally ``net_.ema_module_``.
    X : array-like or torch.Tensor of shape (n_samples, ...)
    batch_size : int, default=1024
    device : str or torch.device, default="cpu"

    Returns
    -------
    proba : torch.Tensor of shape (n_samples, n_classes)
        ``softmax(module(X))``.
    Z : torch.Tensor of shape (n_samples, n_features_z)
        ``module.embed(X)`` when the module exposes ``embed``/``head``
        (the module protocol, method page, :ref:`method-module-protocol`),
        else ``X`` itself (flattened per row).
    X : torch.Tensor
        ``X`` on ``device`` (reused by AUS).
    """
    proba, Z, X = _teacher_outputs(module, X, batch_size=batch_size, device=device)
    return proba, Z.flatten(start_dim=1), X


def _teacher_outputs(module, X, *, batch_size=1024, device="cpu"):
    """:func:`teacher_outputs` with ``Z`` as ``embed`` returns it (not flattened)."""
    X = torch.as_tensor(np.asarray(X) if not torch.is_tensor(X) else X)
    X = X.to(device=device, dtype=torch.float32)
    embedding = supports_embedding(module)
    probas, zs = [], []
    with eval_mode(module), torch.no_grad():
        for start in range(0, X.shape[0], int(batch_size)):
            x = X[start : start + int(batch_size)]
            if embedding:
                z = module.embed(x)
                logits = module.head(z)
                if start == 0:  # on two rows: the pool is embedded once
                    _check_split(module, x[:2], logits[:2])
            else:
                z, logits = x, module(x)
            probas.append(F.softmax(logits, dim=1))
            zs.append(z)
    if not probas:
        raise ValueError("X_pool is empty.")
    return torch.cat(probas), torch.cat(zs), X


def _check_split(module, x, logits):
    """Refuse ``embed``/``head`` attributes that do not split ``forward``."""
    full = module(x)
    if full.shape != logits.shape or not torch.allclose(
        full, logits, rtol=1e-4, atol=1e-4
    ):
        raise ValueError(
            f"{type(module).__name__}.head(embed(x)) differs from its forward(x): "
            "the queries read embed/head as the two halves of forward (the "
            "module protocol), and these do not compose to it (layers named "
            "embed and head?). Make forward(x) == head(embed(x)), or rename "
            "them so that the queries work on the inputs."
        )


def _settled_threshold(clf):
    """The confidence the classifier's pseudo-labels settled at."""
    policy = getattr(clf.net_, "threshold_", None)  # the fitted policy
    if policy is not None:
        return policy.settled_threshold()
    # not trained in this process (load_weights): the parameters say it
    return float(getattr(clf, "alpha", 0.9)) + float(getattr(clf, "beta", 0.05))


def low_confidence_candidates(proba, threshold, n_needed):
    """Positions of the "unselected" rows: ``max p < threshold``.

    Implements the candidate pool (method page, :ref:`method-combining`):
    the unlabeled rows whose confidence stayed below the threshold; if fewer
    than ``n_needed`` rows qualify, every row is a candidate.

    Parameters
    ----------
    proba : torch.Tensor of shape (n_samples, n_classes)
    threshold : float
    n_needed : int

    Returns
    -------
    positions : torch.LongTensor
        Increasing positions into ``proba``.

    Examples
    --------
    >>> import torch
    >>> proba = torch.tensor([[0.99, 0.01], [0.6, 0.4], [0.5, 0.5]])
    >>> low_confidence_candidates(proba, 0.95, 2).tolist()
    [1, 2]
    >>> low_confidence_candidates(proba, 0.95, 3).tolist()
    [0, 1, 2]
    """
    proba = torch.as_tensor(proba)
    low = proba.max(dim=1).values < float(threshold)
    positions = low.nonzero().flatten()
    if positions.numel() < int(n_needed):
        positions = torch.arange(proba.shape[0], device=proba.device)
    return positions


def _descending(scores):
    return torch.argsort(scores, descending=True, stable=True)


def aus_ranking(module, X, **kwargs):
    """Rows of ``X`` ranked by adversarial instability (AUS), best first.

    Parameters
    ----------
    module : torch.nn.Module
        The EMA teacher.
    X : torch.Tensor of shape (n_samples, ...)
        Candidates (or their representations, with ``embedded=True``), on
        the module's device.
    **kwargs
        ``xi``, ``eps``, ``n_power``, ``symmetric``, ``batch_size``,
        ``generator``, ``embedded``: see
        :func:`~sklearn_boostmis.query.adversarial_instability`.

    Returns
    -------
    ranking : torch.LongTensor of shape (n_samples,)
        Positions into ``X``; ties go to the lower position.
    scores : torch.Tensor of shape (n_samples,)
        The AUS score of every row (in row order, not ranking order).
    """
    scores = adversarial_instability(module, X, **kwargs)
    return _descending(scores), scores


def bus_ranking(proba, density, k, *, beta_d=1.0, balance=True):
    """Top-``k`` rows by density-aware entropy (BUS), best first.

    Parameters
    ----------
    proba : torch.Tensor of shape (n_samples, n_classes)
        Candidates' class probabilities.
    density : torch.Tensor of shape (n_samples,)
        Candidates' density ``rho``.
    k : int
        Number of rows to rank.
    beta_d : float, default=1.0
        Density exponent.
    balance : bool, default=True
        Class-balanced quota per predicted class
        (:func:`~sklearn_boostmis.query.balanced_top_k`); False ranks by score
        alone.

    Returns
    -------
    ranking : torch.LongTensor of shape (min(k, n_samples),)
    scores : torch.Tensor of shape (n_samples,)
        ``s(u) = H(u) rho(u)^beta_d`` of every row (row order).
    """
    proba = torch.as_tensor(proba)
    scores = density_weighted_entropy(proba, density, beta=beta_d)
    if balance:
        ranking = balanced_top_k(scores, proba.argmax(dim=1), k, proba.shape[1])
    else:
        ranking = _descending(scores)[: int(k)]
    return ranking, scores


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

    Scores a pool of unlabeled rows with the EMA teacher of a fitted
    :class:`~sklearn_boostmis.BoostMISClassifier` (eval mode, no gradient
    left in the model) and ranks them with the Adversarial Unstability
    Selector (virtual adversarial KL in representation space) and the
    Balanced Uncertainty Selector (class-balanced density-weighted entropy).
    Only the "unselected" rows (max p below the threshold) are candidates,
    unless fewer than needed remain.

    De-duplicate the pool before querying (e.g. keep the rows given by
    ``np.unique(X_pool, axis=0, return_index=True)[1]``): copies of a row count
    as each other's neighbours in the BUS density, so several of them can be
    picked and a human asked to label the same content more than once.

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
        BUS density (see :func:`~sklearn_boostmis.query.knn_density`), computed
        on ``Z = teacher.embed(X)`` over the whole pool (the input itself for
        modules without ``embed``).
    beta_d : float, default=1.0
        Density exponent of BUS.
    balance : bool, default=True
        Class-balanced BUS quota per predicted class.
    selectors : {"both", "aus", "bus"}, default="both"
        Which selectors rank the pool. ``"both"`` is BoostMIS; the others
        run AUS or BUS alone (ablations).
    candidate_threshold : float or None, default=None
        Rows with ``max p < candidate_threshold`` are candidates. None uses
        the threshold the classifier's pseudo-labels settled at: ``alpha +
        beta`` (also of an ``AdaptiveThreshold`` object), a
        ``FixedThreshold``'s value, or a policy's last threshold (after
        :func:`~sklearn_boostmis.load_weights`, ``alpha + beta``).
    batch_size : int, default=1024
        Rows per forward (and AUS backward) pass.
    random_state : int, RandomState instance or None, default=None
        Seeds the AUS random start. An int gives identical queries on every
        call with the same model and pool.

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
        "balance": ["boolean"],
        "selectors": [StrOptions(set(_SELECTORS))],
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
        self.balance = balance
        self.selectors = selectors
        self.candidate_threshold = candidate_threshold
        self.batch_size = batch_size
        self.random_state = random_state

    # -- shared work ----------------------------------------------------------
    def _rankings(self, classifier, X_pool, k):
        """AUS and BUS rankings (pool positions) of length <= k, and scores."""
        self._validate_params()
        clf, X = unwrap_classifier(classifier, X_pool)
        with torch_threads(getattr(clf, "n_jobs", None)):
            net = clf.net_
            teacher = net.ema_module_
            device = next(
                teacher.parameters()
            ).device  # net.device is None with accelerate
            proba, Z, X_t = _teacher_outputs(
                teacher, X, batch_size=self.batch_size, device=device
            )
            threshold = self.candidate_threshold
            if threshold is None:
                threshold = _settled_threshold(clf)
            cand = low_confidence_candidates(proba, threshold, k)
            n_pool = proba.shape[0]
            aus = bus = None
            score_aus = score_bus = torch.zeros(n_pool, dtype=torch.float64)
            if self.selectors in ("both", "aus"):
                seed = check_random_state(self.random_state).randint(
                    np.iinfo(np.int32).max
                )
                generator = torch.Generator(device=X_t.device).manual_seed(int(seed))
                # perturb the representations computed above instead of embedding
                # the candidates again (modules without embed() perturb the input)
                embedded = supports_embedding(teacher)
                rows = Z if embedded else X_t
                # after a short fit every row is a candidate: avoid copying the pool
                rows = rows if len(cand) == n_pool else rows[cand]
                rank, s = aus_ranking(
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
                aus = cand[rank[:k]].cpu()
                score_aus = score_aus.index_copy(
                    0, cand.cpu(), s.detach().double().cpu()
                )
            if self.selectors in ("both", "bus"):
                rho = knn_density(
                    Z.flatten(start_dim=1),
                    n_neighbors=self.n_neighbors,
                    method=self.density,
                )
                rank, s = bus_ranking(
                    proba[cand], rho[cand], k, beta_d=self.beta_d, balance=self.balance
                )
                bus = cand[rank].cpu()
                score_bus = score_bus.index_copy(
                    0, cand.cpu(), s.detach().double().cpu()
                )
            return aus, bus, score_aus.numpy(), score_bus.numpy()

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

    # -- public API --------------------------------------------------------
    def __call__(self, classifier, X_pool, n_instances=1):
        """Pick exactly ``n_instances`` rows of ``X_pool`` (modAL contract).

        With ``selectors="both"``, the AUS and BUS rankings (each of length
        ``n_instances``) are interleaved ``a0, b0, a1, b1, ...``, repeats
        dropped, cut at ``n_instances`` (method page, :ref:`method-combining`).

        Parameters
        ----------
        classifier : estimator
            A fitted BoostMISClassifier, a Pipeline ending in one, a search
            (e.g. GridSearchCV) fitted with ``refit=True`` over either, or a
            modAL learner wrapping any of these (see
            :func:`~sklearn_boostmis.query.unwrap_classifier`).
        X_pool : array-like of shape (n_samples, n_features), or images
            Unlabeled rows to choose from (at least one).
        n_instances : int, default=1
            Number of rows to pick, from 1 to ``len(X_pool)``. A larger value
            raises a ValueError rather than returning fewer rows (modAL's
            contract is exactly ``n_instances``): in a loop whose pool
            shrinks, ask for ``min(n_instances, len(X_pool))``.

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
        aus, bus, score_aus, score_bus = self._rankings(classifier, X_pool, n)
        if aus is not None and bus is not None:
            idx = interleave_rankings(aus, bus, n).numpy()
            rank_a = {int(v): r for r, v in enumerate(aus.tolist())}
            rank_b = {int(v): r for r, v in enumerate(bus.tolist())}
            from_aus = np.array(
                [rank_a.get(i, n) <= rank_b.get(i, n) for i in idx.tolist()], bool
            )
            scores = np.where(from_aus, score_aus[idx], score_bus[idx])
        elif aus is not None:  # the rankings hold at most n rows
            idx = aus.numpy()
            scores = score_aus[idx]
        else:
            idx = bus.numpy()
            scores = score_bus[idx]
        return idx.astype(np.int64), np.asarray(scores, dtype=np.float64)

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
        n_pool = _num_rows(X_pool)
        k = min(self._check_count(quota, "quota", n_pool, at_most_pool=False), n_pool)
        aus, bus, score_aus, score_bus = self._rankings(classifier, X_pool, k)
        top_a = aus if aus is not None else torch.empty(0, dtype=torch.long)
        top_b = bus if bus is not None else torch.empty(0, dtype=torch.long)
        idx = union_candidates(top_a, top_b, k).numpy().astype(np.int64)
        from_aus = np.isin(idx, top_a.numpy())
        return QueryUnion(
            indices=idx,
            from_aus=from_aus,
            from_bus=np.isin(idx, top_b.numpy()),
            scores=np.where(from_aus, score_aus[idx], score_bus[idx]),
        )


def _num_rows(X):
    if hasattr(X, "shape"):
        return int(X.shape[0])
    return len(X)
