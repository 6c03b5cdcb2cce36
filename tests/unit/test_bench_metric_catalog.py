"""Smoke test of ``benchmarks/bench_metric_catalog.py`` at a tiny size (no timing asserted):
the script runs end to end through its command line and prints its table."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_metric_catalog.py"


def test_bench_metric_catalog_runs_on_a_tiny_size(tmp_path: Path) -> None:
    out = tmp_path / "numbers.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--gages", "6", "--days", "730", "--rounds", "1",
         "--json", str(out)],
        capture_output=True, text=True, timeout=300, check=False, env=dict(os.environ),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "| suite set | seconds |" in proc.stdout
    assert "<= 1.5x" in proc.stdout  # the catalog's row and its target
    import json

    numbers = json.loads(out.read_text())
    assert numbers["gages"] == 6
    assert numbers["days"] == 730
    measures = [row["measure"] for row in numbers["rows"]]
    assert measures[:2] == ["catalog", "every per-day suite"]
    assert ('by="season"' in measures) == numbers["by_supported"]
    every = numbers["rows"][1]["suites"]
    assert "standard" in every
    assert "dscore" in every
    assert "uncertainty" not in every
