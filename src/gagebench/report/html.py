"""The run report: one self-contained HTML file (plus each figure as a PNG) from a run.

:func:`write_report` reads a run folder at any fsspec URL (results table and manifest, see
:mod:`gagebench.results.reader`), draws the figures of :mod:`gagebench.report.plots`, and writes
``report.html`` with every figure embedded as a base64 PNG and inline CSS: opened offline
it makes no request at all (no CDN, fonts, scripts or map tiles). A figure that cannot be
drawn (a suite not computed, all values NaN) becomes a note in its place, never a crash.

This module prepares the data (sections, formatted table cells, figures); the markup is
the Jinja2 template ``templates/report.html.j2``, which escapes every value itself.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import posixpath
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cache, partial
from typing import Any

import jinja2
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from gagebench._version import __version__
from gagebench.errors import InputError
from gagebench.gages import (
    BUILTIN,
    CLASS_COLUMN,
    ECOREGION_COLUMN,
    METADATA_COLUMNS,
    load_gages,
    with_gages,
)
from gagebench.redact import redact, redact_text
from gagebench.report.against import BaselineOutcome
from gagebench.report.comparison import ComparisonResult, compare, scipy_available
from gagebench.report.plots import (
    CDF_METRICS,
    DPI,
    NothingToPlot,
    models_of,
    plot_by_class,
    plot_cdf,
    plot_comparison,
    plot_map,
    plot_scorecard,
)
from gagebench.results.layout import FIGURES_DIR, REPORT_FILE, run_path
from gagebench.results.reader import RunFolder, open_fs, read_run
from gagebench.storage.errors import translating
from gagebench.summary import beats_benchmark

log = logging.getLogger(__name__)

TOP_N = 5
MAX_COMPARISONS = 3
#: The summary column of the benchmark suite: the share of gages with KGE_skill > 0.
BEATS_BENCHMARK = "KGE_skill > 0 (beats its day-of-year benchmark)"
KGE_MEAN_FLOW = 1 - 2**0.5  # KGE of the mean-flow benchmark (Knoben et al. 2019)


@dataclass
class RenderedFigure:
    """One figure of the report: its name (PNG file stem), title, caption and PNG bytes."""

    name: str
    title: str
    caption: str
    png: bytes | None = None
    note: str | None = None
    size: tuple[int, int] = (0, 0)

    @property
    def data_uri(self) -> str:
        """The PNG as a ``data:`` URI, so the page embeds it instead of linking a file."""
        if self.png is None:
            raise ValueError(f"figure {self.name!r} was not drawn: {self.note}")
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")


@dataclass
class Table:
    """A table of the report: caption, column names and rows of cells as text."""

    caption: str
    columns: list[str]
    rows: list[list[str]]
    kind: str = "data"


@dataclass
class Section:
    """A titled part of the report: text, notes, figures and tables."""

    key: str
    title: str
    intro: str = ""
    figures: list[RenderedFigure] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- figures


def figure_png(fig: Figure) -> tuple[bytes, tuple[int, int]]:
    """A figure as PNG bytes at :data:`DPI` and its (width, height) in pixels."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, facecolor="white")
    width, height = fig.get_size_inches() * DPI
    return buffer.getvalue(), (round(width), round(height))


def _draw(name: str, title: str, caption: str, draw: Callable[[], Figure]) -> RenderedFigure:
    out = RenderedFigure(name, title, caption)
    try:
        fig = draw()
    except NothingToPlot as exc:
        out.note = f"{title} cannot be drawn: {exc}"
        return out
    out.png, out.size = figure_png(fig)
    return out


# --------------------------------------------------------------------------- tables


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "–"
    if isinstance(value, float | np.floating):
        return f"{value:.{digits}f}"
    return str(value)


def _cell(value: Any, spec: str | None) -> str:
    """One table cell as text: ``spec`` (a format spec) or :func:`_fmt`; "–" when missing."""
    if pd.api.types.is_scalar(value) and pd.isna(value):
        return "–"
    return format(value, spec) if spec is not None else _fmt(value)


def make_table(
    caption: str,
    frame: pd.DataFrame,
    *,
    index: bool = False,
    formats: Mapping[str, str] | None = None,
    kind: str = "data",
) -> Table:
    """``frame`` as a report table, numbers formatted (``formats``: column -> format spec;
    other floats to 3 decimals); ``index`` keeps the index as the first column(s)."""
    formats = formats or {}
    shown = frame.reset_index() if index else frame
    columns = [str(c) for c in shown.columns]
    cells = [
        [_cell(v, formats.get(name)) for v in shown.iloc[:, i].to_numpy(dtype=object)]
        for i, name in enumerate(columns)
    ]
    return Table(caption, columns, [list(row) for row in zip(*cells, strict=True)], kind)


def overview_table(results: pd.DataFrame) -> pd.DataFrame:
    """Per model: gages, ok gages, medians of NSE/KGE/logNSE and of the user metrics,
    share beating mean flow."""
    rows = []
    for model in models_of(results):
        part = results[results["model"] == model]
        row: dict[str, Any] = {"model": model, "gages": part["site_no"].nunique()}
        if "status" in part.columns:
            row["ok"] = int((part["status"] == "ok").sum())
        for metric in CDF_METRICS:
            if metric in part.columns:
                values = pd.to_numeric(part[metric], errors="coerce")
                row[f"median {metric}"] = float(values.median()) if values.notna().any() else np.nan
        for metric in user_columns(results):
            values = pd.to_numeric(part[metric], errors="coerce")
            row[f"median {metric}"] = float(values.median()) if values.notna().any() else np.nan
        if "KGE" in part.columns:
            kge = pd.to_numeric(part["KGE"], errors="coerce").dropna()
            row["KGE > −0.41 (beats mean flow)"] = (
                f"{(kge > KGE_MEAN_FLOW).mean():.0%}" if len(kge) else "–"
            )
        if beats := beats_benchmark(part):
            share, n = beats[model]
            row[BEATS_BENCHMARK] = f"{share:.0%}" if n else "–"
        rows.append(row)
    return pd.DataFrame(rows)


def user_columns(results: pd.DataFrame) -> list[str]:
    """The user metrics' columns of a results table: the float columns no built-in suite
    or row column has (``metrics:`` of the run file, ``evaluate(metrics=...)``), nor the
    gage metadata the report joins (``lat``, ``lon``, ``drain_sqkm``)."""
    from gagebench.columns import builtin_columns

    builtin = {*builtin_columns(), *METADATA_COLUMNS}
    return [
        str(c)
        for c in results.columns
        if c not in builtin and pd.api.types.is_float_dtype(results[c].dtype)
    ]


def status_table(results: pd.DataFrame) -> pd.DataFrame:
    """Count of gages by status (rows) and model (columns), with a total row."""
    if "status" not in results.columns:
        raise InputError("results have no 'status' column")
    status = results["status"].astype(object).where(results["status"].notna(), "unknown")
    table = pd.crosstab(status.astype(str), results["model"]).reindex(
        columns=models_of(results), fill_value=0
    )
    table.loc["total"] = table.sum()
    table.index.name = "status"
    table.columns.name = None
    return table.reset_index()


def best_worst(results: pd.DataFrame, metric: str = "KGE", n: int = TOP_N) -> pd.DataFrame:
    """The ``n`` best and ``n`` worst gages of each model by ``metric`` (finite values)."""
    if metric not in results.columns:
        raise NothingToPlot(f"results have no {metric!r} column to rank gages by")
    shown = [
        c
        for c in (
            "site_no",
            "KGE",
            "NSE",
            "logNSE",
            "pbias",
            "n_days",
            CLASS_COLUMN,
            ECOREGION_COLUMN,
        )
        if c in results.columns
    ]
    frames = []
    for model in models_of(results):
        part = results[results["model"] == model].copy()
        part[metric] = pd.to_numeric(part[metric], errors="coerce")
        part = part[np.isfinite(part[metric])].sort_values(metric, ascending=False)
        if part.empty:
            continue
        best = part.head(n).assign(rank="best")
        worst = part.tail(min(n, max(len(part) - n, 0))).iloc[::-1].assign(rank="worst")
        frames.append(pd.concat([best, worst])[["model", "rank", *shown]])
    if not frames:
        raise NothingToPlot(f"no gage has a finite {metric} to rank")
    return pd.concat(frames, ignore_index=True)


def _flatten(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, Mapping):
        items: list[tuple[str, Any]] = []
        for key, inner in value.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            items.extend(_flatten(inner, name))
        return items or [(prefix, "{}")]
    if isinstance(value, list | tuple):
        text = json.dumps(value, default=str)
        return [(prefix, text if len(text) <= 300 else text[:297] + "…")]
    return [(prefix, value)]


def _relevant(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """The manifest without what does not describe this run: the run URL (shown once, as
    "run URL") and the settings of cluster backends the run did not use."""
    kept = {k: v for k, v in manifest.items() if k != "run_url"}
    config = kept.get("config")
    if isinstance(config, Mapping) and isinstance(config.get("cluster"), Mapping):
        cluster = config["cluster"]
        backend = cluster.get("backend")
        options = cluster.get("options")
        if backend != "auto" and isinstance(options, Mapping):
            used = {backend: options[backend]} if backend in options else {}
            kept["config"] = {**config, "cluster": {**cluster, "options": used}}
    return kept


def provenance_table(manifest: Mapping[str, Any], url: str) -> pd.DataFrame:
    """The manifest as (key, value) rows, secrets masked again for safety; only the
    settings of the cluster backend the run used."""
    rows: list[tuple[str, Any]] = [("run URL", redact_text(url))]
    rows.extend(_flatten(redact(_relevant(manifest))))
    return pd.DataFrame(
        [(k, "–" if v is None else str(v)) for k, v in rows], columns=["key", "value"]
    )


# --------------------------------------------------------------------------- sections


def _one_comparison(comparison: ComparisonResult, gages: pd.DataFrame | None) -> Section:
    """Figure, paired summary and wins-by-ecoregion of one comparison."""
    a, b = comparison.model_a, comparison.model_b
    metric = comparison.metrics[0] if "KGE" not in comparison.metrics else "KGE"
    section = Section(
        f"compare-{_slug(a)}-{_slug(b)}",
        f"{a} vs {b}",
        f"Gage by gage: who has the higher {metric} where. Only gages where both models "
        "have a value are paired. The sign test is exact; the Wilcoxon signed-rank test "
        "appears when scipy is installed"
        + ("." if scipy_available() else " (it is not installed here: pip install scipy).")
        + " median_diff is the median of the per-gage differences A − B, which need not "
        "equal median_a − median_b (it can even have the other sign).",
    )
    section.figures.append(
        _draw(
            f"compare_{_slug(a)}_vs_{_slug(b)}",
            f"{a} vs {b}",
            f"Left: {metric} of {a} against {b} per gage. Right: difference in {metric} at "
            f"each gage (blue: {a} better; red: {b} better).",
            partial(plot_comparison, comparison, metric=metric, gages=gages),
        )
    )
    percent = {"share_a_better": ".0%", "share_b_better": ".0%"}
    # The caption names A and B, so the table leaves out its model_a/model_b columns:
    # two columns less keep the summary within a page (or a notebook's frame).
    summary = comparison.summary.drop(columns=["model_a", "model_b"], errors="ignore")
    section.tables.append(
        make_table(
            f"Paired summary, {a} (A) vs {b} (B)",
            summary,
            formats={"sign_test_p": ".2g", "wilcoxon_p": ".2g", **percent},
        )
    )
    if not comparison.summary["n_paired"].any():
        return section
    section.tables.append(
        make_table(
            f"Where each model wins on {metric}, by ecoregion",
            comparison.wins_by(gages, ECOREGION_COLUMN, metric),
            index=True,
        )
    )
    return section


def _comparison_section(
    results: pd.DataFrame, gages: pd.DataFrame | None, models: list[str]
) -> Section:
    section = Section("compare", "Model comparison", "Each model against the first one.")
    reference = models[0]
    for other in models[1 : 1 + MAX_COMPARISONS]:
        try:
            comparison = compare(results, models=[reference, other])
        except InputError as exc:
            section.notes.append(f"{reference} vs {other} cannot be compared: {exc}")
            continue
        part = _one_comparison(comparison, gages)
        section.figures.extend(part.figures)
        section.tables.extend(part.tables)
    if len(models) > 1 + MAX_COMPARISONS:
        section.notes.append(
            f"{len(models) - 1 - MAX_COMPARISONS} more model(s) not compared here; use "
            "`gagebench compare RESULTS_URL --models A B`."
        )
    return section


def _uncertainty_section(
    results: pd.DataFrame, gages: pd.DataFrame | None, models: list[str]
) -> Section:
    """The uncertainty suite: KGE intervals per gage, width vs record, paired wins."""
    from gagebench.report.plots_uncertainty import (
        beyond_counts,
        plot_beyond_map,
        plot_intervals,
        plot_width_vs_record,
    )

    section = Section(
        "uncertainty",
        "Sampling uncertainty of KGE",
        "Jackknife and bootstrap over water years (gumboot's bootjack(), Clark et al. 2021, "
        "doi:10.1029/2020WR029001): how much each gage's KGE could change with another "
        "sample of years. The interval is the 5-95 % range of the bootstrap samples.",
    )
    section.figures.append(
        _draw(
            "uncertainty_kge_intervals",
            "KGE and its 90 % interval at each gage",
            "Black: each gage's KGE, gages ranked by it; vertical lines: 90 % bootstrap "
            "interval. Dashed: the mean-flow benchmark (KGE −0.41).",
            lambda: plot_intervals(results, "KGE"),
        )
    )
    section.figures.append(
        _draw(
            "uncertainty_width_vs_record",
            "Interval width against record length",
            "Width p95 − p05 of KGE per gage against its number of valid water years.",
            lambda: plot_width_vs_record(results, "KGE"),
        )
    )
    reference = models[0]
    for other in models[1 : 1 + MAX_COMPARISONS]:
        try:
            comparison = compare(results, models=[reference, other])
            counts = beyond_counts(comparison)
        except InputError as exc:
            section.notes.append(f"{reference} vs {other}: no paired uncertainty ({exc})")
            continue
        section.tables.append(
            make_table(
                f"Gages where {reference} or {other} is better beyond the 90 % interval of "
                "the paired difference (both models resampled with the same years)",
                counts,
            )
        )
        section.figures.append(
            _draw(
                f"uncertainty_beyond_{_slug(reference)}_vs_{_slug(other)}",
                f"{reference} vs {other}: better beyond sampling noise",
                "Blue: the first model's KGE is higher in 95 % of the paired bootstrap "
                "samples or more; red: the other's; grey: the difference is within the "
                "90 % interval.",
                partial(plot_beyond_map, comparison, "KGE", gages=gages),
            )
        )
    return section


def _baselines_section(outcomes: list[BaselineOutcome], gages: pd.DataFrame | None) -> Section:
    """Against published benchmarks: per baseline and run model, the paired scatter and the
    difference map, the paired summary (with the gages of one side only and the verdict),
    and wins by ecoregion; a baseline that failed is one line saying why."""
    section = Section(
        "baselines",
        "Against published benchmarks",
        "Each model of the run (A) against the published scores of each baseline of the "
        "run file (B), gage by gage on canonical site ids; only gages both sides score are "
        "paired, the others are counted (gages_only_in_run, gages_only_in_baseline) and "
        "named below.",
    )
    for outcome in outcomes:
        if outcome.error is not None:
            section.notes.append(f"baseline {outcome.name}: failed: {outcome.error}")
            continue
        for comparison in outcome.comparisons:
            part = _one_comparison(comparison, gages)
            section.figures.extend(part.figures)
            section.tables.extend(part.tables)
            section.notes.extend(_one_side_notes(comparison))
    return section


def _one_side_notes(comparison: ComparisonResult, shown: int = 10) -> list[str]:
    """The gages only one side has (named, the first ``shown``), and the verdict used."""
    a, b = comparison.model_a, comparison.model_b
    notes = []
    sides = ((f"only in the run ({a})", comparison.only_a), (f"only in {b}", comparison.only_b))
    for side, sites in sides:
        if sites:
            more = f" and {len(sites) - shown} more" if len(sites) > shown else ""
            notes.append(
                f"{a} vs {b}: {len(sites)} gage(s) {side}, not compared: "
                f"{', '.join(sites[:shown])}{more}"
            )
    if "verdict" in comparison.summary.columns and len(comparison.summary):
        verdict = comparison.summary["verdict"].iloc[0]
        notes.append(f"{a} vs {b}: better or worse beyond sampling noise, judged by {verdict}")
    return notes


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "model"


def _summary_section(run: RunFolder, results: pd.DataFrame) -> Section:
    """Per-model overview, the run's notes and gages missing from the gage list."""
    summary = Section("summary", "Summary")
    summary.tables.append(make_table("Per model", overview_table(results)))
    summary.notes.extend(run.notes)
    unknown = int(results.drop_duplicates("site_no")["lat"].isna().sum())
    if unknown:
        summary.notes.append(
            f"{unknown} gage(s) are not in the gage list: they have no location, class or "
            "ecoregion and are left out of the map and grouped as 'unknown'."
        )
    return summary


def _figure_sections(results: pd.DataFrame, gages: pd.DataFrame | None) -> list[Section]:
    """Skill CDFs, the KGE map, KGE by class and ecoregion, and the D-score card."""
    skill = Section(
        "skill",
        "Skill across gages",
        "Cumulative distributions: the further right and lower a line, the better the model. "
        "KGE above −0.41 beats the mean-flow benchmark (Knoben et al. 2019).",
    )
    skill.figures.append(
        _draw(
            "cdf",
            "NSE, KGE and logNSE CDFs",
            "One line per model.",
            lambda: plot_cdf(results, CDF_METRICS),
        )
    )
    where = Section("map", "Where the models do well", "")
    where.figures.append(
        _draw(
            "map_kge",
            "Map of KGE",
            "Gage locations coloured by KGE, one panel per model.",
            lambda: plot_map(results, "KGE", gages=gages),
        )
    )
    if "KGE_skill" in results.columns:
        where.figures.append(
            _draw(
                "map_kge_skill",
                "Map of KGE skill against the day-of-year benchmark",
                "KGE_skill = (KGE − KGE_bench) / (1 − KGE_bench), the benchmark being each "
                "gage's mean observed flow of each calendar day (Knoben et al. 2020): above "
                "0 the model beats its benchmark. One panel per model.",
                lambda: plot_map(results, "KGE_skill", gages=gages),
            )
        )
    groups = Section("groups", "By gage class and ecoregion")
    groups.figures.append(
        _draw(
            "by_class_kge",
            "KGE by gage class",
            "Reference (least disturbed) and non-reference gages (GAGES-II class).",
            lambda: plot_by_class(results, "KGE", by=CLASS_COLUMN, gages=gages),
        )
    )
    groups.figures.append(
        _draw(
            "by_ecoregion_kge",
            "KGE by ecoregion",
            "Aggregated GAGES-II ecoregions.",
            lambda: plot_by_class(results, "KGE", by=ECOREGION_COLUMN, gages=gages),
        )
    )
    card = Section(
        "dscore",
        "D-score card",
        "Each gage's mean squared error of log flows split three ways (Hodson et al. 2021): "
        "into bias, distribution and sequence; by season; and by flow quartile. Cells give "
        "the median share (%) across gages; medians need not add up to 100.",
    )
    card.figures.append(
        _draw(
            "scorecard",
            "D-score card",
            "Median share of mse per component.",
            lambda: plot_scorecard(results),
        )
    )
    return [skill, where, groups, card]


def _breakdown_section(
    breakdowns: Mapping[str, pd.DataFrame],
    gages: pd.DataFrame | None,
    report_gages: Sequence[str] | None,
) -> Section:
    """KGE by season (maps), per water year (a few gages) and by month (a table), from the
    run's breakdown tables; only their ``ok``/``partial`` rows."""
    from gagebench.report.plots_breakdown import (
        QUANTILES,
        choose_gages,
        month_table,
        plot_by_season,
        plot_water_years,
    )

    section = Section(
        "breakdowns",
        "By season, water year and month",
        "The suites computed again on the days of each group (results_by_<group>.parquet). "
        "Only groups with status ok or partial are shown: a group with fewer paired days "
        "than min_paired_days is left out.",
    )
    if "season" in breakdowns:
        section.figures.append(
            _draw(
                "by_season_kge",
                "KGE by season",
                "Gages coloured by their KGE on the days of each season (columns: DJF "
                "winter, MAM spring, JJA summer, SON fall), one row per model; panel "
                "titles give the median across gages.",
                lambda: plot_by_season(breakdowns["season"], "KGE", gages=gages),
            )
        )
    if "water_year" in breakdowns:
        table = breakdowns["water_year"]
        try:
            chosen = choose_gages(table, "KGE", named=report_gages)
        except NothingToPlot as exc:
            section.notes.append(f"KGE per water year cannot be drawn: {exc}")
        else:
            if report_gages:
                why = "the gages named in the report options"
            else:
                shares = ", ".join(f"{q:.0%}" for q in QUANTILES)
                why = (
                    f"the gages at the {shares} percentiles of the gages' median KGE over "
                    "their water years (first model)"
                )
            shown = "; ".join(f"{site} ({reason})" for site, reason in chosen)
            section.figures.append(
                _draw(
                    "water_year_kge",
                    "KGE per water year",
                    f"KGE of each water year (October-September) at {why}: {shown}. "
                    "Dashed: the mean-flow benchmark (KGE −0.41); a gap is a year not scored.",
                    partial(plot_water_years, table, "KGE", sites=[s for s, _ in chosen]),
                )
            )
    if "month" in breakdowns:
        try:
            months = month_table(breakdowns["month"], "KGE")
        except NothingToPlot as exc:
            section.notes.append(f"KGE by month cannot be listed: {exc}")
        else:
            counts = {c: ".0f" for c in months.columns if c.endswith(": gages")}
            section.tables.append(
                make_table(
                    "KGE by month: median across gages (ok/partial months)",
                    months,
                    index=True,
                    formats=counts,
                )
            )
    return section


def _gages_section(results: pd.DataFrame) -> Section:
    """The best and worst gages of each model, and the count of gages by status."""
    section = Section("gages", "Best and worst gages, and status")
    try:
        ranked = best_worst(results)
    except NothingToPlot as exc:
        section.notes.append(f"Best and worst gages cannot be listed: {exc}")
    else:
        section.tables.append(make_table(f"Best and worst {TOP_N} gages per model by KGE", ranked))
    if "status" in results.columns:
        section.tables.append(make_table("Gages by status", status_table(results)))
    else:
        section.notes.append("The results carry no 'status' column.")
    return section


def build_sections(
    run: RunFolder, gages: pd.DataFrame | None = None
) -> tuple[list[Section], pd.DataFrame]:
    """Every section of the report for a run (figures rendered), and the joined results."""
    sections, results = _drawn_sections(run, gages)
    return [*sections, _provenance_section(run)], results


def _drawn_sections(
    run: RunFolder,
    gages: pd.DataFrame | None,
    report_gages: Sequence[str] | None = None,
    baselines: list[BaselineOutcome] | None = None,
) -> tuple[list[Section], pd.DataFrame]:
    """The sections drawn from the results: all but the provenance (the manifest's); the
    published baselines' section when ``baselines`` has any."""
    results = with_gages(run.results, gages)
    models = models_of(results)
    sections = [_summary_section(run, results), *_figure_sections(results, gages)]
    if run.breakdowns:
        sections.append(_breakdown_section(run.breakdowns, gages, report_gages))
    if "KGE_p05" in results.columns:
        sections.append(_uncertainty_section(results, gages, models))
    if len(models) > 1:
        sections.append(_comparison_section(results, gages, models))
    if baselines:
        sections.append(_baselines_section(baselines, gages))
    sections.append(_gages_section(results))
    return sections, results


def _provenance_section(run: RunFolder) -> Section:
    """The run's manifest, as a table (the report's last section)."""
    provenance = Section("provenance", "Provenance", "From the run's manifest.json.")
    provenance.tables.append(
        make_table("Manifest", provenance_table(run.manifest, run.url), kind="kv")
    )
    return provenance


# --------------------------------------------------------------------------- HTML

TEMPLATE = "report.html.j2"


@cache
def templates() -> jinja2.Environment:
    """The report's Jinja2 templates, from the package (``gagebench/report/templates``).

    ``autoescape=True``: every value a page shows (gage and model names, notes, run
    settings) is escaped by the engine, whatever its origin; ``StrictUndefined``: a name
    the template uses but is not given fails instead of rendering empty.
    """
    return jinja2.Environment(
        loader=jinja2.PackageLoader("gagebench.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_html(
    title: str, subtitle: list[str], sections: list[Section], figures_dir: str | None = FIGURES_DIR
) -> str:
    """The report page: inline CSS, base64 PNGs, no script and no external reference.

    ``figures_dir``: the folder beside the page that also holds each figure as a PNG
    (named in the captions); None when the page is the only copy (a comparison page).
    """
    template = templates().get_template(TEMPLATE)
    return template.render(
        title=title,
        subtitle=subtitle,
        sections=sections,
        figures_dir=figures_dir,
        version=__version__,
        written=f"{datetime.now(UTC):%Y-%m-%d %H:%M UTC}",
    )


def _subtitle(run: RunFolder, results: pd.DataFrame) -> list[str]:
    manifest = run.manifest
    lines = [f"Run {run.label} · {redact_text(run.url)}"]
    models = models_of(results)
    lines.append(
        f"{results['site_no'].nunique()} gages · {len(models)} model(s): {', '.join(models)}"
    )
    version = manifest.get("version") or manifest.get("gagebench_version")
    mode = manifest.get("mode")
    config = manifest.get("config")
    if mode is None and isinstance(config, Mapping):
        mode = config.get("mode")
    extra = [f"gagebench {version}" if version else "", f"mode {mode}" if mode else ""]
    if any(extra):
        lines.append(" · ".join(e for e in extra if e))
    return lines


def _target(
    fs_url: str, output: str | None, storage_options: Mapping[str, Any] | None
) -> tuple[Any, str, str]:
    """(filesystem, path, URL to return) of the report file."""
    target = output or run_path(fs_url, REPORT_FILE)
    if fs_url.rstrip("/").endswith((".parquet", ".csv")) and output is None:
        target = run_path(posixpath.dirname(fs_url.rstrip("/")), REPORT_FILE)
    fs, path = open_fs(target, storage_options)
    shown = fs.unstrip_protocol(path) if "://" in target else path
    return fs, path, shown


def _write_page(
    fs: Any, path: str, shown: str, page: str, sections: list[Section], figures: bool = True
) -> None:
    """Write the page and (``figures``) in ``figures/`` beside it each drawn figure as a PNG."""
    folder = posixpath.dirname(path)
    page = redact_text(page)  # the page's every byte: no secret, wherever it came from
    with translating(shown, "write", "the report", key="--output"):
        if folder:
            fs.makedirs(folder, exist_ok=True)
        if figures:
            figures_dir = run_path(folder, FIGURES_DIR)
            fs.makedirs(figures_dir, exist_ok=True)
            for section in sections:
                for figure in section.figures:
                    if figure.png is not None:
                        fs.pipe_file(run_path(figures_dir, f"{figure.name}.png"), figure.png)
        fs.pipe_file(path, page.encode("utf-8"))


@dataclass
class DrawnReport:
    """A run's report with its figures drawn (the slow part), not written yet:
    :meth:`write` adds the manifest and writes the page and its figures."""

    run: RunFolder
    sections: list[Section]
    results: pd.DataFrame
    run_url: str
    output: str | None
    storage_options: Mapping[str, Any] | None

    def write(self, manifest: Mapping[str, Any] | None = None) -> str:
        """Write ``report.html`` and ``figures/<name>.png``; return the report's URL.

        ``manifest``: the provenance to show (default: the one the run was read with).
        """
        run = self.run if manifest is None else replace(self.run, manifest=dict(manifest))
        sections = [*self.sections, _provenance_section(run)]
        title = f"gagebench report: {run.label}"
        page = render_html(title, _subtitle(run, self.results), sections)
        fs, path, shown = _target(self.run_url, self.output, self.storage_options)
        _write_page(fs, path, shown, page, sections)
        log.debug("report written to %s", shown)
        return shown


def _checked_gages(report_gages: Sequence[str] | None) -> list[str] | None:
    """``report_gages`` as a list of gage ids; InputError for anything else."""
    if report_gages is None:
        return None
    if isinstance(report_gages, str) or not all(
        isinstance(g, str) and g.strip() for g in report_gages
    ):
        raise InputError(
            f"report_gages must be a list of gage ids such as ['01013500'], got {report_gages!r}"
        )
    return list(report_gages) or None


def draw_report(
    run_url: str,
    *,
    storage_options: Mapping[str, Any] | None = None,
    output: str | None = None,
    gages: pd.DataFrame | str | None = None,
    manifest: Mapping[str, Any] | None = None,
    report_gages: Sequence[str] | None = None,
    baselines: list[BaselineOutcome] | None = None,
) -> DrawnReport:
    """Read a run and draw its report's figures; :meth:`DrawnReport.write` writes it.

    The parameters are :func:`write_report`'s. The pipeline draws the report before it
    builds the manifest (which records how long drawing took), then writes the page with
    that manifest: the page shows ``manifest.json`` as it is written. ``baselines``: the
    run's comparisons with published scores (:mod:`gagebench.report.against`), drawn in
    the section "Against published benchmarks".
    """
    run = read_run(run_url, storage_options, manifest)
    if isinstance(gages, str):
        gages = None if gages == BUILTIN else load_gages(gages, storage_options=storage_options)
    sections, results = _drawn_sections(run, gages, _checked_gages(report_gages), baselines)
    return DrawnReport(run, sections, results, run_url, output, storage_options)


def write_report(
    run_url: str,
    *,
    storage_options: Mapping[str, Any] | None = None,
    output: str | None = None,
    gages: pd.DataFrame | str | None = None,
    manifest: Mapping[str, Any] | None = None,
    report_gages: Sequence[str] | None = None,
) -> str:
    """Write the run's ``report.html`` and ``figures/<name>.png``; return the report's URL.

    Parameters
    ----------
    run_url
        A run folder (or a results ``.parquet``/``.csv``) at any fsspec URL.
    storage_options
        fsspec options for ``run_url`` and ``output`` (credentials, ``endpoint_url``).
    output
        Where the HTML goes (default ``<run_url>/report.html``); the figures go to
        ``figures/`` beside it.
    gages
        A gage list, as a DataFrame or the URL of a CSV / Parquet file (default: the
        built-in 5390-gage list; ``"builtin"`` says the same): locations, classes and
        ecoregions of the maps and groups.
    manifest
        Provenance to show instead of ``manifest.json`` (a run's report written before
        its manifest, which goes last).
    report_gages
        The gages whose KGE per water year is drawn (a run with a water-year breakdown,
        ``results_by_water_year.parquet``), as ``01013500`` or ``USGS-01013500``; None:
        the gages at the 10th, 50th and 90th percentiles of the gages' median KGE over
        their water years.

    Returns
    -------
    str
        The URL of the report written.
    """
    drawn = draw_report(
        run_url,
        storage_options=storage_options,
        output=output,
        gages=gages,
        manifest=manifest,
        report_gages=report_gages,
    )
    return drawn.write()


def write_comparison(
    comparison: ComparisonResult,
    output: str,
    *,
    storage_options: Mapping[str, Any] | None = None,
    gages: pd.DataFrame | None = None,
) -> str:
    """Save a comparison: per-gage table (``.csv``/``.parquet``) or a page (``.html``,
    self-contained: its figure embedded, no ``figures/`` folder written beside it, which
    for ``--output x.html`` would be the current directory); return where it went."""
    if not output.endswith((".csv", ".parquet", ".html", ".htm")):
        raise InputError(f"--output {output!r}: use a .csv, .parquet or .html file name")
    fs, path = open_fs(output, storage_options)
    shown = fs.unstrip_protocol(path) if "://" in output else path
    if output.endswith((".html", ".htm")):
        sections = [_one_comparison(comparison, gages)]
        title = f"gagebench comparison: {comparison.model_a} vs {comparison.model_b}"
        lines = [f"{len(comparison.per_gage)} gages; metrics {', '.join(comparison.metrics)}"]
        page = render_html(title, lines, sections, figures_dir=None)
        _write_page(fs, path, shown, page, sections, figures=False)
        return shown
    buffer = io.BytesIO()
    if output.endswith(".csv"):
        buffer.write(comparison.per_gage.to_csv(index=False).encode("utf-8"))
    else:
        comparison.per_gage.to_parquet(buffer, index=False)
    with translating(shown, "write", "the comparison", key="--output"):
        parent = posixpath.dirname(path)
        if parent:
            fs.makedirs(parent, exist_ok=True)
        fs.pipe_file(path, buffer.getvalue())
    return shown
