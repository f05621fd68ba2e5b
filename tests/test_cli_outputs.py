"""What the ``boostmis`` commands leave behind: a finished run's rerun, the
candidates file of ``query`` and the learning-curve figure."""

import csv
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from matplotlib.collections import PathCollection
from sklearn.metrics import balanced_accuracy_score, f1_score

from sklearn_boostmis import BoostMISClassifier, InformativeQuerySampler
from sklearn_boostmis.cli import load_run_model, main
from sklearn_boostmis.cli._common import classification_metrics
from sklearn_boostmis.cli._plot import (
    BASELINE_LABEL,
    CurvePoint,
    learning_curve_figure,
    majority_baseline,
)
from sklearn_boostmis.cli.demo import _loop_curve
from sklearn_boostmis.cli.query import _ranked_candidates
from sklearn_boostmis.cli.run import _curve_points
from sklearn_boostmis.datasets import six_to_two, write_mescc_like

TINY = ["--budget", "4", "--initial-labels", "12", "--max-epochs", "3", "--seed", "0"]
UNCHANGED = ["report.json", "report.md", "model.safetensors", "config.json"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("mescc")
    return Path(write_mescc_like(path, scale=0.05, n_features=32, random_state=0))


def _run(data_dir, out, cycles, *extra):
    args = ["run", data_dir, "--task", "two", "--cycles", cycles, *TINY, *extra]
    return main([*map(str, args), "--out", str(out)])


@pytest.fixture(scope="module")
def finished_run(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("finished") / "out"
    assert _run(data_dir, out, 2) == 0
    return out


@pytest.fixture
def run_copy(finished_run, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(finished_run, out)
    return out


@pytest.fixture
def fits(monkeypatch):
    """The number of BoostMISClassifier.fit calls, as a one-element list."""
    calls = [0]
    real_fit = BoostMISClassifier.fit

    def counting_fit(self, X, y):
        calls[0] += 1
        return real_fit(self, X, y)

    monkeypatch.setattr(BoostMISClassifier, "fit", counting_fit)
    return calls


# -- a finished run, run again ---------------------------------------------------
def test_rerun_of_a_finished_run_says_so_and_trains_nothing(
    data_dir, run_copy, fits, capsys
):
    before = {name: (run_copy / name).read_bytes() for name in UNCHANGED}
    assert _run(data_dir, run_copy, 2, "--device", "cpu") == 0
    err = capsys.readouterr().err
    assert fits == [0]
    assert f"the run in {run_copy} is complete: 2 cycle(s)" in err
    assert f"report: {run_copy / 'report.md'}" in err
    assert "a larger --cycles adds cycles" in err
    assert {name: (run_copy / name).read_bytes() for name in UNCHANGED} == before
    # fewer cycles than the folder holds, or another budget: refused, untouched
    assert _run(data_dir, run_copy, 1) == 2
    assert "already holds 2 annotation cycles: pass --cycles 2" in (
        capsys.readouterr().err
    )
    assert _run(data_dir, run_copy, 2, "--budget", "5") == 2
    assert "holds a run with budget=4, not 5" in capsys.readouterr().err
    assert fits == [0]
    assert {name: (run_copy / name).read_bytes() for name in UNCHANGED} == before


def test_rerun_writes_deleted_report_and_figure_again(
    data_dir, run_copy, fits, monkeypatch, capsys
):
    import sklearn_boostmis.cli.run as run_module

    plotted = []
    real_plot = run_module.plot_learning_curves

    def recording_plot(series, path, title, baseline=None):
        plotted.append((series, baseline))
        real_plot(series, path, title, baseline)

    monkeypatch.setattr(run_module, "plot_learning_curves", recording_plot)
    md = (run_copy / "report.md").read_text()
    (run_copy / "report.md").unlink()
    (run_copy / "learning_curve.png").unlink()
    assert _run(data_dir, run_copy, 2) == 0
    assert fits == [0]
    assert "(report.md, learning_curve.png written again)" in capsys.readouterr().err
    assert (run_copy / "report.md").read_text() == md
    assert (run_copy / "learning_curve.png").read_bytes()[:4] == b"\x89PNG"
    # the figure shows the report's fits against the majority-class predictor
    ((series, baseline),) = plotted
    report = json.loads((run_copy / "report.json").read_text())
    assert series == {"BoostMIS": _curve_points(report["cycles"])}
    y_test = six_to_two(np.load(data_dir / "test-targets.npy"))
    assert baseline["accuracy"] == pytest.approx(np.mean(y_test == 0))


def test_rerun_without_the_weights_redoes_the_final_fit_only(
    data_dir, run_copy, fits, capsys
):
    annotations = (run_copy / "annotations.csv").read_bytes()
    (run_copy / "model.safetensors").unlink()
    assert _run(data_dir, run_copy, 2) == 0
    assert fits == [1]
    assert "final fit on" in capsys.readouterr().err
    assert (run_copy / "annotations.csv").read_bytes() == annotations
    assert json.loads((run_copy / "report.json").read_text())["complete"]


def test_interrupted_extension_is_not_taken_for_a_finished_run(
    data_dir, run_copy, monkeypatch, capsys
):
    def interrupted(self, X, y):
        raise KeyboardInterrupt

    monkeypatch.setattr(BoostMISClassifier, "fit", interrupted)
    assert _run(data_dir, run_copy, 3) == 130  # cycle 3's fit is interrupted
    assert not json.loads((run_copy / "report.json").read_text())["complete"]
    with pytest.warns(UserWarning, match="has not finished"):
        load_run_model(run_copy, device="cpu")
    assert _run(data_dir, run_copy, 2) == 130  # not "complete": it fits again
    assert "is complete" not in capsys.readouterr().err


def test_rerun_of_a_run_that_labeled_every_row_trains_nothing(
    data_dir, tmp_path, fits, capsys
):
    out = tmp_path / "exhausted"
    args = ["--budget", "60", "--max-epochs", "1"]  # after TINY: these win
    assert _run(data_dir, out, 6, *args) == 0
    n_fits = fits[0]
    assert _run(data_dir, out, 8, *args) == 0
    assert fits == [n_fits]
    err = capsys.readouterr().err
    assert "is complete: 4 cycle(s)" in err and "every train row is labeled" in err


# -- query: the candidates file --------------------------------------------------
@pytest.fixture(scope="module")
def pool_model(data_dir):
    X = np.load(data_dir / "train-features.npy")
    X = ((X - X.mean(0)) / X.std(0)).astype(np.float32)
    y = six_to_two(np.load(data_dir / "train-targets.npy"))
    y_partial = np.full_like(y, -1)
    labeled = np.r_[np.flatnonzero(y == 0)[:8], np.flatnonzero(y == 1)[:4]]
    y_partial[labeled] = y[labeled]
    clf = BoostMISClassifier(max_epochs=3, random_state=0).fit(X, y_partial)
    return clf, X[y_partial == -1]


def test_ranked_candidates_are_the_union_in_interleaved_order(pool_model):
    from sklearn_boostmis.query import interleave_rankings

    clf, X_pool = pool_model
    sampler = InformativeQuerySampler(random_state=0)
    union, aus_scores, bus_scores = _ranked_candidates(sampler, clf, X_pool, 5)
    ref = sampler.select_union(clf, X_pool, 5)
    # the rows and selectors the closed loop asks, in another order
    assert sorted(union.indices) == sorted(ref.indices)
    selector = dict(zip(ref.indices, ref.picked_by(), strict=True))
    assert list(union.picked_by()) == [selector[i] for i in union.indices]
    # ask-first order: each selector's own ranking, taken in turn, AUS first
    aus = union.indices[union.from_aus]
    bus = union.indices[union.from_bus]
    assert aus.tolist() == ref.indices[ref.from_aus].tolist()
    assert union.indices.tolist() == (
        interleave_rankings(aus, bus, len(union.indices)).tolist()
    )
    # each selector's own score, NaN where it did not pick the row
    assert np.array_equal(np.isnan(aus_scores), ~union.from_aus)
    assert np.array_equal(np.isnan(bus_scores), ~union.from_bus)
    ref_score = dict(zip(ref.indices, ref.scores, strict=True))
    only_bus = union.from_bus & ~union.from_aus
    assert aus_scores[union.from_aus].tolist() == [
        ref_score[i] for i in union.indices[union.from_aus]
    ]
    assert bus_scores[only_bus].tolist() == [
        ref_score[i] for i in union.indices[only_bus]
    ]
    assert np.all(np.diff(aus_scores[union.from_aus]) <= 0)


def test_candidates_file_is_in_rank_order_with_a_score_per_selector(
    data_dir, tmp_path, capsys
):
    y = six_to_two(np.load(data_dir / "train-targets.npy"))
    labeled = np.r_[np.flatnonzero(y == 0)[:6], np.flatnonzero(y == 1)[:4]]
    labels = tmp_path / "labels.csv"
    labels.write_text("index,label\n" + "".join(f"{i},{y[i]}\n" for i in labeled))
    out = tmp_path / "candidates.csv"
    args = ["query", data_dir, "--labels", labels, "--budget", 4, "--task", "two"]
    assert main([*map(str, args), "--max-epochs", "3", "--out", str(out)]) == 0
    assert "rank order (1 = ask first)" in capsys.readouterr().err
    with open(out, newline="") as f:
        header, *rows = list(csv.reader(f))
    assert ",".join(header) == (
        "index,rank,selector,aus_score,bus_score,predicted_class,predicted_grade"
    )
    assert "score" not in header  # renamed, not redefined: old readers fail loudly
    rows = [dict(zip(header, row, strict=True)) for row in rows]
    assert [int(r["rank"]) for r in rows] == list(range(1, len(rows) + 1))
    assert rows[0]["selector"] in {"aus", "both"}  # AUS leads the interleave
    for r in rows:
        assert (r["aus_score"] != "") == (r["selector"] in {"aus", "both"})
        assert (r["bus_score"] != "") == (r["selector"] in {"bus", "both"})
    aus = [float(r["aus_score"]) for r in rows if r["aus_score"]]
    assert aus == sorted(aus, reverse=True)


# -- the learning curve ----------------------------------------------------------
NAMES = ["low", "high"]
Y_TRUE = np.array([0] * 9 + [1])


def _entry(y_pred, n_labeled, collapsed=()):
    metrics = classification_metrics(Y_TRUE, np.asarray(y_pred), NAMES)
    return {"n_labeled": n_labeled, "collapsed_classes": list(collapsed), **metrics}


def test_curve_points_flag_collapsed_fits():
    entries = [
        _entry([0] * 10, 12, collapsed=[1]),  # the majority class only: 0.9
        _entry([0] * 8 + [1, 1], 20),
    ]
    one_class, mixed = _curve_points(entries)
    assert (one_class.accuracy, one_class.balanced_accuracy) == (0.9, 0.5)
    assert one_class.one_class and one_class.pseudo_label_collapse
    assert not (mixed.one_class or mixed.pseudo_label_collapse)
    y_pred = [0] * 8 + [1, 1]
    assert mixed.balanced_accuracy == pytest.approx(
        balanced_accuracy_score(Y_TRUE, y_pred)
    )


def test_majority_baseline_scores_the_constant_prediction():
    baseline = majority_baseline(Y_TRUE, NAMES)
    constant = np.zeros_like(Y_TRUE)
    assert baseline["accuracy"] == 0.9  # the majority-class rate
    assert baseline["balanced_accuracy"] == 0.5
    assert baseline["macro_f1"] == pytest.approx(
        f1_score(Y_TRUE, constant, average="macro")
    )


def test_figure_shows_balanced_scores_the_baseline_and_the_collapses():
    points = _curve_points(
        [_entry([0] * 10, 12, collapsed=[1]), _entry([0] * 8 + [1, 1], 20)]
    )
    baseline = majority_baseline(Y_TRUE, NAMES)
    fig = learning_curve_figure({"BoostMIS": points}, "t", baseline)
    labels = [ax.get_ylabel() for ax in fig.axes]
    assert labels == ["test accuracy", "test balanced accuracy", "test macro-F1"]
    fields = ["accuracy", "balanced_accuracy", "macro_f1"]
    for ax, field in zip(fig.axes, fields, strict=True):
        assert ax.get_ylim() == (-0.02, 1.02)  # not zoomed onto the curve
        dashed = [line for line in ax.lines if line.get_label() == BASELINE_LABEL]
        assert [line.get_ydata()[0] for line in dashed] == [baseline[field]]
        marks = [c for c in ax.collections if isinstance(c, PathCollection)]
        # the first fit: a pseudo-label collapse and a single predicted class
        assert [m.get_offsets().tolist() for m in marks] == 2 * [
            [[12, getattr(points[0], field)]]
        ]
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "predicts a single class" in legend and BASELINE_LABEL in legend


def test_demo_curves_mark_the_warned_fits_and_skip_missing_panels():
    loop = SimpleNamespace(
        history_=[
            dict(
                n_labeled=20, val_accuracy=0.6, val_f1_macro=0.5, collapsed_classes=[4]
            ),
            dict(
                n_labeled=30, val_accuracy=0.7, val_f1_macro=0.6, collapsed_classes=[]
            ),
        ]
    )
    points = _loop_curve(loop)
    assert points == [
        CurvePoint(20, 0.6, 0.5, pseudo_label_collapse=True),
        CurvePoint(30, 0.7, 0.6),
    ]
    fig = learning_curve_figure({"loop": points}, "t")  # no balanced accuracy
    assert [ax.get_ylabel() for ax in fig.axes] == ["test accuracy", "test macro-F1"]
