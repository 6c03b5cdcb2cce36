"""Comparing two models gage by gage: differences, wins, and a paired summary.

The two models come from one results table (a run with several models) or from two (two
runs). Only gages where both models have a finite value are paired. The summary gives
the median difference, the share of gages where each model is better, an exact two-sided
sign test (computed here, no scipy needed) and, when scipy is installed, a Wilcoxon
signed-rank test.
"""

from __future__ import annotations

import importlib.util
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from gagebench.baselines import Baseline, BaselineSource, read_baseline, read_uncertainty
from gagebench.errors import InputError
from gagebench.gages import with_gages
from gagebench.ids import canonical_id

log = logging.getLogger(__name__)

COMPARE_METRICS = ("NSE", "KGE")

#: What each column of the paired summary means (printed by ``gagebench compare``).
SUMMARY_COLUMNS: dict[str, str] = {
    "n_paired": "gages where both models have a finite value (only these are compared)",
    "median_a": "median of model A's values over the paired gages",
    "median_b": "median of model B's values over the paired gages",
    "median_diff": (
        "median of the per-gage differences A - B. Not median_a - median_b: the median of "
        "differences can even have the other sign (it says how much A beats B at a typical "
        "gage, not how the two distributions' centers differ)"
    ),
    "share_a_better": "share of paired gages where A is better (higher; lower for RMSE, "
    "MAE, mse and a user metric registered with higher_is_better=False)",
    "share_b_better": "share of paired gages where B is better (higher; lower for RMSE, "
    "MAE, mse and a user metric registered with higher_is_better=False)",
    "ties": "paired gages with equal values",
    "sign_test_p": "exact two-sided sign test of the wins (ties dropped)",
    "wilcoxon_p": "two-sided Wilcoxon signed-rank test of the differences (scipy)",
    "with_interval_90": (
        "uncertainty suite: gages with a 90 % bootstrap interval of the paired difference "
        "(the others have no shared draws, e.g. other valid water years: their rows' note "
        "says why); the two counts below are out of these"
    ),
    "a_better_beyond_90": (
        "uncertainty suite, A or B the run's first model: gages where the 90 % bootstrap "
        "interval of the paired difference A - B lies above 0 (A better beyond sampling "
        "noise; the years drawn are shared by both models)"
    ),
    "b_better_beyond_90": "likewise, gages where that interval lies below 0 (B better)",
}


#: The summary's columns of a comparison with a published baseline (B).
BASELINE_COLUMNS: dict[str, str] = {
    "gages_not_paired": (
        "gages both list where one value is empty or infinite (HyTEST's empty cells and "
        "-inf; not compared, named under the summary)"
    ),
    "gages_only_in_run": "gages of the run (A) the baseline has no row for (not compared)",
    "gages_only_in_baseline": "gages of the baseline (B) the run has no row for (not compared)",
    "with_interval_90": "gages where the verdict's 90 % interval(s) are known",
    "a_better_beyond_90": "gages where A is better beyond sampling noise (see verdict)",
    "b_better_beyond_90": "gages where B is better beyond sampling noise (see verdict)",
    "verdict": (
        "which 90 % intervals decide 'beyond sampling noise': the run's (the published "
        "score outside the run's p05..p95), the baseline's (the run's score outside the "
        "baseline's p05..p95), or both (the two intervals do not overlap)"
    ),
}


def scipy_available() -> bool:
    """Whether scipy (for the Wilcoxon test) can be imported."""
    return importlib.util.find_spec("scipy") is not None


def describe_columns(result: ComparisonResult | None = None) -> str:
    """The paired summary's columns explained, one per line, with a note when scipy is
    missing (``wilcoxon_p`` is then empty).

    Parameters
    ----------
    result
        A comparison whose model names head the text (``A = nwm, B = nhm``); None: the
        columns alone.

    Returns
    -------
    str
        The text ``gagebench compare`` prints under its summary.
    """
    lines = [f"  {name}: {text}" for name, text in SUMMARY_COLUMNS.items()]
    if result is not None and result.baseline_sources:
        lines = [f"  {n}: {t}" for n, t in SUMMARY_COLUMNS.items() if n not in BASELINE_COLUMNS]
        lines += [f"  {name}: {text}" for name, text in BASELINE_COLUMNS.items()]
    if not scipy_available():
        lines.append(
            "  note: wilcoxon_p is empty because scipy is not installed (pip install scipy); "
            "sign_test_p needs no scipy"
        )
    head = "columns:"
    if result is not None:
        head = f"columns (A = {result.model_a}, B = {result.model_b}):"
    return "\n".join([head, *lines])


@dataclass(frozen=True)
class ComparisonResult:
    """Model A against model B: per-gage table and paired summary (one row per metric).

    ``per_gage`` columns: ``site_no``, then for each metric ``<m>_a``, ``<m>_b``,
    ``<m>_diff`` (A − B; positive means A is better, as for every metric compared
    here) and ``<m>_winner`` (model name, "tie", or NaN when not paired). With the
    uncertainty suite (one run, A or B its first model), for NSE and KGE also
    ``<m>_diff_p05/p50/p95`` (bootstrap distribution of A − B over shared draws),
    ``<m>_share_a_better`` (share of samples where A is better; ties count for the model
    that is not the run's first) and ``<m>_beyond`` (A or B where the 90 % interval
    excludes 0, "within" where it does not).

    Against a published baseline (``baseline=``, see :func:`compare`) B is the baseline:
    ``per_gage`` also has ``found_in`` ("both", "run", "baseline"), the D-score
    components both tables have as ``<c>_a/_b/_diff`` (``mse_winner``: lower wins), and,
    where a 90 % interval is known, ``<m>_a_p05/_a_p95`` (the run's uncertainty suite),
    ``<m>_b_p05/_b_p95`` (the baseline's uncertainty table) and ``<m>_beyond``;
    ``only_a``/``only_b`` name the gages of one side only.
    """

    model_a: str
    model_b: str
    metrics: tuple[str, ...]
    per_gage: pd.DataFrame
    summary: pd.DataFrame
    #: Against a baseline: the gages only in the run (A) and only in the baseline (B).
    only_a: tuple[str, ...] = ()
    only_b: tuple[str, ...] = ()
    #: Against a baseline: the URLs it was read from (empty for model-to-model).
    baseline_sources: tuple[str, ...] = ()

    def not_paired(self, metric: str) -> tuple[str, ...]:
        """The gages of both sides (``found_in`` "both", where known) whose ``metric`` is
        empty or infinite on a side, so not compared (e.g. a published ``-inf`` KGE)."""
        a = self.per_gage[f"{metric}_a"].to_numpy(dtype=float)
        b = self.per_gage[f"{metric}_b"].to_numpy(dtype=float)
        mask = ~(np.isfinite(a) & np.isfinite(b))
        if "found_in" in self.per_gage.columns:
            mask &= (self.per_gage["found_in"] == "both").to_numpy()
        return tuple(self.per_gage["site_no"].astype(str)[mask])

    def wins_by(
        self, gages: pd.DataFrame | None = None, by: str = "ecoregion", metric: str | None = None
    ) -> pd.DataFrame:
        """Count of gages each model wins on ``metric`` (default KGE), by a gage-list column."""
        metric = metric or ("KGE" if "KGE" in self.metrics else self.metrics[0])
        if metric not in self.metrics:
            raise InputError(f"the comparison has no {metric!r}; it compared {self.metrics}")
        frame = with_gages(self.per_gage.assign(model=self.model_a), gages)
        if by not in frame.columns:
            raise InputError(f"cannot group wins by {by!r}: not a gage-list column")
        frame = frame[frame[f"{metric}_winner"].notna()]
        groups = frame[by].astype(object).where(frame[by].notna(), "unknown").astype(str)
        table = pd.crosstab(groups, frame[f"{metric}_winner"]).reindex(
            columns=[self.model_a, self.model_b, "tie"], fill_value=0
        )
        table.index.name = by
        table.columns.name = f"{metric} winner"
        return table


def sign_test(wins_a: int, wins_b: int) -> float:
    """Exact two-sided sign test p-value for ``wins_a`` vs ``wins_b`` (ties dropped)."""
    n = wins_a + wins_b
    if n == 0:
        return float("nan")
    k = min(wins_a, wins_b)
    tail = sum(math.comb(n, i) for i in range(k + 1))
    return min(1.0, 2 * tail / 2**n)


def wilcoxon_p(differences: np.ndarray) -> float:
    """Wilcoxon signed-rank p-value via scipy when it is installed; NaN otherwise."""
    nonzero = differences[np.isfinite(differences) & (differences != 0)]
    if not scipy_available() or nonzero.size == 0:
        return float("nan")
    from scipy.stats import wilcoxon

    return float(wilcoxon(nonzero).pvalue)


def _check_higher_is_better(metrics: Sequence[str]) -> dict[str, float]:
    """Each metric's sign of "better" (+1: larger is better, -1: smaller): built-in skill
    scores with optimum 1, built-in errors whose optimum is the bottom of their range
    (``RMSE``, ``MAE``, ``mse``), and user metrics registered with ``higher_is_better``."""
    from gagebench.metrics import METRIC_BY_NAME
    from gagebench.metrics.user import higher_is_better

    signs = {}
    for name in metrics:
        info = METRIC_BY_NAME.get(name)
        user = None if info is not None else higher_is_better(name)
        if user is not None:
            signs[name] = 1.0 if user else -1.0
            continue
        if info is not None and info.optimal == info.upper == 1.0:
            signs[name] = 1.0
        elif info is not None and info.optimal == info.lower:
            signs[name] = -1.0
        elif info is not None:
            raise InputError(
                f"cannot compare on {name!r}: its best value {info.optimal:g} lies inside its "
                "range, so neither a larger nor a smaller value is better; choose skill scores "
                "where larger is better (NSE, KGE, logNSE, pearson, spearman, KGE2012, ...) "
                "or errors where smaller is better (RMSE, MAE, mse)"
            )
        else:
            raise InputError(
                f"cannot compare on {name!r}: choose skill scores where larger is better "
                "(NSE, KGE, logNSE, pearson, spearman), or a user metric registered with "
                f"@gagebench.metric({name!r}, higher_is_better=True or False) in a module "
                "this process imports (a run's metrics are imported from its manifest)"
            )
    return signs


def _pick(
    results: pd.DataFrame, model: str | None, role: str, source: str = "the results"
) -> tuple[str, pd.DataFrame]:
    names = list(dict.fromkeys(results["model"].astype(str)))
    if not names:
        raise InputError(f"results for model {role} are empty")
    chosen = names[0] if model is None else str(model)
    if chosen not in names:
        raise InputError(_not_a_model(chosen, role, names, source))
    rows = results[results["model"].astype(str) == chosen]
    return chosen, rows.drop_duplicates("site_no").set_index("site_no")


def _not_a_model(chosen: str, role: str, names: list[str], source: str) -> str:
    """Model ``chosen`` is not in ``source``: which models it has, and the likely one."""
    import difflib

    text = (
        f"model {chosen!r} ({role}) is not in {source}: it has the model(s) "
        f"{', '.join(repr(n) for n in names)}"
    )
    renamed = [n for n in names if n == chosen.replace("-", "_")]
    if renamed:
        return (
            f"{text}. Did you mean {renamed[0]!r}? Runs made by earlier gagebench versions "
            "wrote '-' in model names as '_'"
        )
    close = difflib.get_close_matches(chosen, names, n=1)
    return f"{text}. Did you mean {close[0]!r}?" if close else text


def _source(results: Any) -> str:
    return repr(results) if isinstance(results, str) else "the results"


def _as_table(results: Any, storage_options: Mapping[str, Any] | None) -> pd.DataFrame:
    if isinstance(results, pd.DataFrame):
        table = results
    elif isinstance(results, str):
        from gagebench.metrics.user import import_quietly
        from gagebench.results.reader import read_run

        folder = read_run(results, storage_options)
        table = folder.results
        config = folder.manifest.get("config") if isinstance(folder.manifest, dict) else None
        import_quietly((config or {}).get("metrics") or ())  # how its user metrics rank
    else:
        raise InputError(f"results must be a DataFrame or a run URL, got {type(results).__name__}")
    missing = [c for c in ("site_no", "model") if c not in table.columns]
    if missing:
        raise InputError(f"results have no {missing} column(s)")
    table = table.copy()
    table["site_no"] = table["site_no"].astype(str)
    return table


def _column(rows: pd.DataFrame, name: str, sites: pd.Index) -> np.ndarray:
    """Column ``name`` of ``rows`` (indexed by site) as floats, in the order of ``sites``."""
    return pd.to_numeric(rows[name], errors="coerce").reindex(sites).to_numpy(dtype=float)


def _pair(
    per_gage: pd.DataFrame,
    sites: pd.Index,
    rows_a: pd.DataFrame,
    rows_b: pd.DataFrame,
    metric: str,
    name_a: str,
    name_b: str,
    lower_is_better: bool = False,
) -> dict[str, Any]:
    """Add ``<metric>_a/_b/_diff/_winner`` to ``per_gage``; the metric's summary row."""
    a = _column(rows_a, metric, sites)
    b = _column(rows_b, metric, sites)
    diff = np.where(np.isfinite(a) & np.isfinite(b), a - b, np.nan)
    better = -diff if lower_is_better else diff
    winner = np.full(len(sites), None, dtype=object)
    winner[better > 0] = name_a
    winner[better < 0] = name_b
    winner[better == 0] = "tie"
    per_gage[f"{metric}_a"] = a
    per_gage[f"{metric}_b"] = b
    per_gage[f"{metric}_diff"] = diff
    per_gage[f"{metric}_winner"] = winner
    paired = diff[np.isfinite(diff)]
    wins = better[np.isfinite(better)]
    wins_a, wins_b = int((wins > 0).sum()), int((wins < 0).sum())
    n = int(paired.size)
    return {
        "metric": metric,
        "model_a": name_a,
        "model_b": name_b,
        "n_paired": n,
        "median_a": float(np.median(a[np.isfinite(diff)])) if n else np.nan,
        "median_b": float(np.median(b[np.isfinite(diff)])) if n else np.nan,
        "median_diff": float(np.median(paired)) if n else np.nan,
        "share_a_better": wins_a / n if n else np.nan,
        "share_b_better": wins_b / n if n else np.nan,
        "ties": n - wins_a - wins_b,
        "sign_test_p": sign_test(wins_a, wins_b),
        "wilcoxon_p": wilcoxon_p(paired),
    }


def compare(
    results_a: pd.DataFrame | str,
    results_b: pd.DataFrame | str | None = None,
    *,
    models: Sequence[str | None] | None = None,
    metrics: Sequence[str] = COMPARE_METRICS,
    storage_options: Mapping[str, Any] | None = None,
    baseline: Baseline | Mapping[str, Any] | None = None,
    baseline_uncertainty: str | BaselineSource | None = None,
) -> ComparisonResult:
    """Compare model A with model B gage by gage.

    Against published scores: ``compare(run, baseline={"nwm": URL})`` (one baseline; for
    several use :func:`compare_baselines`) compares the run's model A (``models=[A]``,
    default its first) with the baseline as model B. URL is a CSV/Parquet table in
    HyTEST's layout or ``CATALOG_URL#ENTRY``, or a list of them (standard suite and
    D-score of one model), or a :class:`~gagebench.baselines.BaselineSource` with its own
    storage options; a read :class:`~gagebench.baselines.Baseline` is taken as it is.
    ``baseline_uncertainty``: the baseline's KGE-uncertainty table (gumboot layout).

    One table (``results_b`` None): ``models`` names A and B (default: its first two
    models). Two tables (two runs): ``models`` names A in the first and B in the second
    (default: each table's first model); when the names clash they get " (a)"/" (b)".
    Tables may be DataFrames or run URLs (read with :func:`gagebench.results.reader.read_run`).

    Parameters
    ----------
    results_a
        A results table (one row per gage and model), or the URL of a run folder.
    results_b
        A second table or run URL, whose model B is compared with ``results_a``'s model
        A (two runs); None: both models come from ``results_a``.
    models
        ``[A, B]``: the two model names (either may be None: the default above).
    metrics
        The metrics compared: skill scores where larger is better (``NSE``, ``KGE``,
        ``logNSE``, ``pearson``, ``spearman``, ...), errors where smaller is better
        (``RMSE``, ``MAE``, ``mse``) and ranked user metrics, else
        :class:`~gagebench.InputError`.
    storage_options
        fsspec options for reading run URLs (credentials, ``endpoint_url``); not used
        for the baseline (give a :class:`~gagebench.baselines.BaselineSource`).
    baseline
        ``{NAME: URL}`` or a :class:`~gagebench.baselines.Baseline`: compare with
        published scores (see above; ``results_b`` must then be None).
    baseline_uncertainty
        The baseline's KGE-uncertainty table (URL or ``CATALOG_URL#ENTRY``).

    Returns
    -------
    ComparisonResult
        ``per_gage`` (each gage's values, difference A − B and winner), ``summary`` (one
        row per metric: medians, shares of wins, sign test and Wilcoxon p-values;
        :func:`~gagebench.report.comparison.describe_columns` explains each column),
        ``model_a``, ``model_b`` and ``metrics``.
    """
    table_a = _as_table(results_a, storage_options)
    if baseline is not None:
        if results_b is not None:
            raise InputError("give either a second results table or a baseline, not both")
        if len(list(models or [])) > 1:
            raise InputError(
                "against a baseline, models names only the run's model (A), got "
                f"{list(models or [])}"
            )
        base = _one_baseline(baseline, baseline_uncertainty)
        model = next(iter(models), None) if models else None
        return _compare_baseline(table_a, _source(results_a), base, model, metrics)
    chosen: list[str | None] = list(models) if models is not None else [None, None]
    if len(chosen) != 2:
        raise InputError(f"models must name exactly two models (A B), got {chosen}")
    if results_b is None:
        names = list(dict.fromkeys(table_a["model"].astype(str)))
        if models is None:
            if len(names) < 2:
                raise InputError(
                    f"one results table with {len(names)} model(s) {names}: comparing needs "
                    "two models in the run, or a second results URL"
                )
            chosen = [names[0], names[1]]
        name_a, rows_a = _pick(table_a, chosen[0], "A", _source(results_a))
        name_b, rows_b = _pick(table_a, chosen[1], "B", _source(results_a))
        if name_a == name_b:
            raise InputError(f"models A and B are both {name_a!r}: name two different models")
    else:
        table_b = _as_table(results_b, storage_options)
        name_a, rows_a = _pick(table_a, chosen[0], "A", _source(results_a))
        name_b, rows_b = _pick(table_b, chosen[1], "B", _source(results_b))
        if name_a == name_b:
            name_a, name_b = f"{name_a} (a)", f"{name_b} (b)"
    signs = _check_higher_is_better(metrics)
    usable = [m for m in metrics if m in rows_a.columns and m in rows_b.columns]
    if not usable:
        from gagebench.metrics import METRIC_BY_NAME

        shared = [m for m in METRIC_BY_NAME if m in rows_a.columns and m in rows_b.columns]
        raise InputError(
            f"neither results table has all of {list(metrics)} for both models; "
            f"was the standard suite computed? Both have: {shared}: name those to compare "
            "(gagebench compare --metrics NAME ..., compare(metrics=[...]))"
        )
    if left := [m for m in metrics if m not in usable]:
        lacking = {
            name: [m for m in left if m not in rows.columns]
            for name, rows in (("A", rows_a), ("B", rows_b))
        }
        log.warning(
            "%s",
            f"compare leaves out {left}: "
            + "; ".join(
                f"model {role} ({name!r}) has no {missing}"
                for (role, missing), name in zip(lacking.items(), (name_a, name_b), strict=True)
                if missing
            ),
        )
    sites = rows_a.index.union(rows_b.index)
    per_gage = pd.DataFrame({"site_no": sites.astype(str)})
    summary_rows = []
    for metric in usable:
        summary_rows.append(
            _pair(per_gage, sites, rows_a, rows_b, metric, name_a, name_b, signs[metric] < 0)
        )
    if results_b is None:
        first = next(iter(dict.fromkeys(table_a["model"].astype(str))))
        _add_paired_uncertainty(per_gage, summary_rows, rows_a, rows_b, name_a, name_b, first)
    return ComparisonResult(
        model_a=name_a,
        model_b=name_b,
        metrics=tuple(usable),
        per_gage=per_gage,
        summary=pd.DataFrame(summary_rows),
    )


def _add_paired_uncertainty(
    per_gage: pd.DataFrame,
    summary_rows: list[dict[str, Any]],
    rows_a: pd.DataFrame,
    rows_b: pd.DataFrame,
    name_a: str,
    name_b: str,
    first: str,
) -> None:
    """The uncertainty suite's paired columns (stored vs the run's first model) as A − B."""
    if name_a == first:
        other, sign = rows_b, -1.0
    elif name_b == first:
        other, sign = rows_a, 1.0
    else:
        return
    sites = pd.Index(per_gage["site_no"])
    for row in summary_rows:
        metric = row["metric"]
        cols = [f"d{metric}_p05", f"d{metric}_p50", f"d{metric}_p95", f"{metric}_first_wins"]
        if not all(c in other.columns for c in cols):
            continue
        d = {
            c: pd.to_numeric(other[c], errors="coerce").reindex(sites).to_numpy(dtype=float)
            for c in cols
        }
        if sign > 0:
            lo, mid, hi = d[cols[0]], d[cols[1]], d[cols[2]]
            share_a = 1.0 - d[cols[3]]
        else:
            lo, mid, hi = -d[cols[2]], -d[cols[1]], -d[cols[0]]
            share_a = d[cols[3]]
        beyond = np.full(len(sites), None, dtype=object)
        known = np.isfinite(lo) & np.isfinite(hi)
        beyond[known] = "within"
        beyond[known & (lo > 0)] = name_a
        beyond[known & (hi < 0)] = name_b
        per_gage[f"{metric}_diff_p05"] = lo
        per_gage[f"{metric}_diff_p50"] = mid
        per_gage[f"{metric}_diff_p95"] = hi
        per_gage[f"{metric}_share_a_better"] = share_a
        per_gage[f"{metric}_beyond"] = beyond
        row["with_interval_90"] = int(known.sum())
        row["a_better_beyond_90"] = int((known & (lo > 0)).sum())
        row["b_better_beyond_90"] = int((known & (hi < 0)).sum())


# --- against published baselines ----------------------------------------------------------


def _one_baseline(
    baseline: Baseline | Mapping[str, Any], uncertainty: str | BaselineSource | None
) -> Baseline:
    """The one baseline of ``compare(..., baseline=...)``, read when given as URLs."""
    if isinstance(baseline, Baseline):
        if uncertainty is None:
            return baseline
        src = (
            uncertainty if isinstance(uncertainty, BaselineSource) else BaselineSource(uncertainty)
        )
        unc = read_uncertainty(src.url, src.storage_options, name=baseline.name)
        return replace(baseline, uncertainty=unc, sources=(*baseline.sources, src.url))
    if len(baseline) != 1:
        raise InputError(
            f"compare takes one baseline, got {len(baseline)} ({', '.join(map(str, baseline))}): "
            "use gagebench.report.comparison.compare_baselines for several"
        )
    ((name, sources),) = baseline.items()
    if isinstance(sources, Baseline):
        return _one_baseline(sources, uncertainty)
    return read_baseline(str(name), sources, uncertainty=uncertainty)


def compare_baselines(
    results: pd.DataFrame | str,
    baselines: Mapping[str, Any],
    *,
    model: str | None = None,
    metrics: Sequence[str] = COMPARE_METRICS,
    storage_options: Mapping[str, Any] | None = None,
    uncertainty: Mapping[str, str | BaselineSource] | None = None,
) -> dict[str, ComparisonResult]:
    """The run's ``model`` (A) against each published baseline (B).

    Parameters
    ----------
    results
        A results table, or the URL of a run folder or results file.
    baselines
        ``{NAME: URL | [URL, ...] | BaselineSource | Baseline}``: each baseline's tables
        (URLs as in :func:`compare`: HyTEST-layout CSV/Parquet or ``CATALOG_URL#ENTRY``).
    model
        The run's model compared (default: its first).
    metrics
        The metrics compared (skill scores where larger is better).
    storage_options
        fsspec options for the run's URL (not for the baselines: give
        :class:`~gagebench.baselines.BaselineSource` for theirs).
    uncertainty
        ``{NAME: URL}``: a baseline's KGE-uncertainty table (gumboot layout).

    Returns
    -------
    dict[str, ComparisonResult]
        One comparison per NAME, with ``only_a``/``only_b`` (gages of one side only) and
        the summary's ``verdict`` (which 90 % intervals decide "beyond sampling noise").
    """
    unknown = sorted(set(uncertainty or {}) - set(baselines))
    if unknown:
        raise InputError(
            f"uncertainty table(s) for {unknown} but no baseline of that name; the baselines "
            f"are {sorted(baselines)} (give --baseline NAME=URL with the same NAME)"
        )
    table = _as_table(results, storage_options)
    out = {}
    for name, spec in baselines.items():
        base = _one_baseline({name: spec}, (uncertainty or {}).get(name))
        out[str(name)] = _compare_baseline(table, _source(results), base, model, metrics)
    return out


def _interval(
    rows: pd.DataFrame | None, metric: str, sites: pd.Index
) -> tuple[np.ndarray, ...] | None:
    """``<metric>_p05`` and ``_p95`` of ``rows`` in the order of ``sites``; None without them."""
    if rows is None or f"{metric}_p05" not in rows.columns or f"{metric}_p95" not in rows.columns:
        return None
    lo, hi = _column(rows, f"{metric}_p05", sites), _column(rows, f"{metric}_p95", sites)
    if not np.isfinite(lo).any():
        return None  # the suite's columns are there but were not computed
    return lo, hi


#: The verdict of each combination of known intervals (run's, baseline's).
VERDICTS = {
    (True, False): "run's 90 % interval: the published score lies outside the run's p05..p95",
    (False, True): "baseline's 90 % interval: the run's score lies outside the baseline's p05..p95",
    (True, True): "both 90 % intervals: the run's and the baseline's p05..p95 do not overlap",
    (False, False): (
        "none: no 90 % interval (compute the uncertainty suite in the run, or give "
        "--baseline-uncertainty)"
    ),
}


def _verdicts(
    per_gage: pd.DataFrame,
    row: dict[str, Any],
    sites: pd.Index,
    rows_a: pd.DataFrame,
    unc_b: pd.DataFrame | None,
    name_a: str,
    name_b: str,
) -> None:
    """Better or worse beyond sampling noise, from the 90 % intervals that are known."""
    metric = row["metric"]
    a, b = per_gage[f"{metric}_a"].to_numpy(), per_gage[f"{metric}_b"].to_numpy()
    run_iv = _interval(rows_a, metric, sites)
    base_iv = _interval(unc_b, metric, sites)
    row["verdict"] = VERDICTS[(run_iv is not None, base_iv is not None)]
    if run_iv is None and base_iv is None:
        return
    # a point is its own interval: one rule covers the three cases
    a_lo, a_hi = run_iv if run_iv is not None else (a, a)
    b_lo, b_hi = base_iv if base_iv is not None else (b, b)
    if run_iv is not None:
        per_gage[f"{metric}_a_p05"], per_gage[f"{metric}_a_p95"] = a_lo, a_hi
    if base_iv is not None:
        per_gage[f"{metric}_b_p05"], per_gage[f"{metric}_b_p95"] = b_lo, b_hi
    known = np.isfinite(a_lo) & np.isfinite(a_hi) & np.isfinite(b_lo) & np.isfinite(b_hi)
    known &= np.isfinite(a) & np.isfinite(b)
    a_better = known & (a_lo > b_hi)
    b_better = known & (b_lo > a_hi)
    beyond = np.full(len(sites), None, dtype=object)
    beyond[known] = "within"
    beyond[a_better] = name_a
    beyond[b_better] = name_b
    per_gage[f"{metric}_beyond"] = beyond
    row["with_interval_90"] = int(known.sum())
    row["a_better_beyond_90"] = int(a_better.sum())
    row["b_better_beyond_90"] = int(b_better.sum())


def _compare_baseline(
    table: pd.DataFrame,
    source: str,
    base: Baseline,
    model: str | None,
    metrics: Sequence[str],
) -> ComparisonResult:
    """The run's model (A) against the published baseline (B), matched on canonical ids."""
    from gagebench.metrics import SUITES

    signs = _check_higher_is_better(metrics)
    name_a, rows_a = _pick(table, model, "A", source)
    rows_a = rows_a.copy()
    rows_a.index = pd.Index([canonical_id(s) for s in rows_a.index], name="site_no")
    rows_a = rows_a[rows_a.index.notna() & ~rows_a.index.duplicated()]
    name_b = base.name if base.name != name_a else f"{base.name} (published)"
    rows_b = base.table.set_index("site_no")
    usable = [m for m in metrics if m in rows_a.columns and m in rows_b.columns]
    dscore = [c for c in SUITES["dscore"] if c in rows_a.columns and c in rows_b.columns]
    if not usable and not dscore:
        raise InputError(
            f"the run's model {name_a!r} and the baseline {base.name!r} share none of "
            f"{list(metrics)} nor a D-score component: the baseline has the columns "
            f"{', '.join(map(str, rows_b.columns))}; compute that suite in the run "
            "(suites: [standard] or [dscore])"
        )
    sites = rows_a.index.union(rows_b.index)
    in_a, in_b = sites.isin(rows_a.index), sites.isin(rows_b.index)
    found = np.where(in_a & in_b, "both", np.where(in_a, "run", "baseline"))
    per_gage = pd.DataFrame({"site_no": sites.astype(str), "found_in": found})
    only_a = tuple(str(s) for s in sites[in_a & ~in_b])
    only_b = tuple(str(s) for s in sites[in_b & ~in_a])
    unc_b = None if base.uncertainty is None else base.uncertainty.set_index("site_no")
    summary_rows = []
    for metric in usable:
        row = _pair(per_gage, sites, rows_a, rows_b, metric, name_a, name_b, signs[metric] < 0)
        _verdicts(per_gage, row, sites, rows_a, unc_b, name_a, name_b)
        summary_rows.append(row)
    for comp in dscore:
        if comp == "mse":
            summary_rows.append(_pair(per_gage, sites, rows_a, rows_b, comp, name_a, name_b, True))
            continue
        a, b = _column(rows_a, comp, sites), _column(rows_b, comp, sites)
        per_gage[f"{comp}_a"], per_gage[f"{comp}_b"] = a, b
        per_gage[f"{comp}_diff"] = np.where(np.isfinite(a) & np.isfinite(b), a - b, np.nan)
    for row in summary_rows:
        a = per_gage[f"{row['metric']}_a"].to_numpy(dtype=float)
        b = per_gage[f"{row['metric']}_b"].to_numpy(dtype=float)
        row["gages_not_paired"] = int((in_a & in_b & ~(np.isfinite(a) & np.isfinite(b))).sum())
    summary = pd.DataFrame(summary_rows)
    summary["gages_only_in_run"] = len(only_a)
    summary["gages_only_in_baseline"] = len(only_b)
    return ComparisonResult(
        model_a=name_a,
        model_b=name_b,
        metrics=tuple(usable) + (("mse",) if "mse" in dscore else ()),
        per_gage=per_gage,
        summary=summary,
        only_a=only_a,
        only_b=only_b,
        baseline_sources=base.sources,
    )
