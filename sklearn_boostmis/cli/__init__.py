"""The ``boostmis`` command line: ``demo``, ``run`` and ``query``.

``boostmis demo`` runs the closed loop on scikit-learn's bundled digits beside
two baselines; ``boostmis run DATA_DIR`` runs (or resumes) the closed loop on a
MESCC feature folder with a simulated oracle; ``boostmis query DATA_DIR`` trains
on a person's labels and writes the next rows to label. Bad input ends with
one ``error: ...`` line on stderr and exit status 2.

The arguments are parsed before anything heavy is imported: a subcommand's
module (and with it torch and scikit-learn) is loaded only to run it.
"""

import argparse
import importlib
import sys
import warnings
from contextlib import contextmanager

from .. import __version__

__all__ = ["load_run_model", "main"]


# Name -> the submodule that defines it, imported on first use (PEP 562).
_LAZY_NAMES = {
    "cmd_demo": "demo",
    "cmd_query": "query",
    "cmd_run": "run",
    "load_run_model": "run",
}


def __getattr__(name):
    if name not in _LAZY_NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_LAZY_NAMES[name]}", __name__), name)


def __dir__():
    return sorted(set(globals()) | set(__all__))


def _int_in(low, high=None):
    """An argparse type: an integer in ``[low, high]``."""

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected an integer, got {text!r}"
            ) from None
        if value < low or (high is not None and value > high):
            bounds = f">= {low}" if high is None else f"in {low}..{high}"
            raise argparse.ArgumentTypeError(
                f"expected an integer {bounds}, got {value}"
            )
        return value

    return parse


_positive_int = _int_in(1)
_seed = _int_in(0, 2**32 - 1)  # numpy's seeds
MAX_STEPS = 2000  # --max-steps: 50 passes over MESCC's pool, 200 over digits'


def _max_steps(text):
    """``--max-steps``: a positive int, or 'none' for no bound."""
    return "none" if text == "none" else _positive_int(text)


def _share(text):
    """``--class-prior``: one positive, finite number."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (0 < value < float("inf")):
        raise argparse.ArgumentTypeError(f"a share must be positive, got {text}")
    return value


def _n_jobs(text):
    """``--n-jobs``: a non-zero int (joblib's convention: -1 = all cores)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value == 0:
        raise argparse.ArgumentTypeError("0 threads: give 1 or more, or -1 for all")
    return value


def _add_n_jobs(parser):
    parser.add_argument(
        "--n-jobs",
        type=_n_jobs,
        default=None,
        help="CPU threads torch uses (default: 1, which stays fast when other "
        "jobs share the cores; -1 = all cores; no effect on a GPU)",
    )


def _add_option(parser, flag, default, text, kind=_positive_int):
    """Add the option ``flag`` (type ``kind``); its help shows the default."""
    parser.add_argument(
        flag, type=kind, default=default, help=f"{text} (default: %(default)s)"
    )


def _build_parser():
    parser = argparse.ArgumentParser(
        prog="boostmis",
        description="BoostMIS: semi-supervised learning with adaptive pseudo-labeling "
        "and informative active annotation.",
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser(
        "demo",
        help="closed loop vs. baselines on scikit-learn's digits",
        description="Run a few BoostMIS annotation cycles on scikit-learn's bundled "
        "digits beside a random-query and a supervised-only baseline; print a "
        "table and write learning_curve.png and results.json.",
    )
    _add_option(demo, "--out", "boostmis_demo", "output folder", kind=None)
    _add_option(demo, "--seed", 0, "random seed", kind=_seed)
    demo.add_argument(
        "--quick", action="store_true", help="tiny configuration (seconds)"
    )
    _add_n_jobs(demo)

    common = argparse.ArgumentParser(add_help=False)
    _add_option(common, "--seed", 0, "random seed", kind=_seed)
    _add_option(
        common, "--max-epochs", 100, "passes over the unlabeled rows per fit, at most"
    )
    _add_option(
        common,
        "--max-steps",
        MAX_STEPS,
        "bound on each fit's optimiser steps, so that a fit's time stops growing "
        "with the pool (whole passes, at least one); 'none': --max-epochs passes",
        kind=_max_steps,
    )
    common.add_argument(
        "--class-weight",
        choices=["none", "balanced"],
        default="none",
        help="'balanced' weighs the supervised loss by inverse class frequency "
        "of the labeled rows, for imbalanced grades scored by macro-F1 "
        "(default: %(default)s)",
    )
    common.add_argument(
        "--prior-correction",
        choices=["classwise", "align", "adjust", "none"],
        default="classwise",
        help="class-prior correction for imbalanced grades: logit-adjusted "
        "losses with pseudo-labels aligned to the labeled prior or --class-prior "
        "('align') or prior-calibrated ('adjust'), and per-class thresholds "
        "normalised by the prior ('classwise', which is 'align' with them); "
        "'none' is the paper's method (default: %(default)s)",
    )
    common.add_argument(
        "--class-prior",
        type=_share,
        nargs="+",
        default=None,
        metavar="SHARE",
        help="the known share of each grade among the unlabeled rows and future "
        "patients, in grade order (e.g. 0.89 0.11; counts are normalised); the "
        "prior correction then aligns pseudo-labels and predictions to it "
        "(default: the prior of the labeled rows)",
    )
    _add_n_jobs(common)
    common.add_argument(
        "--device",
        default="auto",
        help="'auto' (CUDA if available), 'cpu', 'cuda', ... (default: %(default)s)",
    )

    run = sub.add_parser(
        "run",
        parents=[common],
        help="closed loop on a MESCC folder (simulated oracle)",
        description="Run, or resume, the BoostMIS closed loop on a MESCC feature "
        "folder with a simulated oracle (the train targets). OUT receives "
        "report.json, report.md, learning_curve.png, annotations.csv, "
        "model.safetensors with scaler.npz (load both with "
        "sklearn_boostmis.cli.load_run_model), and the loop's state (state.json, "
        "config.json, model.pkl: a pickle, only resume folders you created). Running "
        "again with the same OUT resumes; a finished run says it is complete and "
        "trains nothing, a larger --cycles adds cycles, other data or settings are "
        "refused.",
    )
    run.add_argument(
        "data_dir",
        metavar="DATA_DIR",
        help="folder with {train,val,test}-{features,targets}.npy",
    )
    run.add_argument(
        "--task", choices=("two", "six"), required=True, help="grading task"
    )
    _add_option(run, "--cycles", 5, "annotation cycles")
    _add_option(run, "--budget", 50, "K, rows per selector and cycle")
    _add_option(
        run, "--initial-labels", 100, "initial labels drawn stratified from train"
    )
    _add_option(run, "--out", "boostmis_run", "output folder", kind=None)

    query = sub.add_parser(
        "query",
        parents=[common],
        help="suggest the next rows for a person to label",
        description="Train on the train rows listed in LABELS.csv (a header with "
        "the columns index and label, others ignored; labels as class codes (3 or "
        "3.0) or names, empty = not answered), all other train rows unlabeled, and "
        "write the next candidates (index, rank, selector, aus_score, bus_score, "
        "predicted_class, predicted_grade; rank 1 = ask first) to --out. "
        "LABELS.csv is never modified; only train-features.npy is read.",
    )
    query.add_argument(
        "data_dir", metavar="DATA_DIR", help="folder with train-features.npy"
    )
    query.add_argument(
        "--labels",
        required=True,
        metavar="LABELS.csv",
        help="CSV with the columns index and label",
    )
    query.add_argument(
        "--budget",
        type=_positive_int,
        required=True,
        help="K, rows per selector (AUS and BUS)",
    )
    query.add_argument(
        "--out",
        required=True,
        metavar="CANDIDATES.csv",
        help="where to write the candidates",
    )
    query.add_argument(
        "--task",
        choices=("two", "six"),
        required=True,
        help="grading task: the class vocabulary of the labels and of predicted_grade",
    )
    return parser


@contextmanager
def _warnings_as_lines():
    """Show a warning as one ``warning: ...`` line, not Python's source excerpt."""
    original = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        text = " ".join(str(message).split())
        print(f"warning: {text}", file=file or sys.stderr)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = original


def main(argv=None):
    """Run the ``boostmis`` command line; return the exit status."""
    args = _build_parser().parse_args(argv)
    try:
        with _warnings_as_lines():
            # Through the module, so that the subcommand is imported only now.
            command = getattr(sys.modules[__name__], f"cmd_{args.command}")
            return int(command(args) or 0)
    except (ValueError, OSError) as exc:  # incl. FileNotFoundError, MESCCFormatError
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
