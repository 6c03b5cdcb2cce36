"""The commit on S3 through the fault proxy: a lease lost while the parts stream, a run
killed while it publishes, an upload that fails after others landed.

The commit read the lease back before it began streaming the parts and again before the
manifest, but the outputs are published when the stream ends: a run whose lease was taken
while it streamed published its results.parquet and CSVs over the folder of the run that
now holds it, then stopped (and, having lost the lease, deleted nothing). The lease is now
read back right before the outputs are published.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import fsspec
import pytest
import yaml
from faultproxy import PASS, Delay, FaultProxy, Status
from test_object_store_faults import config, listing, run_settings

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


# -- a run killed while it publishes ---------------------------------------------------------

_SCRIPT = Path(sys.executable).with_name("gagebench")
GAGEBENCH = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "gagebench.cli"]
OUTPUTS = ("results.parquet", "nwm/standard_suite.csv", "nwm/dscore.csv", "report.html")


def _gagebench_run(settings: dict[str, Any], path: Path) -> subprocess.Popen[str]:
    path.write_text(yaml.safe_dump({"gagebench": settings}, sort_keys=False))
    return subprocess.Popen(
        [*GAGEBENCH, "run", "-c", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


@pytest.mark.timeout(400)
def test_a_run_killed_while_it_publishes_is_finished_whole_by_the_rerun(
    daily_stores: Any, bucket_url: str, s3: Any, proxy: Any, tmp_path: Path
) -> None:
    """A real ``gagebench run`` is SIGKILLed while its results.parquet is on the wire
    (the CSVs are published, the manifest is not): nothing looks finished, and the same
    command then commits from the saved parts, computing nothing, with outputs byte for
    byte those of a run never interrupted."""
    fs = fsspec.filesystem("s3", **s3.storage_options)
    whole = run_settings(daily_stores, f"{bucket_url}-whole", s3, s3.endpoint, report=True)
    done = _gagebench_run(whole, tmp_path / "whole.yaml")
    assert done.wait(timeout=240) == 0, done.communicate()[1]

    uploading = threading.Event()

    def rule(method: str, path: str, count: int) -> Any:
        if method == "PUT" and path.endswith("/faults/results.parquet"):
            uploading.set()
            return Delay(20.0)
        return PASS

    proxy.rule = rule
    settings = run_settings(daily_stores, bucket_url, s3, proxy.url, report=True)
    killed = _gagebench_run(settings, tmp_path / "run.yaml")
    try:
        assert uploading.wait(timeout=240), "the run never published results.parquet"
    finally:
        os.killpg(killed.pid, signal.SIGKILL)
        killed.wait(timeout=30)
    proxy.rule = lambda method, path, count: PASS
    fs.invalidate_cache()
    assert "manifest.json" not in listing(f"{bucket_url}/faults", s3)
    report = subprocess.run(
        [*GAGEBENCH, "report", f"{bucket_url}/faults", "-c", str(tmp_path / "run.yaml")],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert report.returncode == 2, report.stderr  # unfinished: nothing to report yet
    assert "unfinished" in report.stderr
    assert "Traceback" not in report.stderr

    again = _gagebench_run(settings, tmp_path / "run.yaml")
    _, err = again.communicate(timeout=240)
    assert again.returncode == 0, err
    assert "Traceback" not in err
    fs.invalidate_cache()
    root = f"{bucket_url.removeprefix('s3://')}/faults"
    whole_root = f"{bucket_url.removeprefix('s3://')}-whole/faults"
    manifest = json.loads(fs.cat_file(f"{root}/manifest.json"))
    assert manifest["batches"]["computed"] == 0
    first = json.loads(fs.cat_file(f"{whole_root}/manifest.json"))
    assert manifest["outputs"] == first["outputs"]
    assert set(OUTPUTS) <= set(manifest["outputs"])
    for rel in manifest["outputs"]:
        if rel == "report.html":
            continue  # (it shows the date it was written)
        assert fs.cat_file(f"{root}/{rel}") == fs.cat_file(f"{whole_root}/{rel}"), rel
    staged = [p for p in Path(tempfile.gettempdir()).glob(f"gagebench-stage-{killed.pid}-*")]
    assert not staged  # the killed run's staging folder is gone


@pytest.mark.timeout(300)
def test_an_output_whose_upload_fails_unpublishes_the_ones_before_it(
    daily_stores: Any, bucket_url: str, s3: Any, dask_client: Any, proxy: Any
) -> None:
    """The outputs are uploaded one after the other when the parts are streamed: the
    upload of one CSV fails past the retry budget (500s) after others landed. Nothing of
    the commit stays (no results without a manifest); the rerun commits, computing nothing."""
    from gagebench.errors import CommitError

    landed: list[str] = []

    def rule(method: str, path: str, count: int) -> Any:
        if method == "PUT" and path.endswith("/faults/nhm/standard_suite.csv"):
            return Status(500)
        if method == "PUT" and "/faults/" in path and "/_" not in path:
            landed.append(path.rsplit("/faults/", 1)[-1])
        return PASS

    proxy.rule = rule
    cfg = config(
        daily_stores, bucket_url, s3, proxy.url, retries={"max_attempts": 2, "max_wait_s": 0.3}
    )
    with pytest.raises(CommitError, match=r"nhm/standard_suite\.csv"):
        run(cfg, client=dask_client)
    assert landed  # some outputs were published before the failing one
    names = listing(f"{bucket_url}/faults", s3)
    assert {n for n in names if not n.startswith("_")} == set(), names

    proxy.rule = lambda method, path, count: PASS
    again = run(cfg, client=dask_client)
    assert again.manifest["batches"]["computed"] == 0
    assert set(again.manifest["outputs"]) <= listing(f"{bucket_url}/faults", s3)


@pytest.mark.timeout(300)
def test_an_s3_commit_made_again_without_the_report_removes_the_earlier_page(
    daily_stores: Any, bucket_url: str, s3: Any, dask_client: Any
) -> None:
    """As on a local disk (tests/unit/test_report_provenance.py), on S3: the page and its
    figures of the first commit go when the commit is made again with ``report: false``."""
    first = run(config(daily_stores, bucket_url, s3, s3.endpoint, report=True), client=dask_client)
    assert "report.html" in first.manifest["outputs"]
    names = listing(f"{bucket_url}/faults", s3)
    assert "report.html" in names
    assert any(n.startswith("figures/") for n in names)
    fs = fsspec.filesystem("s3", **s3.storage_options)
    fs.rm_file(f"{bucket_url.removeprefix('s3://')}/faults/results.parquet")

    again = run(config(daily_stores, bucket_url, s3, s3.endpoint), client=dask_client)
    assert again.manifest["batches"]["computed"] == 0
    names = listing(f"{bucket_url}/faults", s3)
    assert "report.html" not in names
    assert not any(n.startswith("figures/") for n in names), names
    assert set(again.manifest["outputs"]) <= names
