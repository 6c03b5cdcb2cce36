"""``.ci/slurm-up --down`` with stale pid files (a crashed daemon, a reboot): the pid may
belong to another program by now, which must be left alone. Runs only bash (no SLURM)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_down_leaves_a_process_that_reused_a_stale_pid_alone(tmp_path: Path) -> None:
    other = subprocess.Popen(["sleep", "120"])  # the program that now has the daemons' pid
    try:
        for daemon in ("slurmd", "slurmctld", "munged"):
            (tmp_path / f"{daemon}.pid").write_text(f"{other.pid}\n")
        down = subprocess.run(
            ["bash", str(ROOT / ".ci" / "slurm-up"), "--down"],
            env={**os.environ, "GAGEBENCH_SLURM_DIR": str(tmp_path)},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert down.returncode == 0, down.stderr
        assert other.poll() is None, "slurm-up --down killed a process that is no daemon of it"
        assert sorted(p.name for p in tmp_path.iterdir()) == []  # the stale files are gone
    finally:
        other.kill()
        other.wait()
