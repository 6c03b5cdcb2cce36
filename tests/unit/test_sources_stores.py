"""Published-store layouts (issue 10): chunk-aware units on a CHRTOUT replica, kerchunk
reference stores, crosswalks, units, duplicates and the refusals.

Replicas come from ``_replicas.py`` (published metadata, small sizes); expected values
are xarray's decoding followed by pandas' ``resample("1D", offset="5h").mean()``.
"""

from __future__ import annotations

import pickle
import random
from collections import Counter
from pathlib import Path
from typing import Any

import dask
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from _replicas import (
    chunk_fetches,
    reference_daily,
    register_counting,
    write_chrtout,
    write_daily_observed,
    write_nhm_reference,
)

from gagebench.config import Crosswalk, StoreConfig, load_config
from gagebench.errors import ConfigError, InputError, StorageError
from gagebench.gages import plan_batches
from gagebench.sources.chunked import unit_graphs
from gagebench.sources.stores import SourceSet, clear_cache
from gagebench.sources.units import FT3_TO_M3, resolve_units

BATCH_SIZE = 64  # gagebench.yaml's default


@pytest.fixture(autouse=True)
def _fresh_cache():
    clear_cache()
    yield
    clear_cache()


def _read_units(source: SourceSet, units) -> dict[str, np.ndarray]:
    """Every unit through its chunk-aware graph (synchronous): gage id -> model row."""

    def collect(element, prepared):
        batch = prepared.read_batch(element[1])
        return {g: batch.modeled["nwm"][i] for i, g in enumerate(batch.gage_ids)}

    graphs = unit_graphs(source, list(enumerate(units)), collect, ())
    assert graphs is not None
    rows: dict[str, np.ndarray] = {}
    for (result,) in dask.compute(*graphs, scheduler="synchronous"):
        rows.update(result)
    return rows


def _chrtout_sources(tmp_path: Path, url: str, sites, per_task: int) -> SourceSet:
    obs = write_daily_observed(tmp_path / "obs.zarr", sites, "1979-01-25", 30, seed=5)
    return SourceSet(StoreConfig(obs), {"nwm": StoreConfig(url)}, time_chunks_per_task=per_task)


@pytest.mark.parametrize("per_task", [1, 2])
def test_chrtout_units_equal_xarray_then_pandas_daily_means(tmp_path, per_task):
    # 96-hour time chunks do not end at 05:00: days straddle chunks (and read tasks).
    rep = write_chrtout(tmp_path / "chrtout.zarr", gages=40, seed=1)
    ids = [f"USGS-{s}" for s in rep.sites]
    random.Random(3).shuffle(ids)
    source = _chrtout_sources(tmp_path, rep.path, rep.sites, per_task)
    units = source.plan_units(ids, 8)
    assert sorted(g for u in units for g in u) == sorted(ids)
    rows = _read_units(source, units)

    ds = xr.open_zarr(rep.path)
    feature = ds["feature_id"].to_numpy()[rep.positions]
    expected = reference_daily(rep.path, "streamflow", "feature_id", list(feature))
    dates = pd.date_range("1979-01-25", periods=30, freq="D")
    expected = expected.reindex(dates)
    for site, fid in zip(rep.sites, feature, strict=True):
        np.testing.assert_allclose(rows[f"USGS-{site}"], expected[fid].to_numpy(), rtol=1e-12)
    # the days that straddle two time chunks are in the comparison
    assert np.isfinite(expected.loc["1979-02-04"]).all()


@pytest.mark.parametrize("batch_size", [BATCH_SIZE, 5])
def test_chrtout_each_chunk_fetched_once_for_a_shuffled_list(tmp_path, batch_size):
    register_counting()
    rep = write_chrtout(
        tmp_path / "chrtout.zarr", reach_chunks=8, reach_chunk=200, gages=300, seed=2
    )
    ids = [f"USGS-{s}" for s in rep.sites]
    random.Random(7).shuffle(ids)
    log = str(tmp_path / "fetches.log")
    url = f"counting://{rep.path}"
    spec = StoreConfig(url, storage_options={"log": log})
    obs = write_daily_observed(tmp_path / "obs.zarr", rep.sites, "1979-01-25", 30, seed=5)
    source = SourceSet(StoreConfig(obs), {"nwm": spec}, time_chunks_per_task=1)
    columns = {int(p) // rep.reach_chunk for p in rep.positions}
    time_chunks = -(-rep.n_time // rep.time_chunk)
    minimum = len(columns) * time_chunks

    units = source.plan_units(ids, batch_size)
    Path(log).unlink(missing_ok=True)
    _read_units(source, units)
    fetched = chunk_fetches(log)
    assert sum(fetched.values()) <= 1.1 * minimum
    assert len(fetched) == minimum
    assert max(fetched.values()) == 1

    # today's batching of the same list reads the same chunks again for every batch
    Path(log).unlink()
    for batch in plan_batches(ids, BATCH_SIZE):
        source.read_batch(batch)
    assert sum(chunk_fetches(log).values()) > 3 * minimum


def test_multi_gage_observed_and_model_stores_read_in_units_as_plainly(tmp_path):
    rep = write_chrtout(tmp_path / "chrtout.zarr", gages=30, seed=4)
    days = pd.date_range("1979-01-30", periods=14, freq="D") + pd.Timedelta(hours=5)
    values = np.random.default_rng(1).gamma(2.0, 3.0, (14, 30)).astype(np.float32)
    obs = str(tmp_path / "obs.zarr")
    xr.Dataset(
        {"streamflow": (("time", "gage_id"), values, {"units": "m3 s-1"})},
        coords={"time": days, "gage_id": np.array([f"USGS-{s}" for s in rep.sites], object)},
    ).to_zarr(obs, zarr_format=2, encoding={"streamflow": {"chunks": (7, 4)}})
    source = SourceSet(StoreConfig(obs), {"nwm": StoreConfig(rep.path)}, time_chunks_per_task=1)
    assert set(source.chunked_stores()) == {("observed",), ("model", "nwm")}
    ids = [f"USGS-{s}" for s in rep.sites][::-1]
    units = source.plan_units(ids, 6)

    def both(element, prepared):
        batch = prepared.read_batch(element[1])
        return batch.gage_ids, batch.observed, batch.modeled["nwm"]

    graphs = unit_graphs(source, list(enumerate(units)), both, ())
    assert graphs is not None  # the model store is chunked
    for ((gage_ids, observed, modeled),) in dask.compute(*graphs, scheduler="synchronous"):
        plain = source.read_batch(gage_ids)
        np.testing.assert_array_equal(observed, plain.observed)
        assert observed.dtype == plain.observed.dtype
        np.testing.assert_allclose(modeled, plain.modeled["nwm"], rtol=1e-12)


def test_one_gage_per_chunk_stores_keep_plain_batches(tmp_path):
    sites = ["01011000", "01013500", "01015800"]
    obs = write_daily_observed(tmp_path / "obs.zarr", sites, "2000-01-01", 10, seed=1)
    source = SourceSet(StoreConfig(obs), {"nwm": StoreConfig(obs)})
    ids = [f"USGS-{s}" for s in reversed(sites)]
    assert source.plan_units(ids, 2) == plan_batches(ids, 2)
    assert unit_graphs(source, [(0, tuple(ids))], lambda *a: a, ()) is None


# -- kerchunk reference stores, crosswalk variables, ft3/s ------------------------------


def _nhm_config(tmp_path: Path, nhm, obs: str, **extra):
    return load_config(
        output=str(tmp_path / "out"),
        observed={"url": obs},
        models={
            "nhm": {
                "url": "reference://",
                "variable": "seg_outflow",
                "consolidated": False,
                "storage_options": {"fo": nhm.reference, "remote_protocol": "file"},
                **extra,
            }
        },
    )


def test_nhm_kerchunk_store_with_poi_crosswalk_in_m3s(tmp_path):
    nhm = write_nhm_reference(tmp_path)
    obs = write_daily_observed(tmp_path / "obs.zarr", nhm.poi_sites, "2000-01-01", 80, seed=2)
    cfg = _nhm_config(
        tmp_path,
        nhm,
        obs,
        crosswalk={"gage_variable": "poi_gage_id", "feature_variable": "poi_gage_segment"},
    )
    source = SourceSet.from_config(cfg)
    assert source.check() == []
    ids = [f"USGS-{s}" for s in nhm.poi_sites]
    batch = source.read_batch(ids)
    for i, segment in enumerate(nhm.poi_segments):  # gages 2 and 3 share segment 7
        expected = nhm.flow_cfs[:, segment - 1].astype(np.float64) * FT3_TO_M3
        np.testing.assert_allclose(batch.modeled["nhm"][i], expected, rtol=1e-12)
    facts = source.manifest_entry()["models"]["nhm"]
    assert facts["units"] == "ft3 s-1"
    assert facts["converted"] is True
    assert facts["to_m3_per_s"] == pytest.approx(0.028316846592)


def test_engine_reference_reads_the_json_url_as_reference_urls_do(tmp_path):
    """``engine: reference`` with the JSON's URL as ``url`` (and the remote's options) is
    the same store as ``url: reference://`` with ``fo`` (found without the key)."""
    nhm = write_nhm_reference(tmp_path)
    obs = write_daily_observed(tmp_path / "obs.zarr", nhm.poi_sites, "2000-01-01", 80, seed=2)
    crosswalk = {"gage_variable": "poi_gage_id", "feature_variable": "poi_gage_segment"}
    old = SourceSet.from_config(_nhm_config(tmp_path, nhm, obs, crosswalk=crosswalk))
    cfg = load_config(
        output=str(tmp_path / "out"),
        observed={"url": obs},
        models={
            "nhm": {
                "url": nhm.reference,
                "engine": "reference",
                "variable": "seg_outflow",
                "storage_options": {"remote_protocol": "file"},
                "crosswalk": crosswalk,
            }
        },
    )
    assert cfg.models["nhm"].engine == "reference"
    new = SourceSet.from_config(cfg)
    assert new.check() == []
    ids = [f"USGS-{s}" for s in nhm.poi_sites]
    np.testing.assert_array_equal(
        new.read_batch(ids).modeled["nhm"], old.read_batch(ids).modeled["nhm"]
    )
    for i, segment in enumerate(nhm.poi_segments):
        expected = nhm.flow_cfs[:, segment - 1].astype(np.float64) * FT3_TO_M3
        np.testing.assert_allclose(new.read_batch(ids).modeled["nhm"][i], expected, rtol=1e-12)
    assert new.manifest_entry()["models"]["nhm"]["url"] == nhm.reference


def test_integer_segment_dim_without_crosswalk_is_refused(tmp_path):
    nhm = write_nhm_reference(tmp_path)
    obs = write_daily_observed(tmp_path / "obs.zarr", nhm.poi_sites, "2000-01-01", 80, seed=2)
    source = SourceSet.from_config(_nhm_config(tmp_path, nhm, obs))
    with pytest.raises(StorageError, match=r"'nhm_seg'.*crosswalk"):
        source.check()


def _reach_store(path: Path, units: str | None = "m3 s-1", gage_id=None) -> str:
    """(time, feature_id) daily store with integer reach ids 1011000.. (site-like!)."""
    times = pd.date_range("2000-01-01", periods=20, freq="D")
    values = np.arange(20 * 4, dtype=np.float32).reshape(20, 4) + 1
    attrs = {} if units is None else {"units": units}
    coords = {"time": times, "feature_id": np.array([1011000, 1013500, 7, 9], dtype=np.int64)}
    if gage_id is not None:
        coords["gage_id"] = ("feature_id", np.array(gage_id, dtype="S15"))
    xr.Dataset({"streamflow": (("time", "feature_id"), values, attrs)}, coords=coords).to_zarr(
        path, mode="w", zarr_format=2
    )
    return str(path)


def test_reach_ids_are_never_read_as_site_numbers(tmp_path):
    url = _reach_store(tmp_path / "reach.zarr")
    obs = write_daily_observed(tmp_path / "obs.zarr", ["01011000"], "2000-01-01", 20, seed=1)
    with pytest.raises(StorageError, match="crosswalk"):
        SourceSet(StoreConfig(obs), {"m": StoreConfig(url)}).check()


def test_csv_crosswalk_maps_gages_to_reaches(tmp_path):
    url = _reach_store(tmp_path / "reach.zarr")
    sites = ["01011000", "01013500", "02000000"]
    obs = write_daily_observed(tmp_path / "obs.zarr", sites, "2000-01-01", 20, seed=1)
    table = tmp_path / "xwalk.csv"
    table.write_text("site_no,comid\n01011000,9\n01013500,7\n02000000,7\n01011000,1011000\n")
    cfg = load_config(
        output=str(tmp_path / "out"),
        observed={"url": obs},
        models={
            "m": {
                "url": url,
                "crosswalk": {"url": str(table), "gage": "site_no", "feature": "comid"},
            }
        },
    )
    source = SourceSet.from_config(cfg)
    (warning,) = source.check()  # 01011000 listed twice: the first row's reach is used
    assert "gage USGS-01011000 2 times; using feature 9 (ignoring 1011000)" in warning
    batch = source.read_batch([f"USGS-{s}" for s in sites])
    values = np.arange(20 * 4, dtype=np.float32).reshape(20, 4) + 1
    np.testing.assert_array_equal(batch.modeled["m"][0], values[:, 3])
    np.testing.assert_array_equal(batch.modeled["m"][1], values[:, 2])
    np.testing.assert_array_equal(batch.modeled["m"][2], values[:, 2])


def test_crosswalk_with_unknown_features_or_columns_is_refused(tmp_path):
    url = _reach_store(tmp_path / "reach.zarr")
    obs = write_daily_observed(tmp_path / "obs.zarr", ["01011000"], "2000-01-01", 20, seed=1)
    table = tmp_path / "xwalk.csv"
    table.write_text("site_no,comid\n01011000,12345\n")
    bad = Crosswalk(url=str(table), gage="site_no", feature="comid")
    with pytest.raises(InputError, match="none of the crosswalk"):
        SourceSet(StoreConfig(obs), {"m": StoreConfig(url, crosswalk=bad)}).check()
    clear_cache()
    wrong = Crosswalk(url=str(table), gage="site", feature="comid")
    with pytest.raises(InputError, match=r"no column 'site'.*crosswalk.gage"):
        SourceSet(StoreConfig(obs), {"m": StoreConfig(url, crosswalk=wrong)}).check()


def test_duplicate_gage_warns_names_the_feature_and_is_recorded(tmp_path, caplog):
    ids = [b"01011000".rjust(15), b"".rjust(15), b"01011000".rjust(15), b"01013500".rjust(15)]
    url = _reach_store(tmp_path / "reach.zarr", gage_id=ids)
    obs = write_daily_observed(tmp_path / "obs.zarr", ["01011000"], "2000-01-01", 20, seed=1)
    source = SourceSet(StoreConfig(obs), {"m": StoreConfig(url)})
    with caplog.at_level("WARNING"):
        lines = source.check()
    assert len(lines) == 1
    assert "USGS-01011000" in lines[0]
    assert "feature_id=1011000" in lines[0]
    assert "ignoring feature_id=7" in lines[0]
    assert lines[0] in caplog.text
    dup = source.manifest_entry()["models"]["m"]["duplicate_gages"]
    assert dup == {"USGS-01011000": {"used": "feature_id=1011000", "ignored": ["feature_id=7"]}}
    first = np.arange(20 * 4, dtype=np.float32).reshape(20, 4)[:, 0] + 1
    np.testing.assert_array_equal(source.read_batch(["USGS-01011000"]).modeled["m"][0], first)


# -- units -------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["ft3 s-1", "ft3/s", "ft^3/s", "cfs", "CFS", " ft3  s-1 "])
def test_ft3s_spellings_convert(text):
    assert resolve_units(text, None, "model", "u").factor == pytest.approx(0.3048**3)


@pytest.mark.parametrize("text", ["m3 s-1", "m3/s", "m^3/s", "cms"])
def test_m3s_spellings_do_not_convert(text):
    assert resolve_units(text, None, "model", "u").factor == 1.0


def test_units_setting_overrides_attribute_and_unknown_units_are_refused(tmp_path):
    url = _reach_store(tmp_path / "r.zarr", units="m3 s-1", gage_id=[b"01011000"] * 1 + [b""] * 3)
    obs = write_daily_observed(tmp_path / "obs.zarr", ["01011000"], "2000-01-01", 20, seed=1)
    source = SourceSet(StoreConfig(obs), {"m": StoreConfig(url, units="cfs")})
    got = source.read_batch(["USGS-01011000"]).modeled["m"][0]
    expected = (np.arange(20 * 4).reshape(20, 4)[:, 0] + 1.0) * FT3_TO_M3
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert source.manifest_entry()["models"]["m"]["units_from"] == "setting"
    clear_cache()
    bad = _reach_store(tmp_path / "b.zarr", units="acre-ft/day", gage_id=[b"01011000"] + [b""] * 3)
    with pytest.raises(InputError, match=r"unknown streamflow units 'acre-ft/day'.*'units'"):
        SourceSet(StoreConfig(obs), {"m": StoreConfig(bad)}).check()


def test_missing_units_warn_once_and_mean_m3s(tmp_path):
    url = _reach_store(tmp_path / "r.zarr", units=None, gage_id=[b"01011000"] + [b""] * 3)
    obs = write_daily_observed(tmp_path / "obs.zarr", ["01011000"], "2000-01-01", 20, seed=1)
    source = SourceSet(StoreConfig(obs), {"m": StoreConfig(url)})
    lines = source.check()
    assert len(lines) == 1
    assert "no units attribute; taking m3/s" in lines[0]
    assert source.manifest_entry()["models"]["m"]["units"] is None


# -- configuration -----------------------------------------------------------------------


def test_store_keys_are_validated(tmp_path):
    base: dict[str, Any] = {"output": str(tmp_path), "observed": {"url": "x.zarr"}}
    with pytest.raises(ConfigError, match=r"models\.m\.consolidated"):
        load_config(**base, models={"m": {"url": "y", "consolidated": "yes"}})
    with pytest.raises(ConfigError, match=r"models\.m\.crosswalk"):
        load_config(**base, models={"m": {"url": "y", "crosswalk": {"url": "x.csv"}}})
    cfg = load_config(
        **base,
        models={
            "m": {
                "url": "y",
                "consolidated": False,
                "units": "cfs",
                "crosswalk": {"gage_variable": "a", "feature_variable": "b"},
            }
        },
    )
    store = cfg.models["m"]
    assert store.consolidated is False
    assert store.units == "cfs"
    assert store.crosswalk == Crosswalk(gage_variable="a", feature_variable="b")
    assert cfg.to_dict()["models"]["m"]["crosswalk"]["gage_variable"] == "a"


@pytest.mark.parametrize("name", ["nwm-chrtout", "hytest-nwm-gages", "nhm-reference"])
def test_published_store_examples_load_and_pickle(name):
    examples = Path(__file__).resolve().parents[2] / "examples"
    cfg = load_config(examples / f"{name}.yaml")
    cfg.require_stores()
    text = (examples / f"{name}.yaml").read_text()
    assert "NOT TESTED AGAINST THE REAL STORES" in text
    source = pickle.loads(pickle.dumps(SourceSet.from_config(cfg)))  # what workers get
    for spec in source.models.values():
        assert spec.url.startswith(("s3://", "reference://"))


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_integer_flows_without_cf_coding_warn_naming_store_and_variable(tmp_path, zarr_format):
    """int32 hundredths with -100 for missing, no CF attributes: scored as m3/s unless the
    user is told (real zarr stores on disk)."""
    days = pd.date_range("2000-01-01", periods=30)
    ids = ["USGS-01011000", "USGS-01013500"]
    hundredths = (np.arange(60, dtype=np.int32).reshape(30, 2) + 1) * 100
    hundredths[3, 0] = -100

    def store(name: str, attrs: dict[str, Any]) -> str:
        da = xr.DataArray(
            hundredths, coords={"time": days, "gage_id": ids}, dims=("time", "gage_id")
        )
        da.attrs.update({"units": "m3 s-1", **attrs})
        url = str(tmp_path / name)
        xr.Dataset({"q": da}).to_zarr(url, zarr_format=zarr_format, consolidated=zarr_format == 2)
        return url

    bare = store("bare.zarr", {})
    coded = store("coded.zarr", {"scale_factor": 0.01, "_FillValue": -100})
    source = SourceSet(StoreConfig(bare, variable="q"), {"m": StoreConfig(coded, variable="q")})
    lines = source.check()
    flagged = [line for line in lines if "int32 integers" in line]
    assert len(flagged) == 1, lines
    assert bare in flagged[0]
    assert "variable 'q'" in flagged[0]
    assert "scale_factor, add_offset or _FillValue" in flagged[0]
    batch = source.read_batch(["USGS-01011000"])
    assert np.isnan(batch.modeled["m"][0][3])  # the coded store decodes its fill value
    assert batch.modeled["m"][0][0] == pytest.approx(1.0)


def test_a_zarr_store_is_opened_once(tmp_path):
    """Its metadata is read once: xarray's view and the zarr array come from one open (the
    store used to be opened twice, by xarray and by zarr)."""
    register_counting()
    sites = ["01011000", "01013500", "01015800"]
    obs = write_daily_observed(tmp_path / "obs.zarr", sites, "2000-01-01", 10, seed=1)
    log = tmp_path / "fetches.log"
    spec = StoreConfig(f"counting://{obs}", storage_options={"log": str(log)})
    source = SourceSet(spec, {"nwm": spec})
    source.check()  # opens the store (one cache entry for both)
    fetched = Counter(log.read_text().split())
    metadata = {k.rsplit("obs.zarr", 1)[1]: n for k, n in fetched.items() if k.endswith(_METADATA)}
    assert {"/.zmetadata", "/.zgroup", "/zarr.json"} <= set(metadata), metadata
    assert set(metadata.values()) == {1}, metadata
    batch = source.read_batch([f"USGS-{s}" for s in sites])
    assert not batch.missing_observed


_METADATA = (".zmetadata", ".zgroup", ".zattrs", "zarr.json", ".zarray")
