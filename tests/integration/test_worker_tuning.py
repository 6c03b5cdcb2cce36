"""Worker tuning only on clusters gagebench starts: real LocalClusters, real runs on S3.

A task on a worker of a cluster gagebench started (backend ``local``) runs with one numba
thread and the worker's mmap threshold tuned; a task on a cluster the test started and
handed over by address keeps numba's default; a run's results do not depend on which.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from distributed import Client, LocalCluster

from gagebench.clusters import cluster_client
from gagebench.config import load_config
from gagebench.pipeline import run
from gagebench.tuning import PLUGIN_NAME

pytestmark = pytest.mark.integration

#: numba's default thread count on the test's workers (set through their environment),
#: so "not tuned" differs from "tuned" (1) whatever the machine's core count.
DEFAULT_THREADS = 3


@pytest.fixture
def numba_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """Worker processes started from here on import numba with DEFAULT_THREADS threads."""
    monkeypatch.setenv("NUMBA_NUM_THREADS", str(DEFAULT_THREADS))


@pytest.fixture
def outside_cluster(numba_default: None) -> Iterator[LocalCluster]:
    """A cluster gagebench did not start (as a user's, reached by address)."""
    with LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as cluster:
        yield cluster


def probe() -> tuple[int, bool]:
    """In a task, as a batch does: apply the worker's tuning, report numba's thread count."""
    import numba

    from gagebench.tuning import tune_task, worker_tuning

    tune_task()
    return numba.get_num_threads(), worker_tuning() is not None


def plugins(dask_worker: Any) -> dict[str, Any]:
    """The worker's plugins: name -> whether its malloc tuning ran (None if not ours)."""
    return {name: getattr(p, "malloc_tuned", None) for name, p in dask_worker.plugins.items()}


def local_config(**settings: Any) -> Any:
    return load_config(
        overrides={
            "observed": {"url": "memory://t/obs.zarr"},
            "models": {"nwm": {"url": "memory://t/nwm.zarr"}},
            "output": "memory://t/runs",
            **settings,
        }
    )


def test_a_cluster_gagebench_starts_is_tuned(numba_default: None) -> None:
    cfg = local_config(**{"cluster.backend": "local", "cluster.local.n_workers": 1})
    with cluster_client(cfg) as client:
        assert client.submit(probe, pure=False).result() == (1, True)
        (seen,) = client.run(plugins).values()
        assert seen[PLUGIN_NAME] is True  # mallopt applied in the worker process (glibc)


def test_auto_tunes_the_local_cluster_it_starts(
    numba_default: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    monkeypatch.delenv("DASK_GATEWAY__ADDRESS", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    cfg = local_config(**{"cluster.backend": "auto", "cluster.local.n_workers": 1})
    with cluster_client(cfg) as client:  # auto -> local: the local backend's flag decides
        assert client.submit(probe, pure=False).result() == (1, True)


def test_a_cluster_given_by_address_is_not_tuned(outside_cluster: LocalCluster) -> None:
    cfg = local_config(
        **{
            "cluster.backend": "address",
            "cluster.address.address": outside_cluster.scheduler_address,
        }
    )
    with cluster_client(cfg) as client:
        assert client.submit(probe, pure=False).result() == (DEFAULT_THREADS, False)
        (seen,) = client.run(plugins).values()
        assert PLUGIN_NAME not in seen
    with Client(outside_cluster) as own:  # after gagebench let go: still untouched
        (seen,) = own.run(plugins).values()
        assert PLUGIN_NAME not in seen


def test_results_do_not_depend_on_the_tuning(
    daily_stores: Any, bucket_url: str, s3: Any, outside_cluster: LocalCluster
) -> None:
    def config(run_id: str, **settings: Any) -> Any:
        return load_config(
            overrides={
                **daily_stores.to_config_dict(),
                "output": bucket_url,
                "run_id": run_id,
                "batch_size": 8,
                "storage_options": s3.storage_options,
                "report": False,
                **settings,
            }
        )

    tuned = run(
        config("tuned", **{"cluster.backend": "local", "cluster.local.n_workers": 1})
    ).results
    with Client(outside_cluster) as client:
        untuned = run(config("untuned"), client=client).results
        (seen,) = client.run(plugins).values()
        assert PLUGIN_NAME not in seen  # a client handed to run() is never tuned
    key = ["model", "site_no"]
    tuned = tuned.sort_values(key).reset_index(drop=True)
    untuned = untuned.sort_values(key).reset_index(drop=True)
    assert len(tuned) == 2 * daily_stores.n_gages
    pd.testing.assert_frame_equal(tuned, untuned)
    assert np.isfinite(tuned["NSE"].to_numpy(float)).any()
