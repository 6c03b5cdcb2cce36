"""Store engines end to end: the synthetic stores written as NetCDF (one file, a list, a glob;
local and on the S3 server) give exactly the zarr run's results; a store engine installed
through the ``gagebench.stores`` entry points runs; an unknown engine and a NetCDF file
given to the zarr engine are one clear error.

Runs go through real Dask worker processes: the session's 2-worker LocalCluster for
API runs, the CLI's own 2-worker local cluster for ``gagebench run``.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from _netcdf import split_by_time, zarr_to_netcdf

from gagebench.config import load_config
from gagebench.pipeline import run

sys.path.insert(0, str(Path(__file__).parents[1] / "unit"))

pytestmark = pytest.mark.integration

_SCRIPT = Path(sys.executable).with_name("gagebench")
GAGEBENCH = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "gagebench.cli"]
CSVS = ("standard_suite.csv", "dscore.csv")


def _run_files(read: Any, run_url: str, models: list[str]) -> dict[str, bytes]:
    return {
        name: read(f"{run_url}/{name}")
        for name in ["results.parquet", *(f"{m}/{csv}" for m in models for csv in CSVS)]
    }


def _same_outputs(got: dict[str, bytes], expected: dict[str, bytes], same_plan: bool) -> None:
    """results.parquet holds the same frame, and the HyTEST CSVs the same tables (the same
    bytes when both runs had the same batches; rows in another order when a store read in
    chunk-aware units grouped the gages otherwise)."""

    def frame(data: bytes, csv: bool) -> pd.DataFrame:
        read = pd.read_csv(io.BytesIO(data), dtype={"site_no": str}) if csv else None
        table = read if read is not None else pd.read_parquet(io.BytesIO(data))
        keys = [c for c in ("model", "site_no") if c in table.columns]
        return table if same_plan else table.sort_values(keys).reset_index(drop=True)

    ours = frame(got["results.parquet"], csv=False)
    assert (ours["status"] == "ok").sum() > 0
    reference = frame(expected["results.parquet"], csv=False)
    pd.testing.assert_frame_equal(ours, reference, check_exact=True)
    for name in expected:
        if name.endswith(".csv"):
            if same_plan:
                assert got[name] == expected[name], name
            theirs = frame(expected[name], True)
            pd.testing.assert_frame_equal(frame(got[name], True), theirs, check_exact=True)


# -- NetCDF on the S3 server, through the API and the session's worker processes -----------


def test_netcdf_stores_on_s3_give_the_zarr_runs_numbers(
    daily_stores, bucket_url, s3, dask_client, tmp_path
) -> None:
    opts = s3.storage_options
    fs = fsspec.filesystem("s3", **opts)
    local = tmp_path / "nc"
    years = [slice(0, 730), slice(730, 1461), slice(1461, None)]
    obs_files = split_by_time(daily_stores.observed_url, local, years, "observed", opts)
    nwm = zarr_to_netcdf(
        daily_stores.model_urls["nwm"], local / "nwm.nc", chunks=(365, 4), storage_options=opts
    )
    nhm_files = [
        zarr_to_netcdf(
            daily_stores.model_urls["nhm"], local / f"nhm_{i}.nc", time=part, storage_options=opts
        )
        for i, part in enumerate([slice(0, 1000), slice(1000, None)])
    ]
    remote = f"{bucket_url}/nc"
    for path in [*obs_files, nwm, *nhm_files]:
        fs.put(path, f"{remote}/{Path(path).name}")

    def config(run_id: str, observed: dict[str, Any], models: dict[str, Any]) -> Any:
        return load_config(
            run_id=run_id,
            output=f"{bucket_url}/out",
            gages=daily_stores.gages,
            gage_limit=daily_stores.gage_limit,
            observed=observed,
            models=models,
            storage_options=opts,
            batch_size=5,
            report=False,
        )

    zarr_cfg = config(
        "zarr",
        {"url": daily_stores.observed_url},
        {name: {"url": url} for name, url in daily_stores.model_urls.items()},
    )
    nc_cfg = config(
        "netcdf",
        {"url": f"{remote}/observed_*.nc", "engine": "netcdf"},  # a glob of yearly files
        {
            "nwm": {"url": f"{remote}/nwm.nc", "engine": "netcdf"},  # several gages per chunk
            "nhm": {"url": [f"{remote}/nhm_1.nc", f"{remote}/nhm_0.nc"], "engine": "netcdf"},
        },
    )
    zarr_run = run(zarr_cfg, client=dask_client)
    nc_run = run(nc_cfg, client=dask_client)
    models = list(daily_stores.model_urls)
    read = fs.cat_file
    # nwm's NetCDF chunks hold 4 gages: its run reads in chunk-aware units (other batches)
    _same_outputs(
        _run_files(read, nc_run.run_url, models),
        _run_files(read, zarr_run.run_url, models),
        same_plan=False,
    )
    stores = nc_run.manifest["stores"]
    assert stores["observed"]["engine"] == "netcdf"
    assert stores["observed"]["files"] == 3
    assert stores["models"]["nhm"]["files"] == 2
    assert stores["models"]["nwm"]["chunks"] == {"time": 365, "gage": 4}
    assert "engine" not in zarr_run.manifest["stores"]["observed"]  # zarr's facts unchanged


# -- the CLI: NetCDF, an entry-point engine, the errors ---------------------------------------


@pytest.fixture(scope="module")
def local_stores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Synthetic daily stores (12 gages, 4 years) as zarr and as NetCDF files."""
    from gagebench.synth import synthesize

    root = tmp_path_factory.mktemp("engines")
    made = synthesize(
        str(root), n_gages=12, seed=9, start="2001-01-01", end="2004-12-31", models=("nwm",)
    )
    years = [slice(0, 731), slice(731, None)]
    split_by_time(made.observed_url, root / "obs", years, "observed")
    return {
        "observed": made.observed_url,
        "nwm": made.model_urls["nwm"],
        "observed_glob": str(root / "obs" / "observed_*.nc"),
        "nwm_nc": zarr_to_netcdf(made.model_urls["nwm"], root / "nwm.nc", chunks=(400, 1)),
        "root": str(root),
    }


def run_cli(cwd: Path, run_id: str, *settings: str, env: dict[str, str] | None = None) -> Any:
    """``gagebench run`` (its own 2-worker local cluster), output under ``cwd / 'out'``."""
    args = [
        "run",
        *("--set", f"output={cwd / 'out'}"),
        *("--set", f"run_id={run_id}"),
        *("--set", "report=false"),
        *("--set", "cluster.local.n_workers=2"),
        *("--set", "cluster.local.threads_per_worker=1"),
        *(part for item in settings for part in ("--set", item)),
    ]
    return subprocess.run(
        [*GAGEBENCH, *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=cwd,
        env=env,
    )


@pytest.fixture(scope="module")
def zarr_outputs(local_stores, tmp_path_factory) -> dict[str, bytes]:
    """The zarr run's outputs (the reference), through the same CLI."""
    cwd = tmp_path_factory.mktemp("zarr-run")
    done = run_cli(
        cwd,
        "zarr",
        f"observed.url={local_stores['observed']}",
        f"models.nwm.url={local_stores['nwm']}",
    )
    assert done.returncode == 0, done.stderr
    return _run_files(lambda p: Path(p).read_bytes(), str(cwd / "out" / "zarr"), ["nwm"])


def test_cli_run_on_netcdf_files_gives_the_zarr_runs_numbers(
    local_stores, zarr_outputs, tmp_path
) -> None:
    done = run_cli(
        tmp_path,
        "netcdf",
        f"observed.url={local_stores['observed_glob']}",
        "observed.engine=netcdf",
        f"models.nwm.url={local_stores['nwm_nc']}",
        "models.nwm.engine=netcdf",
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    got = _run_files(lambda p: Path(p).read_bytes(), str(tmp_path / "out" / "netcdf"), ["nwm"])
    _same_outputs(got, zarr_outputs, same_plan=True)


_PLUGIN = '''
"""A third party's store engine: one .npz file of daily flows (values, gage_ids, times)."""

import numpy as np

from gagebench.sources.interface import StoreEngine


class NpzStore:
    def __init__(self, label, spec):
        data = np.load(spec.url, allow_pickle=False)
        self.label, self.url = label, spec.url
        self.values = data["values"]  # (gage, time)
        self.ids = [str(g) for g in data["gage_ids"]]
        self.times = data["times"].astype("datetime64[ns]")
        self.n_time = int(self.times.size)
        self.daily = True
        self.days = self.times.astype("datetime64[D]")
        self.gage_chunk, self.time_chunk = 1, self.n_time
        self.index = {g: i for i, g in enumerate(self.ids)}

    def gage_ids(self):
        return list(self.ids)

    def positions(self, gage_ids):
        return np.array([self.index.get(str(g), -1) for g in gage_ids], dtype=np.int64)

    def daily_values(self, positions):
        return self.days, self.values[positions]

    def read_unit(self, positions, t0, t1):
        return self.values[positions, t0:t1].T

    def day_layout(self):
        index = (self.days - self.days[0]).astype(np.int64)
        return index, self.days[0] + np.arange(int(index[-1]) + 1)

    def daily_dtype(self):
        return self.values.dtype

    def manifest_entry(self):
        return {"url": self.url, "engine": "npz", "gages": len(self.ids)}

    def warnings(self):
        return []


class NpzEngine(StoreEngine):
    description = "daily flows in one .npz file"

    def open(self, label, spec):
        return NpzStore(label, spec)
'''


def _install_plugin(site: Path) -> None:
    """A tiny installed distribution: its module and a dist-info with the entry point."""
    site.mkdir()
    (site / "npzstore.py").write_text(textwrap.dedent(_PLUGIN))
    info = site / "npzstore-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: npzstore\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[gagebench.stores]\nnpz = npzstore:NpzEngine\n")


def test_a_store_engine_from_an_entry_point_runs(local_stores, zarr_outputs, tmp_path) -> None:
    site = tmp_path / "site"
    _install_plugin(site)
    ds = xr.open_zarr(local_stores["nwm"])
    flows = tmp_path / "nwm.npz"
    np.savez(
        flows,
        values=ds["streamflow"].transpose("gage_id", "time").to_numpy(),
        gage_ids=np.array([str(g) for g in ds["gage_id"].to_numpy()]),
        times=ds["time"].to_numpy(),
    )
    before = os.environ.get("PYTHONPATH")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(site), before) if p)}
    done = run_cli(
        tmp_path,
        "npz",
        f"observed.url={local_stores['observed']}",
        f"models.nwm.url={flows}",
        "models.nwm.engine=npz",
        env=env,
    )
    assert done.returncode == 0, done.stderr
    got = _run_files(lambda p: Path(p).read_bytes(), str(tmp_path / "out" / "npz"), ["nwm"])
    _same_outputs(got, zarr_outputs, same_plan=True)

    # without the distribution on the path the engine is unknown: exit 2, one clear line
    env.pop("PYTHONPATH")
    if before:
        env["PYTHONPATH"] = before
    done = run_cli(
        tmp_path,
        "npz2",
        f"observed.url={local_stores['observed']}",
        f"models.nwm.url={flows}",
        "models.nwm.engine=npz",
        env=env,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1, done.stderr
    assert "gagebench.models.nwm.engine: unknown store engine 'npz'" in errors[0]
    assert "available: zarr, reference, netcdf" in errors[0]
    assert not (tmp_path / "out" / "npz2").exists()


def test_a_netcdf_file_on_s3_given_to_the_zarr_engine_says_set_engine_netcdf(
    local_stores, s3, bucket_url, tmp_path
) -> None:
    fs = fsspec.filesystem("s3", **s3.storage_options)
    url = f"{bucket_url}/nwm.nc"
    fs.put(local_stores["nwm_nc"], url)
    done = run_cli(
        tmp_path,
        "s3nc",
        f"observed.url={local_stores['observed']}",
        f"models.nwm.url={url}",
        f"storage_options={{key: {s3.key}, secret: {s3.secret}, endpoint_url: {s3.endpoint}}}",
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1, done.stderr
    assert url in errors[0], errors[0]
    assert "NetCDF-4 / HDF5 file" in errors[0], errors[0]
    assert "set engine: netcdf" in errors[0], errors[0]
    assert "check the URL, the credentials" not in errors[0], errors[0]
    assert s3.secret not in done.stderr


@pytest.mark.parametrize("contiguous", [False, True])
def test_a_netcdf_file_on_s3_is_read_in_small_pieces(s3, bucket_url, tmp_path, contiguous) -> None:
    """HDF5 reads its metadata and chunks in small pieces: opening a NetCDF file on S3 and
    reading 5 of its 600 gages fetches a small part of it (s3fs's default 50 MiB blocks
    fetched the whole file several times to open it, and again for every batch). A
    contiguous variable (``to_netcdf``'s default: a gage's values spread over all of it)
    is read in big pieces: small ones were a request per 256 KiB."""
    from faultproxy import FaultProxy

    from gagebench.config import StoreConfig
    from gagebench.sources.stores import SourceSet, clear_cache

    n_time, n_gage = 5000, 600
    times = np.datetime64("2000-01-01T05", "ns") + np.arange(n_time) * np.timedelta64(1, "D")
    sites = [f"{10000000 + i:08d}" for i in range(n_gage)]
    values = np.random.default_rng(0).random((n_time, n_gage), dtype=np.float32)
    ds = xr.Dataset(
        {"streamflow": (("time", "gage_id"), values, {"units": "m3 s-1"})},
        coords={"time": times, "gage_id": sites},
    )
    local = tmp_path / "flows.nc"
    layout = {"contiguous": True} if contiguous else {"chunksizes": (n_time, 1)}
    ds.to_netcdf(local, engine="h5netcdf", encoding={"streamflow": layout})
    size = local.stat().st_size
    assert size > 10e6
    fsspec.filesystem("s3", **s3.storage_options).put(str(local), f"{bucket_url}/flows.nc")
    obs = daily_observed_zarr(tmp_path / "obs.zarr", ds)
    with FaultProxy(s3.endpoint) as proxy:
        opts = {**s3.storage_options, "endpoint_url": proxy.url}
        spec = StoreConfig(f"{bucket_url}/flows.nc", engine="netcdf", storage_options=opts)
        clear_cache()
        source = SourceSet(StoreConfig(obs), {"m": spec})

        def fetched() -> int:
            return sum(n for path, n in proxy.sent.items() if path.endswith("/flows.nc"))

        batch = source.read_batch([f"USGS-{s}" for s in sites[300:305]])
        opened = fetched()
        again = source.read_batch([f"USGS-{s}" for s in sites[100:105]])
        more = fetched() - opened
        gets = sum(n for (m, p), n in proxy.counts.items() if m == "GET" and p.endswith(".nc"))
    clear_cache()
    np.testing.assert_array_equal(batch.modeled["m"], values[:, 300:305].T)
    np.testing.assert_array_equal(again.modeled["m"], values[:, 100:105].T)
    if contiguous:  # each batch reads the whole variable: in a few requests
        assert gets <= 12, gets
        return
    # the metadata, time, gage ids and 5 gages (5 x 20 kB), in 256 KiB pieces
    assert opened < size / 5, (opened, size)
    assert more < 1_000_000, more  # another batch: about its own chunks


def daily_observed_zarr(path: Path, ds: xr.Dataset) -> str:
    """``ds`` as a local zarr store (the observed side of a source set)."""
    ds.to_zarr(path, mode="w", zarr_format=2)
    return str(path)
