"""numba's cache of the kernels where the package is read-only to its user.

A package installed where its user cannot write (a root-owned site-packages, a container
image) has numba cache the kernels in the user's cache folder (``~/.cache/numba/...``),
not beside ``kernels.py``:

- the stale-kernel guard's message named ``metrics/__pycache__`` there, where no cache
  file is: deleting what it said left the import failing;
- where the user cannot write there either (a read-only home, an unwritable
  ``NUMBA_CACHE_DIR``), ``import gagebench`` failed ("cannot cache function ...: no
  locator available"): the kernels are now compiled without the cache, with a warning.

Read-only is real: each run is a process in its own mount namespace (``unshare -m``)
where the package copy (and, for the second test, the home and cache folders) are
read-only bind mounts, so even root cannot write there (EROFS), wherever the checkout is.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "gagebench"
UNSHARE = shutil.which("unshare")


def _can_mount_read_only() -> bool:
    if UNSHARE is None or os.geteuid() != 0:
        return False
    probe = subprocess.run([UNSHARE, "-m", "true"], capture_output=True, timeout=30)
    return probe.returncode == 0


def _with_read_only(
    code: str, env: dict[str, str], read_only: list[Path]
) -> subprocess.CompletedProcess[str]:
    """``python -c code`` in a new mount namespace where ``read_only`` are read-only."""
    assert UNSHARE is not None
    mounts = " && ".join(
        f"mount --bind {shlex.quote(str(p))} {shlex.quote(str(p))} && "
        f"mount -o remount,bind,ro {shlex.quote(str(p))}"
        for p in read_only
    )
    script = f'{mounts} && exec "$0" -c "$1"'
    return subprocess.run(
        [UNSHARE, "-m", "sh", "-c", script, sys.executable, code],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


pytestmark = pytest.mark.skipif(
    not _can_mount_read_only(),
    reason="needs root and unshare -m (a mount namespace) for read-only bind mounts",
)


@pytest.fixture
def install() -> Iterator[Path]:
    """A copy of the package (mounted read-only by each run)."""
    root = Path(tempfile.mkdtemp(prefix="gagebench-ro-", dir="/tmp"))
    try:
        src = root / "site"
        shutil.copytree(PACKAGE, src / "gagebench", ignore=shutil.ignore_patterns("__pycache__"))
        yield src
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _env(src: Path, home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NUMBA_", "XDG_", "PYTHON"))}
    env.update({"HOME": str(home), "PYTHONPATH": str(src), "PYTHONDONTWRITEBYTECODE": "1"})
    return {**env, **extra}


@pytest.mark.timeout(600)
def test_the_stale_cache_message_names_the_user_cache_of_a_read_only_install(
    install: Path,
) -> None:
    src = install
    home = src.parent / "home"
    home.mkdir()  # writable: numba caches there, the package being read-only
    env = _env(src, home)
    code = "import gagebench.metrics.engine"
    first = _with_read_only(code, env, [src])
    assert first.returncode == 0, first.stderr
    assert not list(src.rglob("*.nbi"))  # cached in the user's folder, not the package's
    assert list(home.rglob("kernels.*.nbi"))

    registry = src / "gagebench" / "metrics" / "registry.py"
    swap = "\nMETRICS = (METRICS[1], METRICS[0], *METRICS[2:])\nMETRIC_BY_NAME"
    registry.write_text(registry.read_text().replace("\nMETRIC_BY_NAME", swap, 1))
    stale = _with_read_only(code, env, [src])
    assert stale.returncode == 1
    found = re.search(r"kernels\.\*\.nbc under (.+?)\), then", stale.stderr)
    assert found, stale.stderr
    named = Path(found.group(1))
    cached = list(named.glob("kernels.*.nb[ic]"))
    assert cached, f"no cache file under {named}: {stale.stderr}"
    for path in cached:
        path.unlink()  # what the message says to do
    fixed = _with_read_only(code, env, [src])
    assert fixed.returncode == 0, fixed.stderr


SCORE = """
import logging
logging.basicConfig(level=logging.WARNING)
import gagebench
from gagebench.metrics import kge, nse
print(nse([1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 5.0]), kge([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]))
"""


@pytest.mark.timeout(600)
@pytest.mark.parametrize("cache_dir", ["unset", "read-only"])
def test_gagebench_imports_and_scores_where_numba_can_cache_nowhere(
    install: Path, cache_dir: str
) -> None:
    home = install.parent / "home"
    home.mkdir()  # read-only below: numba can cache neither there nor in the package
    extra = {} if cache_dir == "unset" else {"NUMBA_CACHE_DIR": str(install.parent / "nc")}
    if extra:
        (install.parent / "nc").mkdir()
    done = _with_read_only(SCORE, _env(install, home, **extra), [install.parent])
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0.8", "1.0"]
    assert "NUMBA_CACHE_DIR to a writable folder" in done.stderr
    assert done.stderr.count("numba finds no folder") == 1  # once, not per kernel
    assert "Traceback" not in done.stderr
