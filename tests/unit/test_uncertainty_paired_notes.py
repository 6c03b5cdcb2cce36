"""The paired comparison with the first model (``dKGE_*``, ``dNSE_*``, ``*_first_wins``)
is NaN when the two models have no shared draws; an ``ok`` row must then say why in its
note, never leave the columns silently empty. Valid water years are counted here by hand
from the construction (20 complete water years, one blanked)."""

from __future__ import annotations

import numpy as np
import pandas as pd

import gagebench

PAIRED = ["dKGE_p05", "dKGE_p50", "dKGE_p95", "dNSE_p05", "dNSE_p50", "dNSE_p95"]


def _flows() -> tuple[pd.DatetimeIndex, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    days = pd.date_range("1990-10-01", "2010-09-30", freq="D")  # 20 water years
    obs = np.exp(rng.normal(1.0, 1.0, days.size))
    return days, obs, obs * np.exp(rng.normal(0.0, 0.3, days.size))


def _evaluate(days: pd.DatetimeIndex, obs: np.ndarray, models: dict) -> pd.DataFrame:
    return gagebench.evaluate(
        pd.Series(obs, index=days),
        {k: pd.Series(v, index=days) for k, v in models.items()},
        suites=("standard", "uncertainty"),
        n_samples=40,
        seed=1,
    ).set_index("model")


def test_models_with_other_valid_years_say_why_there_is_no_paired_comparison() -> None:
    days, obs, sim = _flows()
    short = sim * 1.1
    short[(days >= pd.Timestamp("1995-10-01")) & (days <= pd.Timestamp("1996-09-30"))] = (
        np.nan
    )  # water year 1996
    got = _evaluate(days, obs, {"b": sim, "c": short})
    assert got.loc["b", "n_years_valid"] == 20
    assert got.loc["c", "n_years_valid"] == 19
    assert got.loc["c", "status"] == "ok"
    assert got.loc["c", PAIRED].isna().all()
    assert "no paired comparison with 'b'" in str(got.loc["c", "note"])
    assert "(19 here, 20 there)" in str(got.loc["c", "note"])


def test_a_first_model_without_values_is_named_in_the_others_notes() -> None:
    days, obs, sim = _flows()
    got = _evaluate(days, obs, {"a": np.full(days.size, np.nan), "b": sim})
    assert got.loc["a", "status"] == "no_simulation"
    assert got.loc["b", "status"] == "ok"
    assert got.loc["b", PAIRED].isna().all()
    assert "no paired comparison with 'a'" in str(got.loc["b", "note"])


def test_models_with_shared_draws_have_the_comparison_and_no_such_note() -> None:
    days, obs, sim = _flows()
    got = _evaluate(days, obs, {"b": sim, "c": sim * 1.1})
    assert got.loc["c", PAIRED].notna().all()
    assert "paired" not in str(got.loc["c", "note"])


def test_compare_counts_the_gages_that_have_a_paired_interval() -> None:
    from gagebench.report.comparison import compare

    days, obs, sim = _flows()
    short = sim * 1.1
    short[(days >= pd.Timestamp("1995-10-01")) & (days <= pd.Timestamp("1996-09-30"))] = np.nan
    frames = []
    for gage, other in (("g1", sim * 0.9), ("g2", short), ("g3", sim * 1.2)):
        rows = _evaluate(days, obs, {"b": sim, "c": other}).reset_index()
        frames.append(rows.assign(site_no=gage))
    results = pd.concat(frames, ignore_index=True)
    c = results[results.model == "c"]
    with_interval = int((c["dKGE_p05"].notna() & c["dKGE_p95"].notna()).sum())
    assert with_interval == 2  # g2 has other valid water years
    row = compare(results, models=["b", "c"]).summary.set_index("metric").loc["KGE"]
    assert row["with_interval_90"] == with_interval
    assert row["a_better_beyond_90"] + row["b_better_beyond_90"] <= with_interval
