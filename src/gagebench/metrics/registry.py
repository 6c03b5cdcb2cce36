"""The metric registry: names, suites, optimal values, ranges and formulas.

The column order of each suite is HyTEST's (``evaluation/Metrics_StdSuite_v1.ipynb`` and
``Metrics_DScore_Suite_v1.ipynb`` in hytest-org/hytest); the engine fills the columns in
this order. Formulas are written for paired daily observed ``o`` and simulated ``s``
(NaN pairs dropped), population variances (ddof=0).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MetricInfo:
    """What a metric is: its suite, optimal value, range, formula and reference."""

    name: str
    suite: str
    optimal: float
    lower: float
    upper: float
    formula: str
    reference: str


_NASH = "Nash & Sutcliffe (1970), doi:10.1016/0022-1694(70)90255-6"
_GUPTA = "Gupta et al. (2009), doi:10.1016/j.jhydrol.2009.08.003"
_YILMAZ = "Yilmaz et al. (2008), doi:10.1029/2007WR006716"
_HODSON = "Hodson et al. (2021), doi:10.1029/2021MS002681 (D-score)"
_INF = float("inf")

METRICS: tuple[MetricInfo, ...] = (
    MetricInfo("NSE", "standard", 1.0, -_INF, 1.0, "1 - mean((s-o)^2) / var(o)", _NASH),
    MetricInfo(
        "KGE",
        "standard",
        1.0,
        -_INF,
        1.0,
        "1 - sqrt((r-1)^2 + (sd_s/sd_o - 1)^2 + (sum s/sum o - 1)^2)",
        _GUPTA,
    ),
    MetricInfo(
        "logNSE",
        "standard",
        1.0,
        -_INF,
        1.0,
        "NSE of ln(max(o, 0.01)), ln(max(s, c)); c = 0.1 (hytest) or 0.01 (standard)",
        _NASH,
    ),
    MetricInfo("pbias", "standard", 0.0, -100.0, _INF, "100 * sum(s - o) / sum(o)", _GUPTA),
    MetricInfo("rSD", "standard", 1.0, 0.0, _INF, "sd(s) / sd(o)", _GUPTA),
    MetricInfo("pearson", "standard", 1.0, -1.0, 1.0, "Pearson correlation of o and s", _GUPTA),
    MetricInfo(
        "spearman",
        "standard",
        1.0,
        -1.0,
        1.0,
        "Pearson correlation of the average ranks of o and s",
        _GUPTA,
    ),
    MetricInfo(
        "pBiasFMS",
        "standard",
        0.0,
        -_INF,
        _INF,
        "100 * (m - o') / o', m = the slope of ln s's FDC from exceedance 0.2 to 0.7, o' "
        "likewise (hytest: the .8 and .3 quantiles)",
        _YILMAZ,
    ),
    MetricInfo(
        "pBiasFLV",
        "standard",
        0.0,
        -_INF,
        _INF,
        "-100 * (m - o') / o' over the low-flow segment of the FDC",
        _YILMAZ,
    ),
    MetricInfo(
        "pBiasFHV",
        "standard",
        0.0,
        -100.0,
        _INF,
        "100 * sum(s - o) / sum(o) over the high-flow segment (top 2 %)",
        _YILMAZ,
    ),
    MetricInfo("mse", "dscore", 0.0, 0.0, _INF, "mean(e^2), e = ln s - ln o", _HODSON),
    MetricInfo("e_bias", "dscore", 0.0, 0.0, _INF, "mean(e)^2", _HODSON),
    MetricInfo("e_dist", "dscore", 0.0, 0.0, _INF, "var(sort(ln s) - sort(ln o))", _HODSON),
    MetricInfo("e_seq", "dscore", 0.0, -_INF, _INF, "var(e) - e_dist", _HODSON),
    MetricInfo("winter", "dscore", 0.0, 0.0, _INF, "sum of e^2 over DJF days / n", _HODSON),
    MetricInfo("spring", "dscore", 0.0, 0.0, _INF, "sum of e^2 over MAM days / n", _HODSON),
    MetricInfo("summer", "dscore", 0.0, 0.0, _INF, "sum of e^2 over JJA days / n", _HODSON),
    MetricInfo("fall", "dscore", 0.0, 0.0, _INF, "sum of e^2 over SON days / n", _HODSON),
    MetricInfo(
        "low",
        "dscore",
        0.0,
        0.0,
        _INF,
        "sum of e^2 over days in the lowest quarter of ranked o / n",
        _HODSON,
    ),
    MetricInfo(
        "below_avg",
        "dscore",
        0.0,
        0.0,
        _INF,
        "sum of e^2 over days in the second quarter of ranked o / n",
        _HODSON,
    ),
    MetricInfo(
        "above_avg",
        "dscore",
        0.0,
        0.0,
        _INF,
        "sum of e^2 over days in the third quarter of ranked o / n",
        _HODSON,
    ),
    MetricInfo(
        "high",
        "dscore",
        0.0,
        0.0,
        _INF,
        "sum of e^2 over days in the highest quarter of ranked o / n",
        _HODSON,
    ),
)

METRIC_BY_NAME: dict[str, MetricInfo] = {m.name: m for m in METRICS}
#: The sampling-uncertainty suite (gumboot's bootjack(): Clark et al. 2021,
#: doi:10.1029/2020WR029001): for S in NSE, KGE the score, jackknife and bootstrap standard
#: errors, bootstrap 5/50/95 % values, biases and the jackknife-after-bootstrap standard
#: error of the 90 % interval width, plus the count of valid water years. Computed by
#: ``gagebench.uncertainty_suite`` (not the per-day kernels), so not in ``METRICS``.
UNCERTAINTY_COLUMNS: tuple[str, ...] = (
    *(
        f"{stat}_{name}"
        for stat in ("NSE", "KGE")
        for name in (
            "score", "seJack", "seBoot", "p05", "p50", "p95", "biasJack", "biasBoot", "seJab",
        )
    ),
    "n_years_valid",
)  # fmt: skip
SUITES: dict[str, tuple[str, ...]] = {
    **{
        suite: tuple(m.name for m in METRICS if m.suite == suite)
        for suite in ("standard", "dscore")
    },
    "uncertainty": UNCERTAINTY_COLUMNS,
}
#: The suites the per-day kernels compute (``evaluate_arrays``); ``uncertainty`` is computed
#: over all models of a batch at once by ``gagebench.uncertainty_suite``.
ENGINE_SUITES = ("standard", "dscore")
STANDARD_COLUMNS = SUITES["standard"]
DSCORE_COLUMNS = SUITES["dscore"]
MODES = ("standard", "hytest")
