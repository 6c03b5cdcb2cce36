"""Daily values labelled at local midnight in a zone east of UTC fall on the previous UTC
day: ``evaluate`` pairs days in UTC (as documented), so local days of two zones pair one
day apart. That must not pass silently: a warning names it and the fix, and the fix gives
the textbook NSE of the local days (computed here with NumPy, not by gagebench)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import gagebench


def _local_days(n: int = 800) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    obs = np.exp(rng.normal(1.0, 1.0, n))
    return obs, obs * np.exp(rng.normal(0.0, 0.3, n))


def _nse(obs: np.ndarray, sim: np.ndarray) -> float:
    return float(1 - np.sum((sim - obs) ** 2) / np.sum((obs - obs.mean()) ** 2))


def test_local_days_of_two_zones_warn_and_the_advised_fix_pairs_them() -> None:
    obs, sim = _local_days()
    new_york = pd.date_range("2001-10-01", periods=obs.size, freq="D", tz="America/New_York")
    berlin = pd.date_range("2001-10-01", periods=obs.size, freq="D", tz="Europe/Berlin")
    o, s = pd.Series(obs, index=new_york), pd.Series(sim, index=berlin)
    with pytest.warns(UserWarning, match=r"modeled has time-zone-aware dates on another"):
        shifted = gagebench.evaluate(o, s, suites="standard").iloc[0]
    assert shifted["NSE"] < 0.5 * _nse(obs, sim)  # paired one day apart: why it must warn
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fixed = gagebench.evaluate(
            o.tz_localize(None), s.tz_localize(None), suites="standard"
        ).iloc[0]
    assert fixed["NSE"] == pytest.approx(_nse(obs, sim), rel=1e-12)
    assert fixed["first_day"] == pd.Timestamp("2001-10-01")


def test_hourly_data_resampled_to_local_days_east_of_utc_warns_once_per_input() -> None:
    obs, sim = _local_days(400)
    hours = pd.date_range("2001-10-01", periods=obs.size * 24, freq="h", tz="Asia/Tokyo")
    o = pd.Series(np.repeat(obs, 24), index=hours).resample("1D").mean()
    s = pd.Series(np.repeat(sim, 24), index=hours).resample("1D").mean()
    with pytest.warns(UserWarning, match="on another calendar day in UTC") as caught:
        got = gagebench.evaluate(o, s, suites="standard").iloc[0]
    assert len([w for w in caught if "calendar day in UTC" in str(w.message)]) == 2
    assert got["NSE"] == pytest.approx(_nse(obs, sim), rel=1e-12)  # one zone: paired right
    assert got["first_day"] == pd.Timestamp("2001-09-30")  # but counted on the UTC day


def test_aware_dates_on_their_utc_day_do_not_warn() -> None:
    obs, sim = _local_days(400)
    denver = pd.date_range("2001-10-01", periods=obs.size, freq="D", tz="America/Denver")
    utc = pd.date_range("2001-10-01", periods=obs.size, freq="D", tz="UTC")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = gagebench.evaluate(
            pd.Series(obs, index=denver), pd.Series(sim, index=utc), suites="standard"
        ).iloc[0]
    assert got["NSE"] == pytest.approx(_nse(obs, sim), rel=1e-12)


def test_time_in_several_zones_warns_for_the_dates_shifted_in_utc() -> None:
    obs, sim = _local_days(20)
    berlin = [
        pd.Timestamp("2001-01-01", tz="Europe/Berlin") + pd.DateOffset(days=i) for i in range(10)
    ]
    denver = [
        pd.Timestamp("2001-02-01", tz="America/Denver") + pd.DateOffset(days=i) for i in range(10)
    ]
    with pytest.warns(UserWarning, match=r"time has .*\(10 of 20; e\.g\. 2001-01-01 00:00:00"):
        got = gagebench.evaluate(obs, sim, time=berlin + denver, min_paired_days=2).iloc[0]
    assert got["first_day"] == pd.Timestamp("2000-12-31")  # Berlin's midnight, in UTC
    assert got["NSE"] == pytest.approx(_nse(obs, sim), rel=1e-12)


# --- a named Series against a one-gage input of another name ---------------------------------


def test_a_series_and_a_one_column_frame_of_other_names_warn() -> None:
    obs, sim = _local_days(400)
    days = pd.date_range("2001-10-01", periods=obs.size, freq="D")
    series = pd.Series(obs, index=days, name="01104200")
    frame = pd.DataFrame({"09999999": sim}, index=days)
    for o, s in (
        (series, frame),
        (frame.rename(columns={"09999999": "01104200"}), sim_series(sim, days)),
    ):
        with pytest.warns(UserWarning, match=r"observed is named '01104200' but modeled '0"):
            got = gagebench.evaluate(o, s, suites="standard").iloc[0]
        assert got["site_no"] == "01104200"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the same name: one gage, nothing to say
        gagebench.evaluate(
            series, frame.rename(columns={"09999999": "01104200"}), suites="standard"
        )


def sim_series(values: np.ndarray, days: pd.DatetimeIndex) -> pd.Series:
    return pd.Series(values, index=days, name="09999999")
