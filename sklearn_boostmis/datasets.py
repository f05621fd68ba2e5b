"""The MESCC feature release (method page, :ref:`method-mescc`): :func:`load_mescc`
reads and checks a release folder;
:func:`~sklearn_boostmis.datasets.make_mescc_like` generates SYNTHETIC data with
the release's split sizes and class counts (the real data is not public) and
:func:`write_mescc_like` writes it as the six ``.npy`` files, for tests, demos
and speed benchmarks.
"""

import os
import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.utils import Bunch
from sklearn.utils._param_validation import Interval, validate_params

__all__ = [
    "MESCCFormatError",
    "SIX_GRADE_NAMES",
    "TWO_GRADE_NAMES",
    "load_mescc",
    "make_mescc_like",
    "six_to_two",
    "write_mescc_like",
]

SPLITS = ("train", "val", "test")
SIX_GRADE_NAMES = ("b0", "b1a", "b1b", "b1c", "b2", "b3")
TWO_GRADE_NAMES = ("low", "high")

# The release's class counts b0..b3 per split (method page, :ref:`method-mescc`).
MESCC_CLASS_COUNTS = {
    "train": (3752, 409, 483, 224, 136, 203),
    "val": (756, 73, 88, 50, 23, 21),
    "test": (849, 82, 51, 39, 30, 26),
}
_TASKS = ("two", "six")


class MESCCFormatError(ValueError):
    """A MESCC file exists but its content is not usable (the message names it)."""


def six_to_two(y):
    """Bilsky grouping: 0, 1, 2 (b0, b1a, b1b) -> 0 (low); 3, 4, 5 -> 1 (high).

    -1 (an unlabeled row) stays -1; any other value is refused.

    Examples
    --------
    >>> six_to_two([0, 2, 3, 5, -1]).tolist()
    [0, 0, 1, 1, -1]
    """
    y = np.asarray(y)
    bad = ~np.isin(y, [-1, 0, 1, 2, 3, 4, 5])
    if bad.any():
        raise ValueError(
            f"six_to_two takes grades 0..5 and -1 (unlabeled), got "
            f"{np.unique(y[bad])[:5].tolist()}"
        )
    return np.where(y == -1, -1, y >= 3).astype(np.int64)


def _check_task(task):
    if task not in _TASKS:
        raise ValueError(f"unknown task {task!r}: use 'two' or 'six'")


def split_paths(path, split):
    """The (features, targets) file paths of one split."""
    stem = os.path.join(os.fspath(path), split)
    return f"{stem}-features.npy", f"{stem}-targets.npy"


def _unreadable_reason(file, exc):
    """Why ``np.load(file, allow_pickle=False)`` raised ``exc``, in words that
    do not repeat numpy's advice to allow pickles (loading one runs code)."""
    if os.path.getsize(file) == 0:
        return "the file is empty"
    with open(file, "rb") as f:
        try:
            version = np.lib.format.read_magic(f)
        except ValueError:
            return "it does not start with the .npy header"
        # read_array_header_2_0 parses version 3.0 headers as well (utf-8 text
        # read as latin-1: only non-ASCII field names would come out garbled).
        read_header = (
            np.lib.format.read_array_header_1_0
            if version == (1, 0)
            else np.lib.format.read_array_header_2_0
        )
        try:
            dtype = read_header(f)[2]
        except ValueError:
            dtype = None
    if dtype is not None and dtype.hasobject:
        return (
            "it holds Python objects, which are never loaded from a file: "
            "save a numeric array"
        )
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _load_array(file):
    if not os.path.isfile(file):
        raise FileNotFoundError(f"missing file {file}")
    try:
        array = np.load(file, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        reason = _unreadable_reason(file, exc)
        msg = f"{file}: not a valid .npy array file ({reason})"
        raise MESCCFormatError(msg) from exc
    if not isinstance(array, np.ndarray):  # an .npz archive under an .npy name
        array.close()
        raise MESCCFormatError(f"{file}: expected a single .npy array, got an archive")
    return array


def load_features(file):
    """Read one ``<split>-features.npy``: a finite, numeric 2-D array (float32).

    Raises
    ------
    FileNotFoundError
        If the file is missing.
    MESCCFormatError
        If it is not a 2-D numeric array with at least one row, or holds NaN/inf.
    """
    X = _load_array(file)
    if X.dtype.kind not in "fiu":
        raise MESCCFormatError(f"{file}: features must be numeric, got dtype {X.dtype}")
    if X.ndim != 2:
        raise MESCCFormatError(
            f"{file}: features must be 2-D (n_samples, n_features), got shape {X.shape}"
        )
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise MESCCFormatError(f"{file}: features are empty (shape {X.shape})")
    X = X.astype(np.float32, copy=False)
    if not np.isfinite(X).all():
        bad = int((~np.isfinite(X)).any(axis=1).sum())
        raise MESCCFormatError(f"{file}: features hold NaN or inf in {bad} row(s)")
    return X


def _load_targets(file):
    y = _load_array(file)
    if y.dtype.kind not in "fiu":
        raise MESCCFormatError(f"{file}: targets must be numeric, got dtype {y.dtype}")
    if y.ndim != 1:
        raise MESCCFormatError(f"{file}: targets must be 1-D, got shape {y.shape}")
    if y.dtype.kind == "f":
        if not np.isfinite(y).all():
            raise MESCCFormatError(f"{file}: targets hold NaN or inf")
        if not np.array_equal(y, np.round(y)):
            raise MESCCFormatError(f"{file}: targets must be whole numbers (grades)")
    y = y.astype(np.int64)
    bad = np.unique(y[(y < 0) | (y > 5)])
    if bad.size:
        raise MESCCFormatError(
            f"{file}: targets must be grades 0..5 (six-grading) or 0/1 "
            f"(two-grading), found {bad[:5].tolist()}"
        )
    return y


def grade_names(task):
    """Class names of ``task`` (``"six"`` or ``"two"``), in label order."""
    return list(SIX_GRADE_NAMES if task == "six" else TWO_GRADE_NAMES)


def _bunch(data, task, synthetic):
    """The split arrays ``data`` with ``target_names``, ``task`` and ``DESCR``."""
    descr = [
        "SYNTHETIC stand-in for the MESCC feature release (not real images or "
        "features: class-dependent Gaussian clusters through a ReLU)."
        if synthetic
        else "MESCC feature release (ResNet-50 features of MRI slices).",
        f"Task: {task}-grading; classes " + ", ".join(grade_names(task)) + ".",
        *(f"{split}: {len(data[f'y_{split}'])} samples" for split in SPLITS),
    ]
    return Bunch(
        **data, target_names=grade_names(task), task=task, DESCR="\n".join(descr)
    )


def _warn_on_two_grade_splits(path, data):
    """Warn about a sizeable 0/1-only split beside six-grade ones (see load_mescc)."""
    for split in SPLITS:
        y = data[f"y_{split}"]
        if len(y) >= 20 and y.max() <= 1 and (y == 1).any():
            t_file = split_paths(path, split)[1]
            warnings.warn(
                f"{t_file} holds labels 0 and 1 only while other splits hold six "
                "grades: its 1s are read as b1a (low in two-grading). If this "
                "split is two-grade, give it six-grade targets like the others.",
                UserWarning,
                stacklevel=3,
            )


def load_mescc(path, task="two"):
    """Load and check a MESCC feature folder.

    Parameters
    ----------
    path : str or path-like
        Folder with ``{train,val,test}-features.npy`` and
        ``{train,val,test}-targets.npy``.
    task : {"two", "six"}, default="two"
        ``"six"``: Bilsky grades 0..5 (needs six-grade targets). ``"two"``:
        0 = low (b0, b1a, b1b), 1 = high (b1c, b2, b3); six-grade targets are
        grouped, two-grade targets are used as they are.

    Returns
    -------
    data : sklearn.utils.Bunch
        ``X_train, y_train, X_val, y_val, X_test, y_test`` (features float32,
        targets int64), ``target_names``, ``task`` and ``DESCR``.

    Raises
    ------
    FileNotFoundError
        If the folder or one of the six files is missing (the message names it).
    MESCCFormatError
        (a ValueError) if a file is unreadable, not numeric, of the wrong
        shape, holds NaN/inf or labels outside 0..5, if features and targets
        differ in length or the splits differ in their number of features,
        or if ``task="six"`` is asked of two-grade targets.
    ValueError
        If ``task`` is unknown.

    Notes
    -----
    Targets are two-grade when no split holds a label above 1; otherwise they
    are six-grade, and a split of 20 rows or more with labels 0 and 1 only
    gives a warning (probably two-grade, and read as b0/b1a). Files are read
    with ``allow_pickle=False``.
    """
    _check_task(task)
    if os.path.isfile(path):
        raise MESCCFormatError(f"{os.fspath(path)} is a file, not a MESCC data folder")
    if not os.path.isdir(path):
        raise FileNotFoundError(f"MESCC data folder not found: {os.fspath(path)}")
    data, n_features, first = {}, None, None
    for split in SPLITS:
        f_file, t_file = split_paths(path, split)
        X, y = load_features(f_file), _load_targets(t_file)
        if X.shape[0] != y.shape[0]:
            raise MESCCFormatError(
                f"{t_file}: {y.shape[0]} targets but {f_file} has {X.shape[0]} rows"
            )
        if n_features is None:
            n_features, first = X.shape[1], f_file
        elif X.shape[1] != n_features:
            raise MESCCFormatError(
                f"{f_file}: {X.shape[1]} features but {first} has {n_features}"
            )
        data[f"X_{split}"], data[f"y_{split}"] = X, y
    six_grade = any(data[f"y_{s}"].max() > 1 for s in SPLITS)
    if six_grade:
        _warn_on_two_grade_splits(path, data)
    if task == "six" and not six_grade:
        raise MESCCFormatError(
            f"{os.fspath(path)}: task 'six' needs six-grade targets (0..5), but "
            "every *-targets.npy holds two-grade labels (0/1) only"
        )
    if task == "two" and six_grade:
        for split in SPLITS:
            data[f"y_{split}"] = six_to_two(data[f"y_{split}"])
    return _bunch(data, task, synthetic=False)


@validate_params(
    {
        "n_features": [Interval(Integral, 1, None, closed="left")],
        "scale": [Interval(Real, 0, None, closed="neither")],
        # random_state: anything numpy's default_rng takes; task: checked
        # below, with the CLI's message
    },
    prefer_skip_nested_validation=True,
)
def make_mescc_like(n_features=2048, scale=1.0, random_state=0, task="six"):
    """SYNTHETIC data with the MESCC release's split sizes and class counts.

    Not real data: each Bilsky grade is a Gaussian cluster in feature space,
    passed through a ReLU so that features are non-negative and sparse like
    ResNet-50 pooled features. Grade centres lie along a random path (each
    grade one step from the previous), so neighbouring grades overlap more
    than distant ones; difficulty does not depend on ``n_features``.

    Parameters
    ----------
    n_features : int, default=2048
    scale : float, default=1.0
        Multiplies each (split, class) count of the MESCC release; a count
        becomes ``max(1, floor(count * scale + 0.5))`` (round half up, at
        least one sample per class and split). ``scale=1`` gives exactly
        5207 / 1011 / 1077 rows.
    random_state : int or None, default=0
    task : {"six", "two"}, default="six"
        ``"two"`` groups the grades (0, 1, 2 -> 0; 3, 4, 5 -> 1).

    Returns
    -------
    data : sklearn.utils.Bunch
        Same fields as :func:`load_mescc`; ``DESCR`` says SYNTHETIC.

    Examples
    --------
    >>> data = make_mescc_like(n_features=16, scale=0.1)
    >>> data.X_train.shape, int((data.y_train == 5).sum())
    ((520, 16), 20)
    """
    _check_task(task)
    rng = np.random.default_rng(random_state)
    n_features = int(n_features)
    base = rng.normal(0.3, 0.5, n_features)
    steps = rng.normal(size=(6, n_features)) * (3.0 / np.sqrt(n_features))
    centers = (base + np.cumsum(steps, axis=0)).astype(np.float32)
    data = {}
    for split in SPLITS:
        counts = MESCC_CLASS_COUNTS[split]
        n_per_class = [max(1, int(np.floor(c * scale + 0.5))) for c in counts]
        y = np.repeat(np.arange(6, dtype=np.int64), n_per_class)
        y = y[rng.permutation(y.size)]
        noise = rng.standard_normal((y.size, n_features), dtype=np.float32)
        X = np.maximum(centers[y] + noise, 0.0).astype(np.float32)
        data[f"X_{split}"] = X
        data[f"y_{split}"] = six_to_two(y) if task == "two" else y
    return _bunch(data, task, synthetic=True)


def write_mescc_like(directory, **kwargs):
    """Write ``make_mescc_like`` data as the six MESCC ``.npy`` files.

    Parameters
    ----------
    directory : str or path-like
        Created if needed.
    **kwargs
        Passed to :func:`~sklearn_boostmis.datasets.make_mescc_like`
        (``task="six"`` writes six-grade targets, which :func:`load_mescc` can
        serve for both tasks).

    Returns
    -------
    directory : str
    """
    data = make_mescc_like(**kwargs)
    directory = os.fspath(directory)
    os.makedirs(directory, exist_ok=True)
    for split in SPLITS:
        f_file, t_file = split_paths(directory, split)
        np.save(f_file, data[f"X_{split}"])
        np.save(t_file, data[f"y_{split}"])
    return directory
