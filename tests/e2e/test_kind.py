"""End-to-end checks of the chart's run on a real kind cluster (marker ``kind``).

Runs only in .github/workflows/kind.yaml, after the chart's Job completed, with
KIND_E2E=1 and GAGEBENCH_E2E_S3 the port-forwarded in-cluster S3 endpoint. Everywhere
else it is skipped; it is never reported as passing on a dev machine.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

pytestmark = [
    pytest.mark.kind,
    pytest.mark.skipif(
        os.environ.get("KIND_E2E") != "1",
        reason="needs a kind cluster with the chart installed (KIND_E2E=1, kind workflow)",
    ),
]

NAMESPACE = os.environ.get("NAMESPACE", "gagebench-e2e")
RUN_URL = "s3://gagebench-e2e/results/kind-e2e"


@pytest.fixture(scope="module")
def fs() -> Any:
    import s3fs

    return s3fs.S3FileSystem(endpoint_url=os.environ["GAGEBENCH_E2E_S3"])


def test_job_succeeded_and_cleaned_up_its_dask_cluster() -> None:
    import kr8s
    from kr8s.objects import Job, new_class

    job = Job.get("gagebench-1", namespace=NAMESPACE)
    assert job.raw["status"].get("succeeded") == 1, job.raw["status"]
    dask_cluster = new_class("DaskCluster", "kubernetes.dask.org/v1", namespaced=True)
    # kr8s.get takes an APIObject class as well as a kind name; its annotation says str
    left = list(kr8s.get(dask_cluster, namespace=NAMESPACE))  # type: ignore[arg-type]
    assert left == [], f"DaskClusters left behind: {left}"


def test_results_in_s3(fs: Any) -> None:
    import pandas as pd

    manifest = json.loads(fs.cat(f"{RUN_URL}/manifest.json"))
    assert manifest["run_id"] == "kind-e2e"
    with fs.open(f"{RUN_URL}/results.parquet") as f:
        table = pd.read_parquet(f)
    assert len(table) == 20
    assert set(table["model"]) == {"nwm"}
    assert (table["status"] == "ok").sum() >= 15
    assert fs.exists(f"{RUN_URL}/nwm/standard_suite.csv")
    assert fs.exists(f"{RUN_URL}/nwm/dscore.csv")
