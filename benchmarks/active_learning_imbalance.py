"""Active learning on imbalanced pools: does the BoostMIS query find the rare classes?

Cells ``digits six-grade`` and ``digits 9-vs-rest`` of ``imbalance.py`` (its
``split`` and ``draw_labels``): 20 start labels (at least one per class), 5
cycles of 10 queries. With ``--mescc`` the cells are ``MESCC-like two`` and
``MESCC-like six`` at full size (5,207 x 2,048; section suffix ``_mescc``): 40
start labels, 5 cycles of 20, every fit bounded to ``max_steps=1000`` (with
fewer labels or steps the network predicts the majority grade only).

Each cycle fits a fresh ``BoostMISClassifier(random_state=seed,
max_epochs=30)`` on the labels so far, package defaults otherwise;
``--known-prior`` gives every fit ``class_prior=`` the prevalence of the train
split (section suffix ``_known_prior``), ``--start-prior`` the add-one smoothed
prior of the start labels, which the queried labels then do not move (suffix
``_start_prior``). The start fit is shared. Every strategy picks its rows each
cycle from the same fitted model: BoostMIS (``InformativeQuerySampler``),
random, entropy, margin (as in ``active_learning.py``), k-center greedy
"core-set" and a TypiClust pick, both on the teacher's embeddings of the
training rows (the inputs when the module has none); ``--strategies`` runs a
subset. Reported: AULC of held-out macro-F1 over the 6 fits (mean +- std), the
BoostMIS query minus each strategy paired over the seeds (mean +- standard
error; a tie unless beyond two), and the minority-class labels (classes other
than the majority) acquired per cycle.

Usage: ``python benchmarks/active_learning_imbalance.py [--seeds 5] [--n-jobs 2]
[--known-prior | --start-prior] [--mescc] [--strategies BoostMIS random ...]
[--from-log STDERR] [--write]``; ``--from-log`` tabulates the seeds that an
earlier run with the same options finished, from its progress lines.
"""

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

import numpy as np
from _common import machine_info, markdown_table, paired_difference, write_section
from active_learning import aulc, fit_eval, log, query
from imbalance import draw_labels, split
from joblib import Parallel, delayed
from sklearn.cluster import KMeans
from sklearn.metrics import pairwise_distances
from sklearn.neighbors import NearestNeighbors

CELLS = ("digits six-grade", "digits 9-vs-rest")
MESCC_CELLS = ("MESCC-like two", "MESCC-like six")
STRATEGIES = ("BoostMIS", "random", "entropy", "margin", "core-set", "TypiClust")
CYCLES, EPOCHS = 5, 30
# start labels, queries per cycle, fit parameters; MESCC-like data (5,207 x
# 2,048) stay at the majority grade below about 40 labels and 1,000 steps
DIGITS = (20, 10, {})
MESCC = (40, 20, {"max_steps": 1000})


def setting(cell):
    return MESCC if cell in MESCC_CELLS else DIGITS


def embeddings(clf, X):
    emb = clf.teacher_outputs(X)[1]
    return X if emb is None else emb.reshape(len(X), -1).cpu().numpy()


def core_set(emb, labeled, n):
    """k-center greedy: repeatedly the row farthest from every chosen centre."""
    dist = pairwise_distances(emb, emb[labeled]).min(axis=1)
    picks = []
    for _ in range(n):
        picks.append(int(np.argmax(dist)))
        dist = np.minimum(dist, pairwise_distances(emb, emb[picks[-1:]])[:, 0])
    return np.array(picks)


def typiclust(emb, labeled, n, seed, k_nn=20):
    """The most typical row of each of the largest clusters without a label."""
    k = len(labeled) + n
    clusters = KMeans(k, n_init=1, random_state=seed).fit_predict(emb)
    sizes = np.bincount(clusters, minlength=k)
    covered = np.bincount(clusters[labeled], minlength=k)
    picks = []
    for c in np.lexsort((-sizes, covered)):  # uncovered first, then largest
        rows = np.setdiff1d(np.flatnonzero(clusters == c), labeled)
        if len(rows) <= 1:
            picks.extend(rows)
        else:
            nn = min(k_nn, len(rows) - 1)
            dist, _ = NearestNeighbors(n_neighbors=nn).fit(emb[rows]).kneighbors()
            picks.append(rows[np.argmin(dist.mean(axis=1))])  # max 1 / mean
        if len(picks) == n:
            break
    return np.array(picks)


def pick(strategy, clf, X, y, seed, rng, n):
    """Training-row indices of the ``n`` rows the strategy asks for."""
    unl, labeled = np.flatnonzero(y == -1), np.flatnonzero(y != -1)
    if strategy in ("core-set", "TypiClust"):
        emb = embeddings(clf, X)
        if strategy == "core-set":
            return core_set(emb, labeled, n)
        return typiclust(emb, labeled, n, seed)
    return unl[np.asarray(query(strategy, clf, X[unl], n, seed, rng))]


def run_seed(cell, seed, known_prior=False, strategies=STRATEGIES, start_prior=False):
    """strategy -> (macro-F1 per fit, minority labels acquired per cycle)."""
    n_start, budget, params = setting(cell)
    X, y_train, X_test, y_test = split(cell, seed)
    y0 = draw_labels(y_train, n_start, seed)
    majority = np.bincount(y_train).argmax()
    # known_prior: every fit is given the train split's prevalence
    if known_prior:
        params = {**params, "class_prior": np.bincount(y_train)}
    elif start_prior:  # what the default starts from, not moved by the queries
        start = np.bincount(y0[y0 != -1], minlength=len(np.unique(y_train)))
        params = {**params, "class_prior": start + 1}
    base, m0 = fit_eval(X, y0, X_test, y_test, EPOCHS, seed, **params)
    out = {}
    for strategy in strategies:
        y, clf, f1, minority = y0.copy(), base, [m0[0]], []
        rng = np.random.RandomState(1000 + seed)
        for _ in range(CYCLES):
            rows = pick(strategy, clf, X, y, seed, rng, budget)
            assert len(np.unique(rows)) == budget and (y[rows] == -1).all()
            y[rows] = y_train[rows]
            minority.append(int((y_train[rows] != majority).sum()))
            clf, m = fit_eval(X, y, X_test, y_test, EPOCHS, seed, **params)
            f1.append(m[0])
        out[strategy] = (np.array(f1), np.array(minority))
        log(
            f"{cell} seed {seed} {strategy}: F1 {' '.join(f'{v:.3f}' for v in f1)}"
            f"; minority {minority}"
        )
    return out


LOG_LINE = re.compile(
    r"^(?P<cell>.+) seed (?P<seed>\d+) (?P<strategy>\S+): F1 (?P<f1>[0-9. ]+); "
    r"minority (?P<minority>\[[0-9, ]*\])$"
)


def read_log(path, cells, strategies):
    """``{(cell, seed): {strategy: (F1 per fit, minority per cycle)}}`` from the
    progress lines of an earlier run, for the (cell, seed) pairs it finished."""
    found = {}
    with open(path) as f:
        for line in f:
            m = LOG_LINE.match(line.rstrip("\n"))
            if m and m["cell"] in cells and m["strategy"] in strategies:
                f1 = np.array(m["f1"].split(), dtype=float)
                minority = np.array(json.loads(m["minority"]), dtype=int)
                key = (m["cell"], int(m["seed"]))
                found.setdefault(key, {})[m["strategy"]] = (f1, minority)
    return {k: v for k, v in found.items() if set(strategies) <= set(v)}


def cell_table(cell, per_seed, strategies=STRATEGIES):
    n_start, budget, params = setting(cell)
    labels = n_start + budget * np.arange(CYCLES + 1)
    areas = {s: np.array([aulc(labels, r[s][0]) for r in per_seed]) for s in strategies}
    minority = {s: np.array([r[s][1] for r in per_seed]) for s in strategies}
    rows = []
    for s in strategies:
        diff = "" if s == "BoostMIS" else paired_difference(areas["BoostMIS"], areas[s])
        per_cycle = " / ".join(f"{v:.1f}" for v in minority[s].mean(axis=0))
        rows.append(
            [
                s,
                f"{areas[s].mean():.3f} +- {areas[s].std():.3f}",
                diff,
                per_cycle,
                f"{minority[s].sum(axis=1).mean():.1f}",
            ]
        )
    header = [
        "strategy",
        "AULC macro-F1",
        "BoostMIS minus (mean +- SE)",
        "minority labels per cycle",
        "minority labels in all",
    ]
    ratio = minority["BoostMIS"].sum() / max(minority["random"].sum(), 1)
    steps = f", max_steps={params['max_steps']}" if "max_steps" in params else ""
    return (
        f"### {cell}: {n_start} start labels, {CYCLES} cycles of {budget}{steps}, "
        f"{len(per_seed)} seeds\n\n{markdown_table(header, rows)}\n\n"
        f"Minority labels acquired, BoostMIS / random: {ratio:.2f}x "
        f"(out of {budget * CYCLES} queries)."
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--n-jobs", type=int, default=2, help="seeds in parallel")
    parser.add_argument(
        "--known-prior",
        action="store_true",
        help="class_prior= the train split's prevalence in every fit",
    )
    parser.add_argument(
        "--start-prior",
        action="store_true",
        help="class_prior= the smoothed prior of the start labels in every fit",
    )
    parser.add_argument(
        "--mescc",
        action="store_true",
        help="the MESCC-like cells (full size) instead of the digits cells",
    )
    parser.add_argument(
        "--strategies",
        nargs="+",
        choices=STRATEGIES,
        default=list(STRATEGIES),
        help="strategies to run (BoostMIS always runs)",
    )
    parser.add_argument(
        "--from-log",
        type=Path,
        default=None,
        help="tabulate the seeds an earlier run with these options finished, from "
        "its progress lines (stderr), instead of running",
    )
    parser.add_argument("--write", action="store_true", help="update RESULTS.md")
    args = parser.parse_args()
    if args.known_prior and args.start_prior:
        parser.error("--known-prior and --start-prior exclude each other")
    strategies = ["BoostMIS"] + [s for s in args.strategies if s != "BoostMIS"]
    cells = MESCC_CELLS if args.mescc else CELLS
    t0 = time.perf_counter()
    jobs = [(cell, seed) for seed in range(args.seeds) for cell in cells]
    if args.from_log:
        finished = read_log(args.from_log, cells, strategies)
        jobs = [job for job in jobs if job in finished]
        results = [finished[job] for job in jobs]
    else:
        results = Parallel(n_jobs=args.n_jobs)(
            delayed(run_seed)(*job, args.known_prior, strategies, args.start_prior)
            for job in jobs
        )
    tables = [
        cell_table(
            cell,
            [r for (c, _), r in zip(jobs, results, strict=True) if c == cell],
            strategies,
        )
        for cell in cells
        if any(c == cell for c, _ in jobs)  # --from-log: a cell with no seed done
    ]
    argv = sys.argv[1:]
    if args.from_log:  # the command that made the log
        at = argv.index("--from-log")
        argv = argv[:at] + argv[at + 2 :]
    cmd = "python benchmarks/active_learning_imbalance.py " + " ".join(argv)
    prior = ", known class prior" if args.known_prior else ""
    prior = ", start labels' prior" if args.start_prior else prior
    data = " (MESCC-like)" if args.mescc else ""
    suffix = (
        ("_mescc" if args.mescc else "")
        + ("_known_prior" if args.known_prior else "")
        + ("_start_prior" if args.start_prior else "")
    )
    seeds = sorted({seed for _, seed in jobs})
    runtime = (
        "Tabulated from the progress lines (stderr) of this command, F1 rounded "
        f"to 3 decimals: the seeds it finished, of 0-{args.seeds - 1}"
        if args.from_log
        else f"Runtime: {(time.perf_counter() - t0) / 60:.1f} min"
    )
    body = "\n\n".join(
        [
            f"## Active learning on imbalanced pools{data} ({len(seeds)} seeds{prior})",
            f"Command: `OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '')} {cmd}`"
            f"  \nSeeds: {', '.join(map(str, seeds))}  \nMachine: {machine_info()}  \n"
            f"{runtime}",
            "AULC = trapezoid area under held-out macro-F1 vs labels / label range, "
            f"over the {CYCLES + 1} fits; minority labels: acquired labels of the "
            "classes other than the majority, mean over the seeds. See the module "
            "docstring.",
            *tables,
        ]
    )
    print(body, flush=True)
    if args.write:
        write_section("active_learning_imbalance" + suffix, body)


if __name__ == "__main__":
    main()
