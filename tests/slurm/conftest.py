"""A real one-node SLURM for the slurm backend (started by ``.ci/slurm-up``).

The fixture starts it when the SLURM and munge programs are installed (``.ci/run``
installs them); without them the tests are skipped, except in CI (``CI`` set, as GitHub
Actions does), where a missing SLURM is a failure, not a skip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROGRAMS = ("slurmctld", "slurmd", "munged", "sbatch", "squeue", "scancel")


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="session")
def slurm_conf(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """SLURM_CONF of a running one-node cluster (set in this process's environment)."""
    missing = [p for p in PROGRAMS if shutil.which(p) is None]
    if missing:
        why = f"no SLURM here ({', '.join(missing)} missing): run .ci/slurm-up (as root)"
        if _in_ci():
            pytest.fail(f"{why}; CI must run the slurm tests (.ci/run calls .ci/slurm-up)")
        pytest.skip(why)
    up = subprocess.run(
        ["bash", str(ROOT / ".ci" / "slurm-up"), "--no-install"],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert up.returncode == 0, f".ci/slurm-up failed:\n{up.stdout}\n{up.stderr}"
    conf = str(Path(os.environ.get("GAGEBENCH_SLURM_DIR", "/tmp/gagebench-slurm")) / "slurm.conf")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SLURM_CONF", conf)
        yield conf


@pytest.fixture(scope="session")
def synth_stores(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20 synthetic gages (observed, nwm, nhm) written by ``gagebench synth``."""
    root = tmp_path_factory.mktemp("slurm-stores")
    subprocess.run(
        [sys.executable, "-m", "gagebench.cli", "synth", str(root), "--gages", "20"],
        capture_output=True,
        check=True,
        timeout=300,
    )
    return root
