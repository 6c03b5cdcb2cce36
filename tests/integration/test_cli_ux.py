"""What a user meets at the edges, through the real ``gagebench`` entry point in a
subprocess: bad settings and stores fail at once with one line and the documented exit
code, before anything is written; a complete run with other settings is refused; a run
folder in use is refused; report/compare take storage options; Ctrl-C prints one line and
the same command resumes. Runs use local stores (synthesized once per module) and the
session's LocalCluster of 2 worker processes where a run must complete."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import pytest
import xarray as xr
import yaml

from gagebench.config import StoreConfig, load_config
from gagebench.errors import ConfigError
from gagebench.pipeline import run
from gagebench.results.lock import LOCK_FILE
from run_parts import wait_for_parts

pytestmark = pytest.mark.integration

_SCRIPT = Path(sys.executable).with_name("gagebench")
GAGEBENCH = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "gagebench.cli"]


def gagebench(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*GAGEBENCH, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def one_clean_error(result: subprocess.CompletedProcess[str], code: int, text: str) -> str:
    """The exit code, the message, and no traceback; returns the ERROR line."""
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == code, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1, result.stderr
    assert text in errors[0], errors[0]
    return errors[0]


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from gagebench.synth import synthesize

    root = tmp_path_factory.mktemp("stores")
    made = synthesize(str(root), n_gages=12, start="2001-01-01", end="2004-12-31", seed=5)
    return dict(made.to_config_dict())


def run_file(path: Path, stores: dict[str, Any], output: Path, **extra: Any) -> Path:
    settings = {
        **stores,
        "output": str(output),
        "report": False,
        "batch_size": 4,
        "cluster": {"backend": "local", "local": {"n_workers": 1, "memory_limit": "1GiB"}},
        **extra,
    }
    path.write_text(yaml.safe_dump({"gagebench": settings}))
    return path


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("cluster.local.memory_limit=lots", "gagebench.cluster.local.memory_limit: expected"),
        ("cluster.local.nworkers=2", "unknown setting(s) gagebench.cluster.local.nworkers"),
        ("cluster.lcoal.n_workers=2", "gagebench.cluster.lcoal: expected a section"),
        ("min_paired_days=0", "gagebench.min_paired_days: expected an integer"),
    ],
)
def test_bad_settings_fail_before_anything_is_written(
    stores: dict[str, Any], tmp_path: Path, setting: str, message: str
) -> None:
    output = tmp_path / "out"
    cfg = run_file(tmp_path / "run.yaml", stores, output, run_id="r")
    result = gagebench("run", "-c", str(cfg), "--set", setting)
    one_clean_error(result, 2, message)
    assert not output.exists(), "a rejected run wrote into its output folder"


def test_a_scheduler_address_that_is_not_one_fails_at_once(
    stores: dict[str, Any], tmp_path: Path
) -> None:
    cfg = run_file(tmp_path / "run.yaml", stores, tmp_path / "out", run_id="r")
    t0 = time.monotonic()
    result = gagebench(
        "run", "-c", str(cfg), "--set", "cluster.backend=address",
        "--set", "cluster.address.address=notaurl",
    )  # fmt: skip
    one_clean_error(result, 2, "expected a scheduler address like tcp://scheduler:8786")
    assert time.monotonic() - t0 < 30  # no 60 s wait for a client that never connected
    assert not (tmp_path / "out").exists()


def test_descending_time_names_the_store(stores: dict[str, Any], tmp_path: Path) -> None:
    url = stores["models"]["nwm"]["url"]
    flipped = tmp_path / "nwm-descending.zarr"
    ds = xr.open_zarr(url).isel(time=slice(None, None, -1)).load()
    for var in ds.variables.values():
        var.encoding.clear()
    ds.to_zarr(flipped, zarr_format=2)
    bad = {**stores, "models": {"nwm": {"url": str(flipped)}}}
    cfg = run_file(tmp_path / "run.yaml", bad, tmp_path / "out", run_id="r")
    line = one_clean_error(gagebench("run", "-c", str(cfg)), 2, "time axis is descending")
    assert str(flipped) in line
    assert "sortby('time')" in line
    obs = {**stores, "observed": {"url": str(flipped)}}
    cfg = run_file(tmp_path / "run2.yaml", obs, tmp_path / "out", run_id="r")
    line = one_clean_error(gagebench("run", "-c", str(cfg)), 2, "the observed store")
    assert "descending" in line


def test_no_time_overlap_is_a_warning(stores: dict[str, Any], tmp_path: Path) -> None:
    from gagebench.sources.stores import SourceSet, clear_cache
    from gagebench.synth import synthesize

    later = synthesize(str(tmp_path), n_gages=3, start="2010-01-01", end="2010-12-31", seed=5)
    source = SourceSet(
        StoreConfig(stores["observed"]["url"]), {"late": StoreConfig(later.model_urls["nwm"])}
    )
    clear_cache()
    import logging

    records: list[str] = []

    class Grab(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    handler = Grab(logging.WARNING)
    logging.getLogger("gagebench.sources.sourceset").addHandler(handler)
    try:
        source.check(365)
    finally:
        logging.getLogger("gagebench.sources.sourceset").removeHandler(handler)
    assert any("no day in common, so every gage will be no_simulation" in r for r in records)
    batch = source.read_batch(["USGS-01011000"])
    assert np.isnan(batch.modeled["late"]).all()


def test_complete_run_with_other_settings_is_refused(
    stores: dict[str, Any], tmp_path: Path, dask_client: Any
) -> None:
    output = tmp_path / "out"
    cfg_path = run_file(tmp_path / "run.yaml", stores, output, run_id="fixed")
    # leftovers of a writer killed mid-write, and a lease of a dead run
    run_dir = output / "fixed"
    (run_dir / "nwm").mkdir(parents=True)
    stale = run_dir / "nwm" / f"standard_suite.csv.tmp-{'b' * 32}"
    stale.write_text("half a file")
    dead = {"token": "t", "host": "gone", "pid": 1, "heartbeat": time.time() - 3600}
    (run_dir / LOCK_FILE).write_text(json.dumps(dead))
    first = run(load_config(cfg_path), client=dask_client)
    assert not stale.exists(), "a stale temporary file survived the commit"
    assert not (run_dir / LOCK_FILE).exists(), "the lease outlived the run"
    assert len(repr(first)) < 300
    assert repr(first).startswith("RunResult(run_id='fixed'")
    card = first._repr_html_()
    assert "<b>gagebench run <code>fixed</code></b>" in card
    assert "median over evaluated gages" in card
    counts = first.status_counts()
    assert counts.to_numpy().sum() == 24  # 12 gages x 2 models

    result = gagebench("run", "-c", str(cfg_path), "--set", "batch_size=5", "--set", "mode=hytest")
    line = one_clean_error(result, 2, "run fixed at")
    assert "is complete with other settings" in line
    assert "batch_size (4 before, 5 now)" in line
    assert "mode ('standard' before, 'hytest' now)" in line
    assert "--force" in line
    with pytest.raises(ConfigError, match="batch_size"):
        run(load_config(cfg_path, batch_size=5), client=dask_client)
    # the same settings: the complete run's summary, exit 0
    same = gagebench("run", "-c", str(cfg_path))
    assert same.returncode == 0, same.stderr
    assert "was already complete" in same.stdout


def test_a_run_folder_in_use_is_refused(stores: dict[str, Any], tmp_path: Path) -> None:
    output = tmp_path / "out"
    cfg_path = run_file(tmp_path / "run.yaml", stores, output, run_id="busy")
    (output / "busy").mkdir(parents=True)
    alive = {"token": "t", "host": "node-7", "pid": 42, "heartbeat": time.time(), "ttl_s": 60}
    (output / "busy" / LOCK_FILE).write_text(json.dumps(alive))
    line = one_clean_error(gagebench("run", "-c", str(cfg_path)), 1, "is in use by another")
    assert "host node-7, pid 42" in line
    assert not (output / "busy" / "_parts").exists()


def test_report_and_compare_take_storage_options(s3: Any, tmp_path: Path) -> None:
    import s3fs

    from report_fixtures import synthetic_results, write_run

    local = write_run(tmp_path / "run-opts", synthetic_results(30, models=("nwm", "nhm")))
    fs = s3fs.S3FileSystem(skip_instance_cache=True, **s3.storage_options)
    fs.put(str(local), "gagebench-it/ux/run-opts", recursive=True)
    url = "s3://gagebench-it/ux/run-opts"
    flags = [f"--storage-option={k}={v}" for k, v in s3.storage_options.items()]
    result = gagebench("report", url, *flags)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{url}/report.html"
    options_file = tmp_path / "run.yaml"
    options_file.write_text(yaml.safe_dump({"gagebench": {"storage_options": s3.storage_options}}))
    compared = gagebench("compare", url, "--config", str(options_file))
    assert compared.returncode == 0, compared.stderr
    assert "median_diff: median of the per-gage differences A - B" in compared.stdout
    # the wrong endpoint: one line naming the URL and what to pass, no traceback
    closed = f"http://127.0.0.1:{_free_port()}"
    retries = "--storage-option=config_kwargs={retries: {max_attempts: 1}}"
    wrong = gagebench("report", url, *flags, f"--storage-option=endpoint_url={closed}", retries)
    line = one_clean_error(wrong, 2, f"cannot read {url}")
    assert "--storage-option endpoint_url=" in line


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_ctrl_c_prints_one_line_and_the_same_command_resumes(
    stores: dict[str, Any], tmp_path: Path
) -> None:
    """No run_id: the default id is the settings hash, so the same command resumes."""
    output = tmp_path / "out"
    cfg = run_file(
        tmp_path / "run.yaml", stores, output, batch_size=1,
        cluster={"backend": "local", "local": {"n_workers": 2, "memory_limit": "1GiB"}},
    )  # fmt: skip
    run_id = load_config(cfg).run_id
    proc = subprocess.Popen(
        [*GAGEBENCH, "run", "-c", str(cfg)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    fs = fsspec.filesystem("file")
    parts = wait_for_parts(proc, fs, str(output / run_id / "_parts"), count=2)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    assert len(parts) >= 2
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does: the whole process group
    _, err = proc.communicate(timeout=90)
    assert proc.returncode == 130, err
    assert "Traceback" not in err, err
    assert "still alive" not in err
    errors = [line for line in err.splitlines() if "ERROR" in line]
    assert len(errors) == 1, err
    assert f"resume with: gagebench run -c {cfg} --set run_id={run_id}" in errors[0]
    assert len(err.splitlines()) < 12, err

    again = gagebench("run", "-c", str(cfg), timeout=300)
    assert again.returncode == 0, again.stderr
    assert f"resuming run {run_id}" in again.stderr
    assert (output / run_id / "manifest.json").exists()
    assert "still alive" not in again.stderr
    shutil.rmtree(output)
