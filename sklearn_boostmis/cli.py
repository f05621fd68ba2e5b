"""The ``boostmis`` command line: ``demo``, ``run`` and ``query``.

``boostmis demo`` runs the closed loop on scikit-learn's bundled digits beside
two baselines; ``boostmis run DATA_DIR`` runs (or resumes) the closed loop on a
MESCC feature folder with a simulated oracle; ``boostmis query DATA_DIR`` trains
on a person's labels and writes the next rows to label. Bad input ends with
one ``error: ...`` line on stderr and exit status 2.
"""

import argparse
import csv
import io
import json
import os
import sys
import time
import warnings

import numpy as np

from ._io import atomic_write
from .datasets import (
    _grade_names,
    load_features,
    load_mescc,
    split_paths,
)

__all__ = ["main"]

CONFIG_NAME = "config.json"
REPORT_JSON = "report.json"
REPORT_MD = "report.md"
CURVE_PNG = "learning_curve.png"
WEIGHTS_NAME = "model.safetensors"
# Settings that must not change when a run folder is resumed.
_RESUME_KEYS = (
    "task",
    "seed",
    "initial_labels",
    "budget",
    "max_epochs",
    "class_weight",
    "n_train",
    "n_features",
)
_RESUME_DEFAULTS = {"class_weight": "none"}  # runs from before the option existed


# -- small helpers -------------------------------------------------------------
def _write_json(path, obj):
    atomic_write(path, json.dumps(obj, indent=2) + "\n")


def _save_weights_atomic(estimator, path):
    from .persistence import save_weights

    tmp = f"{path}.tmp"
    save_weights(estimator, tmp)
    os.replace(tmp, path)


def _save_figure_atomic(fig, path):
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    atomic_write(path, buf.getvalue())


def _say(message):
    print(message, file=sys.stderr, flush=True)


def _non_negative_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {value}")
    return value


def _class_weight(args):
    """The estimator's ``class_weight`` from ``--class-weight``."""
    return None if args.class_weight == "none" else args.class_weight


def _positive_int(text):
    value = _non_negative_int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def _standardize(X_train, *others):
    """Standardise with the train split's statistics (AUS eps is in feature units)."""
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(X_train)
    return [scaler.transform(X).astype(np.float32) for X in (X_train, *others)]


def _metrics(y_true, y_pred, names):
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
        "confusion_matrix": np.round(norm, 6).tolist(),
    }


def _stratified_initial(y, n, seed):
    """``n`` row positions drawn stratified from ``y``, at least one per class."""
    classes, counts = np.unique(y, return_counts=True)
    if n < len(classes):
        raise ValueError(
            f"--initial-labels {n} is below the number of classes ({len(classes)}): "
            "every class needs one initial label"
        )
    if n >= len(y):
        raise ValueError(f"--initial-labels {n} must be below the {len(y)} train rows")
    share = n * counts / counts.sum()
    quota = np.minimum(np.maximum(1, np.floor(share)).astype(int), counts)
    while quota.sum() < n:  # largest remainder first
        gap = np.where(quota < counts, share - quota, -np.inf)
        quota[int(np.argmax(gap))] += 1
    while quota.sum() > n:  # the one-per-class floor overshot: trim the largest
        quota[int(np.argmax(np.where(quota > 1, quota, 0)))] -= 1
    rng = np.random.RandomState(seed)
    picks = [
        rng.choice(np.flatnonzero(y == c), q, replace=False)
        for c, q in zip(classes, quota, strict=True)
    ]
    return np.sort(np.concatenate(picks)).astype(np.int64)


# -- boostmis run ------------------------------------------------------------------
def _check_resume_config(out, config):
    path = os.path.join(out, CONFIG_NAME)
    if os.path.exists(path):
        try:
            with open(path) as f:
                old = json.load(f)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: unreadable run configuration ({exc})") from None
        for key in _RESUME_KEYS:
            previous = old.get(key, _RESUME_DEFAULTS.get(key))
            if previous != config[key]:
                raise ValueError(
                    f"{out} holds a run with {key}={previous!r}, not "
                    f"{config[key]!r}: resume with the same settings or use another "
                    "--out"
                )
    _write_json(path, config)


def _previous_entries(out):
    """Per-cycle entries (not the final fit) of an earlier report in ``out``."""
    path = os.path.join(out, REPORT_JSON)
    if not os.path.exists(path):
        return {}
    try:
        with open(path) as f:
            report = json.load(f)
    except json.JSONDecodeError:
        return {}  # recomputed where the model is still at hand
    return {e["cycle"]: e for e in report.get("cycles", []) if not e.get("final")}


def _report_md(report):
    cfg = report["config"]
    names = cfg["target_names"]
    lines = [
        "# BoostMIS closed-loop report",
        "",
        f"Data: `{cfg['data_dir']}` ({cfg['task']}-grading, "
        f"{cfg['n_train']} train rows, "
        f"{cfg['n_features']} features). Initial labels: {cfg['initial_labels']} "
        f"(stratified, seed {cfg['seed']}); budget K = {cfg['budget']} per selector "
        f"and cycle; {cfg['cycles']} cycle(s); max_epochs = {cfg['max_epochs']}; "
        "features standardised with train statistics; simulated oracle "
        "(train targets).",
        "",
        "Metrics on the TEST split, EMA teacher. Row `final` = fit after the last "
        "annotations.",
        "",
        "| cycle | labels | queried | threshold | accuracy | macro P | macro R | "
        "macro F1 | " + " | ".join(f"recall {n}" for n in names) + " |",
        "|" + "---|" * (8 + len(names)),
    ]
    fmt = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
    for e in report["cycles"]:
        label = "final" if e.get("final") else str(e["cycle"])
        recall = " | ".join(fmt(e["per_class_recall"][n]) for n in names)
        lines.append(
            f"| {label} | {e['n_labeled']} | {e['n_queried']} | {fmt(e['threshold'])} "
            f"| {fmt(e['accuracy'])} | {fmt(e['macro_precision'])} | "
            f"{fmt(e['macro_recall'])} | {fmt(e['macro_f1'])} | {recall} |"
        )
    collapsed = [
        ("final" if e.get("final") else str(e["cycle"]), e["collapsed_classes"])
        for e in report["cycles"]
        if e.get("collapsed_classes")
    ]
    if collapsed:
        lines += [
            "",
            "**Pseudo-label collapse** (`PseudoLabelCollapseWarning`: the class got "
            "under a tenth of its labeled share of the pseudo-labels and of the "
            "predictions on the unlabeled rows; compare with the labels only): "
            + "; ".join(
                f"cycle {label}: " + ", ".join(names[c] for c in classes)
                for label, classes in collapsed
            )
            + ".",
        ]
    last = report["cycles"][-1]
    lines += [
        "",
        "Normalised confusion matrix of the last row (rows: true, columns: predicted):",
        "",
        "| true \\ pred | " + " | ".join(names) + " |",
        "|" + "---|" * (1 + len(names)),
    ]
    for name, row in zip(names, last["confusion_matrix"], strict=True):
        lines.append(f"| {name} | " + " | ".join(f"{v:.3f}" for v in row) + " |")
    return "\n".join(lines) + "\n"


def _plot(series, path, title):
    """Accuracy and macro-F1 against labels; ``series`` = {name: [(n, acc, f1)]}."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for name, points in series.items():
        n, acc, f1 = (list(v) for v in zip(*points, strict=True))
        axes[0].plot(n, acc, marker="o", label=name)
        axes[1].plot(n, f1, marker="o", label=name)
    for ax, metric in zip(axes, ("accuracy", "macro-F1"), strict=True):
        ax.set_xlabel("labeled samples")
        ax.set_ylabel(f"test {metric}")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    _save_figure_atomic(fig, path)
    plt.close(fig)


def _final_fit(template, estimator, X, y, n_annotated, budget):
    """Warm-started fit on every answer, as AnnotationLoop's final fit does."""
    from .loop import _warm_start_params

    params = _warm_start_params(template.threshold, estimator, n_annotated, budget)
    return estimator.set_params(**params).fit(X, y)


def cmd_run(args):
    from . import AnnotationLoop, BoostMISClassifier, InformativeQuerySampler

    data = load_mescc(args.data_dir, args.task)
    out = args.out
    names = list(data.target_names)
    X_train, X_val, X_test = _standardize(data.X_train, data.X_val, data.X_test)
    y_train = data.y_train
    config = {
        "data_dir": os.path.abspath(args.data_dir),
        "task": args.task,
        "target_names": names,
        "cycles": args.cycles,
        "budget": args.budget,
        "initial_labels": args.initial_labels,
        "seed": args.seed,
        "max_epochs": args.max_epochs,
        "device": args.device,
        "class_weight": args.class_weight,
        "n_train": int(X_train.shape[0]),
        "n_features": int(X_train.shape[1]),
    }
    initial = _stratified_initial(y_train, args.initial_labels, args.seed)
    os.makedirs(out, exist_ok=True)
    _check_resume_config(out, config)
    y0 = np.full(len(y_train), -1, dtype=np.int64)
    y0[initial] = y_train[initial]
    estimator = BoostMISClassifier(
        max_epochs=args.max_epochs,
        random_state=args.seed,
        device=args.device,
        class_weight=_class_weight(args),
    )
    sampler = InformativeQuerySampler(random_state=args.seed)

    def oracle(indices):  # simulated annotator: the held-back train targets
        return y_train[indices]

    entries = _previous_entries(out)
    report = {"config": config, "initial_indices": initial.tolist(), "cycles": []}

    def write_report(complete):
        report["cycles"] = [entries[c] for c in sorted(entries)]
        report["complete"] = complete
        _write_json(os.path.join(out, REPORT_JSON), report)

    def evaluate(est):
        metrics = _metrics(data.y_test, est.predict(X_test), names)
        return {"split": "test", "n_test": int(len(data.y_test)), **metrics}

    loop = None
    for target in range(1, args.cycles + 1):
        start = time.perf_counter()
        loop = AnnotationLoop(
            estimator,
            sampler,
            oracle,
            n_cycles=target,
            budget=args.budget,
            final_fit=False,
            state_dir=out,
        ).fit(X_train, y0, X_val, data.y_val)
        if loop.start_cycle_ > target:
            raise ValueError(
                f"{out} already holds {loop.start_cycle_} annotation cycles: "
                f"pass --cycles {loop.start_cycle_} or more, or use another --out"
            )
        cycle = target - 1
        if loop.start_cycle_ == target and cycle in entries:
            _say(f"cycle {target}/{args.cycles}: done in an earlier run (resumed)")
            continue
        hist = next(h for h in loop.history_ if h["cycle"] == cycle)
        entries[cycle] = {
            "cycle": cycle,
            "final": False,
            "n_labeled": hist["n_labeled"],
            "n_queried": hist["n_queried"],
            "picks": hist["picks"],
            "threshold": hist["threshold"],
            "val_accuracy": hist["val_accuracy"],
            "val_macro_f1": hist["val_f1_macro"],
            "collapsed_classes": hist.get("collapsed_classes", []),
            **evaluate(loop.estimator_),
        }
        write_report(False)
        e = entries[cycle]
        _say(
            f"cycle {target}/{args.cycles}: fit on {e['n_labeled']} labels, "
            f"+{e['n_queried']} annotated; test accuracy {e['accuracy']:.3f}, "
            f"macro-F1 {e['macro_f1']:.3f} ({time.perf_counter() - start:.1f}s)"
        )
    start = time.perf_counter()
    est = _final_fit(
        estimator, loop.estimator_, X_train, loop.y_, loop.n_annotated_, args.budget
    )
    eps = est.threshold_history_
    val = _metrics(data.y_val, est.predict(X_val), names)
    entries = {c: e for c, e in entries.items() if c < args.cycles}
    entries[args.cycles] = {
        "cycle": args.cycles,
        "final": True,
        "n_labeled": int((loop.y_ != -1).sum()),
        "n_queried": 0,
        "picks": None,
        "threshold": float(eps[-1]) if len(eps) else None,
        "val_accuracy": val["accuracy"],
        "val_macro_f1": val["macro_f1"],
        "collapsed_classes": list(est.collapsed_classes_),
        **evaluate(est),
    }
    _save_weights_atomic(est, os.path.join(out, WEIGHTS_NAME))
    write_report(True)
    atomic_write(os.path.join(out, REPORT_MD), _report_md(report))
    points = [(e["n_labeled"], e["accuracy"], e["macro_f1"]) for e in report["cycles"]]
    _plot(
        {"BoostMIS": points},
        os.path.join(out, CURVE_PNG),
        f"BoostMIS closed loop, {args.task}-grading (test split)",
    )
    final = entries[args.cycles]
    _say(
        f"final fit on {final['n_labeled']} labels: test accuracy "
        f"{final['accuracy']:.3f}, macro-F1 {final['macro_f1']:.3f} "
        f"({time.perf_counter() - start:.1f}s); outputs in {out}"
    )
    return 0


# -- boostmis query ------------------------------------------------------------
def _read_labels(path, n_rows, names):
    """Validated (indices, codes) of a person's ``index,label`` CSV."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"labels file not found: {path}")
    codes = {str(i): i for i in range(len(names))} | {n: i for i, n in enumerate(names)}
    indices, labels, seen = [], [], {}
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows or [c.strip().lower() for c in rows[0]] != ["index", "label"]:
        got = ",".join(rows[0]) if rows else "an empty file"
        raise ValueError(
            f"{path}: the first line must be the header 'index,label', got {got!r}"
        )
    for line, row in enumerate(rows[1:], start=2):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != 2:
            raise ValueError(f"{path}: line {line} must hold index,label, got {row!r}")
        text_index, text_label = row[0].strip(), row[1].strip()
        try:
            index = int(text_index)
        except ValueError:
            raise ValueError(
                f"{path}: line {line}: index {text_index!r} is not an integer"
            ) from None
        if not 0 <= index < n_rows:
            raise ValueError(
                f"{path}: line {line}: unknown index {index} (train has "
                f"{n_rows} rows, 0..{n_rows - 1})"
            )
        if index in seen:
            raise ValueError(
                f"{path}: line {line}: duplicate index {index} (first on "
                f"line {seen[index]})"
            )
        if text_label not in codes:
            raise ValueError(
                f"{path}: line {line}: unknown class {text_label!r} (classes: "
                + ", ".join(f"{i}={n}" for i, n in enumerate(names))
                + ")"
            )
        seen[index] = line
        indices.append(index)
        labels.append(codes[text_label])
    if len(set(labels)) < 2:
        raise ValueError(
            f"{path}: labels of at least two classes are needed, got "
            f"{sorted(set(labels))}"
        )
    return np.asarray(indices, dtype=np.int64), np.asarray(labels, dtype=np.int64)


def cmd_query(args):
    from . import BoostMISClassifier, InformativeQuerySampler

    if not os.path.isdir(args.data_dir):
        raise FileNotFoundError(f"MESCC data folder not found: {args.data_dir}")
    if os.path.abspath(args.out) == os.path.abspath(args.labels):
        raise ValueError(
            f"--out {args.out} would overwrite the labels file: choose another path"
        )
    names = _grade_names(args.task)
    (X,) = _standardize(load_features(split_paths(args.data_dir, "train")[0]))
    indices, labels = _read_labels(args.labels, X.shape[0], names)
    y = np.full(X.shape[0], -1, dtype=np.int64)
    y[indices] = labels
    pool = np.flatnonzero(y == -1)
    if pool.size == 0:
        raise ValueError(f"{args.labels}: every train row is labeled; nothing to query")
    _say(f"training on {len(indices)} labels and {pool.size} unlabeled rows ...")
    clf = BoostMISClassifier(
        max_epochs=args.max_epochs,
        random_state=args.seed,
        device=args.device,
        class_weight=_class_weight(args),
    ).fit(X, y)
    sampler = InformativeQuerySampler(random_state=args.seed)
    k = min(args.budget, pool.size)
    union = sampler.select_union(clf, X[pool], k)
    picked = union.indices
    predicted = clf.predict(X[pool[picked]])
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["index", "score", "selector", "predicted_class"])
    rows = zip(picked, union.scores, union.picked_by(), predicted, strict=True)
    for pos, score, selector, pred in rows:
        writer.writerow([int(pool[pos]), f"{float(score):.6g}", selector, int(pred)])
    parent = os.path.dirname(os.path.abspath(args.out))
    os.makedirs(parent, exist_ok=True)
    atomic_write(args.out, buf.getvalue())
    _say(f"wrote {len(picked)} candidates to {args.out}")
    return 0


# -- boostmis demo -------------------------------------------------------------
class _RandomQuerySampler:
    """Random queries of given sizes (the random-query baseline)."""

    def __init__(self, sizes, random_state):
        self.sizes = list(sizes)
        self._rng = np.random.RandomState(random_state)
        self._calls = 0

    def select_union(self, classifier, X_pool, quota):
        from .query import QueryUnion

        n_pool = X_pool.shape[0]
        size = self.sizes[self._calls] if self._calls < len(self.sizes) else 2 * quota
        self._calls += 1
        idx = self._rng.choice(n_pool, min(size, n_pool), replace=False).astype(
            np.int64
        )
        none = np.zeros(idx.size, dtype=bool)
        return QueryUnion(indices=idx, from_aus=none, from_bus=none)


def cmd_demo(args):
    from sklearn.base import clone
    from sklearn.datasets import load_digits
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.model_selection import train_test_split

    from . import (
        AnnotationLoop,
        BoostMISClassifier,
        InformativeQuerySampler,
        PseudoLabelCollapseWarning,
    )

    t0 = time.perf_counter()
    cfg = (
        dict(cycles=2, budget=5, max_epochs=4, per_class=2)
        if args.quick
        else dict(cycles=4, budget=10, max_epochs=40, per_class=2)
    )
    X, y = load_digits(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(
        X, y, test_size=0.3, stratify=y, random_state=args.seed
    )
    X_tr, X_te = _standardize(X_tr, X_te)
    rng = np.random.RandomState(args.seed)
    y0 = np.full(len(y_tr), -1)
    for c in np.unique(y_tr):
        keep = rng.choice(np.flatnonzero(y_tr == c), cfg["per_class"], replace=False)
        y0[keep] = c
    print(
        f"BoostMIS demo on scikit-learn's digits ({len(y_tr)} pool / {len(y_te)} test "
        f"rows): {cfg['per_class']} labels per class to start, {cfg['cycles']} cycles, "
        f"budget K={cfg['budget']} per selector, max_epochs={cfg['max_epochs']}, "
        f"seed={args.seed}{' (quick)' if args.quick else ''}",
        flush=True,
    )
    base = BoostMISClassifier(max_epochs=cfg["max_epochs"], random_state=args.seed)

    def oracle(idx):
        return y_tr[idx]

    def run_loop(sampler, name):
        start = time.perf_counter()
        loop = AnnotationLoop(
            base, sampler, oracle, n_cycles=cfg["cycles"], budget=cfg["budget"]
        ).fit(X_tr, y0, X_te, y_te)
        _say(f"{name}: {len(loop.history_)} fits in {time.perf_counter() - start:.1f}s")
        return loop

    with warnings.catch_warnings():
        # reported once, after the table, from the loops' histories
        warnings.simplefilter("ignore", PseudoLabelCollapseWarning)
        boost = run_loop(
            InformativeQuerySampler(random_state=args.seed), "BoostMIS loop"
        )
        sizes = [h["n_queried"] for h in boost.history_[: cfg["cycles"]]]
        rand = run_loop(_RandomQuerySampler(sizes, args.seed), "random-query loop")
    supervised = []
    start = time.perf_counter()
    for h in boost.history_:
        y_c = y0.copy()
        done = boost.annotated_indices_[boost.annotation_cycles_ < h["cycle"]]
        y_c[done] = y_tr[done]
        clf = clone(base).set_params(lambda_u=0.0).fit(X_tr, y_c)
        pred = clf.predict(X_te)
        supervised.append(
            (
                int((y_c != -1).sum()),
                float(accuracy_score(y_te, pred)),
                float(f1_score(y_te, pred, average="macro")),
            )
        )
    _say(
        f"supervised-only baseline: {len(supervised)} fits in "
        f"{time.perf_counter() - start:.1f}s"
    )
    series = {
        "BoostMIS (SSL + AUS/BUS)": [
            (h["n_labeled"], h["val_accuracy"], h["val_f1_macro"])
            for h in boost.history_
        ],
        "random queries (SSL)": [
            (h["n_labeled"], h["val_accuracy"], h["val_f1_macro"])
            for h in rand.history_
        ],
        "supervised only (lambda_u=0)": supervised,
    }
    print(
        "\ncycle | labels | BoostMIS acc  F1   | random acc  F1     | "
        "supervised acc  F1"
    )
    for c, (b, r, s) in enumerate(zip(*series.values(), strict=True)):
        label = "final" if c == cfg["cycles"] else str(c)
        print(
            f"{label:>5} | {b[0]:>6} | {b[1]:.3f}  {b[2]:.3f}      | "
            f"{r[1]:.3f}  {r[2]:.3f}       | {s[1]:.3f}  {s[2]:.3f}"
            + ("" if r[0] == b[0] else f"  (random: {r[0]} labels)")
        )
    collapsed = {
        name: [[h["cycle"], h["collapsed_classes"]] for h in loop.history_]
        for name, loop in (("BoostMIS loop", boost), ("random-query loop", rand))
    }
    warned = [
        f"{name} cycle {cycle}: digit {', '.join(map(str, classes))}"
        for name, cycles in collapsed.items()
        for cycle, classes in cycles
        if classes
    ]
    if warned:
        print(
            "\npseudo-label collapse (PseudoLabelCollapseWarning: the class got "
            "under a tenth of its labeled share of the pseudo-labels and of the "
            "predictions on the unlabeled rows): " + "; ".join(warned)
        )
    os.makedirs(args.out, exist_ok=True)
    png = os.path.join(args.out, CURVE_PNG)
    _plot(series, png, "BoostMIS on digits: closed loop vs. baselines (test split)")
    _write_json(
        os.path.join(args.out, "results.json"),
        {
            "config": cfg | {"seed": args.seed, "dataset": "sklearn digits"},
            "series": {k: [list(p) for p in v] for k, v in series.items()},
            "collapsed_classes": collapsed,
        },
    )
    print(f"\nwrote {png} and results.json; total {time.perf_counter() - t0:.1f}s")
    return 0


# -- entry point ---------------------------------------------------------------
def _build_parser():
    parser = argparse.ArgumentParser(
        prog="boostmis",
        description="BoostMIS: semi-supervised learning with adaptive pseudo-labeling "
        "and informative active annotation.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser(
        "demo",
        help="closed loop vs. baselines on scikit-learn's digits",
        description="Run a few BoostMIS annotation cycles on scikit-learn's bundled "
        "digits beside a random-query and a supervised-only baseline; print a "
        "table and write learning_curve.png and results.json.",
    )
    demo.add_argument(
        "--out", default="boostmis_demo", help="output folder (default: %(default)s)"
    )
    demo.add_argument(
        "--seed", type=int, default=0, help="random seed (default: %(default)s)"
    )
    demo.add_argument(
        "--quick", action="store_true", help="tiny configuration (seconds)"
    )
    demo.set_defaults(func=cmd_demo)

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--seed", type=int, default=0, help="random seed (default: %(default)s)"
    )
    common.add_argument(
        "--max-epochs",
        type=_positive_int,
        default=100,
        help="epochs per fit (default: %(default)s)",
    )
    common.add_argument(
        "--class-weight",
        choices=["none", "balanced"],
        default="none",
        help="'balanced' weighs the supervised loss by inverse class frequency "
        "of the labeled rows, for imbalanced grades scored by macro-F1 "
        "(default: %(default)s)",
    )
    common.add_argument(
        "--device",
        default="auto",
        help="'auto' (CUDA if available), 'cpu', 'cuda', ... (default: %(default)s)",
    )

    run = sub.add_parser(
        "run",
        parents=[common],
        help="closed loop on a MESCC folder (simulated oracle)",
        description="Run, or resume, the BoostMIS closed loop on a MESCC feature "
        "folder "
        "with a simulated oracle (the train targets). OUT receives report.json, "
        "report.md, learning_curve.png, annotations.csv, model.safetensors, and the "
        "loop's state (state.json, config.json, model.pkl: a pickle, only resume "
        "folders you created). Running again with the same OUT resumes.",
    )
    run.add_argument(
        "data_dir",
        metavar="DATA_DIR",
        help="folder with {train,val,test}-{features,targets}.npy",
    )
    run.add_argument(
        "--task", choices=("two", "six"), required=True, help="grading task"
    )
    run.add_argument(
        "--cycles",
        type=_positive_int,
        default=5,
        help="annotation cycles (default: %(default)s)",
    )
    run.add_argument(
        "--budget",
        type=_positive_int,
        default=50,
        help="K, rows per selector and cycle (default: %(default)s)",
    )
    run.add_argument(
        "--initial-labels",
        type=_positive_int,
        default=100,
        help="initial labels drawn stratified from train (default: %(default)s)",
    )
    run.add_argument(
        "--out", default="boostmis_run", help="output folder (default: %(default)s)"
    )
    run.set_defaults(func=cmd_run)

    query = sub.add_parser(
        "query",
        parents=[common],
        help="suggest the next rows for a person to label",
        description="Train on the train rows listed in LABELS.csv (header index,label; "
        "labels as class codes or names), all other train rows unlabeled, and write "
        "the next candidates (index, score, selector, predicted_class) to --out. "
        "LABELS.csv is never modified; only train-features.npy is read.",
    )
    query.add_argument(
        "data_dir", metavar="DATA_DIR", help="folder with train-features.npy"
    )
    query.add_argument(
        "--labels",
        required=True,
        metavar="LABELS.csv",
        help="CSV with header index,label",
    )
    query.add_argument(
        "--budget",
        type=_positive_int,
        required=True,
        help="K, rows per selector (AUS and BUS)",
    )
    query.add_argument(
        "--out",
        required=True,
        metavar="CANDIDATES.csv",
        help="where to write the candidates",
    )
    query.add_argument(
        "--task",
        choices=("two", "six"),
        default="six",
        help="class vocabulary of the labels (default: %(default)s)",
    )
    query.set_defaults(func=cmd_query)
    return parser


def main(argv=None):
    """Run the ``boostmis`` command line; return the exit status."""
    args = _build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, OSError) as exc:  # incl. FileNotFoundError, MESCCFormatError
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
