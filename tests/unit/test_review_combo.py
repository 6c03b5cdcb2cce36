"""Cross-feature checks of issue 23's parts together (reviewer V-combo): the report's
tables on results that carry gage metadata, user metrics and the new suites at once."""

from __future__ import annotations

import numpy as np
import pandas as pd

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
