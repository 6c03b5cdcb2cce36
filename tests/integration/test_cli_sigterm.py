"""SIGTERM to a running ``gagebench run`` (what Kubernetes sends when the Job is deleted or
the pod evicted): the process exits promptly and non-zero, its LocalCluster's scheduler
and worker processes are gone, and the same run id resumes where it stopped."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import fsspec
import pandas as pd
import psutil
import pytest
import yaml

from run_parts import wait_for_parts

pytestmark = [pytest.mark.integration, pytest.mark.slow]

GAGEBENCH = [sys.executable, "-m", "gagebench.cli"]


def _run_file(path: Path, stores: Any, output: str, options: dict[str, Any]) -> Path:
    settings = stores.to_config_dict()
    settings.update(
        {
            "output": output,
            "run_id": "sigterm",
            "storage_options": options,
            "report": False,
            "batch_size": 2,
            "cluster": {"backend": "local", "local": {"n_workers": 2, "memory_limit": "1GiB"}},
        }
    )
    path.write_text(yaml.safe_dump({"gagebench": settings}))
    return path


def _cluster_processes(pid: int) -> list[psutil.Process]:
    """The run's descendants, except multiprocessing's resource tracker (a helper that
    exits with its parent, not part of the Dask cluster)."""
    found = []
    for child in psutil.Process(pid).children(recursive=True):
        try:
            if "resource_tracker" not in " ".join(child.cmdline()):
                found.append(child)
        except psutil.NoSuchProcess:
            continue
    return found


def test_sigterm_tears_down_and_the_run_resumes(daily_stores, bucket_url, s3, tmp_path) -> None:
    run_file = _run_file(tmp_path / "run.yaml", daily_stores, bucket_url, s3.storage_options)
    fs = fsspec.filesystem("s3", skip_instance_cache=True, **s3.storage_options)
    parts_dir = f"{bucket_url}/sigterm/_parts".removeprefix("s3://")
    proc = subprocess.Popen(
        [*GAGEBENCH, "run", "--config", str(run_file), "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        parts = wait_for_parts(proc, fs, parts_dir)
        assert proc.poll() is None, "the run ended before it could be terminated"
        assert len(parts) >= 2, "no parts appeared within 120 s"
        cluster = _cluster_processes(proc.pid)
        assert len(cluster) >= 2, "expected the LocalCluster's worker processes"
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
        elapsed = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    # one line that says what happened and how to resume; no tracebacks
    text = stderr.decode() if isinstance(stderr, bytes) else stderr
    assert "Traceback" not in text, text
    assert "terminated (SIGTERM): finished batches of run sigterm are saved" in text
    print(f"SIGTERM -> exit {proc.returncode} in {elapsed:.2f} s")
    assert elapsed < 30, f"took {elapsed:.1f} s to stop"
    # the teardown ran in-process (no orphan left for the OS to reap later)
    _, alive = psutil.wait_procs(cluster, timeout=5)
    assert not alive, f"scheduler/worker processes left behind: {alive}"

    fs.invalidate_cache()
    assert not fs.exists(f"{bucket_url}/sigterm/manifest.json")
    before = [p for p in fs.ls(parts_dir) if p.endswith(".parquet")]
    n_batches = daily_stores.n_gages // 2
    assert 2 <= len(before) < n_batches

    done = subprocess.run(
        [*GAGEBENCH, "run", "--config", str(run_file), "--quiet"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    manifest = json.loads(fs.cat(f"{bucket_url}/sigterm/manifest.json"))
    assert manifest["batches"]["reused"] == len(before)
    assert manifest["batches"]["computed"] == n_batches - len(before)
    results = pd.read_parquet(io.BytesIO(fs.cat(f"{bucket_url}/sigterm/results.parquet")))
    assert len(results) == daily_stores.n_gages * 2
    assert not results.duplicated(["site_no", "model"]).any()
