"""Benchmark: the cost of the metric catalog (issue 23) next to the standard suite alone.

Targets (issue 23), on 400 gages x 15310 days in the same process:

- the catalog's suites (standard + every per-day suite the registry adds beyond HyTEST's
  ``standard`` and ``dscore``: ``kge``, ``errors``, ``benchmark`` once merged) cost at
  most 1.5x ``evaluate_arrays(..., suites=("standard",))``;
- a breakdown ``by="season"`` of those suites
  (``gagebench.metrics.breakdown.evaluate_groups``, the kernels ``evaluate(..., by=)`` and
  runs use) costs at most 2x the same suites without ``by`` (measured only when the
  engine has breakdowns: a feature test).

Every per-day suite of the registry (``dscore`` included) is also timed, for the record
(no target). The suite lists are derived from ``gagebench.metrics.registry``, so suites
added later are included without editing this file.

Data: ``gagebench.synth`` (the demo's realistic flows: rain-driven fast and slow
reservoirs, seasonal cycles, intermittent gages, record gaps; a model with bias, timing
and noise errors), written once to a temporary zarr store and read back as float32
(gage, day) arrays. Each measure is timed in alternating rounds with its baseline (so
both see the same machine load) and the median ratio over rounds is reported, in wall and
CPU time, on ``--threads`` numba threads (default 1, as in a pipeline task, where Dask
runs one batch per worker thread). JIT compilation is warmed up first.

Usage::

    .venv/bin/python benchmarks/bench_metric_catalog.py                 # 400 gages, ~1-2 min
    .venv/bin/python benchmarks/bench_metric_catalog.py --gages 50 --rounds 3
    .venv/bin/python benchmarks/bench_metric_catalog.py --check        # exit 1 on a miss
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

#: Suites HyTEST defines (and the engine had before issue 23): not part of the catalog.
HYTEST_SUITES = ("standard", "dscore")
CATALOG_TARGET = 1.5
BY_TARGET = 2.0
START = "1979-02-01"


def per_day_suites() -> tuple[str, ...]:
    """Every suite of the registry computed from the paired days, in its order: all but
    ``uncertainty``, which is computed apart, over water-year sums of all models."""
    from gagebench.metrics import registry

    return tuple(s for s in registry.SUITES if s != "uncertainty")


def catalog_suites() -> tuple[str, ...]:
    """``standard`` plus the per-day suites beyond HyTEST's (the issue's measure)."""
    return ("standard", *(s for s in per_day_suites() if s not in HYTEST_SUITES))


def grouped_engine() -> Callable[..., Any] | None:
    """The engine's breakdown kernel (``evaluate_groups(obs, sim, dates, by, suites=)``);
    None when this engine has no breakdowns."""
    try:
        from gagebench.metrics.breakdown import evaluate_groups
    except ImportError:
        return None
    return evaluate_groups


def make_data(gages: int, days: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(observed, simulated, dates): float32 (gage, day) flows from ``gagebench.synth``."""
    import xarray as xr

    from gagebench.synth import synthesize

    end = str(np.datetime64(START, "D") + np.timedelta64(days - 1, "D"))
    with tempfile.TemporaryDirectory(prefix="gagebench-bench-") as folder:
        stores = synthesize(
            folder, n_gages=gages, end=end, start=START, models=("nwm",), seed=seed,
            missing_fraction=0.0,
        )  # fmt: skip
        with (
            xr.open_zarr(stores.observed_url) as observed,
            xr.open_zarr(stores.model_urls["nwm"]) as model,
        ):
            obs = observed["streamflow"].transpose("gage_id", "time")
            sim = model["streamflow"].transpose("gage_id", "time").reindex(gage_id=obs["gage_id"])
            dates = obs["time"].values.astype("datetime64[D]")
            return obs.values.astype(np.float32), sim.values.astype(np.float32), dates


def _timed(fn: Callable[[], Any]) -> tuple[float, float]:
    """(wall, CPU) seconds of one call."""
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w0, time.process_time() - c0


def _pair(base: Callable[[], Any], other: Callable[[], Any], rounds: int) -> dict[str, Any]:
    """Alternating rounds of ``base`` and ``other``: medians of each and of the ratios."""
    walls, others, ratios, cpu_ratios = [], [], [], []
    for _ in range(rounds):
        time.sleep(0.2)
        a_wall, a_cpu = _timed(base)
        time.sleep(0.2)
        b_wall, b_cpu = _timed(other)
        walls.append(a_wall)
        others.append(b_wall)
        ratios.append(b_wall / a_wall)
        cpu_ratios.append(b_cpu / a_cpu if a_cpu > 0 else float("nan"))
    return {
        "base_s": statistics.median(walls),
        "other_s": statistics.median(others),
        "ratio": statistics.median(ratios),
        "ratio_cpu": statistics.median(cpu_ratios),
        "ratios": [round(r, 3) for r in ratios],
    }


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Every measure of the benchmark, in this process."""
    import numba

    from gagebench.metrics import evaluate_arrays

    t0 = time.perf_counter()
    obs, sim, dates = make_data(args.gages, args.days, args.seed)
    data_s = time.perf_counter() - t0
    numba.set_num_threads(args.threads)
    catalog, every = catalog_suites(), per_day_suites()
    grouped = grouped_engine()  # None where the engine has no breakdowns (a feature test)
    by = grouped is not None

    def run(suites: tuple[str, ...], by: str | None = None) -> Callable[[], Any]:
        if by is None:
            return lambda: evaluate_arrays(obs, sim, dates, suites=suites)
        assert grouped is not None
        return lambda: grouped(obs, sim, dates, by, suites=suites)

    warm = min(obs.shape[0], 8)  # compile every kernel on a slice first
    for suites in {("standard",), catalog, every}:
        evaluate_arrays(obs[:warm], sim[:warm], dates, suites=suites)
        if grouped is not None:
            grouped(obs[:warm], sim[:warm], dates, "season", suites=suites)
    rows: list[dict[str, Any]] = []
    standard = run(("standard",))
    found = _pair(standard, run(catalog), args.rounds)
    rows.append({"measure": "catalog", "suites": catalog, "baseline": ["standard"],
                 "target": CATALOG_TARGET, **found})  # fmt: skip
    found = _pair(standard, run(every), args.rounds)
    rows.append({"measure": "every per-day suite", "suites": every, "baseline": ["standard"],
                 "target": None, **found})  # fmt: skip
    if by:
        found = _pair(run(catalog), run(catalog, by="season"), args.rounds)
        rows.append({"measure": 'by="season"', "suites": catalog, "baseline": list(catalog),
                     "target": BY_TARGET, **found})  # fmt: skip
    return {
        "gages": int(obs.shape[0]),
        "days": int(obs.shape[1]),
        "nan_fraction": float(np.isnan(obs).mean()),
        "threads": args.threads,
        "rounds": args.rounds,
        "data_s": round(data_s, 2),
        "by_supported": by,
        "load_average": os.getloadavg()[0],
        "rows": rows,
    }


def passed(row: dict[str, Any]) -> bool | None:
    """Whether a measure met its target (None: no target)."""
    return None if row["target"] is None else bool(row["ratio"] <= row["target"])


def table(result: dict[str, Any]) -> str:
    """The measures as a markdown table."""
    lines = [
        f"{result['gages']} gages x {result['days']} days (gagebench.synth, float32, "
        f"{100 * result['nan_fraction']:.1f}% NaN obs), {result['threads']} numba thread(s), "
        f"median of {result['rounds']} alternating rounds, 1-min load average "
        f"{result['load_average']:.2f}",
        "",
        "| suite set | seconds | baseline | baseline seconds | ratio (wall) | ratio (CPU) "
        "| rounds | target | pass/fail |",
        "|---|---:|---|---:|---:|---:|---|---:|---|",
    ]
    for row in result["rows"]:
        target = "–" if row["target"] is None else f"<= {row['target']:g}x"
        verdict = {None: "–", True: "pass", False: "FAIL"}[passed(row)]
        suites = " + ".join(row["suites"])
        if row["measure"].startswith("by="):
            suites += f", {row['measure']}"
        lines.append(
            f"| {suites} | {row['other_s']:.3f} | {' + '.join(row['baseline'])} | "
            f"{row['base_s']:.3f} | {row['ratio']:.2f}x | {row['ratio_cpu']:.2f}x | "
            f"{row['ratios']} | {target} | {verdict} |"
        )
    if not result["by_supported"]:
        lines += ["", 'by="season": not measured (this engine has no breakdowns)']
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Measure, print the table; with ``--check``, exit 1 when a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gages", type=int, default=400)
    parser.add_argument("--days", type=int, default=15310)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1, help="numba threads (default 1)")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--json", metavar="FILE", help="also write the raw numbers here")
    args = parser.parse_args(argv)
    result = measure(args)
    print(table(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    missed = [row["measure"] for row in result["rows"] if passed(row) is False]
    if missed and args.check:
        print(f"target missed: {', '.join(missed)}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
