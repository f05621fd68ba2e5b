"""``boostmis query``: train on a person's labels and write the next candidates."""

import csv
import io
import os

import numpy as np

from .._utils import atomic_write
from ..datasets import grade_names, load_features, split_paths
from ..modules import resolve_device
from ._common import (
    check_class_prior_option,
    check_writable,
    collapse_note,
    collapse_warnings_summarised,
    make_estimator,
    say,
    standardize,
)

# The candidates file, one row per candidate in rank order (1 = ask first).
# The selectors' scores are on scales of their own: each has its own column.
CANDIDATE_COLUMNS = (
    "index",
    "rank",
    "selector",
    "aus_score",
    "bus_score",
    "predicted_class",
    "predicted_grade",
)


def _read_labels(path, n_rows, names):
    """Validated (indices, codes) of a person's CSV with ``index`` and ``label``
    columns (others ignored; an empty label is a row not yet answered)."""
    if os.path.isdir(path):
        raise ValueError(f"--labels {path} is a folder, not a CSV file")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"labels file not found: {path}")
    codes = {str(i): i for i in range(len(names))}
    codes |= {n.lower(): i for i, n in enumerate(names)}
    try:  # utf-8-sig: spreadsheet programs write a byte-order mark
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"{path}: not UTF-8 text (byte {exc.start}); save it as CSV UTF-8"
        ) from None
    header = [c.strip().lower() for c in rows[0]] if rows else []
    for column in ("index", "label"):
        if header.count(column) > 1:
            raise ValueError(f"{path}: the header names the column {column} twice")
    if "index" not in header or "label" not in header:
        got = ",".join(rows[0]) if rows else "an empty file"
        raise ValueError(
            f"{path}: the first line must be a header with the columns index and "
            f"label (e.g. 'index,label'), got {got!r}"
        )
    at_index, at_label = header.index("index"), header.index("label")
    indices, labels, seen = [], [], {}
    for line, row in enumerate(rows[1:], start=2):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) <= max(at_index, at_label):
            raise ValueError(
                f"{path}: line {line} has {len(row)} column(s), the header "
                f"{len(header)}: {row!r}"
            )
        text_index, text_label = row[at_index].strip(), row[at_label].strip()
        try:
            index = int(_integral_code(text_index))
        except ValueError:
            raise ValueError(
                f"{path}: line {line}: index {text_index!r} is not an integer"
            ) from None
        if not 0 <= index < n_rows:
            raise ValueError(
                f"{path}: line {line}: unknown index {index} (train has "
                f"{n_rows} rows, 0..{n_rows - 1})"
            )
        if not text_label:
            continue  # not answered yet
        if index in seen:
            raise ValueError(
                f"{path}: line {line}: duplicate index {index} (first on "
                f"line {seen[index]})"
            )
        key = _integral_code(text_label.lower())
        if key not in codes:
            raise ValueError(
                f"{path}: line {line}: unknown class {text_label!r} (classes: "
                + ", ".join(f"{i}={n}" for i, n in enumerate(names))
                + ")"
            )
        seen[index] = line
        indices.append(index)
        labels.append(codes[key])
    if len(set(labels)) < 2:
        raise ValueError(
            f"{path}: labels of at least two classes are needed, got "
            f"{sorted(set(labels))}"
        )
    return np.asarray(indices, dtype=np.int64), np.asarray(labels, dtype=np.int64)


def _integral_code(text):
    """``"3.0"`` (a float column written by pandas or a spreadsheet, e.g. one
    that held an empty cell) as ``"3"``; any other text as it is."""
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if number.is_integer() else text


def _ranked_candidates(sampler, classifier, X_pool, k):
    """The AUS top-``k`` union the BUS top-``k`` as a ``QueryUnion``, their
    rankings interleaved AUS first (as :meth:`InformativeQuerySampler.__call__`
    orders them), and each selector's scores of its rows (NaN: not its pick;
    BUS takes the predicted classes in turn, so its scores need not decrease)."""
    from ..query import QueryUnion, interleave_rankings

    aus, bus, score_aus, score_bus = sampler.rankings(classifier, X_pool, k)
    order = interleave_rankings(aus, bus, len(np.union1d(aus, bus))).numpy()
    from_aus, from_bus = np.isin(order, aus), np.isin(order, bus)
    return (
        QueryUnion(indices=order, from_aus=from_aus, from_bus=from_bus),
        np.where(from_aus, score_aus[order], np.nan),
        np.where(from_bus, score_bus[order], np.nan),
    )


def _score_text(score):
    return "" if np.isnan(score) else f"{float(score):.6g}"


def cmd_query(args):
    from .. import InformativeQuerySampler

    if os.path.isfile(args.data_dir):
        raise ValueError(f"DATA_DIR {args.data_dir} is a file, not a folder")
    if not os.path.isdir(args.data_dir):
        raise FileNotFoundError(f"MESCC data folder not found: {args.data_dir}")
    if os.path.abspath(args.out) == os.path.abspath(args.labels):
        raise ValueError(
            f"--out {args.out} would overwrite the labels file: choose another path"
        )
    check_writable(args.out, folder=False)
    resolve_device(args.device)
    names = grade_names(args.task)
    check_class_prior_option(vars(args), names)
    (X,) = standardize(load_features(split_paths(args.data_dir, "train")[0]))
    indices, labels = _read_labels(args.labels, X.shape[0], names)
    y = np.full(X.shape[0], -1, dtype=np.int64)
    y[indices] = labels
    pool = np.flatnonzero(y == -1)
    if pool.size == 0:
        raise ValueError(f"{args.labels}: every train row is labeled; nothing to query")
    say(f"training on {len(indices)} labels and {pool.size} unlabeled rows ...")
    with collapse_warnings_summarised():
        clf = make_estimator(vars(args), args.device, args.n_jobs).fit(X, y)
    if clf.collapsed_classes_:
        say(
            "warning"
            + collapse_note(clf.collapsed_classes_, names)
            + " (the model hardly predicts it on the unlabeled rows; label more rows "
            "of it; --class-weight balanced may help too)"
        )
    sampler = InformativeQuerySampler(random_state=args.seed)
    k = min(args.budget, pool.size)
    union, aus_scores, bus_scores = _ranked_candidates(sampler, clf, X[pool], k)
    picked = union.indices
    predicted = clf.predict(X[pool[picked]])
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CANDIDATE_COLUMNS)
    rows = zip(
        picked, union.picked_by(), aus_scores, bus_scores, predicted, strict=True
    )
    for rank, (pos, selector, aus, bus, pred) in enumerate(rows, start=1):
        row = [int(pool[pos]), rank, selector, _score_text(aus), _score_text(bus)]
        writer.writerow([*row, int(pred), names[pred]])
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    atomic_write(args.out, buf.getvalue())
    say(f"wrote {len(picked)} candidates to {args.out}, in rank order (1 = ask first)")
    return 0
