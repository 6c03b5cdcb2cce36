"""Scaled-down replicas of the published stores, with their published metadata (issue 10).

- :func:`write_chrtout`: NWM v2.1 retrospective CHRTOUT: zarr v2, consolidated, dims
  ``(time, feature_id)``, int reach ids unsorted relative to site numbers, hourly time as
  int32 "minutes since 1970-01-01 00:00:00 UTC" from 1979-02-01 01:00, ``streamflow``
  int32 with scale_factor 0.01 (float32), add_offset 0, _FillValue/missing_value -999900,
  valid_range [0, 50000000], units "m3 s-1", blosc lz4 clevel 5 shuffle, ``gage_id`` |S15
  left-padded with spaces (blank where a reach has no gage), latitude/longitude/elevation/
  order chunked whole. Sizes (reach and time chunks) are parameters.
- :func:`write_nhm_reference`: NHM daily ``seg_outflow`` in ft3/s on ``(time, nhm_seg)``
  in netCDF4 files, combined along time into a kerchunk reference JSON, with the POI
  variables ``poi_gage_id`` (bytes) and ``poi_gage_segment`` (int) on ``npoi_gages``.
- :class:`CountingFileSystem`: a test-only local file system (``counting://``) that logs
  every whole-object read, to count chunk fetches.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from fsspec.implementations.local import LocalFileSystem

CHRTOUT_START = "1979-02-01T01:00"
FILL = -999900


@dataclass(frozen=True)
class Chrtout:
    """A written CHRTOUT replica: where, its gages' sites and reach positions, chunks."""

    path: str
    sites: list[str]
    positions: np.ndarray  # store position of each site's reach
    time_chunk: int
    reach_chunk: int
    n_time: int
    n_reach: int


def _flow_block(
    block: np.ndarray, seed: int, nan_share: float, block_info: Any = None
) -> np.ndarray:
    """Flows of one (time, reach) chunk, seeded by its place: the same for any writer."""
    (t0, _), (r0, _) = block_info[0]["array-location"]
    rng = np.random.default_rng([seed, t0, r0])
    hours = np.arange(t0, t0 + block.shape[0])
    flow = rng.gamma(1.5, 4.0, block.shape) * (1 + np.sin(hours / 37.0))[:, None]
    flow[rng.random(block.shape) < nan_share] = np.nan
    return flow


def write_chrtout(
    path: Path,
    *,
    reach_chunks: int = 4,
    reach_chunk: int = 300,
    time_chunks: int = 3,
    time_chunk: int = 96,
    gages: int = 40,
    seed: int = 0,
    nan_share: float = 0.02,
) -> Chrtout:
    """Write a CHRTOUT-layout replica; flows are float m3/s encoded as the real store.

    Written chunk by chunk (a dask array aligned with the zarr chunks), so replicas of
    the real chunk size (672 x 30000) fit in memory.
    """
    import dask.array as da
    from numcodecs import Blosc

    rng = np.random.default_rng(seed)
    n_reach = reach_chunks * reach_chunk
    n_time = time_chunks * time_chunk - time_chunk // 3  # a ragged last time chunk
    times = pd.date_range(CHRTOUT_START, periods=n_time, freq="h")
    feature_id = rng.permutation(np.arange(101, 101 + n_reach * 7, 7)).astype(np.int32)
    positions = np.sort(rng.choice(n_reach, size=gages, replace=False))
    sites = sorted(f"{rng.integers(1_000_000, 99_999_999):08d}" for _ in range(gages))
    sites_by_position = rng.permutation(sites)  # unsorted relative to site numbers
    gage_id = np.full(n_reach, b" " * 15, dtype="S15")
    for pos, site in zip(positions, sites_by_position, strict=True):
        gage_id[pos] = site.rjust(15).encode()
    flow = da.zeros((n_time, n_reach), chunks=(time_chunk, reach_chunk)).map_blocks(
        _flow_block, seed=seed, nan_share=nan_share, dtype=np.float64
    )
    ds = xr.Dataset(
        {
            "streamflow": (
                ("time", "feature_id"),
                flow,
                {"units": "m3 s-1", "long_name": "River Flow", "valid_range": [0, 50000000]},
            ),
            "latitude": (("feature_id",), rng.uniform(25, 49, n_reach).astype(np.float32)),
            "longitude": (("feature_id",), rng.uniform(-124, -67, n_reach).astype(np.float32)),
            "elevation": (("feature_id",), rng.uniform(0, 3000, n_reach).astype(np.float32)),
            "order": (("feature_id",), rng.integers(1, 9, n_reach).astype(np.int32)),
        },
        coords={"time": times, "feature_id": feature_id, "gage_id": ("feature_id", gage_id)},
    )
    blosc = Blosc(cname="lz4", clevel=5, shuffle=Blosc.SHUFFLE)
    whole = {"chunks": (n_reach,), "compressors": (blosc,)}
    ds.to_zarr(
        path,
        mode="w",
        zarr_format=2,
        consolidated=True,
        encoding={
            "streamflow": {
                "dtype": "int32",
                "scale_factor": np.float32(0.01),
                "add_offset": 0.0,
                "_FillValue": np.int32(FILL),
                "missing_value": np.int32(FILL),
                "chunks": (time_chunk, reach_chunk),
                "compressors": (blosc,),
            },
            "time": {"units": "minutes since 1970-01-01 00:00:00 UTC", "dtype": "int32"},
            "feature_id": whole,
            "gage_id": whole,
            "latitude": whole,
            "longitude": whole,
            "elevation": whole,
            "order": whole,
        },
    )
    order = {s: p for p, s in zip(positions, sites_by_position, strict=True)}
    return Chrtout(
        str(path),
        sites,
        np.array([order[s] for s in sites]),
        time_chunk,
        reach_chunk,
        n_time,
        n_reach,
    )


def reference_daily(url: str, variable: str, feature: str, values: list[Any]) -> pd.DataFrame:
    """xarray's decoding then pandas' 05:00-UTC daily means: (date x feature) frame."""
    ds = xr.open_zarr(url, consolidated=None)
    frame = ds[variable].sel({feature: values}).to_pandas()
    daily = frame.resample("1D", offset="5h").mean()
    daily.index = daily.index.floor("D")
    return daily


def write_daily_observed(path: Path, sites: list[str], start: str, days: int, seed: int) -> str:
    """A HyTEST-like observed store (time, gage_id), one gage per chunk, stamped 05:00."""
    rng = np.random.default_rng(seed)
    times = pd.date_range(start, periods=days, freq="D") + pd.Timedelta(hours=5)
    values = rng.gamma(1.5, 4.0, (days, len(sites))).astype(np.float32)
    ds = xr.Dataset(
        {"streamflow": (("time", "gage_id"), values, {"units": "m3 s-1"})},
        coords={"time": times, "gage_id": np.array([f"USGS-{s}" for s in sites], dtype=object)},
    )
    ds.to_zarr(path, mode="w", zarr_format=2, encoding={"streamflow": {"chunks": (days, 1)}})
    return str(path)


@dataclass(frozen=True)
class NhmReference:
    """A kerchunk reference store of NHM-like netCDF files and what it holds."""

    reference: str
    files: list[str]
    segments: np.ndarray
    poi_sites: list[str]
    poi_segments: list[int]
    flow_cfs: np.ndarray  # (time, segment) in ft3/s, as written
    times: pd.DatetimeIndex


def write_nhm_reference(
    folder: Path,
    *,
    segments: int = 12,
    seed: int = 0,
    remote: str | None = None,
    storage_options: dict[str, Any] | None = None,
) -> NhmReference:
    """Two NHM-like netCDF4 files (h5netcdf) and a kerchunk JSON concatenating them.

    With ``remote`` (e.g. ``s3://bucket/nhm``), files and JSON are uploaded there and the
    references point at the uploaded files (scanned there, as kerchunk users do).
    """
    import fsspec
    from kerchunk.combine import MultiZarrToZarr
    from kerchunk.hdf import SingleHdf5ToZarr

    rng = np.random.default_rng(seed)
    seg_ids = np.arange(1, segments + 1, dtype=np.int32)
    poi_sites = ["01011000", "01013500", "01015800", "01017000"]
    poi_segments = [3, 7, 7, 11]  # two gages share segment 7
    halves = [
        pd.date_range("2000-01-01", periods=40, freq="D"),
        pd.date_range("2000-02-10", periods=40, freq="D"),
    ]
    flows = []
    files = []
    for i, times in enumerate(halves):
        flow = rng.gamma(1.5, 100.0, (times.size, segments)).astype(np.float32)
        flows.append(flow)
        ds = xr.Dataset(
            {
                "seg_outflow": (
                    ("time", "nhm_seg"),
                    flow,
                    {"units": "ft3 s-1", "long_name": "Streamflow leaving a segment"},
                ),
                "poi_gage_id": (("npoi_gages",), np.array([s.encode() for s in poi_sites], "S15")),
                "poi_gage_segment": (("npoi_gages",), np.array(poi_segments, dtype=np.int32)),
            },
            coords={"time": times, "nhm_seg": seg_ids},
        )
        file = folder / f"nhm_{i}.nc"
        ds.to_netcdf(
            file,
            engine="h5netcdf",
            encoding={"time": {"units": "days since 1980-01-01 00:00:00", "dtype": "int32"}},
        )
        files.append(str(file))
    options = storage_options or {}
    refs = [SingleHdf5ToZarr(f"file://{f}", inline_threshold=0).translate() for f in files]
    combined = MultiZarrToZarr(
        refs,
        concat_dims=["time"],
        identical_dims=["nhm_seg", "poi_gage_id", "poi_gage_segment"],
        remote_protocol="file",
    ).translate()
    if remote is not None:
        # Scanned locally (kerchunk's combine reads coordinates through zarr, which does
        # not work on a remote reference store with zarr 3), then pointed at the uploads:
        # the files are byte-identical, so every offset stays right.
        fs, _ = fsspec.core.url_to_fs(remote, **options)
        moved = {f"file://{f}": f"{remote}/{Path(f).name}" for f in files}
        for local, url in moved.items():
            fs.put(local[len("file://") :], url)
        for key, ref in combined["refs"].items():
            if isinstance(ref, list) and ref and ref[0] in moved:
                combined["refs"][key] = [moved[ref[0]], *ref[1:]]
    reference = str(folder / "nhm.json")
    if remote is None:
        Path(reference).write_text(json.dumps(combined))
    else:
        reference = f"{remote}/nhm.json"
        fs.pipe(reference, json.dumps(combined).encode())
    return NhmReference(
        reference,
        files,
        seg_ids,
        poi_sites,
        poi_segments,
        np.concatenate(flows),
        pd.DatetimeIndex(halves[0].append(halves[1])),
    )


class LoggedLocalFileSystem(LocalFileSystem):
    """Local files under the subclass's own protocol, with ``log``: a file the subclass
    appends its reads to (a file, so reads in worker processes are counted too)."""

    protocol: Any = ("logged",)

    def __init__(self, log: str = "", **kwargs: Any):
        super().__init__(**kwargs)
        self.log = log

    @classmethod
    def _strip_protocol(cls, path: Any) -> str:
        text = str(path)
        prefix = f"{cls.protocol[0]}://"
        if text.startswith(prefix):
            text = text[len(prefix) :]
        return super()._strip_protocol(text)


class CountingFileSystem(LoggedLocalFileSystem):
    """Local files under ``counting://``; each whole-file read is appended to ``log``.

    Test-only: a fake of an object store's GET counter (no real object store here counts
    requests per key).
    """

    protocol = ("counting",)

    def cat_file(self, path: Any, start: Any = None, end: Any = None, **kwargs: Any) -> bytes:
        if self.log:
            with open(self.log, "a") as fh:
                fh.write(f"{self._strip_protocol(path)}\n")
        return super().cat_file(path, start=start, end=end, **kwargs)


def register_counting() -> None:
    """Make ``counting://`` URLs open :class:`CountingFileSystem` in this process."""
    import fsspec

    fsspec.register_implementation("counting", CountingFileSystem, clobber=True)


def chunk_fetches(log: str, variable: str = "streamflow") -> Counter[str]:
    """Fetches per chunk key of ``variable`` from a counting log."""
    pattern = re.compile(rf"/{variable}/\d+\.\d+$")
    if not os.path.exists(log):
        return Counter()
    with open(log) as fh:
        return Counter(line.strip() for line in fh if pattern.search(line.strip()))
