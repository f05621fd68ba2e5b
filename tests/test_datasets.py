import os

import numpy as np
import pytest
from sklearn.utils._param_validation import InvalidParameterError

from sklearn_boostmis.datasets import (
    MESCCFormatError,
    load_mescc,
    make_mescc_like,
    six_to_two,
    write_mescc_like,
)

TABLE = {  # the method page, "The MESCC data format"
    "train": [3752, 409, 483, 224, 136, 203],
    "val": [756, 73, 88, 50, 23, 21],
    "test": [849, 82, 51, 39, 30, 26],
}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("mescc")
    return write_mescc_like(path, scale=0.05, n_features=8, random_state=1)


def _copy(data_dir, tmp_path):
    for name in os.listdir(data_dir):
        np.save(tmp_path / name, np.load(os.path.join(data_dir, name)))
    return tmp_path


def test_make_mescc_like_matches_the_release_table():
    data = make_mescc_like(n_features=4, scale=1.0, random_state=0)
    for split, counts in TABLE.items():
        X, y = data[f"X_{split}"], data[f"y_{split}"]
        assert X.shape == (sum(counts), 4)
        assert np.bincount(y, minlength=6).tolist() == counts
        assert X.dtype == np.float32 and (X >= 0).all()
    assert "SYNTHETIC" in data.DESCR
    assert data.target_names == ["b0", "b1a", "b1b", "b1c", "b2", "b3"]


def test_make_mescc_like_scale_rounds_half_up_with_one_per_class():
    data = make_mescc_like(n_features=4, scale=0.01)
    # 3752 * .01 = 37.52 -> 38; 409 -> 4.09 -> 4; 136 -> 1.36 -> 1; 203 -> 2
    assert np.bincount(data.y_train).tolist() == [38, 4, 5, 2, 1, 2]
    tiny = make_mescc_like(n_features=4, scale=1e-4)
    for split in TABLE:
        assert np.bincount(tiny[f"y_{split}"]).tolist() == [1] * 6


def test_make_mescc_like_is_seeded_and_two_grade():
    a = make_mescc_like(n_features=4, scale=0.02, random_state=3)
    b = make_mescc_like(n_features=4, scale=0.02, random_state=3, task="two")
    np.testing.assert_array_equal(a.X_train, b.X_train)
    np.testing.assert_array_equal(b.y_train, (a.y_train >= 3).astype(int))
    assert b.target_names == ["low", "high"]
    c = make_mescc_like(n_features=4, scale=0.02, random_state=4)
    assert not np.array_equal(a.X_train, c.X_train)


def test_synthetic_classes_are_learnable_but_not_trivial():
    from sklearn.linear_model import LogisticRegression

    data = make_mescc_like(n_features=64, scale=0.2)
    model = LogisticRegression(max_iter=500).fit(data.X_train, data.y_train)
    assert 0.6 < model.score(data.X_test, data.y_test) < 1.0


def test_six_to_two_is_the_bilsky_grouping():
    assert six_to_two([0, 1, 2, 3, 4, 5]).tolist() == [0, 0, 0, 1, 1, 1]
    assert six_to_two([-1, 4, -1]).tolist() == [-1, 1, -1]  # unlabeled stays
    with pytest.raises(ValueError, match=r"grades 0..5 and -1.*\[2.5, 7.0\]"):
        six_to_two([7, 2.5])


@pytest.mark.parametrize(
    "params, name",
    [
        ({"n_features": 2.7}, "n_features"),
        ({"n_features": "8"}, "n_features"),
        ({"scale": float("inf")}, "scale"),
        ({"scale": "0.5"}, "scale"),
        ({"scale": 0}, "scale"),
    ],
)
def test_make_mescc_like_refuses_bad_parameters(params, name):
    with pytest.raises(InvalidParameterError, match=f"'{name}' parameter"):
        make_mescc_like(**params)


def test_load_mescc_round_trip_both_tasks(data_dir):
    six = load_mescc(data_dir, task="six")
    expected = make_mescc_like(scale=0.05, n_features=8, random_state=1)
    for split in ("train", "val", "test"):
        np.testing.assert_array_equal(six[f"X_{split}"], expected[f"X_{split}"])
        np.testing.assert_array_equal(six[f"y_{split}"], expected[f"y_{split}"])
    two = load_mescc(data_dir, task="two")
    np.testing.assert_array_equal(two.y_train, six.y_train >= 3)
    assert two.task == "two" and two.target_names == ["low", "high"]
    assert set(np.unique(two.y_test)) == {0, 1}


def test_two_grade_targets_load_for_two_not_six(data_dir, tmp_path):
    path = _copy(data_dir, tmp_path)
    for split in ("train", "val", "test"):
        y = np.load(path / f"{split}-targets.npy")
        np.save(path / f"{split}-targets.npy", six_to_two(y))
    data = load_mescc(path, task="two")
    assert data.y_train.max() == 1
    with pytest.raises(MESCCFormatError, match="six-grade"):
        load_mescc(path, task="six")


def test_a_two_grade_split_beside_six_grade_ones_is_warned(data_dir, tmp_path):
    path = _copy(data_dir, tmp_path)
    y = np.load(path / "test-targets.npy")
    np.save(path / "test-targets.npy", six_to_two(y))
    with pytest.warns(UserWarning, match="test-targets.npy holds labels 0 and 1 only"):
        load_mescc(path, task="two")


def test_float_whole_number_targets_are_accepted(data_dir, tmp_path):
    path = _copy(data_dir, tmp_path)
    y = np.load(path / "val-targets.npy")
    np.save(path / "val-targets.npy", y.astype(np.float64))
    assert load_mescc(path, "six").y_val.dtype == np.int64


def test_unknown_task_and_missing_paths(data_dir, tmp_path):
    with pytest.raises(ValueError, match="unknown task"):
        load_mescc(data_dir, task="three")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_mescc(tmp_path / "nowhere")
    path = _copy(data_dir, tmp_path)
    os.remove(path / "test-targets.npy")
    with pytest.raises(FileNotFoundError, match="test-targets.npy"):
        load_mescc(path)


def _corrupt(path, name, array=None, raw=None):
    if raw is not None:
        (path / name).write_bytes(raw)
    else:
        np.save(path / name, array, allow_pickle=True)


@pytest.mark.parametrize(
    "name, array, raw, match",
    [
        ("val-features.npy", None, b"not a numpy file", "not a valid .npy"),
        ("train-features.npy", np.array([["a", "b"]]), None, "numeric"),
        ("train-features.npy", np.array([{"a": 1}], dtype=object), None, "objects"),
        ("val-features.npy", np.zeros(5), None, "2-D"),
        ("test-targets.npy", np.zeros((2, 2)), None, "1-D"),
        ("test-targets.npy", np.array([0.5]), None, "whole"),
        ("val-targets.npy", np.array([7]), None, "0..5"),
        ("val-targets.npy", np.array([-1]), None, "0..5"),
    ],
)
def test_bad_files_name_the_file(data_dir, tmp_path, name, array, raw, match):
    path = _copy(data_dir, tmp_path)
    _corrupt(path, name, array, raw)
    with pytest.raises(MESCCFormatError, match=match) as info:
        load_mescc(path, "six")
    assert name in str(info.value)
    assert isinstance(info.value, ValueError)


def test_nan_length_and_feature_count_checks(data_dir, tmp_path):
    path = _copy(data_dir, tmp_path)
    X = np.load(path / "val-features.npy")
    X[3, 2] = np.nan
    np.save(path / "val-features.npy", X)
    with pytest.raises(MESCCFormatError, match="val-features.npy.*NaN"):
        load_mescc(path)
    X = np.nan_to_num(X)
    np.save(path / "val-features.npy", X[:, :5])
    with pytest.raises(MESCCFormatError, match="val-features.npy: 5 features"):
        load_mescc(path)
    np.save(path / "val-features.npy", X)
    y = np.load(path / "train-targets.npy")
    np.save(path / "train-targets.npy", y[:-1])
    with pytest.raises(MESCCFormatError, match="train-targets.npy"):
        load_mescc(path)
