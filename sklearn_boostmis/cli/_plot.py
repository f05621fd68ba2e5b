"""The ``learning_curve.png`` of ``boostmis run`` and ``boostmis demo``.

Accuracy alone flatters a model of imbalanced data that predicts the majority
class only (0.912 on the two-grade MESCC split): the figure puts balanced
accuracy and macro-F1 beside it, each panel with the score of that majority
predictor as a dashed line, on the full 0..1 scale, and marks the fits that
collapsed.
"""

import math
from typing import NamedTuple

import numpy as np

from ._common import classification_metrics, save_figure_atomic

#: The panels, in order: (CurvePoint field, axis label).
PANELS = (
    ("accuracy", "test accuracy"),
    ("balanced_accuracy", "test balanced accuracy"),
    ("macro_f1", "test macro-F1"),
)
BASELINE_LABEL = "always the majority class"
_MARKS = {  # CurvePoint flag: how its points are marked, and the legend's words
    "pseudo_label_collapse": dict(
        marker="o",
        s=160,
        facecolors="none",
        edgecolors="tab:red",
        linewidths=1.5,
        label="pseudo-label collapse warned",
    ),
    "one_class": dict(marker="X", s=90, color="black", label="predicts a single class"),
}


class CurvePoint(NamedTuple):
    """One fit of a learning curve; ``balanced_accuracy`` None (predictions not
    at hand) leaves its panel out, and the two flags mark a collapsed fit."""

    n_labeled: int
    accuracy: float
    macro_f1: float
    balanced_accuracy: float | None = None
    pseudo_label_collapse: bool = False
    one_class: bool = False


def majority_baseline(y_true, names):
    """The ``accuracy``, ``balanced_accuracy`` and ``macro_f1`` (as a dict,
    computed as the curves' points are) of predicting the majority class of
    ``y_true`` (encoded labels, in ``[0, len(names))``) for every row."""
    y_true = np.asarray(y_true)
    majority = np.bincount(y_true, minlength=len(names)).argmax()
    metrics = classification_metrics(y_true, np.full_like(y_true, majority), names)
    return {
        "accuracy": metrics["accuracy"],
        "balanced_accuracy": balanced_accuracy(metrics["per_class_recall"]),
        "macro_f1": metrics["macro_f1"],
    }


def balanced_accuracy(per_class_recall):
    """Mean recall over the classes present in the test labels (None entries:
    classes absent there), as :func:`sklearn.metrics.balanced_accuracy_score`."""
    present = [r for r in per_class_recall.values() if r is not None]
    return float(np.mean(present))


def learning_curve_figure(series, title, baseline=None):
    """A matplotlib Figure of test scores against labeled rows, one panel per
    metric: a curve per name of ``series`` (lists of :class:`CurvePoint`), and
    ``baseline`` (:func:`majority_baseline`) as a dashed line."""
    from matplotlib.figure import Figure

    panels = [
        (field, label)
        for field, label in PANELS
        if all(
            getattr(p, field) is not None for points in series.values() for p in points
        )
    ]
    fig = Figure(figsize=(4.2 * len(panels), 4.3))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (field, label) in zip(axes, panels, strict=True):
        for i, (name, points) in enumerate(series.items()):
            values = [getattr(p, field) for p in points]
            n = [p.n_labeled for p in points]
            ax.plot(n, values, marker="o", color=f"C{i}", label=name)
            _mark_collapses(ax, points, field)
        if baseline is not None and baseline.get(field) is not None:
            _draw_baseline(ax, baseline[field])
        ax.set_ylim(-0.02, 1.02)  # a zoomed axis makes 0.91 vs 0.93 look large
        ax.set_xlabel("labeled samples")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    handles = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    fig.suptitle(title)
    fig.tight_layout()
    # below the panels; the PNG is saved with bbox_inches="tight", which keeps it
    fig.legend(
        handles.values(),
        handles.keys(),
        loc="upper center",
        bbox_to_anchor=(0.5, 0.0),
        ncol=math.ceil(len(handles) / math.ceil(len(handles) / 4)),  # rows of <= 4
        frameon=False,
    )
    return fig


def _mark_collapses(ax, points, field):
    for flag, style in _MARKS.items():
        marked = [p for p in points if getattr(p, flag)]
        if marked:
            ax.scatter(
                [p.n_labeled for p in marked],
                [getattr(p, field) for p in marked],
                zorder=3,
                **style,
            )


def _draw_baseline(ax, value):
    ax.axhline(value, color="grey", linestyle="--", label=BASELINE_LABEL)
    ax.annotate(  # its value, right of the panel, where no point can hide it
        f"{value:.3f}",
        xy=(1, value),
        xycoords=("axes fraction", "data"),
        xytext=(3, 0),
        textcoords="offset points",
        ha="left",
        va="center",
        color="grey",
        fontsize=8,
    )


def plot_learning_curves(series, path, title, baseline=None):
    """Write :func:`learning_curve_figure` to ``path`` as a PNG (atomically)."""
    save_figure_atomic(learning_curve_figure(series, title, baseline), path)
