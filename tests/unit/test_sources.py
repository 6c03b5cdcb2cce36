"""gagebench.sources.stores on small zarr stores written here with xarray (independent of synth)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from gagebench.config import StoreConfig, load_config
from gagebench.errors import InputError, StorageError
from gagebench.ids import canonical_id
from gagebench.sources.stores import (
    SourceSet,
    clear_cache,
    subdaily_to_daily,
)

DAYS = pd.date_range("2000-01-01", periods=60, freq="D")
SITES = ["01011000", "01013500", "0208111310", "12345678", "09999999"]
IDS = [f"USGS-{s}" for s in SITES]


@pytest.fixture(autouse=True)
def _fresh_cache():
    clear_cache()
    yield
    clear_cache()


def _values(n_gages: int, n_time: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.gamma(2.0, 3.0, (n_time, n_gages)).astype("float32")


def write_daily(path: Path, ids: list[str], values: np.ndarray, hour: int = 5) -> str:
    """An observed-like store: (time, gage_id), one gage per chunk, stamped at ``hour``."""
    times = DAYS[: values.shape[0]] + pd.Timedelta(hours=hour)
    ds = xr.Dataset(
        {"streamflow": (("time", "gage_id"), values)},
        coords={"time": times, "gage_id": np.array(ids, dtype=object)},
    )
    ds.to_zarr(
        path,
        mode="w",
        zarr_format=2,
        encoding={"streamflow": {"chunks": (values.shape[0], 1)}},
    )
    return str(path)


def write_hourly_feature(
    path: Path, sites: list[str], values: np.ndarray, start: str = "2000-01-01T01:00"
) -> str:
    """An NWM-like store: (time, feature_id), byte gage_id padded to 15, blank features too."""
    times = pd.date_range(start, periods=values.shape[0], freq="h")
    padded = np.array([s.rjust(15).encode() for s in sites], dtype="S15")
    ds = xr.Dataset(
        {"streamflow": (("time", "feature_id"), values)},
        coords={
            "time": times,
            "feature_id": np.arange(values.shape[1]) * 7 + 101,
            "gage_id": ("feature_id", padded),
        },
    )
    ds.to_zarr(
        path,
        mode="w",
        zarr_format=2,
        encoding={"streamflow": {"chunks": (values.shape[0], 1)}},
    )
    return str(path)


def test_canonical_id_matches_bare_prefixed_padded_and_integer_ids():
    assert canonical_id(b"       01011000") == "USGS-01011000"
    assert canonical_id("01011000") == "USGS-01011000"
    assert canonical_id("USGS-01011000") == "USGS-01011000"
    assert canonical_id(np.bytes_(b"  0208111310")) == "USGS-0208111310"
    assert canonical_id(1011000) == "USGS-01011000"  # integers lost the zero; pad to 8
    assert canonical_id(b"               ") is None
    assert canonical_id("  ") is None
    assert canonical_id("CDEC-ABC") == "CDEC-ABC"


def test_batch_reads_values_on_the_observed_days_in_request_order(tmp_path):
    obs = _values(5, 60, 1)
    sim = _values(4, 50, 2)
    obs_url = write_daily(tmp_path / "obs.zarr", IDS, obs)
    # The model store has its gages in another order, lacks one gage, stores bare site
    # numbers, is stamped at midnight and covers only days 10..59.
    order = [3, 0, 2, 1]
    times = DAYS[10:60]
    ds = xr.Dataset(
        {"q": (("time", "gage_id"), sim)},
        coords={"time": times, "gage_id": np.array([SITES[i] for i in order], dtype=object)},
    )
    ds.to_zarr(tmp_path / "sim.zarr", mode="w", zarr_format=3, consolidated=False)
    sources = SourceSet(
        StoreConfig(obs_url), {"m": StoreConfig(str(tmp_path / "sim.zarr"), variable="q")}
    )
    wanted = [IDS[4], IDS[2], IDS[0], "USGS-55555555"]
    batch = sources.read_batch(wanted)

    assert batch.gage_ids == wanted
    np.testing.assert_array_equal(batch.dates, DAYS.to_numpy().astype("datetime64[D]"))
    assert batch.observed.shape == (4, 60)
    np.testing.assert_array_equal(batch.observed[0], obs[:, 4])
    np.testing.assert_array_equal(batch.observed[1], obs[:, 2])
    np.testing.assert_array_equal(batch.observed[2], obs[:, 0])
    assert np.isnan(batch.observed[3]).all()
    assert batch.missing_observed == frozenset({"USGS-55555555"})

    model = batch.modeled["m"]
    assert model.shape == (4, 60)
    assert np.isnan(model[:, :10]).all()
    np.testing.assert_array_equal(model[1, 10:], sim[:, order.index(2)])
    np.testing.assert_array_equal(model[2, 10:], sim[:, order.index(0)])
    assert np.isnan(model[0]).all()
    assert np.isnan(model[3]).all()
    assert batch.missing_model == {"m": frozenset({IDS[4], "USGS-55555555"})}


def test_batch_touches_only_its_gages_chunks(tmp_path):
    obs = _values(5, 60, 3)
    url = write_daily(tmp_path / "obs.zarr", IDS, obs)
    # Corrupt every chunk except those of gages 1 and 3: reading them must not notice.
    for j in (0, 2, 4):
        (tmp_path / "obs.zarr" / "streamflow" / f"0.{j}").write_bytes(b"not a blosc chunk")
    # A damaged chunk is fetched again, then is an error: a small retry budget through the
    # run's own `retries` setting, so the real retry loop runs (3 attempts, < 0.5 s asleep).
    cfg = load_config(
        output=str(tmp_path / "out"),
        observed={"url": url},
        models={"m": {"url": url}},
        retries={"max_attempts": 3, "max_wait_s": 0.5},
    )
    sources = SourceSet.from_config(cfg)
    batch = sources.read_batch([IDS[3], IDS[1]])
    np.testing.assert_array_equal(batch.observed, obs[:, [3, 1]].T)
    with pytest.raises(StorageError, match=r"obs\.zarr.* and 3 attempts"):
        sources.read_batch([IDS[0]])


def _pandas_daily(values: np.ndarray, start: str) -> pd.DataFrame:
    times = pd.date_range(start, periods=values.shape[0], freq="h")
    frame = pd.DataFrame(values, index=times).resample("1D", offset="5h").mean()
    frame.index = pd.DatetimeIndex(frame.index).floor("D")
    return frame


@pytest.mark.parametrize("start", ["2000-01-01T01:00", "1999-12-31T17:00", "2000-01-01T05:00"])
def test_hourly_feature_id_store_gives_pandas_resample_daily_means(tmp_path, start):
    n_hours = 24 * 30 + 7
    rng = np.random.default_rng(4)
    hourly = rng.gamma(2.0, 2.0, (n_hours, 4)).astype("float32")
    hourly[rng.random(hourly.shape) < 0.2] = np.nan  # partial days
    hourly[100:160, 1] = np.nan  # whole days missing
    sites = [SITES[0], SITES[2], "", SITES[1]]  # one feature without a gage
    model_url = write_hourly_feature(tmp_path / "nwm.zarr", sites, hourly, start)
    obs_url = write_daily(tmp_path / "obs.zarr", IDS, _values(5, 40, 5))
    sources = SourceSet(StoreConfig(obs_url), {"nwm": StoreConfig(model_url)})

    batch = sources.read_batch([IDS[1], IDS[0], IDS[2], IDS[3]])
    expected = _pandas_daily(hourly, start).reindex(DAYS[:40])
    got = batch.modeled["nwm"]
    for row, col in ((0, 3), (1, 0), (2, 1)):
        np.testing.assert_allclose(got[row], expected[col].to_numpy(), rtol=1e-6)
    assert np.isnan(got[3]).all()
    assert batch.missing_model["nwm"] == frozenset({IDS[3]})


def test_subdaily_to_daily_irregular_axis_matches_pandas():
    rng = np.random.default_rng(6)
    hours = np.sort(rng.choice(24 * 20, 300, replace=False))
    times = np.datetime64("2001-03-01T00:00", "ns") + hours * np.timedelta64(1, "h")
    values = rng.gamma(2.0, 2.0, (2, hours.size))
    values[0, ::7] = np.nan
    days, daily = subdaily_to_daily(values, times)
    frame = pd.DataFrame(values.T, index=pd.DatetimeIndex(times))
    expected = frame.resample("1D", offset="5h").mean()
    expected.index = pd.DatetimeIndex(expected.index).floor("D")
    expected = expected.dropna(how="all")
    got = pd.DataFrame(daily.T, index=pd.DatetimeIndex(days)).reindex(expected.index)
    np.testing.assert_allclose(got.to_numpy(), expected.to_numpy(), rtol=1e-12)


def test_subdaily_to_daily_rejects_unsorted_time():
    times = np.array(["2001-01-01T02", "2001-01-01T01"], dtype="datetime64[ns]")
    with pytest.raises(InputError, match="increasing"):
        subdaily_to_daily(np.ones((1, 2)), times)


def test_scaled_integer_store_is_decoded_like_xarray(tmp_path):
    """NWM's raw store keeps int32 with scale_factor 0.01 and a fill value."""
    flows = np.round(_values(3, 60, 7).astype("float64"), 2)
    flows[5, 1] = np.nan
    ds = xr.Dataset(
        {"streamflow": (("time", "gage_id"), flows)},
        coords={"time": DAYS, "gage_id": np.array(IDS[:3], dtype=object)},
    )
    encoding = {
        "streamflow": {
            "dtype": "int32",
            "scale_factor": 0.01,
            "_FillValue": -999900,
            "chunks": (60, 1),
        }
    }
    ds.to_zarr(tmp_path / "m.zarr", mode="w", zarr_format=2, encoding=encoding)
    url = str(tmp_path / "m.zarr")
    batch = SourceSet(StoreConfig(url), {"m": StoreConfig(url)}).read_batch(IDS[:3])
    reference = xr.open_zarr(url)["streamflow"].to_numpy().T
    np.testing.assert_allclose(batch.modeled["m"], reference, rtol=1e-12)
    assert np.isnan(batch.modeled["m"][1, 5])


def test_other_chunking_and_gage_major_layout(tmp_path):
    values = _values(5, 60, 8)
    ds = xr.Dataset(
        {"streamflow": (("gage_id", "time"), values.T)},
        coords={"time": DAYS + pd.Timedelta(hours=5), "gage_id": np.array(IDS, dtype=object)},
    )
    ds.to_zarr(
        tmp_path / "s.zarr",
        mode="w",
        zarr_format=3,
        consolidated=False,
        encoding={"streamflow": {"chunks": (2, 16)}},
    )
    url = str(tmp_path / "s.zarr")
    batch = SourceSet(StoreConfig(url), {"m": StoreConfig(url)}).read_batch([IDS[4], IDS[0]])
    np.testing.assert_array_equal(batch.observed, values[:, [4, 0]].T)


def test_from_config_pickle_and_memory_store(tmp_path):
    obs_url = write_daily(tmp_path / "obs.zarr", IDS, _values(5, 60, 9))
    cfg = load_config(
        output=str(tmp_path / "out"),
        observed={"url": f"file://{obs_url}"},
        models={"a": {"url": obs_url}, "b": {"url": obs_url}},
        # Options meant for an object store must not break local stores.
        storage_options={"key": "k", "secret": "s", "endpoint_url": "http://127.0.0.1:1"},
    )
    sources = SourceSet.from_config(cfg)
    sources.check()
    clone = pickle.loads(pickle.dumps(sources))
    batch = clone.read_batch(IDS[:2])
    np.testing.assert_array_equal(batch.modeled["a"], batch.observed)
    assert set(batch.modeled) == {"a", "b"}

    ds = xr.open_zarr(obs_url).load().drop_encoding()
    ds.to_zarr("memory://gagebench-test/obs.zarr", mode="w", zarr_format=2)
    mem = SourceSet(StoreConfig("memory://gagebench-test/obs.zarr"), {"m": StoreConfig(obs_url)})
    np.testing.assert_array_equal(mem.read_batch(IDS[:2]).observed, batch.observed)


def test_check_names_missing_store_and_missing_variable(tmp_path):
    obs_url = write_daily(tmp_path / "obs.zarr", IDS, _values(5, 60, 10))
    missing = str(tmp_path / "nowhere.zarr")
    with pytest.raises(StorageError, match=r"model 'nwm' store '.*nowhere\.zarr'.*check the URL"):
        SourceSet(StoreConfig(obs_url), {"nwm": StoreConfig(missing)}).check()
    with pytest.raises(StorageError, match=r"no variable 'flow'.*streamflow"):
        SourceSet(StoreConfig(obs_url, variable="flow"), {"m": StoreConfig(obs_url)}).check()


def test_observed_store_must_be_daily(tmp_path):
    url = write_hourly_feature(tmp_path / "h.zarr", SITES[:2], _values(2, 72, 11))
    with pytest.raises(InputError, match="not daily"):
        SourceSet(StoreConfig(url), {"m": StoreConfig(url)}).read_batch(IDS[:1])


@pytest.mark.parametrize("where", ["local", "memory"])
def test_a_store_rewritten_in_place_is_reopened_without_clear_cache(
    where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Long-lived workers must not read a rewritten store through stale cached metadata."""
    import gagebench.sources.cache as stores

    monkeypatch.setattr(stores, "REVALIDATE_S", 0.0)
    url = str(tmp_path / "obs.zarr") if where == "local" else f"memory://rewrite-{tmp_path.name}"
    write_daily(url, IDS[:3], _values(3, 40, seed=1))  # type: ignore[arg-type]
    first = stores.open_store("observed", StoreConfig(url))
    assert stores.open_store("observed", StoreConfig(url)) is first  # unchanged: reused
    write_daily(url, IDS, _values(5, 60, seed=2))  # type: ignore[arg-type]
    second = stores.open_store("observed", StoreConfig(url))
    assert second is not first
    assert second.n_time == 60
    assert len(second.gage_ids()) == 5
    batch = SourceSet(StoreConfig(url), {"m": StoreConfig(url)}).read_batch(IDS)
    assert batch.observed.shape[0] == 5


def test_the_store_cache_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gagebench.sources.cache as stores

    monkeypatch.setattr(stores, "MAX_OPEN_STORES", 2)
    urls = [write_daily(tmp_path / f"s{i}.zarr", IDS[:2], _values(2, 30, seed=i)) for i in range(4)]
    opened = [stores.open_store("observed", StoreConfig(u)) for u in urls]
    assert len(stores._CACHE) == 2
    assert stores.open_store("observed", StoreConfig(urls[-1])) is opened[-1]  # most recent kept
    assert stores.open_store("observed", StoreConfig(urls[0])) is not opened[0]  # evicted
