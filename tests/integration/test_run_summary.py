"""What ``gagebench run`` prints at the end, through the real entry point in a subprocess:
one total for one run (the summary, ``manifest.json`` and ``report.html`` agree), and a run
that evaluated no gage says why and exits 1 instead of printing ``None`` medians."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.integration

_SCRIPT = Path(sys.executable).with_name("gagebench")
GAGEBENCH = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "gagebench.cli"]


def gagebench(*args: str) -> Any:
    return subprocess.run(
        [*GAGEBENCH, *args], capture_output=True, text=True, timeout=200, check=False
    )


def _run_file(path: Path, stores: dict[str, Any], output: Path, **extra: Any) -> Path:
    settings = {
        **stores,
        "output": str(output),
        "batch_size": 4,
        "cluster": {"backend": "local", "local": {"n_workers": 1, "memory_limit": "1GiB"}},
        **extra,
    }
    path.write_text(yaml.safe_dump({"gagebench": settings}))
    return path


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from gagebench.synth import synthesize

    root = tmp_path_factory.mktemp("stores")
    made = synthesize(str(root), n_gages=6, start="2001-01-01", end="2003-12-31", seed=7)
    return dict(made.to_config_dict())


@pytest.mark.timeout(300)
def test_one_run_shows_one_total(stores: dict[str, Any], tmp_path: Path) -> None:
    cfg = _run_file(tmp_path / "run.yaml", stores, tmp_path / "out", report=True)
    result = gagebench("run", "-c", str(cfg))
    assert result.returncode == 0, result.stderr
    (run,) = (tmp_path / "out").iterdir()
    timings = json.loads((run / "manifest.json").read_text())["timings"]
    printed = re.search(r"; total ([0-9.]+) s", result.stdout)
    assert printed, result.stdout
    assert float(printed.group(1)) == round(timings["total_s"], 1)
    html = (run / "report.html").read_text()
    for key in ("total_s", "compute_s", "commit_s", "setup_s", "finished"):
        shown = re.search(rf"timings\.{key}</td><td>([^<]+)</td>", html)
        assert shown, key
        assert shown.group(1) == str(timings[key]), (key, shown.group(1), timings[key])
    # one clock: finished = started + total_s, and the parts add up to the total
    from datetime import datetime

    span = datetime.fromisoformat(timings["finished"]) - datetime.fromisoformat(timings["started"])
    assert abs(span.total_seconds() - timings["total_s"]) < 0.01
    parts = timings["setup_s"] + timings["compute_s"] + timings["commit_s"]
    assert parts <= timings["total_s"] + 0.01
    assert timings["report_s"] > 0  # drawing the report, after the run's clock stopped


@pytest.mark.timeout(300)
def test_a_run_that_evaluates_no_gage_says_why_and_exits_1(
    stores: dict[str, Any], tmp_path: Path
) -> None:
    from gagebench.synth import synthesize

    later = synthesize(str(tmp_path / "later"), n_gages=6, start="2010-01-01", end="2011-12-31")
    elsewhere = {**stores, "models": {"nwm": {"url": later.model_urls["nwm"]}}}
    cfg = _run_file(tmp_path / "run.yaml", elsewhere, tmp_path / "out", report=False)
    result = gagebench("run", "-c", str(cfg))
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 1, result.stderr
    assert "None" not in result.stdout, result.stdout
    assert "nwm: no gage evaluated (6 no_simulation); most common note: " in result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1, result.stderr
    assert "evaluated no gage (6 rows of 1 model(s): 6 no_simulation" in errors[0]
    assert "no day in common" in errors[0]  # the stores' warning at start is the reason
