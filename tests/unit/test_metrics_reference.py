"""The engine equals the independent per-gage reference (``_reference.py``) to 1e-9 relative.

Data: the real sample gage (USGS 01104200, models nwm and nhm, through the public
``gagebench.evaluate``) and 210 synthetic gages (``_synthetic.py``: NaN gaps, intermittent
zero flows, ties, flows at the log floors, negative flows, short records, all-NaN and
constant series), in float64 and float32, in both modes. Every metric of the registry is a
test of its own.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
import pytest
from _reference import HYTEST_DSCORE, HYTEST_STANDARD, reference_batch
from _synthetic import synthetic_gages

import gagebench
from gagebench.metrics import ENGINE_SUITES, METRICS, SUITES, evaluate_arrays
from gagebench.metrics.registry import mode_refusal
from gagebench.sample import SAMPLE_MODELS, load_sample

RTOL = 1e-9
# The suites of the datasets' cases (gagebench.evaluate's default, in both modes); the
# benchmark suite (standard mode only) is compared in test_single_suite_matches_reference.
HYTEST_SUITES = ("standard", "dscore")
DATASETS = ("sample-nwm", "sample-nhm", "synthetic-f64", "synthetic-f32")
MODES = ("standard", "hytest")


def _suites(mode: str) -> tuple[str, ...]:
    """Every per-day suite the mode computes (hytest mode: only HyTEST's)."""
    return tuple(s for s in ENGINE_SUITES if mode_refusal((s,), mode) is None)


#: (metric, mode) of every metric in each mode that computes its suite; the others are
#: refused (test_metrics_kge_errors.py checks the refusal).
METRIC_MODES = [(m.name, mode) for m in METRICS for mode in MODES if m.name in
                {c for s in _suites(mode) for c in SUITES[s]}]  # fmt: skip


@cache
def _synthetic() -> tuple[np.ndarray, np.ndarray, pd.DatetimeIndex, list[str]]:
    return synthetic_gages()


@cache
def _inputs(dataset: str) -> tuple[np.ndarray, np.ndarray]:
    """The (gage, day) float64 values a dataset hands the engine (float32 widened)."""
    if dataset.startswith("sample"):
        sample = load_sample()
        model = dataset.split("-")[1]
        return sample["obs"].to_numpy()[None, :], sample[model].to_numpy()[None, :]
    obs, sim, _, _ = _synthetic()
    if dataset.endswith("f32"):
        return obs.astype(np.float32).astype(float), sim.astype(np.float32).astype(float)
    return obs, sim


@cache
def _case(dataset: str, mode: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(engine rows, reference rows) for one dataset and mode, computed once per session."""
    if dataset.startswith("sample"):
        sample = load_sample()
        model = dataset.split("-")[1]
        engine = gagebench.evaluate(
            sample["obs"], {model: sample[model]}, mode=mode, suites=_suites(mode)
        )
        ref = reference_batch(
            sample["obs"].to_numpy()[None, :], sample[model].to_numpy()[None, :],
            sample.index, mode=mode, suites=_suites(mode),
        )  # fmt: skip
        engine["first"] = [sample.index.get_loc(d) if pd.notna(d) else -1
                           for d in engine["first_day"]]  # fmt: skip
        engine["last"] = [sample.index.get_loc(d) if pd.notna(d) else -1
                          for d in engine["last_day"]]  # fmt: skip
        return engine, ref
    obs, sim, dates, kinds = _synthetic()
    if dataset.endswith("f32"):
        obs, sim = obs.astype(np.float32), sim.astype(np.float32)
    result = evaluate_arrays(obs, sim, dates.values, mode=mode, suites=_suites(mode))
    engine = pd.DataFrame(result.values, columns=list(result.columns))
    engine["n_days"] = result.n_days
    engine["first"] = result.first
    engine["last"] = result.last
    engine["status"] = result.status
    engine["note"] = result.note
    engine["kind"] = kinds
    # The reference sees exactly the values the engine saw (float32 widened to float64).
    ref = reference_batch(
        obs.astype(np.float64), sim.astype(np.float64), dates, mode=mode, suites=_suites(mode)
    )
    return engine, ref


def _atol(metric: str, ref: pd.DataFrame, obs: np.ndarray, sim: np.ndarray) -> np.ndarray | float:
    """Absolute tolerance, only where a relative one is meaningless (cancellation).

    - ``e_bias``, ``e_dist``, ``e_seq``: mean(e)^2, var(sort(s) - sort(o)) and
      var(e) - e_dist are built from sums of signed terms that cancel (e_seq is a difference
      of two nearly equal variances whenever timing error is small); their rounding error is
      ~n * eps * mse, not ~eps * |value|. They are the shares of mse (they sum to it), so
      they are compared at mse's scale: 1e-9 * mse.
    - ``pbias`` = 100 * sum(s - o) / sum(o): when the volumes balance, the sum cancels; its
      rounding error is ~n * eps * sum|s - o|, so 1e-9 * 100 * sum|s - o| / |sum o|.
    Every other metric is compared at rtol 1e-9 alone.
    """
    if metric in ("e_bias", "e_dist", "e_seq"):
        return np.nan_to_num(RTOL * np.abs(ref["mse"].to_numpy(dtype=float)))
    if metric == "pbias":
        with np.errstate(all="ignore"):
            paired = ~np.isnan(obs) & ~np.isnan(sim)
            gross = np.where(paired, np.abs(sim - obs), 0.0).sum(axis=1)
            volume = np.abs(np.where(paired, obs, 0.0).sum(axis=1))
            return np.nan_to_num(RTOL * 100 * gross / volume)
    return 0.0


@pytest.mark.parametrize("dataset", DATASETS)
@pytest.mark.parametrize(("metric", "mode"), METRIC_MODES)
def test_metric_matches_reference(metric: str, dataset: str, mode: str) -> None:
    engine, ref = _case(dataset, mode)
    got = engine[metric].to_numpy(dtype=float)
    want = ref[metric].to_numpy(dtype=float)
    atol = _atol(metric, ref, *_inputs(dataset))
    close = np.isclose(got, want, rtol=RTOL, atol=atol, equal_nan=True)
    # isclose treats inf == inf and -inf == -inf (hytest mode keeps NumPy's infinities).
    bad = np.flatnonzero(~close)
    detail = [
        (int(g), engine.get("kind", pd.Series([dataset])).iloc[g % len(engine)],
         got[g], want[g])
        for g in bad[:5]
    ]  # fmt: skip
    assert bad.size == 0, f"{metric} ({dataset}, {mode}) differs at {bad.size} gages: {detail}"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dataset", DATASETS)
def test_rows_match_reference(dataset: str, mode: str) -> None:
    """Status, paired-day count, first/last paired day and the partial note agree."""
    engine, ref = _case(dataset, mode)
    for column in ("status", "n_days", "first", "last"):
        assert engine[column].tolist() == ref[column].tolist(), column
    evaluated = ref["status"].isin(["ok", "partial"])
    # The engine appends data notes ("; negative modeled flows ...") after the partial note.
    notes = [n for n in engine.loc[evaluated, "note"].str.split("; ").str[0]]
    notes = ["" if n.startswith(("negative", "infinite")) else n for n in notes]
    assert notes == ref.loc[evaluated, "note"].tolist()


def test_synthetic_set_covers_the_hard_cases() -> None:
    """The comparison above is only as good as its data: check the data has every case."""
    obs, sim, _, kinds = _synthetic()
    assert obs.shape[0] >= 200
    paired = ~np.isnan(obs) & ~np.isnan(sim)
    assert np.isnan(obs).mean() > 0.03  # NaN gaps
    assert sum(np.any(o == 0.0) for o in obs) >= 30  # intermittent gages
    assert sum(np.any(o < 0.0) for o in obs) >= 20  # flow reversals
    assert sum(np.any((o > 0) & (o < 0.01)) for o in obs) >= 10  # below the log floor
    assert sum(np.unique(o[p]).size < p.sum() / 2 for o, p in zip(obs, paired, strict=True)) >= 60
    assert sum(0 < p.sum() < 30 for p in paired) >= 10  # short records
    _, ref = _case("synthetic-f64", "standard")
    statuses = set(ref["status"])
    assert statuses >= {"ok", "partial", "no_observations", "no_simulation", "too_few_days",
                        "constant_observations"}  # fmt: skip
    assert ref["status"].eq("ok").sum() >= 120
    assert set(kinds) >= {"plain", "intermittent", "ties", "near_floor", "negative", "short"}


@pytest.mark.parametrize("suite", list(ENGINE_SUITES))
def test_single_suite_matches_reference(suite: str) -> None:
    """Asking for one suite gives that suite's columns, same values as the full run.

    (The uncertainty suite is not computed by ``evaluate_arrays``: see test_uncertainty.py.)
    """
    obs, sim, dates, _ = _synthetic()
    result = evaluate_arrays(obs, sim, dates.values, suites=(suite,))
    assert result.columns == SUITES[suite]
    if suite in HYTEST_SUITES:
        _, ref = _case("synthetic-f64", "standard")
    else:
        ref = reference_batch(obs, sim, dates, suites=(suite,))
        assert result.status == ref["status"].tolist()
    for k, name in enumerate(SUITES[suite]):
        want = ref[name].to_numpy(dtype=float)
        atol = _atol(name, ref, *_inputs("synthetic-f64"))
        assert np.isclose(result.values[:, k], want, rtol=RTOL, atol=atol, equal_nan=True).all()


def test_registry_order_is_hytest_order() -> None:
    """HyTEST's columns are the engine's, in HyTEST's order (the reference spells them out);
    a metric HyTEST lacks may only come after them, so HyTEST's CSV columns keep their place."""
    for suite, hytest in (("standard", HYTEST_STANDARD), ("dscore", HYTEST_DSCORE)):
        assert SUITES[suite][: len(hytest)] == hytest


def test_sample_gage_is_real_and_fully_evaluated() -> None:
    """Guard: the sample comparison ran on the real 01104200 record, not an empty frame."""
    for model in SAMPLE_MODELS:
        engine, _ = _case(f"sample-{model}", "standard")
        assert engine["status"].tolist() == ["ok"]
        assert int(engine["n_days"].iloc[0]) > 12000
        names = [m.name for m in METRICS if m.suite in HYTEST_SUITES]
        assert np.isfinite(engine[names].to_numpy(dtype=float)).all()
