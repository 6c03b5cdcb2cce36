"""A script that calls ``gagebench.run()`` without ``if __name__ == "__main__":`` (real
script, real LocalCluster worker processes started with spawn): the workers that import it
again stop with one line saying to add the guard, the script's run fails saying the same,
and no worker starts a second run (before: a RunLockedError naming the script's own pid).
With the guard the same script finishes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

SCRIPT = """\
import gagebench

config = gagebench.load_config(
    overrides={{
        **{stores!r},
        "output": {output!r},
        "report": False,
        "batch_size": 4,
        "cluster": {{"backend": "local", "local": {{"n_workers": 1, "memory_limit": "1GiB"}}}},
    }}
)
{call}
"""


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from gagebench.synth import synthesize

    root = tmp_path_factory.mktemp("stores")
    made = synthesize(str(root), n_gages=4, start="2001-01-01", end="2002-12-31", seed=4)
    return dict(made.to_config_dict())


def _script(tmp_path: Path, stores: dict[str, Any], call: str) -> Any:
    path = tmp_path / "bench.py"
    path.write_text(SCRIPT.format(stores=stores, output=str(tmp_path / "out"), call=call))
    return subprocess.run(
        [sys.executable, str(path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )


@pytest.mark.timeout(200)
def test_a_script_without_the_main_guard_is_told_to_add_it(
    stores: dict[str, Any], tmp_path: Path
) -> None:
    result = _script(tmp_path, stores, "result = gagebench.run(config)\nprint('DONE')")
    assert result.returncode != 0
    assert "DONE" not in result.stdout
    assert "RunLockedError" not in result.stderr, result.stderr[-3000:]
    assert "in use by another gagebench run" not in result.stderr
    worker_lines = [line for line in result.stderr.splitlines() if line.startswith("gagebench: ")]
    assert worker_lines, result.stderr[-3000:]
    assert 'put the call under if __name__ == "__main__":' in worker_lines[0]
    assert str(tmp_path / "bench.py") in worker_lines[0]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("gagebench.errors.ClusterError: "), last
    assert 'under if __name__ == "__main__":' in last
    assert not list((tmp_path / "out").glob("*/manifest.json"))


@pytest.mark.timeout(200)
def test_the_same_script_with_the_guard_runs(stores: dict[str, Any], tmp_path: Path) -> None:
    call = 'if __name__ == "__main__":\n    result = gagebench.run(config)\n    print("DONE")'
    result = _script(tmp_path, stores, call)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "DONE" in result.stdout
    assert len(list((tmp_path / "out").glob("*/manifest.json"))) == 1
