"""``boostmis run`` on MESCC-like data against the labels-only network, cycle by cycle.

The data are :func:`~sklearn_boostmis.datasets.write_mescc_like` at the MESCC
release's split sizes (5,207 / 1,011 / 1,077 rows x 2,048 features; six-grade
targets, which serve both tasks). For each task and seed, ``boostmis run DATA
--task T --cycles C --budget K --initial-labels N --seed S --n-jobs 1`` runs
with the command's defaults otherwise, answers from the simulated oracle. Every
fit it reports (each cycle's, and the final one) is then repeated without the
unlabeled rows on exactly the rows labeled at that fit (``report.json``'s
``initial_indices`` and ``annotations.csv``): the same network, trained on the
labels alone with ``class_weight="balanced"`` and no prior correction
(``BoostMISClassifier(lambda_u=0, class_weight="balanced",
prior_correction=None)``, the command's ``max_steps``, the same seed and
standardisation). Reported: test macro-F1 of both per fit (mean over seeds),
the paired difference (mean +- standard error over seeds) and the number of
runs in which ``boostmis run`` was ahead at every fit.

Usage: ``python benchmarks/run_vs_labels_only.py [--tasks two six] [--seeds 5]
[--cycles 2] [--budget 20] [--scale 1] [--n-jobs 2] [--write]``.
"""

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from _common import machine_info, markdown_table, paired_difference, write_section
from joblib import Parallel, delayed
from sklearn.metrics import f1_score
from sklearn.preprocessing import StandardScaler

from sklearn_boostmis import BoostMISClassifier
from sklearn_boostmis.datasets import load_mescc, write_mescc_like


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def labeled_at(out):
    """Train-row indices labeled at each reported fit, in report order."""
    report = json.loads((out / "report.json").read_text())
    with (out / "annotations.csv").open() as f:
        answers = [r for r in csv.DictReader(f) if r["label"] != ""]
    initial = list(report["initial_indices"])
    fits = []
    for entry in report["cycles"]:
        before = np.inf if entry["final"] else entry["cycle"]
        rows = initial + [int(r["index"]) for r in answers if int(r["cycle"]) < before]
        assert len(rows) == entry["n_labeled"], (len(rows), entry["n_labeled"])
        fits.append((entry, np.array(rows)))
    return report, fits


def labels_only(X, y, rows, X_test, y_test, seed, max_steps):
    partial = np.full(len(y), -1)
    partial[rows] = y[rows]
    clf = BoostMISClassifier(
        lambda_u=0.0,
        class_weight="balanced",
        prior_correction=None,
        max_steps=max_steps,
        random_state=seed,
        n_jobs=1,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(X, partial)
    return f1_score(y_test, clf.predict(X_test), average="macro")


def run_one(data, task, seed, args):
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        command = [
            sys.executable, "-m", "sklearn_boostmis", "run", data, "--task", task,
            "--cycles", str(args.cycles), "--budget", str(args.budget),
            "--initial-labels", str(args.initial_labels), "--seed", str(seed),
            "--n-jobs", "1", "--out", str(out),
        ]  # fmt: skip
        start = time.perf_counter()
        subprocess.run(command, capture_output=True, text=True, check=True)
        seconds = time.perf_counter() - start
        report, fits = labeled_at(out)
    d = load_mescc(data, task=task)
    scaler = StandardScaler().fit(d.X_train)
    X = scaler.transform(d.X_train).astype(np.float32)
    X_test = scaler.transform(d.X_test).astype(np.float32)
    max_steps = report["config"]["max_steps"]
    rows = []
    for entry, labeled in fits:
        base = labels_only(X, d.y_train, labeled, X_test, d.y_test, seed, max_steps)
        rows.append((entry["n_labeled"], entry["macro_f1"], base))
        log(
            f"{task} seed {seed} fit on {entry['n_labeled']} labels: run "
            f"{entry['macro_f1']:.3f}, labels only balanced {base:.3f}"
        )
    return task, seed, rows, seconds


def table(task, runs):
    fits = np.array([[r[1] for r in rows] for rows in runs])  # seeds x fits
    base = np.array([[r[2] for r in rows] for rows in runs])
    counts = np.array([[r[0] for r in rows] for rows in runs])
    out = []
    for j in range(counts.shape[1]):
        name = "final" if j == counts.shape[1] - 1 else f"cycle {j + 1}"
        low, high = counts[:, j].min(), counts[:, j].max()
        labels = f"{low}" if low == high else f"{low}-{high}"
        out.append(
            [
                task,
                f"{name} ({labels} labels)",
                f"{fits[:, j].mean():.3f}",
                f"{base[:, j].mean():.3f}",
                paired_difference(fits[:, j], base[:, j]),
                f"{int((fits[:, j] > base[:, j]).sum())}/{len(runs)}",
            ]
        )
    every = int((fits > base).all(axis=1).sum())
    return out, every


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--tasks", nargs="+", choices=("two", "six"), default=["two", "six"]
    )
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--cycles", type=int, default=2)
    parser.add_argument("--budget", type=int, default=20)
    parser.add_argument("--initial-labels", type=int, default=100)
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="make_mescc_like's scale (quick checks)",
    )
    parser.add_argument("--n-jobs", type=int, default=2, help="runs in parallel")
    parser.add_argument("--write", action="store_true", help="update RESULTS.md")
    args = parser.parse_args()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        data = write_mescc_like(
            Path(tmp) / "mescc", task="six", scale=args.scale, random_state=0
        )
        seeds = range(args.first_seed, args.first_seed + args.seeds)
        jobs = [(task, seed) for seed in seeds for task in args.tasks]
        results = Parallel(n_jobs=args.n_jobs)(
            delayed(run_one)(data, task, seed, args) for task, seed in jobs
        )
    rows, verdicts = [], []
    for task in args.tasks:
        runs = [r[2] for r in results if r[0] == task]
        task_rows, every = table(task, runs)
        rows += task_rows
        verdicts.append(
            f"{task}-grade: `boostmis run` ahead of the labels-only balanced network "
            f"at every fit in {every} of {len(runs)} runs."
        )
    header = [
        "task",
        "fit",
        "`boostmis run` macro-F1",
        "labels only, balanced",
        "run minus labels only (mean +- SE)",
        "runs ahead",
    ]
    median = np.median([r[3] for r in results])
    cmd = "python benchmarks/run_vs_labels_only.py " + " ".join(sys.argv[1:])
    body = "\n\n".join(
        [
            "## `boostmis run` against the labels-only network, cycle by cycle",
            f"Command: `OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '')} "
            f"{cmd}`  \nSeeds: {args.first_seed}-{args.first_seed + args.seeds - 1}"
            f"  \nMachine: {machine_info()}  \nRuntime: "
            f"{(time.perf_counter() - t0) / 60:.1f} min ({len(results)} runs, "
            f"{args.n_jobs} at a time; median `boostmis run` {median:.0f} s)",
            f"MESCC-like data (SYNTHETIC) at scale {args.scale:g} (1 = the release's "
            "split sizes); the command's defaults with "
            f"`--cycles {args.cycles} --budget {args.budget} --initial-labels "
            f"{args.initial_labels}`; the labels-only network refitted on the rows "
            "labeled at each fit. See the script's docstring.",
            markdown_table(header, rows),
            "\n".join(verdicts),
        ]
    )
    print(body, flush=True)
    if args.write:
        write_section("run_vs_labels_only", body)


if __name__ == "__main__":
    main()
