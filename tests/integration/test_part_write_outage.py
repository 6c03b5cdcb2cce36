"""An outage while a batch's part is saved (after others were saved) stops the run as a
failed run (exit 1, not "bad input"), names the run and the command that resumes it; the
rerun computes only the missing batches and gives the results of a run without faults.
Through the fault proxy in front of the moto S3 server, on a real LocalCluster."""

from __future__ import annotations

import uuid
from typing import Any

import pandas as pd
import pytest
from faultproxy import PASS, FaultProxy, Status
from test_object_store_faults import config, results

from gagebench.cli import exit_code
from gagebench.errors import GagebenchError
from gagebench.pipeline import run

pytestmark = pytest.mark.integration


@pytest.fixture
def proxy(s3) -> Any:
    with FaultProxy(s3.endpoint) as p:
        yield p


def test_an_outage_saving_a_part_is_a_failed_run_that_resumes(
    daily_stores, bucket_url, s3, dask_client, proxy
) -> None:
    clean_url = f"s3://gagebench-it/part-clean-{uuid.uuid4().hex[:8]}"
    run(config(daily_stores, clean_url, s3, s3.endpoint), client=dask_client)
    clean = results(f"{clean_url}/faults", s3)

    def rule(method: str, path: str, count: int) -> Any:
        if method == "PUT" and path.endswith("/_parts/batch-00002.parquet"):
            return Status(503)
        return PASS

    proxy.rule = rule
    cfg = config(
        daily_stores, bucket_url, s3, proxy.url, retries={"max_attempts": 2, "max_wait_s": 0.3}
    )
    with pytest.raises(GagebenchError) as info:
        run(cfg, client=dask_client)
    message = str(info.value)
    assert exit_code(info.value) == 1, message  # a failed run, not a bad input
    assert "batch-00002.parquet" in message, message
    assert "resumed with: " in message, message
    assert "run_id=faults" in message, message

    proxy.rule = lambda method, path, count: PASS
    again = run(cfg, client=dask_client)
    assert 0 < again.manifest["batches"]["computed"] < again.manifest["batches"]["total"]
    pd.testing.assert_frame_equal(results(f"{bucket_url}/faults", s3), clean)
