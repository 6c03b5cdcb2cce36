"""Breakdowns (``by=season|month|water_year``) against a pandas groupby of the same days.

The reference groups the days with pandas' own calendar (``DatetimeIndex.month`` and
``.year``), scores each group with ``_reference.reference_gage`` (pandas/scipy from the
definitions, never the kernels) and applies ``min_paired_days`` per group.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _reference import reference_gage

import gagebench
from gagebench.errors import InputError
from gagebench.metrics import METRICS

SUITES = ("standard", "dscore")
COLUMNS = [m.name for m in METRICS if m.suite in SUITES]
MIN_DAYS = 40


def _pandas_group(index: pd.Index, by: str) -> pd.Index:
    assert isinstance(index, pd.DatetimeIndex)
    month = index.month
    if by == "season":
        names = {12: "DJF", 1: "DJF", 2: "DJF", 3: "MAM", 4: "MAM", 5: "MAM"}
        names |= {6: "JJA", 7: "JJA", 8: "JJA", 9: "SON", 10: "SON", 11: "SON"}
        return pd.Index([names[m] for m in month])
    if by == "month":
        return pd.Index(month)
    return pd.Index(index.year + (month >= 10).astype(int))  # water year: Oct-Sep, its end


def _inputs() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Four gages from mid water year 2000 (Nov 1999, leap Feb 2000) to mid March 2004
    (leap Feb 2004), with gaps: whole summers missing, a group left with a few days."""
    days = pd.date_range("1999-11-17", "2004-03-10", freq="D")
    rng = np.random.default_rng(23)
    obs = pd.DataFrame(rng.gamma(1.5, 20.0, (days.size, 4)), index=days, columns=list("abcd"))
    sim = obs * rng.lognormal(0.05, 0.4, obs.shape) + rng.normal(0, 2, obs.shape).clip(0)
    obs.loc[rng.random(days.size) < 0.1, "a"] = np.nan  # scattered gaps
    sim.loc[rng.random(days.size) < 0.1, "a"] = np.nan
    obs.loc[days.month.isin([6, 7, 8]), "b"] = np.nan  # no summer observations at all
    sim.loc[(days.year == 2002) & (days.month != 1), "c"] = np.nan  # water years cut short
    april = (days.month == 4) & ~((days.year == 2001) & (days.day <= 3))
    obs.loc[april, "d"] = np.nan  # April: 3 paired days in all, below MIN_DAYS
    return obs, sim


def _reference(obs: pd.DataFrame, sim: pd.DataFrame, by: str) -> pd.DataFrame:
    group = _pandas_group(obs.index, by)
    rows = []
    for gage in obs.columns:
        o_groups = obs[gage].groupby(group, sort=False)
        for label, o in o_groups:
            s = sim.loc[o.index, gage]
            row = reference_gage(o, s, suites=SUITES)
            if row["status"] in ("ok", "partial", "too_few_days") and row["n_days"] < MIN_DAYS:
                row = {**row, **dict.fromkeys(COLUMNS, np.nan), "status": "too_few_days"}
            rows.append({"site_no": gage, by: label, **row})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("by", ["season", "month", "water_year"])
def test_breakdown_equals_pandas_groupby(by: str) -> None:
    obs, sim = _inputs()
    got = gagebench.evaluate(obs, sim, suites=SUITES, by=by, min_paired_days=MIN_DAYS)
    assert list(got.columns) == ["site_no", "model", by, *COLUMNS, "n_days", "status", "note"]
    want = _reference(obs, sim, by)
    key = ["site_no", by]
    got = got.sort_values(key).reset_index(drop=True)
    want = want.sort_values(key).reset_index(drop=True)
    assert got[key].astype(str).values.tolist() == want[key].astype(str).values.tolist()
    assert got["n_days"].tolist() == want["n_days"].tolist()
    assert got["status"].tolist() == want["status"].tolist()
    for col in COLUMNS:
        g, w = got[col].to_numpy(float), want[col].to_numpy(float)
        scale = 1e-9 * np.nan_to_num(np.abs(want["mse"].to_numpy(float)) + 100.0)
        atol = scale if col in ("e_bias", "e_dist", "e_seq", "pbias") else 0.0
        assert np.isclose(g, w, rtol=1e-9, atol=atol, equal_nan=True).all(), col
    # the data's hard cases are really there
    hard = {"season": {"no_observations"}, "month": {"no_observations", "too_few_days"}}
    assert hard.get(by, set()) <= set(got["status"])
    assert (got["status"] == "ok").sum() > len(got) // 2


def test_breakdown_labels_and_partial_water_years() -> None:
    obs, sim = _inputs()
    wy = gagebench.evaluate(obs, sim, by="water_year", suites="standard", min_paired_days=2)
    assert sorted(set(wy["water_year"])) == [2000, 2001, 2002, 2003, 2004]
    assert wy["water_year"].dtype == np.int64
    first = wy[(wy["site_no"] == "c") & (wy["water_year"] == 2000)]["n_days"].item()
    assert first == (pd.Timestamp("2000-09-30") - pd.Timestamp("1999-11-17")).days + 1
    month = gagebench.evaluate(obs, sim, by="month", suites="standard")
    assert sorted(set(month["month"])) == list(range(1, 13))
    season = gagebench.evaluate(obs, sim, by="season", suites="standard")
    assert season["season"].tolist()[:4] == ["DJF", "MAM", "JJA", "SON"]
    # min_paired_days per group: April of gage d has 3 paired days
    april = month[(month["site_no"] == "d") & (month["month"] == 4)].iloc[0]
    assert april["status"] == "too_few_days"
    assert np.isnan(april["NSE"])
    assert "min_paired_days=365" in april["note"]


def test_groups_without_days_have_no_row() -> None:
    days = pd.date_range("2001-06-01", "2001-08-31")  # one summer: JJA only
    obs = pd.Series(np.linspace(1, 9, days.size), index=days, name="g")
    rows = gagebench.evaluate(obs, obs * 1.1, by="season", suites="standard", min_paired_days=2)
    assert rows["season"].tolist() == ["JJA"]


def test_breakdown_refusals() -> None:
    obs = np.arange(1.0, 11.0)
    with pytest.raises(InputError, match="by='week'"):
        gagebench.evaluate(obs, obs, by="week", suites="standard")
    with pytest.raises(InputError, match="needs the dates"):
        gagebench.evaluate(obs, obs, by="season", suites="standard")
    days = pd.date_range("2001-01-01", periods=10)
    with pytest.raises(InputError, match="per-day suites"):
        gagebench.evaluate(obs, obs, time=days, by="season", suites="uncertainty")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("by=[week]", "gagebench.by: expected a list of ['season', 'month', 'water_year']"),
        ("by=season", "gagebench.by: expected a list of"),
    ],
)
def test_gagebench_run_refuses_a_bad_by(value: str, message: str, tmp_path: Path) -> None:
    """Through the real entry point: a config error (exit 2), one line, no traceback."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "gagebench.cli",
            "run",
            "--set",
            f"output={tmp_path}",
            "--set",
            value,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr
