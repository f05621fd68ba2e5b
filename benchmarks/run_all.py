"""Regenerate ``benchmarks/RESULTS.md`` (and its PNGs): the one benchmark entry point.

Runs every benchmark script in a child process with ``--write`` (each replaces
its own section of RESULTS.md) and ``OMP_NUM_THREADS=1`` in the child
environment, prints progress and per-script runtime, then rewrites the header
of RESULTS.md (machine, library versions, date, git revision, the exact
command of every table, table of contents, GPU note). Scripts, in section
order:

``ssl_quality.py`` (digits 50 / breast cancer 20 labels; again on breast
cancer with 5 model seeds per split; again on splits 100-109, not used to
choose the defaults), ``ssl_levers.py`` (one setting changed
from the defaults at a time), ``ssl_grid.py``
(SYNTHETIC MESCC-like two/six grades, more budgets), ``active_learning.py``
(closed-loop learning curves), ``ablations.py`` (threshold,
selectors, density, symmetric AUS), ``cost.py`` (semi-supervised overhead,
growth with n, kNN backends), ``query_cost.py`` (query time, peak memory and
neighbour recall up to 1e6 rows; about 10 min and 16 GiB free memory for the
1e6-row cell, not part of the estimate below), ``throughput.py`` (``fit`` vs a
bare PyTorch loop), ``images.py`` (only if the file exists), ``threads.py``
(fit time with torch's default threads and with ``n_jobs=None``),
``imbalance.py`` (imbalanced cells, every method, macro-averaged metrics; about
70 CPU-minutes per seed for the full cells, not part of the estimate below),
``cycle_time.py`` (one ``boostmis run`` cycle at MESCC size, today's defaults
against the settings before steps and the prior correction),
``run_vs_labels_only.py`` (``boostmis run`` on MESCC-like data against the
labels-only network at every fit; about 25 CPU-minutes, not part of the
estimate below), ``gpu_check.py``
(only when CUDA is available).

``--quick`` is passed to every script that has it (cheaper epochs, smaller
data; seeds stay at 3); ``images.py`` gets ``--max-epochs 20`` instead, the
other scripts without it run as in the full mode.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/run_all.py           # full
    OMP_NUM_THREADS=1 python benchmarks/run_all.py --quick   # < 15 min, 2 cores

Expected time on 2 shared CPU cores: ``--quick`` about 12 min: 6.9 min
measured (2026-11-26, load average 1.4-3.6 from other jobs) before
``ssl_levers.py --quick`` (86 s measured) and the fresh-splits quality run
(about 4 min, estimated) were added; the full run roughly 100-120 min,
estimated from per-script figures, not measured end to end: ssl_quality ~10
(10 seeds) + ~15 (breast cancer, 5 model seeds) + ~10 (splits 100-109),
ssl_levers ~24 (two parallel fits), ssl_grid ~25, active_learning ~9 (10
seeds, two at a time),
ablations ~3.3 (10 seeds, two in parallel), cost ~3, throughput ~3,
images ~12 min (10 seeds, run beside other jobs).
"""

import argparse
import datetime
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import _common as common
import numpy as np
import torch

HERE = Path(__file__).resolve().parent
# (script, section, title, extra args in full mode, extra args with --quick)
SCRIPTS = [
    (
        "ssl_quality.py",
        "ssl_quality",
        "Semi-supervised quality",
        ["--seeds", "10"],
        ["--seeds", "3"],
    ),
    (
        "ssl_quality.py",
        "ssl_quality_model_seeds",
        "Semi-supervised quality, 5 model seeds (breast cancer)",
        ["--seeds", "10", "--model-seeds", "5", "--datasets", "breast_cancer"],
        ["--seeds", "3", "--model-seeds", "2", "--datasets", "breast_cancer"],
    ),
    (
        "ssl_quality.py",
        "ssl_quality_fresh_splits",
        "Semi-supervised quality on splits not used to choose the defaults",
        ["--seeds", "10", "--first-seed", "100"],
        ["--seeds", "3", "--first-seed", "100"],
    ),
    (
        "ssl_levers.py",
        "ssl_levers",
        "One setting at a time (quality levers)",
        ["--seeds", "10"],
        [],
    ),
    ("ssl_grid.py", "ssl_grid", "Semi-supervised grid (MESCC-like SYNTHETIC)", [], []),
    ("active_learning.py", "active_learning", "Active learning", [], []),
    ("ablations.py", "ablations", "Ablations", [], []),
    ("cost.py", "cost", "Cost: overhead, growth with n, kNN backends", [], []),
    (
        "query_cost.py",
        "query_cost",
        "Query cost at scale (to 1e6 rows x 2048)",
        [],
        ["--sizes", "10000", "100000"],
    ),
    (
        "throughput.py",
        "throughput",
        "Training throughput vs bare PyTorch",
        ["--threads", "1"],
        ["--threads", "1"],
    ),
    (
        "images.py",
        "images",
        "Images (digits 8x8)",
        ["--seeds", "10"],
        ["--max-epochs", "20"],
    ),
    (
        "threads.py",
        "threads",
        "Threads: torch's default against n_jobs=None",
        ["--repeats", "3"],
        [],
    ),
    (
        "imbalance.py",
        "imbalance",
        "Class imbalance (splits 0-9)",
        ["--seeds", "10", "--labels", "20", "100"],
        ["--seeds", "3", "--labels", "50", "--datasets", "digits 9-vs-rest"],
    ),
    ("cycle_time.py", "cycle_time_two", "One boostmis run cycle at MESCC size", [], []),
    (
        "run_vs_labels_only.py",
        "run_vs_labels_only",
        "boostmis run against the labels-only network, cycle by cycle",
        [],
        ["--seeds", "1", "--cycles", "1"],
    ),
    ("gpu_check.py", "gpu_check", "GPU check", [], []),
]
HEADER_START, HEADER_END = "<!-- header:start -->", "<!-- header:end -->"


def command(script, quick):
    """Argument list for one script, or None when it must be skipped."""
    name, _, _, full_args, quick_args = script
    path = HERE / name
    if not path.exists():
        return None
    if name == "gpu_check.py" and not torch.cuda.is_available():
        return None
    args = [str(path.relative_to(HERE.parent)), "--write"]
    if quick and '"--quick"' in path.read_text():
        args.append("--quick")
    return args + (quick_args if quick else full_args)


def reorder(text, order):
    """Sections of RESULTS.md in ``order`` (unknown ones after), each with an anchor."""
    found = re.finditer(
        r"(<!-- (\w+):start -->)\n(?:<a id=\"\w+\"></a>\n)?(.*?"
        r"<!-- \2:end -->)",
        text,
        re.DOTALL,
    )
    blocks = {
        m.group(2): f'{m.group(1)}\n<a id="{m.group(2)}"></a>\n{m.group(3)}'
        for m in found
    }
    blocks.pop("header", None)
    names = [n for n in order if n in blocks] + [n for n in blocks if n not in order]
    return "\n\n".join(blocks[n] for n in names)


def faiss_version():
    try:
        import faiss
    except ImportError:
        return "not installed"
    return getattr(faiss, "__version__", "unknown")


def header(quick, ran, total, load):
    rows = []
    for _, section, title, status, seconds, argv in ran:
        cmd = f"`OMP_NUM_THREADS=1 python {' '.join(argv)}`" if argv else "-"
        where = f"[{title}](#{section})" if status == "ok" else title
        rows.append([where, cmd, status, "-" if seconds is None else f"{seconds:.0f}"])
    mode = (
        "quick mode: reduced epochs / data sizes, seeds >= 3; numbers are "
        "rougher than a full run"
        if quick
        else "full run"
    )
    gpu = (
        "GPU figures are in the `gpu_check` section."
        if torch.cuda.is_available()
        else "**No GPU figures**: no GPU was available in the session that "
        "produced this file, so `gpu_check.py` was not run; on a CUDA machine "
        "run `python benchmarks/gpu_check.py --write` (or `run_all.py`, which "
        "includes it when CUDA is available)."
    )
    return "\n".join(
        [
            HEADER_START,
            "# Benchmark results",
            "",
            f"Generated by `OMP_NUM_THREADS=1 python benchmarks/run_all.py"
            f"{' --quick' if quick else ''}` ({mode}) on "
            f"{datetime.datetime.now().isoformat(timespec='minutes')}, git "
            f"{common.git_revision()} (package edited concurrently; each section "
            f"states its own run).  ",
            f"Machine and libraries: {common.machine_info()}; numpy "
            f"{np.__version__}, faiss {faiss_version()}.  ",
            f"Every script ran in a child process with `OMP_NUM_THREADS=1` (one "
            f"torch / faiss thread). Total {total / 60:.1f} min; load average at "
            f"end {load} (**shared machine: CPU timings are noisy**).",
            "",
            gpu,
            "",
            "## Contents (command of every table)",
            "",
            common.markdown_table(["section", "command", "status", "s"], rows),
            HEADER_END,
        ]
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="cheaper settings in every script that has --quick",
    )
    args = parser.parse_args()
    env = dict(os.environ, OMP_NUM_THREADS="1")
    start, ran = time.perf_counter(), []
    for script in SCRIPTS:
        name, section, title = script[:3]
        argv = command(script, args.quick)
        if argv is None:
            reason = "no CUDA" if name == "gpu_check.py" else "file missing"
            print(f"[run_all] skip {name} ({reason})", flush=True)
            ran.append((name, section, title, f"skipped ({reason})", None, None))
            continue
        print(f"[run_all] {' '.join(argv)} ...", flush=True)
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, *argv],
            cwd=HERE.parent,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        seconds = time.perf_counter() - t0
        status = "ok" if proc.returncode == 0 else f"FAILED (exit {proc.returncode})"
        if proc.returncode != 0:
            print(proc.stderr[-3000:], file=sys.stderr, flush=True)
        print(f"[run_all] {name}: {status} in {seconds:.0f} s", flush=True)
        ran.append((name, section, title, status, seconds, argv))
    total = time.perf_counter() - start
    load = " ".join(f"{v:.1f}" for v in os.getloadavg())
    text = common.RESULTS.read_text() if common.RESULTS.exists() else ""
    body = reorder(text, [s[1] for s in SCRIPTS])
    common.RESULTS.write_text(
        header(args.quick, ran, total, load) + "\n\n" + body + "\n"
    )
    failed = [r[0] for r in ran if r[3].startswith("FAILED")]
    print(
        f"[run_all] total {total:.0f} s ({total / 60:.1f} min); load {load}; "
        f"failed: {', '.join(failed) or 'none'}",
        flush=True,
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
