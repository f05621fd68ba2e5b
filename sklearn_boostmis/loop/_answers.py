"""The oracle's answers: asked, aligned with the rows asked, and sorted into
classes, skips and answers outside the classes."""

import numpy as np

from .._labels import is_missing_label


def label_key(value):
    """Hashable, type-tolerant key of a label (numpy scalars -> Python)."""
    return value.item() if isinstance(value, np.generic) else value


def ask(oracle, positions, cycle, row_labels=None, *, resumable=False):
    """The oracle's answers for ``positions`` (rows of X), in that order;
    ``row_labels`` is X's index, ``resumable`` (a ``state_dir``) changes the
    advice of the errors (RuntimeError if the oracle raises, else ValueError)."""
    try:
        answers = oracle(positions.copy())
    except Exception as exc:
        then = (
            "fit again to resume"
            if resumable
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


def _in_asked_order(answers, positions, row_labels, cycle):
    """The answers in the order of ``positions``; a pandas object is matched by
    its index (user guide, "The closed loop"), refused when it is ambiguous."""
    if not hasattr(answers, "reindex"):  # not pandas: in the order asked
        return answers
    keys = [label_key(k) for k in answers.index]
    default = keys == list(range(len(positions)))
    candidates = [[int(p) for p in positions]]
    if row_labels is not None:
        candidates.append([label_key(k) for k in row_labels[positions]])
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
        and (is_missing_label(a) or label_key(a) == label_key(b))
        for a, b in pairs
    )


def sort_answers(answers, lookup):
    """Each answer as a class of ``lookup``, None (a skipped row), or the answer
    itself when it is not among the classes; and the mask of the latter."""
    bool_classes = all(isinstance(c, (bool, np.bool_)) for c in lookup.values())
    # The log stores answers as text: an answer is judged as it reads back on
    # a resume ("1" is the class 1, "" a skipped row unless "" is a class).
    by_text = {str(key): key for key in lookup}
    labels, unknown = [], np.zeros(len(answers), dtype=bool)
    for n, answer in enumerate(answers):
        key = label_key(answer)
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


def unknown_answers_error(found, lookup, recorded):
    """The error for answers outside the classes (from the oracle or the log):
    ``found`` says where they are, ``recorded`` where they were kept."""
    classes = [label_key(c) for c in lookup.values()]
    return ValueError(
        f"{found} that are not among the classes {classes!r} (None skips a row; "
        "-1 is not an answer). A class that no row is labeled with yet must be "
        "declared in the classifier's classes parameter: pass classes=[...] "
        f"(every class) to BoostMISClassifier. {recorded}"
    )
