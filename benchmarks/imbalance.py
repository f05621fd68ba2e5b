"""Class-imbalanced data: every method on the same splits, macro-averaged metrics.

Data (all offline; 30 % held out, stratified; standardised on the train split):

- ``digits 9-vs-rest``: digits, 9 against the rest (about 10 % positive);
- ``digits six-grade``: digits 0-4 as class 0, digits 5-9 as classes 1-5,
  subsampled (once, fixed) to the MESCC six-grade prior 72 / 8 / 9 / 4 / 3 / 4 %;
- ``breast cancer 89/11``: benign against malignant subsampled to 44 (89 / 11);
- ``MESCC-like two`` / ``six`` (``--mescc``): :func:`make_mescc_like` at full
  size (2,048 features, the release's split sizes; its test split is held out;
  ``--mescc-scale 0.25`` keeps a quarter of the rows);
- balanced controls: digits with 50 labels, breast cancer with 20, one per class
  in equal numbers (``ssl_quality.py``'s splits).

Labels: ``n_L`` in ``--labels`` (those a data set allows), drawn stratified with
at least one label per class (one of each class, the rest stratified on the
remaining rows); the rest of the train split is unlabeled.

Methods: the BoostMIS network trained on its labels only (``lambda_u=0``) with
plain cross-entropy, ``class_weight="balanced"`` and the logit-adjusted loss;
``LogisticRegression(class_weight="balanced")`` on the labels only;
``SelfTraining(MLP)``; ``LabelSpreading``; FixMatch (``threshold="fixed"``);
BoostMIS as the paper (``prior_correction=None``) and with each prior
correction (``"align"``, ``"adjust"``, ``"align"`` with per-class thresholds,
``PriorCorrection(classwise=True)``), ``"align"`` with the swap-noise
strong view (:class:`~sklearn_boostmis.augment.MarginalResamplingNoise`), and
the default given the class prior a user may know (``class_prior=`` the
prevalence of the train split: ``"BoostMIS, known prior"``).
A prior-corrected fit is also scored with the other decision rules
``argmax(z + g log pi)``, ``g`` in 0 (balanced), 0.5 and 1 (the labeled prior,
``decision="prior"``), as rows ``"<method> (post-hoc g)"``.

Metrics on the held-out split: macro-F1 (primary), balanced accuracy, recall of
the rarest class, the share of predictions in the majority class beside its
share of the test labels, and how often a
:class:`~sklearn_boostmis.PseudoLabelCollapseWarning` was raised. Paired
differences "reference minus method" (mean +- standard error over the seeds;
a tie unless more than two standard errors from 0) compare each method with
``--reference``.

Seeds: ``--first-seed 0`` (splits 0-9) are the splits on which the default
was chosen; ``--first-seed 100`` reports it on fresh splits.

Usage: ``python benchmarks/imbalance.py [--seeds 10] [--first-seed 0]
[--labels 20 50 100] [--mescc] [--max-steps 2000] [--n-jobs 2] [--write]``.
"""

import argparse
import json
import shlex
import sys
import warnings
from pathlib import Path

import numpy as np
from _common import (
    few_label_split,
    machine_info,
    markdown_table,
    paired_difference,
    write_section,
)
from joblib import Parallel, delayed
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score, f1_score, recall_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from ssl_quality import LabeledRowsOnly
from ssl_quality import methods as ssl_methods

from sklearn_boostmis import BoostMISClassifier, PseudoLabelCollapseWarning
from sklearn_boostmis.augment import MarginalResamplingNoise
from sklearn_boostmis.datasets import make_mescc_like
from sklearn_boostmis.imbalance import PriorCorrection, make_prior_correction

SIX_GRADE_PRIOR = np.array([72, 8, 9, 4, 3, 4]) / 100


def _digits_six_grade():
    X, y = load_digits(return_X_y=True)
    rng = np.random.RandomState(0)
    n_major = int((y < 5).sum())
    total = n_major / SIX_GRADE_PRIOR[0]
    keep = [np.flatnonzero(y < 5)]
    for grade, digit in enumerate(range(5, 10), start=1):
        n = int(round(total * SIX_GRADE_PRIOR[grade]))
        keep.append(rng.choice(np.flatnonzero(y == digit), n, replace=False))
    keep = np.concatenate(keep)
    grades = np.where(y < 5, 0, y - 4)
    return X[keep], grades[keep]


def _breast_cancer_89_11():
    X, y = load_breast_cancer(return_X_y=True)  # 0 = malignant (212), 1 = benign
    rng = np.random.RandomState(0)
    malignant = rng.choice(np.flatnonzero(y == 0), 44, replace=False)
    keep = np.concatenate([np.flatnonzero(y == 1), malignant])
    return X[keep], 1 - y[keep]  # 1 = malignant, the minority


def _digits_nine():
    X, y = load_digits(return_X_y=True)
    return X, (y == 9).astype(int)


IMBALANCED = {
    "digits 9-vs-rest": _digits_nine,
    "digits six-grade": _digits_six_grade,
    "breast cancer 89/11": _breast_cancer_89_11,
}
MESCC = ("MESCC-like two", "MESCC-like six")
BALANCED = {
    "digits (balanced)": ("digits", 50),
    "breast cancer (balanced)": ("breast_cancer", 20),
}


def split(name, seed, mescc_scale=1.0):
    """``X_train, y_train, X_test, y_test`` (standardised, float32)."""
    if name in MESCC:
        data = make_mescc_like(task=name.split()[-1], scale=mescc_scale, random_state=0)
        X_train, y_train, X_test, y_test = (
            data.X_train,
            data.y_train,
            data.X_test,
            data.y_test,
        )
    else:
        X, y = IMBALANCED[name]()
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, test_size=0.3, stratify=y, random_state=seed
        )
    scaler = StandardScaler().fit(X_train)
    return (
        scaler.transform(X_train).astype(np.float32),
        y_train,
        scaler.transform(X_test).astype(np.float32),
        y_test,
    )


def draw_labels(y, n_labels, seed):
    """``y`` with all but ``n_labels`` rows set to -1: one row of each class,
    the rest stratified over the remaining rows."""
    rng = np.random.RandomState(seed)
    classes = np.unique(y)
    first = np.array([rng.choice(np.flatnonzero(y == c)) for c in classes])
    rest = np.setdiff1d(np.arange(len(y)), first)
    more = n_labels - len(first)
    if more > 0:
        extra, _ = train_test_split(
            rest, train_size=more, stratify=y[rest], random_state=seed
        )
        first = np.concatenate([first, extra])
    partial = np.full_like(y, -1)
    partial[first] = y[first]
    return partial


KNOWN_PRIOR = "BoostMIS, known prior"


def methods(seed, max_steps=None):
    ssl = ssl_methods(seed)
    net = dict(random_state=seed, max_steps=max_steps)
    return {
        "labels only": BoostMISClassifier(lambda_u=0.0, prior_correction=None, **net),
        "labels only, balanced": BoostMISClassifier(
            lambda_u=0.0, class_weight="balanced", prior_correction=None, **net
        ),
        "labels only, logit-adjusted": BoostMISClassifier(
            lambda_u=0.0, prior_correction="adjust", **net
        ),
        "LogReg balanced, labels only": LabeledRowsOnly(
            LogisticRegression(class_weight="balanced", max_iter=2000)
        ),
        "SelfTraining(MLP)": ssl["SelfTraining(MLP)"],
        "LabelSpreading": ssl["LabelSpreading"],
        "FixMatch": BoostMISClassifier(threshold="fixed", prior_correction=None, **net),
        "BoostMIS (paper)": BoostMISClassifier(prior_correction=None, **net),
        "BoostMIS align": BoostMISClassifier(prior_correction="align", **net),
        "BoostMIS adjust": BoostMISClassifier(prior_correction="adjust", **net),
        "BoostMIS align, classwise": BoostMISClassifier(
            prior_correction=PriorCorrection(classwise=True), **net
        ),
        # class_prior is set per split in run_cell: the train split's prevalence
        KNOWN_PRIOR: BoostMISClassifier(**net),
        "BoostMIS align + swap noise": BoostMISClassifier(
            prior_correction="align",
            strong_augment=MarginalResamplingNoise(0.3),
            **net,
        ),
    }


# weights g of the post-hoc rules argmax(z + g log pi), z the balanced logits
POSTHOC = (0.0, 0.5, 1.0)
POSTHOC_TAG = " (post-hoc"  # rows "<method> (post-hoc g)": a rule of one fit


def fitted_method(row):
    """The method whose fit a result row scores (a post-hoc row: its method)."""
    return row.split(POSTHOC_TAG)[0]


def scores(y_test, pred, collapsed):
    classes, counts = np.unique(y_test, return_counts=True)
    majority, rarest = classes[np.argmax(counts)], classes[np.argmin(counts)]
    return {
        "macro_f1": f1_score(y_test, pred, average="macro"),
        "balanced_accuracy": balanced_accuracy_score(y_test, pred),
        "minority_recall": recall_score(
            y_test, pred, labels=[rarest], average="macro", zero_division=0
        ),
        "majority_share": float(np.mean(pred == majority)),
        "majority_prior": float(np.mean(y_test == majority)),
        "collapse_warning": collapsed,
    }


def evaluate(method, model, X, y_partial, X_test, y_test):
    """Scores of ``model`` fitted on the split, as ``{method name: scores}``.

    A prior-corrected model predicts with its ``decision`` rule (the prior's
    weight ``g`` is ``tau`` for ``"prior"``, 0 for ``"balanced"``); the other
    rules ``argmax(z + g log pi)`` for ``g`` in :data:`POSTHOC`, ``z`` the
    balanced logits, are scored from the same fit, as
    ``"<method> (post-hoc g)"`` (``g = 0``: the balanced rule).
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", UserWarning)
        # last, so first: it is a UserWarning, which the line above ignores
        warnings.simplefilter("always", PseudoLabelCollapseWarning)
        model.fit(X, y_partial)
    collapsed = any(issubclass(w.category, PseudoLabelCollapseWarning) for w in caught)
    out = {method: scores(y_test, model.predict(X_test), collapsed)}
    policy = make_prior_correction(getattr(model, "prior_correction", None))
    if policy is not None:
        own = float(policy.tau) if policy.decision == "prior" else 0.0
        log_prior = np.log(model.class_prior_)
        balanced = model.predict_log_proba(X_test) - own * log_prior
        for g in POSTHOC:
            if g != own:
                pred = model.classes_[np.argmax(balanced + g * log_prior, axis=1)]
                out[f"{method}{POSTHOC_TAG} {g:g})"] = scores(y_test, pred, collapsed)
    return out


def run_cell(name, n_labels, seed, names, mescc_scale=1.0, max_steps=None):
    if name in BALANCED:
        dataset, n = BALANCED[name]
        X, y_partial, y, X_test, y_test = few_label_split(dataset, n, seed)
    else:
        X, y, X_test, y_test = split(name, seed, mescc_scale)
        y_partial = draw_labels(y, n_labels, seed)
    out = {}
    for method, model in methods(seed, max_steps).items():
        if method not in names:
            continue
        if method == KNOWN_PRIOR:
            model.set_params(class_prior=np.unique(y, return_counts=True)[1])
        out.update(evaluate(method, model, X, y_partial, X_test, y_test))
    return name, n_labels, seed, out


def cells(args):
    sizes = {
        "digits 9-vs-rest": args.labels,
        "digits six-grade": args.labels,
        "breast cancer 89/11": [n for n in args.labels if n <= 100],
    }
    if args.mescc:
        sizes.update({name: args.labels for name in MESCC})
    out = [(name, n) for name, ns in sizes.items() for n in ns]
    if not args.no_balanced:
        out += [(name, n) for name, (_, n) in BALANCED.items()]
    return [c for c in out if not args.datasets or c[0] in args.datasets]


def load_cache(path):
    done = {}
    if path.exists():
        for line in path.read_text().splitlines():
            rec = json.loads(line)
            done[(rec["name"], rec["n_labels"], rec["seed"])] = rec["scores"]
    return done


def summarise(results, cell_list, seeds, names, reference):
    metric_rows, paired_rows = [], []
    verdicts = {}
    for name, n in cell_list:
        runs = [results[(name, n, s)] for s in seeds if (name, n, s) in results]
        if not runs:
            continue
        for method in names:
            m = {k: np.array([r[method][k] for r in runs]) for k in runs[0][method]}
            metric_rows.append(
                [
                    name,
                    n,
                    method,
                    f"{m['macro_f1'].mean():.3f}",
                    f"{m['balanced_accuracy'].mean():.3f}",
                    f"{m['minority_recall'].mean():.3f}",
                    f"{m['majority_share'].mean():.3f} / "
                    f"{m['majority_prior'].mean():.3f}",
                    f"{int(m['collapse_warning'].sum())}/{len(runs)}",
                ]
            )
        ref = np.array([r[reference]["macro_f1"] for r in runs])
        cell = []
        for method in names:
            if method == reference:
                continue
            other = np.array([r[method]["macro_f1"] for r in runs])
            text = paired_difference(ref, other)
            cell.append(f"{method}: {text}")
            if fitted_method(method) == method:  # not a post-hoc rule of a fit
                verdict = text.split("(")[-1].rstrip(")")
                verdicts.setdefault((name, n), []).append(verdict)
        paired_rows.append([name, n, len(runs), "; ".join(cell)])
    return metric_rows, paired_rows, verdicts


def _rerun_args(argv):
    """The arguments that reproduce a table: without the cache and output flags."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--cache":
            skip = True
        elif arg not in ("--summarise-only", "--write"):
            out.append(arg)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--labels", type=int, nargs="+", default=[20, 50, 100])
    parser.add_argument("--mescc", action="store_true", help="add the MESCC-like cells")
    parser.add_argument(
        "--mescc-scale",
        type=float,
        default=1.0,
        help="make_mescc_like's scale (1 = the release's split sizes)",
    )
    parser.add_argument(
        "--max-steps",
        type=int,
        default=None,
        help="BoostMISClassifier(max_steps=...) of every network (default: "
        "None, 200 passes; 2000 binds on the full-size MESCC-like cells only)",
    )
    parser.add_argument("--no-balanced", action="store_true")
    parser.add_argument("--datasets", nargs="*", default=None)
    parser.add_argument("--methods", nargs="*", default=None)
    parser.add_argument("--reference", default="BoostMIS align")
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument(
        "--cache", type=Path, default=None, help="JSON lines to resume from"
    )
    parser.add_argument(
        "--summarise-only",
        action="store_true",
        help="report the runs in --cache without fitting the missing ones",
    )
    parser.add_argument("--write", action="store_true")
    parser.add_argument(
        "--section", default=None, help="RESULTS.md section (default: by seeds)"
    )
    args = parser.parse_args()
    names = args.methods or list(methods(0))
    if args.reference not in names:
        names.append(args.reference)
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    cell_list = cells(args)
    results = load_cache(args.cache) if args.cache else {}
    todo = [  # seed-major: a run stopped early covers every cell
        (name, n, s)
        for s in seeds
        for name, n in cell_list
        if (name, n, s) not in results or set(names) - set(results[(name, n, s)])
    ]
    if args.summarise_only:
        todo = []
    print(f"{len(todo)} (cell, seed) runs to do", flush=True)
    jobs = (
        delayed(run_cell)(name, n, s, names, args.mescc_scale, args.max_steps)
        for name, n, s in todo
    )
    for name, n, s, scores in Parallel(
        n_jobs=args.n_jobs, return_as="generator_unordered"
    )(jobs):
        results[(name, n, s)] = {**results.get((name, n, s), {}), **scores}
        if args.cache:
            with args.cache.open("a") as f:
                rec = {
                    "name": name,
                    "n_labels": n,
                    "seed": s,
                    "scores": results[(name, n, s)],
                }
                f.write(json.dumps(rec) + "\n")
        print(f"done {name} n_L={n} seed={s}", flush=True)
    reported = [m for m in dict.fromkeys(k for r in results.values() for k in r)]
    reported = [m for m in reported if fitted_method(m) in names]
    metric_rows, paired_rows, verdicts = summarise(
        results, cell_list, seeds, reported, args.reference
    )
    header = [
        "data",
        "n_L",
        "method",
        "macro-F1",
        "balanced acc.",
        "rarest-class recall",
        "majority share / prior",
        "collapse warnings",
    ]
    table = markdown_table(header, metric_rows)
    paired = markdown_table(
        ["data", "n_L", "seeds", f"{args.reference} minus method, macro-F1"],
        paired_rows,
    )
    imbalanced = {k: v for k, v in verdicts.items() if k[0] not in BALANCED}
    as_good = sum("lower" not in v for v in imbalanced.values())
    worse = sum(v.count("lower") for v in imbalanced.values())
    summary = (
        f"{args.reference}: at least as good as every other method (no paired "
        f"difference below -2 SE) in {as_good} of {len(imbalanced)} imbalanced "
        f"cells; {worse} (cell, method) pairs more than 2 SE worse."
    )
    finished = sorted({s for (_, _, s) in results if s in seeds})
    note = (
        f"Seeds {seeds[0]}-{seeds[-1]} asked for, {len(finished)} finished for at "
        f"least one cell (the paired table's column `seeds` counts each cell's); "
        f"{machine_info()}."
    )
    print(table, paired, summary, note, sep="\n\n")
    if args.write:
        fresh = args.first_seed != 0
        section = args.section or ("imbalance_fresh_splits" if fresh else "imbalance")
        title = "fresh splits" if fresh else "splits used to choose the default"
        body = (
            f"## Class imbalance ({title}; section `{section}`)\n\n"
            f"`python benchmarks/imbalance.py {shlex.join(_rerun_args(sys.argv[1:]))}` "
            "(see its docstring).\n\n"
            f"{table}\n\n{paired}\n\n{summary}\n\n{note}\n"
        )
        write_section(section, body)


if __name__ == "__main__":
    main()
