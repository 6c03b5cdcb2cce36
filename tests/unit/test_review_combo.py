"""Cross-feature checks of issue 23's parts together (reviewer V-combo): the report's
tables on results that carry gage metadata, user metrics and the new suites at once."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd
import pytest

import gagebench
from gagebench.gages import builtin_gage_table, with_gages
from gagebench.report.html import overview_table


def _results(metrics: tuple[str, ...] = ()) -> pd.DataFrame:
    rng = np.random.default_rng(4)
    ids = list(builtin_gage_table()["site_no"][:5])
    obs = rng.gamma(2.0, 3.0, size=(5, 800))
    sim = obs * rng.uniform(0.7, 1.3, size=obs.shape)
    return gagebench.evaluate(
        obs,
        {"m": sim},
        time=pd.date_range("2001-01-01", periods=800),
        gages=ids,
        suites=["standard", "kge"],
        metrics=list(metrics),
    )


def test_the_overview_shows_no_gage_metadata_as_a_user_metric() -> None:
    """The report joins lat/lon/drain_sqkm to the results before its summary table: those
    float columns are gage metadata, not user metrics, and get no "median" column."""
    table = overview_table(with_gages(_results()))
    assert not [c for c in table.columns if c in {"median lat", "median lon"}], list(table.columns)
    assert "median drain_sqkm" not in table.columns


def test_the_overview_keeps_the_user_metrics_beside_the_metadata() -> None:
    @gagebench.metric("mean_sim_review")
    def mean_sim_review(obs: np.ndarray, sim: np.ndarray) -> float:
        return float(np.mean(sim))

    try:
        results = _results(("mean_sim_review",))
        table = overview_table(with_gages(results))
        assert "median mean_sim_review" in table.columns
        assert table["median mean_sim_review"].iloc[0] == results["mean_sim_review"].median()
        assert "median lat" not in table.columns
    finally:
        from gagebench.metrics import user

        user.REGISTRY.pop("mean_sim_review", None)


def test_the_metadata_columns_are_those_the_gage_lists_give() -> None:
    from gagebench.gages import METADATA_COLUMNS, normalize_gages

    table = normalize_gages(pd.DataFrame({"site_no": ["01021480"], "lat": [1.0]}))
    assert tuple(table.columns) == ("site_no", *METADATA_COLUMNS)


def test_compare_ranks_the_error_metrics_smaller_is_better_like_a_user_metric() -> None:
    """``errors`` (RMSE, MAE) and D-score's ``mse`` have their optimum 0 at the bottom of
    their range: compare ranks them as it ranks a user metric registered with
    ``higher_is_better=False``, instead of telling the user to register a user metric
    under a built-in column's name (which ``metrics=`` refuses)."""
    rng = np.random.default_rng(7)
    obs = rng.gamma(2.0, 3.0, size=(6, 900))
    close = obs * rng.lognormal(0.0, 0.05, obs.shape)
    far = obs * rng.lognormal(0.0, 0.6, obs.shape)
    far[5] = obs[5]  # gage 5: "far" is perfect there
    results = gagebench.evaluate(
        obs, {"close": close, "far": far}, suites=["standard", "dscore", "errors"],
        time=pd.date_range("2001-01-01", periods=900), min_paired_days=30,
    )  # fmt: skip
    got = gagebench.compare(results, metrics=["RMSE", "MAE", "mse", "R2"]).summary
    got = got.set_index("metric")
    for metric, sign in (("RMSE", -1), ("MAE", -1), ("mse", -1), ("R2", 1)):
        a = results[results["model"] == "close"][metric].to_numpy()
        b = results[results["model"] == "far"][metric].to_numpy()
        assert got.loc[metric, "share_a_better"] == pytest.approx(np.mean(sign * (a - b) > 0))
    assert got.loc["RMSE", "share_a_better"] == pytest.approx(5 / 6)


def test_compare_still_refuses_a_metric_with_no_order() -> None:
    """``pbias`` is best at 0 inside its range: neither larger nor smaller is better."""
    rng = np.random.default_rng(8)
    obs = rng.gamma(2.0, 3.0, size=(3, 400))
    results = gagebench.evaluate(
        obs, {"a": obs * 1.1, "b": obs * 0.8}, suites="standard", min_paired_days=30
    )
    with pytest.raises(gagebench.InputError, match=r"cannot compare on 'pbias'"):
        gagebench.compare(results, metrics=["pbias"])


def test_by_without_a_per_day_suite_names_every_suite_it_breaks_down() -> None:
    """``by`` with only the uncertainty suite is refused; the message names every suite a
    breakdown computes per group, the new ones too, so the user can pick one."""
    from gagebench.config import load_config
    from gagebench.errors import ConfigError

    base: dict[str, Any] = {"output": "/out", "observed": "/s/o.zarr", "models": {"nwm": "/s"}}
    with pytest.raises(ConfigError) as caught:
        load_config(**base, suites=["uncertainty"], by=["season"])
    message = str(caught.value)
    for suite in ("standard", "dscore", "kge", "errors", "benchmark"):
        assert suite in message, message
    assert "uncertainty," not in message.split("has none")[0]
    for suite in ("kge", "benchmark"):  # each is enough for a breakdown
        assert load_config(**base, suites=[suite], by=["season"]).by == ("season",)


def test_the_water_year_figure_ticks_whole_years() -> None:
    """A few water years (a short record): the axis names years, never 2001.5."""
    from gagebench.report.plots_breakdown import plot_water_years

    rows = [
        {"site_no": f"USGS-0101{i}000", "model": "m", "water_year": year,
         "KGE": 0.1 * i + 0.01 * year % 1, "n_days": 365, "status": "ok", "note": ""}
        for i in range(3) for year in (2001, 2002, 2003)
    ]  # fmt: skip
    fig = plot_water_years(pd.DataFrame(rows))
    fig.canvas.draw()
    ticks = [
        t for ax in fig.axes for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]
    ]
    assert ticks
    assert all(float(t).is_integer() for t in ticks), ticks


def _two_runs() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(11)
    obs = rng.gamma(2.0, 3.0, size=(4, 500))
    sim = obs * rng.lognormal(0.0, 0.2, obs.shape)
    days = pd.date_range("2001-01-01", periods=500)
    full = gagebench.evaluate(obs, {"m": sim}, time=days, suites=["standard", "errors", "kge"])
    kge_only = gagebench.evaluate(obs, {"m": sim * 1.1}, time=days, suites=["kge"])
    return full, kge_only


def test_compare_says_which_asked_metric_one_run_lacks(caplog: pytest.LogCaptureFixture) -> None:
    """Two runs of other suites: a metric asked for that one run lacks is not dropped
    without a word."""
    full, kge_only = _two_runs()
    said = r"leaves out \['RMSE'\]: model B \('m \(b\)'\) has no \['RMSE'\]"
    with caplog.at_level("WARNING", logger="gagebench"):
        got = gagebench.compare(full, kge_only, metrics=["KGE2012", "RMSE"])
    assert re.search(said, caplog.text), caplog.text
    assert got.metrics == ("KGE2012",)


def test_compare_of_runs_without_nse_and_kge_names_the_metrics_they_share() -> None:
    full, kge_only = _two_runs()
    with pytest.raises(gagebench.InputError, match=r"Both have: \['KGE2012', 'KGE2021', 'KGEnp'\]"):
        gagebench.compare(full, kge_only)
