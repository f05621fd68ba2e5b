"""``boostmis run``: the closed loop on a MESCC folder with a simulated oracle,
resumable from its output folder."""

import hashlib
import io
import json
import os
import time
import warnings

import numpy as np

from .._utils import atomic_write
from ..datasets import load_mescc
from ..loop import update_digest
from ..persistence import save_weights
from ._common import (
    CURVE_PNG,
    check_class_prior_option,
    check_writable,
    classification_metrics,
    collapse_note,
    collapse_warnings_summarised,
    fit_scaler,
    make_estimator,
    say,
    standardize,
    write_json,
)
from ._plot import (
    CurvePoint,
    balanced_accuracy,
    majority_baseline,
    plot_learning_curves,
)

CONFIG_NAME = "config.json"
REPORT_JSON = "report.json"
REPORT_MD = "report.md"
WEIGHTS_NAME = "model.safetensors"
SCALER_NAME = "scaler.npz"
# Settings that must not change when a run folder is resumed.
_RESUME_KEYS = (
    "task",
    "seed",
    "initial_labels",
    "budget",
    "max_epochs",
    "max_steps",
    "class_weight",
    "prior_correction",
    "class_prior",
    "n_train",
    "n_features",
    "train_data",  # last two: a changed task changes the targets too
    "eval_data",
)
# runs from before an option existed trained with what it now calls "none"
# (None: no --class-prior)
_RESUME_DEFAULTS = {
    **dict.fromkeys(("class_weight", "prior_correction", "max_steps"), "none"),
    "class_prior": None,
}
_SCALER_STATS = ("mean", "var", "scale", "n_samples_seen")  # scaler.npz's arrays


def _run_estimator(config, device, n_jobs=None):
    """The classifier of a run with ``config`` (its settings, one for all fits)."""
    return make_estimator({**_RESUME_DEFAULTS, **config}, device, n_jobs)


def _save_scaler_atomic(scaler, path):
    buf = io.BytesIO()
    np.savez(buf, **{key: getattr(scaler, f"{key}_") for key in _SCALER_STATS})
    atomic_write(path, buf.getvalue())


def _read_config(path):
    try:
        with open(path) as f:
            return json.load(f)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: unreadable run configuration ({exc})") from None


def load_run_model(run_dir, device=None):
    """The final model of a ``boostmis run`` folder, for raw feature vectors.

    ``model.safetensors`` holds a classifier trained on features standardised
    with the train split's statistics (``scaler.npz``); this returns both as one
    ``Pipeline(StandardScaler, BoostMISClassifier)``, the classifier with the
    run's settings (``max_epochs``, ``random_state`` = ``--seed``,
    ``class_weight``; from ``config.json``).

    Parameters
    ----------
    run_dir : str or path-like
        The ``--out`` folder of a finished ``boostmis run``.
    device : str, default=None
        Where to put the weights, and the classifier's ``device`` (None:
        ``"auto"``).

    Returns
    -------
    model : sklearn.pipeline.Pipeline
        Ready for ``predict``, ``predict_proba`` and ``score`` on raw features.
    """
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from .. import load_weights

    paths = [
        os.path.join(run_dir, name) for name in (WEIGHTS_NAME, SCALER_NAME, CONFIG_NAME)
    ]
    for path in paths:
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"{path} not found: is {run_dir} the folder of a finished boostmis run?"
            )
    scaler = StandardScaler()
    with np.load(paths[1], allow_pickle=False) as stats:
        for key in _SCALER_STATS:
            setattr(scaler, f"{key}_", stats[key])
    scaler.n_features_in_ = len(scaler.mean_)
    config = _read_config(paths[2])
    classifier = load_weights(_run_estimator(config, device or "auto"), paths[0])
    if not _previous_report(run_dir).get("complete", True):
        warnings.warn(
            f"the run in {run_dir} has not finished (report.json): this is the "
            "model of its last finished run",
            UserWarning,
            stacklevel=2,
        )
    return make_pipeline(scaler, classifier)


def _stratified_initial(y, n, seed):
    """``n`` row positions drawn stratified from ``y``, at least one per class."""
    classes, counts = np.unique(y, return_counts=True)
    if n < len(classes):
        raise ValueError(
            f"--initial-labels {n} is below the number of classes ({len(classes)}): "
            "every class needs one initial label"
        )
    if n >= len(y):
        raise ValueError(f"--initial-labels {n} must be below the {len(y)} train rows")
    share = n * counts / counts.sum()
    quota = np.minimum(np.maximum(1, np.floor(share)).astype(int), counts)
    while quota.sum() < n:  # largest remainder first
        gap = np.where(quota < counts, share - quota, -np.inf)
        quota[int(np.argmax(gap))] += 1
    while quota.sum() > n:  # the one-per-class floor overshot: trim the largest
        quota[int(np.argmax(np.where(quota > 1, quota, 0)))] -= 1
    rng = np.random.RandomState(seed)
    picks = [
        rng.choice(np.flatnonzero(y == c), q, replace=False)
        for c, q in zip(classes, quota, strict=True)
    ]
    return np.sort(np.concatenate(picks)).astype(np.int64)


def _check_resume_config(out, config):
    """Refuse to resume ``out`` with other settings; True when ``out`` holds a run.

    Nothing is written: a refused resume leaves the folder as it was.
    """
    path = os.path.join(out, CONFIG_NAME)
    if not os.path.exists(path):
        return False
    old = _read_config(path)
    for key in _RESUME_KEYS:
        if key not in old and key not in _RESUME_DEFAULTS:
            continue  # written before the key existed
        previous = old.get(key, _RESUME_DEFAULTS.get(key))
        if previous != config[key]:
            what = {
                "train_data": "other train data",
                "eval_data": "other validation or test data",
            }.get(key, f"{key}={previous!r}, not {config[key]!r}")
            raise ValueError(
                f"{out} holds a run with {what}: resume with the same data and "
                "settings or use another --out"
            )
    return True


def _digest(*arrays):
    """sha256 of arrays (shape, dtype and bytes): which data a run folder holds."""
    digest = hashlib.sha256()
    for array in arrays:
        update_digest(digest, array)
    return digest.hexdigest()


def _previous_report(out):
    """The report.json of ``out``; empty when missing or unreadable."""
    path = os.path.join(out, REPORT_JSON)
    if not os.path.exists(path):
        return {}
    try:
        with open(path) as f:
            return json.load(f)
    except json.JSONDecodeError:
        return {}  # recomputed where the model is still at hand


def _too_many_cycles(out, n_cycles):
    """The error for a ``--cycles`` below the ``n_cycles`` that ``out`` holds."""
    return ValueError(
        f"{out} already holds {n_cycles} annotation cycles: "
        f"pass --cycles {n_cycles} or more, or use another --out"
    )


def _finished_report(out, report, cycles, n_train):
    """``report`` (``out``'s earlier one) when its run is complete, its weights
    are there and it did ``cycles`` cycles (or labeled every row); None: the run
    resumes. A finished run of more cycles than ``cycles`` is a ``ValueError``."""
    weights = [os.path.join(out, name) for name in (WEIGHTS_NAME, SCALER_NAME)]
    complete = report.get("complete") and report.get("cycles")
    if not (complete and all(map(os.path.isfile, weights))):
        return None
    final = report["cycles"][-1]
    if final["cycle"] > cycles:
        raise _too_many_cycles(out, final["cycle"])
    if final["cycle"] == cycles or final["n_labeled"] == n_train:
        return report
    return None


def _write_outputs(out, report, y_test, names=(REPORT_MD, CURVE_PNG)):
    """Write the report.md and learning_curve.png of ``report`` (those ``names``)."""
    if REPORT_MD in names:
        atomic_write(os.path.join(out, REPORT_MD), _report_md(report))
    if CURVE_PNG in names:
        _write_curve(report, y_test, os.path.join(out, CURVE_PNG))


def _restore_outputs(out, report, y_test):
    """Write the outputs of a finished run that are missing; return their names."""
    names = (REPORT_MD, CURVE_PNG)
    missing = [name for name in names if not os.path.isfile(os.path.join(out, name))]
    _write_outputs(out, report, y_test, missing)
    return missing


def _say_finished(out, report, restored):
    """The line that ends a rerun of a finished run."""
    final = report["cycles"][-1]
    if final["n_labeled"] == report["config"]["n_train"]:
        more = "every train row is labeled"
    else:
        more = "a larger --cycles adds cycles"
    say(
        f"the run in {out} is complete: {final['cycle']} cycle(s) and the final "
        f"fit on {final['n_labeled']} labels (test accuracy "
        f"{final['accuracy']:.3f}, macro-F1 {final['macro_f1']:.3f}); report: "
        f"{os.path.join(out, REPORT_MD)}"
        + (f" ({', '.join(restored)} written again)" if restored else "")
        + f"; nothing to train ({more})"
    )


def _curve_points(cycles):
    """The learning curve of a report's cycles: test scores and collapse marks."""
    return [
        CurvePoint(
            n_labeled=e["n_labeled"],
            accuracy=e["accuracy"],
            macro_f1=e["macro_f1"],
            balanced_accuracy=balanced_accuracy(e["per_class_recall"]),
            pseudo_label_collapse=bool(e.get("collapsed_classes")),
            # the only class with predictions: one non-empty column
            one_class=np.count_nonzero(np.sum(e["confusion_matrix"], axis=0)) == 1,
        )
        for e in cycles
    ]


def _write_curve(report, y_test, path):
    """The learning_curve.png of a report, beside the majority predictor."""
    config = report["config"]
    plot_learning_curves(
        {"BoostMIS": _curve_points(report["cycles"])},
        path,
        f"BoostMIS closed loop, {config['task']}-grading (test split)",
        baseline=majority_baseline(y_test, config["target_names"]),
    )


def _say_if_pool_exhausted(entry, n_train, target, cycles):
    """Say so when cycle ``target`` (report ``entry``) labeled the last train rows."""
    if target < cycles and entry["n_labeled"] + entry["n_queried"] >= n_train:
        say(
            f"every train row is labeled after cycle {target}: no rows left to "
            f"query, cycles {target + 1}-{cycles} are skipped"
        )


def _row_label(entry):
    return "final" if entry.get("final") else str(entry["cycle"])


def _report_md(report):
    cfg, entries = report["config"], report["cycles"]
    names = cfg["target_names"]
    n_run = sum(1 for e in entries if not e.get("final"))
    cycles = f"{n_run} cycle(s)"
    if n_run < cfg["cycles"]:
        cycles += f" of the {cfg['cycles']} asked for (every train row got labeled)"
    lines = [
        "# BoostMIS closed-loop report",
        "",
        f"Data: `{cfg['data_dir']}` ({cfg['task']}-grading, "
        f"{cfg['n_train']} train rows, "
        f"{cfg['n_features']} features). Initial labels: {cfg['initial_labels']} "
        f"(stratified, seed {cfg['seed']}); budget K = {cfg['budget']} per selector "
        f"and cycle; {cycles}; max_epochs = {cfg['max_epochs']}, max_steps = "
        f"{cfg.get('max_steps', 'none')}; "
        "features standardised with train statistics; simulated oracle "
        "(train targets).",
        "",
        "Metrics on the TEST split, EMA teacher. Row `final` = fit after the last "
        "annotations.",
        "",
        "| cycle | labels | queried | threshold | accuracy | macro P | macro R | "
        "macro F1 | " + " | ".join(f"recall {n}" for n in names) + " |",
        "|" + "---|" * (8 + len(names)),
    ]
    fmt = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
    for e in entries:
        recall = " | ".join(fmt(e["per_class_recall"][n]) for n in names)
        lines.append(
            f"| {_row_label(e)} | {e['n_labeled']} | {e['n_queried']} | "
            f"{fmt(e['threshold'])} | {fmt(e['accuracy'])} | "
            f"{fmt(e['macro_precision'])} | {fmt(e['macro_recall'])} | "
            f"{fmt(e['macro_f1'])} | {recall} |"
        )
    head = " | ".join(names) + " |"
    lines += [
        "",
        "Share of the test predictions in each class / the class prior of the "
        "fit's labels (smoothed, `(n_c + 1) / (n_L + C)`): a share far above "
        "its prior is a sign of collapse onto that class.",
        "",
        "| cycle | " + head,
        "|" + "---|" * (1 + len(names)),
    ]
    for e in entries:
        shares = (
            f"{e['prediction_share'][n]:.3f} / {e['class_prior'][n]:.3f}" for n in names
        )
        lines.append(f"| {_row_label(e)} | " + " | ".join(shares) + " |")
    collapsed = [
        f"cycle {_row_label(e)}: " + ", ".join(names[c] for c in e["collapsed_classes"])
        for e in entries
        if e.get("collapsed_classes")
    ]
    if collapsed:
        lines += [
            "",
            "**Pseudo-label collapse** (`PseudoLabelCollapseWarning`: the class got "
            "under a tenth of its labeled share of the pseudo-labels and of the "
            "predictions on the unlabeled rows; compare with the labels only): "
            + "; ".join(collapsed)
            + ".",
        ]
    lines += [
        "",
        "Normalised confusion matrix of the last row (rows: true, columns: predicted):",
        "",
        "| true \\ pred | " + head,
        "|" + "---|" * (1 + len(names)),
    ]
    for name, row in zip(names, entries[-1]["confusion_matrix"], strict=True):
        lines.append(f"| {name} | " + " | ".join(f"{v:.3f}" for v in row) + " |")
    return "\n".join(lines) + "\n"


class _CycleReport:
    """A run's ``on_cycle_end``: each cycle's test scores go to report.json, with
    its progress line; cycles done by an earlier run are said as such."""

    def __init__(self, out, report, data, X_test, cycles, previous):
        self.out, self.report, self.data = out, report, data
        self.X_test, self.cycles = X_test, cycles
        self.names = report["config"]["target_names"]
        self.n_train = report["config"]["n_train"]
        done = previous.get("cycles", [])  # an earlier run's, less its final fit
        self.entries = {e["cycle"]: e for e in done if not e.get("final")}
        self.said = 0  # the cycles before this one have their line
        self.clock = time.perf_counter()  # the start of the cycle's line

    def __call__(self, loop, cycle, estimator):
        self.say_resumed(cycle)
        e = self.record(cycle, loop.history_[-1], estimator, final=False)
        now = time.perf_counter()
        say(
            f"cycle {cycle + 1}/{self.cycles}: fit on {e['n_labeled']} labels, "
            f"+{e['n_queried']} annotated; test accuracy {e['accuracy']:.3f}, "
            f"macro-F1 {e['macro_f1']:.3f} ({now - self.clock:.1f}s)"
            + collapse_note(e["collapsed_classes"], self.names)
        )
        _say_if_pool_exhausted(e, self.n_train, cycle + 1, self.cycles)
        self.said, self.clock = cycle + 1, now

    def say_resumed(self, cycle):
        """The lines of the cycles before ``cycle`` that an earlier run did."""
        for done in range(self.said, cycle):
            if done not in self.entries:  # its model is gone: nothing to evaluate
                raise ValueError(
                    f"{self.out}/{REPORT_JSON} lacks cycle {done + 1}, which the "
                    "run state holds: use another --out"
                )
            say(f"cycle {done + 1}/{self.cycles}: done in an earlier run (resumed)")
            _say_if_pool_exhausted(
                self.entries[done], self.n_train, done + 1, self.cycles
            )
        self.said = max(self.said, cycle)

    def record(self, cycle, fit, estimator, final):
        """The report entry of a fit (``fit``: its ``AnnotationLoop.history_``
        entry), written to report.json; later entries are dropped."""
        y_test = self.data.y_test
        metrics = classification_metrics(
            y_test, estimator.predict(self.X_test), self.names
        )
        entry = {
            "cycle": cycle,
            "final": final,
            "n_labeled": fit["n_labeled"],
            "n_queried": fit["n_queried"],
            "picks": fit["picks"],
            "threshold": fit["threshold"],
            "val_accuracy": fit["val_accuracy"],
            "val_macro_f1": fit["val_f1_macro"],
            "collapsed_classes": fit["collapsed_classes"],
            "split": "test",
            "n_test": int(len(y_test)),
            **metrics,
            "class_prior": dict(
                zip(self.names, map(float, estimator.class_prior_), strict=True)
            ),
        }
        self.entries = {c: e for c, e in self.entries.items() if c < cycle}
        self.entries[cycle] = entry
        self.report["cycles"] = [self.entries[c] for c in sorted(self.entries)]
        self.report["complete"] = final
        write_json(os.path.join(self.out, REPORT_JSON), self.report)
        return entry


def cmd_run(args):
    from .. import AnnotationLoop, InformativeQuerySampler
    from ..modules import resolve_device

    check_writable(args.out, folder=True)
    resolve_device(args.device)  # before anything is written to --out
    data = load_mescc(args.data_dir, args.task)
    out = args.out
    names = list(data.target_names)
    check_class_prior_option(vars(args), names)
    y_train = data.y_train
    config = {
        "data_dir": os.path.abspath(args.data_dir),
        "task": args.task,
        "target_names": names,
        "cycles": args.cycles,
        "budget": args.budget,
        "initial_labels": args.initial_labels,
        "seed": args.seed,
        "max_epochs": args.max_epochs,
        "max_steps": args.max_steps,
        "device": args.device,
        "class_weight": args.class_weight,
        "prior_correction": args.prior_correction,
        "class_prior": args.class_prior,
        "n_train": int(data.X_train.shape[0]),
        "n_features": int(data.X_train.shape[1]),
        "train_data": _digest(data.X_train, data.y_train),
        "eval_data": _digest(data.X_val, data.y_val, data.X_test, data.y_test),
    }
    initial = _stratified_initial(y_train, args.initial_labels, args.seed)
    os.makedirs(out, exist_ok=True)
    config_path = os.path.join(out, CONFIG_NAME)
    resumed = _check_resume_config(out, config)
    if not resumed:
        write_json(config_path, config)  # a resumed run's, once it has finished
    previous = _previous_report(out)
    finished = None
    if resumed:
        finished = _finished_report(out, previous, args.cycles, len(y_train))
    if finished is not None:
        _say_finished(out, finished, _restore_outputs(out, finished, data.y_test))
        return 0
    if previous.get("complete"):  # cycles are added: unfinished until they are done
        write_json(os.path.join(out, REPORT_JSON), {**previous, "complete": False})
    scaler = fit_scaler(data.X_train)
    X_train, X_val, X_test = standardize(
        data.X_train, data.X_val, data.X_test, scaler=scaler
    )
    y0 = np.full(len(y_train), -1, dtype=np.int64)
    y0[initial] = y_train[initial]
    estimator = _run_estimator(config, args.device, args.n_jobs)
    report = {"config": config, "initial_indices": initial.tolist(), "cycles": []}
    cycles = _CycleReport(out, report, data, X_test, args.cycles, previous)
    loop = AnnotationLoop(
        estimator,
        InformativeQuerySampler(random_state=args.seed),
        oracle=lambda indices: y_train[indices],  # simulated: the train targets
        n_cycles=args.cycles,
        budget=args.budget,
        final_fit=False,  # fitted below, kept as model.safetensors
        state_dir=out,
        on_cycle_end=cycles,
    )
    with collapse_warnings_summarised():  # noted in the cycles' lines
        loop.fit(X_train, y0, X_val, data.y_val)
    n_cycles = len(loop.history_)  # fewer than --cycles when every row got labeled
    if n_cycles > args.cycles:
        raise _too_many_cycles(out, n_cycles)
    cycles.say_resumed(n_cycles)
    start = time.perf_counter()
    with collapse_warnings_summarised():
        est = loop.refit(X_train, X_val, data.y_val)  # the loop's final fit
    save_weights(est, os.path.join(out, WEIGHTS_NAME))  # atomic
    _save_scaler_atomic(scaler, os.path.join(out, SCALER_NAME))
    final = cycles.record(n_cycles, loop.history_[-1], est, final=True)
    write_json(config_path, config)
    _write_outputs(out, report, data.y_test)
    say(
        f"final fit on {final['n_labeled']} labels: test accuracy "
        f"{final['accuracy']:.3f}, macro-F1 {final['macro_f1']:.3f} "
        f"({time.perf_counter() - start:.1f}s)"
        + collapse_note(final["collapsed_classes"], names)
        + f"; outputs in {out}"
    )
    return 0
