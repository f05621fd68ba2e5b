"""Fit time with torch's default threads against the estimator's ``n_jobs=None``.

Before ``n_jobs`` existed, ``fit`` ran with torch's default intra-op threads
(one per core). ``n_jobs=None`` (the default) now runs one thread for the call;
the old behaviour is measured with a subclass that leaves torch's threads
alone (``TorchDefaultThreads``). Three conditions,
interleaved (old, new, old, ...) for ``--repeats`` rounds in one run:

idle
    Nothing else started by this script (other jobs on the machine show in the
    load average printed with the table).
one core busy
    A child process spins on one core for the whole measurement, as another
    user's job would.
grid search
    ``GridSearchCV(n_jobs=2)`` over two settings, three folds (six fits, two at
    a time in joblib's default process backend), timed as a whole.

Data: digits (1,797 x 64, 50 labels, ``max_epochs=20``) and MESCC-shaped
synthetic features (``make_mescc_like(task="two", scale=0.25)``: 1,302 x 2,048,
50 labels, ``max_epochs=5``). The table gives the median seconds of each and
the ratio old / new (> 1: the new default is faster).
"""

import argparse
import contextlib
import multiprocessing
import os
import statistics
import time
from unittest import mock

import numpy as np
from _common import RESULTS, machine_info, markdown_table, write_section
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV
from sklearn.preprocessing import StandardScaler

import sklearn_boostmis.classifier as classifier_module
from sklearn_boostmis import BoostMISClassifier, make_labeled_scorer
from sklearn_boostmis.datasets import make_mescc_like

OLD, NEW = "torch default", None


class TorchDefaultThreads(BoostMISClassifier):
    """The estimator as it was before ``n_jobs``: torch's threads left alone."""

    def fit(self, X, y):
        with mock.patch.object(classifier_module, "torch_threads", _unchanged):
            return super().fit(X, y)


def _unchanged(n_jobs):
    return contextlib.nullcontext()


def _spin(stop):
    while not stop.is_set():
        pass


def datasets():
    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X).astype(np.float32)
    mescc = make_mescc_like(task="two", scale=0.25, random_state=0)
    Xm = StandardScaler().fit_transform(mescc.X_train).astype(np.float32)
    out = {}
    for name, (data, labels, epochs) in {
        "digits": (X, y, 20),
        "MESCC-shaped 2048-d": (Xm, mescc.y_train, 5),
    }.items():
        rng = np.random.RandomState(0)
        partial = np.full_like(labels, -1)
        keep = rng.choice(len(labels), 50, replace=False)
        partial[keep] = labels[keep]
        out[name] = (data, partial, epochs)
    return out


def make(epochs, n_jobs):
    if n_jobs == OLD:
        return TorchDefaultThreads(max_epochs=epochs, random_state=0)
    return BoostMISClassifier(max_epochs=epochs, random_state=0, n_jobs=n_jobs)


def time_fit(X, y, epochs, n_jobs):
    start = time.perf_counter()
    make(epochs, n_jobs).fit(X, y)
    return time.perf_counter() - start


def time_search(X, y, epochs, n_jobs):
    search = GridSearchCV(
        make(epochs, n_jobs),
        {"lambda_u": [0.5, 1.0]},
        scoring=make_labeled_scorer("accuracy"),
        cv=3,
        n_jobs=2,
        refit=False,
    )
    start = time.perf_counter()
    search.fit(X, y)
    return time.perf_counter() - start


def measure(timer, X, y, epochs, repeats):
    times = {OLD: [], NEW: []}
    for _ in range(repeats):
        for n_jobs in (OLD, NEW):
            times[n_jobs].append(timer(X, y, epochs, n_jobs))
    return statistics.median(times[OLD]), statistics.median(times[NEW])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="1 repeat, digits only")
    parser.add_argument("--write", action="store_true", help=f"update {RESULTS.name}")
    args = parser.parse_args()
    repeats = 1 if args.quick else args.repeats
    data = datasets()
    if args.quick:
        data = {"digits": data["digits"]}
    rows = []
    load_before = os.getloadavg()[0]
    for name, (X, y, epochs) in data.items():
        for condition in ("idle", "one core busy", "grid search (n_jobs=2)"):
            stop = multiprocessing.Event()
            spinner = None
            if condition == "one core busy":
                spinner = multiprocessing.Process(target=_spin, args=(stop,))
                spinner.start()
            timer = time_search if condition.startswith("grid") else time_fit
            try:
                old, new = measure(timer, X, y, epochs, repeats)
            finally:
                if spinner is not None:
                    stop.set()
                    spinner.join()
            rows.append(
                [name, condition, f"{old:.2f}", f"{new:.2f}", f"{old / new:.1f}"]
            )
            print(rows[-1], flush=True)
    header = [
        "data",
        "condition",
        "old default: one thread per core (s)",
        "n_jobs=None: 1 thread (s)",
        "old / new",
    ]
    table = markdown_table(header, rows)
    note = (
        f"Median of {repeats} interleaved repeats, one run; {os.cpu_count()} cores; "
        f"load average {load_before:.2f} before the run, "
        f"{os.getloadavg()[0]:.2f} after. {machine_info()}."
    )
    print(table)
    print(note)
    if args.write:
        body = (
            "## Threads: fit time with torch's default threads and `n_jobs=None`\n\n"
            "`python benchmarks/threads.py --write` (see its docstring).\n\n"
            f"{table}\n\n{note}\n"
        )
        write_section("threads", body)


if __name__ == "__main__":
    main()
