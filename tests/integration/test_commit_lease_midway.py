"""A lease lost while the commit streams the parts (S3, through the fault proxy).

The commit read the lease back before it began streaming the parts and again before the
manifest, but the outputs are published when the stream ends: a run whose lease was taken
while it streamed published its results.parquet and CSVs over the folder of the run that
now holds it, then stopped (and, having lost the lease, deleted nothing). The lease is now
read back right before the outputs are published.
"""

from __future__ import annotations

import json
import time
from typing import Any

import fsspec
import pytest
from faultproxy import PASS, FaultProxy
from test_object_store_faults import config, listing

from gagebench.pipeline import run
from gagebench.results.layout import LOCK_FILE
from gagebench.results.lock import LeaseLostError

pytestmark = pytest.mark.integration


@pytest.fixture
def proxy(s3: Any) -> Any:
    with FaultProxy(s3.endpoint) as p:
        yield p


@pytest.mark.timeout(300)
def test_a_lease_taken_while_the_commit_streams_publishes_nothing(
    daily_stores: Any, bucket_url: str, s3: Any, dask_client: Any, proxy: Any
) -> None:
    fs = fsspec.filesystem("s3", **s3.storage_options)
    lease = f"{bucket_url.removeprefix('s3://')}/faults/{LOCK_FILE}"
    foreign = {"token": "thief", "host": "node-7", "pid": 13, "ttl_s": 600}
    taken: list[bool] = []

    def rule(method: str, path: str, count: int) -> Any:
        # the commit reads the parts back: while it reads the first, another run takes over
        if method == "GET" and "/_parts/batch-" in path and not taken:
            taken.append(True)
            fs.pipe_file(lease, json.dumps({**foreign, "heartbeat": time.time()}).encode())
        return PASS

    proxy.rule = rule
    with pytest.raises(LeaseLostError, match="no longer holds the run folder"):
        run(config(daily_stores, bucket_url, s3, proxy.url), client=dask_client)
    assert taken
    names = listing(f"{bucket_url}/faults", s3)
    published = {n for n in names if not n.startswith("_") and n != LOCK_FILE}
    assert published == set(), published  # nothing over the other run's folder
    fs.invalidate_cache()
    assert json.loads(fs.cat_file(lease))["token"] == "thief"
