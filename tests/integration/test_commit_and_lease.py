"""Writing an S3 run folder: the lease, the commit and start-up, through the fault proxy.

Every run writes through :mod:`faultproxy` in front of the moto S3 server:

- two runs of one folder, one's lease PUT 3 s slow: exactly one computes and commits, the
  other stops with exit 1 and writes nothing (conditional writes, ``If-None-Match: *``);
- a run whose lease is taken while it computes stops before committing (exit 1);
- manifest PUTs whose answers are all lost still end in a complete run (it is read back);
- a manifest without its results (a commit cut short) is committed again from the parts;
- a failing first listing of the commit, a part cut short and a missing bucket at start are
  one clear line (URL, resume hint, documented exit status).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import fsspec
import pandas as pd
import pytest
import yaml
from faultproxy import LOSE, PASS, Delay, FaultProxy, Short, Status
from test_object_store_faults import config, listing, results, run_settings

from gagebench.cli import exit_code
from gagebench.config import load_config
from gagebench.errors import CommitError, StorageError
from gagebench.pipeline import run
from gagebench.results.layout import LOCK_FILE
from gagebench.results.lock import LeaseLostError, RunLock, RunLockedError
from lease_race import race

pytestmark = pytest.mark.integration

_SCRIPT = Path(sys.executable).with_name("gagebench")
GAGEBENCH = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "gagebench.cli"]


@pytest.fixture(scope="module")
def clean(daily_stores, s3, dask_client) -> pd.DataFrame:
    """Results of the stores read straight from the server, no faults."""
    bucket = f"s3://gagebench-it/lease-clean-{uuid.uuid4().hex[:8]}"
    run(config(daily_stores, bucket, s3, s3.endpoint), client=dask_client)
    return results(f"{bucket}/faults", s3)


@pytest.fixture
def proxy(s3) -> Any:
    with FaultProxy(s3.endpoint) as p:
        yield p


def s3fs_of(s3: Any) -> Any:
    fs = fsspec.filesystem("s3", **s3.storage_options)
    fs.invalidate_cache()
    return fs


def write_run_file(path: Path, settings: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump({"gagebench": settings}, sort_keys=False))
    return path


# -- the lease -----------------------------------------------------------------------------


def test_the_s3_lease_is_a_conditional_write(s3, bucket_url) -> None:
    """Create with If-None-Match, take over a stale lease with If-Match: one winner."""
    fs = s3fs_of(s3)
    path = f"{bucket_url.removeprefix('s3://')}/{LOCK_FILE}"
    first = RunLock(fs, path, bucket_url)
    assert first._store.conditional
    first.acquire()
    with pytest.raises(RunLockedError, match="in use by another gagebench run"):
        RunLock(fs, path, bucket_url).acquire()
    first.renew()  # If-Match on its own ETag
    first.verify()
    # someone writes over the lease: the holder finds out on its next renewal
    foreign = {"token": "other", "host": "node-9", "pid": 7, "heartbeat": time.time()}
    fs.pipe_file(path, json.dumps({**foreign, "ttl_s": 60}).encode())
    with pytest.raises(LeaseLostError, match=r"taken by another run \(host node-9, pid 7\)"):
        first.renew()
    with pytest.raises(LeaseLostError):
        first.check()
    first.release()  # does not delete the other run's lease
    assert json.loads(fs.cat_file(path))["token"] == "other"

    # a stale lease, and two runs taking it over at once: exactly one wins
    stale = {"token": "dead", "host": "gone", "pid": 1, "heartbeat": time.time() - 600}
    fs.pipe_file(path, json.dumps({**stale, "ttl_s": 60}).encode())
    locks = [RunLock(fs, path, bucket_url) for _ in range(4)]
    outcome, winner = race(locks, 60)
    assert sorted(outcome.values()) == ["held", "refused", "refused", "refused"], outcome
    assert winner is not None
    assert json.loads(fs.cat_file(path))["token"] == locks[winner].token
    locks[winner].release()
    assert not fs.exists(path)


def test_an_s3_store_without_conditional_writes_falls_back_to_read_back(
    s3, bucket_url, proxy, caplog
) -> None:
    """An endpoint answering the conditional lease PUT with 501 Not Implemented: a warning
    at once (not a retried outage), then the written-and-read-back lease."""

    def rule(method: str, path: str, count: int) -> Any:
        return Status(501) if method == "PUT" and path.endswith(LOCK_FILE) and count == 1 else PASS

    proxy.rule = rule
    fs = fsspec.filesystem("s3", **{**s3.storage_options, "endpoint_url": proxy.url})
    path = f"{bucket_url.removeprefix('s3://')}/{LOCK_FILE}"
    caplog.set_level(logging.WARNING, logger="gagebench")
    t0 = time.monotonic()
    lock = RunLock(fs, path, bucket_url, settle_s=0.2)
    lock.acquire()
    assert time.monotonic() - t0 < 5
    assert not lock._store.conditional
    assert any("does not support conditional writes" in r.getMessage() for r in caplog.records)
    with pytest.raises(RunLockedError):
        RunLock(fs, path, bucket_url, settle_s=0.2).acquire()
    lock.renew()
    lock.release()
    assert not s3fs_of(s3).exists(path)


def test_two_runs_one_slow_lease_put_exactly_one_commits(
    daily_stores, bucket_url, s3, dask_client, proxy, clean, tmp_path
) -> None:
    """Run A (command line) has its lease PUT held 3 s; run B (this process) starts
    meanwhile; each part PUT takes 1 s, so B still runs when A's PUT lands. Exactly one
    computes and commits; the other exits 1 naming the folder in use, and writes no part.
    (With write-then-read-back both ran and both exited 0.)"""
    lease_put = threading.Event()
    part_puts: list[str] = []

    def rule(method: str, path: str, count: int) -> Any:
        if method == "PUT" and path.endswith(f"/{LOCK_FILE}") and count == 1:
            lease_put.set()
            return Delay(3.0)
        if method == "PUT" and "/_parts/batch-" in path:
            part_puts.append(path)
            return Delay(1.0)
        return PASS

    proxy.rule = rule
    settings_a = run_settings(
        daily_stores,
        bucket_url,
        s3,
        proxy.url,
        cluster={"backend": "local", "local": {"n_workers": 1, "memory_limit": "1GiB"}},
    )
    run_a = subprocess.Popen(
        [*GAGEBENCH, "run", "-c", str(write_run_file(tmp_path / "a.yaml", settings_a))],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert lease_put.wait(120), "run A never wrote its lease"
        try:
            result_b = run(config(daily_stores, bucket_url, s3, proxy.url), client=dask_client)
            b_won = True
        except RunLockedError as exc:
            b_error = str(exc)
            b_won = False
        _, err_a = run_a.communicate(timeout=300)
    finally:
        if run_a.poll() is None:
            run_a.kill()
    assert "Traceback" not in err_a, err_a
    assert len(part_puts) == 5, part_puts  # one run computed, once
    if b_won:  # the expected order: B's lease landed while A's PUT was held
        assert run_a.returncode == 1, err_a
        errors = [line for line in err_a.splitlines() if line.startswith("ERROR")]
        assert len(errors) == 1, err_a
        assert "is in use by another gagebench run" in errors[0]
        assert f"{bucket_url}/faults" in errors[0]
        assert result_b.manifest["batches"]["computed"] == 5
    else:  # A's lease got there first after all: B was refused, A committed
        assert run_a.returncode == 0, err_a
        assert "is in use by another gagebench run" in b_error
    # the winner's outputs are whole
    names = listing(f"{bucket_url}/faults", s3)
    assert {"results.parquet", "manifest.json", "nwm/standard_suite.csv"} <= names, names
    assert LOCK_FILE not in names  # released
    pd.testing.assert_frame_equal(results(f"{bucket_url}/faults", s3), clean)


def test_a_run_that_loses_its_lease_stops_before_committing(
    daily_stores, bucket_url, s3, dask_client, proxy
) -> None:
    """Another run takes the lease while this one computes: no results, no manifest, and
    the other run's lease is left alone."""
    fs = s3fs_of(s3)
    lease = f"{bucket_url.removeprefix('s3://')}/faults/{LOCK_FILE}"
    foreign = {"token": "thief", "host": "node-3", "pid": 11, "ttl_s": 600}
    taken: list[bool] = []

    def rule(method: str, path: str, count: int) -> Any:
        if method == "PUT" and "/_parts/batch-" in path and not taken:
            taken.append(True)  # after the first part, another run writes over the lease
            fs.pipe_file(lease, json.dumps({**foreign, "heartbeat": time.time()}).encode())
        return PASS

    proxy.rule = rule
    with pytest.raises(LeaseLostError, match="no longer holds the run folder") as info:
        run(config(daily_stores, bucket_url, s3, proxy.url), client=dask_client)
    assert exit_code(info.value) == 1
    assert "host node-3, pid 11" in str(info.value)
    names = listing(f"{bucket_url}/faults", s3)
    assert not names & {"results.parquet", "manifest.json"}, names
    assert json.loads(fs.cat_file(lease))["token"] == "thief"


# -- the commit ----------------------------------------------------------------------------


def test_lost_manifest_answers_still_end_in_a_complete_run(
    daily_stores, bucket_url, s3, dask_client, proxy, clean, caplog
) -> None:
    """Every manifest PUT lands but its answer is lost for the whole retry budget: the
    manifest is read back, found, and the outputs stay (they used to be deleted under a
    manifest saying "complete")."""

    def rule(method: str, path: str, count: int) -> Any:
        return LOSE if method == "PUT" and path.endswith("/manifest.json") else PASS

    proxy.rule = rule
    caplog.set_level(logging.INFO, logger="gagebench")
    cfg = config(
        daily_stores, bucket_url, s3, proxy.url, retries={"max_attempts": 3, "max_wait_s": 0.5}
    )
    done = run(cfg, client=dask_client)
    assert proxy.injected.get("lose", 0) >= 2, proxy.injected
    assert done.manifest["status"] == "complete"
    names = listing(f"{bucket_url}/faults", s3)
    assert {"results.parquet", "manifest.json", "nwm/standard_suite.csv", "nwm/dscore.csv"} <= (
        names
    )
    pd.testing.assert_frame_equal(results(f"{bucket_url}/faults", s3), clean)
    messages = [r.getMessage() for r in caplog.records]
    assert f"committing 5 parts to {bucket_url}/faults" in messages, messages
    assert any("but it is in place: the run is complete" in m for m in messages), messages

    proxy.rule = lambda method, path, count: PASS
    again = run(cfg, client=dask_client)
    assert again.already_complete


def test_a_manifest_that_may_have_landed_is_never_unpublished(
    daily_stores, bucket_url, s3, dask_client, proxy, clean
) -> None:
    """Manifest PUTs land with their answers lost, and the manifest cannot be read back
    either (500s past the budget): nothing is deleted, the error says so, and the same
    command then finds the run complete (it was)."""

    def rule(method: str, path: str, count: int) -> Any:
        if path.endswith("/manifest.json"):
            if method == "PUT":
                return LOSE
            if method in ("GET", "HEAD") and proxy.injected.get("lose", 0) >= 1:
                return Status(500)
        return PASS

    proxy.rule = rule
    cfg = config(
        daily_stores, bucket_url, s3, proxy.url, retries={"max_attempts": 2, "max_wait_s": 0.3}
    )
    with pytest.raises(CommitError) as info:
        run(cfg, client=dask_client)
    message = str(info.value)
    assert exit_code(info.value) == 1
    assert "cannot be read back now, so the outputs are left in place" in message, message
    assert "resumed with: " in message, message
    assert "run_id=faults" in message, message
    names = listing(f"{bucket_url}/faults", s3)
    assert {"results.parquet", "manifest.json", "nwm/standard_suite.csv"} <= names, names

    proxy.rule = lambda method, path, count: PASS
    again = run(cfg, client=dask_client)
    assert again.already_complete
    pd.testing.assert_frame_equal(results(f"{bucket_url}/faults", s3), clean)


def test_a_manifest_without_its_results_is_committed_again(
    daily_stores, bucket_url, s3, dask_client, clean, tmp_path
) -> None:
    """What an earlier version left (manifest.json saying complete, no results.parquet or
    CSVs; every rerun said "already complete ... run it again to commit", exit 2): the
    same command commits again from the saved parts, computing nothing."""
    settings = run_settings(daily_stores, bucket_url, s3, s3.endpoint)
    run(load_config(overrides=settings), client=dask_client)
    fs = s3fs_of(s3)
    root = f"{bucket_url.removeprefix('s3://')}/faults"
    for rel in ("results.parquet", "nwm/standard_suite.csv", "nwm/dscore.csv"):
        fs.rm_file(f"{root}/{rel}")
    again = subprocess.run(
        [*GAGEBENCH, "run", "-c", str(write_run_file(tmp_path / "run.yaml", settings))],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert again.returncode == 0, again.stderr
    assert "Traceback" not in again.stderr
    assert "has manifest.json but not results.parquet" in again.stderr, again.stderr
    assert "committing it again from the saved batches" in again.stderr
    fs.invalidate_cache()
    manifest = json.loads(fs.cat_file(f"{root}/manifest.json"))
    assert manifest["batches"]["computed"] == 0
    assert manifest["batches"]["reused"] == 5
    pd.testing.assert_frame_equal(results(f"{bucket_url}/faults", s3), clean)


def test_a_failing_first_listing_of_the_commit_names_the_run_and_resumes(
    daily_stores, bucket_url, s3, dask_client, proxy, clean
) -> None:
    """Once every part is saved, listings of the bucket fail (500) past the budget: one
    CommitError (exit 1) naming the run folder and how to resume; the rerun commits."""
    parts: set[str] = set()

    def rule(method: str, path: str, count: int) -> Any:
        if method == "PUT" and "/_parts/batch-" in path:
            parts.add(path)
        if method == "GET" and path.rstrip("/") == "/gagebench-it" and len(parts) >= 5:
            return Status(500)  # ListObjectsV2 of the bucket
        return PASS

    proxy.rule = rule
    cfg = config(
        daily_stores, bucket_url, s3, proxy.url, retries={"max_attempts": 3, "max_wait_s": 0.5}
    )
    with pytest.raises(CommitError) as info:
        run(cfg, client=dask_client)
    message = str(info.value)
    assert exit_code(info.value) == 1
    assert f"the commit to {bucket_url}/faults failed" in message, message
    assert "resumed with: " in message, message
    assert "run_id=faults" in message, message
    names = listing(f"{bucket_url}/faults", s3)
    assert not names & {"results.parquet", "manifest.json"}, names

    proxy.rule = lambda method, path, count: PASS
    again = run(cfg, client=dask_client)
    assert again.manifest["batches"]["computed"] == 0
    pd.testing.assert_frame_equal(results(f"{bucket_url}/faults", s3), clean)


def test_a_part_cut_short_in_the_commit_is_redone(
    daily_stores, bucket_url, s3, dask_client, proxy, clean
) -> None:
    """Every read of one part is cut short (a whole-looking body, no checksum): not a
    traceback (ArrowInvalid) but a CommitError naming the part; the rerun computes that
    batch again and commits identical results."""

    def rule(method: str, path: str, count: int) -> Any:
        if method == "GET" and path.endswith("/_parts/batch-00002.parquet"):
            return Short(100)
        return PASS

    proxy.rule = rule
    cfg = config(
        daily_stores, bucket_url, s3, proxy.url, retries={"max_attempts": 3, "max_wait_s": 0.5}
    )
    with pytest.raises(CommitError) as info:
        run(cfg, client=dask_client)
    message = str(info.value)
    assert "batch-00002.parquet" in message, message
    assert "resumed with: " in message, message
    assert not listing(f"{bucket_url}/faults", s3) & {"results.parquet", "manifest.json"}

    proxy.rule = lambda method, path, count: PASS
    again = run(cfg, client=dask_client)
    assert again.manifest["batches"]["computed"] <= 1
    pd.testing.assert_frame_equal(results(f"{bucket_url}/faults", s3), clean)


def test_staging_folders_of_killed_runs_are_removed(
    daily_stores, bucket_url, s3, dask_client
) -> None:
    """A run killed during an S3 commit leaves its staging folder in the temp folder; the
    next commit on this host removes it (a live process's folder is kept)."""
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    tmp = Path(tempfile.gettempdir())
    left = tmp / f"gagebench-stage-{int(dead.stdout)}-{uuid.uuid4().hex[:8]}"
    left.mkdir()
    (left / "results.parquet").write_bytes(b"half a file")
    live = tmp / f"gagebench-stage-{os.getppid()}-{uuid.uuid4().hex[:8]}"
    live.mkdir()
    try:
        before = {p.name for p in tmp.glob("gagebench-stage-*")}
        run(config(daily_stores, bucket_url, s3, s3.endpoint), client=dask_client)
        after = {p.name for p in tmp.glob("gagebench-stage-*")}
        assert not left.exists()
        assert live.exists()
        assert after <= before - {left.name}, after - before  # none of this run's left
    finally:
        live.rmdir()


# -- start-up ------------------------------------------------------------------------------


def test_a_missing_output_bucket_is_one_line(daily_stores, s3, tmp_path) -> None:
    settings = run_settings(daily_stores, "s3://no-such-bucket-gb", s3, s3.endpoint)
    result = subprocess.run(
        [*GAGEBENCH, "run", "-c", str(write_run_file(tmp_path / "run.yaml", settings))],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1, result.stderr
    assert "s3://no-such-bucket-gb/faults" in errors[0], errors[0]
    assert "does not exist: check gagebench.output" in errors[0], errors[0]


def test_storage_error_of_the_commit_is_still_a_storage_error() -> None:
    """CommitError is caught by ``except StorageError`` (the Python API's callers)."""
    assert issubclass(CommitError, StorageError)
    assert exit_code(CommitError("x")) == 1
    assert exit_code(StorageError("x")) == 2
