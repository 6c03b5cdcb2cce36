"""``gagebench report`` and ``compare`` on runs that are not finished, and ``compare`` with
a model the run does not have, through the real entry point in a subprocess: one line
each, exit 2, naming the run's state (unfinished, or in progress by host and pid) and the
exact command that resumes it (which does resume it), or the models the run has."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.integration

_SCRIPT = Path(sys.executable).with_name("gagebench")
GAGEBENCH = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "gagebench.cli"]


def gagebench(*args: str, cwd: Path | None = None) -> Any:
    return subprocess.run(
        [*GAGEBENCH, *args], cwd=cwd, capture_output=True, text=True, timeout=150, check=False
    )


def one_error(result: Any, code: int) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == code, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1, result.stderr
    return errors[0]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished run (models named as an older gagebench wrote them: nwm_v3), made in
    a folder of its own with a relative run file, as a user would."""
    from gagebench.synth import synthesize

    folder = tmp_path_factory.mktemp("runs")
    made = synthesize(str(folder / "stores"), n_gages=8, start="2001-01-01", end="2003-12-31")
    stores = dict(made.to_config_dict())
    stores["models"] = {"nwm_v3": stores["models"]["nwm"], "nhm": stores["models"]["nhm"]}
    settings = {
        **stores,
        "output": "out",
        "report": False,
        "batch_size": 4,
        "cluster": {"backend": "local", "local": {"n_workers": 1, "memory_limit": "1GiB"}},
    }
    (folder / "run.yaml").write_text(yaml.safe_dump({"gagebench": settings}))
    result = gagebench("run", "-q", "-c", "run.yaml", cwd=folder)
    assert result.returncode == 0, result.stderr
    (run,) = (folder / "out").iterdir()
    return run


def _unfinish(run: Path) -> None:
    """What a run killed before its commit leaves: its parts, no outputs, no manifest."""
    for path in run.iterdir():
        if path.name != "_parts":
            shutil.rmtree(path) if path.is_dir() else path.unlink()


def test_compare_names_the_models_the_run_has(run_dir: Path) -> None:
    line = one_error(gagebench("compare", str(run_dir), "--models", "nwm-v3", "nhm"), 2)
    assert "model 'nwm-v3' (A) is not in" in line
    has = line.split("it has the model(s) ", 1)[1].split(". ", 1)[0]
    assert sorted(has.split(", ")) == ["'nhm'", "'nwm_v3'"], line
    assert "Did you mean 'nwm_v3'?" in line
    ok = gagebench("compare", str(run_dir), "--models", "nwm_v3", "nhm")
    assert ok.returncode == 0, ok.stderr


def test_report_of_a_run_in_progress_names_its_process(run_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / run_dir.name
    shutil.copytree(run_dir / "_parts", copy / "_parts")
    lease = {"token": "t", "host": socket.gethostname(), "pid": os.getpid(),
             "started": time.time(), "heartbeat": time.time(), "ttl_s": 60.0}  # fmt: skip
    (copy / "_lock.json").write_text(json.dumps(lease))
    line = one_error(gagebench("report", str(copy)), 2)
    assert f"in progress (host {socket.gethostname()}, pid {os.getpid()}, heartbeat" in line
    assert "once it has finished" in line
    (copy / "_lock.json").write_text(json.dumps({**lease, "heartbeat": time.time() - 600}))
    line = one_error(gagebench("compare", str(copy)), 2)
    assert "unfinished" in line
    assert "Resume it with: " in line


@pytest.mark.timeout(300)
def test_report_and_compare_of_an_unfinished_run_give_the_resume_command(run_dir: Path) -> None:
    _unfinish(run_dir)
    for command in (("report", str(run_dir)), ("compare", str(run_dir))):
        line = one_error(gagebench(*command), 2)
        assert f"is run {run_dir.name}, unfinished (2 of 2 batches saved" in line, line
        assert "no manifest.json" in line
        resume = line.split("Resume it with: ", 1)[1]
        folder = run_dir.parents[1]
        assert resume == f"cd {folder} && gagebench run -q -c run.yaml --set run_id={run_dir.name}"

    words = shlex.split(resume.split(" && ", 1)[1])
    resumed = gagebench(*words[1:], cwd=run_dir.parents[1])
    assert resumed.returncode == 0, resumed.stderr
    assert (run_dir / "manifest.json").exists()
    assert gagebench("report", str(run_dir)).returncode == 0
