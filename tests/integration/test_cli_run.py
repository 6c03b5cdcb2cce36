"""``gagebench run`` as a user runs it: a real process, killed midway and resumed, and the
one-line errors of bad settings, bad credentials and an unreachable endpoint."""

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

pytestmark = pytest.mark.integration

GAGEBENCH = [sys.executable, "-m", "gagebench.cli"]


def write_run_file(
    path: Path, stores: Any, output: str, options: dict[str, Any], **extra: Any
) -> Path:
    settings = stores.to_config_dict()
    settings.update(
        {
            "output": output,
            "run_id": "cli",
            "storage_options": options,
            "report": False,
            "cluster": {"backend": "local", "local": {"n_workers": 1, "memory_limit": "1GiB"}},
        }
    )
    settings.update(extra)
    path.write_text(yaml.safe_dump({"gagebench": settings}))
    return path


def gagebench(
    *args: str, timeout: float = 180, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*GAGEBENCH, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, **(env or {})},
    )


def test_resume_after_kill(daily_stores, bucket_url, s3, tmp_path) -> None:
    run_file = write_run_file(
        tmp_path / "run.yaml", daily_stores, bucket_url, s3.storage_options, batch_size=2
    )
    fs = fsspec.filesystem("s3", skip_instance_cache=True, **s3.storage_options)
    parts_dir = f"{bucket_url}/cli/_parts".removeprefix("s3://")
    proc = subprocess.Popen(
        [*GAGEBENCH, "run", "--config", str(run_file)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        parts = wait_for_parts(proc, fs, parts_dir)
        assert proc.poll() is None, "the run ended before it could be killed"
        assert len(parts) >= 2, "no parts appeared within 120 s"
        children = psutil.Process(proc.pid).children(recursive=True)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        # Dask worker processes exit when their parent dies.
        _, alive = psutil.wait_procs(children, timeout=30)
        assert not alive, f"worker processes outlived the killed run: {alive}"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    fs.invalidate_cache()
    assert not fs.exists(f"{bucket_url}/cli/manifest.json")
    before = {p: fs.info(p)["LastModified"] for p in fs.ls(parts_dir) if p.endswith(".parquet")}
    n_gages = daily_stores.n_gages
    n_batches = n_gages // 2
    assert 2 <= len(before) < n_batches

    time.sleep(1.1)  # LastModified has 1 s resolution: a rewrite would show
    done = gagebench("run", "--config", str(run_file), "--quiet")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "", "--quiet printed a summary"
    fs.invalidate_cache()
    manifest = json.loads(fs.cat(f"{bucket_url}/cli/manifest.json"))
    assert manifest["batches"]["reused"] == len(before)
    assert manifest["batches"]["computed"] == n_batches - len(before)
    after = {p: fs.info(p)["LastModified"] for p in before}
    assert after == before, "finished batches were recomputed"
    results = pd.read_parquet(io.BytesIO(fs.cat(f"{bucket_url}/cli/results.parquet")))
    assert len(results) == n_gages * 2
    assert not results.duplicated(["site_no", "model"]).any()
    assert results.groupby("model").site_no.nunique().to_dict() == {
        "nwm": n_gages,
        "nhm": n_gages,
    }

    # A complete run is not computed again.
    again = gagebench("run", "--config", str(run_file))
    assert again.returncode == 0, again.stderr
    assert "already complete" in again.stdout + again.stderr
    assert "gages by status" in again.stdout


def _one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def test_bad_config_names_the_key(tmp_path) -> None:
    line = _one_line_error(gagebench("run", "--set", "output=/tmp/x", "--set", "batch_size=many"))
    assert "gagebench.batch_size" in line
    assert "integer" in line
    bad = tmp_path / "run.yaml"
    bad.write_text("gagebench:\n  output: /tmp/x\n  bach_size: 3\n")
    line = _one_line_error(gagebench("run", "--config", str(bad)))
    assert "gagebench.bach_size" in line
    line = _one_line_error(gagebench("run", "--set", "output=/tmp/x"))
    assert "gagebench.observed.url" in line
    # JSON log lines for Kubernetes log collectors
    result = gagebench("run", "--set", "output=/tmp/x", env={"DASK_GAGEBENCH__LOG_FORMAT": "json"})
    assert result.returncode == 2
    records = [json.loads(line) for line in result.stderr.splitlines()]
    assert [r["level"] for r in records] == ["error"]
    assert "gagebench.observed.url" in records[0]["message"]


def test_bad_credentials_name_the_url(daily_stores, bucket_url, s3, tmp_path) -> None:
    options = {**s3.storage_options, "secret": "wrong-secret", "key": "AKIAWRONGKEY0000000"}
    run_file = write_run_file(tmp_path / "run.yaml", daily_stores, bucket_url, options)
    line = _one_line_error(gagebench("run", "--config", str(run_file)))
    # The first URL the run touches: its output folder (is it complete?) or a store.
    assert bucket_url in line or daily_stores.observed_url in line, line
    assert "Forbidden" in line or "credentials" in line, line
    assert "wrong-secret" not in line


def test_unreachable_endpoint_names_the_url(
    daily_stores, bucket_url, s3, tmp_path, closed_port
) -> None:
    dead = f"http://127.0.0.1:{closed_port}"
    options = {**s3.storage_options, "endpoint_url": dead}
    run_file = write_run_file(tmp_path / "run.yaml", daily_stores, bucket_url, options)
    t0 = time.monotonic()
    line = _one_line_error(gagebench("run", "--config", str(run_file)))
    assert bucket_url in line or daily_stores.observed_url in line, line
    assert time.monotonic() - t0 < 120
