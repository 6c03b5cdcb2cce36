"""Comparing two models gage by gage: differences, wins, and a paired summary.

The two models come from one results table (a run with several models) or from two (two
runs). Only gages where both models have a finite value are paired. The summary gives
the median difference, the share of gages where each model is better, an exact two-sided
sign test (computed here, no scipy needed) and, when scipy is installed, a Wilcoxon
signed-rank test.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from gagebench.errors import InputError
from gagebench.gages import with_gages

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
    "share_a_better": "share of paired gages where A is better (higher; lower for a user "
    "metric registered with higher_is_better=False)",
    "share_b_better": "share of paired gages where B is better (higher; lower for a user "
    "metric registered with higher_is_better=False)",
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
    """

    model_a: str
    model_b: str
    metrics: tuple[str, ...]
    per_gage: pd.DataFrame
    summary: pd.DataFrame

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
    scores with optimum 1, and user metrics registered with ``higher_is_better``."""
    from gagebench.metrics import METRIC_BY_NAME
    from gagebench.metrics.user import higher_is_better

    signs = {}
    for name in metrics:
        info = METRIC_BY_NAME.get(name)
        user = None if info is not None else higher_is_better(name)
        if user is not None:
            signs[name] = 1.0 if user else -1.0
            continue
        if info is None or not (info.optimal == info.upper == 1.0):
            raise InputError(
                f"cannot compare on {name!r}: choose skill scores where larger is better "
                "(NSE, KGE, logNSE, pearson, spearman), or a user metric registered with "
                f"@gagebench.metric({name!r}, higher_is_better=True or False) in a module "
                "this process imports (a run's metrics are imported from its manifest)"
            )
        signs[name] = 1.0
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


def compare(
    results_a: pd.DataFrame | str,
    results_b: pd.DataFrame | str | None = None,
    *,
    models: Sequence[str | None] | None = None,
    metrics: Sequence[str] = COMPARE_METRICS,
    storage_options: Mapping[str, Any] | None = None,
) -> ComparisonResult:
    """Compare model A with model B gage by gage.

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
        The metrics compared; only skill scores where larger is better (``NSE``, ``KGE``,
        ``logNSE``, ``pearson``, ``spearman``), else :class:`~gagebench.InputError`.
    storage_options
        fsspec options for reading run URLs (credentials, ``endpoint_url``).

    Returns
    -------
    ComparisonResult
        ``per_gage`` (each gage's values, difference A − B and winner), ``summary`` (one
        row per metric: medians, shares of wins, sign test and Wilcoxon p-values;
        :func:`~gagebench.report.comparison.describe_columns` explains each column),
        ``model_a``, ``model_b`` and ``metrics``.
    """
    table_a = _as_table(results_a, storage_options)
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
        raise InputError(
            f"neither results table has all of {list(metrics)} for both models; "
            "was the standard suite computed?"
        )
    sites = rows_a.index.union(rows_b.index)
    per_gage = pd.DataFrame({"site_no": sites.astype(str)})
    summary_rows = []
    for metric in usable:
        a = pd.to_numeric(rows_a[metric], errors="coerce").reindex(sites).to_numpy(dtype=float)
        b = pd.to_numeric(rows_b[metric], errors="coerce").reindex(sites).to_numpy(dtype=float)
        diff = np.where(np.isfinite(a) & np.isfinite(b), a - b, np.nan)
        better = diff * signs[metric]  # > 0: A is better (larger, or smaller for errors)
        winner = np.full(len(sites), None, dtype=object)
        winner[better > 0] = name_a
        winner[better < 0] = name_b
        winner[better == 0] = "tie"
        per_gage[f"{metric}_a"] = a
        per_gage[f"{metric}_b"] = b
        per_gage[f"{metric}_diff"] = diff
        per_gage[f"{metric}_winner"] = winner
        paired = diff[np.isfinite(diff)]
        ahead = paired * signs[metric]
        wins_a, wins_b = int((ahead > 0).sum()), int((ahead < 0).sum())
        n = int(paired.size)
        summary_rows.append(
            {
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
