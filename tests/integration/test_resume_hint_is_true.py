"""The resume command a stopped run prints is true: typed as printed, it resumes the same
run (same id, only the missing batches), also for a ``{time}`` run id, whose plain rerun
would start a new run, and for a run started with ``--force``, whose rerun would delete
the saved batches. Real parts: the CLI in a subprocess, a LocalCluster, stores on disk."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import fsspec
import pytest
import yaml

from run_parts import wait_for_parts

pytestmark = [pytest.mark.integration, pytest.mark.slow]

GAGEBENCH = [sys.executable, "-m", "gagebench.cli"]


@pytest.fixture(scope="module")
def local_stores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    from gagebench.synth import synthesize

    root = tmp_path_factory.mktemp("stores")
    stores = synthesize(
        str(root), n_gages=12, models=("nwm",), seed=5, start="2001-01-01", end="2012-12-31"
    )
    return stores.to_config_dict()


def test_a_terminated_time_id_run_started_with_force_resumes_with_the_printed_command(
    local_stores: dict[str, object], tmp_path: Path
) -> None:
    settings = dict(local_stores)
    settings.update(
        {
            "run_id": "nightly-{time}",
            "output": "out",
            "report": False,
            "batch_size": 1,
            "suites": ["standard", "uncertainty"],
            "uncertainty": {"n_samples": 4000, "seed": 1},
            "cluster": {"backend": "local", "local": {"n_workers": 1, "memory_limit": "1GiB"}},
        }
    )
    (tmp_path / "run.yaml").write_text(yaml.safe_dump({"gagebench": settings}))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [*GAGEBENCH, "run", "--force", "-c", "run.yaml"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env=env,
    )
    try:
        fs = fsspec.filesystem("file")
        parts: list[str] = []
        for _ in range(600):  # the run folder's name is known once it exists
            found = list((tmp_path / "out").glob("nightly-*/_parts"))
            if found:
                parts = wait_for_parts(proc, fs, str(found[0]), count=2)
                break
            if proc.poll() is not None:
                break
            time.sleep(0.1)
        assert proc.poll() is None, "the run ended before it could be stopped"
        assert len(parts) >= 2, "no parts appeared"
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 143, stderr
    run_id = found[0].parent.name
    assert "Traceback" not in stderr
    printed = re.search(r"resume with: (.+?)$", stderr, re.MULTILINE)
    assert printed, stderr
    command = printed.group(1).strip()
    words = shlex.split(command)
    assert "--force" not in words, command  # --force would delete the saved batches
    assert f"run_id={run_id}" in words, command  # nightly-{time} would start a new run
    saved = len(list(found[0].glob("batch-*.parquet")))
    assert words[:2] == ["gagebench", "run"], command
    again = subprocess.run(
        [*GAGEBENCH, *words[1:]],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert again.returncode == 0, again.stderr
    assert f"resuming run {run_id}: {saved} of 12 batches already done" in again.stderr
    assert [p.name for p in (tmp_path / "out").iterdir()] == [run_id]
    manifest = json.loads((tmp_path / "out" / run_id / "manifest.json").read_text())
    assert manifest["run_id"] == run_id
