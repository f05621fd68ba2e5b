"""Active learning with BoostMIS queries: learning curves.

1. Learning curves. Per data set and seed, ``few_label_split`` (standardised,
   30% held out) with a class-balanced start: digits 20 labels (2 per class),
   breast cancer 10 (5 per class). Each cycle fits a fresh
   ``BoostMISClassifier`` (not AnnotationLoop's warm start, so the adaptive
   threshold's N_A term stays 0; this compares the query strategies; defaults
   except ``max_epochs``: 30 on digits, 100 on breast cancer, ~300 SGD steps
   each; ``random_state=seed``) on the current
   labels, records held-out macro-F1 and accuracy, then queries exactly
   ``budget`` unlabeled training rows (digits 20, breast cancer 10) and reveals
   their labels. The start fit is shared by all strategies. Strategies at equal
   budget: BoostMIS (``InformativeQuerySampler(random_state=seed).__call__``,
   AUS and BUS interleaved), random, entropy (max entropy of ``predict_proba``),
   margin (smallest top-1 minus top-2), AUS alone, BUS alone (``selectors``).
   AULC = trapezoid area under score vs labels / label range, mean +- std over
   seeds, and the BoostMIS query's AULC minus each other strategy's, paired
   over the seeds (mean +- standard error; a tie unless more than two standard
   errors from 0). One PNG per data set: mean macro-F1 curve with a +- std band.
The query's time and memory at scale are measured by ``query_cost.py``.

Usage: ``python benchmarks/active_learning.py [--seeds 10] [--n-jobs 2] [--quick]
[--write] [--out-dir benchmarks/]``; ``--quick``: 3 seeds, 2 cycles; ``--n-jobs``
seeds of the learning curves run in parallel.
"""

import argparse
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import _common as common
import numpy as np
import torch
from joblib import Parallel, delayed
from sklearn.metrics import accuracy_score, f1_score

from sklearn_boostmis import BoostMISClassifier
from sklearn_boostmis.query import InformativeQuerySampler

DATASETS = {"digits": (20, 20, 30), "breast_cancer": (10, 10, 100)}  # n0, n/cycle, ep
STRATEGIES = ["BoostMIS", "random", "entropy", "margin", "AUS only", "BUS only"]
SELECTORS = {"BoostMIS": "both", "AUS only": "aus", "BUS only": "bus"}


def log(msg):  # progress on stderr, tables on stdout
    print(msg, file=sys.stderr, flush=True)


def fit_eval(X, y, X_test, y_test, epochs, seed, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = BoostMISClassifier(max_epochs=epochs, random_state=seed, **params)
        clf.fit(X, y)
    pred = clf.predict(X_test)
    return clf, (f1_score(y_test, pred, average="macro"), accuracy_score(y_test, pred))


def query(strategy, clf, X_unl, n, seed, rng):
    """Positions (into ``X_unl``) of the ``n`` rows the strategy asks for."""
    if strategy == "random":
        return rng.choice(len(X_unl), n, replace=False)
    if strategy in ("entropy", "margin"):
        p = clf.predict_proba(X_unl)
        if strategy == "entropy":
            score = (p * np.log(np.clip(p, 1e-12, None))).sum(axis=1)  # -H
        else:
            top = np.sort(p, axis=1)
            score = top[:, -1] - top[:, -2]
        return np.argsort(score, kind="stable")[:n]
    sampler = InformativeQuerySampler(selectors=SELECTORS[strategy], random_state=seed)
    return sampler(clf, X_unl, n_instances=n)[0]


def aulc(x, v):  # trapezoid area / label range
    return ((v[1:] + v[:-1]) / 2 * np.diff(x)).sum() / (x[-1] - x[0])


def seed_curves(name, seed, cycles):
    """strategy -> learning curve [(f1, acc) per point], and -> query times."""
    n0, budget, epochs = DATASETS[name]
    X, y0, y_train, X_test, y_test = common.few_label_split(name, n0, seed)
    base, m0 = fit_eval(X, y0, X_test, y_test, epochs, seed)
    curves, qtime = {}, {}
    for strategy in STRATEGIES:
        y, clf, curve, times = y0.copy(), base, [m0], []
        rng = np.random.RandomState(1000 + seed)
        for _ in range(cycles):
            unl = np.flatnonzero(y == -1)
            start = time.perf_counter()
            pos = np.asarray(query(strategy, clf, X[unl], budget, seed, rng))
            times.append(time.perf_counter() - start)
            assert len(np.unique(pos)) == budget, (strategy, pos)
            y[unl[pos]] = y_train[unl[pos]]
            clf, m = fit_eval(X, y, X_test, y_test, epochs, seed)
            curve.append(m)
        assert (y != -1).sum() == n0 + budget * cycles
        curves[strategy], qtime[strategy] = curve, times
        log(f"{name} seed {seed} {strategy}: F1 "
            + " ".join(f"{f:.3f}" for f, _ in curve))
    return curves, qtime


def learning_curves(name, seeds, cycles, n_jobs=1):
    n0, budget, _ = DATASETS[name]
    labels = n0 + budget * np.arange(cycles + 1)
    per_seed = Parallel(n_jobs=n_jobs)(
        delayed(seed_curves)(name, seed, cycles) for seed in range(seeds)
    )
    curves = {s: np.array([c[s] for c, _ in per_seed]) for s in STRATEGIES}
    qtime = {s: [t for _, q in per_seed for t in q[s]] for s in STRATEGIES}
    return labels, curves, qtime


def curve_tables(name, labels, curves, qtime):
    n0, budget, epochs = DATASETS[name]
    area_rows, point_rows, areas, per_seed = [], [], {}, {}
    for s, c in curves.items():  # c: (seeds, points, 2)
        a_f1 = np.array([aulc(labels, run[:, 0]) for run in c])
        a_acc = np.array([aulc(labels, run[:, 1]) for run in c])
        areas[s] = (a_f1.mean(), a_acc.mean())
        per_seed[s] = a_f1
        area_rows.append([
            s, f"{a_f1.mean():.3f} +- {a_f1.std():.3f}",
            f"{a_acc.mean():.3f} +- {a_acc.std():.3f}",
            f"{c[:, -1, 0].mean():.3f} +- {c[:, -1, 0].std():.3f}",
            f"{np.mean(qtime[s]):.2f}",
        ])
        point_rows.append([s] + [f"{v:.3f}" for v in c[:, :, 0].mean(axis=0)])
    header = ["strategy", "AULC macro-F1", "AULC accuracy",
              f"macro-F1 at {labels[-1]} labels", "query s/cycle"]
    t1 = common.markdown_table(header, area_rows)
    t2 = common.markdown_table(["macro-F1 / labels", *map(str, labels)], point_rows)
    others = {s: v for s, v in per_seed.items() if s != "BoostMIS"}
    verdict = (
        f"{name}: macro-F1 AULC of the BoostMIS query minus each other strategy, "
        + common.paired_against(per_seed["BoostMIS"], others)
        + f" (accuracy AULC: BoostMIS {areas['BoostMIS'][1]:.3f}, random "
        f"{areas['random'][1]:.3f}, entropy {areas['entropy'][1]:.3f})"
    )
    per_class = n0 // len(np.unique(common.few_label_split(name, n0, 0)[2]))
    title = (f"### {name}: {n0} start labels ({per_class} per class), "
             f"{len(labels) - 1} cycles of {budget}, max_epochs={epochs}")
    return title, t1, t2, verdict


def plot(name, labels, curves, path):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))  # one PNG per data set
    for s, c in curves.items():
        mean, std = c[:, :, 0].mean(axis=0), c[:, :, 0].std(axis=0)
        ax.plot(labels, mean, marker="o", ms=3, label=s)
        ax.fill_between(labels, mean - std, mean + std, alpha=0.15)
    ax.set(xlabel="labels", ylabel="held-out macro-F1",
           title=f"{name}: mean +- std over {len(next(iter(curves.values())))} seeds")
    ax.grid(alpha=0.3), ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=None,
                        help="default 10 (--quick: 3)")
    parser.add_argument("--n-jobs", type=int, default=2,
                        help="seeds run in parallel (learning curves)")
    parser.add_argument("--quick", action="store_true",
                        help="3 seeds, 2 cycles")
    parser.add_argument("--write", action="store_true", help="update RESULTS.md")
    parser.add_argument("--out-dir", default=None,
                        help="folder of the PNGs (default: benchmarks/ with --write, "
                        "else a temporary folder, so a trial run leaves the "
                        "committed figures alone)")
    args = parser.parse_args()
    default_out = Path(__file__).parent if args.write else tempfile.mkdtemp()
    (out := Path(args.out_dir or default_out)).mkdir(parents=True, exist_ok=True)
    seeds = args.seeds or (3 if args.quick else 10)
    cycles = 2 if args.quick else 5
    t0, parts, rev = time.perf_counter(), [], common.git_revision()
    for name in DATASETS:
        labels, curves, qtime = learning_curves(name, seeds, cycles, args.n_jobs)
        title, t1, t2, verdict = curve_tables(name, labels, curves, qtime)
        png = out / f"active_learning_{name}.png"
        plot(name, labels, curves, png)
        link = os.path.relpath(png, common.RESULTS.parent)
        parts.append(f"{title}\n\n{t1}\n\n{t2}\n\n![{name}]({link})\n\n{verdict}")
        print(parts[-1] + "\n", flush=True)
    total = time.perf_counter() - t0
    threads = (f"torch threads {torch.get_num_threads()}; git {rev} "
               f"at start (the package is edited concurrently)")
    cmd = "python benchmarks/active_learning.py " + " ".join(sys.argv[1:])
    body = "\n\n".join([
        "## Active learning: BoostMIS query vs baselines",
        f"Command: `OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '')} {cmd}`  \n"
        f"Machine: {common.machine_info()}; {threads}; load average at end "
        f"{' '.join(f'{v:.1f}' for v in os.getloadavg())}  \n"
        f"Runtime: {total / 60:.1f} min",
        f"Mean +- std over {seeds} seeds ({args.n_jobs} at a time: query s/cycle "
        "is timed while another seed may run). Each cycle fits a fresh "
        "`BoostMISClassifier` (defaults but `max_epochs`, `random_state=seed`) on "
        "the labels so far; every strategy queries the same number of rows per "
        "cycle; AULC = trapezoid area under the held-out score vs labels / label "
        "range. The start fit is shared. See the module docstring.",
        *parts,
        "The query's cost at scale: section `query_cost` (`query_cost.py`).",
    ])
    if args.write:
        common.write_section("active_learning", body)
    log(f"total {total:.0f} s")


if __name__ == "__main__":
    main()
