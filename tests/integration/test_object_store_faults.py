"""Runs against a faulty object store: a fault-injecting proxy in front of the S3 server.

Every run reads its stores and writes its output through :mod:`faultproxy` on 127.0.0.1
and is compared with one clean run of the same stores (no proxy): short chunk bodies
with and without checksums, chunk bodies with a flipped byte with and without checksums
(caught by the checksum headers, else by the MD5 ETag), 5xx answers, dropped
connections and a 20 s outage end in identical results; a chunk that stays damaged, a
batch that keeps failing and a failure during the commit end in a clean failure (never a
value) that resumes to identical results; ``integrity.require_verified`` refuses chunks
no digest covers.
"""

from __future__ import annotations

import asyncio
import io
import logging
import subprocess
import sys
import time
import zlib
from typing import Any

import fsspec
import fsspec.asyn
import pandas as pd
import pytest
import yaml
from faultproxy import DROP, PASS, FaultProxy, Flip, Short, Status

from gagebench.config import load_config
from gagebench.errors import RunError, StorageError
from gagebench.pipeline import run

pytestmark = pytest.mark.integration


def is_chunk(path: str) -> bool:
    """A data chunk of a store's streamflow variable (not metadata, not coordinates)."""
    name = path.rsplit("/", 1)[-1]
    return "/streamflow/" in path and not name.startswith(".")


def config(stores: Any, output: str, s3: Any, endpoint: str, **settings: Any) -> Any:
    return load_config(overrides=run_settings(stores, output, s3, endpoint, **settings))


def run_settings(stores: Any, output: str, s3: Any, endpoint: str, **settings: Any) -> Any:
    """The settings of a run on ``stores`` whose every request goes to ``endpoint``."""
    base = stores.to_config_dict()
    for spec in [base["observed"], *base["models"].values()]:
        spec.pop("storage_options", None)  # every request goes to ``endpoint``
    base.update(
        {
            "output": output,
            "run_id": "faults",
            "batch_size": 5,
            "report": False,
            "storage_options": {**s3.storage_options, "endpoint_url": endpoint},
        }
    )
    base.update(settings)
    return base


def results(run_url: str, s3: Any) -> pd.DataFrame:
    fsspec.filesystem("s3", **s3.storage_options).invalidate_cache()
    with fsspec.open(f"{run_url}/results.parquet", "rb", **s3.storage_options) as fh:
        frame = pd.read_parquet(io.BytesIO(fh.read()))
    return frame.sort_values(["model", "site_no"]).reset_index(drop=True)


def listing(run_url: str, s3: Any) -> set[str]:
    fs, root = fsspec.core.url_to_fs(run_url, **s3.storage_options)
    fs.invalidate_cache()
    return {p[len(root) + 1 :] for p in fs.find(root)}


@pytest.fixture(scope="module")
def clean(daily_stores, s3, dask_client) -> pd.DataFrame:
    """Results of the stores read straight from the server, no faults."""
    bucket = f"s3://gagebench-it/faults-clean-{int(time.time())}"
    run(config(daily_stores, bucket, s3, s3.endpoint), client=dask_client)
    return results(f"{bucket}/faults", s3)


@pytest.fixture
def proxy(s3) -> Any:
    with FaultProxy(s3.endpoint) as p:
        yield p


def checksum(path: str) -> int:
    return zlib.crc32(path.encode())


def test_short_bodies_without_checksums_are_fetched_again(
    daily_stores, bucket_url, s3, dask_client, proxy, clean
) -> None:
    # Every chunk's first answer is 1-2 bytes short with a matching Content-Length and no
    # checksum headers: it looks whole. Blosc alone would decode wrong values (unit test).
    def rule(method: str, path: str, count: int) -> Any:
        if method == "GET" and is_chunk(path) and count == 1:
            return Short(1 + checksum(path) % 2)
        return PASS

    proxy.rule = rule
    run(config(daily_stores, bucket_url, s3, proxy.url), client=dask_client)
    assert proxy.injected.get("short", 0) >= 20, proxy.injected
    pd.testing.assert_frame_equal(results(f"{bucket_url}/faults", s3), clean)


@pytest.mark.parametrize("checksums", [False, True], ids=["no-checksums", "checksums"])
def test_flipped_bytes_are_fetched_again_never_decoded(
    daily_stores, bucket_url, s3, dask_client, proxy, clean, checksums
) -> None:
    # Every chunk's first answer keeps its length but has its last byte flipped (a
    # literal of the LZ4 stream: it decodes into one wrong value, no error). Without
    # checksum headers only the MD5 ETag tells; with them botocore's check does.
    def rule(method: str, path: str, count: int) -> Any:
        if method == "GET" and is_chunk(path) and count == 1:
            return Flip(checksums=checksums)
        return PASS

    proxy.rule = rule
    run(config(daily_stores, bucket_url, s3, proxy.url), client=dask_client)
    assert proxy.injected.get("flip", 0) >= 20, proxy.injected
    pd.testing.assert_frame_equal(results(f"{bucket_url}/faults", s3), clean)


def test_a_chunk_that_stays_damaged_is_an_error_never_a_value(
    daily_stores, bucket_url, s3, dask_client, proxy, clean
) -> None:
    damaged: list[str] = []

    def rule(method: str, path: str, count: int) -> Any:
        if method == "GET" and is_chunk(path) and "/observed.zarr/" in path:
            if not damaged:
                damaged.append(path)
            if path == damaged[0]:
                return Flip()  # every answer, every attempt
        return PASS

    proxy.rule = rule
    cfg = config(
        daily_stores,
        bucket_url,
        s3,
        proxy.url,
        retries={"max_attempts": 3, "max_wait_s": 0.5, "batch_attempts": 1},
    )
    with pytest.raises(RunError) as failed:
        run(cfg, client=dask_client)
    message = str(failed.value)
    key = damaged[0].split("/observed.zarr/", 1)[1]
    assert "observed.zarr" in message, message
    assert key in message, message
    assert "ETag" in message, message
    names = listing(f"{bucket_url}/faults", s3)
    assert "results.parquet" not in names
    assert "manifest.json" not in names
    saved = [n for n in names if n.startswith("_parts/batch-")]
    assert len(saved) == 4, names  # the other batches are saved; the damaged one is not

    proxy.rule = lambda method, path, count: PASS
    again = run(cfg, client=dask_client)
    assert again.manifest["batches"]["computed"] == 1
    pd.testing.assert_frame_equal(results(f"{bucket_url}/faults", s3), clean)


def test_require_verified_refuses_chunks_no_digest_covers(
    daily_stores, bucket_url, s3, dask_client, proxy
) -> None:
    # Chunks answered like a multipart upload without checksums: no digest covers them.
    def rule(method: str, path: str, count: int) -> Any:
        if method in ("GET", "HEAD") and is_chunk(path):
            return Flip(multipart_etag=True)
        return PASS

    proxy.rule = rule
    cfg = config(
        daily_stores,
        bucket_url,
        s3,
        proxy.url,
        integrity={"require_verified": True},
        retries={"max_attempts": 2, "max_wait_s": 0.5, "batch_attempts": 1},
    )
    with pytest.raises(RunError) as failed:
        run(cfg, client=dask_client)
    message = str(failed.value)
    assert "cannot verify" in message, message
    assert "require_verified" in message, message
    assert "multipart" in message, message
    names = listing(f"{bucket_url}/faults", s3)
    assert not [n for n in names if n.startswith("_parts/batch-")], names


def test_the_outage_line_waits_for_every_failing_request(s3, proxy, caplog) -> None:
    # Two objects fail together; one comes back after ~2.5 s, the other after ~6 s.
    # "waited it out" may only be said once both succeed, with the whole outage's length.
    from gagebench.storage.objectstore import RetryingS3FileSystem

    fs = RetryingS3FileSystem(
        key=s3.key,
        secret=s3.secret,
        endpoint_url=proxy.url,
        gagebench_retries={"max_attempts": 30, "max_wait_s": 30},
        skip_instance_cache=True,
    )
    for name in ("quick", "slow"):
        fs.pipe(f"gagebench-it/outage/{name}", name.encode())  # the endpoint has answered
    t0 = time.monotonic()
    back_at = {"quick": t0 + 2.5, "slow": t0 + 6.0}

    def rule(method: str, path: str, count: int) -> Any:
        name = path.rsplit("/", 1)[-1]
        if method == "GET" and name in back_at and time.monotonic() < back_at[name]:
            return Status(503)
        return PASS

    proxy.rule = rule
    caplog.set_level(logging.WARNING, logger="gagebench")

    async def both() -> list[Any]:
        got = await asyncio.gather(
            fs._cat_file("gagebench-it/outage/quick"), fs._cat_file("gagebench-it/outage/slow")
        )
        return list(got)

    assert fsspec.asyn.sync(fs.loop, both) == [b"quick", b"slow"]
    waited = [r for r in caplog.records if "waited it out" in r.getMessage()]
    assert len(waited) == 1, [r.getMessage() for r in waited]
    assert waited[0].created >= time.time() - (time.monotonic() - back_at["slow"])
    assert float(waited[0].getMessage().split(" failed for ")[1].split(" s")[0]) >= 5.5


def test_5xx_drops_and_cut_off_or_mismatching_bodies(
    daily_stores, bucket_url, s3, dask_client, proxy, clean
) -> None:
    faults = [
        Status(503),
        Status(500),
        DROP,
        Short(3, keep_length=True),  # cut off: fewer bytes than Content-Length
        Short(2, checksums=True),  # short, with the object's checksum headers kept
    ]

    def rule(method: str, path: str, count: int) -> Any:
        if count > 1:
            return PASS
        if is_chunk(path) or "/_parts/" in path or path.endswith((".zarray", ".zmetadata")):
            return faults[checksum(path) % len(faults)]
        return PASS

    proxy.rule = rule
    run(config(daily_stores, bucket_url, s3, proxy.url), client=dask_client)
    kinds = set(proxy.injected)
    assert {"status-503", "status-500", "drop", "short-keep-length", "short"} <= kinds, kinds
    pd.testing.assert_frame_equal(results(f"{bucket_url}/faults", s3), clean)


def test_a_20_s_outage_mid_run_is_waited_out(
    daily_stores, bucket_url, s3, dask_client, proxy, clean, caplog
) -> None:
    started: list[float] = []

    def rule(method: str, path: str, count: int) -> Any:
        if method == "GET" and is_chunk(path) and not started:
            seen = sum(1 for (m, p), _ in proxy.counts.items() if m == "GET" and is_chunk(p))
            if seen >= 12:  # a few batches are done: the store goes away for 20 s
                started.append(time.monotonic())
                proxy.outage_in_background(20.0)
        return PASS

    proxy.rule = rule
    caplog.set_level(logging.WARNING, logger="gagebench")
    t0 = time.monotonic()
    run(config(daily_stores, bucket_url, s3, proxy.url), client=dask_client)
    assert started, "the outage never started"
    assert time.monotonic() - t0 >= 20
    pd.testing.assert_frame_equal(results(f"{bucket_url}/faults", s3), clean)
    waited = [r.getMessage() for r in caplog.records if "waited it out" in r.getMessage()]
    assert waited, [r.getMessage() for r in caplog.records]
    assert any(float(m.split(" failed for ")[1].split(" s")[0]) >= 10 for m in waited), waited


def test_a_batch_that_keeps_failing_saves_the_others_and_resumes(
    daily_stores, bucket_url, s3, dask_client, proxy, clean, tmp_path
) -> None:
    # Through the real command line: one line of error, no tracebacks, no flood.
    bad: list[str] = []

    def rule(method: str, path: str, count: int) -> Any:
        if method == "GET" and is_chunk(path) and "/observed.zarr/" in path:
            if not bad:
                bad.append(path)
            if path == bad[0]:
                return Status(500)
        return PASS

    proxy.rule = rule
    settings = run_settings(
        daily_stores,
        bucket_url,
        s3,
        proxy.url,
        retries={"max_attempts": 3, "max_wait_s": 0.5, "batch_attempts": 2},
        cluster={"backend": "local", "local": {"n_workers": 1, "memory_limit": "1GiB"}},
    )
    run_file = tmp_path / "run.yaml"
    run_file.write_text(yaml.safe_dump({"gagebench": settings}, sort_keys=False))
    failed = gagebench_cli("run", "--config", str(run_file))
    assert failed.returncode != 0
    assert "Traceback" not in failed.stderr
    assert "Exception ignored" not in failed.stderr
    assert len(failed.stderr.splitlines()) < 30, failed.stderr
    message = failed.stderr.strip().splitlines()[-1]
    assert "4 of 5 batches are saved" in message, message
    assert "run_id=faults" in message
    assert "outage" in message
    names = listing(f"{bucket_url}/faults", s3)
    assert sum(n.startswith("_parts/batch-") for n in names) == 4
    assert "results.parquet" not in names
    assert "manifest.json" not in names

    proxy.rule = lambda method, path, count: PASS
    resumed = run(load_config(overrides=settings), client=dask_client)
    assert resumed.manifest["batches"]["computed"] == 1
    pd.testing.assert_frame_equal(results(f"{bucket_url}/faults", s3), clean)


def gagebench_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gagebench.cli", *args],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def test_a_failed_commit_leaves_nothing_that_looks_finished(
    daily_stores, bucket_url, s3, dask_client, proxy, clean
) -> None:
    def rule(method: str, path: str, count: int) -> Any:
        if method == "GET" and path.endswith("_parts/batch-00003.parquet"):
            return Status(500)  # the commit reads parts 0..4: it fails on the fourth
        return PASS

    cfg = config(
        daily_stores, bucket_url, s3, proxy.url, retries={"max_attempts": 3, "max_wait_s": 0.5}
    )
    proxy.rule = rule
    with pytest.raises(StorageError, match="batch-00003"):
        run(cfg, client=dask_client)
    names = listing(f"{bucket_url}/faults", s3)
    assert sum(n.startswith("_parts/batch-") for n in names) == 5
    finished = {"results.parquet", "manifest.json", "nwm/standard_suite.csv", "nwm/dscore.csv"}
    assert not names & finished, names
    assert not [n for n in names if n.endswith(".csv")], names

    proxy.rule = lambda method, path, count: PASS
    again = run(cfg, client=dask_client)
    assert again.manifest["batches"]["computed"] == 0
    pd.testing.assert_frame_equal(results(f"{bucket_url}/faults", s3), clean)
