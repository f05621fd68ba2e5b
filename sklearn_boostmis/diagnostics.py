"""Warnings about a semi-supervised fit that went wrong.

With few labels or strong class imbalance, the consistency loss can feed the
model's own predictions back to it until a class is (almost) never
pseudo-labeled (confirmation bias). :func:`warn_on_collapse` says so at the end
of ``fit``; see the user guide (:ref:`user-guide-imbalance`).
"""

import warnings

import numpy as np


class PseudoLabelCollapseWarning(UserWarning):
    """A class almost never received a pseudo-label although it is labeled.

    Raised by :meth:`BoostMISClassifier.fit
    <sklearn_boostmis.BoostMISClassifier.fit>` when a class's share among the
    accepted pseudo-labels, and among the predictions on the unlabeled rows,
    are both below a tenth of its share among the labeled rows. Late in an
    annotation loop it can name a class that is merely gone from the pool; see
    the user guide (:ref:`user-guide-imbalance`), also for how to filter it.
    """


#: A class is starved below this fraction of its labeled share.
STARVED_FRACTION = 0.1


def starved_classes(
    labeled, pseudo, n_classes, fraction=STARVED_FRACTION, min_expected=5
):
    """Classes whose pseudo-label share fell below ``fraction`` of their label share.

    Parameters
    ----------
    labeled : array-like of int
        Encoded classes of the labeled rows.
    pseudo : array-like of int
        Encoded classes of the accepted pseudo-labels (unlabeled rows that
        passed the threshold).
    n_classes : int
    fraction : float, default=0.1
        A class is starved when ``share among pseudo < fraction * share among
        labeled``.
    min_expected : float, default=5
        Only classes expected to get at least this many pseudo-labels (their
        label share times the number of pseudo-labels) are judged: with fewer,
        the shares say little. Every class is judged when all of at least
        ``4 * min_expected`` pseudo-labels are of one class: the pseudo-labels
        have degenerated, even where the labeled shares (e.g. 40 / 1 / 1 labels)
        expected few of the other classes.

    Returns
    -------
    starved : list of tuple (int, float, float)
        ``(class index, share among labeled, share among pseudo-labels)``.

    Examples
    --------
    >>> starved_classes([0] * 90 + [1] * 10, [0] * 400 + [1] * 2, 2)
    [(1, 0.1, 0.004975...)]
    >>> starved_classes([0] * 90 + [1] * 10, [0] * 380 + [1] * 20, 2)
    []
    >>> starved_classes([0] * 40 + [1, 2], [0] * 100, 3)  # one class only
    [(1, 0.0238..., 0.0), (2, 0.0238..., 0.0)]
    """
    labeled = np.asarray(labeled, dtype=int)
    pseudo = np.asarray(pseudo, dtype=int)
    for name, codes in (("labeled", labeled), ("pseudo", pseudo)):
        if codes.size and not 0 <= codes.min() <= codes.max() < n_classes:
            raise ValueError(
                f"{name} must hold encoded classes in [0, {n_classes}), got "
                f"values from {codes.min()} to {codes.max()}"
            )
    if len(labeled) == 0 or len(pseudo) == 0:
        return []
    label_share = np.bincount(labeled, minlength=n_classes) / len(labeled)
    pseudo_share = np.bincount(pseudo, minlength=n_classes) / len(pseudo)
    one_class = len(pseudo) >= 4 * min_expected and np.count_nonzero(pseudo_share) == 1
    judged = one_class | (label_share * len(pseudo) >= min_expected)
    starved = judged & (pseudo_share < fraction * label_share)
    return [
        (int(c), float(label_share[c]), float(pseudo_share[c]))
        for c in np.flatnonzero(starved)
    ]


def warn_on_collapse(classes, labeled, pseudo, predict_unlabeled, stacklevel=3):
    """Emit a :class:`PseudoLabelCollapseWarning` for each collapsed class.

    A class has collapsed when it is starved among the pseudo-labels
    (:func:`starved_classes`) *and* the model predicts it for fewer than a
    tenth of its labeled share of the unlabeled rows. The second test tells a
    collapse from a class that is merely never confident yet (e.g. the middle
    class of iris after a few epochs), and costs a prediction pass only when
    the first one fires.

    Parameters
    ----------
    classes : ndarray
        The estimator's ``classes_`` (decodes the class indices).
    labeled, pseudo : array-like of int
        As in :func:`starved_classes`.
    predict_unlabeled : callable
        ``() -> encoded predicted classes of the unlabeled rows``.
    stacklevel : int, default=3
        Passed to :func:`warnings.warn` (3: the caller of the function that
        calls this one).

    Returns
    -------
    collapsed : list
        The labels (elements of ``classes``) it warned about.
    """
    suspects = starved_classes(labeled, pseudo, len(classes))
    collapsed = []
    if not suspects:
        return collapsed
    predicted = np.asarray(predict_unlabeled(), dtype=int)
    predicted_share = np.bincount(predicted, minlength=len(classes)) / len(predicted)
    for c, label_share, pseudo_share in suspects:
        if predicted_share[c] >= STARVED_FRACTION * label_share:
            continue
        label = classes[c].item() if hasattr(classes[c], "item") else classes[c]
        collapsed.append(label)
        warnings.warn(
            f"class {label!r} is {label_share:.1%} of the labeled rows but only "
            f"{pseudo_share:.1%} of the {len(pseudo)} pseudo-labels and "
            f"{predicted_share[c]:.1%} of the predictions on the {len(predicted)} "
            "unlabeled rows: the consistency loss has pushed the model away "
            "from it (confirmation bias, most likely with very few labels or "
            "strong class imbalance). Compare this class's recall with the labels "
            "only (lambda_u=0); with imbalance try class_weight='balanced'; more "
            "labels of this class (an annotation round) usually repair it.",
            PseudoLabelCollapseWarning,
            stacklevel=stacklevel,
        )
    return collapsed
