"""The BoostMIS closed loop: train, query AUS + BUS, annotate, repeat.

Implements the closed loop (method page, :ref:`method-closed-loop` and
:ref:`method-combining`), with a crash-safe annotation log so that no oracle
answer (a human's work) is ever lost or asked twice.
"""

import csv
import hashlib
import json
import os
import pickle
import warnings
from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.metrics import accuracy_score, f1_score
from sklearn.pipeline import Pipeline
from sklearn.utils import _safe_indexing
from sklearn.utils._param_validation import HasMethods, Interval

from .._io import atomic_write
from ..classifier import BoostMISClassifier, declared_classes
from ..query.sampler import InformativeQuerySampler
from ..scoring import is_missing_label, label_array, labeled_mask, labeled_rows
from ..thresholds import AdaptiveThreshold

__all__ = ["AnnotationLoop"]

LOG_NAME = "annotations.csv"
STATE_NAME = "state.json"
MODEL_NAME = "model.pkl"
_LOG_HEADER = ["index", "label", "cycle"]


def _key(value):
    """Hashable, type-tolerant key of a label (numpy scalars -> Python)."""
    return value.item() if isinstance(value, np.generic) else value


def _in_asked_order(answers, positions, row_labels, cycle):
    """The oracle's answers in the order of ``positions``.

    A pandas object says by its index which row each answer is for. A default
    index (0, 1, ..., n-1) means the order asked; an index holding the asked
    positions, or X's index labels of those rows, is matched in any order; any
    other index is refused rather than applied by position. When the asked
    rows are themselves 0..n-1 (or X's index labels of them are), a default
    index is both readings at once: if they give different labels, the
    answers are refused rather than guessed.
    """
    if not hasattr(answers, "reindex"):  # not pandas: in the order asked
        return answers
    keys = [_key(k) for k in answers.index]
    default = keys == list(range(len(positions)))
    candidates = [[int(p) for p in positions]]
    if row_labels is not None:
        candidates.append([_key(k) for k in row_labels[positions]])
    for wanted in candidates:
        if len(set(keys)) == len(keys) == len(wanted) and set(keys) == set(wanted):
            matched = answers.reindex(wanted)
            if default and not _same_answers(matched, answers):
                raise ValueError(
                    f"The oracle returned a pandas object in cycle {cycle} whose "
                    f"index 0..{len(keys) - 1} is both a default index (answers in "
                    "the order asked) and the asked rows in another order, and the "
                    "two readings give different labels: return the answers in "
                    "the order asked as a list or array, or indexed in the order "
                    "asked (e.g. answers.reindex(indices)). Nothing was recorded."
                )
            return matched
    if default:
        return answers
    raise ValueError(
        f"The oracle returned a pandas object in cycle {cycle} whose index "
        "matches neither the asked positions nor X's index labels of those "
        "rows; return the answers in the order asked (e.g. a list). Nothing "
        "was recorded."
    )


def _same_answers(first, second):
    """Whether two answer sequences give the same label (or skip) to each row."""
    pairs = zip(
        np.asarray(first, dtype=object).reshape(-1),
        np.asarray(second, dtype=object).reshape(-1),
        strict=True,
    )
    return all(
        is_missing_label(a) == is_missing_label(b)
        and (is_missing_label(a) or _key(a) == _key(b))
        for a, b in pairs
    )


def _sorted_answers(answers, lookup):
    """Each answer as a class of ``lookup``, None (a skipped row), or the answer
    itself when it is not among the classes; and the mask of the latter."""
    bool_classes = all(isinstance(c, (bool, np.bool_)) for c in lookup.values())
    # The log stores answers as text: an answer is judged as it reads back on
    # a resume ("1" is the class 1, "" a skipped row unless "" is a class).
    by_text = {str(key): key for key in lookup}
    labels, unknown = [], np.zeros(len(answers), dtype=bool)
    for n, answer in enumerate(answers):
        key = _key(answer)
        if key not in lookup and isinstance(answer, str):
            key = by_text.get(answer, key)
        empty = isinstance(answer, str) and key == "" and "" not in lookup
        if is_missing_label(answer) or empty:
            labels.append(None)
        elif key in lookup and (
            # True == 1: a bool answer would pass for the class 1
            bool_classes or not isinstance(answer, (bool, np.bool_))
        ):
            labels.append(lookup[key])
        else:
            labels.append(answer)
            unknown[n] = True
    return labels, unknown


def _unknown_answers_error(found, lookup, recorded):
    """The error for answers outside the classes: ``found`` says where they
    are, ``recorded`` where they were kept. The oracle's answers and a resume
    that reads them from the log give the same advice."""
    classes = [_key(c) for c in lookup.values()]
    return ValueError(
        f"{found} that are not among the classes {classes!r} (None skips a row; "
        "-1 is not an answer). A class that no row is labeled with yet must be "
        "declared in the classifier's classes parameter: pass classes=[...] "
        f"(every class) to BoostMISClassifier. {recorded}"
    )


def update_digest(digest, array):
    """Feed ``array``'s shape, dtype and values to a ``hashlib`` digest."""
    array = np.asarray(array)
    digest.update(repr((array.shape, array.dtype.str)).encode())
    if array.dtype.kind in "biuf":
        digest.update(np.ascontiguousarray(array).tobytes())
    else:
        digest.update(repr(array.tolist()).encode())


def _fingerprint(X, y):
    """sha256 of the data and the initial labels, which a state_dir belongs to."""
    digest = hashlib.sha256()
    update_digest(digest, X)
    digest.update(json.dumps([_key(v) for v in y], default=repr).encode())
    return digest.hexdigest()


def _final_step(estimator):
    """The classifier itself, or the last step of a Pipeline."""
    return estimator[-1] if isinstance(estimator, Pipeline) else estimator


def _warm_started(template, estimator, n_annotated, budget):
    """``estimator`` set to refit warm-started after an annotation round.

    Parameters
    ----------
    template : BoostMISClassifier or Pipeline ending in one
        The loop's unfitted estimator: with ``threshold="adaptive"`` the refit
        gets a new :class:`~sklearn_boostmis.thresholds.AdaptiveThreshold` that
        knows the round's N_A and K, and with an ``AdaptiveThreshold`` object a
        copy of it that does. (The fitted estimator's own ``threshold`` is
        already such an object after the first round, holding an older N_A.)
    estimator : BoostMISClassifier or Pipeline ending in one
        The fitted estimator to refit. Its classifier takes the template's
        parameters (a loop resumed with a changed estimator trains with the new
        settings from the fitted weights); in a Pipeline the earlier steps refit
        as they are.
    n_annotated : int
        N_A, the size of the last round's AUS + BUS union.
    budget : int
        K, each selector's quota.
    """
    settings = clone(_final_step(template)).get_params(deep=False)  # fresh copies
    params = {**settings, "warm_start": True}
    threshold = settings["threshold"]
    if isinstance(threshold, str) and threshold == "adaptive":
        threshold = AdaptiveThreshold(
            alpha=settings["alpha"], beta=settings["beta"], t_max=settings["t_max"]
        )
    if isinstance(threshold, AdaptiveThreshold):  # a copy: clone() made it fresh
        params["threshold"] = threshold.set_params(
            n_annotated=int(n_annotated), quota=int(budget)
        )
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
    """The labeled rows of the validation set, checked before the first fit."""
    X_true, y_true, _ = labeled_rows(X_val, y_val, name="y_val")
    if _sample_shape(X_true) != _sample_shape(X):
        raise ValueError(
            f"X_val rows have shape {np.shape(X_true)[1:]}, "
            f"but X rows have shape {np.shape(X)[1:]}"
        )
    return X_true, y_true


class AnnotationLoop(BaseEstimator):
    """BoostMIS active annotation loop around a BoostMISClassifier.

    Each cycle (method page, :ref:`method-closed-loop`) fits the classifier on the
    labeled and unlabeled rows, selects the union of the AUS and BUS top-K
    among the unlabeled rows, asks the oracle for their labels and adds the
    answers to the labeled set. From the second cycle on, the classifier is
    warm-started (weights and EMA teacher continue, optimizer and LR schedule
    restart) and, with ``threshold="adaptive"`` or an ``AdaptiveThreshold``,
    its eps_t receives ``N_A`` (the size of the last union) and ``K = budget``.

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
        classifier's ``classes``, which may declare classes that no row is
        labeled with yet), or None (also NaN, ``pandas.NA`` or an empty
        string) for a row the annotator cannot label: that row stays
        unlabeled (it still trains as an unlabeled row) and is never asked
        again. A string that spells a class, such as ``"1"`` for the class
        1, is that class (as the annotation log, which stores text, reads it
        back). A pandas Series is matched
        to the rows by its index: the asked positions or X's index labels of
        those rows, in any order; a default index (0..n-1) means the order
        asked, and is refused when it could also be the asked rows (they are
        0..n-1) and the two readings disagree. An answer outside the classes
        (a class not declared yet, a typo) stops ``fit`` with a ``ValueError``
        after the round's answers have been recorded: the accepted ones in
        ``y_`` and ``skipped_indices_``, the refused ones in
        ``unknown_answers_``, and all of them in the log with a
        ``state_dir``.
    n_cycles : int, default=5
        Number of annotation rounds (fit, query, annotate).
    budget : int, default=10
        K, each selector's quota per cycle; each cycle asks about N_A rows,
        ``K <= N_A <= 2K`` with both selectors (N_A, fed to the adaptive
        threshold, counts the rows asked, skipped ones included).
    final_fit : bool, default=True
        Fit once more after the last round, so that ``estimator_`` has seen
        every answer.
    state_dir : str, path-like or None, default=None
        Folder for crash-safe progress. ``annotations.csv`` (``index,label,
        cycle``) is appended and fsync'd right after each oracle answer, before
        anything else: it is the source of truth. ``state.json`` (cycle,
        ``N_A``, history, the pending query) and ``model.pkl`` (the fitted
        classifier, a pickle: only point this at a folder you created) are
        replaced atomically. ``fit`` on a folder that holds a previous run
        resumes it: logged labels are re-applied, logged rows are never asked
        again, and the loop continues at the next cycle (or, when a crash cut
        the log in the middle of a round, asks that round's unlogged rows).
        A logged answer outside the classes stops the resume with the same
        ``ValueError`` as when it was given, until the classifier declares
        its class (or the log line is corrected); a saved model that lacks a
        class declared since is fitted afresh rather than warm-started.

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
        None), ``picks`` (``{"aus", "bus", "both"}`` counts:
        rows picked by AUS only, BUS only, both; None for the final fit),
        ``collapsed_classes`` (the fit's ``collapsed_classes_``).
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
    ... ).fit(X, y_partial)
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
    ):
        self.estimator = estimator
        self.sampler = sampler
        self.oracle = oracle
        self.n_cycles = n_cycles
        self.budget = budget
        self.final_fit = final_fit
        self.state_dir = state_dir

    # -- persistence -------------------------------------------------------
    def _path(self, name):
        return os.path.join(os.fspath(self.state_dir), name)

    def _read_log(self, n_samples, lookup):
        """Rows of the annotation log as (index, label, cycle) lists."""
        path = self._path(LOG_NAME)
        if not os.path.exists(path):
            return [], [], []
        self._drop_torn_line(path)
        index, label, cycle, unknown_lines = [], [], [], []
        # utf-8-sig: a spreadsheet that saved the file may have added a BOM
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            for line, row in enumerate(reader):
                if not row or (line == 0 and row == _LOG_HEADER):
                    continue
                try:
                    i, lab, c = int(row[0]), row[1], int(row[2])
                    if len(row) != 3:
                        raise ValueError
                except (ValueError, IndexError):
                    raise ValueError(
                        f"{path}: malformed line {line + 1}: {row!r} (expected "
                        "index,label,cycle)"
                    ) from None
                if not 0 <= i < n_samples:
                    raise ValueError(
                        f"{path}: row index {i} out of range for {n_samples} "
                        "samples: is this state_dir from another data set?"
                    )
                if lab == "":
                    lab = None  # the annotator skipped the row
                elif lab not in lookup:
                    self.unknown_answers_[i] = lab
                    unknown_lines.append(line + 1)
                    continue
                index.append(i)
                label.append(None if lab is None else lookup[lab])
                cycle.append(c)
        if unknown_lines:
            labels = list(dict.fromkeys(self.unknown_answers_.values()))
            raise _unknown_answers_error(
                f"{path} holds labels {labels[:5]!r} (lines {unknown_lines[:5]})",
                lookup,
                "The logged answers are used, and no row is asked twice, when "
                "you fit again on this state_dir with the class declared (or "
                "with those lines corrected; the row of a deleted line is asked "
                "again).",
            )
        return index, label, cycle

    @staticmethod
    def _drop_torn_line(path):
        """Cut a last line that a crash left without its newline (its answers
        were never fully recorded), so that later appends start a clean line."""
        with open(path, "rb+") as f:
            data = f.read()
            if not data or data.endswith(b"\n"):
                return
            keep = data.rfind(b"\n") + 1
            f.seek(keep)
            f.truncate()
            f.flush()
            os.fsync(f.fileno())
        warnings.warn(
            f"{path}: dropped an incomplete last line {data[keep:]!r} (an "
            "interrupted write); that row is unlabeled again (asked again if its "
            "round is still open)",
            UserWarning,
            stacklevel=4,
        )

    def _append_log(self, positions, labels, cycle):
        path = self._path(LOG_NAME)
        new = not os.path.exists(path) or os.path.getsize(path) == 0
        with open(path, "a", newline="") as f:
            writer = csv.writer(f)
            if new:
                writer.writerow(_LOG_HEADER)
            writer.writerows(
                [int(i), "" if lab is None else str(_key(lab)), int(cycle)]
                for i, lab in zip(positions, labels, strict=True)
            )
            f.flush()
            os.fsync(f.fileno())

    def _write_state(self, state):
        if self.state_dir is not None:
            atomic_write(self._path(STATE_NAME), json.dumps(state).encode())

    def _write_model(self, estimator, cycle):
        if self.state_dir is not None:
            blob = pickle.dumps({"cycle": int(cycle), "estimator": estimator})
            atomic_write(self._path(MODEL_NAME), blob)

    def _resume(self, y, data_id, lookup):
        """Re-apply the log; return (next cycle, N_A, history, pending, model)."""
        fresh = (0, 0, [], None, None)
        if self.state_dir is None:
            return fresh
        os.makedirs(self.state_dir, exist_ok=True)
        state = {}
        if os.path.exists(self._path(STATE_NAME)):
            try:
                with open(self._path(STATE_NAME)) as f:
                    state = json.load(f)
            except json.JSONDecodeError as exc:
                raise ValueError(
                    f"{self._path(STATE_NAME)} is not a loop state ({exc}): use "
                    "another state_dir"
                ) from None
            if state.get("shape") != data_id["shape"]:
                raise ValueError(
                    f"state_dir {self.state_dir!r} was written for X of shape "
                    f"{state.get('shape')}, got {data_id['shape']}."
                )
            if (
                state.get("fingerprint", data_id["fingerprint"])
                != data_id["fingerprint"]
            ):
                raise ValueError(
                    f"state_dir {self.state_dir!r} was written for other data: X "
                    "or the initial labels y differ from those of the run that "
                    "wrote it (also X in another dtype, or a y that already holds "
                    "the logged answers, such as loop.y_); resume with the same X "
                    "and initial y, or use another state_dir"
                )
        index, label, cycle = self._read_log(data_id["shape"][0], lookup)
        skipped = np.zeros(len(y), dtype=bool)
        for i, lab in zip(index, label, strict=True):
            if lab is None:
                if y[i] != -1:
                    raise ValueError(
                        f"Row {i} is labeled {y[i]!r} in y or earlier in the "
                        "annotation log, but a later line skips it: remove one of "
                        "them, or use another state_dir"
                    )
                skipped[i] = True
                continue
            if y[i] != -1 and _key(y[i]) != _key(lab):
                raise ValueError(
                    f"Row {i} is labeled {y[i]!r} in y but {lab!r} in the "
                    "annotation log: is this state_dir from another data set?"
                )
            y[i] = lab
            skipped[i] = False  # a label given after a skip (a filled-in line)
        answered = np.array([lab is not None for lab in label], dtype=bool)
        self.annotated_indices_ = np.asarray(index, dtype=np.int64)[answered]
        self.annotation_cycles_ = np.asarray(cycle, dtype=np.int64)[answered]
        self.skipped_indices_ = np.flatnonzero(skipped)
        next_cycle = int(state.get("next_cycle", 0))
        n_annotated = int(state.get("n_annotated", 0))
        history = [{"n_skipped": 0, **h} for h in state.get("history", [])]
        pending = state.get("pending")
        unanswered = self._unanswered(index, cycle, pending)
        if unanswered:
            # Killed while the round's answers were being written: the round
            # stays open and its rows without an answer are asked again.
            warnings.warn(
                f"{self._path(LOG_NAME)} holds {len(pending['indices']) - unanswered} "
                f"of the {len(pending['indices'])} answers of cycle "
                f"{pending['cycle']} (an interrupted write): the other "
                f"{unanswered} rows are asked again",
                UserWarning,
                stacklevel=3,
            )
        elif cycle and max(cycle) + 1 > next_cycle:
            # Killed after the log was written, before the state was updated.
            next_cycle = max(cycle) + 1
            n_annotated = cycle.count(max(cycle))
            if pending is not None and pending["cycle"] == max(cycle):
                history.append(self._complete_entry(pending["entry"], pending, skipped))
            pending = None
        last = history[-1] if history else None
        if (
            last is not None
            and last["n_queried"] == 0
            and last["cycle"] == next_cycle - 1
            and last["cycle"] < self.n_cycles
        ):
            # The previous run ended with a final fit (no query) and more
            # cycles are wanted now: query with that fit's model.
            next_cycle = last["cycle"]
            history.pop()
        model, unreadable = None, ""
        if os.path.exists(self._path(MODEL_NAME)):
            try:
                with open(self._path(MODEL_NAME), "rb") as f:
                    model = pickle.load(f)
            except Exception as exc:  # a damaged file: the log is the truth
                unreadable = f" ({MODEL_NAME} is unreadable: {exc})"
        if next_cycle > 0 and (model is None or model["cycle"] < next_cycle - 1):
            warnings.warn(
                f"No saved model for cycle {next_cycle - 1} in {self.state_dir!r}"
                f"{unreadable}: the logged labels are kept and the classifier is "
                "fitted from scratch.",
                UserWarning,
                stacklevel=3,
            )
            model = None
        return next_cycle, n_annotated, history, pending, model

    @staticmethod
    def _unanswered(index, cycle, pending):
        """How many rows of the pending round the log lacks, if it holds some."""
        if pending is None or pending["cycle"] not in cycle:
            return 0
        logged = {i for i, c in zip(index, cycle, strict=True) if c == pending["cycle"]}
        return len(set(pending["indices"]) - logged)

    # -- one cycle -----------------------------------------------------------
    def _fit_estimator(self, est, X, y, cycle, n_annotated, classes):
        # A model saved before the classifier declared another class (to take
        # logged answers of it) cannot be warm-started: it is fitted afresh.
        if (
            cycle > 0
            and est is not None
            and np.array_equal(_final_step(est).classes_, classes)
        ):
            est = _warm_started(self.estimator, est, n_annotated, self.budget)
        else:
            est = clone(self.estimator)
        return est.fit(X, y)

    @staticmethod
    def _entry(est, y, cycle, validation):
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

    @staticmethod
    def _complete_entry(entry, pending, skipped):
        aus = np.asarray(pending["from_aus"], bool)
        bus = np.asarray(pending["from_bus"], bool)
        return {
            **entry,
            "n_queried": len(pending["indices"]),
            "n_skipped": int(skipped[pending["indices"]].sum()),
            "picks": {
                "aus": int((aus & ~bus).sum()),
                "bus": int((bus & ~aus).sum()),
                "both": int((aus & bus).sum()),
            },
        }

    def _ask(self, positions, cycle, row_labels=None):
        """The oracle's answers for ``positions``, in that order."""
        try:
            answers = self.oracle(positions.copy())
        except Exception as exc:
            then = (
                "fit again to resume"
                if self.state_dir is not None
                else "without a state_dir, fit starts over"
            )
            raise RuntimeError(
                f"The oracle failed in cycle {cycle} on {len(positions)} rows; "
                f"nothing was recorded ({then})."
            ) from exc
        answers = _in_asked_order(answers, positions, row_labels, cycle)
        answers = np.asarray(answers, dtype=object).reshape(-1)
        if answers.shape[0] != len(positions):
            raise ValueError(
                f"The oracle returned {answers.shape[0]} labels for "
                f"{len(positions)} rows in cycle {cycle}; nothing was recorded."
            )
        return answers

    def _record(self, positions, answers, cycle, lookup, y, skipped):
        """Put the answers in ``y``, ``skipped`` and the attributes, and in the
        log, then refuse answers outside the classes: every answer is kept
        before anything can refuse it, as it is a human's work."""
        labels, unknown = _sorted_answers(answers, lookup)
        for i, lab, refused in zip(positions, labels, unknown, strict=True):
            if refused:
                self.unknown_answers_[int(i)] = lab
            elif lab is None:
                skipped[i] = True
            else:
                y[i] = lab
        answered = positions[np.array([lab is not None for lab in labels]) & ~unknown]
        cycles = np.full(len(answered), cycle, dtype=np.int64)
        self.annotated_indices_ = np.r_[self.annotated_indices_, answered]
        self.annotation_cycles_ = np.r_[self.annotation_cycles_, cycles]
        self.skipped_indices_ = np.flatnonzero(skipped)
        if self.state_dir is not None:
            try:
                self._append_log(positions, labels, cycle)
            except OSError as exc:
                raise OSError(
                    f"could not record the answers of cycle {cycle} in "
                    f"{self._path(LOG_NAME)} ({exc}): they are in loop.y_, "
                    "loop.skipped_indices_ and loop.unknown_answers_ (rows "
                    f"{positions.tolist()}); a resume from this state_dir "
                    "would ask them again"
                ) from exc
        if unknown.any():
            refused = list(dict.fromkeys(_key(a) for a in answers[unknown]))
            recorded = (
                f"Every answer of cycle {cycle} was saved to "
                f"{self._path(LOG_NAME)}; they are used, and no row is asked "
                "twice, when you fit again on this state_dir with the class "
                "declared (a wrong answer can be corrected in that file)."
                if self.state_dir is not None
                else "The answers are in loop.y_ and loop.unknown_answers_ "
                "(row: answer); without a state_dir a new fit asks again."
            )
            raise _unknown_answers_error(
                f"The oracle returned labels {refused[:5]!r} in cycle {cycle}",
                lookup,
                recorded,
            )

    # -- public API ------------------------------------------------------------
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
            If the oracle returns a label outside the known classes (those
            of the labeled rows, or the classifier's ``classes``; every answer
            of the round is recorded first, and a resume uses them once the
            class is declared), or the wrong number of labels (nothing is
            recorded for that cycle), or the log holds an answer outside the
            classes; before
            the first fit, if ``X_val`` and ``y_val`` differ in length, their rows
            differ in shape from those of ``X``, or no row of ``y_val`` is labeled.
        RuntimeError
            If the oracle raises (the original exception is chained).
        """
        validation = self._check_setup(X, X_val, y_val)
        y = np.array(label_array(y), copy=True)
        if y.dtype.kind in "US":
            raise ValueError("String labels need object dtype, with -1 for unlabeled.")
        shape = tuple(int(s) for s in np.shape(X)[:2])
        if len(y) != shape[0]:
            raise ValueError(f"X has {shape[0]} rows but y has {len(y)}.")
        classes = np.unique(y[labeled_mask(y)])
        declared = _final_step(self.estimator).classes
        if declared is not None:  # may hold classes that no row is labeled with yet
            classes = declared_classes(declared, y.dtype, classes)
        lookup = {_key(c): c for c in classes}
        log_lookup = {str(_key(c)): c for c in classes}
        if self.state_dir is not None and "" in log_lookup:
            raise ValueError(
                "The class '' (an empty string) cannot be written to the "
                "annotation log, where an empty label marks a skipped row: "
                "rename that class, or use state_dir=None"
            )
        self.annotated_indices_ = np.empty(0, dtype=np.int64)
        self.annotation_cycles_ = np.empty(0, dtype=np.int64)
        self.skipped_indices_ = np.empty(0, dtype=np.int64)
        self.unknown_answers_ = {}
        data_id = {"shape": list(shape)}
        if self.state_dir is not None:
            data_id["fingerprint"] = _fingerprint(X, y)
        cycle, n_annotated, history, pending, model = self._resume(
            y, data_id, log_lookup
        )
        self.start_cycle_ = cycle
        self.history_, self.n_annotated_, self.y_ = history, n_annotated, y
        skipped = np.zeros(len(y), dtype=bool)
        skipped[self.skipped_indices_] = True
        vars(self).pop("estimator_", None)  # a previous fit's: set only if fitted
        sampler = self.sampler
        if sampler is None:  # seeded like the classifier: repeatable queries
            seed = _final_step(self.estimator).random_state
            sampler = InformativeQuerySampler(random_state=seed)
        est = model["estimator"] if model is not None else None
        if est is not None and _structure(est) != _structure(self.estimator):
            raise ValueError(
                f"state_dir {self.state_dir!r} holds a {_structure(est)} model, but "
                f"this loop's estimator is a {_structure(self.estimator)}: resume "
                "with the same kind of estimator, or use another state_dir"
            )
        last = self.n_cycles + int(self.final_fit)
        while cycle < last:
            if model is not None and model["cycle"] == cycle:
                model = None  # this cycle's fit survived the interruption
            else:
                est = self._fit_estimator(est, X, y, cycle, n_annotated, classes)
                self._write_model(est, cycle)
            self.estimator_ = est
            entry = self._entry(est, y, cycle, validation)
            unlabeled = np.flatnonzero(~labeled_mask(y) & ~skipped)
            if cycle == self.n_cycles or unlabeled.size == 0:
                history.append(entry)
                if pending is not None and pending["cycle"] != cycle:
                    pending = None
                # a round still open (its log cut short) is kept for a later fit
                state = self._state(data_id, cycle + 1, n_annotated, history, pending)
                self._write_state(state)
                break
            if pending is None or pending["cycle"] != cycle:
                union = sampler.select_union(
                    est, _safe_indexing(X, unlabeled), int(self.budget)
                )
                pending = {
                    "cycle": cycle,
                    "indices": unlabeled[union.indices].tolist(),
                    "from_aus": union.from_aus.tolist(),
                    "from_bus": union.from_bus.tolist(),
                    "entry": entry,
                }
            self._write_state(
                self._state(data_id, cycle, n_annotated, history, pending)
            )
            asked = np.asarray(pending["indices"], dtype=np.int64)
            # After an interrupted write, rows already in the log are not asked.
            positions = asked[~labeled_mask(y[asked]) & ~skipped[asked]]
            answers = self._ask(positions, cycle, getattr(X, "index", None))
            self._record(positions, answers, cycle, lookup, y, skipped)
            history.append(self._complete_entry(pending["entry"], pending, skipped))
            n_annotated, pending = len(asked), None
            self.n_annotated_ = n_annotated
            cycle += 1
            self._write_state(self._state(data_id, cycle, n_annotated, history))
        if est is not None:
            self.estimator_ = est
        return self

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
        return None if X_val is None else _validation_rows(X, X_val, y_val)

    @staticmethod
    def _state(data_id, next_cycle, n_annotated, history, pending=None):
        return {
            "version": 1,
            **data_id,
            "next_cycle": int(next_cycle),
            "n_annotated": int(n_annotated),
            "history": history,
            "pending": pending,
        }
