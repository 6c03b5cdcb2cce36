"""``gagebench.evaluate`` matches labelled inputs by label, never by position.

The truth each test compares with is the same data laid out by hand in matching order as
plain arrays (which are matched by position), so a positional match of the labelled
inputs would give different numbers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import gagebench
from gagebench.errors import InputError

GAGES = ["USGS-01011000", "USGS-01013500", "USGS-01015800", "USGS-01017000"]
METRICS = ["NSE", "KGE", "logNSE", "pbias", "spearman", "mse", "winter", "low"]


@pytest.fixture(scope="module")
def data() -> tuple[pd.DatetimeIndex, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    days = pd.date_range("2001-01-01", periods=730, freq="D")
    season = 1.5 + np.sin(np.arange(days.size) * 2 * np.pi / 365.25)
    obs = rng.gamma(2.0, 2.0, (len(GAGES), days.size)) * season
    sim = obs * rng.uniform(0.7, 1.3, (len(GAGES), 1)) + rng.normal(0, 1.0, obs.shape).clip(-1)
    return days, obs, sim


def truth(days: pd.DatetimeIndex, obs: np.ndarray, sim: np.ndarray) -> pd.DataFrame:
    return gagebench.evaluate(obs, sim, time=days, gages=GAGES)


def as_da(values: np.ndarray, gages: list[str], times: pd.DatetimeIndex) -> xr.DataArray:
    return xr.DataArray(
        values.T, dims=("time", "gage_id"), coords={"time": times, "gage_id": gages}
    )


def same(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert got["site_no"].tolist() == want["site_no"].tolist()
    np.testing.assert_allclose(got[METRICS].to_numpy(), want[METRICS].to_numpy(), rtol=1e-12)
    assert got["n_days"].tolist() == want["n_days"].tolist()


def test_xarray_model_with_gages_in_another_order(data) -> None:
    days, obs, sim = data
    reverse = GAGES[::-1]
    got = gagebench.evaluate(as_da(obs, GAGES, days), as_da(sim[::-1], reverse, days))
    same(got, truth(days, obs, sim))
    assert got["NSE"].to_numpy() == pytest.approx(truth(days, obs, sim)["NSE"].to_numpy())


def test_xarray_model_shifted_in_time_and_longer(data) -> None:
    days, obs, sim = data
    # the model starts 30 days before observed and ends 10 days early: a left join on days
    model_days = pd.date_range(days[0] - pd.Timedelta(days=30), days[-11], freq="D")
    model = np.full((len(GAGES), model_days.size), 99.0)
    model[:, 30:] = sim[:, :-10]
    got = gagebench.evaluate(as_da(obs, GAGES, days), as_da(model, GAGES, model_days))
    want_sim = sim.copy()
    want_sim[:, -10:] = np.nan
    same(got, truth(days, obs, want_sim))
    assert (got["n_days"] == days.size - 10).all()


def test_model_at_another_hour_of_the_day_matches_by_calendar_day(data) -> None:
    days, obs, sim = data
    got = gagebench.evaluate(
        as_da(obs, GAGES, days + pd.Timedelta(hours=5)), as_da(sim, GAGES, days)
    )
    same(got, truth(days, obs, sim))


def test_pandas_model_columns_shuffled_and_rows_descending(data) -> None:
    days, obs, sim = data
    observed = pd.DataFrame(obs.T, index=days, columns=GAGES)
    order = [2, 0, 3, 1]
    modeled = pd.DataFrame(sim[order].T, index=days, columns=[GAGES[i] for i in order])
    got = gagebench.evaluate(observed, {"m": modeled.iloc[::-1]})
    same(got, truth(days, obs, sim))


def test_descending_observed_with_an_unlabelled_model_keeps_the_pairs(data) -> None:
    days, obs, sim = data
    observed = as_da(obs[:, ::-1], GAGES, days[::-1])
    got = gagebench.evaluate(observed, sim[:, ::-1])
    same(got, truth(days, obs, sim))
    assert got["first_day"].iloc[0] == days[0]


def test_sub_daily_model_is_refused_with_the_fix(data) -> None:
    days, obs, _ = data
    hours = pd.date_range(days[0], periods=days.size * 24, freq="h")
    hourly = xr.DataArray(
        np.ones((hours.size, len(GAGES))),
        dims=("time", "gage_id"),
        coords={"time": hours, "gage_id": GAGES},
    )
    with pytest.raises(InputError, match=r"modeled has several values per calendar day.*resample"):
        gagebench.evaluate(as_da(obs, GAGES, days), hourly)


def test_model_missing_a_gage_or_repeating_one_is_refused(data) -> None:
    days, obs, sim = data
    with pytest.raises(InputError, match=r"modeled\['nwm'\] has no column for gage.*01017000"):
        gagebench.evaluate(as_da(obs, GAGES, days), {"nwm": as_da(sim[:3], GAGES[:3], days)})
    twice = [*GAGES[:3], GAGES[0]]
    with pytest.raises(InputError, match="more than once"):
        gagebench.evaluate(as_da(obs, GAGES, days), as_da(sim, twice, days))


def test_no_common_day_warns_and_rows_say_no_simulation(data) -> None:
    days, obs, sim = data
    later = days + pd.Timedelta(days=5000)
    with pytest.warns(UserWarning, match="no day in common"):
        got = gagebench.evaluate(as_da(obs, GAGES, days), as_da(sim, GAGES, later))
    assert (got["n_days"] == 0).all()
    assert got["NSE"].isna().all()
    assert (got["status"] != "ok").all()
