"""Scoring that ignores unlabeled rows (``y == -1``)."""

from sklearn.metrics import get_scorer
from sklearn.utils.metadata_routing import MetadataRequest

from ._labels import labeled_rows, labeled_sample_weight


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
