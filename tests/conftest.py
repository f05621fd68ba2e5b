import csv
import os

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits, load_iris
from sklearn.preprocessing import StandardScaler

from sklearn_boostmis import BoostMISClassifier

# The test models are tiny: extra intra-op threads only add contention (and on a
# shared 2-core machine, 10x slowdowns). Results do not depend on this setting.
torch.set_num_threads(1)

# A script run by test_scale.py under torchrun, not a test module; --doctest-modules
# would import it, and it needs the optional accelerate extra.
collect_ignore = ["ddp_worker.py"]

FAST = dict(max_epochs=15, batch_size=16, module_params={"hidden_units": (32,)})


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs an NVIDIA GPU")
    for item in items:
        if item.get_closest_marker("cuda") is not None:
            item.add_marker(skip)


@pytest.fixture
def seed():
    return 0


def _partially_labeled(X, y, n_per_class, seed):
    rng = np.random.RandomState(seed)
    y_partial = np.full_like(y, -1)
    for c in np.unique(y):
        keep = rng.choice(np.flatnonzero(y == c), n_per_class, replace=False)
        y_partial[keep] = y[keep]
    return y_partial


@pytest.fixture(scope="session")
def iris_data():
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X).astype(np.float32)
    return X, y, _partially_labeled(X, y, 5, seed=0)


@pytest.fixture(scope="session")
def digits_data():
    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X).astype(np.float32)
    return X, y, _partially_labeled(X, y, 5, seed=0)


@pytest.fixture(scope="module")
def fitted_iris(iris_data):
    """A fitted estimator for read-only tests."""
    X, _, y_partial = iris_data
    return BoostMISClassifier(random_state=0, **FAST).fit(X, y_partial)


def read_annotations(folder):
    """Rows ``(index, label, cycle)`` of ``folder/annotations.csv``, header checked
    (label None for a skipped row)."""
    with open(os.path.join(folder, "annotations.csv"), newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["index", "label", "cycle"]
    return [tuple(int(v) if v else None for v in row) for row in rows[1:]]
