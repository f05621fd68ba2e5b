"""One-shot GPU check: CUDA tests, then training and query timings on MESCC-shaped data.

Meant to run once on a machine with an NVIDIA GPU (it also runs on the CPU, for
trying it out)::

    python benchmarks/gpu_check.py [--device cuda] [--pool-sizes N ...] [--write]

1. ``pytest -m cuda`` (the CUDA tests; skipped there without a GPU).
2. Training samples/s of ``BoostMISClassifier.fit`` on synthetic MESCC-shaped
   data (``make_mescc_like``: 5207 train rows x 2048 features, 500 labeled),
   after a 1-epoch warm-up fit: samples per step = B (1 + 2 mu), the last short
   step counted as full (steps per second is the exact figure). For the ratio to
   a bare PyTorch loop, run ``throughput.py --device cuda`` too.
3. Query time of ``InformativeQuerySampler`` (100 queries) for pools of random
   2048-d rows (default 1e5 and 1e6 rows on a GPU; 1e4 on the CPU).

Prints a compact table; ``--write`` puts it in the ``gpu_check`` section of
RESULTS.md with the device name.
"""

import argparse
import subprocess
import sys
import time

import numpy as np
import torch
from _common import machine_info, markdown_table, write_section

from sklearn_boostmis import BoostMISClassifier, InformativeQuerySampler
from sklearn_boostmis.datasets import make_mescc_like


def _sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_training(device, epochs, n_labeled=500, seed=0):
    data = make_mescc_like(random_state=seed, task="two")
    X, y = data.X_train, data.y_train.copy()
    rng = np.random.RandomState(seed)
    y[rng.permutation(len(y))[n_labeled:]] = -1
    # a 1-epoch warm-up fit first: CUDA context and cuBLAS set-up are not timed
    BoostMISClassifier(max_epochs=1, random_state=seed, device=device).fit(X, y)
    clf = BoostMISClassifier(max_epochs=epochs, random_state=seed, device=device)
    _sync(device)
    start = time.perf_counter()
    clf.fit(X, y)
    _sync(device)
    seconds = time.perf_counter() - start
    steps = sum(len(clf.history_[e, "batches"]) for e in range(len(clf.history_)))
    samples = steps * clf.batch_size * (1 + 2 * clf.mu)
    return clf, steps, seconds, samples / seconds


def time_query(clf, n_rows, device, n_features=2048, n_instances=100):
    rng = np.random.RandomState(1)
    pool = rng.standard_normal((n_rows, n_features)).astype(np.float32)
    sampler = InformativeQuerySampler(random_state=0)
    _sync(device)
    start = time.perf_counter()
    idx, _ = sampler(clf, pool, n_instances=n_instances)
    _sync(device)
    assert len(set(idx.tolist())) == n_instances
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_device = "cuda" if torch.cuda.is_available() else "cpu"
    parser.add_argument("--device", default=default_device)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--pool-sizes", type=int, nargs="+", default=None)
    parser.add_argument("--skip-tests", action="store_true")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    pool_sizes = args.pool_sizes or (
        [100_000, 1_000_000] if args.device.startswith("cuda") else [10_000]
    )
    if not args.skip_tests:
        tests = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-m",
                "cuda",
                "-q",
                "-p",
                "no:cacheprovider",
            ],
            capture_output=True,
            text=True,
        )
        print(tests.stdout.strip().splitlines()[-1] if tests.stdout else tests.stderr)
    clf, steps, seconds, rate = time_training(args.device, args.epochs)
    rows = [
        [
            "fit (MESCC-shaped, 5207 x 2048)",
            f"{steps} steps",
            f"{seconds:.2f}",
            f"{rate:,.0f} samples/s",
        ]
    ]
    for n_rows in pool_sizes:
        seconds = time_query(clf, n_rows, args.device)
        rows.append([f"query 100 of {n_rows:,} x 2048", "", f"{seconds:.2f}", ""])
    table = markdown_table(["what", "size", "seconds", "rate"], rows)
    print(table)
    if args.write:
        write_section(
            "gpu_check",
            (
                f"## GPU check (`python benchmarks/gpu_check.py --write`)\n\n"
                f"Device: {args.device}. Machine: {machine_info()}\n\n{table}"
            ),
        )


if __name__ == "__main__":
    main()
