"""An independent per-gage reference for the metrics engine: plain pandas/scipy, one gage at a time.

Written from the definitions (docs/metrics.md, HyTEST's ``Metrics_StdSuite_v1.ipynb`` and
``Metrics_DScore_Suite_v1.ipynb`` in hytest-org/hytest), never from the numba kernels: no
shared helper, no radix sort, no hand-rolled quantile. ``hytest`` mode repeats the notebooks'
NumPy/pandas/scipy calls, so their quirks (ln 0 = -inf, x/0 = +/-inf, the 0.1 floor of the
simulated logNSE) come out as NumPy makes them. ``standard`` mode follows Yilmaz et al. (2008)
on each series' own flow-duration curve, stated in exceedance probabilities, and maps every
+/-inf to NaN.

Used by ``test_metrics_reference.py`` (engine == reference) and by
``benchmarks/bench_metrics.py`` (the per-gage baseline the engine's speed is compared with).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from gagebench.metrics.registry import ENGINE_SUITES, SUITES

# HyTEST's columns in HyTEST's order (its notebooks' tables), spelled out here so the
# registry's order is checked against a source other than itself (test_metrics_reference).
HYTEST_STANDARD = (
    "NSE",
    "KGE",
    "logNSE",
    "pbias",
    "rSD",
    "pearson",
    "spearman",
    "pBiasFMS",
    "pBiasFLV",
    "pBiasFHV",
)
HYTEST_DSCORE = (
    "mse",
    "e_bias",
    "e_dist",
    "e_seq",
    "winter",
    "spring",
    "summer",
    "fall",
    "low",
    "below_avg",
    "above_avg",
    "high",
)
FLOOR = 0.01  # every log floors flows here (HyTEST's logXform clip)
HYTEST_SIM_FLOOR = 0.1  # HyTEST's logNSE clips the simulated series at 0.1


def _var(x: np.ndarray) -> float:
    """Population variance (ddof=0); exactly 0 for a constant series, as defined.

    (``np.var`` of n equal values can return ~1e-33 instead of 0, because their mean is
    rounded; a metric divided by it would then be rounding noise such as -6e+31.)
    """
    return 0.0 if np.all(x == x[0]) else float(np.var(x, ddof=0))


def _nse(obs: np.ndarray, sim: np.ndarray) -> float:
    return float(1 - np.mean((obs - sim) ** 2) / np.float64(_var(obs)))


def _log_clip(x: np.ndarray, floor: float) -> np.ndarray:
    return np.log(np.clip(x, floor, None))


def _shared(obs: np.ndarray, sim: np.ndarray, sim_floor: float) -> dict[str, float]:
    """The metrics both modes define alike (the notebook's functions)."""
    r = stats.pearsonr(obs, sim)[0]
    rsd = np.sqrt(_var(sim)) / np.sqrt(_var(obs))
    beta = np.sum(sim) / np.sum(obs)
    return {
        "NSE": _nse(obs, sim),
        "KGE": float(1 - np.sqrt((r - 1) ** 2 + (rsd - 1) ** 2 + (beta - 1) ** 2)),
        "logNSE": _nse(_log_clip(obs, FLOOR), _log_clip(sim, sim_floor)),
        "pbias": float(100 * np.sum(sim - obs) / np.sum(obs)),
        "rSD": float(rsd),
        "pearson": float(r),
        "spearman": float(stats.spearmanr(obs, sim)[0]),
    }


def _hytest_fdc(obs: np.ndarray, sim: np.ndarray) -> dict[str, float]:
    """pBiasFMS/FLV/FHV exactly as the HyTEST notebook writes them."""
    qo_m1, qo_m2 = np.quantile(obs, [0.30, 0.80])
    qs_m1, qs_m2 = np.quantile(sim, [0.30, 0.80])
    m = np.log(qs_m1) - np.log(qs_m2)
    o = np.log(qo_m1) - np.log(qo_m2)
    fms = 100 * (m - o) / o

    _, qo_low = np.quantile(obs, [0.0, 0.30])
    _, qs_low = np.quantile(sim, [0.0, 0.30])
    low = obs <= qo_low
    m = np.sum(np.log(sim[low]) - np.log(qs_low))
    o = np.sum(np.log(obs[low]) - np.log(qo_low))
    flv = -100 * ((m - o) / o)

    lower, upper = np.quantile(obs, [0.98, 1.0])
    high = (obs >= lower) & (obs <= upper)
    fhv = 100 * ((sim[high] - obs[high]).sum() / obs[high].sum())
    return {"pBiasFMS": float(fms), "pBiasFLV": float(flv), "pBiasFHV": float(fhv)}


def _standard_fdc(obs: np.ndarray, sim: np.ndarray) -> dict[str, float]:
    """Yilmaz et al. (2008) on each series' own FDC; the i-th largest of n has exceedance i/n."""
    n = obs.size
    fdc_o = np.sort(obs)[::-1]
    fdc_s = np.sort(sim)[::-1]
    exceedance = np.arange(1, n + 1) / n

    # Mid-segment slope from exceedance 0.2 to 0.7, read off each curve: the flow of the
    # first point whose exceedance reaches 0.2 (0.7), log floored.
    def slope(fdc: np.ndarray) -> np.float64:
        high = fdc[np.flatnonzero(exceedance >= 0.2)[0]]
        low = fdc[np.flatnonzero(exceedance >= 0.7)[0]]
        return np.log(np.maximum(high, FLOOR)) - np.log(np.maximum(low, FLOOR))

    m, o = slope(fdc_s), slope(fdc_o)
    fms = 100 * (m - o) / o

    # Low segment: exceedance 0.7..1.0, log of floored flows relative to the segment minimum.
    in_low = exceedance >= 0.7
    log_o = _log_clip(fdc_o[in_low], FLOOR)
    log_s = _log_clip(fdc_s[in_low], FLOOR)
    o = np.sum(log_o - log_o.min())
    m = np.sum(log_s - log_s.min())
    flv = -100 * (m - o) / o

    # High segment: exceedance <= 0.02 (at least the largest flow).
    k = max(1, int(np.count_nonzero(exceedance <= 0.02)))
    fhv = 100 * np.sum(fdc_s[:k] - fdc_o[:k]) / np.sum(fdc_o[:k])
    return {"pBiasFMS": float(fms), "pBiasFLV": float(flv), "pBiasFHV": float(fhv)}


def _dscore(obs: pd.Series, sim: pd.Series) -> dict[str, float]:
    """HyTEST's D-score notebook functions on ln(max(x, 0.01)) of both series."""
    obs = np.log(obs.clip(lower=FLOOR))
    sim = np.log(sim.clip(lower=FLOOR))
    e = sim - obs
    out = {"mse": float((e**2).mean()), "e_bias": float(e.mean() ** 2)}
    dist = np.sort(sim.to_numpy()) - np.sort(obs.to_numpy())
    out["e_dist"] = float(dist.var(ddof=0))
    out["e_seq"] = float(e.var(ddof=0) - out["e_dist"])
    month = pd.DatetimeIndex(e.index).month
    seasons = {
        "winter": (month == 12) | (month <= 2),
        "spring": (month > 2) & (month <= 5),
        "summer": (month > 5) & (month <= 8),
        "fall": (month > 8) & (month <= 11),
    }
    for name, idx in seasons.items():
        out[name] = float(((e * idx) ** 2).mean())
    ranks = obs.rank(method="first")
    bins = pd.qcut(ranks, q=[0, 0.25, 0.5, 0.75, 1])
    for i, name in enumerate(("low", "below_avg", "above_avg", "high")):
        out[name] = float(((e * (bins == bins.cat.categories[i])) ** 2).mean())
    return out


def _kge(obs: np.ndarray, sim: np.ndarray) -> dict[str, float]:
    """The kge suite from the papers' formulas (population moments, NumPy's sums).

    Kling et al. (2012): gamma is the ratio of the coefficients of variation; Tang et al.
    (2021): the bias term is (mu_s - mu_o) / sd_o; Pool et al. (2018): Spearman's r (ties
    averaged, scipy), alpha from each flow-duration curve divided by its volume n * mu.
    """
    n = obs.size
    mu_o, mu_s = np.mean(obs), np.mean(sim)
    sd_o, sd_s = np.sqrt(_var(obs)), np.sqrt(_var(sim))
    r = stats.pearsonr(obs, sim)[0]
    beta = mu_s / mu_o
    gamma = (sd_s / mu_s) / (sd_o / mu_o)
    kge_2012 = 1 - np.sqrt((r - 1) ** 2 + (gamma - 1) ** 2 + (beta - 1) ** 2)
    bias = (mu_s - mu_o) / sd_o
    kge_2021 = 1 - np.sqrt((r - 1) ** 2 + (sd_s / sd_o - 1) ** 2 + bias**2)
    r_s = stats.spearmanr(obs, sim)[0]
    fdc = np.sort(sim) / (n * mu_s) - np.sort(obs) / (n * mu_o)
    alpha_np = 1 - 0.5 * np.sum(np.abs(fdc))
    kge_np = 1 - np.sqrt((r_s - 1) ** 2 + (alpha_np - 1) ** 2 + (beta - 1) ** 2)
    return {"KGE2012": float(kge_2012), "KGE2021": float(kge_2021), "KGEnp": float(kge_np)}


def _errors(obs: np.ndarray, sim: np.ndarray) -> dict[str, float]:
    """RMSE, MAE and R2 (the square of Pearson's r)."""
    return {
        "RMSE": float(np.sqrt(np.mean((sim - obs) ** 2))),
        "MAE": float(np.mean(np.abs(sim - obs))),
        "R2": float(stats.pearsonr(obs, sim)[0] ** 2),
    }


def _benchmark(o: pd.Series, s: pd.Series) -> dict[str, float]:
    """The benchmark suite (Knoben et al. 2020): the day-of-year climatology of the paired
    observed flows (a pandas groupby by month-day, Feb 29 its own group), scored with the
    published KGE (Gupta et al. 2009) and NSE; the skills against the model's. A benchmark
    equal to the observations on every day scores exactly 1, and its skills are undefined."""
    b = o.groupby(pd.DatetimeIndex(o.index).strftime("%m-%d")).transform("mean")

    def kge(x: pd.Series) -> float:
        r = np.corrcoef(o.to_numpy(), x.to_numpy())[0, 1]
        alpha = x.std(ddof=0) / o.std(ddof=0)
        beta = x.sum() / o.sum()
        return float(1 - np.sqrt((r - 1) ** 2 + (alpha - 1) ** 2 + (beta - 1) ** 2))

    def nse(x: pd.Series) -> float:
        return float(1 - ((x - o) ** 2).mean() / _var(o.to_numpy()))

    perfect = bool((b == o).all())
    out = {"KGE_bench": 1.0 if perfect else kge(b), "NSE_bench": 1.0 if perfect else nse(b)}
    for name, model in (("KGE", kge(s)), ("NSE", nse(s))):
        bench = out[f"{name}_bench"]
        out[f"{name}_skill"] = np.nan if perfect else (model - bench) / (1 - bench)
    return out


def reference_gage(
    obs: pd.Series,
    sim: pd.Series,
    *,
    mode: str = "standard",
    suites: Sequence[str] = ("standard", "dscore"),
) -> dict[str, Any]:
    """Every metric of one gage: a dict of metric columns, n_days, first, last, status, note.

    ``obs`` and ``sim`` share a daily DatetimeIndex; ``first``/``last`` are positions in it.
    """
    # The registry gives the names and their order only; every value is computed here.
    columns = [c for suite in ENGINE_SUITES if suite in suites for c in SUITES[suite]]
    row: dict[str, Any] = dict.fromkeys(columns, np.nan)
    obs = obs.astype(np.float64)
    sim = sim.astype(np.float64)
    paired = obs.notna() & sim.notna()
    positions = np.flatnonzero(paired.to_numpy())
    row["n_days"] = int(positions.size)
    row["first"] = int(positions[0]) if positions.size else -1
    row["last"] = int(positions[-1]) if positions.size else -1
    if obs.notna().sum() == 0:
        return {**row, "status": "no_observations"}
    if sim.notna().sum() == 0:
        return {**row, "status": "no_simulation"}
    if positions.size < 2:
        return {**row, "status": "too_few_days"}
    o, s = obs[paired], sim[paired]
    if o.nunique() == 1:
        # every variance-based metric is undefined; the errors are not
        if "errors" in suites:
            error = (s - o).to_numpy()
            row["RMSE"] = float(np.sqrt(np.mean(error**2)))
            row["MAE"] = float(np.mean(np.abs(error)))
        return {**row, "status": "constant_observations"}
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")  # scipy's ConstantInputWarning, NumPy's log(0)
        values: dict[str, float] = {}
        if "standard" in suites:
            a, b = o.to_numpy(), s.to_numpy()
            sim_floor = HYTEST_SIM_FLOOR if mode == "hytest" else FLOOR
            values |= _shared(a, b, sim_floor)
            values |= _hytest_fdc(a, b) if mode == "hytest" else _standard_fdc(a, b)
        if "dscore" in suites:
            values |= _dscore(o, s)
        if "kge" in suites:
            values |= _kge(o.to_numpy(), s.to_numpy())
        if "errors" in suites:
            values |= _errors(o.to_numpy(), s.to_numpy())
        if "benchmark" in suites:
            values |= _benchmark(o, s)
    if missing := [c for c in columns if c not in values]:
        raise AssertionError(f"the reference does not compute {missing}: add it to _reference.py")
    if mode == "standard":
        values = {k: (np.nan if np.isinf(v) else v) for k, v in values.items()}
    row.update(values)
    bad = [c for c in columns if not np.isfinite(row[c])]
    row["status"] = "partial" if bad else "ok"
    row["note"] = "undefined: " + ", ".join(bad) if bad else ""
    return row


def reference_batch(
    obs: np.ndarray,
    sim: np.ndarray,
    dates: Any,
    *,
    mode: str = "standard",
    suites: Sequence[str] = ("standard", "dscore"),
) -> pd.DataFrame:
    """``reference_gage`` for every row of (gage, day) arrays, one gage at a time."""
    index = pd.DatetimeIndex(dates)
    rows = [
        reference_gage(pd.Series(o, index=index), pd.Series(s, index=index), mode=mode,
                       suites=suites)
        for o, s in zip(obs, sim, strict=True)
    ]  # fmt: skip
    return pd.DataFrame(rows)
