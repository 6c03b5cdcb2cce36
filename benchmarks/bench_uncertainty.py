"""Benchmark: the cost of the uncertainty suite next to the standard suite, in one process.

Target (issue 11): the standard suite plus the uncertainty suite (1000 bootstrap samples)
costs at most 2x the standard suite alone on 400 gages x 15310 days. Both are measured in
the same process on the same data, in alternating rounds so both see the same machine
load; the ratio of each round is (standard + uncertainty) / standard, and the median over
rounds is reported, with the engine on one numba thread (as in a pipeline task, where Dask
runs one batch per worker thread) and on all threads.

Data: ``_common.make_data`` (drainage-area scaled flows, seasonal cycle, storms,
AR(1) noise, intermittent gages, ~5% NaN in the observations, models with bias, noise and
timing error), float32, daily from 1979-02-01.

Usage::

    .venv/bin/python benchmarks/bench_uncertainty.py                 # 400 gages, ~1 min
    .venv/bin/python benchmarks/bench_uncertainty.py --gages 100 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

from _common import make_data


def _timed(fn: Any) -> tuple[float, float]:
    """(wall, CPU) seconds of one call."""
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w0, time.process_time() - c0


def measure(gages: int, days: int, n_samples: int, rounds: int, threads: int) -> dict[str, Any]:
    """Alternating rounds of the standard suite alone and standard + uncertainty."""
    import numba

    from gagebench.metrics import evaluate_arrays
    from gagebench.uncertainty_suite import UncertaintySettings, evaluate_models

    obs, sim, dates = make_data(gages, days, 0.05, 1)
    ids = [f"{i:08d}" for i in range(gages)]
    settings = UncertaintySettings(seed=1, n_samples=n_samples)
    numba.set_num_threads(threads)

    def standard() -> None:
        evaluate_arrays(obs, sim, dates, suites=("standard",))

    def both() -> None:
        evaluate_arrays(obs, sim, dates, suites=("standard",))
        evaluate_models(obs, {"m": sim}, dates, ids, settings, "standard")

    def hytest_both() -> None:
        evaluate_arrays(obs, sim, dates, suites=("standard",), mode="hytest")
        evaluate_models(obs, {"m": sim}, dates, ids, settings, "hytest")

    # JIT warm-up on a small slice (compile time is not part of the figures)
    evaluate_arrays(obs[:40], sim[:40], dates, suites=("standard",), mode="hytest")
    evaluate_models(obs[:40], {"m": sim[:40]}, dates, ids[:40], settings, "hytest")
    evaluate_models(obs[:40], {"m": sim[:40]}, dates, ids[:40], settings, "standard")
    ratios, cpu_ratios, alone, with_unc = [], [], [], []
    for _ in range(rounds):
        time.sleep(0.3)
        a_wall, a_cpu = _timed(standard)
        time.sleep(0.3)
        b_wall, b_cpu = _timed(both)
        ratios.append(b_wall / a_wall)
        cpu_ratios.append(b_cpu / a_cpu)
        alone.append(a_wall)
        with_unc.append(b_wall)
    hy_wall, _ = _timed(hytest_both)
    return {
        "gages": gages,
        "days": days,
        "n_samples": n_samples,
        "threads": threads,
        "rounds": rounds,
        "standard_s": statistics.median(alone),
        "standard_plus_uncertainty_s": statistics.median(with_unc),
        "ratio_wall_median": statistics.median(ratios),
        "ratio_wall_all": [round(r, 3) for r in ratios],
        "ratio_cpu_median": statistics.median(cpu_ratios),
        "uncertainty_ms_per_gage": 1000
        * (statistics.median(with_unc) - statistics.median(alone))
        / gages,
        "hytest_standard_plus_uncertainty_s": hy_wall,
    }


def main() -> None:
    """Run the measurements and print a markdown table (``--json`` keeps raw numbers)."""
    import os

    import numba

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gages", type=int, default=400)
    parser.add_argument("--days", type=int, default=15310)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()
    # numba.config sets its settings from the environment at import: no stub knows them
    all_threads = numba.config.NUMBA_NUM_THREADS  # type: ignore[attr-defined]
    results = [
        measure(args.gages, args.days, args.samples, args.rounds, t)
        for t in sorted({1, all_threads})
    ]
    load = os.getloadavg()[0]
    print(f"| measure ({args.gages} gages x {args.days} days, {args.samples} samples) | value |")
    print("|---|---|")
    for r in results:
        t = r["threads"]
        print(f"| standard suite alone, {t} thread(s) | {r['standard_s']:.3f} s |")
        print(
            f"| standard + uncertainty, {t} thread(s) | {r['standard_plus_uncertainty_s']:.3f} s |"
        )
        print(
            f"| ratio (target <= 2x), {t} thread(s), median wall | {r['ratio_wall_median']:.2f}x "
            f"(rounds {r['ratio_wall_all']}) |"
        )
        print(f"| ratio, {t} thread(s), median CPU | {r['ratio_cpu_median']:.2f}x |")
        print(f"| uncertainty alone, {t} thread(s) | {r['uncertainty_ms_per_gage']:.3f} ms/gage |")
        print(
            f"| hytest mode, standard + uncertainty, {t} thread(s) | "
            f"{r['hytest_standard_plus_uncertainty_s']:.3f} s |"
        )
    print(f"| 1-min load average at the end | {load:.2f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
