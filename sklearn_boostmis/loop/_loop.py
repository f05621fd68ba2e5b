"""The annotation cycle: fit, select the AUS + BUS union, ask, record."""

import os
import pickle
from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.metrics import accuracy_score, f1_score
from sklearn.pipeline import Pipeline
from sklearn.utils import _safe_indexing
from sklearn.utils._param_validation import HasMethods, Interval
from sklearn.utils.validation import check_is_fitted

from .._labels import check_partial_labels, label_array, labeled_mask, labeled_rows
from ..classifier import BoostMISClassifier
from ..query.sampler import InformativeQuerySampler
from ..thresholds import make_threshold
from ._answers import ask, label_key, sort_answers, unknown_answers_error
from ._store import LOG_NAME, AnnotationStore, PendingRound

__all__ = ["AnnotationLoop"]


def _final_step(estimator):
    """The classifier itself, or the last step of a Pipeline."""
    return estimator[-1] if isinstance(estimator, Pipeline) else estimator


def _warm_started(template, estimator, n_annotated, budget):
    """The fitted ``estimator`` set to refit warm-started, with the classifier
    parameters of the unfitted ``template`` (a resume may change them) and its
    adaptive threshold built anew with N_A = ``n_annotated`` and K = ``budget``."""
    settings = clone(_final_step(template)).get_params(deep=False)  # fresh copies
    threshold = settings["threshold"]
    if not (isinstance(threshold, str) and threshold == "fixed"):  # kept as given
        settings["threshold"] = make_threshold(
            threshold,
            settings["alpha"],
            settings["beta"],
            settings["t_max"],
            n_annotated=int(n_annotated),
            quota=int(budget),
        )
    params = {**settings, "warm_start": True}
    if isinstance(estimator, Pipeline):
        name = estimator.steps[-1][0]
        params = {f"{name}__{key}": value for key, value in params.items()}
    return estimator.set_params(**params)


def _structure(estimator):
    """The estimator's class, and for a Pipeline its steps' names and classes."""
    if isinstance(estimator, Pipeline):
        steps = ", ".join(f"{n}={type(s).__name__}" for n, s in estimator.steps)
        return f"Pipeline({steps})"
    return type(estimator).__name__


def _sample_shape(X):
    """Shape of one row; an (H, W) image counts as (1, H, W), as the classifier
    reads it."""
    shape = tuple(np.shape(X)[1:])
    return (1, *shape) if len(shape) == 2 else shape


def _validation_rows(X, X_val, y_val):
    """The labeled rows of the validation set (None without one), checked."""
    if X_val is None:
        return None
    X_true, y_true, _ = labeled_rows(X_val, y_val, name="y_val")
    if _sample_shape(X_true) != _sample_shape(X):
        raise ValueError(
            f"X_val rows have shape {np.shape(X_true)[1:]}, "
            f"but X rows have shape {np.shape(X)[1:]}"
        )
    return X_true, y_true


class AnnotationLoop(BaseEstimator):
    """BoostMIS active annotation loop around a BoostMISClassifier.

    Each cycle (method page, :ref:`method-closed-loop`) fits the classifier,
    asks the oracle to label the union of the AUS and BUS top-K among the
    unlabeled rows and adds the answers; from the second cycle on the
    classifier is warm-started, an adaptive threshold receiving ``N_A`` (the
    size of the last union) and ``K = budget``. The user guide,
    :ref:`user-guide-loop`, describes its use.

    Parameters
    ----------
    estimator : BoostMISClassifier or Pipeline ending in one
        The classifier; it is cloned, never fitted in place. Give it an int
        ``random_state`` for repeatable (and exactly resumable) runs. In a
        Pipeline the earlier steps are refit on the same ``X`` each cycle and
        the classifier is warm-started.
    sampler : InformativeQuerySampler or None, default=None
        The query strategy (its ``select_union``); None uses the default
        :class:`~sklearn_boostmis.InformativeQuerySampler` with the
        classifier's ``random_state``.
    oracle : callable
        Required (the default None is refused). ``oracle(indices) -> labels``:
        receives an int array of row positions in ``X`` (only unlabeled rows,
        all the cycle's queries in one call) and returns one label per
        position, each a class of the initial labeled rows (or of the
        classifier's ``classes``), or None (also NaN, ``pandas.NA`` or an
        empty string) for a row the annotator cannot label: that row stays
        unlabeled and is never asked again (text and pandas answers: see
        :ref:`user-guide-loop`). An answer outside the classes stops ``fit``
        with a ``ValueError`` after the round's answers have been recorded:
        the accepted ones in ``y_`` and ``skipped_indices_``, the refused ones
        in ``unknown_answers_``, and all of them in the log with a
        ``state_dir``.
    n_cycles : int, default=5
        Number of annotation rounds (fit, query, annotate).
    budget : int, default=10
        K, each selector's quota per cycle; each cycle asks about N_A rows,
        ``K <= N_A <= 2K`` with both selectors (N_A, fed to the adaptive
        threshold, counts the rows asked, skipped ones included).
    final_fit : bool, default=True
        Fit once more after the last round, so that ``estimator_`` has seen
        every answer. The last round is the ``n_cycles``-th, or an earlier
        one after which no unlabeled row is left to ask.
    state_dir : str, path-like or None, default=None
        Folder for crash-safe progress: the answer log ``annotations.csv``
        (``index,label,cycle``, fsync'd after each oracle answer: the source
        of truth), ``state.json`` and ``model.pkl`` (a pickle: only point this
        at a folder you created). ``fit`` on a folder that holds a previous
        run resumes it, never asking a logged row again; the user guide,
        :ref:`user-guide-loop`, details the files and the resume.
    on_cycle_end : callable or None, default=None
        ``on_cycle_end(loop, cycle, estimator)``, called once a cycle is done
        (its answers recorded, ``loop.history_[-1]`` its entry, ``estimator``
        its fitted classifier, for a round the one that chose the rows) and
        after the final fit; the return value is ignored. If it raises,
        ``fit`` stops with the answers kept; a resumed ``fit`` calls it for
        the cycles it runs, again for that one first.

    Attributes
    ----------
    estimator_ : BoostMISClassifier or Pipeline
        The last fitted classifier (a fitted copy of ``estimator``).
    y_ : ndarray of shape (n_samples,)
        The labels after all answers (-1 for rows still unlabeled).
    annotated_indices_ : ndarray of int
        Rows labeled by the oracle, in the order they were answered.
    annotation_cycles_ : ndarray of int
        The cycle of each of ``annotated_indices_``.
    skipped_indices_ : ndarray of int
        Rows the oracle answered with None (not labeled, not asked again).
    unknown_answers_ : dict
        ``{row: answer}`` for the answers outside the classes that stopped
        ``fit`` (read back from the log on a resume); empty otherwise.
    n_annotated_ : int
        N_A of the last round.
    history_ : list of dict
        One dict per fit: ``cycle``, ``n_labeled`` (labeled rows the fit
        saw), ``threshold`` (the fit's last eps_t), ``val_accuracy`` and
        ``val_f1_macro`` (None without validation data), ``n_queried`` (N_A,
        0 for the final fit), ``n_skipped`` (rows of the round answered with
        None), ``picks`` (counts of rows picked by ``"aus"`` only, ``"bus"``
        only, ``"both"``; None for the final fit), ``collapsed_classes``.
    start_cycle_ : int
        The cycle this ``fit`` started at (> 0 when it resumed).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.preprocessing import scale
    >>> from sklearn_boostmis import BoostMISClassifier
    >>> from sklearn_boostmis.loop import AnnotationLoop
    >>> X, y = load_iris(return_X_y=True)
    >>> X = scale(X)
    >>> y_partial = np.where(np.arange(150) % 10 == 0, y, -1)
    >>> loop = AnnotationLoop(
    ...     BoostMISClassifier(max_epochs=3, random_state=0),
    ...     oracle=lambda idx: y[idx], n_cycles=2, budget=4, final_fit=False,
    ...     on_cycle_end=lambda loop, cycle, estimator: print("cycle", cycle),
    ... ).fit(X, y_partial)
    cycle 0
    cycle 1
    >>> int((loop.y_ != -1).sum()) - 15 == len(loop.annotated_indices_)
    True
    """

    _parameter_constraints: dict = {
        "estimator": [HasMethods(["fit", "set_params"])],
        "sampler": [None, HasMethods(["select_union"])],
        "oracle": [callable],
        "n_cycles": [Interval(Integral, 0, None, closed="left")],
        "budget": [Interval(Integral, 1, None, closed="left")],
        "final_fit": ["boolean"],
        "state_dir": [None, str, os.PathLike],
        "on_cycle_end": [None, callable],
    }

    def __init__(
        self,
        estimator,
        sampler=None,
        oracle=None,
        n_cycles=5,
        budget=10,
        final_fit=True,
        state_dir=None,
        on_cycle_end=None,
    ):
        self.estimator = estimator
        self.sampler = sampler
        self.oracle = oracle
        self.n_cycles = n_cycles
        self.budget = budget
        self.final_fit = final_fit
        self.state_dir = state_dir
        self.on_cycle_end = on_cycle_end

    def fit(self, X, y, X_val=None, y_val=None):
        """Run (or resume) the annotation cycles.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or images
            ``(n_samples, height, width)`` / ``(n_samples, channels, height,
            width)``, as the classifier takes them.
        y : array-like of shape (n_samples,)
            Initial labels, -1 for unlabeled rows. Not modified.
        X_val, y_val : array-like, optional
            Held-out data: each fit's accuracy and macro-F1 go to ``history_``.

        Returns
        -------
        self : AnnotationLoop

        Raises
        ------
        InvalidParameterError
            Before the first fit, if a parameter of the loop or of its sampler
            is invalid (a ValueError and a TypeError).
        ValueError
            If the oracle returns a label outside the known classes (the
            round's answers are recorded first, see ``oracle``) or the wrong
            number of labels (nothing is recorded), or the log holds an answer
            outside the classes; before the first fit, if ``X_val`` and
            ``y_val`` differ in length, their rows differ in shape from those
            of ``X``, or no row of ``y_val`` is labeled.
        RuntimeError
            If the oracle raises (the original exception is chained).
        """
        validation = self._check_setup(X, X_val, y_val)
        y, classes = self._initial_labels(X, y)
        store = AnnotationStore(self.state_dir, X, y, classes)
        run = self._resume(store, y)
        sampler = self.sampler
        if sampler is None:  # seeded like the classifier: repeatable queries
            seed = _final_step(self.estimator).random_state
            sampler = InformativeQuerySampler(random_state=seed)
        lookup = {label_key(c): c for c in classes}
        cycle, est, pending = run.next_cycle, run.estimator, run.pending
        while cycle < self.n_cycles + int(self.final_fit):
            unlabeled = np.flatnonzero(~labeled_mask(y) & ~run.skipped)
            final = cycle == self.n_cycles or unlabeled.size == 0  # no round follows
            if final and not self.final_fit:
                break  # every row answered: a fit now would be the final fit
            if run.model_cycle != cycle:  # else this cycle's fit survived a stop
                est = self._fit_estimator(est, X, y, cycle, classes)
                store.save_model(est, cycle)
            self.estimator_ = est
            entry = self._entry(est, y, cycle, validation)
            if final:
                self.history_.append(entry)
                self._end_cycle(cycle, est)
                if pending is not None and pending.cycle != cycle:
                    pending = None
                # a round still open (its log cut short) is kept for a later fit
                store.save_state(cycle + 1, self.n_annotated_, self.history_, pending)
                break
            if pending is None or pending.cycle != cycle:
                pending = self._select(sampler, est, X, unlabeled, cycle, entry)
            store.save_state(cycle, self.n_annotated_, self.history_, pending)
            self._annotate(X, pending, lookup, run.skipped, store)
            self.history_.append(pending.completed_entry(run.skipped))
            self.n_annotated_, pending = len(pending.indices), None
            # the state follows on_cycle_end: a resume calls it again if it raised
            self._end_cycle(cycle, est)
            cycle += 1
            store.save_state(cycle, self.n_annotated_, self.history_)
        if est is not None:
            self.estimator_ = est
        return self

    def refit(self, X, X_val=None, y_val=None):
        """Fit ``estimator_`` once more on ``y_``, as the final fit of
        ``final_fit=True`` does, for a loop fitted with ``final_fit=False``.

        The classifier is warm-started and the fit's entry is appended to
        ``history_``; nothing is written to ``state_dir``.

        Parameters
        ----------
        X, X_val, y_val : array-like
            As given to :meth:`fit`.

        Returns
        -------
        estimator_ : BoostMISClassifier or Pipeline
            Fitted in place.
        """
        check_is_fitted(self, "estimator_")
        validation = _validation_rows(X, X_val, y_val)
        est = _warm_started(
            self.estimator, self.estimator_, self.n_annotated_, self.budget
        ).fit(X, self.y_)
        self.history_.append(self._entry(est, self.y_, len(self.history_), validation))
        return est

    def _check_setup(self, X, X_val, y_val):
        """What can fail before the first fit fails there; returns the labeled
        validation rows (or None)."""
        self._validate_params()
        if hasattr(self.sampler, "_validate_params"):  # a scikit-learn estimator
            self.sampler._validate_params()
        if not isinstance(_final_step(self.estimator), BoostMISClassifier):
            raise TypeError(
                "AnnotationLoop needs a BoostMISClassifier, or a Pipeline ending in "
                f"one, as estimator; got {type(self.estimator).__name__}, which "
                "would treat -1 (unlabeled) as a class"
            )
        if (X_val is None) != (y_val is None):
            raise ValueError("Give both X_val and y_val, or neither.")
        if self.state_dir is not None:
            try:  # the state holds the fitted model
                pickle.dumps(clone(self.estimator))
            except Exception as exc:
                raise TypeError(
                    "state_dir saves the estimator with pickle, which fails for "
                    f"this one ({type(exc).__name__}: {exc}); use picklable steps "
                    "(e.g. a module-level function instead of a lambda in a "
                    "FunctionTransformer) or state_dir=None"
                ) from None
        return _validation_rows(X, X_val, y_val)

    def _initial_labels(self, X, y):
        """A checked copy of ``y`` and the classes (declared ones included)."""
        y = np.array(label_array(y), copy=True)
        if len(y) != np.shape(X)[0]:
            raise ValueError(f"X has {np.shape(X)[0]} rows but y has {len(y)}.")
        declared = _final_step(self.estimator).classes
        _, classes = check_partial_labels(y, declared, stacklevel=4)
        return y, classes

    def _resume(self, store, y):
        """Set the fitted attributes to where ``store`` says the run stands
        (a fresh start without a state_dir) and return that ``RunState``."""
        self.unknown_answers_ = {}  # filled from the log as it is read
        run = store.resume(y, self.n_cycles, unknown=self.unknown_answers_)
        saved = run.estimator
        if saved is not None and _structure(saved) != _structure(self.estimator):
            raise ValueError(
                f"state_dir {self.state_dir!r} holds a {_structure(saved)} model, "
                f"but this loop's estimator is a {_structure(self.estimator)}: "
                "resume with the same kind of estimator, or use another state_dir"
            )
        self.y_, self.history_, self.n_annotated_ = y, run.history, run.n_annotated
        self.annotated_indices_ = run.annotated
        self.annotation_cycles_ = run.annotation_cycles
        self.skipped_indices_ = np.flatnonzero(run.skipped)
        self.start_cycle_ = run.next_cycle
        vars(self).pop("estimator_", None)  # a previous fit's: set only if fitted
        if run.closed_from_log and run.model_cycle == run.next_cycle - 1:
            # the run stopped before that round's state, maybe in on_cycle_end
            self._end_cycle(run.model_cycle, saved)
            store.save_state(run.next_cycle, self.n_annotated_, self.history_)
        return run

    def _end_cycle(self, cycle, estimator):
        self.estimator_ = estimator
        if self.on_cycle_end is not None:
            self.on_cycle_end(self, cycle, estimator)

    # -- one cycle -----------------------------------------------------------
    def _fit_estimator(self, est, X, y, cycle, classes):
        # A model saved before the classifier declared another class (to take
        # logged answers of it) cannot be warm-started: it is fitted afresh.
        if (
            cycle > 0
            and est is not None
            and np.array_equal(_final_step(est).classes_, classes)
        ):
            est = _warm_started(self.estimator, est, self.n_annotated_, self.budget)
        else:
            est = clone(self.estimator)
        return est.fit(X, y)

    @staticmethod
    def _entry(est, y, cycle, validation):
        """The history entry of a fit (the round's counts are added later)."""
        classifier = _final_step(est)
        eps = getattr(classifier, "threshold_history_", [])
        entry = {
            "cycle": int(cycle),
            "n_labeled": int(labeled_mask(y).sum()),
            "threshold": float(eps[-1]) if len(eps) else None,
            "val_accuracy": None,
            "val_f1_macro": None,
            "n_queried": 0,
            "n_skipped": 0,
            "picks": None,
            "collapsed_classes": list(getattr(classifier, "collapsed_classes_", [])),
        }
        if validation is not None:
            X_true, y_true = validation
            y_pred = est.predict(X_true)
            entry["val_accuracy"] = float(accuracy_score(y_true, y_pred))
            entry["val_f1_macro"] = float(f1_score(y_true, y_pred, average="macro"))
        return entry

    def _select(self, sampler, est, X, unlabeled, cycle, entry):
        """The cycle's round: the AUS + BUS union among the ``unlabeled`` rows."""
        union = sampler.select_union(
            est, _safe_indexing(X, unlabeled), int(self.budget)
        )
        return PendingRound(
            cycle=cycle,
            indices=unlabeled[union.indices].tolist(),
            from_aus=union.from_aus.tolist(),
            from_bus=union.from_bus.tolist(),
            entry=entry,
        )

    def _annotate(self, X, pending, lookup, skipped, store):
        """Ask for the round's rows that the log lacks and record the answers."""
        asked = np.asarray(pending.indices, dtype=np.int64)
        # After an interrupted write, rows already in the log are not asked.
        positions = asked[~labeled_mask(self.y_[asked]) & ~skipped[asked]]
        answers = ask(
            self.oracle,
            positions,
            pending.cycle,
            getattr(X, "index", None),
            resumable=self.state_dir is not None,
        )
        self._record(positions, answers, pending.cycle, lookup, skipped, store)

    def _record(self, positions, answers, cycle, lookup, skipped, store):
        """Put the answers in ``y_``, ``skipped`` and the attributes, and in the
        log, then refuse answers outside the classes: every answer is kept
        before anything can refuse it, as it is a human's work."""
        labels, unknown = sort_answers(answers, lookup)
        for i, lab, refused in zip(positions, labels, unknown, strict=True):
            if refused:
                self.unknown_answers_[int(i)] = lab
            elif lab is None:
                skipped[i] = True
            else:
                self.y_[i] = lab
        answered = positions[np.array([lab is not None for lab in labels]) & ~unknown]
        cycles = np.full(len(answered), cycle, dtype=np.int64)
        self.annotated_indices_ = np.r_[self.annotated_indices_, answered]
        self.annotation_cycles_ = np.r_[self.annotation_cycles_, cycles]
        self.skipped_indices_ = np.flatnonzero(skipped)
        try:
            store.append(positions, labels, cycle)
        except OSError as exc:
            raise OSError(
                f"could not record the answers of cycle {cycle} in "
                f"{store.path(LOG_NAME)} ({exc}): they are in loop.y_, "
                "loop.skipped_indices_ and loop.unknown_answers_ (rows "
                f"{positions.tolist()}); a resume from this state_dir "
                "would ask them again"
            ) from exc
        if unknown.any():
            refused = list(dict.fromkeys(label_key(a) for a in answers[unknown]))
            recorded = (
                f"Every answer of cycle {cycle} was saved to "
                f"{store.path(LOG_NAME)}; they are used, and no row is asked "
                "twice, when you fit again on this state_dir with the class "
                "declared (a wrong answer can be corrected in that file)."
                if self.state_dir is not None
                else "The answers are in loop.y_ and loop.unknown_answers_ "
                "(row: answer); without a state_dir a new fit asks again."
            )
            raise unknown_answers_error(
                f"The oracle returned labels {refused[:5]!r} in cycle {cycle}",
                lookup,
                recorded,
            )
