"""Silent wrong results of ``gagebench.evaluate`` and the engine (issue "Hardening, second
pass", items 6-9): infinite flows in every suite, notes that name every condition, time
zones, named Series. Values are checked against the independent references in
``_bootjack_reference`` and ``_reference``, never against the engine itself."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from _bootjack_reference import bootjack, valid_years
from _reference import reference_gage

import gagebench
from gagebench import uncertainty_suite as unc
from gagebench.errors import InputError


def _flows(seed: int = 5, n_years: int = 13) -> pd.DataFrame:
    """A gage's (date, obs, sim) days: seasonal flows, a model with bias and noise."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range("1990-10-01", periods=int(365.25 * n_years), freq="D")
    doy = dates.day_of_year.to_numpy()
    q = np.exp(np.sin(2 * np.pi * doy / 365.25) + rng.normal(0, 0.5, dates.size)) * 10
    s = q * 1.2 * np.exp(rng.normal(0, 0.4, q.size))
    return pd.DataFrame({"date": dates, "obs": q, "sim": s})


def _year_table(frame: pd.DataFrame, n_samples: int = 100) -> np.ndarray:
    years = valid_years(frame)
    n_slots = pd.unique(frame["date"].dt.year + (frame["date"].dt.month >= 10)).size
    table = np.full((n_slots, n_samples), unc.PAD)
    table[: years.size] = np.random.default_rng(2).choice(years, size=(years.size, n_samples))
    return table


# --- item 6: +/-inf is a missing day in every suite -------------------------------------------


@pytest.mark.parametrize("mode", ["standard", "hytest"])
@pytest.mark.parametrize("where", ["obs", "sim"])
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_an_infinite_flow_is_a_missing_day_in_the_uncertainty_suite(
    mode: str, where: str, sign: float
) -> None:
    frame = _flows()
    broken = frame.copy()
    broken.loc[400, where] = sign * np.inf
    table = _year_table(frame)
    dropped = frame.copy()
    dropped.loc[400, where] = np.nan  # the reference: that day is missing
    expected = bootjack(dropped, table, mode)
    indexed = broken.set_index("date")
    got = gagebench.evaluate(
        indexed["obs"], indexed["sim"], suites=("standard", "uncertainty"), mode=mode,
        boot_years=table, gages=["1"],
    ).iloc[0]  # fmt: skip
    assert got["status"] == "ok", got["note"]
    label = "observed" if where == "obs" else "modeled"
    assert f"infinite {label} flows (treated as missing)" in got["note"]
    for stat, fields in expected.items():
        for name, value in fields.items():
            assert got[f"{stat}_{name}"] == pytest.approx(value, abs=1e-9, rel=1e-9), (stat, name)


def test_boot_years_table_treats_an_infinite_flow_as_missing() -> None:
    frame = _flows(n_years=11)
    settings = unc.UncertaintySettings(seed=3, n_samples=20, min_days=364, min_years=5)
    clean = frame.copy()
    # water year 1992 has 366 days; with one missing and one infinite it has 364 valid
    # days, not more than min_days: the +inf day must not count, or 1992 would be drawn
    clean.loc[clean["date"] == "1991-10-01", "obs"] = np.nan
    broken = clean.copy()
    broken.loc[broken["date"] == "1991-10-03", "obs"] = np.inf
    clean.loc[clean["date"] == "1991-10-03", "obs"] = np.nan
    got = unc.boot_year_table(broken["obs"], broken["sim"], broken["date"], "1", settings)
    want = unc.boot_year_table(clean["obs"], clean["sim"], clean["date"], "1", settings)
    np.testing.assert_array_equal(got, want)
    assert 1992 not in got


def test_a_row_whose_uncertainty_has_no_value_is_not_ok() -> None:
    """A constant model: KGE (r, alpha) is undefined in every sample; the row says so."""
    frame = _flows()
    indexed = frame.set_index("date").rename(columns={"sim": "obs"})  # one gage's name
    flat = indexed.iloc[:, 1] * 0.0 + 3.0
    alone = gagebench.evaluate(indexed.iloc[:, 0], flat, suites="uncertainty", seed=1).iloc[0]
    assert alone["status"] != "ok"
    assert "KGE" in alone["note"]
    assert np.isnan(alone["KGE_score"])
    both = gagebench.evaluate(
        indexed.iloc[:, 0], flat, suites=("dscore", "uncertainty"), seed=1
    ).iloc[0]
    assert both["status"] == "partial"
    assert "KGE" in both["note"]
    fine = gagebench.evaluate(indexed.iloc[:, 0], indexed.iloc[:, 1], suites="uncertainty", seed=1)
    assert fine["status"].iloc[0] == "ok"


# --- item 7: the note names every condition ---------------------------------------------------


@pytest.mark.parametrize("inf", [np.inf, -np.inf])
@pytest.mark.parametrize("label", ["observed", "modeled"])
def test_note_names_negative_and_infinite_flows_together(inf: float, label: str) -> None:
    idx = pd.date_range("2000-01-01", periods=400, freq="D")
    base = pd.Series(np.linspace(1, 5, 400), index=idx)
    obs, sim = base.copy(), base * 1.1
    target = obs if label == "observed" else sim
    target.iloc[5] = -0.5
    target.iloc[9] = inf
    note = gagebench.evaluate(obs, sim).iloc[0]["note"]
    assert f"negative {label} flows (kept as data)" in note
    assert f"infinite {label} flows (treated as missing)" in note


# --- item 11: standard pBiasFMS reads each series' own flow-duration curve --------------------


def test_standard_fms_reads_the_flow_duration_curve_at_exceedance_02_and_07() -> None:
    """By hand: the i-th largest of n = 10 flows has exceedance i/10, so the curve reaches
    0.2 at the 2nd largest flow and 0.7 at the 7th (not 0.7 * 10 = 7.000000000000001 -> 8th).
    HyTEST's quantiles would interpolate between neighbours instead."""
    obs = np.array([3.0, 10.0, 1.0, 7.0, 2.0, 9.0, 4.0, 8.0, 5.0, 6.0])  # 10..1 shuffled
    sim = np.array([0.5, 30.0, 0.2, 6.0, 0.3, 20.0, 1.0, 12.0, 2.0, 4.0])
    # observed curve: 10, 9, 8, 7, 6, 5, 4, 3, 2, 1 -> 9 at 0.2, 4 at 0.7
    # simulated curve: 30, 20, 12, 6, 4, 2, 1, 0.5, 0.3, 0.2 -> 20 at 0.2, 1 at 0.7
    o_slope = np.log(9.0) - np.log(4.0)
    s_slope = np.log(20.0) - np.log(1.0)
    expected = 100 * (s_slope - o_slope) / o_slope
    got = gagebench.evaluate(obs, sim, suites="standard", min_paired_days=2)
    assert got["pBiasFMS"].iloc[0] == pytest.approx(expected, rel=1e-12)
    assert gagebench.metrics.pbias_fms(obs, sim) == pytest.approx(expected, rel=1e-12)


def test_standard_fms_floors_the_curve_at_001() -> None:
    """An intermittent gage: the 0.7 point of the simulated curve is a zero flow, read as
    ln 0.01 (n = 20: the 4th and 14th largest)."""
    obs = np.arange(20.0, 0.0, -1.0)  # 20..1: 17 at 0.2, 7 at 0.7
    sim = np.concatenate([np.arange(40.0, 30.0, -1.0), np.zeros(10)])  # 37 at 0.2, 0 at 0.7
    o_slope = np.log(17.0) - np.log(7.0)
    s_slope = np.log(37.0) - np.log(0.01)
    got = gagebench.evaluate(obs, sim, suites="standard", min_paired_days=2)
    assert got["pBiasFMS"].iloc[0] == pytest.approx(100 * (s_slope - o_slope) / o_slope)


@pytest.mark.parametrize("n", [365, 366, 367, 1000, 1003, 12145])
def test_standard_fms_equals_the_reference_for_every_remainder(n: int) -> None:
    rng = np.random.default_rng(n)
    idx = pd.date_range("1990-01-01", periods=n, freq="D")
    obs = pd.Series(np.round(rng.lognormal(1, 1.5, n), 1), index=idx)  # ties and zeros
    obs[obs < 0.3] = 0.0
    sim = pd.Series(np.round(obs * rng.lognormal(0, 0.5, n), 1), index=idx)
    got = gagebench.evaluate(obs, sim, suites="standard").iloc[0]
    want = reference_gage(obs, sim, suites=("standard",))
    for name in ("pBiasFMS", "pBiasFLV", "pBiasFHV"):
        assert got[name] == pytest.approx(want[name], rel=1e-12, abs=1e-12), name


# --- item 8: time-zone-aware inputs pair on UTC days --------------------------------------------


def _utc_pair(n: int = 800) -> tuple[pd.Series, pd.Series]:
    """Daily flows stamped 05:00 UTC (HyTEST's observed), as naive UTC series."""
    rng = np.random.default_rng(8)
    idx = pd.date_range("2001-01-01 05:00", periods=n, freq="D")
    obs = pd.Series(np.exp(rng.normal(1, 0.6, n)), index=idx)
    sim = pd.Series(obs.to_numpy() * np.exp(rng.normal(0.1, 0.3, n)), index=idx)
    return obs, sim


def test_inputs_in_two_time_zones_pair_on_utc_days() -> None:
    obs, sim = _utc_pair()
    east = obs.tz_localize("UTC").tz_convert("America/New_York")  # 00:00 local
    paris = sim.tz_localize("UTC").tz_convert("Europe/Paris")  # 06:00 or 07:00 local
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no false "no day in common" warning
        got = gagebench.evaluate(east, paris).iloc[0]
    days = pd.DatetimeIndex(obs.index).normalize()
    want = reference_gage(pd.Series(obs.to_numpy(), days), pd.Series(sim.to_numpy(), days))
    assert got["status"] == "ok"
    assert got["n_days"] == len(obs)
    for name in ("NSE", "KGE", "pBiasFMS", "mse", "winter", "summer", "high"):
        assert got[name] == pytest.approx(want[name], rel=1e-10), name
    assert got["first_day"] == pd.Timestamp("2001-01-01")


def test_time_zone_aware_inputs_carry_dates_for_dscore_and_uncertainty() -> None:
    frame = _flows(n_years=11)
    obs = frame.set_index("date")["obs"].tz_localize("Asia/Tokyo").rename("1")
    sim = frame.set_index("date")["sim"].tz_localize("Asia/Tokyo").rename("1")
    with pytest.warns(UserWarning, match="calendar day in UTC"):  # Tokyo's midnights
        got = gagebench.evaluate(obs, sim, suites=("dscore", "uncertainty"), seed=1).iloc[0]
    assert got["status"] == "ok", got["note"]
    assert np.isfinite(got["winter"])
    assert np.isfinite(got["KGE_p05"])
    # Tokyo's midnight is the previous UTC day: the days shift by one, consistently
    assert got["first_day"] == frame["date"].iloc[0] - pd.Timedelta(days=1)
    xr = pytest.importorskip("xarray")
    da = xr.DataArray(obs.to_numpy(), coords={"time": obs.index.rename("time")}, dims="time")
    with pytest.warns(UserWarning, match="calendar day in UTC"):
        from_xarray = gagebench.evaluate(da, sim, suites="dscore").iloc[0]
    assert from_xarray["winter"] == pytest.approx(got["winter"], rel=1e-12)


# --- item 9: a named Series' name is its site_no ------------------------------------------------


def test_named_series_give_their_site_no() -> None:
    obs, sim = _utc_pair()
    named = gagebench.evaluate(obs.rename("01104200"), sim.rename("01104200"), suites="standard")
    assert named["site_no"].tolist() == ["01104200"]
    two = gagebench.evaluate(
        obs.rename("USGS-01104200"), {"nwm": sim, "nhm": sim.rename("USGS-01104200")},
        suites="standard",
    )  # fmt: skip
    assert two["site_no"].tolist() == ["USGS-01104200"] * 2


def test_series_with_different_names_warn_and_keep_observed_name() -> None:
    obs, sim = _utc_pair()
    with pytest.warns(UserWarning, match=r"named '01104200' but modeled '01105000'.*gages="):
        table = gagebench.evaluate(obs.rename("01104200"), sim.rename("01105000"))
    assert table["site_no"].tolist() == ["01104200"]
    same = gagebench.evaluate(obs, sim).drop(columns="site_no")
    pd.testing.assert_frame_equal(table.drop(columns="site_no"), same)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        given = gagebench.evaluate(obs.rename("obs"), sim.rename("nwm"), gages=["01104200"])
    assert given["site_no"].tolist() == ["01104200"]


# --- tracebacks: an xarray Dataset ------------------------------------------------------------


def test_evaluate_accepts_a_dataset_with_one_variable_or_variable() -> None:
    xr = pytest.importorskip("xarray")
    obs, sim = _utc_pair()
    one = xr.Dataset({"streamflow": ("time", obs.to_numpy())}, coords={"time": obs.index})
    both = one.assign(stage=("time", obs.to_numpy() * 0.1))
    model = xr.Dataset({"streamflow": ("time", sim.to_numpy())}, coords={"time": obs.index})
    want = gagebench.evaluate(obs, sim, suites="standard")
    got = gagebench.evaluate(one, model, suites="standard")
    assert got["NSE"].iloc[0] == pytest.approx(want["NSE"].iloc[0], rel=1e-12)
    chosen = gagebench.evaluate(both, model, suites="standard", variable="streamflow")
    assert chosen["NSE"].iloc[0] == pytest.approx(want["NSE"].iloc[0], rel=1e-12)
    with pytest.raises(InputError, match=r"observed is a Dataset with 2 data variables.*variable="):
        gagebench.evaluate(both, model, suites="standard")
    with pytest.raises(InputError, match=r"without the variable 'flow'.*streamflow"):
        gagebench.evaluate(both, model, suites="standard", variable="flow")


def test_a_run_batch_treats_an_infinite_stored_flow_as_missing(tmp_path) -> None:
    """The run's path (real zarr stores, SourceSet, evaluate_batch) with +inf in a store."""
    xr = pytest.importorskip("xarray")
    from gagebench.config import StoreConfig
    from gagebench.pipeline import evaluate_batch
    from gagebench.sources.stores import SourceSet, clear_cache

    frame = _flows()
    stored = frame.copy()
    stored.loc[500, "sim"] = np.inf
    times = pd.DatetimeIndex(frame["date"]) + pd.Timedelta(hours=5)
    urls = {}
    for name in ("obs", "sim"):
        ds = xr.Dataset(
            {"streamflow": (("time", "gage_id"), stored[[name]].to_numpy(), {"units": "m3 s-1"})},
            coords={"time": times, "gage_id": np.array(["USGS-01030500"], dtype=object)},
        )
        urls[name] = str(tmp_path / f"{name}.zarr")
        ds.to_zarr(urls[name], zarr_format=2)
    table = _year_table(frame)
    settings = unc.UncertaintySettings(boot_years=table)
    clear_cache()
    source = SourceSet(StoreConfig(urls["obs"]), {"m": StoreConfig(urls["sim"])})
    row = evaluate_batch(
        source, ["USGS-01030500"], ["m"], ("standard", "uncertainty"), "standard", 365, settings
    ).iloc[0]
    clear_cache()
    dropped = frame.copy()
    dropped.loc[500, "sim"] = np.nan
    expected = bootjack(dropped, table, "standard")
    assert row["status"] == "ok", row["note"]
    assert "infinite modeled flows (treated as missing)" in row["note"]
    assert row["n_days"] == len(frame) - 1
    for stat, fields in expected.items():
        for name, value in fields.items():
            assert row[f"{stat}_{name}"] == pytest.approx(value, abs=1e-9, rel=1e-9), (stat, name)


def test_time_argument_in_a_time_zone_counts_in_utc() -> None:
    obs, sim = _utc_pair()
    aware = pd.DatetimeIndex(obs.index).tz_localize("UTC").tz_convert("Asia/Tokyo")  # 14:00
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = gagebench.evaluate(obs.to_numpy(), sim.to_numpy(), time=aware, suites="dscore")
    want = gagebench.evaluate(obs.to_numpy(), sim.to_numpy(), time=obs.index, suites="dscore")
    pd.testing.assert_frame_equal(got, want)
    with pytest.raises(InputError, match="time cannot be read as dates"):
        gagebench.evaluate(obs.to_numpy(), sim.to_numpy(), time=["x"] * len(obs))
