"""Query cost at scale: time, peak memory and neighbour recall, to 1e6 rows.

``InformativeQuerySampler(candidate_threshold=1.0, knn_backend=B,
random_state=0)(clf, X_pool, n_instances=100)`` on float32 pools of 1e4, 1e5
and 1e6 rows x 2048 features (1e6 x 2048 float32 = 7.6 GiB), the pool a
Gaussian mixture (100 unit-variance blobs around N(0, I) centres, generated
chunk by chunk with per-chunk seeds). ``candidate_threshold=1.0`` makes every
row a candidate, the worst case: AUS scores the whole pool and BUS ranks it.
The classifier is fitted once (``max_epochs=3`` on 2,000 rows of the same
mixture, 200 labeled, 10 classes = blob mod 10, ``n_jobs`` = the thread count)
and shared by every run.

Each cell runs in a fresh (spawned) child process that builds its pool, resets its
peak RSS (``/proc/self/clear_refs``), runs the query, and reads the peak
(``VmHWM``): *peak RSS* is the whole process (pool, model, interpreter)
during the query; *pool GiB* the pool's own size. Backends side by side:
``"faiss"`` (exact, ``IndexFlatIP``) up to ``--exact-up-to`` rows and ``"ivf"``
(approximate inverted lists, what ``knn_backend="auto"`` runs from 50,000
rows) at every size, once per ``--n-probe`` value (the sampler's
``n_probe``, lists searched for each list; default 8). *density s* is the kNN
density call alone. Neighbour recall@10 of a run: on 1,000 rows drawn at
random, the share of each row's 10 exact nearest neighbours (brute force over
the whole pool's embedding) that the run found, and the mean absolute error
of its density on those rows.
*picks shared with exact*: of the 100 rows picked, how many the exact run
picked too (where both ran); at a size without an exact run, how many the run
with the largest ``n_probe`` picked too.

Usage: ``python benchmarks/query_cost.py [--sizes 10000 100000 1000000]
[--threads 2] [--exact-up-to 100000] [--n-probe 8 32] [--write]``; the 1e6
cell needs about 16 GiB of free memory. Threads: torch and faiss both use
``--threads``.
"""

import argparse
import multiprocessing as mp
import os
import pickle
import sys
import tempfile
import time
import warnings
from pathlib import Path

import _common as common
import numpy as np
import torch
import torch.nn.functional as F

from sklearn_boostmis import BoostMISClassifier
from sklearn_boostmis.query import InformativeQuerySampler, bus, sampler

N_BLOBS, CHUNK, K, N_PICK, N_RECALL = 100, 50_000, 10, 100, 1_000
TARGET_S = 600


def log(msg):  # progress on stderr, tables on stdout
    print(msg, file=sys.stderr, flush=True)


def pool_rows(start, stop, d, seed=0):
    """Rows ``start:stop`` of the mixture pool and their blobs, the same
    whichever chunks they are made in."""
    centres = np.random.default_rng([seed, d]).standard_normal((N_BLOBS, d))
    out = np.empty((stop - start, d), dtype=np.float32)
    blobs = np.empty(stop - start, dtype=np.int64)
    for first in range(start - start % CHUNK, stop, CHUNK):
        rng = np.random.default_rng([seed, d, first // CHUNK])
        rows = rng.standard_normal((CHUNK, d), dtype=np.float32)
        blob = rng.integers(N_BLOBS, size=CHUNK)
        rows += centres[blob].astype(np.float32)
        lo, hi = max(first, start), min(first + CHUNK, stop)
        out[lo - start : hi - start] = rows[lo - first : hi - first]
        blobs[lo - start : hi - start] = blob[lo - first : hi - first]
    return out, blobs


def fit_classifier(d, threads):
    X, blob = pool_rows(0, 2000, d, seed=1)
    y = np.full(2000, -1)
    y[:200] = blob[:200] % 10
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return BoostMISClassifier(max_epochs=3, n_jobs=threads, random_state=0).fit(
            X, y
        )


def _status(key):
    with open("/proc/self/status") as f:
        line = next((ln for ln in f if ln.startswith(key + ":")), f"{key}: 0 kB")
    return int(line.split()[1]) * 1024


def _record_neighbours(seen, n):
    """Wrap the kNN engines and the density call so that a query leaves its
    embedding, neighbour indices and density time in ``seen``."""
    for name in ("_knn_torch", "_knn_faiss", "_knn_ivf"):
        engine = getattr(bus, name)

        def recording(*args, _engine=engine, **kwargs):
            idx, val = _engine(*args, **kwargs)
            if len(idx) == n:  # the whole pool's search, not a list's
                seen["idx"] = idx
            return idx, val

        setattr(bus, name, recording)
    density = sampler.knn_density

    def timed_density(Z, **kwargs):
        seen["Z"] = Z
        start = time.perf_counter()
        rho = density(Z, **kwargs)
        seen["density_s"] = time.perf_counter() - start
        seen["rho"] = rho
        return rho

    sampler.knn_density = timed_density


def _recall(seen, n_sample=N_RECALL):
    """Recall@K of the recorded neighbours and density error, on a sample."""
    Zn = F.normalize(seen["Z"].flatten(start_dim=1).float(), dim=1)
    rows = torch.from_numpy(
        np.sort(np.random.default_rng(0).choice(len(Zn), n_sample, replace=False))
    )
    idx, val = bus._knn_torch(Zn[rows], Zn, K + 1, 256, False)
    idx, val = bus._drop_own(idx, val, rows, K)
    found = seen["idx"][rows]
    hits = (found.unsqueeze(2) == idx.unsqueeze(1)).any(dim=2).sum(dim=1)
    err = (seen["rho"][rows].double() - val.double().mean(dim=1)).abs()
    return hits.double().mean().item() / K, err.mean().item()


def _measure(model, n, d, backend, n_probe, threads, queue):
    clf = pickle.loads(model)
    torch.set_num_threads(threads)
    try:
        import faiss

        faiss.omp_set_num_threads(threads)
    except ImportError:
        pass
    X = np.empty((n, d), dtype=np.float32)
    for start in range(0, n, CHUNK):
        X[start : start + CHUNK] = pool_rows(start, min(start + CHUNK, n), d)[0]
    seen = {}
    _record_neighbours(seen, n)
    probes = {} if n_probe is None else {"n_probe": n_probe}  # exact: unused
    query = InformativeQuerySampler(
        candidate_threshold=1.0, knn_backend=backend, random_state=0, **probes
    )
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset VmHWM to the current RSS
    except OSError:
        pass
    base = _status("VmRSS")
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        idx, _ = query(clf, X, n_instances=N_PICK)
    seconds = time.perf_counter() - start
    peak = max(_status("VmHWM"), _status("VmRSS"))
    recall, err = _recall(seen)
    queue.put(
        {
            "seconds": seconds,
            "density_s": seen["density_s"],
            "base": base,
            "peak": peak,
            "backend": query.knn_backend_,
            "recall": recall,
            "rho_err": err,
            "picks": np.sort(idx),
        }
    )


def run_cell(clf, n, d, backend, n_probe, threads, limit):
    # spawn, not fork: a forked child of a process whose torch already ran
    # with several OpenMP threads can hang
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    # plain bytes: torch's own pickling of tensors to a child goes through
    # shared memory, which is refused here
    model = pickle.dumps(clf)
    proc = ctx.Process(
        target=_measure, args=(model, n, d, backend, n_probe, threads, queue)
    )
    proc.start()
    result = None
    deadline = time.monotonic() + limit
    while proc.is_alive() and time.monotonic() < deadline:
        try:
            result = queue.get(timeout=1)
            break
        except Exception:  # queue.Empty: keep waiting
            pass
    if result is None and proc.is_alive():
        proc.terminate()
        status = f"> {limit} s (stopped)"
    elif result is None:
        status = f"failed (exit {proc.exitcode})"
    else:
        status = None
    proc.join()
    return result, status


def table(sizes, d, threads, exact_up_to, limit, n_probes=(8,)):
    clf = fit_classifier(d, threads)
    rows, exact_picks, cells = [], {}, []
    for n in sizes:
        runs = ([("faiss", None)] if n <= exact_up_to else []) + [
            ("ivf", p) for p in n_probes
        ]
        approximate = {}  # n_probe -> (row position, picks) at this size
        for backend, n_probe in runs:
            probes = "-" if n_probe is None else str(n_probe)
            log(f"n={n:,} backend={backend} n_probe={probes} ...")
            res, status = run_cell(clf, n, d, backend, n_probe, threads, limit)
            pool_gib = n * d * 4 / 2**30
            if res is None:
                rows.append(
                    [f"{n:,}", f"{pool_gib:.2f}", backend, probes, status] + ["-"] * 7
                )
                log(f"  {status}")
                continue
            if backend == "faiss":
                exact_picks[n] = res["picks"]
            shared = (
                f"{len(np.intersect1d(res['picks'], exact_picks[n]))}"
                if n in exact_picks
                else "-"
            )
            peak_gib = res["peak"] / 2**30
            rows.append(
                [
                    f"{n:,}",
                    f"{pool_gib:.2f}",
                    res["backend"],
                    probes,
                    f"{res['seconds']:.1f}",
                    f"{res['density_s']:.1f}",
                    f"{peak_gib:.2f}",
                    f"{res['peak'] / (n * d * 4):.2f}",
                    f"{(res['peak'] - res['base']) / 2**30:.2f}",
                    f"{res['recall']:.3f}",
                    f"{res['rho_err']:.1e}",
                    shared,
                ]
            )
            cells.append((n, backend, n_probe, res))
            if backend == "ivf":
                approximate[n_probe] = (len(rows) - 1, res["picks"])
            log(f"  {rows[-1]}")
        if n not in exact_picks and len(approximate) > 1:
            # no exact run: picks shared with the closest-to-exact search
            top = max(approximate)
            for n_probe, (row, picks) in approximate.items():
                if n_probe != top:
                    common_picks = len(np.intersect1d(picks, approximate[top][1]))
                    rows[row][-1] = f"{common_picks} (with n_probe {top})"
    header = [
        "pool rows",
        "pool GiB",
        "kNN backend",
        "n_probe",
        "query s",
        "density s",
        "peak RSS GiB",
        "peak / pool",
        "peak over pre-query RSS GiB",
        "recall@10",
        "mean abs density error",
        "picks shared with exact",
    ]
    return common.markdown_table(header, rows), cells


def verdict(cells, d):
    big = [(n, p, res) for n, b, p, res in cells if b == "ivf" and n >= 1_000_000]
    if not big:
        return "The 1,000,000-row cell was not run."
    lines = []
    for n, n_probe, res in big:
        pool = n * d * 4
        time_ok, mem_ok = res["seconds"] <= TARGET_S, res["peak"] < 2 * pool
        lines.append(
            f"- n_probe {n_probe}: time {res['seconds']:.0f} s "
            f"({'met' if time_ok else 'NOT met'}), peak RSS "
            f"{res['peak'] / 2**30:.2f} GiB = {res['peak'] / pool:.2f} x the pool "
            f"({'met' if mem_ok else 'NOT met'}), recall@10 {res['recall']:.3f}."
        )
    return (
        f"Target (1,000,000 x {d} float32 scored and {N_PICK} rows picked in at "
        f"most {TARGET_S // 60} min on 2 cores, peak memory below twice the "
        "pool):\n\n" + "\n".join(lines)
    )


def plot(cells, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.6))
    probes = sorted({p for _, b, p, _ in cells if b == "ivf"})
    styles = ("s-", "^-", "v-", "d-", "x-", "+-")
    runs = [("faiss", None, "o--")] + [
        ("ivf", p, styles[i % len(styles)]) for i, p in enumerate(probes)
    ]
    for backend, n_probe, style in runs:
        pts = [(n, r) for n, b, p, r in cells if b == backend and p == n_probe]
        if not pts:
            continue
        ns = [n for n, _ in pts]
        label = (
            "exact (faiss)"
            if backend == "faiss"
            else f"approximate (ivf, n_probe {n_probe})"
        )
        ax1.plot(ns, [r["seconds"] for _, r in pts], style, label=label)
        ax2.plot(ns, [r["peak"] / (n * 2048 * 4) for n, r in pts], style, label=label)
    ax1.axhline(TARGET_S, color="grey", lw=0.8, ls=":")
    ax2.axhline(2, color="grey", lw=0.8, ls=":")
    ax1.set(
        xscale="log",
        yscale="log",
        xlabel="pool rows (x 2048)",
        ylabel="query s (100 picks)",
        title="Query time",
    )
    ax2.set(
        xscale="log",
        xlabel="pool rows (x 2048)",
        ylabel="peak RSS / pool size",
        title="Peak memory",
    )
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000]
    )
    parser.add_argument("--features", type=int, default=2048)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch and faiss threads of the query (on 2 cores shared with other "
        "jobs, 1 ran the 1e5-row approximate search 3x faster than 2)",
    )
    parser.add_argument(
        "--exact-up-to",
        type=int,
        default=100_000,
        help="largest pool also queried with the exact backend",
    )
    parser.add_argument(
        "--n-probe",
        type=int,
        nargs="+",
        default=[8],
        help="the sampler's n_probe of the approximate runs, one run each",
    )
    parser.add_argument(
        "--limit", type=int, default=1800, help="seconds allowed per cell"
    )
    parser.add_argument(
        "--write",
        action="store_true",
        help="update RESULTS.md and benchmarks/<section>.png",
    )
    parser.add_argument(
        "--section",
        default="query_cost",
        help="RESULTS.md section (and figure name) that --write replaces",
    )
    args = parser.parse_args()
    start, rev = time.perf_counter(), common.git_revision()
    text, cells = table(
        sorted(args.sizes),
        args.features,
        args.threads,
        args.exact_up_to,
        args.limit,
        args.n_probe,
    )
    summary = verdict(cells, args.features)
    minutes = (time.perf_counter() - start) / 60
    print(text + "\n\n" + summary, flush=True)
    out = Path(__file__).parent if args.write else Path(tempfile.mkdtemp())
    png = out / f"{args.section}.png"
    plot(cells, png)
    log(f"figure: {png}")
    if not args.write:
        return
    cmd = "python benchmarks/query_cost.py " + " ".join(sys.argv[1:])
    omp = os.environ.get("OMP_NUM_THREADS", "unset")
    load = " ".join(f"{v:.1f}" for v in os.getloadavg())
    run = (
        f"Command: `OMP_NUM_THREADS={omp} {cmd}`  \nMachine: "
        f"{common.machine_info()}; query with torch and faiss threads "
        f"{args.threads}; git {rev} at start; load average at end {load} (other "
        f"jobs share the cores)  \nRuntime: {minutes:.1f} min. One run per cell "
        "on a shared machine: timings are noisy."
    )
    setup = (
        "`InformativeQuerySampler(candidate_threshold=1.0, knn_backend=B, "
        "n_probe=P)(clf, "
        f"X_pool, n_instances={N_PICK})` on float32 Gaussian-mixture pools x "
        f"{args.features}; every row a candidate (the worst case). One spawned "
        "process per cell; peak RSS is the whole process during the query, "
        "pool included; recall@10 and the density error on 1,000 random rows "
        "against a brute-force search of the whole pool's embedding. See the "
        "script's docstring."
    )
    figure = f"![query cost]({os.path.relpath(png, common.RESULTS.parent)})"
    title = "## Query cost at scale: time, peak memory, neighbour recall"
    if len(args.n_probe) > 1:
        title += f" (n_probe {', '.join(map(str, args.n_probe))})"
    body = "\n\n".join([title, run, setup, text, summary, figure])
    common.write_section(args.section, body)


if __name__ == "__main__":
    main()
