"""Helpers shared by the ``boostmis`` subcommands: output files, standardisation,
metrics, the learning-curve plot and the collapse notes."""

import io
import json
import os
import sys
import warnings
from contextlib import contextmanager

import numpy as np

from .._utils import atomic_write

CURVE_PNG = "learning_curve.png"


def check_writable(path, folder):
    """Refuse, before any training, an output path that cannot be written:
    ``path`` is the output folder (``folder=True``) or file."""
    if not path:
        raise ValueError("--out must not be empty")
    if folder and os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"--out {path} is a file, not a folder")
    if not folder and os.path.isdir(path):
        raise ValueError(f"--out {path} is a folder: give a file name")
    existing = os.path.abspath(path if folder else os.path.dirname(path) or ".")
    while not os.path.exists(existing):  # the nearest folder that exists
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise ValueError(f"--out {path}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"--out {path}: no permission to write in {existing}")


def write_json(path, obj):
    atomic_write(path, json.dumps(obj, indent=2) + "\n")


def save_figure_atomic(fig, path):
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    atomic_write(path, buf.getvalue())


def say(message):
    print(message, file=sys.stderr, flush=True)


def make_estimator(settings, device, n_jobs=None):
    """The classifier of ``run`` and ``query`` from their settings (``seed``,
    ``max_epochs``, ...), printing the progress of long fits."""
    from .. import BoostMISClassifier
    from ..progress import FitProgress

    return BoostMISClassifier(
        max_epochs=settings["max_epochs"],
        max_steps=option_value(settings["max_steps"]),
        random_state=settings["seed"],
        device=device,
        class_weight=option_value(settings["class_weight"]),
        prior_correction=option_value(settings["prior_correction"]),
        class_prior=settings.get("class_prior"),
        callbacks=[FitProgress(prefix="  training", sink=say)],
        n_jobs=n_jobs,
    )


def check_class_prior_option(settings, names):
    """Refuse a ``--class-prior`` the fit would refuse, before anything is written."""
    class_prior = settings.get("class_prior")
    if class_prior is None:
        return
    if len(class_prior) != len(names):
        raise ValueError(
            f"--class-prior needs one share per grade ({len(names)}: "
            f"{', '.join(map(str, names))}), got {len(class_prior)}"
        )
    if settings["prior_correction"] == "none":
        raise ValueError(
            "--class-prior is used by the prior correction: leave it out with "
            "--prior-correction none"
        )


def option_value(text):
    """A choice such as ``--class-weight`` as the estimator's value: "none" is None."""
    return None if text == "none" else text


def fit_scaler(X_train):
    """The train split's standardisation (AUS eps is in feature units)."""
    from sklearn.preprocessing import StandardScaler

    return StandardScaler().fit(X_train)


def standardize(X_train, *others, scaler=None):
    """``X_train`` and ``others`` standardised with ``scaler`` (default: fitted on
    ``X_train``), as float32."""
    scaler = fit_scaler(X_train) if scaler is None else scaler
    return [scaler.transform(X).astype(np.float32) for X in (X_train, *others)]


def classification_metrics(y_true, y_pred, names):
    """Accuracy, macro P/R/F1, per-class recall and row-normalised confusion."""
    from sklearn.metrics import (
        accuracy_score,
        confusion_matrix,
        precision_recall_fscore_support,
    )

    labels = list(range(len(names)))
    p, r, f, _ = precision_recall_fscore_support(
        y_true, y_pred, average="macro", zero_division=0
    )
    cm = confusion_matrix(y_true, y_pred, labels=labels).astype(float)
    support = cm.sum(axis=1)
    norm = np.divide(
        cm, support[:, None], out=np.zeros_like(cm), where=support[:, None] > 0
    )
    recall = {
        name: (float(norm[i, i]) if support[i] > 0 else None)
        for i, name in enumerate(names)
    }
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_precision": float(p),
        "macro_recall": float(r),
        "macro_f1": float(f),
        "per_class_recall": recall,
        "prediction_share": {
            name: float(np.mean(np.asarray(y_pred) == i))
            for i, name in enumerate(names)
        },
        "confusion_matrix": np.round(norm, 6).tolist(),
    }


@contextmanager
def collapse_warnings_summarised():
    """Silence ``PseudoLabelCollapseWarning`` inside: the commands report each
    fit's ``collapsed_classes_`` in their own lines instead of a raw warning."""
    from ..diagnostics import PseudoLabelCollapseWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PseudoLabelCollapseWarning)
        yield


def collapse_note(classes, names):
    """``"; pseudo-label collapse: <names>"`` for a fit's collapsed classes, or ""."""
    if not classes:
        return ""
    return "; pseudo-label collapse: " + ", ".join(names[c] for c in classes)
