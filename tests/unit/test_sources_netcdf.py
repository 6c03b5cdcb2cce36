"""``engine: netcdf``: NetCDF-4 files (one, a list, a glob) read as the zarr stores they copy.

The NetCDF files are written here with xarray's ``to_netcdf`` (h5netcdf) from zarr
stores (``gagebench synth``'s, and the CHRTOUT replica of ``_replicas.py``), keeping
their raw encoding: the zarr engine's reads are the independent reference.
"""

from __future__ import annotations

import random
from pathlib import Path

import dask
import numpy as np
import pytest
import xarray as xr
from _netcdf import chunk_reads, register_ranges, split_by_time, zarr_to_netcdf
from _replicas import write_chrtout, write_daily_observed

from gagebench.config import StoreConfig, load_config
from gagebench.errors import ConfigError, InputError, StorageError
from gagebench.gages import plan_batches
from gagebench.sources.chunked import unit_graphs
from gagebench.sources.stores import SourceSet, clear_cache


@pytest.fixture(autouse=True)
def _fresh_cache():
    clear_cache()
    yield
    clear_cache()


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory):
    from gagebench.synth import synthesize

    root = tmp_path_factory.mktemp("synth")
    return synthesize(
        str(root), n_gages=10, seed=5, start="2001-01-01", end="2003-12-31", missing_fraction=0.1
    )


def _netcdf(url: str | tuple[str, ...], **settings) -> StoreConfig:
    return StoreConfig(url, engine="netcdf", **settings)


def _same_batches(zarr_source: SourceSet, nc_source: SourceSet, ids: list[str]) -> None:
    a, b = zarr_source.read_batch(ids), nc_source.read_batch(ids)
    assert a.gage_ids == b.gage_ids
    np.testing.assert_array_equal(a.dates, b.dates)
    np.testing.assert_array_equal(a.observed, b.observed)
    assert a.observed.dtype == b.observed.dtype
    assert a.missing_observed == b.missing_observed
    assert a.missing_model == b.missing_model
    for name in a.modeled:
        np.testing.assert_array_equal(a.modeled[name], b.modeled[name])
        assert a.modeled[name].dtype == b.modeled[name].dtype


@pytest.mark.parametrize("chunks", [None, (400, 1), (365, 4)])
def test_synthetic_stores_as_netcdf_read_as_the_zarr_stores(synth, tmp_path, chunks) -> None:
    """Contiguous, one gage per chunk, and several gages per chunk (chunk-aware units)."""
    obs = zarr_to_netcdf(synth.observed_url, tmp_path / "observed.nc", chunks=chunks)
    models = {
        name: zarr_to_netcdf(url, tmp_path / f"{name}.nc", chunks=chunks)
        for name, url in synth.model_urls.items()
    }
    zarr_source = SourceSet(
        StoreConfig(synth.observed_url), {n: StoreConfig(u) for n, u in synth.model_urls.items()}
    )
    nc_source = SourceSet(_netcdf(obs), {n: _netcdf(u) for n, u in models.items()})
    ids = zarr_source.observed_ids()
    assert nc_source.observed_ids() == ids
    ids = [*ids[::-1], "USGS-99999999"]  # another order, and a gage in no store
    _same_batches(zarr_source, nc_source, ids)
    facts = nc_source.manifest_entry()["observed"]
    assert facts["engine"] == "netcdf"
    assert facts["files"] == 1
    assert facts["chunks"]["gage"] == (chunks[1] if chunks else 1)
    # the chunk-aware units of a multi-gage NetCDF store give the plain reads
    if chunks and chunks[1] > 1:
        units = nc_source.plan_units(ids, 3)
        assert sorted(g for u in units for g in u) == sorted(ids)

        def both(element, prepared):
            batch = prepared.read_batch(element[1])
            return batch.gage_ids, batch.observed, batch.modeled

        graphs = unit_graphs(nc_source, list(enumerate(units)), both, ())
        assert graphs is not None
        for ((gage_ids, observed, modeled),) in dask.compute(*graphs, scheduler="synchronous"):
            plain = zarr_source.read_batch(gage_ids)
            np.testing.assert_array_equal(observed, plain.observed)
            for name in modeled:
                np.testing.assert_allclose(modeled[name], plain.modeled[name], rtol=1e-12)


def test_a_list_and_a_glob_of_yearly_files_are_one_store(synth, tmp_path) -> None:
    years = [slice(0, 365), slice(365, 730), slice(730, None)]
    files = split_by_time(synth.observed_url, tmp_path / "obs", years, "observed")
    model = zarr_to_netcdf(synth.model_urls["nwm"], tmp_path / "nwm.nc")
    zarr_source = SourceSet(
        StoreConfig(synth.observed_url), {"nwm": StoreConfig(synth.model_urls["nwm"])}
    )
    ids = zarr_source.observed_ids()
    shuffled = files[::-1]  # files are ordered by their first time step, not as listed
    for observed in (_netcdf(tuple(shuffled)), _netcdf(str(tmp_path / "obs" / "observed_*.nc"))):
        clear_cache()
        nc_source = SourceSet(observed, {"nwm": _netcdf(model)})
        _same_batches(zarr_source, nc_source, ids)
        assert nc_source.manifest_entry()["observed"]["files"] == 3


def test_a_list_of_files_in_the_run_file(synth, tmp_path) -> None:
    files = split_by_time(synth.observed_url, tmp_path, [slice(0, 400), slice(400, None)], "o")
    cfg = load_config(
        output=str(tmp_path / "out"),
        observed={"url": files, "engine": "netcdf"},
        models={"nwm": {"url": synth.model_urls["nwm"]}},
    )
    assert cfg.observed is not None
    assert cfg.observed.url == tuple(files)
    assert cfg.to_dict()["observed"]["url"] == files
    with pytest.raises(ConfigError, match=r"observed\.url.*a list of NetCDF files needs engine"):
        load_config(output=str(tmp_path / "out"), observed={"url": files})


def test_files_with_other_gages_are_refused(tmp_path) -> None:
    a = write_daily_observed(tmp_path / "a.zarr", ["01011000", "01013500"], "2000-01-01", 5, 1)
    b = write_daily_observed(tmp_path / "b.zarr", ["01011000", "01015800"], "2000-01-06", 5, 2)
    files = (zarr_to_netcdf(a, tmp_path / "a.nc"), zarr_to_netcdf(b, tmp_path / "b.nc"))
    with pytest.raises(StorageError, match=r"b\.nc.*same gages.*joined along time"):
        SourceSet(_netcdf(files), {"m": _netcdf(files[0])}).check()


@pytest.mark.parametrize("batch_size", [64, 5])
def test_each_netcdf_chunk_is_read_once_for_a_shuffled_list(tmp_path, batch_size) -> None:
    """HDF5 chunks of several reaches, read through chunk-aware units: each needed chunk
    is read from the file once, whatever the order of the gage list and the batch size."""
    register_ranges()
    rep = write_chrtout(tmp_path / "chrtout.zarr", reach_chunks=6, reach_chunk=200, gages=200)
    nc = zarr_to_netcdf(rep.path, tmp_path / "chrtout.nc", chunks=(rep.time_chunk, rep.reach_chunk))
    ids = [f"USGS-{s}" for s in rep.sites]
    random.Random(7).shuffle(ids)
    log = str(tmp_path / "ranges.log")
    obs = write_daily_observed(tmp_path / "obs.zarr", rep.sites, "1979-01-25", 30, seed=5)
    spec = _netcdf(f"ranges://{nc}", storage_options={"log": log})
    source = SourceSet(StoreConfig(obs), {"nwm": spec}, time_chunks_per_task=1)
    columns = {int(p) // rep.reach_chunk for p in rep.positions}
    time_chunks = -(-rep.n_time // rep.time_chunk)

    units = source.plan_units(ids, batch_size)
    Path(log).unlink(missing_ok=True)

    def rows(element, prepared):
        batch = prepared.read_batch(element[1])
        return {g: batch.modeled["nwm"][i] for i, g in enumerate(batch.gage_ids)}

    graphs = unit_graphs(source, list(enumerate(units)), rows, ())
    assert graphs is not None
    got: dict[str, np.ndarray] = {}
    for (part,) in dask.compute(*graphs, scheduler="synchronous"):
        got.update(part)
    reads = chunk_reads(log, nc)
    needed = {key for key in reads if key[1] // rep.reach_chunk in columns}
    assert len(needed) == len(columns) * time_chunks
    assert all(reads[key] == 1 for key in needed), {k: reads[k] for k in needed}
    assert all(reads[key] == 0 for key in set(reads) - needed)

    # the same values as the zarr copy read by the zarr engine
    zarr_source = SourceSet(StoreConfig(obs), {"nwm": StoreConfig(rep.path)})
    plain = zarr_source.read_batch(ids)
    for i, gage in enumerate(plain.gage_ids):
        np.testing.assert_allclose(got[gage], plain.modeled["nwm"][i], rtol=1e-12)

    # plain batches of the same list read chunks again for every batch that needs them
    Path(log).unlink()
    for batch in plan_batches(ids, 64):
        source.read_batch(batch)
    again = chunk_reads(log, nc)
    assert sum(again.values()) > sum(reads[k] for k in needed)


def test_a_netcdf_file_given_to_the_zarr_engine_says_set_engine_netcdf(synth, tmp_path) -> None:
    nc = zarr_to_netcdf(synth.observed_url, tmp_path / "observed.nc")
    with pytest.raises(StorageError) as info:
        SourceSet(StoreConfig(nc), {"m": StoreConfig(synth.model_urls["nwm"])}).check()
    text = str(info.value)
    assert nc in text
    assert "NetCDF-4 / HDF5 file" in text
    assert "engine: netcdf" in text
    assert "check the URL, the credentials" not in text


def test_a_zarr_store_given_to_the_netcdf_engine_says_set_engine_zarr(synth) -> None:
    with pytest.raises(StorageError, match=r"as NetCDF: it is a folder.*set engine: zarr"):
        SourceSet(_netcdf(synth.observed_url), {"m": StoreConfig(synth.model_urls["nwm"])}).check()


def test_a_glob_matching_nothing_says_so(synth, tmp_path) -> None:
    with pytest.raises(StorageError, match=r"no file matches the pattern"):
        SourceSet(_netcdf(str(tmp_path / "*.nc")), {"m": StoreConfig(synth.observed_url)}).check()


def test_an_unknown_engine_is_a_config_error_listing_the_engines(synth) -> None:
    spec = StoreConfig(synth.model_urls["nwm"], engine="zar")
    with pytest.raises(ConfigError) as info:
        SourceSet(StoreConfig(synth.observed_url), {"nwm": spec})
    text = str(info.value)
    assert "gagebench.models.nwm.engine: unknown store engine 'zar'" in text
    assert "available: zarr, reference, netcdf" in text
    assert "gagebench.stores" in text


def test_netcdf_values_are_xarrays(synth, tmp_path) -> None:
    """Independent of the zarr engine: the store's rows are xarray's decoded values."""
    nc = zarr_to_netcdf(synth.model_urls["nwm"], tmp_path / "nwm.nc", chunks=(200, 3))
    source = SourceSet(StoreConfig(synth.observed_url), {"nwm": _netcdf(nc)})
    ids = source.observed_ids()
    batch = source.read_batch(ids)
    expected = xr.open_dataset(nc, engine="h5netcdf")["streamflow"]
    for i, gage in enumerate(ids):
        if gage in batch.missing_model["nwm"]:
            continue
        np.testing.assert_array_equal(batch.modeled["nwm"][i], expected.sel(gage_id=gage).values)


# -- files as users have them (reviewed independently) -----------------------------------


def _daily_dataset(days: int = 20) -> xr.Dataset:
    """A small HyTEST-like daily observed dataset (time, gage_id) in m3/s."""
    rng = np.random.default_rng(3)
    times = np.datetime64("2001-01-01T05", "ns") + np.arange(days) * np.timedelta64(1, "D")
    values = rng.gamma(2.0, 10.0, (days, 3)).astype(np.float32)
    return xr.Dataset(
        {"streamflow": (("time", "gage_id"), values, {"units": "m3 s-1"})},
        coords={"time": times, "gage_id": ["01011000", "01013500", "02015800"]},
    )


@pytest.mark.parametrize("calendar", ["noleap", "360_day"])
@pytest.mark.parametrize("engine", ["zarr", "netcdf"])
def test_a_non_standard_calendar_is_an_input_error_naming_it(tmp_path, calendar, engine) -> None:
    """CF time on a model calendar (climate models write noleap / 360_day) cannot be paired
    with observed calendar days: one InputError naming the store, its calendar and the fix,
    not xarray's ValueError (a traceback at the CLI)."""
    ds = _daily_dataset()
    ds = ds.assign_coords(time=np.arange(20.0) + 5 / 24)
    ds["time"].attrs.update(units="days since 2001-01-01", calendar=calendar)
    if engine == "zarr":
        url = str(tmp_path / "model.zarr")
        ds.to_zarr(url, mode="w", zarr_format=2)
    else:
        url = str(tmp_path / "model.nc")
        ds.to_netcdf(url, engine="h5netcdf")
    obs = str(tmp_path / "obs.zarr")
    _daily_dataset().to_zarr(obs, mode="w", zarr_format=2)
    with pytest.raises(InputError) as info:
        SourceSet(StoreConfig(obs), {"m": StoreConfig(url, engine=engine)}).check()
    text = str(info.value)
    assert url in text
    assert f"{calendar!r} calendar" in text
    assert "convert_calendar" in text


@pytest.mark.parametrize("engine", ["zarr", "netcdf"])
def test_times_that_are_not_dates_are_an_input_error(tmp_path, engine) -> None:
    ds = _daily_dataset().assign_coords(time=np.arange(20.0))
    ds["time"].attrs.update(units="days since the flood")
    url = str(tmp_path / ("model.zarr" if engine == "zarr" else "model.nc"))
    if engine == "zarr":
        ds.to_zarr(url, mode="w", zarr_format=2)
    else:
        ds.to_netcdf(url, engine="h5netcdf")
    obs = str(tmp_path / "obs.zarr")
    _daily_dataset().to_zarr(obs, mode="w", zarr_format=2)
    with pytest.raises(InputError, match=r"model\.\w+'?: its times cannot be read as dates"):
        SourceSet(StoreConfig(obs), {"m": StoreConfig(url, engine=engine)}).check()


def test_netcdf_files_of_one_time_step_each_say_so(tmp_path) -> None:
    """NWM CHRTOUT-style files: streamflow(feature_id) with time a separate length-1
    dimension; a glob of them is refused with what to do, not an IndexError."""
    ds = _daily_dataset(3)
    for k in range(3):
        one = ds.isel(time=k).expand_dims("time").isel(time=0)  # streamflow(gage_id)
        one = one.assign_coords(time=("time", [ds.time.values[k]]))
        one.to_netcdf(tmp_path / f"chrtout_{k}.nc", engine="h5netcdf")
    obs = str(tmp_path / "obs.zarr")
    ds.to_zarr(obs, mode="w", zarr_format=2)
    spec = _netcdf(str(tmp_path / "chrtout_*.nc"))
    with pytest.raises(StorageError) as info:
        SourceSet(StoreConfig(obs), {"m": spec}).check()
    text = str(info.value)
    assert "chrtout_0.nc" in text
    assert "('gage_id',)" in text
    assert "one time step" in text
    assert "open_mfdataset" in text


def test_files_overlapping_in_time_name_both_files(tmp_path) -> None:
    """Two files of a list holding the same days (a file listed twice, or overlapping
    years): the message names both files, not 'write the store with time sorted'."""
    ds = _daily_dataset()
    a = str(tmp_path / "a.nc")
    b = str(tmp_path / "b.nc")
    ds.isel(time=slice(0, 12)).to_netcdf(a, engine="h5netcdf")
    ds.isel(time=slice(10, 20)).to_netcdf(b, engine="h5netcdf")
    obs = str(tmp_path / "obs.zarr")
    ds.to_zarr(obs, mode="w", zarr_format=2)
    for files in ((b, a), (a, a)):
        clear_cache()
        with pytest.raises(InputError) as info:
            SourceSet(StoreConfig(obs), {"m": _netcdf(files)}).check()
        text = str(info.value)
        assert "overlap" in text
        assert a in text
        assert files[-1] in text
        assert "sortby" not in text


def test_an_engine_typo_suggests_the_engine(synth) -> None:
    spec = StoreConfig(synth.model_urls["nwm"], engine="netcfd")
    expected = r"unknown store engine 'netcfd' \(did you mean 'netcdf'\?\)"
    with pytest.raises(ConfigError, match=expected):
        SourceSet(StoreConfig(synth.observed_url), {"nwm": spec})


@pytest.mark.parametrize("engine", ["zarr", "netcdf"])
def test_unsigned_integers_stored_as_signed_are_read_as_unsigned(tmp_path, engine) -> None:
    """CF ``_Unsigned = "true"`` (NetCDF-3's way to keep unsigned shorts): raw int16 values
    above 32767 wrapped negative; decoded, they are the flows written (600 m3/s was read
    as -55.36)."""
    flows = np.linspace(1.0, 600.0, 20)[:, None] * np.ones((1, 3))  # m3/s, up to 600
    coded = np.round(flows / 0.01).astype(np.uint16)
    coded[4, 1] = 65535  # the fill value, as unsigned
    ds = _daily_dataset()
    raw = coded.view(np.int16)
    attrs = {"units": "m3 s-1", "scale_factor": 0.01, "_Unsigned": "true", "_FillValue": -1}
    ds["streamflow"] = (("time", "gage_id"), raw, attrs)
    if engine == "zarr":
        url = str(tmp_path / "model.zarr")
        ds.to_zarr(url, mode="w", zarr_format=2)
    else:
        url = str(tmp_path / "model.nc")
        ds.to_netcdf(url, engine="h5netcdf")
    obs = str(tmp_path / "obs.zarr")
    _daily_dataset().to_zarr(obs, mode="w", zarr_format=2)
    source = SourceSet(StoreConfig(obs), {"m": StoreConfig(url, engine=engine)})
    batch = source.read_batch(["USGS-01011000", "USGS-01013500"])
    expected = coded[:, :2].T * 0.01
    expected[1, 4] = np.nan
    np.testing.assert_allclose(batch.modeled["m"], expected, rtol=1e-12)


def test_a_list_of_files_in_a_run_file_is_read_against_its_folder(tmp_path, monkeypatch) -> None:
    """Relative paths of a run file are read against its folder: each file of a list too
    (they stayed relative to the current folder, the one a single URL is not read from)."""
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "run.yaml").write_text(
        "gagebench:\n"
        "  output: out\n"
        "  observed: {url: data/obs.zarr}\n"
        "  models:\n"
        "    m: {url: [data/a.nc, data/b.nc], engine: netcdf}\n"
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    cfg = load_config(str(folder / "run.yaml"))
    assert cfg.observed is not None
    assert cfg.observed.url == str(folder / "data" / "obs.zarr")
    assert cfg.models["m"].url == (str(folder / "data" / "a.nc"), str(folder / "data" / "b.nc"))
