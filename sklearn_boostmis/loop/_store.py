"""Crash-safe storage of an annotation loop (the ``state_dir`` files): a
resume trusts the answer log where the state and the model lag behind it."""

import csv
import hashlib
import json
import os
import pickle
import warnings
from dataclasses import asdict, dataclass, field

import numpy as np

from .._utils import atomic_write
from ..query import attribute
from ._answers import label_key, unknown_answers_error

LOG_NAME = "annotations.csv"
STATE_NAME = "state.json"
MODEL_NAME = "model.pkl"
_LOG_HEADER = ["index", "label", "cycle"]


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
    digest.update(json.dumps([label_key(v) for v in y], default=repr).encode())
    return digest.hexdigest()


@dataclass
class PendingRound:
    """A round selected, saved in ``state.json`` before the oracle is asked so
    that a resume asks the same rows (those the log lacks); ``entry`` is the
    fit's history entry, completed once the round is answered."""

    cycle: int
    indices: list
    from_aus: list
    from_bus: list
    entry: dict

    def completed_entry(self, skipped):
        """``entry`` with the round's counts; ``skipped`` masks skipped rows."""
        selector = attribute(self.from_aus, self.from_bus)
        return {
            **self.entry,
            "n_queried": len(self.indices),
            "n_skipped": int(skipped[self.indices].sum()),
            "picks": {k: int((selector == k).sum()) for k in ("aus", "bus", "both")},
        }


@dataclass
class RunState:
    """Where a run stands, from the log, the state and the model: the rows
    labeled (``annotated``, in log order, and their ``annotation_cycles``), the
    mask of skipped rows, the model of ``model_cycle`` (``estimator``, None
    without a usable one), and whether the round of cycle ``next_cycle - 1``
    was closed from the log, the run having stopped before its state."""

    next_cycle: int = 0
    n_annotated: int = 0
    history: list = field(default_factory=list)
    pending: PendingRound = None
    annotated: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    annotation_cycles: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    skipped: np.ndarray = None
    estimator: object = None
    model_cycle: int = None
    closed_from_log: bool = False


class AnnotationStore:
    """The files of a loop's ``state_dir`` (every method is a no-op without
    one), for the data ``X`` and initial labels ``y``, whose log labels read
    back as ``classes``."""

    def __init__(self, state_dir, X, y, classes):
        self.state_dir = state_dir
        self.lookup = {str(label_key(c)): c for c in classes}
        if state_dir is not None and "" in self.lookup:
            raise ValueError(
                "The class '' (an empty string) cannot be written to the "
                "annotation log, where an empty label marks a skipped row: "
                "rename that class, or use state_dir=None"
            )
        self.data_id = {"shape": [int(s) for s in np.shape(X)[:2]]}
        if state_dir is not None:
            self.data_id["fingerprint"] = _fingerprint(X, y)

    def path(self, name):
        return os.path.join(os.fspath(self.state_dir), name)

    # -- writing -----------------------------------------------------------
    def append(self, positions, labels, cycle):
        """Append and fsync a round's answers (None: a skipped row)."""
        if self.state_dir is None:
            return
        path = self.path(LOG_NAME)
        new = not os.path.exists(path) or os.path.getsize(path) == 0
        with open(path, "a", newline="") as f:
            writer = csv.writer(f)
            if new:
                writer.writerow(_LOG_HEADER)
            writer.writerows(
                [int(i), "" if lab is None else str(label_key(lab)), int(cycle)]
                for i, lab in zip(positions, labels, strict=True)
            )
            f.flush()
            os.fsync(f.fileno())

    def save_state(self, next_cycle, n_annotated, history, pending=None):
        if self.state_dir is None:
            return
        state = {
            "version": 1,
            **self.data_id,
            "next_cycle": int(next_cycle),
            "n_annotated": int(n_annotated),
            "history": history,
            "pending": None if pending is None else asdict(pending),
        }
        atomic_write(self.path(STATE_NAME), json.dumps(state).encode())

    def save_model(self, estimator, cycle):
        if self.state_dir is not None:
            blob = pickle.dumps({"cycle": int(cycle), "estimator": estimator})
            atomic_write(self.path(MODEL_NAME), blob)

    # -- resuming ----------------------------------------------------------
    def resume(self, y, n_cycles, unknown):
        """Re-apply the log to ``y`` (the loop's copy of the initial labels)
        and return the run's ``RunState``, with ``n_cycles`` the rounds wanted
        now. ``unknown`` is filled with ``{row: answer}`` for the logged
        answers outside the classes, before the error that they raise."""
        run = RunState(skipped=np.zeros(len(y), dtype=bool))
        if self.state_dir is None:
            return run
        os.makedirs(self.state_dir, exist_ok=True)
        state = self._read_state()
        index, label, cycle = self._read_log(unknown)
        self._apply_log(y, run, index, label, cycle)
        run.next_cycle = int(state.get("next_cycle", 0))
        run.n_annotated = int(state.get("n_annotated", 0))
        run.history = state.get("history", [])
        pending = state.get("pending")
        run.pending = None if pending is None else PendingRound(**pending)
        self._reconcile(run, index, cycle)
        last = run.history[-1] if run.history else None
        if (
            last is not None
            and last["n_queried"] == 0
            and last["cycle"] == run.next_cycle - 1
            and last["cycle"] < n_cycles
        ):
            # The previous run ended with a final fit (no query) and more
            # cycles are wanted now: query with that fit's model.
            run.next_cycle = last["cycle"]
            run.history.pop()
        self._read_model(run)
        return run

    def _read_state(self):
        """state.json checked against the data; empty when there is none."""
        path = self.path(STATE_NAME)
        if not os.path.exists(path):
            return {}
        try:
            with open(path) as f:
                state = json.load(f)
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"{path} is not a loop state ({exc}): use another state_dir"
            ) from None
        if state.get("shape") != self.data_id["shape"]:
            raise ValueError(
                f"state_dir {self.state_dir!r} was written for X of shape "
                f"{state.get('shape')}, got {self.data_id['shape']}."
            )
        fingerprint = self.data_id["fingerprint"]
        if state.get("fingerprint", fingerprint) != fingerprint:
            raise ValueError(
                f"state_dir {self.state_dir!r} was written for other data: X "
                "or the initial labels y differ from those of the run that "
                "wrote it (also X in another dtype, or a y that already holds "
                "the logged answers, such as loop.y_); resume with the same X "
                "and initial y, or use another state_dir"
            )
        return state

    def _read_log(self, unknown):
        """Rows of the annotation log as (index, label, cycle) lists."""
        path = self.path(LOG_NAME)
        if not os.path.exists(path):
            return [], [], []
        _drop_torn_line(path)
        n_samples = self.data_id["shape"][0]
        index, label, cycle, unknown_lines = [], [], [], []
        # utf-8-sig: a spreadsheet that saved the file may have added a BOM
        with open(path, newline="", encoding="utf-8-sig") as f:
            for line, row in enumerate(csv.reader(f)):
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
                elif lab not in self.lookup:
                    unknown[i] = lab
                    unknown_lines.append(line + 1)
                    continue
                index.append(i)
                label.append(None if lab is None else self.lookup[lab])
                cycle.append(c)
        if unknown_lines:
            labels = list(dict.fromkeys(unknown.values()))
            raise unknown_answers_error(
                f"{path} holds labels {labels[:5]!r} (lines {unknown_lines[:5]})",
                self.lookup,
                "The logged answers are used, and no row is asked twice, when "
                "you fit again on this state_dir with the class declared (or "
                "with those lines corrected; the row of a deleted line is asked "
                "again).",
            )
        return index, label, cycle

    @staticmethod
    def _apply_log(y, run, index, label, cycle):
        """Write the logged labels into ``y`` and the skips into ``run``."""
        skipped = run.skipped
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
            if y[i] != -1 and label_key(y[i]) != label_key(lab):
                raise ValueError(
                    f"Row {i} is labeled {y[i]!r} in y but {lab!r} in the "
                    "annotation log: is this state_dir from another data set?"
                )
            y[i] = lab
            skipped[i] = False  # a label given after a skip (a filled-in line)
        answered = np.array([lab is not None for lab in label], dtype=bool)
        run.annotated = np.asarray(index, dtype=np.int64)[answered]
        run.annotation_cycles = np.asarray(cycle, dtype=np.int64)[answered]

    def _reconcile(self, run, index, cycle):
        """Bring the state up to the log where a run stopped between the two."""
        pending = run.pending
        unanswered = 0
        if pending is not None and pending.cycle in cycle:  # the log holds some
            logged = {
                i for i, c in zip(index, cycle, strict=True) if c == pending.cycle
            }
            unanswered = len(set(pending.indices) - logged)
        if unanswered:
            # Killed while the round's answers were being written: the round
            # stays open and its rows without an answer are asked again.
            n_asked = len(pending.indices)
            warnings.warn(
                f"{self.path(LOG_NAME)} holds {n_asked - unanswered} of the "
                f"{n_asked} answers of cycle {pending.cycle} (an interrupted "
                f"write): the other {unanswered} rows are asked again",
                UserWarning,
                stacklevel=4,
            )
        elif cycle and max(cycle) + 1 > run.next_cycle:
            # Stopped after the log was written, before the state was updated.
            run.next_cycle = max(cycle) + 1
            run.n_annotated = cycle.count(max(cycle))
            if pending is not None and pending.cycle == max(cycle):
                entry = pending.completed_entry(run.skipped)
                run.history.append(entry)
                run.closed_from_log = True
            run.pending = None

    def _read_model(self, run):
        """The saved model, when it is that of the cycle before the next."""
        model, unreadable = None, ""
        if os.path.exists(self.path(MODEL_NAME)):
            try:
                with open(self.path(MODEL_NAME), "rb") as f:
                    model = pickle.load(f)
            except Exception as exc:  # a damaged file: the log is the truth
                unreadable = f" ({MODEL_NAME} is unreadable: {exc})"
        next_cycle = run.next_cycle
        if next_cycle > 0 and (model is None or model["cycle"] < next_cycle - 1):
            warnings.warn(
                f"No saved model for cycle {next_cycle - 1} in {self.state_dir!r}"
                f"{unreadable}: the logged labels are kept and the classifier is "
                "fitted from scratch.",
                UserWarning,
                stacklevel=4,
            )
        elif model is not None:
            run.estimator, run.model_cycle = model["estimator"], model["cycle"]


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
        stacklevel=5,
    )
