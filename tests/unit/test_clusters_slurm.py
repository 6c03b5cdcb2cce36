"""The slurm backend without a SLURM cluster: its settings schema (defaults from
gagebench.yaml, messages naming the key) and the job script dask-jobqueue writes from them.
The backend against a real one-node SLURM is tests/slurm/test_slurm_backend.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gagebench.clusters import backend_class, check_settings, cluster_client, get_backend
from gagebench.clusters.slurm import SlurmBackend, SlurmSettings
from gagebench.config import load_config
from gagebench.defaults import PACKAGED_DEFAULTS
from gagebench.errors import ClusterError, ConfigError


def _cfg(tmp_path: Path, **overrides: object):
    return load_config(
        output=str(tmp_path / "out"),
        overrides={"cluster.backend": "slurm", "run_id": "slurm-unit", **overrides},
    )


def test_the_schema_is_the_yaml_section() -> None:
    section = PACKAGED_DEFAULTS["cluster"]["slurm"]
    assert backend_class("slurm") is SlurmBackend
    assert set(SlurmSettings.model_fields) == set(section)
    assert SlurmBackend.settings({}) == dict(section)
    assert SlurmBackend.memory_setting() == "gagebench.cluster.slurm.memory"
    assert SlurmBackend.started_here  # its own worker jobs: tuned like local's


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("jobs", 0, r"gagebench\.cluster\.slurm\.jobs: expected an integer >= 1, got 0"),
        ("jobs", "two", r"gagebench\.cluster\.slurm\.jobs: expected an integer >= 1, got 'two'"),
        ("cores", True, r"gagebench\.cluster\.slurm\.cores: expected an integer >= 1, got True"),
        ("memory", "lots", r"gagebench\.cluster\.slurm\.memory: expected a size like '4GiB'"),
        ("walltime", "1h", r"gagebench\.cluster\.slurm\.walltime: expected a time limit"),
        # what YAML makes of an unquoted walltime: 01:00:00
        ("walltime", 3600, r"walltime: YAML reads an unquoted time .* quote it.*\(got 3600\)"),
        (
            "queue",
            "",
            r"gagebench\.cluster\.slurm\.queue: expected a non-empty string or null, got ''",
        ),
        (
            "job_extra_directives",
            "--qos=x",
            r"job_extra_directives: expected a list of strings, got '--qos=x'",
        ),
        (
            "wait_timeout",
            0,
            r"gagebench\.cluster\.slurm\.wait_timeout: expected a number of seconds > 0, got 0",
        ),
    ],
)
def test_bad_settings_name_the_key(tmp_path: Path, key: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        check_settings(_cfg(tmp_path, **{f"cluster.slurm.{key}": value}), cluster=False)


def test_unknown_keys_and_uneven_threads_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        check_settings(_cfg(tmp_path, **{"cluster.slurm.partition": "short"}))
    assert str(info.value).startswith(
        "unknown setting(s) gagebench.cluster.slurm.partition; valid keys are: account, cores,"
    )
    # the slurm section is checked when another backend is in use, too
    with pytest.raises(ConfigError, match=r"gagebench\.cluster\.slurm\.jobs"):
        check_settings(
            _cfg(tmp_path, **{"cluster.backend": "local", "cluster.slurm.jobs": -1}), cluster=False
        )
    uneven = {"cluster.slurm.cores": 3, "cluster.slurm.processes": 2}
    with pytest.raises(ConfigError, match=r"cores \(3\) must be a multiple of processes \(2\)"):
        check_settings(_cfg(tmp_path, **uneven))


def test_a_bad_slurm_setting_fails_the_cli_before_anything_is_written(tmp_path: Path) -> None:
    out = tmp_path / "out"
    sets = {
        "cluster.backend": "slurm",
        "cluster.slurm.memory": "lots",
        "observed.url": str(tmp_path / "observed.zarr"),
        "models.nwm.url": str(tmp_path / "nwm.zarr"),
        "output": str(out),
    }
    args = [arg for key, value in sets.items() for arg in ("--set", f"{key}={value}")]
    proc = subprocess.run(
        [sys.executable, "-m", "gagebench.cli", "run", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert "gagebench.cluster.slurm.memory: expected a size like '4GiB'" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists()


def test_the_job_script_dask_jobqueue_writes_from_the_settings(tmp_path: Path) -> None:
    """dask-jobqueue's own job script (its SLURMCluster, no jobs submitted)."""
    from dask_jobqueue import SLURMCluster

    settings = {
        "cluster.slurm.queue": "short",
        "cluster.slurm.account": "hytest",
        "cluster.slurm.walltime": "00:20:00",
        "cluster.slurm.cores": 4,
        "cluster.slurm.processes": 2,
        "cluster.slurm.memory": "8GiB",
        "cluster.slurm.job_extra_directives": ["--qos=debug"],
        "cluster.slurm.job_script_prologue": ["module load python"],
        "cluster.slurm.log_directory": str(tmp_path / "logs"),
    }
    backend = get_backend(_cfg(tmp_path, **settings))
    assert isinstance(backend, SlurmBackend)
    with SLURMCluster(**backend.cluster_kwargs()) as cluster:
        script = cluster.job_script()
    lines = script.splitlines()
    for directive in (
        "#SBATCH -J gagebench-slurm-unit",  # the run id
        "#SBATCH -p short",
        "#SBATCH -A hytest",
        "#SBATCH -t 00:20:00",
        "#SBATCH --cpus-per-task=4",
        "#SBATCH --mem=8G",
        "#SBATCH --qos=debug",
        f"#SBATCH -e {tmp_path / 'logs'}/gagebench-slurm-unit-%J.err",
    ):
        assert directive in lines, (directive, script)
    assert "module load python" in lines
    worker = lines[-1]
    assert worker.startswith(f"{sys.executable} -m distributed.cli.dask_worker tcp://")
    for option in ("--nworkers 2", "--nthreads 2", "--memory-limit 4.00GiB"):
        assert option in worker, worker


def test_without_sbatch_the_error_says_where_to_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch there
    assert os.environ["PATH"] == str(tmp_path)
    with (
        pytest.raises(ClusterError, match=r"sbatch, which is not on PATH here: run gagebench on"),
        cluster_client(_cfg(tmp_path)),
    ):
        pass


def test_a_missing_extra_names_the_pip_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "dask_jobqueue", None)  # what `import` sees when absent
    with (
        pytest.raises(ClusterError, match=r"pip install 'gagebench\[slurm\]'"),
        cluster_client(_cfg(tmp_path)),
    ):
        pass


def test_ctrl_c_stays_a_keyboard_interrupt_once_dask_jobqueue_is_imported() -> None:
    """dask-jobqueue 0.9.0 replaces SIGINT's handler with ``sys.exit()`` on import: a Ctrl-C
    would end the run with exit code 0 and no resume command. The backend puts Python's
    handler back (whether or not sbatch is on PATH)."""
    code = (
        "import os, signal, time\n"
        "from gagebench.clusters.slurm import _slurm_cluster_type\n"
        "from gagebench.errors import ClusterError\n"
        "try:\n"
        "    _slurm_cluster_type()\n"
        "except ClusterError:\n"
        "    pass\n"
        "try:\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "    time.sleep(10)\n"
        "except KeyboardInterrupt:\n"
        "    print('KeyboardInterrupt')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "KeyboardInterrupt", (proc.stdout, proc.stderr)
