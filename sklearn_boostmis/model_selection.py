"""Cross-validation splitters for partially labeled data (``y == -1`` unlabeled).

scikit-learn's splitters put unlabeled rows into the test folds, where a scorer
given by name counts -1 as a class that the model never predicts.
"""

import numpy as np
from sklearn.model_selection import BaseCrossValidator, StratifiedKFold
from sklearn.utils import indexable
from sklearn.utils.validation import column_or_1d

from ._labels import label_array, labeled_mask

__all__ = ["LabeledStratifiedKFold"]


class LabeledStratifiedKFold(BaseCrossValidator):
    """Stratified K-fold over the labeled rows; every unlabeled row trains.

    The labeled rows (``y != -1``) are split as
    :class:`~sklearn.model_selection.StratifiedKFold` splits them (the same
    folds, for the same settings); each training fold adds every unlabeled row.
    Test folds hold no -1, so a scorer given by name, such as
    ``scoring="f1_macro"`` in :func:`~sklearn.model_selection.cross_val_score`
    or :class:`~sklearn.model_selection.GridSearchCV`, scores the labeled rows
    only, as :func:`~sklearn_boostmis.make_labeled_scorer` does.

    Labels follow the package's rules: any type (strings in an object array,
    beside the integer -1), missing labels (NaN, None, ``pandas.NA``) refused,
    and the string ``"-1"`` is a class, with a warning.

    Parameters
    ----------
    n_splits : int, default=5
        Number of folds, at least 2. Each class needs at least ``n_splits``
        labeled rows.
    shuffle : bool, default=False
        Shuffle each class's labeled rows before splitting them into folds.
    random_state : int, RandomState instance or None, default=None
        Seeds the shuffle; only with ``shuffle=True``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_boostmis import LabeledStratifiedKFold
    >>> y = np.array([0, 0, 1, 1, -1, -1])
    >>> for train, test in LabeledStratifiedKFold(n_splits=2).split(np.zeros(6), y):
    ...     print(train, test)
    [1 3 4 5] [0 2]
    [0 2 4 5] [1 3]
    """

    def __init__(self, n_splits=5, *, shuffle=False, random_state=None):
        self.n_splits = n_splits
        self.shuffle = shuffle
        self.random_state = random_state
        self._stratified()  # bad settings fail here, as in scikit-learn's KFold

    def _stratified(self):
        return StratifiedKFold(
            self.n_splits, shuffle=self.shuffle, random_state=self.random_state
        )

    def split(self, X, y, groups=None):
        """Generate indices to split the data into training and test sets.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            The data; only its length is used.
        y : array-like of shape (n_samples,)
            Labels, -1 for unlabeled rows.
        groups : object
            Always ignored, exists for compatibility.

        Yields
        ------
        train : ndarray
            The training rows: the fold's labeled training rows and every
            unlabeled row, sorted.
        test : ndarray
            The fold's test rows, all labeled.

        Raises
        ------
        ValueError
            If ``y`` is None or not 1-D, holds missing labels, or a class has
            fewer than ``n_splits`` labeled rows.
        """
        if y is None:
            raise ValueError(
                "LabeledStratifiedKFold.split needs y, with -1 for unlabeled "
                "rows: it tests on the labeled rows only"
            )
        X, y, groups = indexable(X, label_array(y), groups)
        y = column_or_1d(y)
        labeled = labeled_mask(y)
        codes = self._class_codes(y[labeled])
        labeled_rows, unlabeled_rows = np.flatnonzero(labeled), np.flatnonzero(~labeled)
        for train, test in self._stratified().split(np.zeros(len(codes)), codes):
            train_rows = np.sort(np.r_[labeled_rows[train], unlabeled_rows])
            yield train_rows, labeled_rows[test]

    def _class_codes(self, labels):
        """Codes of ``labels`` in order of first appearance (as StratifiedKFold
        encodes them, also for labels that do not sort together); refuses a
        class with fewer than ``n_splits`` rows."""
        if len(labels) == 0:
            raise ValueError(
                "every row of y is unlabeled (-1): there is nothing to test"
            )
        first_seen = {}
        codes = np.array(
            [first_seen.setdefault(v, len(first_seen)) for v in labels.tolist()],
            dtype=np.intp,
        )
        counts = np.bincount(codes)
        short = [
            f"class {label!r} has {count}"
            for label, count in zip(first_seen, counts, strict=True)
            if count < self.n_splits
        ]
        if short:
            raise ValueError(
                f"LabeledStratifiedKFold(n_splits={self.n_splits}) needs at least "
                f"{self.n_splits} labeled rows (y != -1) of each class, so that "
                f"every test fold holds each class: {', '.join(short)}. Label more "
                "rows, or use fewer splits"
            )
        return codes

    def get_n_splits(self, X=None, y=None, groups=None):
        """Return the number of splitting iterations, ``n_splits``.

        Parameters
        ----------
        X, y, groups : object
            Always ignored, exist for compatibility.

        Returns
        -------
        n_splits : int
        """
        return self.n_splits
