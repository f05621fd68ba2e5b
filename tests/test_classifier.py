import pickle
import warnings

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks
from skorch.callbacks import Callback

from sklearn_boostmis import (
    BoostMISClassifier,
    FixedThreshold,
    MLPClassifierModule,
    make_labeled_scorer,
)
from sklearn_boostmis.engine import BoostMISNet

from .conftest import FAST

EXPECTED_FAILED_CHECKS = {
    "check_classifiers_classes": (
        "feeds the labels [-1, 1]; -1 marks unlabeled rows in semi-supervised "
        "scikit-learn estimators, so one class is treated as unlabeled"
    ),
    "check_sample_weight_equivalence_on_dense_data": (
        "a weight of 2 equals a duplicated row only in expectation: training "
        "draws rows into random minibatches, so the two fits see different "
        "batches (scikit-learn lists the same failure for SGDClassifier and "
        "MLPClassifier)"
    ),
}


@parametrize_with_checks(
    [BoostMISClassifier(random_state=0, **FAST)],
    expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS,
)
def test_sklearn_conformance(estimator, check):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "y contains no unlabeled", UserWarning)
        check(estimator)


# -- fitted attributes ------------------------------------------------------------
def test_fitted_attributes(fitted_iris, iris_data):
    X, _, y_partial = iris_data
    clf = fitted_iris
    assert clf.classes_.tolist() == [0, 1, 2]
    assert clf.n_features_in_ == 4
    assert isinstance(clf.net_, BoostMISNet)
    assert clf.n_iter_ == FAST["max_epochs"] == len(clf.history_)
    assert clf.threshold_history_.shape == (FAST["max_epochs"],)
    batch = clf.history_[-1, "batches", -1]
    for key in ("sup_loss", "unsup_loss", "mask_ratio", "threshold"):
        assert np.isfinite(batch[key])
    labeled = y_partial != -1
    np.testing.assert_array_equal(clf.transduction_[labeled], y_partial[labeled])
    assert set(np.unique(clf.transduction_)) <= {-1, 0, 1, 2}
    assert (clf.labeled_iter_[labeled] == 0).all()
    pseudo = ~labeled & (clf.transduction_ != -1)
    assert pseudo.any()
    assert (clf.labeled_iter_[pseudo] >= 1).all()
    assert (clf.labeled_iter_[pseudo] <= clf.n_iter_).all()
    assert (clf.labeled_iter_[~labeled & ~pseudo] == -1).all()


def test_epoch_records_are_batch_means_and_printed(iris_data, capsys):
    X, _, y_partial = iris_data
    clf = BoostMISClassifier(random_state=0, verbose=1, **FAST).fit(X, y_partial)
    for key in ("sup_loss", "unsup_loss", "mask_ratio", "threshold"):
        per_batch = clf.history_[:, "batches", :, key]
        sizes = clf.history_[:, "batches", :, "train_batch_size"]
        expected = [
            np.average(v, weights=w) for v, w in zip(per_batch, sizes, strict=True)
        ]
        np.testing.assert_allclose(clf.history_[:, key], expected, rtol=1e-6)
    header = capsys.readouterr().out.splitlines()[0].split()
    assert {"mask_ratio", "sup_loss", "threshold", "unsup_loss"} <= set(header)


def test_predict_log_proba_is_log_of_proba_and_finite(fitted_iris, iris_data):
    X = iris_data[0]
    far = X[:3] * 1e3  # pushes some probabilities below float32's smallest value
    for rows in (X, far):
        log_proba = fitted_iris.predict_log_proba(rows)
        assert log_proba.shape == (len(rows), len(fitted_iris.classes_))
        assert np.isfinite(log_proba).all()
        np.testing.assert_allclose(
            np.exp(log_proba), fitted_iris.predict_proba(rows), atol=1e-6
        )
    assert (fitted_iris.predict_proba(far) == 0).any()


def test_transduction_is_mostly_correct(fitted_iris, iris_data):
    _, y, y_partial = iris_data
    pseudo = (y_partial == -1) & (fitted_iris.transduction_ != -1)
    assert (fitted_iris.transduction_[pseudo] == y[pseudo]).mean() > 0.8


def test_predict_uses_ema_teacher(fitted_iris, iris_data):
    X = torch.as_tensor(iris_data[0])
    with torch.no_grad():
        teacher = torch.softmax(fitted_iris.net_.ema_module_.eval()(X), 1).numpy()
        student = torch.softmax(fitted_iris.net_.module_.eval()(X), 1).numpy()
    proba = fitted_iris.predict_proba(iris_data[0])
    np.testing.assert_allclose(proba, teacher, rtol=1e-5, atol=1e-6)
    assert not np.allclose(proba, student, atol=1e-4)
    np.testing.assert_allclose(proba.sum(1), 1, rtol=1e-5)


def test_score_ignores_unlabeled_rows(fitted_iris, iris_data):
    X, y, _ = iris_data
    y_masked = y.copy()
    wrong = fitted_iris.predict(X) != y
    y_masked[wrong] = -1  # hide every mistake
    assert fitted_iris.score(X, y_masked) == 1.0
    assert fitted_iris.score(X, y) < 1.0 or not wrong.any()
    with pytest.raises(ValueError, match="every row of y is unlabeled"):
        fitted_iris.score(X, np.full(len(y), -1))
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        fitted_iris.score(X, y, sample_weight=np.ones(3))


def test_labeled_scorer_matches_metric_on_labeled_rows(fitted_iris, iris_data):
    from sklearn.metrics import f1_score

    X, y, y_partial = iris_data
    scorer = make_labeled_scorer("f1_macro")
    rows = y_partial != -1
    expected = f1_score(y[rows], fitted_iris.predict(X[rows]), average="macro")
    y_eval = np.where(rows, y, -1)
    assert scorer(fitted_iris, X, y_eval) == pytest.approx(expected)
    with pytest.raises(ValueError, match="unlabeled"):
        scorer(fitted_iris, X, np.full_like(y, -1))


# -- labels, warnings, errors -------------------------------------------------------
def test_object_labels_with_minus_one(iris_data):
    X, y, y_partial = iris_data
    names = np.array(["setosa", "versicolor", "virginica"], dtype=object)
    y_obj = np.where(y_partial == -1, -1, names[y]).astype(object)
    clf = BoostMISClassifier(random_state=0, **FAST).fit(X, y_obj)
    assert clf.classes_.tolist() == names.tolist()
    assert set(clf.predict(X)) <= set(names)
    assert clf.score(X, names[y]) > 0.7
    assert -1 in set(clf.transduction_) or all(clf.transduction_ != -1)


def test_a_list_of_strings_with_minus_one_fits_and_scores_as_object_labels(
    iris_data,
):
    X, y, y_partial = iris_data
    names = np.array(["setosa", "versicolor", "virginica"], dtype=object)
    y_obj = np.where(y_partial == -1, -1, names[y]).astype(object)
    from_array = BoostMISClassifier(random_state=0, **FAST).fit(X, y_obj)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "string '-1'" warning
        from_list = BoostMISClassifier(random_state=0, **FAST).fit(X, y_obj.tolist())
        assert from_list.score(X, y_obj.tolist()) == from_array.score(X, y_obj)
    assert from_list.classes_.tolist() == names.tolist()
    np.testing.assert_array_equal(from_list.transduction_, from_array.transduction_)
    np.testing.assert_array_equal(
        from_list.predict_proba(X), from_array.predict_proba(X)
    )


def test_string_dtype_rejected(iris_data):
    X, y, _ = iris_data
    with pytest.raises(ValueError, match="dtype object"):
        BoostMISClassifier(**FAST).fit(X, y.astype(str))


def _missing_label_targets(y, unlabeled):
    pd = pytest.importorskip("pandas")
    names = np.array(["a", "b", "c"], dtype=object)[y]
    return {
        "float NaN": np.where(unlabeled, np.nan, y),
        "object None": np.where(unlabeled, None, names),
        "pandas string NA": pd.Series(names, dtype="string").mask(unlabeled),
        "pandas Int64 NA": pd.Series(y, dtype="Int64").mask(unlabeled),
    }


@pytest.mark.parametrize(
    "kind", ["float NaN", "object None", "pandas string NA", "pandas Int64 NA"]
)
def test_missing_labels_point_to_minus_one(iris_data, kind):
    X, y, y_partial = iris_data
    y_missing = _missing_label_targets(y, y_partial == -1)[kind]
    n_missing = int((y_partial == -1).sum())
    with pytest.raises(ValueError, match=f"y has {n_missing} missing label.*with -1"):
        BoostMISClassifier(**FAST).fit(X, y_missing)


def test_string_minus_one_warns(iris_data):
    X, y, y_partial = iris_data
    names = np.array(["a", "b", "c"], dtype=object)
    y_str = np.where(y_partial == -1, "-1", names[y]).astype(object)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        clf = BoostMISClassifier(**FAST).fit(X, y_str)
    messages = {str(w.message).split(":")[0]: w.filename for w in record}
    # '-1' strings are labels, so no row is unlabeled either
    assert messages == {
        "y holds the string '-1', which is a class here": __file__,
        "y contains no unlabeled samples": __file__,
    }
    assert "-1" in clf.classes_.tolist()


def test_warns_when_everything_labeled(iris_data):
    X, y, _ = iris_data
    with pytest.warns(UserWarning, match="y contains no unlabeled samples") as record:
        clf = BoostMISClassifier(random_state=0, **FAST).fit(X, y)
    assert record[0].filename == __file__  # the caller's line, not sklearn's
    assert clf.score(X, y) > 0.8


def test_errors_on_no_labels_or_one_class(iris_data):
    X, y, _ = iris_data
    with pytest.raises(ValueError, match="no labeled samples"):
        BoostMISClassifier(**FAST).fit(X, np.full_like(y, -1))
    one_class = np.where(y == 0, 0, -1)
    with pytest.raises(ValueError, match="at least 2 labeled classes"):
        BoostMISClassifier(**FAST).fit(X, one_class)


def test_continuous_target_errors_without_labeling_warning(iris_data):
    X, _, _ = iris_data
    y = np.random.RandomState(0).rand(len(X))  # no -1: "all labeled" if it were valid
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match="Unknown label type: continuous"):
            BoostMISClassifier(**FAST).fit(X, y)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_errors_on_non_finite_input(iris_data, bad):
    X, _, y_partial = iris_data
    X = X.copy()
    X[3, 1] = bad
    with pytest.raises(ValueError, match="Input X contains"):
        BoostMISClassifier(**FAST).fit(X, y_partial)


def test_errors_on_sparse_empty_and_feature_count(iris_data, fitted_iris):
    import scipy.sparse as sp

    X, _, y_partial = iris_data
    with pytest.raises(TypeError, match="[Ss]parse"):
        BoostMISClassifier(**FAST).fit(sp.csr_matrix(X), y_partial)
    with pytest.raises(ValueError, match="0 sample"):
        BoostMISClassifier(**FAST).fit(X[:0], y_partial[:0])
    with pytest.raises(ValueError, match="expecting 4 features"):
        fitted_iris.predict(X[:, :3])


def _without_class_2(iris_data):
    X, y, y_partial = iris_data
    return X, y, np.where(y_partial == 2, -1, y_partial)


def test_declared_classes_without_labels_get_outputs_and_take_labels_later(
    iris_data,
):
    X, y, y_two = _without_class_2(iris_data)
    clf = BoostMISClassifier(
        classes=[2, 0, 1], warm_start=True, random_state=0, **FAST
    ).fit(X, y_two)
    assert clf.classes_.tolist() == [0, 1, 2]
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)
    assert set(clf.transduction_) <= {-1, 0, 1}  # no label of 2, no pseudo-label
    # an annotation round brings the first labels of class 2: the warm fit goes on
    y_three = y_two.copy()
    y_three[np.flatnonzero(y == 2)[:5]] = 2
    clf.fit(X, y_three)
    assert clf.classes_.tolist() == [0, 1, 2]
    assert (clf.predict(X)[y == 2] == 2).mean() > 0.5
    undeclared = BoostMISClassifier(warm_start=True, random_state=0, **FAST)
    with pytest.raises(ValueError, match="same classes"):
        undeclared.fit(X, y_two).fit(X, y_three)


def test_declared_string_classes_keep_object_labels(iris_data):
    X, y, y_two = _without_class_2(iris_data)
    names = np.array(["setosa", "versicolor", "virginica"], dtype=object)
    y_obj = np.where(y_two == -1, -1, names[y]).astype(object)
    clf = BoostMISClassifier(classes=list(names), random_state=0, **FAST)
    clf.fit(X, y_obj)
    assert clf.classes_.dtype == object
    assert clf.classes_.tolist() == names.tolist()
    assert set(clf.predict(X)) <= set(names)


def test_declared_classes_with_class_weight(iris_data):
    X, _, y_two = _without_class_2(iris_data)
    params = dict(FAST, max_epochs=1, random_state=0)
    plain = BoostMISClassifier(class_weight="balanced", **params).fit(X, y_two)
    declared = BoostMISClassifier(
        classes=[0, 1, 2], class_weight="balanced", **params
    ).fit(X, y_two)
    # the labeled classes weigh as without classes; the unlabeled one is no target
    assert declared.net_.class_weight == [*plain.net_.class_weight, 1.0]
    weighted = BoostMISClassifier(classes=[0, 1, 2], class_weight={2: 3.0}, **params)
    assert weighted.fit(X, y_two).net_.class_weight == [1.0, 1.0, 3.0]


@pytest.mark.parametrize(
    "classes, match",
    [
        ([0, 1, -1], "must not hold -1"),
        ([0, 1, 2, np.nan], "must not hold missing values"),
        ([0, 1, 2, None], "must not hold missing values"),
        ([0, 1, 1, 2], r"duplicates: \[1\]"),
        ([[0, 1], [2, 3]], "1-D"),
        ([1], "at least 2 labels"),
        ([1, 2], r"y has labels \[0\] that are not in classes \[1, 2\]"),
        (["a", "b"], "not in classes"),
    ],
)
def test_invalid_declared_classes(iris_data, classes, match):
    X, _, y_partial = iris_data
    with pytest.raises(ValueError, match=match):
        BoostMISClassifier(classes=classes, **FAST).fit(X, y_partial)


def test_declared_classes_of_mixed_types_are_refused(iris_data):
    X, y, y_partial = iris_data
    names = np.array(["a", "b", "c"], dtype=object)
    y_obj = np.where(y_partial == -1, -1, names[y]).astype(object)
    with pytest.raises(ValueError, match="mixes label types"):
        BoostMISClassifier(classes=["a", "b", "c", 3], **FAST).fit(X, y_obj)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"lr": 0}, "lr"),
        ({"mu": 0}, "mu"),
        ({"threshold": "flex"}, "threshold"),
        ({"alpha": 1.5}, "alpha"),
        ({"weak_augment": "strong"}, "weak_augment"),
        ({"class_weight": "auto"}, "class_weight"),
        ({"class_weight": {7: 2.0}}, "class_weight has labels \\[7\\]"),
        ({"alpha": 0.9, "beta": 0.5}, "alpha \\+ beta = 1.4 > 1"),
        ({"threshold": "fixed", "alpha": 0.6, "beta": 0.6}, "alpha \\+ beta = 1.2"),
    ],
)
def test_invalid_parameters(iris_data, params, match):
    X, _, y_partial = iris_data
    with pytest.raises(ValueError, match=match):
        BoostMISClassifier(**params).fit(X, y_partial)


def test_set_params_reaches_single_entries_of_the_dict_parameters(iris_data):
    X, _, y_partial = iris_data
    given = {"hidden_units": (32,)}
    clf = BoostMISClassifier(module_params=given, max_epochs=2)
    clf.set_params(module_params__dropout=0.5, net_params__iterator_valid__batch_size=7)
    assert clf.module_params == {"hidden_units": (32,), "dropout": 0.5}
    assert given == {"hidden_units": (32,)}  # not modified in place
    assert clf.net_params == {"iterator_valid__batch_size": 7}
    # a whole dict given alongside one of its entries is applied first
    clf.set_params(module_params={"dropout": 0.1}, module_params__hidden_units=(8,))
    assert clf.module_params == {"dropout": 0.1, "hidden_units": (8,)}
    search = GridSearchCV(
        clf, {"module_params__hidden_units": [(8,), (16,)]}, cv=2
    ).fit(X, y_partial)
    widths = [r["module_params__hidden_units"] for r in search.cv_results_["params"]]
    assert widths == [(8,), (16,)]
    assert search.best_estimator_.net_.module_.encoder[0].out_features in (8, 16)
    for key, match in [
        ("module__hidden_units", "module_params__hidden_units"),
        ("callbacks__0__patience", "set the whole list"),
    ]:
        with pytest.raises(ValueError, match=match):
            clf.set_params(**{key: 1})


# -- modules --------------------------------------------------------------------
class TinyNet(torch.nn.Module):
    def __init__(self, n_features, n_classes, width=8):
        super().__init__()
        self.body = torch.nn.Linear(n_features, width)
        self.out = torch.nn.Linear(width, n_classes)

    def forward(self, X):
        return self.out(torch.relu(self.body(X)))


def test_module_class_receives_sizes_and_params(iris_data):
    X, _, y_partial = iris_data
    clf = BoostMISClassifier(
        module=TinyNet,
        module_params={"width": 5},
        random_state=0,
        **{k: v for k, v in FAST.items() if k != "module_params"},
    ).fit(X, y_partial)
    assert clf.net_.module_.body.out_features == 5
    assert clf.net_.module_.out.out_features == 3


class ReinitializedMLP(MLPClassifierModule):
    """A subclass that forwards everything to its parent, as users write them."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        torch.nn.init.zeros_(self.classifier.bias)


def test_sizes_reach_a_subclass_that_forwards_kwargs(iris_data):
    X, _, y_partial = iris_data
    clf = BoostMISClassifier(module=ReinitializedMLP, random_state=0, **FAST)
    clf.fit(X, y_partial)
    assert clf.net_.module_.classifier.out_features == 3


def test_module_instance_is_copied_not_trained(iris_data):
    X, _, y_partial = iris_data
    module = MLPClassifierModule(4, 3, hidden_units=(8,))
    before = {k: v.clone() for k, v in module.state_dict().items()}
    params = {k: v for k, v in FAST.items() if k != "module_params"}
    clf = BoostMISClassifier(module=module, random_state=0, **params).fit(X, y_partial)
    for key, value in module.state_dict().items():
        assert torch.equal(value, before[key])
    assert clf.net_.module_ is not module


def test_other_optimizer_without_momentum(iris_data):
    X, _, y_partial = iris_data
    clf = BoostMISClassifier(
        optimizer=torch.optim.Adam, lr=1e-2, random_state=0, **FAST
    ).fit(X, y_partial)
    assert isinstance(clf.net_.optimizer_, torch.optim.Adam)
    assert clf.score(X, iris_data[1]) > 0.8


# -- threshold policies -----------------------------------------------------------
def test_fixed_threshold_is_fixmatch(iris_data):
    X, _, y_partial = iris_data
    clf = BoostMISClassifier(threshold="fixed", random_state=0, **FAST).fit(
        X, y_partial
    )
    np.testing.assert_allclose(clf.threshold_history_, 0.95, rtol=1e-6)
    custom = BoostMISClassifier(
        threshold=FixedThreshold(0.5), random_state=0, **FAST
    ).fit(X, y_partial)
    np.testing.assert_allclose(custom.threshold_history_, 0.5, rtol=1e-6)
    assert (
        custom.history_[-1, "batches", 0, "mask_ratio"]
        >= (clf.history_[-1, "batches", 0, "mask_ratio"])
    )


def test_adaptive_threshold_settles_at_t_max(iris_data):
    X, _, y_partial = iris_data
    clf = BoostMISClassifier(t_max=3, random_state=0, **FAST).fit(X, y_partial)
    assert (clf.threshold_history_[:3] <= 0.9 + 1e-6).all()
    np.testing.assert_allclose(clf.threshold_history_[3:], 0.95, rtol=1e-6)


def test_lambda_u_zero_ignores_pseudo_labels(iris_data):
    X, _, y_partial = iris_data
    clf = BoostMISClassifier(lambda_u=0, random_state=0, **FAST).fit(X, y_partial)
    losses = clf.history_[:, "batches", :, "train_loss"]
    sup = clf.history_[:, "batches", :, "sup_loss"]
    np.testing.assert_allclose(losses, sup, rtol=1e-5)


def test_class_weight_balanced_weighs_the_supervised_loss_only():
    rng = np.random.RandomState(0)
    X = np.vstack([rng.normal(0, 1, (270, 4)), rng.normal(1.2, 1, (30, 4))])
    y = np.array(["a"] * 270 + ["b"] * 30, dtype=object)
    y_partial = y.copy()
    y_partial[rng.rand(len(y)) < 0.7] = -1
    params = dict(FAST, lambda_u=0, random_state=0)
    plain = BoostMISClassifier(**params).fit(X, y_partial)
    balanced = BoostMISClassifier(class_weight="balanced", **params).fit(X, y_partial)
    manual = BoostMISClassifier(
        class_weight=dict(zip("ab", balanced.net_.class_weight, strict=True)), **params
    ).fit(X, y_partial)
    labeled = y_partial[y_partial != -1]
    n_a, n_b = (labeled == "a").sum(), (labeled == "b").sum()
    expected = [len(labeled) / (2 * n_a), len(labeled) / (2 * n_b)]
    np.testing.assert_allclose(balanced.net_.class_weight, expected)
    assert plain.net_.class_weight is None
    np.testing.assert_array_equal(manual.predict_proba(X), balanced.predict_proba(X))
    recall_b = [(m.predict(X)[y == "b"] == "b").mean() for m in (plain, balanced)]
    assert recall_b[1] > recall_b[0]
    # weights are not a device tensor kept in the pickle
    assert balanced.net_.class_weight_ is None
    pickle.loads(pickle.dumps(balanced))


# -- workflows ---------------------------------------------------------------------
def test_pipeline_gridsearch_on_partially_labeled(digits_data):
    X, y, y_partial = digits_data
    rng = np.random.RandomState(0)
    y_cv = y_partial.copy()
    extra = rng.choice(np.flatnonzero(y_partial == -1), 200, replace=False)
    y_cv[extra] = y[extra]  # 250 labels in all
    pipe = make_pipeline(
        StandardScaler(), BoostMISClassifier(random_state=0, max_epochs=5)
    )
    search = GridSearchCV(
        pipe,
        {"boostmisclassifier__lambda_u": [0.0, 1.0]},
        cv=StratifiedKFold(2, shuffle=True, random_state=0),
        scoring=make_labeled_scorer("f1_macro"),
    )
    search.fit(X, y_cv)
    assert search.best_score_ > 0.5
    assert -1 not in search.best_estimator_.classes_
    scores = cross_val_score(
        BoostMISClassifier(random_state=0, max_epochs=5), X, y_cv, cv=2
    )
    assert (scores > 0.5).all()


def test_fit_leaves_the_gpu_random_streams_alone(iris_data, monkeypatch):
    from sklearn_boostmis.features import ResNet50Features

    reseeded = []
    monkeypatch.setattr(torch.cuda, "manual_seed_all", reseeded.append)
    X, _, y_partial = iris_data
    BoostMISClassifier(random_state=0, device="cpu", max_epochs=1).fit(X, y_partial)
    with pytest.warns(UserWarning, match="random weights"):
        ResNet50Features(weights=None, image_size=8).fit()
    assert reseeded == []  # torch.manual_seed would reseed every GPU


def test_clone_and_refit_is_bit_identical(fitted_iris, iris_data):
    X, _, y_partial = iris_data
    refit = clone(fitted_iris).fit(X, y_partial)
    np.testing.assert_array_equal(refit.predict_proba(X), fitted_iris.predict_proba(X))
    other = clone(fitted_iris).set_params(random_state=1).fit(X, y_partial)
    assert not np.array_equal(other.predict_proba(X), fitted_iris.predict_proba(X))


def test_fits_in_threads_give_the_sequential_results(fitted_iris, iris_data):
    # joblib's threading backend, or a dask worker with several threads
    X, _, y_partial = iris_data
    results = joblib.Parallel(n_jobs=3, backend="threading")(
        joblib.delayed(lambda: clone(fitted_iris).fit(X, y_partial).predict_proba(X))()
        for _ in range(3)
    )
    for proba in results:
        np.testing.assert_array_equal(proba, fitted_iris.predict_proba(X))


def test_fit_leaves_global_torch_rng_alone(iris_data):
    X, _, y_partial = iris_data
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    clf = BoostMISClassifier(random_state=0, **FAST).fit(X, y_partial)
    assert torch.equal(torch.rand(3), expected)
    torch.manual_seed(123)
    clf.predict_proba(X)  # its DataLoader draws a worker seed from its own generator
    clf.score(X, y_partial)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("dumps, loads", [(pickle.dumps, pickle.loads), (None, None)])
def test_pickle_and_joblib_round_trip(fitted_iris, iris_data, tmp_path, dumps, loads):
    X = iris_data[0]
    if dumps is None:
        path = tmp_path / "model.joblib"
        joblib.dump(fitted_iris, path)
        restored = joblib.load(path)
    else:
        restored = loads(dumps(fitted_iris))
    np.testing.assert_array_equal(
        restored.predict_proba(X), fitted_iris.predict_proba(X)
    )
    np.testing.assert_array_equal(restored.transduction_, fitted_iris.transduction_)


def test_warm_start_continues_teacher_and_resets_schedule(iris_data):
    X, y, y_partial = iris_data
    clf = BoostMISClassifier(warm_start=True, random_state=0, **FAST).fit(X, y_partial)
    first_net = clf.net_
    teacher_before = [p.clone() for p in clf.net_.ema_module_.parameters()]
    updates = clf.net_.ema_updates_
    y_more = y_partial.copy()
    y_more[:10] = y[:10]
    clf.fit(X, y_more)
    assert clf.net_.ema_updates_ > updates
    epochs = FAST["max_epochs"]  # continued in a copy: the first net keeps its own
    assert clf.history_[:epochs, "train_loss"] == first_net.history[:, "train_loss"]
    assert len(first_net.history) == epochs
    assert clf.n_iter_ == FAST["max_epochs"]
    assert len(clf.history_) == 2 * FAST["max_epochs"]
    assert any(
        not torch.equal(a, b)
        for a, b in zip(teacher_before, clf.net_.ema_module_.parameters(), strict=True)
    )
    assert dict(clf.net_.callbacks_)["cosine_lr"].step_ > 0
    with pytest.raises(ValueError, match="same classes"):
        clf.fit(X, np.where(y == 2, -1, y))


def test_warm_start_applies_new_parameters_to_the_continued_network(iris_data):
    X, _, y_partial = iris_data
    clf = BoostMISClassifier(warm_start=True, random_state=0, **FAST).fit(X, y_partial)
    student = [p.detach().clone() for p in clf.net_.module_.parameters()]
    clf.set_params(
        max_epochs=3,
        lr=0.01,
        lambda_u=0.0,
        batch_size=8,
        module_params={"hidden_units": (32,), "dropout": 0.5},
    )
    # the continued fit starts from the previous weights
    clf.set_params(callbacks=[("spy", _StartWeights())]).fit(X, y_partial)
    starts = dict(clf.net_.callbacks_)["spy"].weights_
    for before, after in zip(student, starts, strict=True):
        torch.testing.assert_close(before, after)
    net = clf.net_
    assert clf.n_iter_ == 3 and len(clf.history_) == FAST["max_epochs"] + 3
    assert (net.lr, net.lambda_u, net.batch_size) == (0.01, 0.0, 8)
    assert net.module_.encoder[-1].p == 0.5
    last = clf.history_[-1, "batches", 0]
    assert last["train_loss"] == pytest.approx(last["sup_loss"])  # lambda_u = 0
    with pytest.raises(ValueError, match="warm_start=True continues the fitted"):
        clf.set_params(module_params={"hidden_units": (16,)}).fit(X, y_partial)


class _StartWeights(Callback):
    """Records the student's weights when the fit begins."""

    def on_train_begin(self, net, **kwargs):
        self.weights_ = [p.detach().clone() for p in net.module_.parameters()]


def test_cpu_device_and_auto(fitted_iris):
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert fitted_iris.net_.device == expected
    assert next(fitted_iris.net_.module_.parameters()).device.type == expected


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("device", ["cuda", "cuda:0"])
def test_cuda_device_without_cuda_is_a_clear_error(iris_data, device):
    X, _, y_partial = iris_data
    with pytest.raises(ValueError, match="CUDA is not available"):
        BoostMISClassifier(device=device, **FAST).fit(X, y_partial)


@pytest.mark.parametrize(
    "device, match",
    [
        ("tpu", "is not a torch device"),
        ("cpu:x", "is not a torch device"),
        ("meta", "is not usable with this PyTorch build"),
    ],
)
def test_unusable_device_is_a_clear_error(iris_data, device, match):
    X, _, y_partial = iris_data
    with pytest.raises(ValueError, match=f"device='{device}' {match}"):
        BoostMISClassifier(device=device, **FAST).fit(X, y_partial)


@pytest.mark.parametrize(
    "module, match",
    [
        (torch.nn.Linear(4, 5), r"outputs of shape \(2, 5\), but 3 classes need"),
        (torch.nn.Linear(4, 2), r"outputs of shape \(2, 2\), but 3 classes need"),
        (torch.nn.Linear(3, 3), r"fails on samples of shape \(4,\): mat1"),
    ],
)
def test_module_that_does_not_fit_the_data_is_refused_before_training(
    iris_data, module, match
):
    X, _, y_partial = iris_data
    clf = BoostMISClassifier(module=module, max_epochs=1)
    with pytest.raises(ValueError, match=match):
        clf.fit(X, y_partial)
    assert not hasattr(clf, "net_")


@pytest.mark.cuda
def test_cuda_fit_and_cpu_load(iris_data):
    X, _, y_partial = iris_data
    clf = BoostMISClassifier(device="cuda", random_state=0, **FAST).fit(X, y_partial)
    assert next(clf.net_.module_.parameters()).is_cuda
    assert clf.net_.threshold_.confident_.is_cuda
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_allclose(
        restored.predict_proba(X), clf.predict_proba(X), atol=1e-5
    )


class FlattenNet(torch.nn.Module):
    def __init__(self, n_classes, n_inputs=16):
        super().__init__()
        self.linear = torch.nn.Linear(n_inputs, n_classes)

    def forward(self, X):
        return self.linear(X.flatten(1))


def test_image_shaped_input_with_own_module(digits_data):
    X, y, y_partial = digits_data
    images = X[:300].reshape(-1, 8, 8)[:, ::2, ::2]  # (N, 4, 4): one channel
    params = dict(max_epochs=3, batch_size=16, random_state=0)
    clf = BoostMISClassifier(
        module=FlattenNet, weak_augment=None, strong_augment=None, **params
    ).fit(images, y_partial[:300])
    assert clf.input_shape_ == (1, 4, 4)
    assert clf.predict(images).shape == (300,)
    assert clf.predict_proba(images[:, None]).shape == (300, len(clf.classes_))
    with pytest.raises(ValueError, match="samples of shape"):
        clf.predict(X[:300].reshape(-1, 1, 4, 16))
    with pytest.raises(ValueError, match="X has 5 dimensions"):
        BoostMISClassifier(**params).fit(X[:300].reshape(300, 1, 2, 2, 16), y[:300])


def test_a_failed_refit_keeps_the_previous_model(iris_data):
    X, _, y_partial = iris_data
    clf = BoostMISClassifier(random_state=0, max_epochs=2).fit(X, y_partial)
    before = {**vars(clf)}
    proba = clf.predict_proba(X)
    relabeled = np.where(y_partial == -1, -1, y_partial + 100)
    clf.set_params(module_params={"hidden_unit": (8,)})  # a typo
    with pytest.raises(TypeError, match="hidden_unit"):
        clf.fit(X, relabeled)
    assert clf.classes_.tolist() == [0, 1, 2] and clf.net_ is before["net_"]
    np.testing.assert_array_equal(clf.predict_proba(X), proba)
    with pytest.raises(TypeError, match="hidden_unit"):  # images: a new shape
        clf.fit(X.reshape(-1, 2, 2), y_partial)
    assert clf.input_shape_ == (4,) and clf.n_features_in_ == 4
    assert {k for k in vars(clf) if k.endswith("_")} == {
        k for k in before if k.endswith("_")
    }


def test_a_diverged_fit_is_an_error_not_nan_probabilities(iris_data):
    X, _, y_partial = iris_data
    clf = BoostMISClassifier(lr=1e12, max_epochs=2, random_state=0)
    with pytest.raises(ValueError, match=r"diverged.*Lower lr \(now 1e\+12\)"):
        clf.fit(X * 1e3, y_partial)
    assert not hasattr(clf, "net_")


def test_infinite_batchnorm_statistics_are_a_divergence_too(iris_data):
    X, _, y_partial = iris_data  # finite weights, but running_var overflows
    clf = BoostMISClassifier(max_epochs=3, random_state=0)
    with pytest.raises(ValueError, match="weights or BatchNorm statistics"):
        clf.fit(X * 1e20, y_partial)


def test_a_diverged_warm_fit_keeps_the_previous_model(iris_data):
    X, _, y_partial = iris_data
    clf = BoostMISClassifier(max_epochs=2, random_state=0).fit(X, y_partial)
    proba, history = clf.predict_proba(X), clf.history_
    with pytest.raises(ValueError, match="diverged"):
        clf.set_params(warm_start=True, lr=1e12).fit(X * 1e3, y_partial)
    assert clf.history_ is history and len(history) == 2
    np.testing.assert_array_equal(clf.predict_proba(X), proba)


def test_optimizer_must_be_a_torch_optimizer(iris_data):
    X, _, y_partial = iris_data
    with pytest.raises(TypeError, match="torch.optim.Optimizer subclass"):
        BoostMISClassifier(optimizer=int, max_epochs=1).fit(X, y_partial)


def test_an_optimizer_without_weight_decay(iris_data):
    X, _, y_partial = iris_data
    clf = BoostMISClassifier(optimizer=torch.optim.Rprop, max_epochs=1)
    with pytest.raises(ValueError, match="Rprop takes no weight_decay: set weight_"):
        clf.fit(X, y_partial)
    clf.set_params(weight_decay=0).fit(X, y_partial)
    (group,) = clf.net_.optimizer_.param_groups  # no split for weight decay
    assert "momentum" not in group and group["lr"] > 0


def test_images_given_to_a_feature_vector_model_name_both_shapes(fitted_iris):
    with pytest.raises(ValueError, match=r"shape \(2, 2\).*shape \(4,\).*n_features"):
        fitted_iris.predict(np.zeros((3, 2, 2), dtype=np.float32))


# -- training length in steps (max_steps) --------------------------------------
def _steps(clf):
    return sum(len(epoch["batches"]) for epoch in clf.net_.history)


def test_max_steps_bounds_the_steps_of_a_fit_whatever_the_pool(iris_data):
    X, _, y_partial = iris_data
    # iris: 135 unlabeled rows, 32 per unlabeled batch -> 5 steps per pass
    params = dict(FAST, max_epochs=50, max_steps=12, random_state=0)
    small = BoostMISClassifier(**params).fit(X, y_partial)
    X_big = np.concatenate([X, X, X])  # 3x the unlabeled pool
    y_big = np.concatenate([y_partial, np.full(2 * len(X), -1)])
    big = BoostMISClassifier(**params).fit(X_big, y_big)
    assert small.net_.max_epochs == len(small.history_) == 2  # 12 // 5
    assert _steps(small) == 10
    assert big.net_.max_epochs == 1  # a pass (435 rows: 14 steps) stays whole
    assert _steps(big) == 14
    unbounded = BoostMISClassifier(**dict(params, max_steps=None)).fit(X, y_partial)
    assert unbounded.net_.max_epochs == 50


def test_max_steps_that_does_not_bind_changes_nothing(iris_data):
    X, _, y_partial = iris_data
    free = BoostMISClassifier(random_state=0, **FAST).fit(X, y_partial)
    capped = BoostMISClassifier(random_state=0, max_steps=10_000, **FAST)
    capped.fit(X, y_partial)
    np.testing.assert_array_equal(free.predict_proba(X), capped.predict_proba(X))


def test_max_steps_must_be_a_positive_int(iris_data):
    X, _, y_partial = iris_data
    with pytest.raises(ValueError, match="max_steps"):
        BoostMISClassifier(max_steps=0, **FAST).fit(X, y_partial)
