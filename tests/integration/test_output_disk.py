"""A local output that cannot be written, through the real command line.

Real file systems, no fakes: a full disk is a 1 MiB tmpfs mounted here and filled up; a
read-only output is a tmpfs mounted read-only (EROFS). Mounting needs root with
CAP_SYS_ADMIN (as in the CI container); elsewhere those tests are skipped, saying why.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.integration

_SCRIPT = Path(sys.executable).with_name("gagebench")
GAGEBENCH = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "gagebench.cli"]
PAGE = 4096


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from gagebench.synth import synthesize

    root = tmp_path_factory.mktemp("stores")
    made = synthesize(str(root), n_gages=12, start="2001-01-01", end="2004-12-31", seed=5)
    return dict(made.to_config_dict())


def run_cli(tmp_path: Path, stores: dict[str, Any], output: Path) -> subprocess.CompletedProcess:
    settings = {
        **stores,
        "output": str(output),
        "run_id": "disk",
        "report": False,
        "batch_size": 4,
        "cluster": {"backend": "local", "local": {"n_workers": 1, "memory_limit": "1GiB"}},
    }
    run_file = tmp_path / "run.yaml"
    run_file.write_text(yaml.safe_dump({"gagebench": settings}))
    return subprocess.run(
        [*GAGEBENCH, "run", "-c", str(run_file)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def one_error(result: subprocess.CompletedProcess, code: int) -> str:
    """The one ERROR line of a run that exited with ``code`` and no traceback."""
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == code, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1, result.stderr
    return errors[0]


@contextlib.contextmanager
def tmpfs(where: Path, *options: str) -> Iterator[Path]:
    """A tmpfs mounted at ``where`` (skips the test where mounting is not allowed)."""
    where.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", ",".join(["size=1m", *options]), "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN): {mounted.stderr}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(disk: Path, leave: int) -> None:
    """Fill ``disk`` up, then free ``leave`` bytes (whole pages)."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as fh, contextlib.suppress(OSError):
        while True:
            fh.write(b"\0" * PAGE)
    size = filler.stat().st_size
    with open(filler, "r+b") as fh:
        fh.truncate(max(size - leave, 0))


def test_a_full_disk_on_a_real_tmpfs_says_no_space_and_leaves_no_temporary(
    stores: dict[str, Any], tmp_path: Path
) -> None:
    with tmpfs(tmp_path / "disk") as disk:
        fill(disk, leave=6 * PAGE)  # the lease and the plan fit, the batches do not
        result = run_cli(tmp_path, stores, disk / "out")
        line = one_error(result, 1)
        assert f"no space left on device at {disk / 'out' / 'disk'}" in line, line
        assert "run_id=disk" in line, line
        assert "credentials" not in line
        left = [p.name for p in disk.rglob("*") if ".tmp-" in p.name]
        assert not left, left


def test_an_output_path_that_is_a_file_is_one_line(stores: dict[str, Any], tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    line = one_error(run_cli(tmp_path, stores, blocker), 2)
    assert str(blocker / "disk") in line, line
    assert "a part of the path is a file, not a folder: check gagebench.output" in line, line


def test_a_read_only_output_mount_is_one_line(stores: dict[str, Any], tmp_path: Path) -> None:
    with tmpfs(tmp_path / "ro", "ro") as disk:
        line = one_error(run_cli(tmp_path, stores, disk / "out"), 2)
        assert str(disk / "out" / "disk") in line, line
        assert "the file system is read-only: check gagebench.output" in line, line
