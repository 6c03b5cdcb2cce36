"""The metric registry: names, suites, optimal values, ranges and formulas.

The column order of each suite is HyTEST's (``evaluation/Metrics_StdSuite_v1.ipynb`` and
``Metrics_DScore_Suite_v1.ipynb`` in hytest-org/hytest); the engine fills the columns in
this order. Formulas are written for paired daily observed ``o`` and simulated ``s``
(NaN pairs dropped), population variances (ddof=0).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class MetricInfo:
    """What a metric is, and everything derived from it.

    The registry is the one place a built-in metric is declared: its position in
    ``METRICS`` is its column in the results and its slot in the kernels' output row
    (:func:`slot`); ``function`` names its one-series function in :mod:`gagebench.metrics`
    (``None``: given by :func:`gagebench.metrics.dscore` only), whose docstring is made
    from ``title``, ``formula``, ``note`` and ``reference``; ``definition`` is its row in
    the docs' suite tables (MyST markdown, ``$...$`` math).
    """

    name: str
    suite: str
    optimal: float
    lower: float
    upper: float
    formula: str
    reference: str
    function: str | None = None
    title: str = ""
    definition: str = ""
    note: str = ""
    #: Whether its one-series function needs the dates (``time``) of the days.
    dated: bool = False


_NASH = "Nash & Sutcliffe (1970), doi:10.1016/0022-1694(70)90255-6"
_GUPTA = "Gupta et al. (2009), doi:10.1016/j.jhydrol.2009.08.003"
_YILMAZ = "Yilmaz et al. (2008), doi:10.1029/2007WR006716"
_HODSON = "Hodson et al. (2021), doi:10.1029/2021MS002681 (D-score)"
_KLING = "Kling et al. (2012), doi:10.1016/j.jhydrol.2012.01.011"
_TANG = "Tang et al. (2021), doi:10.1175/JCLI-D-21-0067.1"
_POOL = "Pool et al. (2018), doi:10.1080/02626667.2018.1552002"
_LEGATES = "Legates & McCabe (1999), doi:10.1029/1998WR900018"
_KNOBEN = (
    "Knoben et al. (2019), doi:10.5194/hess-23-4323-2019 (benchmarks for KGE); Knoben et al. "
    "(2020), doi:10.1029/2019WR025975, as USGS HyMETT's benchmark_KGE_DOY (the day-of-year "
    "benchmark)"
)
_BENCH = (
    "``b`` is the day-of-year benchmark: the mean observed flow of each calendar day "
    "(month-day, Feb 29 its own day) over the gage's paired days."
)
_SKILL = (
    "NaN when the benchmark is perfect ({0}_bench = 1: each calendar day observed in one "
    "year only); the row's note says so."
)
_INF = float("inf")
_E = "``e = ln max(s, 0.01) - ln max(o, 0.01)``"
_SEASON = r"$\sum e_t^2$ over the {} days ({}) divided by $n$"
_QUARTER = "the same sum over the {} quarter of the observed flows (ranked as below)"

METRICS: tuple[MetricInfo, ...] = (
    MetricInfo(
        "NSE", "standard", 1.0, -_INF, 1.0, "1 - mean((s-o)^2) / var(o)", _NASH,
        function="nse",
        title="Nash-Sutcliffe efficiency",
        definition=r"$1 - \dfrac{\overline{(s-o)^2}}{\operatorname{var}(o)}$",
    ),
    MetricInfo(
        "KGE", "standard", 1.0, -_INF, 1.0,
        "1 - sqrt((r-1)^2 + (sd_s/sd_o - 1)^2 + (sum s/sum o - 1)^2)", _GUPTA,
        function="kge",
        title="Kling-Gupta efficiency",
        definition=r"$1 - \sqrt{(r-1)^2 + (\alpha-1)^2 + (\beta-1)^2}$, $r$ Pearson, "
        r"$\alpha = \sigma_s/\sigma_o$, $\beta = \sum s / \sum o$",
        note="``r`` is Pearson's correlation of ``o`` and ``s``.",
    ),
    MetricInfo(
        "logNSE", "standard", 1.0, -_INF, 1.0,
        "NSE of ln(max(o, 0.01)), ln(max(s, c)); c = 0.1 (hytest) or 0.01 (standard)", _NASH,
        function="log_nse",
        title="NSE of the logs",
        definition=r"NSE of $\ln\max(o, 0.01)$ and $\ln\max(s, c)$; $c = 0.01$ "
        "(standard) or $0.1$ (hytest)",
    ),
    MetricInfo(
        "pbias", "standard", 0.0, -100.0, _INF, "100 * sum(s - o) / sum(o)", _GUPTA,
        function="pbias",
        title="Percent bias",
        definition=r"$100 \sum (s-o) / \sum o$ (positive: the model over-predicts)",
        note="Positive: the model over-predicts.",
    ),
    MetricInfo(
        "rSD", "standard", 1.0, 0.0, _INF, "sd(s) / sd(o)", _GUPTA,
        function="rsd",
        title="Ratio of standard deviations",
        definition=r"$\sigma_s / \sigma_o$",
        note="Population standard deviations (ddof=0); the variability term of KGE.",
    ),
    MetricInfo(
        "pearson", "standard", 1.0, -1.0, 1.0, "Pearson correlation of o and s", _GUPTA,
        function="pearson",
        title="Pearson correlation",
        definition="Pearson correlation of $o$ and $s$",
        note="``cov(o, s) / (sd(o) sd(s))``; the correlation term of KGE.",
    ),
    MetricInfo(
        "spearman", "standard", 1.0, -1.0, 1.0,
        "Pearson correlation of the average ranks of o and s", _GUPTA,
        function="spearman",
        title="Spearman rank correlation",
        definition="Pearson correlation of the average ranks (ties averaged, as scipy)",
        note="Ties get their average rank, as ``scipy.stats.rankdata``.",
    ),
    MetricInfo(
        "pBiasFMS", "standard", 0.0, -_INF, _INF,
        "100 * (m - o') / o', m = the slope of ln s's FDC from exceedance 0.2 to 0.7, o' "
        "likewise (hytest: the .8 and .3 quantiles)", _YILMAZ,
        function="pbias_fms",
        title="Percent bias of the flow-duration curve's mid-segment slope",
        definition="bias of the slope of the flow-duration curve's middle segment",
        note="How each mode reads the curve is in the docs' Metric definitions.",
    ),
    MetricInfo(
        "pBiasFLV", "standard", 0.0, -_INF, _INF,
        "-100 * (m - o') / o' over the low-flow segment of the FDC", _YILMAZ,
        function="pbias_flv",
        title="Percent bias of the flow-duration curve's low-flow segment volume",
        definition="bias of the low-flow segment's volume",
        note="``m = sum(ln s_(j) - ln s_min)`` over the low segment, ``o'`` likewise.",
    ),
    MetricInfo(
        "pBiasFHV", "standard", 0.0, -100.0, _INF,
        "100 * sum(s - o) / sum(o) over the high-flow segment (top 2 %)", _YILMAZ,
        function="pbias_fhv",
        title="Percent bias of the flow-duration curve's high-flow segment volume",
        definition="bias of the high-flow segment's volume",
    ),
    MetricInfo(
        "mse", "dscore", 0.0, 0.0, _INF, "mean(e^2), e = ln s - ln o", _HODSON,
        function="mse",
        title="Mean squared log error",
        definition=r"$\overline{e^2}$",
        note=f"{_E}. The D-score's total: ``mse = e_bias + e_dist + e_seq``.",
    ),
    MetricInfo(
        "e_bias", "dscore", 0.0, 0.0, _INF, "mean(e)^2", _HODSON,
        function="e_bias",
        title="Bias component of the D-score",
        definition=r"$\bar e^{\,2}$",
        note=f"{_E}.",
    ),
    MetricInfo(
        "e_dist", "dscore", 0.0, 0.0, _INF, "var(sort(ln s) - sort(ln o))", _HODSON,
        function="e_dist",
        title="Distribution component of the D-score",
        definition=r"$\operatorname{var}(\operatorname{sort}(\ln s) - "
        r"\operatorname{sort}(\ln o))$",
        note="Logs floored at 0.01.",
    ),
    MetricInfo(
        "e_seq", "dscore", 0.0, -_INF, _INF, "var(e) - e_dist", _HODSON,
        function="e_seq",
        title="Sequence component of the D-score",
        definition=r"$\operatorname{var}(e) - e_\mathrm{dist}$ "
        "(so `e_bias + e_dist + e_seq = mse`)",
        note=f"{_E}.",
    ),
    MetricInfo(
        "winter", "dscore", 0.0, 0.0, _INF, "sum of e^2 over DJF days / n", _HODSON,
        definition=_SEASON.format("winter", "DJF"),
    ),
    MetricInfo(
        "spring", "dscore", 0.0, 0.0, _INF, "sum of e^2 over MAM days / n", _HODSON,
        definition=_SEASON.format("spring", "MAM"),
    ),
    MetricInfo(
        "summer", "dscore", 0.0, 0.0, _INF, "sum of e^2 over JJA days / n", _HODSON,
        definition=_SEASON.format("summer", "JJA"),
    ),
    MetricInfo(
        "fall", "dscore", 0.0, 0.0, _INF, "sum of e^2 over SON days / n", _HODSON,
        definition=_SEASON.format("fall", "SON"),
    ),
    MetricInfo(
        "low", "dscore", 0.0, 0.0, _INF,
        "sum of e^2 over days in the lowest quarter of ranked o / n", _HODSON,
        definition=_QUARTER.format("lowest"),
    ),
    MetricInfo(
        "below_avg", "dscore", 0.0, 0.0, _INF,
        "sum of e^2 over days in the second quarter of ranked o / n", _HODSON,
        definition=_QUARTER.format("second"),
    ),
    MetricInfo(
        "above_avg", "dscore", 0.0, 0.0, _INF,
        "sum of e^2 over days in the third quarter of ranked o / n", _HODSON,
        definition=_QUARTER.format("third"),
    ),
    MetricInfo(
        "high", "dscore", 0.0, 0.0, _INF,
        "sum of e^2 over days in the highest quarter of ranked o / n", _HODSON,
        definition=_QUARTER.format("highest"),
    ),
    MetricInfo(
        "KGE2012", "kge", 1.0, -_INF, 1.0,
        "1 - sqrt((r-1)^2 + (gamma-1)^2 + (beta-1)^2), gamma = (sd_s/mu_s) / (sd_o/mu_o), "
        "beta = mu_s/mu_o", _KLING,
        function="kge_2012",
        title="Modified Kling-Gupta efficiency (KGE')",
        definition=r"$1 - \sqrt{(r-1)^2 + (\gamma-1)^2 + (\beta-1)^2}$, $r$ Pearson, "
        r"$\gamma = \dfrac{\sigma_s/\mu_s}{\sigma_o/\mu_o}$, $\beta = \mu_s/\mu_o$",
        note="The variability term is the ratio of the coefficients of variation, so it "
        "does not move with the bias; as HydroErr's ``kge_2012`` and hydroeval's "
        "``kgeprime``.",
    ),
    MetricInfo(
        "KGE2021", "kge", 1.0, -_INF, 1.0,
        "1 - sqrt((r-1)^2 + (alpha-1)^2 + ((mu_s - mu_o)/sd_o)^2), alpha = sd_s/sd_o", _TANG,
        function="kge_2021",
        title="Kling-Gupta efficiency of Tang et al. (KGE'')",
        definition=r"$1 - \sqrt{(r-1)^2 + (\alpha-1)^2 + \beta_n^2}$, $r$ Pearson, "
        r"$\alpha = \sigma_s/\sigma_o$, $\beta_n = (\mu_s - \mu_o)/\sigma_o$",
        note="The bias term is the mean error in units of the observed standard deviation "
        "(defined when the mean observed flow is near zero), as hydroGOF's KGE of 2021.",
    ),
    MetricInfo(
        "KGEnp", "kge", 1.0, -_INF, 1.0,
        "1 - sqrt((r_s-1)^2 + (alpha_np-1)^2 + (beta-1)^2), r_s Spearman, alpha_np = 1 - "
        "0.5 sum_k |s_(k)/(n mu_s) - o_(k)/(n mu_o)|, beta = mu_s/mu_o", _POOL,
        function="kge_np",
        title="Non-parametric Kling-Gupta efficiency",
        definition=r"$1 - \sqrt{(r_s-1)^2 + (\alpha_{np}-1)^2 + (\beta-1)^2}$, $r_s$ "
        r"Spearman, $\alpha_{np} = 1 - \tfrac12 \sum_k \left|\dfrac{s_{(k)}}{n\mu_s} - "
        r"\dfrac{o_{(k)}}{n\mu_o}\right|$ (each series sorted), $\beta = \mu_s/\mu_o$",
        note="As hydroeval's ``kgenp``: the same flow-duration-curve term (each series "
        "sorted and divided by n times its mean) and beta; ``r_s`` is Spearman's with tied "
        "flows given their average rank (the ``spearman`` column), where hydroeval ranks "
        "ties in an arbitrary order (the same value on series without ties).",
    ),
    MetricInfo(
        "RMSE", "errors", 0.0, 0.0, _INF, "sqrt(mean((s-o)^2))", _LEGATES,
        function="rmse",
        title="Root mean squared error",
        definition=r"$\sqrt{\overline{(s-o)^2}}$ (flow units)",
        note="In the flows' units (m3/s).",
    ),
    MetricInfo(
        "MAE", "errors", 0.0, 0.0, _INF, "mean(|s-o|)", _LEGATES,
        function="mae",
        title="Mean absolute error",
        definition=r"$\overline{|s-o|}$ (flow units)",
        note="In the flows' units (m3/s).",
    ),
    MetricInfo(
        "R2", "errors", 1.0, 0.0, 1.0, "r^2, r = Pearson correlation of o and s", _LEGATES,
        function="r2",
        title="Coefficient of determination (squared Pearson correlation)",
        definition=r"$r^2$, $r$ Pearson (the square of the `pearson` column)",
        note="The square of Pearson's correlation, not ``1 - SSE/SST`` (that is NSE).",
    ),
    MetricInfo(
        "KGE_bench", "benchmark", 1.0, -_INF, 1.0,
        "KGE of b against o, b = mean o of each calendar day over the paired days", _KNOBEN,
        function="kge_bench",
        title="KGE of the day-of-year benchmark",
        definition=r"KGE of $b$ against $o$; $b_t = \overline{o_d}$, the mean observed "
        r"flow of $t$'s calendar day $d$ (Feb 29 its own) over the paired days",
        note=_BENCH, dated=True,
    ),
    MetricInfo(
        "NSE_bench", "benchmark", 1.0, -_INF, 1.0,
        "NSE of b against o, b = mean o of each calendar day over the paired days", _KNOBEN,
        function="nse_bench",
        title="NSE of the day-of-year benchmark",
        definition=r"NSE of $b$ against $o$ (as `KGE_bench`)",
        note=_BENCH, dated=True,
    ),
    MetricInfo(
        "KGE_skill", "benchmark", 1.0, -_INF, 1.0,
        "(KGE - KGE_bench) / (1 - KGE_bench)", _KNOBEN,
        function="kge_skill",
        title="KGE skill score against the day-of-year benchmark",
        definition=r"$\dfrac{\mathrm{KGE} - \mathrm{KGE_{bench}}}{1 - \mathrm{KGE_{bench}}}$"
        " (> 0: the model beats its benchmark)",
        note="Above 0 the model beats its benchmark. " + _SKILL.format("KGE"),
        dated=True,
    ),
    MetricInfo(
        "NSE_skill", "benchmark", 1.0, -_INF, 1.0,
        "(NSE - NSE_bench) / (1 - NSE_bench)", _KNOBEN,
        function="nse_skill",
        title="NSE skill score against the day-of-year benchmark",
        definition=r"$\dfrac{\mathrm{NSE} - \mathrm{NSE_{bench}}}{1 - \mathrm{NSE_{bench}}}$"
        " (> 0: the model beats its benchmark)",
        note="Above 0 the model beats its benchmark. " + _SKILL.format("NSE"),
        dated=True,
    ),
)  # fmt: skip


#: The suites the per-day kernels of ``kernels.py`` compute (one slot constant per metric).
KERNEL_SUITES = ("standard", "dscore", "kge", "errors")
#: The suites ``evaluate_arrays`` computes (``ENGINE_SUITES``): the kernels' and the
#: benchmark suite (``benchmark_kernels.py``, which fills its metrics' slots after them).
_KERNEL_SUITES = (*KERNEL_SUITES, "benchmark")
#: The suites HyTEST defines (its notebooks and gumboot): the only ones ``hytest`` mode,
#: which reproduces them, computes (:func:`mode_refusal`).
HYTEST_SUITES = ("standard", "dscore", "uncertainty")


def check_metrics(metrics: tuple[MetricInfo, ...]) -> None:
    """Raise ``ValueError`` naming each entry that would derive a wrong column or function:
    a name or function name used twice, a suite the kernels lack, a function without a
    title for its docstring. Run on ``METRICS`` at import."""
    problems = []
    for field in ("name", "function"):
        values = [getattr(m, field) for m in metrics if getattr(m, field) is not None]
        if twice := sorted({v for v in values if values.count(v) > 1}):
            problems.append(f"{field} used twice: {twice}")
    problems += [
        f"{m.name}: suite {m.suite!r} is not one of {list(_KERNEL_SUITES)}"
        for m in metrics
        if m.suite not in _KERNEL_SUITES
    ]
    problems += [
        f"{m.name}: a function needs a title" for m in metrics if m.function and not m.title
    ]
    if problems:
        raise ValueError("gagebench.metrics.registry.METRICS: " + "; ".join(problems))


check_metrics(METRICS)

METRIC_BY_NAME: dict[str, MetricInfo] = {m.name: m for m in METRICS}
#: Each metric's slot in the kernels' output row: its position in ``METRICS``.
SLOTS: dict[str, int] = {m.name: i for i, m in enumerate(METRICS)}
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
    **{suite: tuple(m.name for m in METRICS if m.suite == suite) for suite in _KERNEL_SUITES},
    "uncertainty": UNCERTAINTY_COLUMNS,
}
#: The suites the per-day kernels compute (``evaluate_arrays``); ``uncertainty`` is computed
#: over all models of a batch at once by ``gagebench.uncertainty_suite``.
ENGINE_SUITES = _KERNEL_SUITES
STANDARD_COLUMNS = SUITES["standard"]
DSCORE_COLUMNS = SUITES["dscore"]
BENCHMARK_COLUMNS = SUITES["benchmark"]
MODES = ("standard", "hytest")


def mode_refusal(suites: Sequence[str], mode: str) -> str | None:
    """Why ``mode`` cannot compute ``suites``, or None when it can.

    ``hytest`` mode reproduces HyTEST's notebooks, so it computes only the suites HyTEST
    defines (:data:`HYTEST_SUITES`); any other is refused (the engine's ``check_names``
    and the run file's validation both ask here).
    """
    if mode != "hytest":
        return None
    others = [s for s in suites if s not in HYTEST_SUITES]
    if not others:
        return None
    return (
        f"mode 'hytest' reproduces HyTEST, which defines none of the suites {others} (it "
        f"defines {list(HYTEST_SUITES)}): use mode 'standard' to compute them, or drop "
        f"{', '.join(others)} from the suites"
    )


def slot(name: str) -> int:
    """The kernels' output slot of the metric ``name``: its position in ``METRICS``.

    The kernels bind one module-level constant per metric (``NSE = slot("NSE")``), an
    ``int`` numba compiles in as a constant, so the row layout follows the registry.
    """
    try:
        return SLOTS[name]
    except KeyError:
        raise KeyError(
            f"no metric {name!r} in gagebench.metrics.registry.METRICS: add its MetricInfo "
            "there before the kernels write its slot"
        ) from None
