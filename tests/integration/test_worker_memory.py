"""Workers that die of memory stop the run with one line (real LocalClusters, real worker
processes killed by Dask's nanny or by themselves): it names the memory setting and
batch_size and gives the command that resumes the run, which does resume it. Before,
``memory_limit=60MB`` restarted the worker forever and ``200MB`` ended in a bare
``KilledWorker``."""

from __future__ import annotations

import os
import shlex
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


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from gagebench.synth import synthesize

    root = tmp_path_factory.mktemp("stores")
    made = synthesize(str(root), n_gages=8, start="2001-01-01", end="2003-12-31", seed=2)
    return dict(made.to_config_dict())


def _run_file(folder: Path, stores: dict[str, Any]) -> Path:
    settings = {
        **stores,
        "output": str(folder / "out"),
        "report": False,
        "batch_size": 4,
        "cluster": {"backend": "local", "local": {"n_workers": 1}},
    }
    path = folder / "run.yaml"
    path.write_text(yaml.safe_dump({"gagebench": settings}))
    return path


def _gagebench(args: list[str], cwd: Path, timeout: float = 150) -> Any:
    return subprocess.run(
        [*GAGEBENCH, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.mark.timeout(400)
@pytest.mark.parametrize("limit", ["60MB", "200MB"])
def test_workers_out_of_memory_stop_the_run_naming_the_settings_and_the_resume_command(
    stores: dict[str, Any], tmp_path: Path, limit: str
) -> None:
    _run_file(tmp_path, stores)
    t0 = time.monotonic()
    result = _gagebench(
        ["run", "-c", "run.yaml", "--set", f"cluster.local.memory_limit={limit}"], tmp_path
    )
    elapsed = time.monotonic() - t0
    assert result.returncode == 1, result.stderr[-3000:]
    assert elapsed < 120, f"took {elapsed:.0f} s to stop"
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    ours = [line for line in result.stderr.splitlines() if "gagebench" in line.split(":")[0]]
    warning = [line for line in ours if line.startswith("WARNING") and "workers have" in line]
    assert warning, ours
    assert "gagebench.cluster.local.memory_limit" in warning[0], warning
    errors = [line for line in ours if line.startswith("ERROR")]
    assert len(errors) == 1, ours
    error = errors[0]
    assert "out of memory" in error
    assert "gagebench.cluster.local.memory_limit" in error, error
    assert "batch_size" in error, error
    command = error.split("resume with: ", 1)[1]
    assert command.startswith("gagebench run -c run.yaml --set run_id=run-"), command
    assert command.endswith("--set cluster.local.memory_limit=1GiB"), command
    assert f"memory_limit={limit}" not in command

    if limit == "60MB":  # the command it gives resumes the run and finishes it
        words = shlex.split(command)
        assert words[0] == "gagebench"
        resumed = _gagebench(words[1:], tmp_path)
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        run_id = words[words.index("--set") + 1].split("=", 1)[1]
        assert (tmp_path / "out" / run_id / "manifest.json").exists()


def _kill_own_worker(element: Any) -> Any:
    os._exit(1)


@pytest.mark.timeout(120)
def test_a_batch_that_kills_its_workers_is_killed_worker_translated(tmp_path: Path) -> None:
    """A batch whose worker dies (as the kernel's OOM killer does: no nanny event) fails
    with Dask's KilledWorker; the loop turns it into WorkersOutOfMemory at once, with no
    batch retries."""
    import dask
    from distributed import Client, LocalCluster

    from gagebench.batches import stream_with_retries
    from gagebench.workermemory import WorkersOutOfMemory

    with (
        dask.config.set({"distributed.scheduler.allowed-failures": 1}),
        LocalCluster(
            n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
    ):
        submitted: list[int] = []

        def submit(element: tuple[int, tuple[str, ...]]) -> Any:
            submitted.append(element[0])
            return client.submit(_kill_own_worker, element, pure=False)

        with pytest.raises(WorkersOutOfMemory, match=r"KilledWorker: 2 workers died in batch 0"):
            list(stream_with_retries(client, submit, [(0, ("a",))], 2, attempts=3))
        assert submitted == [0], "a batch that killed its workers was run again"
