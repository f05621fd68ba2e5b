import ast
import pathlib

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import sklearn_boostmis.query
from sklearn_boostmis import BoostMISClassifier
from sklearn_boostmis.query import InformativeQuerySampler, low_confidence_candidates

from .conftest import FAST


@pytest.fixture(scope="module")
def pool(iris_data):
    X, _, y_partial = iris_data
    return X[y_partial == -1]


class _Learner:
    """The part of a modAL learner the sampler relies on."""

    def __init__(self, estimator):
        self.estimator = estimator


@pytest.mark.parametrize("n", [1, 2, 3, 50])
def test_contract_exact_unique_int_indices_and_float_scores(fitted_iris, pool, n):
    sampler = InformativeQuerySampler(random_state=0)
    idx, scores = sampler(fitted_iris, pool, n_instances=n)
    assert isinstance(idx, np.ndarray) and idx.dtype.kind == "i"
    assert idx.shape == (n,) and len(np.unique(idx)) == n
    assert idx.min() >= 0 and idx.max() < len(pool)
    assert isinstance(scores, np.ndarray) and scores.dtype == np.float64
    assert scores.shape == (n,) and np.isfinite(scores).all()
    assert (scores >= -1e-6).all()


def test_prefix_consistency_and_interleave(fitted_iris, pool):
    sampler = InformativeQuerySampler(random_state=0)
    aus = sampler.set_params(selectors="aus")(fitted_iris, pool, 3)[0]
    bus = sampler.set_params(selectors="bus")(fitted_iris, pool, 3)[0]
    both = sampler.set_params(selectors="both")(fitted_iris, pool, 3)[0]
    assert both[0] == aus[0]
    pairs = [int(v) for ab in zip(aus, bus, strict=True) for v in ab]
    assert both.tolist() == list(dict.fromkeys(pairs))[:3]


def test_deterministic_under_random_state(fitted_iris, pool):
    a = InformativeQuerySampler(random_state=3)(fitted_iris, pool, 10)
    b = InformativeQuerySampler(random_state=3)(fitted_iris, pool, 10)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_a_fitted_annotation_loop_is_queried_through_its_estimator(iris_data, pool):
    from sklearn_boostmis import AnnotationLoop

    X, y, y_partial = iris_data
    sampler = InformativeQuerySampler(random_state=0)
    loop = AnnotationLoop(
        BoostMISClassifier(random_state=0, **FAST),
        oracle=lambda idx: y[idx],
        n_cycles=1,
        budget=3,
    )
    with pytest.raises(NotFittedError, match="AnnotationLoop"):
        sampler(loop, pool, 5)
    loop.fit(X, y_partial)
    np.testing.assert_array_equal(
        sampler(loop, pool, 5)[0], sampler(loop.estimator_, pool, 5)[0]
    )


def test_modal_like_and_pipeline_unwrapping(iris_data, fitted_iris, pool):
    sampler = InformativeQuerySampler(random_state=0)
    direct = sampler(fitted_iris, pool, 7)
    wrapped = sampler(_Learner(fitted_iris), pool, 7)
    np.testing.assert_array_equal(direct[0], wrapped[0])
    np.testing.assert_allclose(direct[1], wrapped[1])

    X, _, y_partial = iris_data
    X_raw = X * 3.0 + 1.0
    pipe = make_pipeline(StandardScaler(), BoostMISClassifier(random_state=0, **FAST))
    pipe.fit(X_raw, y_partial)
    raw_pool = X_raw[y_partial == -1]
    via_pipe = sampler(_Learner(pipe), raw_pool, 7)
    inner = sampler(pipe[-1], pipe[:-1].transform(raw_pool), 7)
    np.testing.assert_array_equal(via_pipe[0], inner[0])
    # Scoring the raw features directly would be a different (wrong) query.
    assert isinstance(via_pipe[0], np.ndarray)


def test_errors(fitted_iris, pool):
    sampler = InformativeQuerySampler()
    for n in (0, len(pool) + 1):
        with pytest.raises(ValueError, match="n_instances"):
            sampler(fitted_iris, pool, n)
    with pytest.raises(ValueError, match="quota"):
        sampler.select_union(fitted_iris, pool, 0)
    with pytest.raises(NotFittedError):
        sampler(BoostMISClassifier(), pool, 1)
    logreg = LogisticRegression().fit(pool, np.arange(len(pool)) % 2)
    with pytest.raises(TypeError, match="LogisticRegression"):
        sampler(logreg, pool, 1)
    with pytest.raises(TypeError, match="LogisticRegression"):
        sampler(_Learner(logreg), pool, 1)


def test_empty_pool_and_count_messages(fitted_iris, pool):
    sampler = InformativeQuerySampler()
    with pytest.raises(ValueError, match="X_pool is empty"):
        sampler(fitted_iris, pool[:0], n_instances=1)
    with pytest.raises(ValueError, match="X_pool is empty"):
        sampler.select_union(fitted_iris, pool[:0], 3)
    with pytest.raises(ValueError, match=r"quota must be >= 1, got 0\."):
        sampler.select_union(fitted_iris, pool, 0)
    with pytest.raises(ValueError, match=r"must be in \[1, len\(X_pool\)=3\], got 5"):
        sampler(fitted_iris, pool[:3], n_instances=5)
    # a quota above the pool size is clipped: the union is the whole pool
    union = InformativeQuerySampler(random_state=0).select_union(
        fitted_iris, pool[:4], 10
    )
    assert sorted(union.indices.tolist()) == [0, 1, 2, 3]


@pytest.fixture(scope="module")
def searches(iris_data):
    X, _, y_partial = iris_data
    est = BoostMISClassifier(
        max_epochs=2,
        batch_size=16,
        module_params={"hidden_units": (16,)},
        random_state=0,
    )
    grid = {"lr": [0.03]}
    return (
        GridSearchCV(est, grid, cv=2).fit(X, y_partial),
        GridSearchCV(est, grid, cv=2, refit=False).fit(X, y_partial),
    )


def test_fitted_search_is_queried_through_its_best_estimator(searches, pool):
    search, no_refit = searches
    sampler = InformativeQuerySampler(random_state=0)
    expected = sampler(search.best_estimator_, pool, 5)
    for wrapped in (search, _Learner(search)):
        idx, scores = sampler(wrapped, pool, 5)
        np.testing.assert_array_equal(idx, expected[0])
        np.testing.assert_allclose(scores, expected[1])
    with pytest.raises(TypeError, match="GridSearchCV was fitted with refit=False"):
        sampler(no_refit, pool, 5)
    with pytest.raises(NotFittedError, match="GridSearchCV instance is not fitted"):
        sampler(clone(search), pool, 5)


def test_modal_active_learner_around_a_search(searches, pool):
    models = pytest.importorskip("modAL.models")
    search = searches[0]
    sampler = InformativeQuerySampler(random_state=0)
    learner = models.ActiveLearner(estimator=search, query_strategy=sampler)
    idx, rows = learner.query(pool, n_instances=4)
    np.testing.assert_array_equal(idx, sampler(search.best_estimator_, pool, 4)[0])
    np.testing.assert_array_equal(rows, pool[idx])


def test_no_gradients_left_and_modes_restored(fitted_iris, pool):
    net = fitted_iris.net_
    teacher, student = net.ema_module_, net.module_
    requires = [p.requires_grad for p in teacher.parameters()]
    params = list(teacher.parameters()) + list(student.parameters())
    # skorch leaves the student's last training gradients in place: they must
    # be unchanged, and the teacher must have none.
    grads = [None if p.grad is None else p.grad.clone() for p in params]
    teacher.train()
    student.eval()
    try:
        InformativeQuerySampler(random_state=0, n_power=2)(fitted_iris, pool, 5)
        assert all(m.training for m in teacher.modules())
        assert not any(m.training for m in student.modules())
    finally:
        teacher.eval()
    for p, g in zip(params, grads, strict=True):
        if g is None:
            assert p.grad is None
        else:
            assert torch.equal(p.grad, g)
    assert all(p.grad is None for p in teacher.parameters())
    assert [p.requires_grad for p in teacher.parameters()] == requires


def test_scores_use_the_teacher_in_eval_mode(fitted_iris, pool):
    # Train-mode BatchNorm would make scores depend on the batch: with the
    # teacher in eval mode the scores do not depend on batch_size.
    a = InformativeQuerySampler(random_state=0, selectors="bus")(fitted_iris, pool, 20)
    b = InformativeQuerySampler(random_state=0, selectors="bus", batch_size=7)(
        fitted_iris, pool, 20
    )
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_allclose(a[1], b[1], rtol=1e-5)


def test_candidate_pool_rule(fitted_iris, pool):
    max_p = fitted_iris.predict_proba(pool).max(axis=1)
    order = np.sort(max_p)
    m = 20
    threshold = float((order[m - 1] + order[m]) / 2)
    low = set(np.flatnonzero(max_p < threshold).tolist())
    assert len(low) == m
    sampler = InformativeQuerySampler(
        random_state=0, candidate_threshold=threshold, selectors="aus"
    )
    union = sampler.select_union(fitted_iris, pool, 8)
    assert set(union.indices.tolist()) <= low
    # Fewer candidates than needed: fall back to every row of the pool.
    union = sampler.select_union(fitted_iris, pool, m + 5)
    assert len(union.indices) == m + 5
    assert not set(union.indices.tolist()) <= low


def test_candidates_follow_a_threshold_object(iris_data, pool):
    from sklearn_boostmis import FixedThreshold

    X, _, y_partial = iris_data
    clf = BoostMISClassifier(
        threshold=FixedThreshold(0.6), random_state=0, **{**FAST, "max_epochs": 4}
    ).fit(X, y_partial)
    max_p = clf.predict_proba(pool).max(axis=1)
    below = set(np.flatnonzero(max_p < 0.6).tolist())
    assert 4 <= len(below) < len(pool) // 2  # not every row, enough to choose from
    union = InformativeQuerySampler(random_state=0, selectors="aus").select_union(
        clf, pool, 4
    )
    assert set(union.indices.tolist()) <= below  # not alpha + beta = 0.95


def test_a_loaded_model_keeps_its_settled_threshold(iris_data, pool, tmp_path):
    from sklearn_boostmis import FixedThreshold, load_weights, save_weights

    X, _, y_partial = iris_data
    params = dict(threshold=FixedThreshold(0.6), random_state=0, **FAST)
    clf = BoostMISClassifier(**{**params, "max_epochs": 4}).fit(X, y_partial)
    assert clf.settled_threshold_ == pytest.approx(0.6)
    save_weights(clf, tmp_path / "model.safetensors")
    loaded = load_weights(BoostMISClassifier(**params), tmp_path / "model.safetensors")
    assert loaded.settled_threshold_ == pytest.approx(0.6)  # not alpha + beta
    below = set(np.flatnonzero(clf.predict_proba(pool).max(axis=1) < 0.6).tolist())
    union = InformativeQuerySampler(random_state=0, selectors="aus").select_union(
        loaded, pool, 4
    )
    assert set(union.indices.tolist()) <= below


def test_teacher_outputs_are_the_predictions_and_representations(fitted_iris, pool):
    proba, embedding, X = fitted_iris.teacher_outputs(pool, batch_size=7)
    np.testing.assert_allclose(
        proba.numpy(), fitted_iris.predict_proba(pool), rtol=1e-5, atol=1e-6
    )
    assert embedding.shape == (len(pool), 32)  # the hidden layer
    with torch.no_grad():
        logits = fitted_iris.teacher_.head(embedding)
    torch.testing.assert_close(logits.softmax(dim=1), proba)
    assert X.dtype == torch.float32 and X.shape == pool.shape
    with pytest.raises(NotFittedError):
        BoostMISClassifier().teacher_outputs(pool)


class _LayersNamedEmbedAndHead(torch.nn.Module):
    def __init__(self, n_features, n_classes):
        super().__init__()
        self.embed = torch.nn.Linear(n_features, 16)  # an input layer, not f(x)
        self.body = torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Linear(16, 16))
        self.head = torch.nn.Linear(16, n_classes)

    def forward(self, x):
        return self.head(self.body(self.embed(x)))


def test_embed_and_head_that_do_not_split_forward_are_refused(iris_data, pool):
    X, _, y_partial = iris_data
    clf = BoostMISClassifier(
        module=_LayersNamedEmbedAndHead, max_epochs=2, batch_size=16, random_state=0
    ).fit(X, y_partial)
    with pytest.raises(ValueError, match=r"head\(embed\(x\)\) differs from"):
        InformativeQuerySampler(random_state=0)(clf, pool, 3)


def test_low_confidence_candidates_helper():
    proba = torch.tensor([[0.99, 0.01], [0.6, 0.4], [0.95, 0.05]])
    assert low_confidence_candidates(proba, 0.95, 1).tolist() == [1]
    assert low_confidence_candidates(proba, 0.95, 2).tolist() == [0, 1, 2]


@pytest.mark.parametrize("selectors", ["both", "aus", "bus"])
def test_select_union_and_selectors_option(fitted_iris, pool, selectors):
    k = 6
    sampler = InformativeQuerySampler(random_state=0, selectors=selectors)
    union = sampler.select_union(fitted_iris, pool, k)
    idx = union.indices
    assert idx.dtype.kind == "i" and len(np.unique(idx)) == len(idx)
    assert (union.from_aus | union.from_bus).all()
    picked = union.picked_by()
    assert set(picked) <= {"aus", "bus", "both"}
    if selectors == "both":
        assert k <= len(idx) <= 2 * k
        assert union.from_aus.sum() == k and union.from_bus.sum() == k
        aus_only = sampler.set_params(selectors="aus")(fitted_iris, pool, k)[0]
        np.testing.assert_array_equal(idx[union.from_aus], aus_only)
    else:
        assert len(idx) == k
        assert (union.from_aus if selectors == "aus" else union.from_bus).all()
        assert not (union.from_bus if selectors == "aus" else union.from_aus).any()
        np.testing.assert_array_equal(idx, sampler(fitted_iris, pool, k)[0])


def test_rankings_are_what_the_union_and_the_interleave_take(fitted_iris, pool):
    sampler = InformativeQuerySampler(random_state=0)
    aus, bus, aus_scores, bus_scores = sampler.rankings(fitted_iris, pool, 6)
    assert aus.dtype == bus.dtype == np.int64 and len(aus) == len(bus) == 6
    assert aus_scores.shape == bus_scores.shape == (len(pool),)
    assert np.all(np.diff(aus_scores[aus]) <= 0)  # best first
    union = sampler.select_union(fitted_iris, pool, 6)
    np.testing.assert_array_equal(union.indices[union.from_aus], aus)
    assert set(union.indices[union.from_bus].tolist()) == set(bus.tolist())
    off = sampler.set_params(selectors="aus").rankings(fitted_iris, pool, 6)
    assert len(off[1]) == 0 and not off[3].any()


def test_bus_is_class_balanced(fitted_iris, pool):
    k = 9
    sampler = InformativeQuerySampler(selectors="bus", candidate_threshold=1.0)
    union = sampler.select_union(fitted_iris, pool, k)
    pred = fitted_iris.predict(pool)
    counts = np.bincount(np.searchsorted(fitted_iris.classes_, pred), minlength=3)
    picked = np.bincount(
        np.searchsorted(fitted_iris.classes_, pred[union.indices]), minlength=3
    )
    # Each predicted class gets floor(K / C) picks, when it has that many rows.
    assert (picked >= np.minimum(counts, k // 3)).all()


@pytest.mark.parametrize("density", ["knn_degree", "settles"])
def test_density_options(fitted_iris, pool, density):
    sampler = InformativeQuerySampler(density=density, random_state=0)
    idx, _ = sampler(fitted_iris, pool, 4)
    assert len(np.unique(idx)) == 4


def test_invalid_parameter():
    with pytest.raises(ValueError, match="selectors"):
        InformativeQuerySampler(selectors="all")(None, np.zeros((3, 4)), 1)


@pytest.mark.parametrize("n", [1, 2, 3, 40])
def test_modal_active_learner_calls_strategy_once(fitted_iris, pool, n):
    models = pytest.importorskip("modAL.models")
    sampler = InformativeQuerySampler(random_state=0)
    calls = []

    def strategy(learner, X_pool, n_instances=1):
        calls.append(n_instances)
        return sampler(learner, X_pool, n_instances=n_instances)

    learner = models.ActiveLearner(estimator=fitted_iris, query_strategy=strategy)
    idx, rows = learner.query(pool, n_instances=n)
    assert calls == [n]
    assert len(np.unique(idx)) == n
    np.testing.assert_array_equal(rows, pool[idx])
    np.testing.assert_array_equal(idx, sampler(fitted_iris, pool, n)[0])


class _PlainModule(torch.nn.Module):
    """A network without the embed/head protocol."""

    def __init__(self, n_features, n_classes):
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(n_features, 16),
            torch.nn.ReLU(),
            torch.nn.Linear(16, n_classes),
        )

    def forward(self, X):
        return self.net(X)


def test_module_without_embedding_uses_the_input(iris_data, pool):
    X, _, y_partial = iris_data
    clf = BoostMISClassifier(
        module=_PlainModule, max_epochs=3, batch_size=16, random_state=0
    ).fit(X, y_partial)
    sampler = InformativeQuerySampler(random_state=0)
    assert clf.teacher_outputs(pool)[1] is None  # no representations
    with pytest.warns(UserWarning, match="perturbs the input"):
        idx, scores = sampler(clf, pool, 5)
    assert len(np.unique(idx)) == 5 and np.isfinite(scores).all()
    # BUS alone needs no perturbation: its density runs on the input rows.
    union = sampler.set_params(selectors="bus").select_union(clf, pool, 4)
    assert len(union.indices) == 4


def test_union_scores_come_from_the_selector_that_picked(fitted_iris, pool):
    clf, X_pool = fitted_iris, pool
    sampler = InformativeQuerySampler(random_state=0)
    union = sampler.select_union(clf, X_pool, 8)
    aus_only = InformativeQuerySampler(random_state=0, selectors="aus")
    bus_only = InformativeQuerySampler(random_state=0, selectors="bus")
    a = aus_only.select_union(clf, X_pool, 8)
    b = bus_only.select_union(clf, X_pool, 8)
    a_scores = dict(zip(a.indices.tolist(), a.scores.tolist(), strict=True))
    b_scores = dict(zip(b.indices.tolist(), b.scores.tolist(), strict=True))
    for idx, score, by in zip(
        union.indices, union.scores, union.picked_by(), strict=True
    ):
        expected = a_scores[idx] if by in ("aus", "both") else b_scores[idx]
        assert score == pytest.approx(expected)


def test_teacher_embeds_each_pool_row_once(fitted_iris, pool, monkeypatch):
    """AUS perturbs the representations of the scoring pass, not new ones."""
    teacher = fitted_iris.net_.ema_module_
    embedded_rows = []
    real_embed = teacher.embed

    def counting(x):
        embedded_rows.append(len(x))
        return real_embed(x)

    expected = InformativeQuerySampler(random_state=0)(fitted_iris, pool, 10)
    monkeypatch.setattr(teacher, "embed", counting)
    picked = InformativeQuerySampler(random_state=0)(fitted_iris, pool, 10)
    # + 2: forward(x) on two rows checks that embed and head split it
    assert sum(embedded_rows) == len(pool) + 2
    np.testing.assert_array_equal(picked[0], expected[0])


def test_the_query_package_imports_neither_the_loop_nor_the_classifier():
    """Queries use the classifier's public members: no import cycle with loop."""
    folder = pathlib.Path(sklearn_boostmis.query.__file__).parent
    for path in folder.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level >= 2:
                names = [node.module] if node.module else [a.name for a in node.names]
                imported = {name.split(".")[0] for name in names}
                assert not imported & {"loop", "classifier"}, (path.name, imported)


def test_the_density_backend_that_ran_is_reported(fitted_iris, pool):
    pytest.importorskip("faiss")
    sampler = InformativeQuerySampler(random_state=0)
    picked = sampler(fitted_iris, pool, 10)[0]
    assert sampler.knn_backend_ == "faiss"  # a small pool: exact
    exact = InformativeQuerySampler(knn_backend="faiss", random_state=0)
    np.testing.assert_array_equal(exact(fitted_iris, pool, 10)[0], picked)

    approximate = InformativeQuerySampler(approximate_from=len(pool), random_state=0)
    first = approximate.select_union(fitted_iris, pool, 10)
    assert approximate.knn_backend_ == "ivf"
    again = approximate.select_union(fitted_iris, pool, 10)
    np.testing.assert_array_equal(first.indices, again.indices)
    np.testing.assert_array_equal(first.scores, again.scores)

    for params in ({"density": "settles"}, {"selectors": "aus"}):
        sampler.set_params(**params)(fitted_iris, pool, 10)
        assert sampler.knn_backend_ is None


def test_a_streamed_density_picks_what_one_block_picks(fitted_iris, pool, monkeypatch):
    sampler = InformativeQuerySampler(knn_backend="torch", random_state=0)
    expected = sampler.select_union(fitted_iris, pool, 10)
    monkeypatch.setattr(sklearn_boostmis.query.bus, "_REFERENCE_BLOCK", 7)
    got = sampler.select_union(fitted_iris, pool, 10)
    np.testing.assert_array_equal(got.indices, expected.indices)
    np.testing.assert_allclose(got.scores, expected.scores, rtol=1e-6)
    assert sampler.knn_backend_ == "torch"


def test_n_probe_reaches_the_approximate_search(fitted_iris, pool):
    exact = InformativeQuerySampler(knn_backend="torch", random_state=0)
    exact_bus = exact.rankings(fitted_iris, pool, 10)[3]

    # a 135-row pool has 6 lists: the default 8 probes all of them (exact)
    every = InformativeQuerySampler(approximate_from=len(pool), random_state=0)
    np.testing.assert_allclose(every.rankings(fitted_iris, pool, 10)[3], exact_bus)
    assert every.knn_backend_ == "ivf"

    one = InformativeQuerySampler(approximate_from=len(pool), n_probe=1, random_state=0)
    one_bus = one.rankings(fitted_iris, pool, 10)[3]
    assert one.knn_backend_ == "ivf"
    # one list searched finds fewer of the true neighbours: lower densities
    assert not np.allclose(one_bus, exact_bus)
    assert (one_bus <= exact_bus + 1e-6).all()


def test_n_probe_must_be_positive(fitted_iris, pool):
    with pytest.raises(ValueError, match="n_probe"):
        InformativeQuerySampler(n_probe=0)(fitted_iris, pool, 3)
