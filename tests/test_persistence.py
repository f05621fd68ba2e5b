import os
import stat
import warnings

import numpy as np
import pytest
from safetensors.torch import save_file
from sklearn.base import clone
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_boostmis import BoostMISClassifier, load_weights, save_weights

from .conftest import FAST


def test_safetensors_round_trip(fitted_iris, iris_data, tmp_path):
    X = iris_data[0]
    path = tmp_path / "model.safetensors"
    save_weights(fitted_iris, path)
    loaded = load_weights(BoostMISClassifier(**FAST), path, device="cpu")
    np.testing.assert_array_equal(loaded.predict_proba(X), fitted_iris.predict_proba(X))
    np.testing.assert_array_equal(loaded.classes_, fitted_iris.classes_)
    student = fitted_iris.net_.module_.state_dict()
    for key, value in loaded.net_.module_.state_dict().items():
        assert np.array_equal(value.numpy(), student[key].numpy())


def test_loaded_weights_continue_with_the_current_parameters(
    fitted_iris, iris_data, tmp_path
):
    X, _, y_partial = iris_data
    save_weights(fitted_iris, tmp_path / "m.safetensors")
    loaded = load_weights(BoostMISClassifier(**FAST), tmp_path / "m.safetensors")
    assert loaded.net_.ema_updates_ == fitted_iris.net_.ema_updates_ > 0
    loaded.set_params(warm_start=True, max_epochs=2).fit(X, y_partial)
    assert loaded.n_iter_ == 2 and len(loaded.history_) == 2


def test_feature_names_survive(iris_data, tmp_path):
    pd = pytest.importorskip("pandas")
    X, _, y_partial = iris_data
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    clf = BoostMISClassifier(random_state=0, **FAST).fit(frame, y_partial)
    save_weights(clf, tmp_path / "m.safetensors")
    loaded = load_weights(BoostMISClassifier(**FAST), tmp_path / "m.safetensors")
    assert loaded.feature_names_in_.tolist() == ["a", "b", "c", "d"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "fitted without feature names"
        np.testing.assert_array_equal(loaded.predict(frame), clf.predict(frame))
    with pytest.raises(ValueError, match="feature names should match"):
        loaded.predict(frame.rename(columns={"a": "z"}))


def test_string_classes_survive(iris_data, tmp_path):
    X, y, y_partial = iris_data
    names = np.array(["a", "b", "c"], dtype=object)
    y_obj = np.where(y_partial == -1, -1, names[y]).astype(object)
    clf = BoostMISClassifier(random_state=0, **FAST).fit(X, y_obj)
    save_weights(clf, tmp_path / "m.safetensors")
    loaded = load_weights(BoostMISClassifier(**FAST), tmp_path / "m.safetensors")
    np.testing.assert_array_equal(loaded.predict(X), clf.predict(X))


def test_rejects_foreign_files_and_unfitted(tmp_path):
    import torch
    from sklearn.exceptions import NotFittedError

    save_file({"w": torch.zeros(1)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(ValueError, match="not a sklearn_boostmis weights file"):
        load_weights(BoostMISClassifier(), tmp_path / "other.safetensors")
    with pytest.raises(NotFittedError):
        save_weights(BoostMISClassifier(), tmp_path / "x.safetensors")


def test_architecture_mismatch_is_an_error_and_changes_nothing(fitted_iris, tmp_path):
    save_weights(fitted_iris, tmp_path / "m.safetensors")
    other = BoostMISClassifier(module_params={"hidden_units": (7,)})
    with pytest.raises(
        ValueError, match="(?s)another module or module_params.*size mismatch"
    ):
        load_weights(other, tmp_path / "m.safetensors")
    assert not hasattr(other, "classes_") and not hasattr(other, "net_")
    misspelled = BoostMISClassifier(module_params={"hidden_unit": (7,)})
    with pytest.raises(TypeError, match="unexpected keyword argument 'hidden_unit'"):
        load_weights(misspelled, tmp_path / "m.safetensors")
    assert not hasattr(misspelled, "classes_") and not hasattr(misspelled, "net_")


def test_junk_file_and_pipeline_get_clear_errors(fitted_iris, iris_data, tmp_path):
    junk = tmp_path / "junk.safetensors"
    junk.write_text("junk")
    with pytest.raises(ValueError, match="is not a safetensors file"):
        load_weights(BoostMISClassifier(), junk)
    X, _, y_partial = iris_data
    pipe = make_pipeline(StandardScaler(), clone(fitted_iris)).fit(X, y_partial)
    with pytest.raises(TypeError, match=r"pass its last step \(pipe\[-1\]\)"):
        save_weights(pipe, tmp_path / "p.safetensors")
    save_weights(pipe[-1], tmp_path / "p.safetensors")
    with pytest.raises(TypeError, match="expected a BoostMISClassifier"):
        load_weights(pipe, tmp_path / "p.safetensors")


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_weights_file_follows_the_umask(fitted_iris, tmp_path):
    path = tmp_path / "shared.safetensors"
    old = os.umask(0o022)
    try:
        save_weights(fitted_iris, path)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644  # readable by colleagues
    assert not os.path.exists(f"{path}.tmp")


def test_loading_replaces_what_an_earlier_fit_left(iris_data, tmp_path):
    X, _, y_partial = iris_data
    flat = BoostMISClassifier(max_epochs=1, random_state=0).fit(X, y_partial)
    save_weights(flat, tmp_path / "m.safetensors")
    images = np.repeat(X, 4, axis=1).reshape(-1, 4, 4)  # another kind of model
    other = BoostMISClassifier(max_epochs=1, random_state=0).fit(images, y_partial)
    load_weights(other, tmp_path / "m.safetensors")
    assert other.input_shape_ == (4,) and not hasattr(other, "transduction_")
    assert not hasattr(other, "threshold_history_") and not hasattr(other, "n_iter_")
    np.testing.assert_array_equal(other.predict_proba(X), flat.predict_proba(X))
