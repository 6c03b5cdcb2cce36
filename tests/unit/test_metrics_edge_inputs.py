"""Inputs a user meets at the edges of the engine, checked through every entry that takes
dates: ``evaluate_arrays``, the one-series functions and ``gagebench.evaluate``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import gagebench
import gagebench.metrics as gm
from gagebench.errors import InputError
from gagebench.metrics import evaluate_arrays
from gagebench.metrics.registry import HYTEST_SUITES


def _flows(n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    obs = np.exp(1.0 + np.sin(2 * np.pi * np.arange(n) / 365.25) + rng.normal(0, 0.4, n))
    return obs, obs * np.exp(rng.normal(0.1, 0.3, n))


@pytest.mark.parametrize("suite", ["benchmark", "dscore"])
def test_a_missing_date_is_refused_not_binned_into_some_calendar_day(suite: str) -> None:
    """A NaT among the dates has no calendar day or season: scoring it as one (NaT fell
    into the first day of some month) would be a silent wrong benchmark or D-score."""
    obs, sim = _flows(800)
    time = pd.date_range("2000-01-01", periods=800).to_numpy().copy()
    time[5] = np.datetime64("NaT")
    with pytest.raises(InputError, match=r"time has 1 missing \(NaT\) date.*position 5"):
        evaluate_arrays(obs[None, :], sim[None, :], time, suites=(suite,))
    with pytest.raises(InputError, match=r"missing \(NaT\)"):
        gm.kge_bench(obs, sim, time)
    with pytest.raises(InputError, match="NaT"):
        gagebench.evaluate(obs, sim, time=time, suites=(suite,))


def test_suites_without_dates_still_take_a_missing_date() -> None:
    obs, sim = _flows(50)
    time = pd.date_range("2000-01-01", periods=50).to_numpy().copy()
    time[0] = np.datetime64("NaT")
    result = evaluate_arrays(obs[None, :], sim[None, :], time, suites=("kge", "errors"))
    assert result.status == ["ok"]


@pytest.mark.parametrize(
    "info", [m for m in gm.METRICS if m.function and m.suite not in HYTEST_SUITES],
    ids=lambda m: m.function,
)  # fmt: skip
def test_docstrings_of_suites_hytest_lacks_say_hytest_mode_refuses_them(info) -> None:
    """Their ``mode`` parameter must not promise HyTEST's notebooks: that mode refuses them."""
    doc = getattr(gm, info.function).__doc__
    assert "reproduces HyTEST's notebooks" not in doc
    assert '``"standard"`` only' in doc
    dated = (pd.date_range("2001-01-01", periods=3),) if info.dated else ()
    with pytest.raises(InputError, match="use mode 'standard'"):
        getattr(gm, info.function)([1.0, 2.0, 3.0], [1.0, 2.0, 4.0], *dated, mode="hytest")


def test_benchmark_skill_per_group_of_float32_flows_is_exact_as_float64() -> None:
    """HyTEST's stores are float32: a breakdown's benchmark scores of float32 flows equal
    those of the same values as float64 (each value is exact in both), to 1e-9, like the
    whole-record scores; the model's errors are not rounded to float32 on the way."""
    days = pd.date_range("1990-10-01", "2000-09-30")
    obs, sim = _flows(days.size)
    obs32, sim32 = obs.astype(np.float32), sim.astype(np.float32)
    columns = ["NSE", "KGE", "KGE_bench", "NSE_bench", "KGE_skill", "NSE_skill"]
    for by in ("season", "water_year"):
        got = gagebench.evaluate(
            obs32, sim32, time=days, suites=("standard", "benchmark"), by=by, min_paired_days=2
        )
        want = gagebench.evaluate(
            obs32.astype(np.float64), sim32.astype(np.float64), time=days,
            suites=("standard", "benchmark"), by=by, min_paired_days=2,
        )  # fmt: skip
        np.testing.assert_allclose(got[columns], want[columns], rtol=1e-9, atol=0)
        # the skill is the row's own NSE and NSE_bench
        skill = (got["NSE"] - got["NSE_bench"]) / (1 - got["NSE_bench"])
        np.testing.assert_allclose(got["NSE_skill"], skill, rtol=1e-9)


def test_the_dated_functions_are_typed_with_their_time_argument() -> None:
    """A type checker sees ``kge_bench(obs, sim, time)`` as valid: each dated registry
    function is declared a ``DatedMetricFunction`` for it (mypy checks the calls above)."""
    import ast

    from gagebench.metrics import functions

    tree = ast.parse(Path(functions.__file__).read_text())
    declared = {
        node.target.id
        for node in ast.walk(tree)
        if isinstance(node, ast.AnnAssign)
        and isinstance(node.target, ast.Name)
        and ast.unparse(node.annotation) == "DatedMetricFunction"
    }
    assert declared == {m.function for m in gm.METRICS if m.dated}
    assert gm.kge_bench.__name__ == "kge_bench"


def test_numbers_as_time_are_refused_where_calendar_days_are_needed() -> None:
    """Day numbers (e.g. a day-of-year column) are not dates: read as days since 1970 they
    would give a silent benchmark of the wrong calendar days."""
    obs, sim = _flows(800)
    with pytest.raises(InputError, match=r"time must be dates .*got int"):
        gm.kge_bench(obs, sim, np.arange(800))
    with pytest.raises(InputError, match=r"time must be dates"):
        evaluate_arrays(obs[None, :], sim[None, :], np.arange(800.0), suites=("dscore",))
