"""The ``boostmis`` command line, run as a user runs it (subprocesses)."""

import csv
import json
import os
import shutil
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest

import sklearn_boostmis
from sklearn_boostmis import (
    BoostMISClassifier,
    PseudoLabelCollapseWarning,
    load_weights,
)
from sklearn_boostmis.cli import MAX_STEPS, load_run_model, main
from sklearn_boostmis.cli._common import make_estimator
from sklearn_boostmis.datasets import (
    TWO_GRADE_NAMES,
    six_to_two,
    write_mescc_like,
)
from sklearn_boostmis.progress import FitProgress

from .conftest import read_annotations

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
TINY = ["--budget", "4", "--initial-labels", "12", "--max-epochs", "3", "--seed", "0"]
OUTPUTS = [
    "report.json",
    "report.md",
    "learning_curve.png",
    "annotations.csv",
    "model.safetensors",
    "scaler.npz",
]


def _cli(*args, timeout=180):
    return subprocess.run(
        [sys.executable, "-m", "sklearn_boostmis", *map(str, args)],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=timeout,
    )


def _popen(*args):
    return subprocess.Popen(
        [sys.executable, "-m", "sklearn_boostmis", *map(str, args)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=ENV,
    )


def _ok(result):
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return write_mescc_like(
        tmp_path_factory.mktemp("mescc"), scale=0.05, n_features=32, random_state=0
    )


@pytest.fixture(scope="module")
def y_train(data_dir):
    return np.load(os.path.join(data_dir, "train-targets.npy"))


@pytest.fixture(scope="module")
def reference_run(data_dir, tmp_path_factory):
    """An uninterrupted two-grade run with two cycles."""
    out = tmp_path_factory.mktemp("ref") / "out"
    _ok(_cli("run", data_dir, "--task", "two", "--cycles", 2, *TINY, "--out", out))
    return out


# -- run --------------------------------------------------------------------------
def test_run_two_writes_every_output(reference_run, data_dir, y_train):
    out = reference_run
    for name in OUTPUTS:
        assert os.path.getsize(out / name) > 0, name
    assert (out / "learning_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = json.loads((out / "report.json").read_text())
    assert report["complete"] is True
    assert report["config"]["task"] == "two" and report["config"]["budget"] == 4
    cycles = report["cycles"]
    assert [e["cycle"] for e in cycles] == [0, 1, 2]
    assert [e["final"] for e in cycles] == [False, False, True]
    rows = read_annotations(out)
    n_labeled = [e["n_labeled"] for e in cycles]
    assert n_labeled[0] == 12
    assert n_labeled[-1] == 12 + len(rows)
    assert all(4 <= e["n_queried"] <= 8 for e in cycles[:2])
    y_test = six_to_two(np.load(os.path.join(data_dir, "test-targets.npy")))
    for e in cycles:
        assert e["split"] == "test" and e["n_test"] == len(y_test)
        assert 0 <= e["accuracy"] <= 1 and 0 <= e["macro_f1"] <= 1
        for key in ("macro_precision", "macro_recall", "threshold", "val_accuracy"):
            assert e[key] is not None
        cm = np.asarray(e["confusion_matrix"])
        assert cm.shape == (2, 2)
        np.testing.assert_allclose(cm.sum(axis=1), 1.0, atol=1e-5)
        assert e["per_class_recall"]["high"] == pytest.approx(cm[1, 1], abs=1e-5)
    # annotations: the simulated oracle's answers, never a row twice or a seed row
    index = [r[0] for r in rows]
    assert len(set(index)) == len(index)
    assert not set(index) & set(report["initial_indices"])
    assert [r[1] for r in rows] == six_to_two(y_train[index]).tolist()
    assert sorted({r[2] for r in rows}) == [0, 1]
    # weights: a prediction-ready model for raw features, scoring as reported
    model = load_run_model(out, device="cpu")
    assert model[-1].classes_.tolist() == [0, 1]
    settings = model[-1].get_params()  # the run's, for a refit or a clone
    assert (settings["max_epochs"], settings["random_state"]) == (3, 0)
    assert settings["max_steps"] == MAX_STEPS == report["config"]["max_steps"]
    assert isinstance(settings["callbacks"][0], FitProgress)
    assert (settings["class_weight"], settings["device"]) == (None, "cpu")
    X_test = np.load(os.path.join(data_dir, "test-features.npy"))
    assert model.score(X_test, y_test) == pytest.approx(cycles[-1]["accuracy"])
    clf = load_weights(BoostMISClassifier(device="cpu"), out / "model.safetensors")
    np.testing.assert_array_equal(
        clf.predict_proba(model[0].transform(X_test)), model.predict_proba(X_test)
    )
    with pytest.raises(FileNotFoundError, match="folder of a finished boostmis run"):
        load_run_model(data_dir)
    md = (out / "report.md").read_text()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_run_model(out, device="cpu")  # a finished run: no warning
    assert "| final | " in md and "recall high" in md


def test_the_model_of_an_unfinished_run_is_flagged(reference_run, tmp_path):
    out = tmp_path / "unfinished"
    shutil.copytree(reference_run, out)
    report = json.loads((out / "report.json").read_text())
    (out / "report.json").write_text(json.dumps({**report, "complete": False}))
    with pytest.warns(UserWarning, match="has not finished"):
        load_run_model(out, device="cpu")


def test_run_six_grade(data_dir, tmp_path):
    out = tmp_path / "six"
    result = _ok(
        _cli("run", data_dir, "--task", "six", "--cycles", 1, *TINY, "--out", out)
    )
    assert "cycle 1/1" in result.stderr
    for name in OUTPUTS:
        assert (out / name).exists(), name
    report = json.loads((out / "report.json").read_text())
    last = report["cycles"][-1]
    assert list(last["per_class_recall"]) == ["b0", "b1a", "b1b", "b1c", "b2", "b3"]
    assert np.asarray(last["confusion_matrix"]).shape == (6, 6)
    # six-grade answers are the raw grades
    rows = read_annotations(out)
    y = np.load(os.path.join(data_dir, "train-targets.npy"))
    assert [r[1] for r in rows] == y[[r[0] for r in rows]].tolist()


def test_resume_extends_a_finished_run(data_dir, tmp_path, reference_run):
    out = tmp_path / "resume"
    _ok(_cli("run", data_dir, "--task", "two", "--cycles", 1, *TINY, "--out", out))
    first = read_annotations(out)
    assert first and {r[2] for r in first} == {0}
    result = _ok(
        _cli("run", data_dir, "--task", "two", "--cycles", 2, *TINY, "--out", out)
    )
    assert "resumed" in result.stderr
    rows = read_annotations(out)
    assert rows[: len(first)] == first  # cycle 0 untouched
    index = [r[0] for r in rows]
    assert len(set(index)) == len(index)
    assert {r[2] for r in rows} == {0, 1}
    # same seed: identical to the uninterrupted two-cycle run
    assert rows == read_annotations(reference_run)
    report = json.loads((out / "report.json").read_text())
    assert [e["cycle"] for e in report["cycles"]] == [0, 1, 2]


def test_resume_after_several_cycles(data_dir, tmp_path, reference_run):
    out = tmp_path / "copy"
    shutil.copytree(reference_run, out)
    args = ["run", data_dir, "--task", "two", *TINY, "--out", out]
    result = _ok(_cli(*args, "--cycles", 2))  # a finished run: nothing to train
    assert "is complete" in result.stderr and "nothing to train" in result.stderr
    assert read_annotations(out) == read_annotations(reference_run)
    _ok(_cli(*args, "--cycles", 3))
    rows = read_annotations(out)
    assert rows[: len(read_annotations(reference_run))] == read_annotations(
        reference_run
    )
    assert {r[2] for r in rows} == {0, 1, 2} and len({r[0] for r in rows}) == len(rows)
    report = json.loads((out / "report.json").read_text())
    assert [e["cycle"] for e in report["cycles"]] == [0, 1, 2, 3]
    result = _cli(*args, "--cycles", 2)
    assert result.returncode == 2
    assert "already holds 3 annotation cycles: pass --cycles 3" in result.stderr


def test_run_stops_when_every_train_row_is_labeled(data_dir, tmp_path, capsys):
    out = tmp_path / "exhausted"
    args = ["run", data_dir, "--task", "two", "--budget", 60, "--initial-labels", 12]
    args += ["--max-epochs", 1, "--seed", 0, "--out", out]
    assert main([*map(str, args), "--cycles", "6"]) == 0
    assert "every train row is labeled after cycle 4" in capsys.readouterr().err
    report = json.loads((out / "report.json").read_text())
    cycles = [e["cycle"] for e in report["cycles"]]
    assert report["complete"] and cycles == [0, 1, 2, 3, 4]
    assert report["cycles"][-1]["final"] and report["cycles"][-1]["n_labeled"] == 260
    assert "4 cycle(s) of the 6 asked for" in (out / "report.md").read_text()
    assert main([*map(str, args), "--cycles", "8"]) == 0  # resumes, nothing to add
    assert json.loads((out / "report.json").read_text())["cycles"] == report["cycles"]


@pytest.mark.parametrize(
    "split, message",
    [("test", "other validation or test data"), ("train", "other train data")],
)
def test_resume_refuses_other_data_and_writes_nothing(
    data_dir, reference_run, tmp_path, capsys, split, message
):
    other = tmp_path / "other"
    shutil.copytree(data_dir, other)
    targets = np.load(other / f"{split}-targets.npy")
    np.save(other / f"{split}-targets.npy", targets[::-1].copy())
    config = (reference_run / "config.json").read_bytes()
    args = ["run", other, "--task", "two", "--cycles", 3, *TINY, "--out", reference_run]
    assert main(list(map(str, args))) == 2
    assert f"holds a run with {message}: resume" in capsys.readouterr().err
    assert (reference_run / "config.json").read_bytes() == config


@pytest.mark.parametrize(
    "change, key",
    [
        (["--task", "six"], "task"),
        (["--class-weight", "balanced"], "class_weight"),
        (["--prior-correction", "align"], "prior_correction"),
        (["--max-steps", "none"], "max_steps"),
        (["--class-prior", "0.9", "0.1"], "class_prior"),
    ],
)
def test_resume_refuses_changed_settings(data_dir, reference_run, capsys, change, key):
    task = [] if "--task" in change else ["--task", "two"]
    args = ["run", str(data_dir), *task, *change, "--cycles", "2", *TINY]
    rc = main([*map(str, args), "--out", str(reference_run)])
    assert rc == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and f"{key}=" in err


@pytest.fixture
def fit_params(monkeypatch):
    """The parameters of every BoostMISClassifier.fit call, in order."""
    calls = []
    real_fit = BoostMISClassifier.fit

    def recording_fit(self, X, y, sample_weight=None):
        calls.append(self.get_params(deep=False))
        return real_fit(self, X, y, sample_weight)

    monkeypatch.setattr(BoostMISClassifier, "fit", recording_fit)
    return calls


def test_run_with_balanced_class_weight(data_dir, tmp_path, fit_params):
    out = tmp_path / "balanced"
    args = ["run", data_dir, "--task", "two", "--cycles", 1, *TINY]
    assert main([*map(str, args), "--class-weight", "balanced", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["config"]["class_weight"] == "balanced"
    assert fit_params and {p["class_weight"] for p in fit_params} == {"balanced"}
    assert load_run_model(out, device="cpu")[-1].class_weight == "balanced"


def test_run_with_prior_correction_and_threads(data_dir, tmp_path, fit_params):
    out = tmp_path / "aligned"
    args = ["run", data_dir, "--task", "two", "--cycles", 1, *TINY]
    extra = ["--prior-correction", "align", "--n-jobs", "2", "--out", str(out)]
    assert main([*map(str, args), *extra]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["config"]["prior_correction"] == "align"
    assert "n_jobs" not in report["config"]  # threads do not change results
    assert {(p["prior_correction"], p["n_jobs"]) for p in fit_params} == {("align", 2)}
    assert load_run_model(out, device="cpu")[-1].prior_correction == "align"
    final = report["cycles"][-1]
    assert sum(final["prediction_share"].values()) == pytest.approx(1.0)
    assert sum(final["class_prior"].values()) == pytest.approx(1.0)
    share = final["prediction_share"]["low"]
    assert (
        f"| final | {share:.3f} / {final['class_prior']['low']:.3f}"
        in (out / "report.md").read_text()
    )
    # a run folder from before the option existed was the paper's method
    config = json.loads((out / "config.json").read_text())
    assert config.pop("prior_correction") == "align"
    (out / "config.json").write_text(json.dumps(config))
    assert main([*map(str, args), *extra]) == 2


def test_run_with_a_known_class_prior(data_dir, tmp_path, fit_params):
    out = tmp_path / "known"
    args = ["run", data_dir, "--task", "two", "--cycles", 1, *TINY, "--out", out]
    assert main([*map(str, args), "--class-prior", "89", "11"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["config"]["class_prior"] == [89.0, 11.0]
    assert fit_params and all(p["class_prior"] == [89.0, 11.0] for p in fit_params)
    final = report["cycles"][-1]
    assert final["class_prior"] == pytest.approx({"low": 0.89, "high": 0.11})
    np.testing.assert_allclose(
        load_run_model(out, device="cpu")[-1].class_prior_, [0.89, 0.11]
    )


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--class-prior", "0.5", "0.3", "0.2"], "one share per grade (2: low, high)"),
        (["--class-prior", "9", "1", "--prior-correction", "none"], "leave it out"),
    ],
)
def test_bad_class_prior_is_refused_before_anything_is_written(
    data_dir, tmp_path, capsys, extra, message
):
    out = tmp_path / "refused"
    args = ["run", data_dir, "--task", "two", *TINY, "--out", out, *extra]
    assert main(list(map(str, args))) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("value", ["0", "-0.1", "nan", "inf", "many"])
def test_class_prior_shares_must_be_positive_numbers(value, data_dir, capsys):
    with pytest.raises(SystemExit):
        main(["run", str(data_dir), "--task", "two", "--class-prior", "1", value])
    assert "--class-prior" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["0", "-1", "many"])
def test_max_steps_must_be_a_positive_integer_or_none(value, data_dir, capsys):
    with pytest.raises(SystemExit):
        main(["run", str(data_dir), "--task", "two", "--max-steps", value])
    assert "--max-steps" in capsys.readouterr().err


def test_estimator_settings_of_run_and_query():
    settings = dict(seed=3, max_epochs=7, class_weight="none", prior_correction="none")
    unbounded = make_estimator({**settings, "max_steps": "none"}, "cpu")
    assert (unbounded.max_steps, unbounded.max_epochs) == (None, 7)
    assert make_estimator({**settings, "max_steps": 500}, "cpu").max_steps == 500


@pytest.mark.parametrize("value", ["0", "two"])
def test_n_jobs_must_be_a_nonzero_integer(value, data_dir, capsys):
    with pytest.raises(SystemExit):
        main(["run", str(data_dir), "--task", "two", "--n-jobs", value])
    assert "--n-jobs" in capsys.readouterr().err


def test_kill_9_loses_nothing(data_dir, tmp_path, reference_run):
    out = tmp_path / "killed"
    args = ("run", data_dir, "--task", "two", "--cycles", 2, *TINY, "--out", out)
    proc = _popen(*args)
    log = out / "annotations.csv"
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if log.exists() and len(log.read_text().splitlines()) > 1:
                break
            time.sleep(0.005)
        finished = proc.poll() is not None
        proc.kill()  # SIGKILL
    finally:
        proc.wait(timeout=60)
    if finished:
        pytest.skip("the run finished before it could be killed (fast machine)")
    if not log.exists():
        pytest.skip("no annotation within 120 s: machine too loaded to test the kill")
    partial = read_annotations(out)
    assert len({r[0] for r in partial}) == len(partial)
    _ok(_cli(*args))
    rows = read_annotations(out)
    assert rows[: len(partial)] == partial
    assert rows == read_annotations(reference_run)
    report = json.loads((out / "report.json").read_text())
    assert report["complete"] and len(report["cycles"]) == 3


# -- query -------------------------------------------------------------------------
@pytest.mark.parametrize("shares", [["0.9", "0.1"], ["0.8", "0.1", "0.1"]])
def test_query_takes_a_class_prior_of_one_share_per_grade(
    data_dir, y_train, tmp_path, fit_params, capsys, shares
):
    y = six_to_two(y_train)
    labeled = np.r_[np.flatnonzero(y == 0)[:6], np.flatnonzero(y == 1)[:4]]
    labels = tmp_path / "labels.csv"
    labels.write_text("index,label\n" + "".join(f"{i},{y[i]}\n" for i in labeled))
    out = tmp_path / "candidates.csv"
    args = ["query", data_dir, "--labels", labels, "--task", "two", "--budget", 2]
    args += ["--max-epochs", 2, "--out", out, "--class-prior", *shares]
    rc = main(list(map(str, args)))
    if len(shares) == 2:
        assert rc == 0 and out.exists()
        assert [p["class_prior"] for p in fit_params] == [[0.9, 0.1]]
    else:
        assert rc == 2 and not out.exists() and not fit_params
        assert "one share per grade" in capsys.readouterr().err


def test_query_writes_candidates_and_leaves_labels_alone(data_dir, y_train, tmp_path):
    y = six_to_two(y_train)
    labeled = np.r_[np.flatnonzero(y == 0)[:6], np.flatnonzero(y == 1)[:4]]
    labels = tmp_path / "labels.csv"
    labels.write_text("index,label\n" + "".join(f"{i},{y[i]}\n" for i in labeled))
    before = labels.read_bytes(), os.stat(labels).st_mtime_ns
    out = tmp_path / "sub" / "candidates.csv"
    _ok(
        _cli(
            "query",
            data_dir,
            "--labels",
            labels,
            "--budget",
            3,
            "--task",
            "two",
            "--max-epochs",
            3,
            "--out",
            out,
        )
    )
    assert (labels.read_bytes(), os.stat(labels).st_mtime_ns) == before
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert ",".join(rows[0]) == (
        "index,rank,selector,aus_score,bus_score,predicted_class,predicted_grade"
    )
    assert 3 <= len(rows) <= 6
    index = [int(r["index"]) for r in rows]
    assert len(set(index)) == len(index)
    assert not set(index) & set(labeled.tolist())
    assert all(0 <= i < len(y) for i in index)
    assert {r["selector"] for r in rows} <= {"aus", "bus", "both"}
    assert sum(r["selector"] != "bus" for r in rows) == 3  # AUS top-3
    assert {int(r["predicted_class"]) for r in rows} <= {0, 1}
    assert all(
        r["predicted_grade"] == TWO_GRADE_NAMES[int(r["predicted_class"])] for r in rows
    )
    assert all(np.isfinite(float(r["aus_score"] or r["bus_score"])) for r in rows)
    assert not os.path.exists(f"{out}.tmp")


# -- demo --------------------------------------------------------------------------
def test_demo_quick(tmp_path):
    result = _ok(_cli("demo", "--quick", "--out", tmp_path / "demo", timeout=120))
    assert "max_epochs=" in result.stdout and "final" in result.stdout
    assert "supervised" in result.stdout and "random" in result.stdout
    assert (tmp_path / "demo" / "learning_curve.png").read_bytes()[:4] == b"\x89PNG"
    results = json.loads((tmp_path / "demo" / "results.json").read_text())
    assert len(results["series"]) == 3
    assert all(len(v) == 3 for v in results["series"].values())
    # collapse warnings are summarised once, from the loops' histories
    collapsed = results["collapsed_classes"]
    assert set(collapsed) == {"BoostMIS loop", "random-query loop"}
    assert all(len(cycles) == 3 for cycles in collapsed.values())
    warned = [  # the quick demo has 2 cycles; the third fit is the final one
        f"{name} cycle {'final' if cycle == 2 else cycle}: digit "
        f"{', '.join(map(str, classes))}"
        for name, cycles in collapsed.items()
        for cycle, classes in cycles
        if classes
    ]
    assert ("pseudo-label collapse" in result.stdout) == bool(warned)
    assert all(line in result.stdout for line in warned)
    assert "PseudoLabelCollapseWarning:" not in result.stderr


# -- bad input ---------------------------------------------------------------------
@pytest.mark.parametrize("command", [[], ["demo"], ["run"], ["query"]])
def test_help_on_every_command(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([*command, "--help"])
    assert info.value.code == 0
    assert f"usage: boostmis {' '.join(command)}".strip() in capsys.readouterr().out


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out == f"boostmis {sklearn_boostmis.__version__}\n"


def _bad_copy(data_dir, tmp_path, name=None, array=None, raw=None, drop=None):
    path = tmp_path / "data"
    path.mkdir()
    for f in os.listdir(data_dir):
        if f != drop:
            np.save(path / f, np.load(os.path.join(data_dir, f)))
    if raw is not None:
        (path / name).write_bytes(raw)
    elif array is not None:
        np.save(path / name, array)
    return path


def _train_rows(data_dir, n=None):
    return np.load(os.path.join(data_dir, "train-features.npy"))[:n]


BAD_DATA = {
    "missing file": dict(drop="val-targets.npy", expect="val-targets.npy"),
    "corrupt npy": dict(
        name="test-features.npy", raw=b"\x93NUMPY garbage", expect="test-features.npy"
    ),
    "non-numeric": dict(
        name="val-features.npy",
        array=np.array([["x"] * 32] * 3),
        expect="val-features.npy",
    ),
    "length mismatch": dict(
        name="train-targets.npy", array=np.zeros(5, int), expect="train-targets.npy"
    ),
    "nan": dict(
        name="test-features.npy",
        array=np.full((3, 32), np.nan, np.float32),
        expect="test-features.npy",
    ),
}


@pytest.mark.parametrize("case", list(BAD_DATA))
def test_run_bad_data_is_one_error_line(case, data_dir, tmp_path, capsys):
    spec = dict(BAD_DATA[case])
    expect = spec.pop("expect")
    path = _bad_copy(data_dir, tmp_path, **spec)
    rc = main(["run", str(path), "--task", "two", *TINY, "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.count("\n") == 1 and err.startswith("error: ") and expect in err
    assert not (tmp_path / "o").exists()


def test_run_missing_dir_and_two_grade_six_task(data_dir, tmp_path, capsys):
    assert main(["run", str(tmp_path / "nope"), "--task", "six"]) == 2
    assert "nope" in capsys.readouterr().err
    path = _bad_copy(data_dir, tmp_path)
    for split in ("train", "val", "test"):
        f = path / f"{split}-targets.npy"
        np.save(f, six_to_two(np.load(f)))
    assert main(["run", str(path), "--task", "six", "--out", str(tmp_path / "o")]) == 2
    assert "six-grade" in capsys.readouterr().err


def test_unknown_task_is_an_argparse_error(data_dir, capsys):
    with pytest.raises(SystemExit) as info:
        main(["run", str(data_dir), "--task", "three"])
    assert info.value.code == 2
    assert "--task" in capsys.readouterr().err


def test_labels_from_a_spreadsheet_or_candidates_file_are_read(tmp_path):
    from sklearn_boostmis.cli.query import _read_labels

    path = tmp_path / "LABELS.csv"
    # Excel's "CSV UTF-8" (a byte-order mark), CANDIDATES.csv with a label column
    # added, grade names in any case, unanswered rows left empty
    path.write_bytes(
        "\ufeffindex,score,selector,predicted_class,predicted_grade,Label\r\n"
        "5,0.3,aus,1,high,High\r\n7,0.2,bus,0,low,\r\n9,0.1,both,0,low,LOW\r\n"
        "11,0.1,bus,0,low,1\r\n".encode()
    )
    indices, codes = _read_labels(path, 20, TWO_GRADE_NAMES)
    assert indices.tolist() == [5, 9, 11] and codes.tolist() == [1, 0, 1]
    # pandas writes a label column with empty (NaN) cells as floats
    path.write_text("index,label\n0.0,0.0\n1,\n2,1.0\n")
    indices, codes = _read_labels(path, 20, TWO_GRADE_NAMES)
    assert indices.tolist() == [0, 2] and codes.tolist() == [0, 1]
    for text, match in [
        ("index,label\n0,0\n1,1.5\n", "unknown class '1.5'"),
        ("index,label\n0,0\nabc,\n", "index 'abc' is not an integer"),
        ("index,index,label\n0,0,0\n", "names the column index twice"),
    ]:
        path.write_text(text)
        with pytest.raises(ValueError, match=match):
            _read_labels(path, 20, TWO_GRADE_NAMES)
    path.write_bytes("index,label\n0,b\xe9\n".encode("latin-1"))
    with pytest.raises(ValueError, match="not UTF-8 text .*save it as CSV UTF-8"):
        _read_labels(path, 20, TWO_GRADE_NAMES)


@pytest.mark.parametrize(
    "content, expect",
    [
        ("index,label\n0,0\n1,1\n99999,0\n", "unknown index 99999"),
        ("index,label\n0,0\n1\n", "line 3 has 1 column(s)"),
        ("index,label\n0,0\n1,1\n0,1\n", "duplicate index 0"),
        ("index,label\n0,0\n1,7\n", "unknown class '7'"),
        ("0,0\n1,1\n", "header"),
        ("index,label\n0,0\nx,1\n", "not an integer"),
        ("index,label\n0,0\n1,0\n", "two classes"),
    ],
)
def test_query_bad_labels(content, expect, data_dir, tmp_path, capsys):
    labels = tmp_path / "labels.csv"
    labels.write_text(content)
    out = tmp_path / "cand.csv"
    rc = main(
        [
            "query",
            str(data_dir),
            "--labels",
            str(labels),
            "--budget",
            "2",
            "--task",
            "two",
            "--out",
            str(out),
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1
    assert err.startswith("error: ") and "labels.csv" in err and expect in err
    assert labels.read_text() == content and not out.exists()


def test_query_reports_a_collapse_in_one_line(
    data_dir, y_train, tmp_path, monkeypatch, capsys
):
    import sklearn_boostmis.classifier as classifier_module

    def collapse_on_high(*args, **kwargs):
        warnings.warn("raw", PseudoLabelCollapseWarning, stacklevel=2)
        return [1]

    monkeypatch.setattr(classifier_module, "warn_on_collapse", collapse_on_high)
    y = six_to_two(y_train)
    labeled = np.r_[np.flatnonzero(y == 0)[:6], np.flatnonzero(y == 1)[:4]]
    labels = tmp_path / "labels.csv"
    labels.write_text("index,label\n" + "".join(f"{i},{y[i]}\n" for i in labeled))
    args = ["query", data_dir, "--labels", labels, "--budget", 2, "--task", "two"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rc = main(
            list(map(str, [*args, "--max-epochs", 2, "--out", tmp_path / "c.csv"]))
        )
    assert rc == 0 and not caught
    err = capsys.readouterr().err
    assert "warning; pseudo-label collapse: high (the model hardly predicts" in err
    assert "warning: raw" not in err


def test_argument_and_path_messages_name_what_is_wrong(data_dir, tmp_path, capsys):
    for args, expect in [
        (["run", data_dir, "--task", "two", "--budget", 0], "--budget: expected an"),
        (["run", data_dir, "--task", "two", "--seed", -1], "integer in 0..4294967295"),
    ]:
        with pytest.raises(SystemExit):
            main(list(map(str, args)))
        assert expect in capsys.readouterr().err
    a_file = tmp_path / "f.npy"
    a_file.write_bytes(b"")
    query = ["--task", "two", "--budget", 2, "--out", tmp_path / "c.csv"]
    for args, expect in [
        (["run", a_file, "--task", "two"], "is a file, not a MESCC data folder"),
        (["query", data_dir, "--labels", tmp_path, *query], "is a folder, not a CSV"),
    ]:
        assert main(list(map(str, args))) == 2
        assert expect in capsys.readouterr().err


def test_other_warnings_are_one_line_each(monkeypatch, capsys):
    import sklearn_boostmis.cli as cli

    def warns(args):
        warnings.warn("y contains no\n   unlabeled samples", UserWarning, stacklevel=2)

    monkeypatch.setattr(cli, "cmd_demo", warns)
    assert main(["demo"]) == 0
    assert capsys.readouterr().err == "warning: y contains no unlabeled samples\n"


def test_query_missing_labels_and_data(data_dir, tmp_path, capsys):
    args = ["--budget", "2", "--task", "two", "--out", str(tmp_path / "c.csv")]
    assert (
        main(["query", str(data_dir), "--labels", str(tmp_path / "no.csv"), *args]) == 2
    )
    assert "no.csv" in capsys.readouterr().err
    assert main(["query", str(tmp_path / "nodir"), "--labels", "x.csv", *args]) == 2
    assert "nodir" in capsys.readouterr().err


def test_errors_through_the_console_have_no_traceback(data_dir, tmp_path):
    path = _bad_copy(
        data_dir, tmp_path, name="val-features.npy", array=np.ones((4, 7), np.float32)
    )
    result = _cli("run", path, "--task", "two", "--out", tmp_path / "o")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert "val-features.npy" in lines[0] and "Traceback" not in result.stderr


@pytest.mark.parametrize("command", ["run", "query"])
def test_unusable_device_is_one_error_line_and_writes_nothing(
    command, data_dir, tmp_path, capsys
):
    out, labels = tmp_path / "out", tmp_path / "LABELS.csv"
    labels.write_text("index,label\n0,0\n1,1\n")
    extra = ["--labels", labels, "--budget", 2, "--out", out / "c.csv"]
    extra = extra if command == "query" else []
    args = [command, data_dir, "--task", "two", *extra, "--device", "tpu"]
    if command == "run":
        args += ["--out", out]
    assert main(list(map(str, args))) == 2
    assert capsys.readouterr().err.startswith("error: device='tpu' is not a torch")
    assert not out.exists()


@pytest.mark.parametrize("command", ["run", "query", "demo"])
def test_unwritable_out_fails_before_training(command, data_dir, tmp_path, capsys):
    labels = tmp_path / "LABELS.csv"
    labels.write_text("index,label\n0,0\n1,1\n")
    a_file, a_folder = tmp_path / "a_file", tmp_path / "a_folder"
    a_file.write_text("x")
    a_folder.mkdir()
    args = {
        "run": ["run", data_dir, "--task", "two", "--out", a_file],
        "query": ["query", data_dir, "--task", "two", "--labels", labels]
        + ["--budget", 2, "--out", a_folder],
        "demo": ["demo", "--out", a_file],
    }[command]
    assert main(list(map(str, args))) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: --out ")
    assert ("is a folder" if command == "query" else "is a file") in err
    if command == "query":
        args[-1] = a_file / "c.csv"
        assert main(list(map(str, args))) == 2
        assert "a_file is a file, not a folder" in capsys.readouterr().err
    args[-1] = ""
    assert main(list(map(str, args))) == 2
    assert "--out must not be empty" in capsys.readouterr().err


def test_final_fit_threshold_knows_the_last_round(data_dir, tmp_path, fit_params):
    # the final fit's eps_t must see the last round's N_A, not the one before
    out = tmp_path / "final"
    args = ["run", data_dir, "--task", "two", "--cycles", 2, *TINY, "--out", out]
    args += ["--prior-correction", "none"]  # its rounds ask for different numbers
    assert main(list(map(str, args))) == 0
    report = json.loads((out / "report.json").read_text())
    n_queried = [e["n_queried"] for e in report["cycles"][:2]]
    assert n_queried[0] != n_queried[1]  # else this test could not tell them apart
    thresholds = [p["threshold"] for p in fit_params]
    assert thresholds[0] == "adaptive"
    assert thresholds[1].n_annotated == n_queried[0]
    assert thresholds[-1].n_annotated == n_queried[1]
    assert thresholds[-1].quota == 4


def test_report_records_collapse_warnings(data_dir, tmp_path, monkeypatch, capsys):
    import sklearn_boostmis.classifier as classifier_module

    verdicts = []  # each fit's collapse verdict, as fit computed it
    original = classifier_module.warn_on_collapse

    def recording(*args, **kwargs):
        verdicts.append(list(original(*args, **kwargs)))
        return verdicts[-1]

    monkeypatch.setattr(classifier_module, "warn_on_collapse", recording)
    out = tmp_path / "collapse"
    args = ["run", data_dir, "--task", "two", "--cycles", 2, *TINY, "--out", out]
    args += ["--prior-correction", "none"]  # the paper's method collapses here
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(list(map(str, args))) == 0
    assert any(verdicts)  # the 12-label start on 9:1 data collapses
    # summarised in the command's own lines, not printed as raw warnings
    assert not [w for w in caught if w.category is PseudoLabelCollapseWarning]
    cycles = json.loads((out / "report.json").read_text())["cycles"]
    assert [e["collapsed_classes"] for e in cycles] == verdicts
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 3
    for line, verdict in zip(lines, verdicts, strict=True):
        assert ("pseudo-label collapse: high" in line) == (verdict == [1])
    names = json.loads((out / "report.json").read_text())["config"]["target_names"]
    md = (out / "report.md").read_text()
    assert "**Pseudo-label collapse**" in md
    first = next(e for e in cycles if e["collapsed_classes"])
    assert f"cycle {first['cycle']}: {names[first['collapsed_classes'][0]]}" in md
