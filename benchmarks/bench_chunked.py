"""Benchmark: chunk-aware work units vs today's batching on a CHRTOUT-layout replica.

Store: a replica of the raw NWM v2.1 retrospective ``chrtout.zarr`` (published metadata:
int32 ``streamflow`` with scale_factor 0.01, blosc lz4 level 5 with shuffle, chunks of
672 hours x 30000 reaches, int reach ids unsorted against site numbers, ``gage_id``
space-padded bytes), ``--reach-chunks`` x ``--time-chunks`` chunks (default 8 x 6), with
``--gages`` gages spread over all reach chunks; plus a daily observed store (one gage per
chunk). Written once into ``--stores`` and reused.

In the same run, on one LocalCluster (``--workers`` processes x 1 thread), the gage list
in random order, both evaluating both suites through the pipeline's ``stream_batches``:

- ``chunk-aware``: :meth:`SourceSet.plan_units` at ``--batch-size`` + one read task per
  chunk column and time range (``--time-chunks-per-task``), streamed into daily means;
- ``today``: consecutive batches of ``--batch-size`` gages, each read with zarr's
  orthogonal indexing of whole columns (the reader before chunk-aware units).

Measured per mode: chunk fetches of ``streamflow`` (a counting local file system, logged
by every worker) against the minimum (needed chunks, each once), wall time, CPU seconds
of workers + client, and each worker's peak RSS (``VmHWM`` after a ``clear_refs`` reset).

Usage::

    .venv/bin/python benchmarks/bench_chunked.py                       # ~2 GB of stores
    .venv/bin/python benchmarks/bench_chunked.py --reach-chunk 3000 --gages 100  # quick
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import test_helper


def _setup_worker() -> None:
    """On a worker (whose sys.path starts with this folder too, as the client's): make
    ``counting://`` the counting file system of the replicas module."""
    test_helper("_replicas").register_counting()


def _reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")


def _peak_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def _cpu_s() -> float:
    import psutil

    times = psutil.Process().cpu_times()
    return float(times.user + times.system)


def _stores(args: argparse.Namespace) -> tuple[Any, str]:
    replicas = test_helper("_replicas")
    write_chrtout, write_daily_observed = replicas.write_chrtout, replicas.write_daily_observed

    folder = Path(args.stores)
    folder.mkdir(parents=True, exist_ok=True)
    key = {
        "reach_chunks": args.reach_chunks,
        "reach_chunk": args.reach_chunk,
        "time_chunks": args.time_chunks,
        "time_chunk": 672,
        "gages": args.gages,
        "seed": 11,
    }
    info_file = folder / "replica.json"
    model = folder / "chrtout.zarr"
    if info_file.exists() and json.loads(info_file.read_text())["key"] == key:
        info = json.loads(info_file.read_text())
        sites, n_time = info["sites"], info["n_time"]
    else:
        t0 = time.perf_counter()
        rep = write_chrtout(model, nan_share=0.001, **key)
        sites, n_time = rep.sites, rep.n_time
        info_file.write_text(json.dumps({"key": key, "sites": sites, "n_time": n_time}))
        print(f"wrote the replica in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    days = n_time // 24 + 2
    obs = write_daily_observed(folder / "obs.zarr", sites, "1979-01-31", days, seed=12)
    return {"sites": sites, "n_time": n_time, "model": str(model), **key}, obs


def _measure(client: Any, source: Any, batches: list[tuple[int, tuple[str, ...]]], log: Path):
    from gagebench.pipeline import stream_batches

    log.unlink(missing_ok=True)
    client.run(_reset_peak)
    cpu0 = sum(client.run(_cpu_s).values()) + _cpu_s()
    t0 = time.perf_counter()
    rows = 0
    for _, frame in stream_batches(
        client, source, batches, ["nwm"], ["standard", "dscore"], "standard"
    ):
        rows += len(frame)
    wall = time.perf_counter() - t0
    cpu = sum(client.run(_cpu_s).values()) + _cpu_s() - cpu0
    peaks = sorted(round(v / 1024) for v in client.run(_peak_kib).values())
    fetched = test_helper("_replicas").chunk_fetches(str(log))
    return {
        "tasks_units": len(batches),
        "rows": rows,
        "fetches": sum(fetched.values()),
        "distinct_chunks": len(fetched),
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "worker_peak_mib": peaks,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stores", default=str(Path(tempfile.gettempdir()) / "gagebench-chunked"))
    parser.add_argument("--reach-chunks", type=int, default=8)
    parser.add_argument("--reach-chunk", type=int, default=30000)
    parser.add_argument("--time-chunks", type=int, default=6)
    parser.add_argument("--gages", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--time-chunks-per-task", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--memory-limit", default="6GiB")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    from distributed import Client, LocalCluster

    from gagebench.config import StoreConfig
    from gagebench.gages import plan_batches
    from gagebench.sources.stores import SourceSet

    test_helper("_replicas").register_counting()
    info, obs = _stores(args)
    ids = [f"USGS-{s}" for s in info["sites"]]
    random.Random(5).shuffle(ids)
    log = Path(args.stores) / "fetches.log"
    model = StoreConfig(f"counting://{info['model']}", storage_options={"log": str(log)})
    source = SourceSet(
        StoreConfig(obs), {"nwm": model}, time_chunks_per_task=args.time_chunks_per_task
    )

    class TodaySource(SourceSet):
        """The same stores, read as before chunk-aware units (plain batches)."""

        def chunked_stores(self) -> dict[Any, Any]:
            return {}

    today = TodaySource(StoreConfig(obs), {"nwm": model})
    time_chunks = -(-info["n_time"] // 672)
    positions = source.store_of(("model", "nwm")).positions(ids)
    minimum = len({int(p) // args.reach_chunk for p in positions if p >= 0}) * time_chunks
    modes = {
        "chunk-aware": (source, source.plan_units(ids, args.batch_size)),
        "today": (today, plan_batches(ids, args.batch_size)),
    }
    results: dict[str, Any] = {"params": {**vars(args), "minimum_fetches": minimum}}
    with (
        LocalCluster(
            n_workers=args.workers,
            threads_per_worker=1,
            processes=True,
            memory_limit=args.memory_limit,
            dashboard_address=":0",
        ) as cluster,
        Client(cluster) as client,
    ):
        client.run(_setup_worker)
        warm = [(0, tuple(ids[:2]))]
        _measure(client, today, warm, log)  # imports, JIT and store opens, not timed
        for name, (src, units) in modes.items():
            batches = list(enumerate(units))
            results[name] = _measure(client, src, batches, log)
            print(f"{name}: {results[name]}", file=sys.stderr)
    header = "| mode | units | fetches | x minimum | wall s | CPU s | worker peak MiB |"
    print(
        f"\nminimum: {minimum} chunk fetches ({info['reach_chunks']} reach chunks of "
        f"{args.reach_chunk} x {time_chunks} time chunks of 672 h, {len(ids)} gages in "
        f"random order, batch_size {args.batch_size})\n"
    )
    print(header)
    print("|---|---|---|---|---|---|---|")
    for name in modes:
        r = results[name]
        print(
            f"| {name} | {r['tasks_units']} | {r['fetches']} | {r['fetches'] / minimum:.2f} | "
            f"{r['wall_s']} | {r['cpu_s']} | {r['worker_peak_mib']} |"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
