"""Ablations of BoostMIS in a simulated annotation loop on digits.

Not :class:`~sklearn_boostmis.AnnotationLoop`: each cycle fits a fresh
classifier (no warm start), and the adaptive threshold never receives N_A, so
its ``beta * N_A / (2K)`` term stays 0 and the threshold rows compare only the
``alpha * Count_t / Count_{t-1}`` ramp with a fixed threshold.

Set-up as ``active_learning.py`` but shorter: ``few_label_split("digits", 20,
seed)`` (standardised, 30% held out, 2 labels per class), then ``--cycles``
cycles (default 3; ``--quick``: 2) of: query 20 unlabeled training rows, reveal
their labels, fit a fresh ``BoostMISClassifier(max_epochs=E,
random_state=seed, **training options)`` (E=30; ``--quick``: 15), score the
held-out split. Each variant changes one thing against the reference
(adaptive threshold with ``t_max = E // 2``; query =
``InformativeQuerySampler(random_state=seed)``: AUS and BUS union,
``density="knn_mean_cosine"``, one-sided AUS):

- training: ``threshold="fixed"`` (FixMatch, alpha + beta = 0.95), adaptive with
  ``t_max = E // 4`` and ``t_max = E`` (epochs until eps_t settles);
- query selectors: ``selectors="aus"``, ``"bus"`` (``"both"`` is the reference);
- BUS density: ``density="knn_degree"``, ``"settles"``;
- AUS: ``symmetric=True`` (the larger KL divergence of the perturbations
  +r_adv and -r_adv in the adversarial instability score);
- a random query as the floor.

The start fit is shared by variants with the same training options. Reported:
AULC (trapezoid area under held-out macro-F1 / accuracy vs labels, divided by
the label range) and the final macro-F1, mean +- std over ``--seeds`` seeds
(default 10; ``--quick``: 3), and each variant's AULC minus the reference's,
paired over the same splits.

Usage: ``python benchmarks/ablations.py [--seeds 10] [--cycles 3] [--n-jobs 2]
[--quick] [--write]`` (``--n-jobs`` seeds run in parallel).
"""

import argparse
import os
import sys
import time
import warnings

import _common as common
import numpy as np
from active_learning import aulc, log
from joblib import Parallel, delayed
from sklearn.metrics import accuracy_score, f1_score

from sklearn_boostmis import BoostMISClassifier
from sklearn_boostmis.query import InformativeQuerySampler

N0, BUDGET = 20, 20


def variants(epochs):
    """name -> (classifier options, sampler options or None for random)."""
    return {
        "reference (adaptive, t_max=E/2; AUS+BUS, knn_mean_cosine)": ({}, {}),
        "threshold fixed 0.95 (FixMatch)": ({"threshold": "fixed"}, {}),
        f"adaptive t_max={epochs // 4} (E/4)": ({"t_max": epochs // 4}, {}),
        f"adaptive t_max={epochs} (E)": ({"t_max": epochs}, {}),
        "AUS only": ({}, {"selectors": "aus"}),
        "BUS only": ({}, {"selectors": "bus"}),
        "density knn_degree": ({}, {"density": "knn_degree"}),
        "density settles": ({}, {"density": "settles"}),
        "symmetric AUS": ({}, {"symmetric": True}),
        "random query (floor)": ({}, None),
    }


def fit_eval(X, y, X_test, y_test, seed, epochs, options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = BoostMISClassifier(max_epochs=epochs, random_state=seed, **options)
        clf.fit(X, y)
    pred = clf.predict(X_test)
    return clf, (f1_score(y_test, pred, average="macro"), accuracy_score(y_test, pred))


def run_seed(seed, cycles, epochs):
    """name -> learning curve [(macro-F1, accuracy) per point] on one split."""
    X, y0, y_train, X_test, y_test = common.few_label_split("digits", N0, seed)
    starts = {}  # training options -> shared start fit
    curves = {}
    for name, (options, qopts) in variants(epochs).items():
        key = tuple(sorted(options.items()))
        if key not in starts:
            starts[key] = fit_eval(X, y0, X_test, y_test, seed, epochs, options)
        clf, y, curve = starts[key][0], y0.copy(), [starts[key][1]]
        rng = np.random.RandomState(1000 + seed)
        for _ in range(cycles):
            unl = np.flatnonzero(y == -1)
            if qopts is None:
                pos = rng.choice(len(unl), BUDGET, replace=False)
            else:
                sampler = InformativeQuerySampler(random_state=seed, **qopts)
                pos = np.asarray(sampler(clf, X[unl], n_instances=BUDGET)[0])
            assert len(np.unique(pos)) == BUDGET, (name, pos)
            y[unl[pos]] = y_train[unl[pos]]
            clf, m = fit_eval(X, y, X_test, y_test, seed, epochs, options)
            curve.append(m)
        curves[name] = curve
        log(f"seed {seed} {name}: F1 " + " ".join(f"{f:.3f}" for f, _ in curve))
    return curves


def run(seeds, cycles, epochs, n_jobs=1):
    labels = N0 + BUDGET * np.arange(cycles + 1)
    per_seed = Parallel(n_jobs=n_jobs)(
        delayed(run_seed)(seed, cycles, epochs) for seed in range(seeds)
    )
    names = list(variants(epochs))
    reference = names[0]
    a_f1 = {}
    rows = []
    for name in names:
        c = np.array([curves[name] for curves in per_seed])  # (seeds, points, 2)
        a_f1[name] = np.array([aulc(labels, r[:, 0]) for r in c])
        a_acc = np.array([aulc(labels, r[:, 1]) for r in c])
        rows.append([
            name, f"{a_f1[name].mean():.3f} +- {a_f1[name].std():.3f}",
            "" if name == reference
            else common.paired_difference(a_f1[name], a_f1[reference]),
            f"{a_acc.mean():.3f} +- {a_acc.std():.3f}",
            f"{c[:, -1, 0].mean():.3f} +- {c[:, -1, 0].std():.3f}",
            " ".join(f"{v:.3f}" for v in c[:, :, 0].mean(axis=0)),
        ])
    header = ["variant", "AULC macro-F1", "- reference (paired)", "AULC accuracy",
              f"macro-F1 at {labels[-1]} labels",
              "mean macro-F1 at " + "/".join(map(str, labels)) + " labels"]
    return common.markdown_table(header, rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=None, help="default 10")
    parser.add_argument("--cycles", type=int, default=None, help="default 3")
    parser.add_argument("--n-jobs", type=int, default=2, help="seeds in parallel")
    parser.add_argument("--quick", action="store_true", help="3 seeds, 2 cycles, E=15")
    parser.add_argument("--write", action="store_true", help="update RESULTS.md")
    args = parser.parse_args()
    seeds = args.seeds or (3 if args.quick else 10)
    cycles = args.cycles or (2 if args.quick else 3)
    epochs = 15 if args.quick else 30
    start = time.perf_counter()
    table = run(seeds, cycles, epochs, args.n_jobs)
    minutes = (time.perf_counter() - start) / 60
    print(table)
    if args.write:
        cmd = "python benchmarks/ablations.py " + " ".join(sys.argv[1:])
        threads = os.environ.get("OMP_NUM_THREADS", "unset")
        common.write_section("ablations", "\n\n".join([
            "## Ablations: threshold, selectors, density and symmetric AUS "
            "(simulated loop on digits, fresh fit each cycle)",
            f"Command: `OMP_NUM_THREADS={threads} {cmd}`  \nMachine: "
            f"{common.machine_info()}  \nRuntime: {minutes:.1f} min",
            f"digits, {N0} start labels (2 per class), {cycles} cycles of "
            f"{BUDGET} queries, fresh `BoostMISClassifier(max_epochs={epochs})` "
            "per cycle (no warm start, N_A = 0: not AnnotationLoop); mean +- "
            f"std over {seeds} seeds, and each variant's AULC minus the "
            "reference's on the same splits (mean +- standard error; a tie "
            "unless more than two standard errors from 0). Each row changes "
            "one option of the reference (training options change the start fit "
            "too). See the module docstring.",
            table,
        ]))


if __name__ == "__main__":
    main()
