"""Benchmark: a breakdown (``by=``) against its suite alone, in one process.

The same (gage, day) batch (default 400 gages x 15310 days, float32, ~5% NaN, the
realistic flows of ``_common.make_data``) is scored by ``evaluate_arrays`` (the suites
over each whole record) and by ``evaluate_groups`` (the same suites per season, month or
water year: one reorder of the days, then the per-gage kernel on each group's slice).
Rounds alternate so both see the same machine load; the best wall time and its CPU
seconds are kept (CPU seconds compare fairly on a shared machine). The issue's target:
a breakdown by season costs at most 2x its suite.

Usage::

    .venv/bin/python benchmarks/bench_breakdown.py
    .venv/bin/python benchmarks/bench_breakdown.py --gages 100 --days 5000 --rounds 2
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from _common import make_data

from gagebench.metrics import evaluate_arrays
from gagebench.metrics.breakdown import evaluate_groups


def _timed(fn: Any) -> tuple[float, float]:
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - t0, time.process_time() - c0


def main() -> None:
    """Print the table (JSON) of seconds and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gages", type=int, default=400)
    parser.add_argument("--days", type=int, default=15310)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--suites", default="standard,dscore")
    parser.add_argument("--by", default="season,month,water_year")
    args = parser.parse_args()
    obs, sim, dates = make_data(args.gages, args.days, 0.05, seed=1)
    suites = tuple(args.suites.split(","))
    groupings = args.by.split(",")
    runs: dict[str, Any] = {"suite": lambda: evaluate_arrays(obs, sim, dates, suites=suites)}
    for by in groupings:
        runs[by] = lambda by=by: evaluate_groups(obs, sim, dates, by, suites=suites)
    for fn in runs.values():  # JIT warm-up
        fn()
    best: dict[str, tuple[float, float]] = {}
    for _ in range(args.rounds):
        for name, fn in runs.items():
            wall, cpu = _timed(fn)
            if name not in best or wall < best[name][0]:
                best[name] = (wall, cpu)
    base_wall, base_cpu = best["suite"]
    table = {
        name: {
            "wall_s": round(wall, 3),
            "cpu_s": round(cpu, 3),
            "x_wall": round(wall / base_wall, 2),
            "x_cpu": round(cpu / base_cpu, 2),
        }
        for name, (wall, cpu) in best.items()
    }
    print(json.dumps({"gages": args.gages, "days": args.days, "suites": suites, **table}, indent=1))


if __name__ == "__main__":
    main()
