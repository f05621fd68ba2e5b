"""A pool on dask is scored partition by partition and ranked as in memory."""

import numpy as np
import pytest

from sklearn_boostmis.query import InformativeQuerySampler
from sklearn_boostmis.query._dask import is_dask_array, teacher_outputs_by_partition

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("dask.distributed")


@pytest.fixture(scope="module")
def pool(iris_data):
    X, _, y_partial = iris_data
    return X[y_partial == -1]


@pytest.fixture(scope="module")
def client():
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


@pytest.mark.parametrize("selectors", ["both", "aus", "bus"])
def test_selection_on_a_cluster_is_the_local_one(fitted_iris, pool, client, selectors):
    sampler = InformativeQuerySampler(selectors=selectors, random_state=0)
    X_dask = da.from_array(pool, chunks=(40, -1))  # 4 partitions, one short
    assert X_dask.numblocks[0] > 1
    local = sampler.select_union(fitted_iris, pool, 10)
    spread = sampler.select_union(fitted_iris, X_dask, 10)
    np.testing.assert_array_equal(spread.indices, local.indices)
    np.testing.assert_array_equal(spread.from_aus, local.from_aus)
    np.testing.assert_array_equal(spread.from_bus, local.from_bus)
    np.testing.assert_allclose(spread.scores, local.scores, rtol=1e-5, atol=1e-7)
    idx, scores = sampler(fitted_iris, X_dask, n_instances=7)
    expected = sampler(fitted_iris, pool, n_instances=7)
    np.testing.assert_array_equal(idx, expected[0])
    np.testing.assert_allclose(scores, expected[1], rtol=1e-5, atol=1e-7)


def test_partitions_are_scored_by_the_workers(fitted_iris, pool, client):
    X_dask = da.from_array(pool, chunks=(50, -1))
    with distributed.get_task_stream(client) as stream:
        proba, Z = teacher_outputs_by_partition(fitted_iris, X_dask)
    scored = [t for t in stream.data if "_partition_outputs" in str(t["key"])]
    assert len(scored) == X_dask.numblocks[0]  # one task per partition
    assert {t["worker"] for t in scored} <= set(client.scheduler_info()["workers"])
    proba_local, Z_local, _ = fitted_iris.teacher_outputs(pool)
    np.testing.assert_allclose(proba.numpy(), proba_local.numpy(), rtol=1e-5)
    np.testing.assert_allclose(Z.numpy(), Z_local.numpy(), rtol=1e-5, atol=1e-6)


def test_a_pool_chunked_along_features_is_refused(fitted_iris, pool):
    X_dask = da.from_array(pool, chunks=(50, 2))
    assert is_dask_array(X_dask) and not is_dask_array(pool)
    with pytest.raises(ValueError, match="chunked along rows only"):
        InformativeQuerySampler(random_state=0)(fitted_iris, X_dask, 5)
