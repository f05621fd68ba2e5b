"""The label convention: -1 marks an unlabeled row, beside labels of any type."""

import warnings

import numpy as np
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_consistent_length


def label_array(y):
    """``y``, or an object array for a list mixing strings with other values
    (numpy would turn ``["cat", -1]`` into strings, the integer -1 of an
    unlabeled row into the class ``"-1"``). Anything with a dtype (arrays,
    pandas objects), and a list of strings only, is returned as it is."""
    if y is None or hasattr(y, "dtype"):
        return y
    if np.asarray(y).dtype.kind in "US":
        as_object = np.asarray(y, dtype=object)
        if not all(isinstance(v, str) for v in as_object.reshape(-1)):
            return as_object
    return y


def is_missing_label(value):
    """Whether ``value`` is a missing label: None, NaN, ``pandas.NA`` or ``NaT``."""
    return (
        value is None
        or type(value).__name__ in ("NAType", "NaTType")
        or (isinstance(value, (float, np.floating)) and value != value)
    )


def check_no_missing_labels(y):
    """Refuse NaN/None/pd.NA labels with the -1 convention in the message."""
    if y is None:
        return  # validate_data says that y is required
    values = np.asarray(y)
    if values.dtype.kind == "f":
        missing = int(np.isnan(values).sum())
    elif values.dtype == object:
        missing = sum(map(is_missing_label, values.reshape(-1)))
    else:
        return
    if missing:
        raise ValueError(
            f"y has {missing} missing label(s) (NaN, None or NA): mark unlabeled "
            "rows with -1 instead (e.g. y.fillna(-1), with dtype=object for string "
            "labels)"
        )


def _warn_on_string_minus_one(y, stacklevel):
    # e.g. a label column read from a CSV file: its -1 is a string too
    if y.dtype.kind in "USO" and np.any(y == "-1"):
        warnings.warn(
            "y holds the string '-1', which is a class here: unlabeled rows "
            "are marked by the integer -1 (in an object array for string "
            "labels)",
            UserWarning,
            stacklevel=stacklevel + 1,
        )


def labeled_mask(y):
    """Boolean mask of the rows whose label is not -1 (missing labels refused)."""
    y = label_array(y)
    check_no_missing_labels(y)
    y = np.asarray(y)
    _warn_on_string_minus_one(y, stacklevel=3)
    if y.dtype.kind in "US":  # a string array cannot hold the integer -1
        return np.ones(len(y), dtype=bool)
    return np.asarray(y != -1, dtype=bool).reshape(len(y))


def labeled_rows(X, y, name="y"):
    """``X``, ``y`` and the mask of the rows whose label is not -1; a ``ValueError``
    when their lengths differ or no row is labeled (``name`` names ``y`` in it)."""
    y = label_array(y)
    check_consistent_length(X, y)
    mask = labeled_mask(y)
    if not mask.any():
        raise ValueError(f"cannot score: every row of {name} is unlabeled (-1)")
    if hasattr(X, "iloc"):
        X_labeled = X.iloc[np.flatnonzero(mask)]
    else:
        X_labeled = np.asarray(X)[mask] if not hasattr(X, "shape") else X[mask]
    return X_labeled, np.asarray(y)[mask], mask


def labeled_sample_weight(y, sample_weight, mask):
    """``sample_weight`` of the labeled rows (``mask`` from :func:`labeled_rows`);
    None stays None, and a length other than ``y``'s is a ``ValueError``."""
    if sample_weight is None:
        return None
    check_consistent_length(y, sample_weight)
    return np.asarray(sample_weight)[mask]


def check_partial_labels(y, classes=None, *, stacklevel=2):
    """The labeled mask and the sorted classes of ``y`` (-1: an unlabeled row).

    ``classes`` (None: the labels found) may declare classes that no row is
    labeled with yet. Invalid ``y`` or ``classes`` are a ``ValueError``; the
    string ``'-1'`` warns (at ``stacklevel``, as ``warnings.warn`` called here).
    """
    check_no_missing_labels(y)
    y = np.asarray(y)
    if y.dtype.kind in "US":
        raise ValueError(
            "y has dtype string. If you wish to predict on string targets, use "
            "dtype object, and use -1 as the label for unlabeled samples."
        )
    _warn_on_string_minus_one(y, stacklevel)
    labeled = np.asarray(y != -1, dtype=bool).reshape(len(y))
    if not labeled.any():
        raise ValueError(
            "y contains no labeled samples: at least two classes must be labeled "
            "(-1 marks unlabeled rows)"
        )
    check_classification_targets(y[labeled])
    found = np.unique(y[labeled])
    if len(found) < 2:
        raise ValueError(
            f"y must contain at least 2 labeled classes; got {len(found)} class "
            "among the labeled rows (-1 marks unlabeled rows)"
        )
    if classes is None:
        return labeled, found
    return labeled, _declared_classes(classes, y.dtype, found)


def _declared_classes(classes, y_dtype, labeled_classes):
    """The sorted ``classes`` parameter, checked; it must hold every one of
    ``labeled_classes`` (object labels, ``y_dtype``, give an object array)."""
    declared = np.asarray(classes, dtype=object if y_dtype.kind == "O" else None)
    if declared.ndim != 1:
        raise ValueError(
            f"classes must be a 1-D list of labels, got shape {declared.shape}"
        )
    if any(map(is_missing_label, declared.tolist())):
        raise ValueError(f"classes must not hold missing values: {declared.tolist()}")
    if any(c == -1 for c in declared.tolist()):
        raise ValueError("classes must not hold -1, which marks unlabeled rows")
    try:
        unique, counts = np.unique(declared, return_counts=True)
    except TypeError:  # e.g. strings and numbers, which do not sort together
        raise ValueError(
            f"classes mixes label types that cannot be sorted: {declared.tolist()}"
        ) from None
    if len(unique) != len(declared):
        raise ValueError(f"classes holds duplicates: {unique[counts > 1].tolist()}")
    if len(unique) < 2:
        raise ValueError(f"classes must hold at least 2 labels, got {len(unique)}")
    known = set(unique.tolist())
    missing = [c for c in labeled_classes.tolist() if c not in known]
    if missing:
        raise ValueError(
            f"y has labels {missing[:5]} that are not in classes {unique.tolist()}"
        )
    return unique
