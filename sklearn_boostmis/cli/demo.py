"""``boostmis demo``: the closed loop on scikit-learn's digits beside a
random-query and a supervised-only baseline."""

import os
import time

import numpy as np

from ._common import (
    CURVE_PNG,
    check_writable,
    collapse_warnings_summarised,
    say,
    standardize,
    write_json,
)
from ._plot import CurvePoint, majority_baseline, plot_learning_curves


class _RandomQuerySampler:
    """Random queries of given sizes (the random-query baseline)."""

    def __init__(self, sizes, random_state):
        self.sizes = list(sizes)
        self._rng = np.random.RandomState(random_state)
        self._calls = 0

    def select_union(self, classifier, X_pool, quota):
        from ..query import QueryUnion

        n_pool = X_pool.shape[0]
        size = self.sizes[self._calls] if self._calls < len(self.sizes) else 2 * quota
        self._calls += 1
        idx = self._rng.choice(n_pool, min(size, n_pool), replace=False)
        none = np.zeros(idx.size, dtype=bool)
        return QueryUnion(indices=idx.astype(np.int64), from_aus=none, from_bus=none)


def _loop_curve(loop):
    """A loop's fits, scored on the test split; collapse-warned ones marked."""
    return [
        CurvePoint(
            h["n_labeled"],
            h["val_accuracy"],
            h["val_f1_macro"],
            pseudo_label_collapse=bool(h["collapsed_classes"]),
        )
        for h in loop.history_
    ]


def cmd_demo(args):
    from sklearn.base import clone
    from sklearn.datasets import load_digits
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.model_selection import train_test_split

    from .. import AnnotationLoop, BoostMISClassifier, InformativeQuerySampler

    check_writable(args.out, folder=True)
    t0 = time.perf_counter()
    cfg = dict(cycles=4, budget=10, max_epochs=40, per_class=2)
    if args.quick:
        cfg.update(cycles=2, budget=5, max_epochs=4)
    X, y = load_digits(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(
        X, y, test_size=0.3, stratify=y, random_state=args.seed
    )
    X_tr, X_te = standardize(X_tr, X_te)
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
    base = BoostMISClassifier(
        max_epochs=cfg["max_epochs"], random_state=args.seed, n_jobs=args.n_jobs
    )

    def oracle(idx):
        return y_tr[idx]

    def run_loop(sampler, name):
        start = time.perf_counter()
        loop = AnnotationLoop(
            base, sampler, oracle, n_cycles=cfg["cycles"], budget=cfg["budget"]
        ).fit(X_tr, y0, X_te, y_te)
        say(f"{name}: {len(loop.history_)} fits in {time.perf_counter() - start:.1f}s")
        return loop

    with collapse_warnings_summarised():  # once, after the table
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
        acc, f1 = accuracy_score(y_te, pred), f1_score(y_te, pred, average="macro")
        supervised.append((int((y_c != -1).sum()), float(acc), float(f1)))
    say(
        f"supervised-only baseline: {len(supervised)} fits in "
        f"{time.perf_counter() - start:.1f}s"
    )
    curves = {
        "BoostMIS (SSL + AUS/BUS)": _loop_curve(boost),
        "random queries (SSL)": _loop_curve(rand),
        "supervised only (lambda_u=0)": [CurvePoint(*p) for p in supervised],
    }
    series = {name: [p[:3] for p in points] for name, points in curves.items()}
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
        f"{name} cycle {'final' if cycle == cfg['cycles'] else cycle}: digit "
        f"{', '.join(map(str, classes))}"
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
    plot_learning_curves(
        curves,
        png,
        "BoostMIS on digits: closed loop vs. baselines (test split)",
        baseline=majority_baseline(y_te, [str(d) for d in range(10)]),
    )
    write_json(
        os.path.join(args.out, "results.json"),
        {
            "config": cfg | {"seed": args.seed, "dataset": "sklearn digits"},
            "series": {k: [list(p) for p in v] for k, v in series.items()},
            "collapsed_classes": collapsed,
        },
    )
    print(f"\nwrote {png} and results.json; total {time.perf_counter() - t0:.1f}s")
    return 0
