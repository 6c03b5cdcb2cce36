"""The benchmark suite (Knoben et al. 2020; HyMETT's benchmark_KGE_DOY) against an
independent pandas reference: a groupby of the paired days by month-day, then the
published formulas (Gupta et al. 2009 KGE, Nash & Sutcliffe NSE), within 1e-12."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

import gagebench
from gagebench.errors import InputError
from gagebench.metrics import evaluate_arrays
from gagebench.metrics.benchmark_kernels import (
    PERFECT_NOTE,
    benchmark_series,
    calendar_day_index,
    score_groups,
)
from gagebench.metrics.registry import METRIC_BY_NAME, SUITES

TOL = 1e-12
COLUMNS = ("KGE_bench", "NSE_bench", "KGE_skill", "NSE_skill")


def _kge(o: pd.Series, x: pd.Series) -> float:
    r = np.corrcoef(o.to_numpy(), x.to_numpy())[0, 1]
    alpha = x.std(ddof=0) / o.std(ddof=0)
    beta = x.sum() / o.sum()
    return float(1 - np.sqrt((r - 1) ** 2 + (alpha - 1) ** 2 + (beta - 1) ** 2))


def _nse(o: pd.Series, x: pd.Series) -> float:
    return float(1 - ((x - o) ** 2).mean() / ((o - o.mean()) ** 2).mean())


def _climatology(obs: pd.Series, sim: pd.Series) -> pd.Series:
    """The benchmark on the paired days: the mean observed flow of each month-day."""
    paired = obs.notna() & sim.notna()
    o = obs[paired]
    return o.groupby(pd.DatetimeIndex(o.index).strftime("%m-%d")).transform("mean")


def _reference(obs: pd.Series, sim: pd.Series) -> dict[str, float]:
    bench = _climatology(obs, sim)
    o, s = obs[bench.index], sim[bench.index]
    kge, nse = _kge(o, s), _nse(o, s)
    kge_b, nse_b = _kge(o, bench), _nse(o, bench)
    return {
        "KGE": kge,
        "NSE": nse,
        "KGE_bench": kge_b,
        "NSE_bench": nse_b,
        "KGE_skill": (kge - kge_b) / (1 - kge_b),
        "NSE_skill": (nse - nse_b) / (1 - nse_b),
    }


def _data(gages: int = 24, seed: int = 3) -> tuple[np.ndarray, np.ndarray, pd.DatetimeIndex]:
    """Seasonal flows over 1995-2009 (four Feb 29s) with gaps in either series."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range("1995-01-01", "2009-12-31", freq="D")
    phase = 2 * np.pi * dates.day_of_year.to_numpy() / 365.25
    season = 10 + 6 * np.sin(phase + rng.uniform(0, 6, (gages, 1)))
    obs = season * rng.lognormal(0, 0.5, (gages, dates.size))
    sim = obs * rng.lognormal(0, 0.4, obs.shape) + rng.normal(0, 1, obs.shape)
    obs[rng.random(obs.shape) < 0.08] = np.nan
    sim[rng.random(sim.shape) < 0.05] = np.nan
    obs[gages // 2, 400:2000] = np.nan  # a long gap
    sim[-1, : dates.size // 2] = np.nan  # a half record
    return obs, sim, dates


def test_calendar_days_give_feb_29_its_own_day() -> None:
    days = pd.to_datetime(["2000-01-01", "2000-02-29", "2000-03-01", "2001-03-01",
                           "2001-12-31", "2000-12-31"])  # fmt: skip
    assert calendar_day_index(days.values).tolist() == [0, 59, 60, 60, 365, 365]
    every = pd.date_range("2000-01-01", "2000-12-31")
    assert calendar_day_index(every.values).tolist() == list(range(366))


def test_suite_matches_the_pandas_reference() -> None:
    obs, sim, dates = _data()
    result = evaluate_arrays(obs, sim, dates.values, suites=("standard", "benchmark"))
    got = pd.DataFrame(result.values, columns=list(result.columns))
    for g in range(obs.shape[0]):
        want = _reference(pd.Series(obs[g], dates), pd.Series(sim[g], dates))
        for name in (*COLUMNS, "KGE", "NSE"):
            assert got.loc[g, name] == pytest.approx(want[name], rel=TOL, abs=TOL), (g, name)
    assert result.status == ["ok"] * obs.shape[0]


def test_model_scores_equal_the_standard_suite() -> None:
    """The skills use the standard suite's KGE and NSE: the benchmark kernel's own agree."""
    obs, sim, dates = _data(8)
    both = evaluate_arrays(obs, sim, dates.values, suites=("standard", "benchmark"))
    scores = score_groups(obs, sim, calendar_day_index(dates.values))[:, 0]
    for k, name in enumerate(("KGE", "NSE")):
        standard = both.values[:, both.columns.index(name)]
        np.testing.assert_allclose(scores[:, k], standard, rtol=TOL, atol=TOL)


def test_a_model_equal_to_its_benchmark_has_skill_0() -> None:
    obs, _, dates = _data(6)
    sim = np.vstack([
        _climatology(pd.Series(o, dates), pd.Series(o, dates)).reindex(dates).to_numpy()
        for o in obs
    ])  # fmt: skip
    result = evaluate_arrays(obs, sim, dates.values, suites=("benchmark",))
    got = dict(zip(result.columns, result.values.T, strict=True))
    np.testing.assert_allclose(got["KGE_skill"], 0.0, atol=TOL)
    np.testing.assert_allclose(got["NSE_skill"], 0.0, atol=TOL)


def test_a_perfect_model_has_skill_1() -> None:
    obs, _, dates = _data(6)
    result = evaluate_arrays(obs, obs.copy(), dates.values, suites=("benchmark",))
    got = dict(zip(result.columns, result.values.T, strict=True))
    np.testing.assert_allclose(got["KGE_skill"], 1.0, rtol=TOL)
    np.testing.assert_allclose(got["NSE_skill"], 1.0, rtol=TOL)
    assert (got["KGE_bench"] < 1).all()


def test_unpaired_days_stay_out_of_the_climatology() -> None:
    """An observed flood on a day the model lacks changes nothing: it never pairs."""
    obs, sim, dates = _data(4)
    flooded = obs.copy()
    gap = np.isnan(sim) & ~np.isnan(obs)
    flooded[gap] = 1e6
    doy = calendar_day_index(dates.values)
    np.testing.assert_array_equal(
        benchmark_series(flooded, sim, doy), benchmark_series(obs, sim, doy)
    )
    a = evaluate_arrays(flooded, sim, dates.values, suites=("benchmark",)).values
    b = evaluate_arrays(obs, sim, dates.values, suites=("benchmark",)).values
    np.testing.assert_array_equal(a, b)
    # and the series itself is the pandas climatology of the paired days
    for g in range(obs.shape[0]):
        want = _climatology(pd.Series(obs[g], dates), pd.Series(sim[g], dates))
        got = pd.Series(benchmark_series(obs, sim, doy)[g], dates).dropna()
        pd.testing.assert_series_equal(got, want, check_names=False, rtol=TOL, atol=TOL,
                                       check_index_type=False, check_freq=False)  # fmt: skip


def test_infinite_flows_are_missing_days() -> None:
    obs, sim, dates = _data(3)
    with_inf = obs.copy()
    with_inf[0, 10] = np.inf
    cleaned = obs.copy()
    cleaned[0, 10] = np.nan
    a = evaluate_arrays(with_inf, sim, dates.values, suites=("benchmark",))
    b = evaluate_arrays(cleaned, sim, dates.values, suites=("benchmark",))
    np.testing.assert_array_equal(a.values, b.values)


def test_groups_score_their_days_against_the_full_record_climatology() -> None:
    """For breakdowns: each month scored on its days, the benchmark from every day."""
    obs, sim, dates = _data(5)
    month = dates.month.to_numpy() - 1
    got = score_groups(obs, sim, calendar_day_index(dates.values), month, 12)
    for g in range(obs.shape[0]):
        o, s = pd.Series(obs[g], dates), pd.Series(sim[g], dates)
        bench = _climatology(o, s)
        for m in range(12):
            days = bench.index[pd.DatetimeIndex(bench.index).month == m + 1]
            oo, ss, bb = o[days], s[days], bench[days]
            assert got[g, m, 0] == pytest.approx(_kge(oo, ss), rel=TOL, abs=TOL)
            assert got[g, m, 1] == pytest.approx(_nse(oo, ss), rel=TOL, abs=TOL)
            assert got[g, m, 2] == pytest.approx(_kge(oo, bb), rel=TOL, abs=TOL)
            assert got[g, m, 3] == pytest.approx(_nse(oo, bb), rel=TOL, abs=TOL)


def test_a_perfect_benchmark_gives_nan_skill_and_says_why() -> None:
    """Under a year of record: each calendar day observed once, the benchmark is the data."""
    obs, sim, dates = _data(3)
    short = slice(0, 300)
    result = evaluate_arrays(obs[:2, short], sim[:2, short], dates.values[short],
                             suites=("standard", "benchmark"))  # fmt: skip
    got = dict(zip(result.columns, result.values.T, strict=True))
    assert (got["KGE_bench"] == 1.0).all()
    assert (got["NSE_bench"] == 1.0).all()
    assert np.isnan(got["KGE_skill"]).all()
    assert np.isnan(got["NSE_skill"]).all()
    assert np.isfinite(got["KGE"]).all()
    assert result.status == ["partial", "partial"]
    assert all(PERFECT_NOTE in n and "KGE_skill, NSE_skill" in n for n in result.note)


def test_the_suite_needs_dates() -> None:
    obs, sim, _ = _data(2)
    with pytest.raises(InputError, match="benchmark suite needs the dates"):
        evaluate_arrays(obs, sim, suites=("benchmark",))


def test_evaluate_and_the_one_series_functions() -> None:
    obs, sim, dates = _data(3)
    frame = gagebench.evaluate(
        pd.DataFrame(obs.T, index=dates, columns=["a", "b", "c"]),
        {"m": pd.DataFrame(sim.T, index=dates, columns=["a", "b", "c"])},
        suites=("benchmark",),
    )
    assert set(SUITES["benchmark"]) <= set(frame.columns)
    want = _reference(pd.Series(obs[0], dates), pd.Series(sim[0], dates))
    row = frame.set_index("site_no").loc["a"]
    assert row["KGE_skill"] == pytest.approx(want["KGE_skill"], rel=TOL)
    # (typed as the undated metric functions: the generated names are not seen by mypy)
    kge_skill: Any = gagebench.metrics.kge_skill
    nse_bench: Any = gagebench.metrics.nse_bench
    assert kge_skill(obs[0], sim[0], dates.values) == pytest.approx(want["KGE_skill"], rel=TOL)
    assert nse_bench(obs[0], sim[0], dates.values) == pytest.approx(want["NSE_bench"], rel=TOL)


def test_the_registry_marks_the_suite_as_not_hytest() -> None:
    from gagebench.metrics.registry import HYTEST_SUITES, mode_refusal

    assert SUITES["benchmark"] == COLUMNS
    assert "benchmark" not in HYTEST_SUITES
    assert mode_refusal(("benchmark",), "hytest")
    for name in COLUMNS:
        info = METRIC_BY_NAME[name]
        assert info.dated
        # the -0.41 paper and the one HyMETT's benchmark_KGE_DOY cites
        assert "10.5194/hess-23-4323-2019" in info.reference
        assert "10.1029/2019WR025975" in info.reference


def test_the_share_beating_the_benchmark_counts_gages_with_a_skill() -> None:
    """Per model, KGE_skill > 0 over gages with a skill (NaN left out); nothing without the
    suite, so the report and the summary of other runs stay as they were."""
    from gagebench.report.html import BEATS_BENCHMARK, overview_table
    from gagebench.summary import beats_benchmark

    results = pd.DataFrame({
        "site_no": ["1", "2", "3", "4", "1", "2"],
        "model": ["a", "a", "a", "a", "b", "b"],
        "KGE": [0.5, 0.2, 0.1, np.nan, 0.3, 0.4],
        "KGE_skill": [0.3, -0.1, 0.2, np.nan, np.nan, np.nan],
    })  # fmt: skip
    shares = beats_benchmark(results)
    assert shares["a"] == (2 / 3, 3)
    assert np.isnan(shares["b"][0])
    assert shares["b"][1] == 0
    table = overview_table(results).set_index("model")
    assert table.loc["a", BEATS_BENCHMARK] == "67%"
    assert table.loc["b", BEATS_BENCHMARK] == "–"
    assert beats_benchmark(results.drop(columns="KGE_skill")) == {}
    assert BEATS_BENCHMARK not in overview_table(results.drop(columns="KGE_skill")).columns


def test_a_run_folder_of_csvs_reads_the_benchmark_csv(tmp_path) -> None:
    """Without results.parquet the reader joins each model's CSVs, benchmark.csv too."""
    from gagebench.results.reader import read_run

    for model in ("nwm", "nhm"):
        (tmp_path / model).mkdir()
        (tmp_path / model / "standard_suite.csv").write_text("site_no,NSE,KGE\n01,0.5,0.6\n")
        (tmp_path / model / "benchmark.csv").write_text(
            "site_no,KGE_bench,NSE_bench,KGE_skill,NSE_skill\n01,0.2,0.1,0.5,0.44\n"
        )
    results = read_run(str(tmp_path)).results.set_index("model")
    assert results.loc["nwm", "KGE_skill"] == 0.5
    assert results.loc["nhm", "KGE"] == 0.6
