"""Shared helpers of the benchmark scripts: data splits, machine info, RESULTS.md."""

import datetime
import os
import platform
import re
import time
import warnings
from pathlib import Path

import numpy as np
import sklearn
import skorch
import torch
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

RESULTS = Path(__file__).with_name("RESULTS.md")
LOADERS = {"digits": load_digits, "breast_cancer": load_breast_cancer}


def few_label_split(name, n_labels, seed, test_size=0.3):
    """Standardised train/test split with ``n_labels`` labels, balanced by class.

    Returns ``X_train, y_partial, y_train, X_test, y_test``; ``y_partial`` is -1
    on the unlabeled training rows.
    """
    X, y = LOADERS[name](return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=test_size, stratify=y, random_state=seed
    )
    scaler = StandardScaler().fit(X_train)
    X_train = scaler.transform(X_train).astype(np.float32)
    X_test = scaler.transform(X_test).astype(np.float32)
    rng = np.random.RandomState(seed)
    classes = np.unique(y_train)
    y_partial = np.full_like(y_train, -1)
    per_class = n_labels // len(classes)
    for c in classes:
        keep = rng.choice(np.flatnonzero(y_train == c), per_class, replace=False)
        y_partial[keep] = y_train[keep]
    return X_train, y_partial, y_train, X_test, y_test


def fit_and_score(model, X, y_partial, X_test, y_test):
    """Fit ``model`` and return its test macro-F1, accuracy and fit seconds.

    Convergence and numpy warnings of few-label fits are silenced.
    """
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        model.fit(X, y_partial)
    seconds = time.perf_counter() - start
    pred = model.predict(X_test)
    f1 = f1_score(y_test, pred, average="macro")
    return f1, accuracy_score(y_test, pred), seconds


def paired_difference(a, b, reading=True):
    """``a - b`` over paired runs: "mean +- standard error (reading)", where the
    reading is "tie" unless the mean is more than two standard errors from 0."""
    diff = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    stderr = diff.std(ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else np.nan
    if not reading:
        return f"{diff.mean():+.3f} +- {stderr:.3f}"
    if not abs(diff.mean()) > 2 * stderr:  # also with one run (NaN)
        reading = "tie"
    else:
        reading = "higher" if diff.mean() > 0 else "lower"
    return f"{diff.mean():+.3f} +- {stderr:.3f} ({reading})"


def paired_against(reference, others):
    """``reference`` minus each of ``others`` (name -> values over the same seeds):
    "paired over the n seeds (the rule): name diff; ...", as a sentence's end."""
    return (
        f"paired over the {len(reference)} seeds (mean +- standard error; a tie "
        "unless more than two standard errors from 0): "
        + "; ".join(
            f"{name} {paired_difference(reference, values)}"
            for name, values in others.items()
        )
    )


def machine_info():
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU only"
    return (
        f"{platform.platform()}, {os.cpu_count()} cores, {device}; Python "
        f"{platform.python_version()}, torch {torch.__version__}, skorch "
        f"{skorch.__version__}, scikit-learn {sklearn.__version__}; "
        f"{datetime.date.today().isoformat()}"
    )


def write_section(name, body):
    """Replace the ``name`` section of RESULTS.md (between its markers).

    The section starts with an ``<a id="name">`` anchor, the target of the
    header's links (``run_all.py``).
    """
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    block = f'{start}\n<a id="{name}"></a>\n{body.rstrip()}\n{end}'
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.DOTALL)
    text = (
        pattern.sub(lambda _: block, text)
        if pattern.search(text)
        else (text.rstrip() + "\n\n" + block + "\n")
    )
    RESULTS.write_text(text)


def markdown_table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def git_revision():
    """Short HEAD commit, ``+dirty`` when sklearn_boostmis/ has uncommitted changes."""
    import subprocess

    def git(*args):
        return subprocess.run(
            ["git", *args],
            capture_output=True,
            text=True,
            cwd=Path(__file__).parent,
            check=False,
        ).stdout.strip()

    rev = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--", "../sklearn_boostmis")
    return rev + ("+dirty" if dirty else "")
