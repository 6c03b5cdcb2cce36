"""Breakdowns of issue 23's suites through ``gagebench.evaluate(..., by=)``, against pandas.

- ``benchmark``: the reference here builds each gage's day-of-year climatology from its FULL
  paired record (a month-day groupby, Feb 29 its own day), then scores the model and the
  benchmark with the published KGE (Gupta et al. 2009) and NSE over each group's paired
  days, and the skills from those; never the engine's kernels.
- ``standard``, ``kge``, ``errors``: each group's days scored by ``_reference.reference_gage``
  (pandas/scipy from the definitions).

The groups come from pandas' own calendar (``DatetimeIndex.month``/``.year``), and
``min_paired_days`` applies per group.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _reference import reference_gage

import gagebench
from gagebench.metrics import METRICS

MIN_DAYS = 30
BENCH_COLUMNS = ["KGE", "NSE", "KGE_bench", "NSE_bench", "KGE_skill", "NSE_skill"]
CATALOG = ("standard", "kge", "errors")
CATALOG_COLUMNS = [m.name for m in METRICS if m.suite in CATALOG]
TOL = 1e-10


def _group(index: pd.DatetimeIndex, by: str) -> pd.Index:
    if by == "season":
        names = dict.fromkeys((12, 1, 2), "DJF") | dict.fromkeys((3, 4, 5), "MAM")
        names |= dict.fromkeys((6, 7, 8), "JJA") | dict.fromkeys((9, 10, 11), "SON")
        return pd.Index([names[m] for m in index.month])
    return pd.Index(index.year + (index.month >= 10).astype(int))  # water year: its end


def _inputs() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Three gages over two leap days (2000, 2004) with a seasonal cycle, noise and gaps:
    scattered missing days in both series, a model that lacks most of 2002 (its observed
    days there stay out of the climatology), and an observed record missing every summer
    but one (a JJA group below ``MIN_DAYS``, a water year cut short)."""
    days = pd.date_range("1999-10-01", "2004-09-30", freq="D")
    rng = np.random.default_rng(2023)
    cycle = 30 + 20 * np.sin(2 * np.pi * days.day_of_year.to_numpy() / 365.25)
    obs = pd.DataFrame(
        cycle[:, None] * rng.lognormal(0, 0.5, (days.size, 3)), index=days, columns=list("abc")
    )
    sim = obs * rng.lognormal(0.1, 0.3, obs.shape) + rng.normal(0, 3, obs.shape).clip(0)
    obs[rng.random(obs.shape) < 0.08] = np.nan
    sim[rng.random(obs.shape) < 0.08] = np.nan
    sim.loc[(days.year == 2002) & (days.month > 2), "b"] = np.nan
    summer = days.month.isin([6, 7, 8])
    obs.loc[summer & ~((days.year == 2003) & (days.month == 7) & (days.day <= 20)), "c"] = np.nan
    return obs, sim


def _kge(o: pd.Series, x: pd.Series) -> float:
    r = np.corrcoef(o.to_numpy(), x.to_numpy())[0, 1]
    alpha = x.std(ddof=0) / o.std(ddof=0)
    beta = x.mean() / o.mean()
    return float(1 - np.sqrt((r - 1) ** 2 + (alpha - 1) ** 2 + (beta - 1) ** 2))


def _nse(o: pd.Series, x: pd.Series) -> float:
    return float(1 - ((x - o) ** 2).mean() / ((o - o.mean()) ** 2).mean())


def _benchmark_reference(obs: pd.DataFrame, sim: pd.DataFrame, by: str) -> pd.DataFrame:
    rows = []
    for gage in obs.columns:
        paired = obs[gage].notna() & sim[gage].notna()
        o, s = obs.loc[paired, gage], sim.loc[paired, gage]
        idx = pd.DatetimeIndex(o.index)
        climatology = o.groupby(idx.strftime("%m-%d")).transform("mean")  # full record
        for label, days in o.groupby(_group(idx, by)).groups.items():
            og, sg, bg = o[days], s[days], climatology[days]
            row: dict[str, object] = {"site_no": gage, by: label, "n_days": len(days)}
            if len(days) < MIN_DAYS:
                empty = dict.fromkeys(BENCH_COLUMNS, np.nan)
                rows.append({**row, **empty, "status": "too_few_days"})
                continue
            values = {"KGE": _kge(og, sg), "NSE": _nse(og, sg)}
            values |= {"KGE_bench": _kge(og, bg), "NSE_bench": _nse(og, bg)}
            for name in ("KGE", "NSE"):
                bench = values[f"{name}_bench"]
                values[f"{name}_skill"] = (values[name] - bench) / (1 - bench)
            rows.append({**row, **values, "status": "ok"})
    return pd.DataFrame(rows)


def _catalog_reference(obs: pd.DataFrame, sim: pd.DataFrame, by: str) -> pd.DataFrame:
    rows = []
    for gage in obs.columns:
        groups = obs[gage].groupby(_group(pd.DatetimeIndex(obs.index), by)).groups
        for label, days in groups.items():
            row = reference_gage(obs.loc[days, gage], sim.loc[days, gage], suites=CATALOG)
            if row["status"] in ("ok", "partial") and row["n_days"] < MIN_DAYS:
                row = {**row, **dict.fromkeys(CATALOG_COLUMNS, np.nan), "status": "too_few_days"}
            rows.append({"site_no": gage, by: label, **row})
    return pd.DataFrame(rows)


def _aligned(got: pd.DataFrame, want: pd.DataFrame, by: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    key = ["site_no", by]
    got = got.sort_values(key).reset_index(drop=True)
    want = want.sort_values(key).reset_index(drop=True)
    assert got[key].astype(str).values.tolist() == want[key].astype(str).values.tolist()
    assert got["n_days"].tolist() == want["n_days"].tolist()
    assert got["status"].tolist() == want["status"].tolist()
    return got, want


@pytest.mark.parametrize("by", ["season", "water_year"])
def test_benchmark_breakdown_equals_full_record_climatology_per_group(by: str) -> None:
    obs, sim = _inputs()
    got = gagebench.evaluate(
        obs, sim, suites=("standard", "benchmark"), by=by, min_paired_days=MIN_DAYS
    )
    got, want = _aligned(got, _benchmark_reference(obs, sim, by), by)
    for col in BENCH_COLUMNS:
        g, w = got[col].to_numpy(float), want[col].to_numpy(float)
        assert np.isclose(g, w, rtol=TOL, atol=TOL, equal_nan=True).all(), (col, g - w)
    # the cases that matter are really there: a season below MIN_DAYS, skills of both signs
    assert ("too_few_days" in set(got["status"])) == (by == "season")
    ok = got[got["status"] == "ok"]
    assert (ok["KGE_skill"] > 0).any()
    assert (ok["KGE_skill"] < 0).any()


def test_the_climatology_is_not_the_groups_own() -> None:
    """The reference's full-record climatology is what tells the engine apart from one that
    built the benchmark from each group's days only (which differs on these inputs)."""
    obs, sim = _inputs()
    full = _benchmark_reference(obs, sim, "water_year")
    o, s = obs["b"], sim["b"]
    paired = o.notna() & s.notna()
    year = paired & (_group(pd.DatetimeIndex(obs.index), "water_year") == 2001)
    og = o[year]
    own = og.groupby(pd.DatetimeIndex(og.index).strftime("%m-%d")).transform("mean")
    row = full[(full["site_no"] == "b") & (full["water_year"] == 2001)].iloc[0]
    assert abs(_kge(og, own) - row["KGE_bench"]) > 1e-3


@pytest.mark.parametrize("by", ["season", "water_year"])
def test_standard_kge_errors_breakdown_equals_reference_per_group(by: str) -> None:
    obs, sim = _inputs()
    got = gagebench.evaluate(obs, sim, suites=CATALOG, by=by, min_paired_days=MIN_DAYS)
    assert list(got.columns) == [
        "site_no", "model", by, *CATALOG_COLUMNS, "n_days", "status", "note"
    ]  # fmt: skip
    got, want = _aligned(got, _catalog_reference(obs, sim, by), by)
    for col in CATALOG_COLUMNS:
        g, w = got[col].to_numpy(float), want[col].to_numpy(float)
        atol = 1e-9 if col == "pbias" else TOL  # pbias: a sum of differences near 0
        assert np.isclose(g, w, rtol=1e-9, atol=atol, equal_nan=True).all(), (col, g - w)
    assert ("too_few_days" in set(got["status"])) == (by == "season")
