"""Training and density cost: BoostMIS vs supervised skorch, growth with n, kNN.

(a) Semi-supervised overhead. On standardised SYNTHETIC MESCC-like data
    (``make_mescc_like(task="six")``, 2048 features, 500 labels drawn
    stratified, E=10; ``--quick``: scale 0.3, 150 labels) and on digits (50
    labels, E=20), after a warm-up fit of each, wall time (setup included) of
    ``BoostMISClassifier(max_epochs=E, random_state=0).fit(X,
    y_partial)`` against ``skorch.NeuralNetClassifier(MLPClassifierModule,
    criterion=CrossEntropyLoss, optimizer=SGD(lr 0.03, momentum 0.9),
    batch_size=64, train_split=None)`` fitted on the labeled rows only, with
    its ``max_epochs`` set so that it runs at least as many SGD steps (batches
    in ``history_``). Definitions: a *step* is one optimiser update; *samples*
    are forward rows: B (1 + 2 mu) = 320 per BoostMIS step (labeled batch,
    weak and strong unlabeled views; an epoch's last, shorter step counted as
    full, so BoostMIS's samples/s is a few percent high), the batch size (<= 64)
    per skorch step.
    Reported: steps/s, samples/s and time per step (ratio BoostMIS / skorch).
(b) Growth with n: ``BoostMISClassifier(max_epochs=2)`` on n = 1e3, 1e4, 1e5
    rows (``--quick``: no 1e5) x 64 Gaussian-blob features, 10 classes, 10%
    labeled; s/epoch = fit time / 2 and s/epoch per 1k rows (flat = linear).
(c) kNN density ``sklearn_boostmis.query.knn_density(Z, n_neighbors=10)``
    (``knn_mean_cosine``) on n = 1e3, 1e4, 1e5 (``--quick``: no 1e5) random
    256-d float32 rows (the MLP embedding size), ``backend="torch"`` (chunked
    matmul + topk) vs ``"faiss"`` (exact ``IndexFlatIP``): seconds of one call
    each and the max abs difference of the two results.

One call per cell after a small warm-up; single runs on a shared machine are
noisy (load average printed). Usage: ``python benchmarks/cost.py [--quick]
[--write]`` (full: about 3 min on 2 shared cores with ``OMP_NUM_THREADS=1``).
"""

import argparse
import math
import os
import sys
import time
import warnings

import _common as common
import numpy as np
import torch
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from skorch import NeuralNetClassifier

from sklearn_boostmis import BoostMISClassifier
from sklearn_boostmis.datasets import make_mescc_like
from sklearn_boostmis.modules import MLPClassifierModule
from sklearn_boostmis.query import knn_density


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def n_steps(net):
    return sum(len(h["batches"]) for h in net.history_)


def overhead_data(quick):
    d = make_mescc_like(scale=0.3 if quick else 1.0, task="six", random_state=0)
    n_lab = 150 if quick else 500
    X = StandardScaler().fit_transform(d.X_train).astype(np.float32)
    keep, _ = train_test_split(np.arange(len(X)), train_size=n_lab,
                               stratify=d.y_train, random_state=0)
    y = np.full_like(d.y_train, -1)
    y[keep] = d.y_train[keep]
    X_d, y_d, *_ = common.few_label_split("digits", 50, 0)
    return [(f"SYNTHETIC MESCC-like six ({len(X)}x2048, {n_lab} labels)", X, y, 10),
            (f"digits ({len(X_d)}x64, 50 labels)", X_d, y_d, 20)]


def supervised(X, y, p, max_epochs):
    torch.manual_seed(0)
    return NeuralNetClassifier(
        MLPClassifierModule, module__n_features=X.shape[1],
        module__n_classes=len(np.unique(y)), criterion=torch.nn.CrossEntropyLoss,
        optimizer=torch.optim.SGD, lr=p["lr"], optimizer__momentum=p["momentum"],
        batch_size=p["batch_size"], max_epochs=max_epochs, train_split=None,
        verbose=0)


def overhead(quick):
    rows, data = [], overhead_data(quick)
    _, X, y, _ = data[-1]  # warm-up of both (first-call costs)
    timed(BoostMISClassifier(max_epochs=1).fit, X, y)
    timed(supervised(X, y, BoostMISClassifier().get_params(), 1).fit,
          X[y != -1], y[y != -1].astype(np.int64))
    for name, X, y, epochs in data:
        ours, t_ours = timed(
            BoostMISClassifier(max_epochs=epochs, random_state=0).fit, X, y)
        s_ours, p = n_steps(ours), ours.get_params()
        lab = y != -1
        per_epoch = math.ceil(lab.sum() / p["batch_size"])
        sup = supervised(X, y[lab], p, math.ceil(s_ours / per_epoch))
        sup, t_sup = timed(sup.fit, X[lab], y[lab].astype(np.int64))
        s_sup = n_steps(sup)
        samples_sup = sum(b["train_batch_size"] for h in sup.history_
                          for b in h["batches"])
        # full steps assumed (the last, shorter one too) and the no-grad weak
        # view counted: samples/s flatters BoostMIS; the time per step is exact
        samples_ours = s_ours * p["batch_size"] * (1 + 2 * p["mu"])
        rows.append([
            name, f"BoostMIS {s_ours} / skorch {s_sup}",
            f"{s_ours / t_ours:.1f} / {s_sup / t_sup:.1f}",
            f"{samples_ours / t_ours:,.0f} / {samples_sup / t_sup:,.0f}",
            f"{(t_ours / s_ours) / (t_sup / s_sup):.2f}",
            f"{t_ours:.2f} / {t_sup:.2f}",
        ])
        log(f"overhead {name}: {rows[-1]}")
    header = ["data", "steps", "steps/s (BoostMIS / skorch)",
              "samples/s (BoostMIS / skorch)", "time per step ratio", "fit s"]
    return common.markdown_table(header, rows)


def blobs(n, d, n_classes=10, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(n_classes, size=n)
    X = (rng.normal(size=(n_classes, d))[y] + rng.normal(size=(n, d)))
    y_partial = np.where(rng.random(n) < 0.1, y, -1)
    return X.astype(np.float32), y_partial


def growth(sizes, epochs=2):
    rows, prev = [], None
    timed(BoostMISClassifier(max_epochs=1).fit, *blobs(500, 64))  # warm-up
    for n in sizes:
        X, y = blobs(n, 64)
        clf, sec = timed(
            BoostMISClassifier(max_epochs=epochs, random_state=0).fit, X, y)
        per_epoch = sec / epochs
        rows.append([f"{n:,}", n_steps(clf), f"{sec:.2f}", f"{per_epoch:.2f}",
                     f"{per_epoch / (n / 1000):.3f}",
                     "-" if prev is None else f"{per_epoch / prev:.1f}"])
        prev = per_epoch
        log(f"growth n={n}: {sec:.1f} s")
    header = ["rows (x 64 features, 10% labeled)", "steps (2 epochs)", "fit s",
              "s/epoch", "s/epoch per 1k rows", "s/epoch vs previous n (x10 rows)"]
    return common.markdown_table(header, rows)


def density(sizes, dim=256):
    rows = []
    knn_density(torch.randn(300, dim), backend="torch")  # warm-up
    knn_density(torch.randn(300, dim), backend="faiss")
    for n in sizes:
        Z = torch.randn(n, dim, generator=torch.Generator().manual_seed(n))
        d_t, t_t = timed(knn_density, Z, n_neighbors=10, backend="torch")
        d_f, t_f = timed(knn_density, Z, n_neighbors=10, backend="faiss")
        diff = (d_t.double() - d_f.double()).abs().max().item()
        rows.append([f"{n:,}", f"{t_t:.3f}", f"{t_f:.3f}", f"{t_t / t_f:.2f}",
                     f"{diff:.1e}"])
        log(f"density n={n}: torch {t_t:.2f} s, faiss {t_f:.2f} s, diff {diff:.1e}")
    header = ["rows (x 256)", "torch s", "faiss s", "torch / faiss",
              "max abs diff"]
    return common.markdown_table(header, rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="smaller MESCC-like data, no 1e5-row cells")
    parser.add_argument("--write", action="store_true", help="update RESULTS.md")
    args = parser.parse_args()
    sizes = [1_000, 10_000] if args.quick else [1_000, 10_000, 100_000]
    start = time.perf_counter()
    parts = [overhead(args.quick), growth(sizes), density(sizes)]
    minutes = (time.perf_counter() - start) / 60
    print("\n\n".join(parts))
    if args.write:
        cmd = "python benchmarks/cost.py " + " ".join(sys.argv[1:])
        load = " ".join(f"{v:.1f}" for v in os.getloadavg())
        common.write_section("cost", "\n\n".join([
            "## Cost: semi-supervised overhead, growth with n, kNN density backends",
            f"Command: `OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}"
            f" {cmd}`  \nMachine: {common.machine_info()}; torch threads "
            f"{torch.get_num_threads()}; load average at end {load}  \n"
            f"Runtime: {minutes:.1f} min. Single runs on a shared machine: noisy.",
            "### (a) BoostMIS `fit` vs a supervised `skorch.NeuralNetClassifier` "
            "(same `MLPClassifierModule`, labels only, >= the same number of SGD "
            "steps)\n\nA step is one optimiser update; samples/s counts forward "
            "rows: B(1 + 2 mu) = 320 per BoostMIS step (labeled + weak and strong "
            "unlabeled views; an epoch's last, shorter step counted as full), the "
            "batch rows per skorch step. Time per step ratio "
            "= BoostMIS s/step / skorch s/step.",
            parts[0],
            "### (b) `BoostMISClassifier(max_epochs=2).fit` time vs rows",
            parts[1],
            "### (c) `knn_density(Z, n_neighbors=10)`: torch chunks vs faiss "
            "(exact inner product), random 256-d rows",
            parts[2],
        ]))


if __name__ == "__main__":
    main()
