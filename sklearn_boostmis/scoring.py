"""Scoring that ignores unlabeled rows (``y == -1``)."""

import warnings

import numpy as np
from sklearn.metrics import get_scorer
from sklearn.utils.metadata_routing import MetadataRequest
from sklearn.utils.validation import check_consistent_length


def label_array(y):
    """``y``, or for a list of strings with other values an object array.

    numpy turns ``["cat", -1, "dog"]`` into strings, where the integer -1 (an
    unlabeled row) becomes the class ``"-1"``; an object array keeps it, as
    ``np.array(..., dtype=object)`` would. Anything with a dtype (arrays,
    pandas objects), and a list of strings only, is returned as it is.
    """
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


def labeled_mask(y):
    """Boolean mask of the rows whose label is not -1 (missing labels refused)."""
    y = label_array(y)
    check_no_missing_labels(y)
    y = np.asarray(y)
    # e.g. a label column read from a CSV file: its -1 is a string too
    if y.dtype.kind in "USO" and np.any(y == "-1"):
        warnings.warn(
            "y holds the string '-1', which is a class here: unlabeled rows "
            "are marked by the integer -1 (in an object array for string "
            "labels)",
            UserWarning,
            stacklevel=3,
        )
    if y.dtype.kind in "US":  # a string array cannot hold the integer -1
        return np.ones(len(y), dtype=bool)
    return np.asarray(y != -1, dtype=bool).reshape(len(y))


def labeled_rows(X, y, name="y"):
    """``X`` and ``y`` restricted to the rows whose label is not -1.

    Raises a ``ValueError`` when ``X`` and ``y`` differ in length or no row of
    ``y`` is labeled (there is nothing to score); ``name`` names ``y`` in it.
    """
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


class _LabeledRowsScorer:
    """Wraps a scikit-learn scorer to evaluate only the labeled rows."""

    def __init__(self, scorer):
        self.scorer = scorer

    def __call__(self, estimator, X, y, sample_weight=None, **kwargs):
        X_labeled, y_labeled, mask = labeled_rows(X, y)
        if sample_weight is not None:
            kwargs["sample_weight"] = labeled_sample_weight(y, sample_weight, mask)
        return self.scorer(estimator, X_labeled, y_labeled, **kwargs)

    def set_score_request(self, **kwargs):
        """Request metadata (e.g. ``sample_weight=True``) for metadata routing."""
        if not hasattr(self.scorer, "set_score_request"):
            raise TypeError(
                "this scorer is a plain function: build it with "
                "sklearn.metrics.make_scorer to request metadata"
            )
        self.scorer.set_score_request(**kwargs)
        return self

    def get_metadata_routing(self):
        if hasattr(self.scorer, "get_metadata_routing"):
            return self.scorer.get_metadata_routing()
        return MetadataRequest(owner=type(self).__name__)  # a plain function

    def __repr__(self):
        return f"make_labeled_scorer({self.scorer!r})"


def make_labeled_scorer(scoring):
    """A scorer that ignores rows with ``y == -1``.

    Parameters
    ----------
    scoring : str or callable
        A scikit-learn scorer name (``"f1_macro"``, ``"balanced_accuracy"``,
        ...) or a scorer callable ``scorer(estimator, X, y)``.

    Returns
    -------
    scorer : callable
        Usable as ``scoring=`` in ``GridSearchCV`` or ``cross_val_score``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.dummy import DummyClassifier
    >>> X = np.zeros((4, 1)); y = np.array([0, 1, 1, -1])
    >>> clf = DummyClassifier(strategy="constant", constant=1).fit(X[:3], y[:3])
    >>> make_labeled_scorer("accuracy")(clf, X, y)  # the -1 row is ignored
    0.666...
    """
    return _LabeledRowsScorer(get_scorer(scoring))
