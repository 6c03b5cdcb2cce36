"""The slurm backend against a real one-node SLURM: ``gagebench run`` submits its workers as
SLURM jobs (sbatch), computes the in-process results, and leaves no job behind - after a
good run, after SIGTERM, and when the jobs cannot start."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import pandas as pd
import pytest
import yaml

from expected_results import evaluate_in_process
from gagebench.clusters import cluster_client
from gagebench.config import load_config
from gagebench.tuning import PLUGIN_NAME
from run_parts import wait_for_parts

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

GAGEBENCH = [sys.executable, "-m", "gagebench.cli"]


def _run_file(tmp_path: Path, stores: Path, run_id: str, **slurm: Any) -> Path:
    settings = {
        "run_id": run_id,
        "output": str(tmp_path / "out"),
        "observed": {"url": str(stores / "observed.zarr")},
        "models": {"nwm": {"url": str(stores / "nwm.zarr")}},
        "batch_size": 5,
        "report": False,
        "progress": False,
        "cluster": {
            "backend": "slurm",
            "slurm": {
                "jobs": 2,
                "cores": 1,
                "memory": "2GiB",
                "walltime": "00:15:00",
                "wait_timeout": 120,
                "log_directory": str(tmp_path / "logs"),
                **slurm,
            },
        },
    }
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({"gagebench": settings}))
    return path


def _jobs_named(name: str) -> list[str]:
    out = subprocess.run(
        ["squeue", "-h", "-n", name, "-o", "%i %T"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    return out.splitlines()


def _no_jobs_left(name: str, timeout: float = 30) -> list[str]:
    """The jobs named ``name`` still in the queue after ``timeout`` s (scancel is async)."""
    deadline = time.monotonic() + timeout
    left = _jobs_named(name)
    while left and time.monotonic() < deadline:
        time.sleep(0.5)
        left = _jobs_named(name)
    return left


def test_a_run_on_slurm_worker_jobs(slurm_conf: str, synth_stores: Path, tmp_path: Path) -> None:
    run_file = _run_file(tmp_path, synth_stores, "slurm-run")
    proc = subprocess.run(
        [*GAGEBENCH, "run", "--config", str(run_file), "--set", "gage_limit=20"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    # the run starts once a worker is up; both jobs were submitted
    ready = re.search(r"SLURM cluster ready: [12] worker\(s\) in jobs (\d+), (\d+)", proc.stderr)
    assert ready, proc.stderr
    # the workers ran as SLURM jobs: a job's stderr (sbatch -e) is its dask worker's log
    logs = [tmp_path / "logs" / f"gagebench-slurm-run-{job}.err" for job in ready.groups()]
    assert any(p.is_file() and "Start worker at" in p.read_text() for p in logs), logs
    assert _no_jobs_left("gagebench-slurm-run") == []

    got = pd.read_parquet(tmp_path / "out" / "slurm-run" / "results.parquet")
    assert len(got) == 20
    cfg = load_config(run_file)
    expected = (
        evaluate_in_process(cfg, sorted(got.site_no)).set_index(["model", "site_no"]).sort_index()
    )
    evaluated = got.set_index(["model", "site_no"]).loc[expected.index]
    metrics = [c for c in expected.columns if c not in ("first_day", "last_day", "status", "note")]
    assert len(expected) >= 10  # synth leaves some gages out of a store
    np.testing.assert_allclose(
        evaluated[metrics].to_numpy(float), expected[metrics].to_numpy(float), rtol=1e-12
    )
    assert (evaluated["status"] == expected["status"]).all()


#: The worker's plugins: name -> whether its malloc tuning ran (None if not ours). A
#: lambda, so cloudpickle sends it by value (the jobs cannot import this test module).
_plugins = lambda dask_worker: {  # noqa: E731
    name: getattr(p, "malloc_tuned", None) for name, p in dask_worker.plugins.items()
}


def test_the_worker_jobs_are_tuned_and_cancelled_when_the_block_fails(
    slurm_conf: str, synth_stores: Path, tmp_path: Path
) -> None:
    """In-process: the workers in the SLURM jobs get the worker tuning (the backend started
    them), and an exception inside the block still cancels every job."""
    cfg = load_config(_run_file(tmp_path, synth_stores, "slurm-inproc"))
    seen: dict[str, Any] = {}

    def use_then_fail() -> None:
        with cluster_client(cfg) as client:
            client.wait_for_workers(2, timeout=120)
            seen["plugins"] = client.run(_plugins)
            seen["jobs"] = _jobs_named("gagebench-slurm-inproc")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        use_then_fail()
    assert len(seen["plugins"]) == 2
    assert all(p[PLUGIN_NAME] is True for p in seen["plugins"].values()), seen
    assert len(seen["jobs"]) == 2, seen
    assert _no_jobs_left("gagebench-slurm-inproc") == []


def test_sigterm_cancels_the_worker_jobs(
    slurm_conf: str, synth_stores: Path, tmp_path: Path
) -> None:
    """SIGTERM (scancel of a controlling job, a deleted pod) mid-run: every worker job is
    cancelled before the process exits."""
    run_file = _run_file(tmp_path, synth_stores, "slurm-sigterm")
    proc = subprocess.Popen(
        [*GAGEBENCH, "run", "--config", str(run_file), "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        fs = fsspec.filesystem("file")
        parts = wait_for_parts(
            proc, fs, str(tmp_path / "out" / "slurm-sigterm" / "_parts"), timeout=300
        )
        assert proc.poll() is None, "the run ended before it could be terminated"
        assert len(parts) >= 2, "no parts appeared within 300 s"
        running = _jobs_named("gagebench-slurm-sigterm")
        assert len(running) == 2, running  # both jobs in the queue, one at least running
        assert any(line.endswith("RUNNING") for line in running), running
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    assert "Traceback" not in stderr
    assert "terminated (SIGTERM)" in stderr
    assert _no_jobs_left("gagebench-slurm-sigterm") == []


@contextlib.contextmanager
def _run_with_parts(
    run_file: Path, cwd: Path, run_id: str
) -> Iterator[tuple[subprocess.Popen[str], list[str]]]:
    """``gagebench run`` in its own process group, yielded once it has saved two batches
    (so it is mid-run); killed if still running when the block ends."""
    proc = subprocess.Popen(
        [*GAGEBENCH, "run", "--config", str(run_file)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        cwd=cwd,
    )
    try:
        fs = fsspec.filesystem("file")
        parts = wait_for_parts(proc, fs, str(cwd / "out" / run_id / "_parts"), timeout=300)
        assert proc.poll() is None, "the run ended before it could be stopped mid-run"
        assert len(parts) >= 2, "no parts appeared within 300 s"
        yield proc, parts
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_ctrl_c_cancels_the_worker_jobs_and_the_printed_resume_command_finishes_the_run(
    slurm_conf: str, synth_stores: Path, tmp_path: Path
) -> None:
    """Ctrl-C (SIGINT to the process group, as a terminal sends it) mid-run: exit 130 with
    the resume command, every worker job cancelled; that command finishes the run. (With
    dask-jobqueue 0.9.0's own SIGINT handler the run ended with exit 0 and no message.)"""
    run_file = _run_file(tmp_path, synth_stores, "slurm-sigint")
    with _run_with_parts(run_file, tmp_path, "slurm-sigint") as (proc, parts):
        os.killpg(proc.pid, signal.SIGINT)
        _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    said = re.search(r"ERROR gagebench: interrupted: .* resume with: gagebench (run .*)", stderr)
    assert said, stderr
    assert _no_jobs_left("gagebench-slurm-sigint") == []

    resumed = subprocess.run(
        [*GAGEBENCH, *said.group(1).split()],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=tmp_path,
    )
    assert resumed.returncode == 0, resumed.stderr
    plan = re.search(
        r"(\d+) gages x 1 model\(s\) in (\d+) batches of 5; (\d+) batches to", resumed.stderr
    )
    assert plan, resumed.stderr
    gages, batches, to_compute = map(int, plan.groups())
    assert 0 < to_compute <= batches - len(parts)  # the saved batches are not computed again
    got = pd.read_parquet(tmp_path / "out" / "slurm-sigint" / "results.parquet")
    assert len(got) == gages
    assert not got.duplicated(["model", "site_no"]).any()
    assert _no_jobs_left("gagebench-slurm-sigint") == []


def test_worker_jobs_that_all_end_mid_run_stop_the_run_with_the_reason(
    slurm_conf: str, synth_stores: Path, tmp_path: Path
) -> None:
    """Every worker job ends mid-run (scancel here; a walltime shorter than the run or a
    preemption alike): dask-jobqueue submits no new ones, so the run used to wait for
    workers for ever. It stops (exit 1) saying so, with the resume command."""
    run_file = _run_file(tmp_path, synth_stores, "slurm-lost")
    with _run_with_parts(run_file, tmp_path, "slurm-lost") as (proc, _parts):
        jobs = [line.split()[0] for line in _jobs_named("gagebench-slurm-lost")]
        assert len(jobs) == 2, jobs
        subprocess.run(["scancel", *jobs], check=True, timeout=30)
        _, stderr = proc.communicate(timeout=120)  # it waited for ever before
    assert proc.returncode == 1, stderr
    assert "Traceback" not in stderr, stderr
    assert (
        f"ERROR gagebench: every SLURM worker job ended while the run was computing (jobs "
        f"{', '.join(sorted(jobs))} are no longer in the queue): their walltime "
        "(gagebench.cluster.slurm.walltime = 00:15:00) may be shorter than the run" in stderr
    )
    assert f"resume with: gagebench run --config {run_file} --set run_id=slurm-lost" in stderr
    assert _no_jobs_left("gagebench-slurm-lost") == []


def test_jobs_that_cannot_start_are_an_error_and_cancelled(
    slurm_conf: str, synth_stores: Path, tmp_path: Path
) -> None:
    run_file = _run_file(
        tmp_path,
        synth_stores,
        "slurm-pending",
        job_extra_directives=["--begin=now+3600"],  # held in the queue for an hour
        wait_timeout=5,
    )
    proc = subprocess.run(
        [*GAGEBENCH, "run", "--config", str(run_file), "--set", "gage_limit=20"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert re.search(
        r"no SLURM worker job started within 5 s \(squeue: \d+ PENDING BeginTime; \d+ PENDING "
        r"BeginTime\): the partition may be busy or the job refused; raise "
        r"gagebench\.cluster\.slurm\.wait_timeout",
        proc.stderr,
    ), proc.stderr
    assert _no_jobs_left("gagebench-slurm-pending") == []


def test_a_job_slurm_refuses_is_one_error_at_once(
    slurm_conf: str, synth_stores: Path, tmp_path: Path
) -> None:
    """A partition that does not exist, or more memory than a node has: sbatch --test-only
    says so before any job is submitted (no wait, no tracebacks of failed submissions)."""
    for setting, said in (
        ({"queue": "nosuch"}, "invalid partition specified: nosuch"),
        ({"memory": "900GiB"}, "Requested node configuration is not available"),
    ):
        run_file = _run_file(tmp_path, synth_stores, "slurm-refused", **setting)
        started = time.monotonic()
        proc = subprocess.run(
            [*GAGEBENCH, "run", "--config", str(run_file), "--set", "gage_limit=20"],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert proc.returncode == 1, proc.stderr
        assert time.monotonic() - started < 60  # wait_timeout is 120 s: it was not waited
        assert "Traceback" not in proc.stderr
        assert "ERROR gagebench: SLURM refuses the worker job (" in proc.stderr
        assert said in proc.stderr
        assert "check gagebench.cluster.slurm.queue" in proc.stderr
        assert _jobs_named("gagebench-slurm-refused") == []


def test_without_a_reachable_controller_the_error_says_so(
    slurm_conf: str, synth_stores: Path, tmp_path: Path
) -> None:
    """sbatch whose controller does not answer (not a login node, slurmctld down): one
    line that says so, not a hint at the settings."""
    run_file = _run_file(tmp_path, synth_stores, "slurm-nocontroller")
    conf = Path(slurm_conf).read_text().replace("SlurmctldPort=6817", "SlurmctldPort=6899")
    (tmp_path / "elsewhere.conf").write_text(conf)  # a port nothing listens on
    proc = subprocess.run(
        [*GAGEBENCH, "run", "--config", str(run_file), "--set", "gage_limit=20"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "SLURM_CONF": str(tmp_path / "elsewhere.conf")},
    )
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "ERROR gagebench: sbatch cannot reach a SLURM controller (" in proc.stderr
    assert "Unable to contact slurm controller" in proc.stderr
    assert "run gagebench on a login node" in proc.stderr
