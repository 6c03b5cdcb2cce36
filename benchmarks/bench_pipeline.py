"""Benchmark: the whole pipeline vs a HyTEST-notebook-style Dask bag, end to end from zarr.

Stores: synthetic, observed daily + one hourly model (``nwm``, indexed by gage_id) over the
full HyTEST period 1979-02-01..2020-12-31 (367,439 hours), for 2000 gages: ~2.9 GB of
float32 before compression, generated once into ``--stores`` and reused by later runs.

On one LocalCluster (``--workers`` processes x 1 thread), in the same run:

- ``gagebench``: :func:`gagebench.run` (batches of ``--batch-size`` gages: read,
  hourly->daily, both suites, rows streamed to part files, final commit) at each of
  ``--sizes`` gages, writing to a local folder;
- ``baseline``: what HyTEST's notebooks do - a Dask bag with one element per gage; per gage
  an xarray ``.sel(gage_id=...)`` read of observed and modeled series, a pandas resample
  of the hourly model to daily means (5 h offset), a pandas merge on the day, and the
  standard suite and D-score with NumPy/pandas/scipy, one gage at a time. On a subset
  (``--baseline-gages``) because it is slow; its rate is reported in gages/s.

Worker memory: each measured run gets a new LocalCluster (fresh worker processes),
warmed up on a few gages, and their RSS high-water mark is reset (``/proc/self/clear_refs``);
afterwards each worker's ``VmHWM`` is its peak RSS during the run. The client's peak is
measured the same way. Both pipelines also run a warm-up, so JIT/import time is excluded.

The machine is shared: besides wall-clock gages/s, the CPU seconds used by the workers and
the client (user + system, psutil) are reported, and gages per CPU second, which other
people's load does not skew.

Usage::

    .venv/bin/python benchmarks/bench_pipeline.py                  # 500 and 2000 gages
    .venv/bin/python benchmarks/bench_pipeline.py --sizes 100 --baseline-gages 20
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

# -- the HyTEST-notebook-style baseline --------------------------------------------------


def _dataset(url: str) -> Any:
    """Open a zarr store once per worker process (kinder to the baseline than HyTEST).

    Cached on the Dask worker object: this module's globals travel by value with each task.
    """
    import xarray as xr
    from distributed import get_worker

    cache = get_worker().__dict__.setdefault("_bench_datasets", {})
    if url not in cache:
        cache[url] = xr.open_zarr(url)
    return cache[url]


def _nse(o: np.ndarray, s: np.ndarray) -> float:
    return float(1 - np.mean((s - o) ** 2) / np.var(o))


def _standard_suite(o: pd.Series, s: pd.Series) -> dict[str, float]:
    """HyTEST ``Metrics_StdSuite_v1`` metrics with NumPy/scipy (the notebook's calls)."""
    from scipy import stats

    ov, sv = o.to_numpy(), s.to_numpy()
    r = stats.pearsonr(sv, ov)[0]
    alpha = np.std(sv) / np.std(ov)
    beta = np.sum(sv) / np.sum(ov)
    out = {
        "NSE": _nse(ov, sv),
        "KGE": float(1 - np.sqrt((r - 1) ** 2 + (alpha - 1) ** 2 + (beta - 1) ** 2)),
        "logNSE": _nse(np.log(np.clip(ov, 0.01, None)), np.log(np.clip(sv, 0.1, None))),
        "pbias": float(100 * np.sum(sv - ov) / np.sum(ov)),
        "rSD": float(alpha),
        "pearson": float(r),
        "spearman": float(stats.spearmanr(sv, ov)[0]),
    }
    with np.errstate(all="ignore"):
        qs30, qs80 = np.quantile(sv, 0.3), np.quantile(sv, 0.8)
        qo30, qo80 = np.quantile(ov, 0.3), np.quantile(ov, 0.8)
        m = np.log(qs30) - np.log(qs80)
        obar = np.log(qo30) - np.log(qo80)
        out["pBiasFMS"] = float(100 * (m - obar) / obar)
        low = ov <= qo30
        m = np.sum(np.log(sv[low]) - np.log(qs30))
        obar = np.sum(np.log(ov[low]) - np.log(qo30))
        out["pBiasFLV"] = float(-100 * (m - obar) / obar)
        high = ov >= np.quantile(ov, 0.98)
        out["pBiasFHV"] = float(100 * np.sum(sv[high] - ov[high]) / np.sum(ov[high]))
    return out


def _dscore(o: pd.Series, s: pd.Series) -> dict[str, float]:
    """HyTEST ``Metrics_DScore_Suite_v1``: MSE decomposition with pandas."""
    lo, ls = np.log(o.clip(lower=0.01)), np.log(s.clip(lower=0.01))
    e = ls - lo
    n = len(e)
    mse = float(np.mean(e**2))
    e_dist = float(np.var(np.sort(ls.to_numpy()) - np.sort(lo.to_numpy())))
    season = pd.Series(((pd.DatetimeIndex(o.index).month % 12) // 3), index=o.index).map(
        {0: "winter", 1: "spring", 2: "summer", 3: "fall"}
    )
    out = {
        "mse": mse,
        "e_bias": float(np.mean(e) ** 2),
        "e_dist": e_dist,
        "e_seq": float(np.var(e) - e_dist),
    }
    sq = e**2
    for name in ("winter", "spring", "summer", "fall"):
        out[name] = float(sq[season == name].sum() / n)
    ranks = lo.rank(method="first")
    bins = pd.qcut(ranks, 4, labels=["low", "below_avg", "above_avg", "high"])
    for name in ("low", "below_avg", "above_avg", "high"):
        out[name] = float(sq[bins == name].sum() / n)
    return out


def hytest_gage(gage_id: str, obs_url: str, model_url: str) -> dict[str, Any]:
    """One bag element = one gage, as in HyTEST's notebooks."""
    warnings.simplefilter("ignore")
    try:
        obs = _dataset(obs_url)["streamflow"].sel(gage_id=gage_id).load().to_series()
        hourly = _dataset(model_url)["streamflow"].sel(gage_id=gage_id).load().to_series()
    except KeyError:  # gage absent from a store
        return {"site_no": gage_id, "n_days": 0}
    daily = hourly.resample("1D", offset="5h").mean()
    daily.index = daily.index.floor("D")
    obs.index = obs.index.floor("D")
    df = pd.merge(
        obs.rename("obs").to_frame(),
        daily.rename("nwm").to_frame(),
        left_index=True,
        right_index=True,
    ).dropna()
    row: dict[str, Any] = {"site_no": gage_id, "n_days": len(df)}
    if len(df) > 10 and df["obs"].std() > 0:
        row.update(_standard_suite(df["obs"], df["nwm"]))
        row.update(_dscore(df["obs"], df["nwm"]))
    return row


# -- measurements --------------------------------------------------------------------------


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} missing from /proc/self/status")


def _reset_peak() -> int:
    Path("/proc/self/clear_refs").write_text("5")
    return _status_kib("VmRSS")


def _peak() -> int:
    return _status_kib("VmHWM")


def _cpu_s() -> float:
    """CPU seconds (user + system) this process has used."""
    import psutil

    times = psutil.Process().cpu_times()
    return float(times.user + times.system)


def _cluster_cpu_s(client: Any) -> float:
    """CPU seconds used so far by the workers and by this (client) process."""
    return sum(client.run(_cpu_s).values()) + _cpu_s()


def _worker_peaks_mib(client: Any) -> list[float]:
    return sorted(round(v / 1024, 1) for v in client.run(_peak).values())


def ensure_stores(stores: Path, n_gages: int) -> dict[str, Any]:
    """The hourly benchmark stores: reuse them when complete, else synthesize them."""
    from gagebench.synth import synthesize

    marker = stores / "bench-stores.json"
    if marker.exists():
        saved = json.loads(marker.read_text())
        if saved.get("n_gages", 0) >= n_gages:
            return dict(saved["config"])
    t0 = time.perf_counter()
    print(f"synthesizing hourly stores for {n_gages} gages into {stores} ...", file=sys.stderr)
    result = synthesize(str(stores), n_gages=n_gages, models=("nwm",), frequency="hourly", seed=0)
    config = result.to_config_dict()
    marker.write_text(
        json.dumps({"config": config, "n_gages": n_gages, "seconds": time.perf_counter() - t0})
    )
    return dict(config)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", default="/tmp/gagebench-bench/stores")
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 2000])
    parser.add_argument("--baseline-gages", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", default=None, help="also write the numbers here")
    args = parser.parse_args(argv)

    from distributed import Client, LocalCluster

    import gagebench
    from gagebench.config import load_config
    from gagebench.gages import load_gages

    stores = Path(args.stores)
    stores.mkdir(parents=True, exist_ok=True)
    store_cfg = ensure_stores(stores, max(args.sizes))
    out_dir = Path(tempfile.mkdtemp(prefix="gagebench-bench-out-"))
    ids = list(load_gages("builtin", limit=max(args.sizes))["gage_id"])
    obs_url, model_url = store_cfg["observed"]["url"], store_cfg["models"]["nwm"]["url"]
    report: dict[str, Any] = {"workers": args.workers, "batch_size": args.batch_size, "runs": []}

    def config(n: int, run_id: str) -> Any:
        return load_config(
            overrides={
                **store_cfg,
                "gages": "builtin",
                "gage_limit": n,
                "output": str(out_dir),
                "run_id": run_id,
                "batch_size": args.batch_size,
                "report": False,
            }
        )

    import dask.bag as db

    @contextlib.contextmanager
    def fresh_cluster(warm: Any) -> Iterator[Any]:
        """New worker processes per measurement, warmed up, peak RSS reset after warm-up."""
        with (
            LocalCluster(
                n_workers=args.workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=":0",
                memory_limit="6GiB",
            ) as cluster,
            Client(cluster) as client,
        ):
            warm(client)
            client.run(_reset_peak)
            yield client

    def warm_pipeline(client: Any) -> None:
        gagebench.run(config(4, f"warm-{time.time_ns()}"), client=client)

    def warm_baseline(client: Any) -> None:
        bag = db.from_sequence(ids[:2], npartitions=2).map(hytest_gage, obs_url, model_url)
        client.compute(bag).result()

    for n in args.sizes:
        with fresh_cluster(warm_pipeline) as client:
            client_base = _reset_peak()
            cpu0 = _cluster_cpu_s(client)
            t0 = time.perf_counter()
            result = gagebench.run(config(n, f"gagebench-{n}"), client=client)
            wall = time.perf_counter() - t0
            cpu = _cluster_cpu_s(client) - cpu0
            peaks = _worker_peaks_mib(client)
        report["runs"].append(
            {
                "what": "gagebench",
                "gages": n,
                "wall_s": round(wall, 2),
                "gages_per_s": round(n / wall, 1),
                "cpu_s": round(cpu, 1),
                "gages_per_cpu_s": round(n / cpu, 2),
                "worker_peak_rss_mib": peaks,
                "client_peak_growth_mib": round((_peak() - client_base) / 1024, 1),
                "statuses": result.manifest["counts"]["nwm"],
            }
        )
        print(json.dumps(report["runs"][-1]), file=sys.stderr)
        pipeline_rows = result.results

    subset = ids[: args.baseline_gages]
    with fresh_cluster(warm_baseline) as client:
        cpu0 = _cluster_cpu_s(client)
        t0 = time.perf_counter()
        bag = db.from_sequence(subset, npartitions=len(subset)).map(hytest_gage, obs_url, model_url)
        rows = client.compute(bag).result()
        wall = time.perf_counter() - t0
        cpu = _cluster_cpu_s(client) - cpu0
        base_peaks = _worker_peaks_mib(client)
    report["runs"].append(
        {
            "what": "baseline (HyTEST notebook style)",
            "gages": len(subset),
            "wall_s": round(wall, 2),
            "gages_per_s": round(len(subset) / wall, 2),
            "cpu_s": round(cpu, 1),
            "gages_per_cpu_s": round(len(subset) / cpu, 3),
            "worker_peak_rss_mib": base_peaks,
        }
    )
    print(json.dumps(report["runs"][-1]), file=sys.stderr)

    # Same numbers? (float32 engine vs float64 pandas: compare loosely)
    base = pd.DataFrame(rows).set_index("site_no")
    ours = pipeline_rows.set_index("site_no").loc[base.index]
    both = base["NSE"].notna() & ours["NSE"].notna()
    report["max_abs_diff_vs_baseline"] = {
        col: float(np.nanmax(np.abs(base.loc[both, col] - ours.loc[both, col])))
        for col in ("NSE", "KGE", "pbias", "mse", "e_seq")
    }
    fast = {r["gages"]: r for r in report["runs"] if r["what"] == "gagebench"}
    slow = report["runs"][-1]
    report["speedup"] = {
        n: round(r["gages_per_s"] / slow["gages_per_s"], 1) for n, r in fast.items()
    }
    report["speedup_cpu"] = {
        n: round(r["gages_per_cpu_s"] / slow["gages_per_cpu_s"], 1) for n, r in fast.items()
    }
    if len(fast) >= 2:
        lo, hi = min(fast), max(fast)
        report["worker_peak_ratio"] = round(
            max(fast[hi]["worker_peak_rss_mib"]) / max(fast[lo]["worker_peak_rss_mib"]), 3
        )
    shutil.rmtree(out_dir, ignore_errors=True)

    print()
    print(
        "| run | gages | wall s | gages/s | speed-up | CPU s | gages/CPU-s | speed-up (CPU) "
        "| worker peak RSS MiB |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in report["runs"]:
        ours = r["what"] == "gagebench"
        speed = report["speedup"].get(r["gages"], "") if ours else "1.0"
        speed_cpu = report["speedup_cpu"].get(r["gages"], "") if ours else "1.0"
        print(
            f"| {r['what']} | {r['gages']} | {r['wall_s']} | {r['gages_per_s']} | {speed} "
            f"| {r['cpu_s']} | {r['gages_per_cpu_s']} | {speed_cpu} | {r['worker_peak_rss_mib']} |"
        )
    print()
    print("worker peak ratio (largest/smallest size):", report.get("worker_peak_ratio"))
    print("max |gagebench - baseline| on the subset:", report["max_abs_diff_vs_baseline"])
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
