"""One ``boostmis run`` cycle on MESCC-sized data: old settings against the defaults.

The data are :func:`~sklearn_boostmis.datasets.write_mescc_like` at the MESCC
release's split sizes (5,207 / 1,011 / 1,077 rows x 2,048 features). Each
setting runs ``boostmis run DATA --task T --cycles 1 --budget 50
--initial-labels 100 --n-jobs 1`` in a fresh output folder: one annotation
cycle (fit on the 100 initial labels, query 2 x 50 rows, answers from the
simulated oracle) and the final fit on the 200 labels. The settings run
interleaved (before, after, before, ...) for ``--repeats`` rounds in one run,
so that both see the same machine load; the table gives the median seconds of
the cycle (its progress line), of the final fit and of the whole command, and
the test macro-F1 after the cycle and after the final fit.

``before``: ``--max-epochs 100 --max-steps none --prior-correction none``,
the command's settings before training length was counted in steps and before
the prior correction (every fit 100 passes over the pool, about 4,000 steps
here). ``after``: the command's defaults.

Usage: ``python benchmarks/cycle_time.py [--task two] [--repeats 1] [--write]``.
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

from _common import machine_info, markdown_table, write_section

from sklearn_boostmis.datasets import write_mescc_like

SETTINGS = {
    "before": [
        "--max-epochs",
        "100",
        "--max-steps",
        "none",
        "--prior-correction",
        "none",
    ],
    "after": [],
}
CYCLE = re.compile(r"^cycle 1/1: .*macro-F1 ([0-9.]+) \(([0-9.]+)s\)", re.M)
FINAL = re.compile(r"^final fit .*macro-F1 ([0-9.]+) \(([0-9.]+)s\)", re.M)


def run_once(data, task, setting, out):
    command = [
        sys.executable, "-m", "sklearn_boostmis", "run", data, "--task", task,
        "--cycles", "1", "--budget", "50", "--initial-labels", "100",
        "--n-jobs", "1", "--out", out, *SETTINGS[setting],
    ]  # fmt: skip
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    total = time.perf_counter() - start
    lines = done.stderr  # the command's progress lines
    cycle, final = CYCLE.search(lines), FINAL.search(lines)
    if cycle is None or final is None:
        raise RuntimeError(f"unexpected output of {command}:\n{lines}")
    return {
        "cycle_s": float(cycle.group(2)),
        "cycle_f1": float(cycle.group(1)),
        "final_s": float(final.group(2)),
        "final_f1": float(final.group(1)),
        "total_s": total,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=["two", "six"], default="two")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    runs = {name: [] for name in SETTINGS}
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "data")
        write_mescc_like(data, task=args.task, random_state=0)
        for r in range(args.repeats):
            for name in SETTINGS:
                out = os.path.join(tmp, f"{name}-{r}")
                runs[name].append(run_once(data, args.task, name, out))
                print(name, runs[name][-1], flush=True)
    keys = ["cycle_s", "final_s", "total_s", "cycle_f1", "final_f1"]
    medians = {
        n: {k: statistics.median(r[k] for r in v) for k in keys}
        for n, v in runs.items()
    }
    rows = [
        [name, *(f"{m[k]:.0f}" for k in keys[:3]), *(f"{m[k]:.3f}" for k in keys[3:])]
        for name, m in medians.items()
    ]
    ratio = medians["before"]["cycle_s"] / medians["after"]["cycle_s"]
    table = markdown_table(
        ["setting", "cycle (s)", "final fit (s)", "command (s)",
         "macro-F1 after cycle", "macro-F1 final"],
        rows,
    )  # fmt: skip
    body = (
        f"## One `boostmis run` cycle on MESCC-sized data ({args.task}-grade)\n\n"
        f"`python benchmarks/cycle_time.py --task {args.task} --repeats "
        f"{args.repeats}{' --write' if args.write else ''}` (see its docstring; "
        "1 torch thread per run, medians).\n\n"
        f"{table}\n\nCycle time before / after: {ratio:.1f}x, measured side by "
        f"side in one run; load average at the end {os.getloadavg()[0]:.1f}.\n\n"
        f"{machine_info()}"
    )
    print(body)
    if args.write:
        write_section(f"cycle_time_{args.task}", body)


if __name__ == "__main__":
    main()
