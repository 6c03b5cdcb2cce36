"""Figures of the breakdown tables: a metric by season, by water year and by month.

A breakdown table (``results_by_<group>.parquet``) has one row per ``(site_no, model,
<group>)``: ``season`` ("DJF", "MAM", "JJA", "SON"), ``month`` (1-12) or ``water_year``
(the year it ends in), then the metric columns, ``n_days``, ``status`` and ``note``, as
``results.parquet``. Only rows whose status is ``ok`` or ``partial`` reach a figure or a
table here: a group with too few paired days (or an error) is left out, never drawn as a
value.

- :func:`plot_by_season`: small multiples of maps, one column per season and one row per
  model. A hydrologist reads seasonal skill by place: snowmelt gages of the mountain West
  fail in spring and summer, rain-fed plains gages in the dry season; a distribution per
  season would hide where. Each panel's title gives the median across gages, so the
  panels also compare as distributions.
- :func:`plot_water_years`: a line per gage across water years, for a few gages: named
  ones, or (:func:`choose_gages`) those at the 10th, 50th and 90th percentiles of the
  gages' median over their water years, so the reader sees a poor, a typical and a good
  gage's year-to-year spread.
- :func:`month_table`: the median across gages per month and model (a table).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure, FigureBase
from matplotlib.ticker import MaxNLocator

from gagebench.errors import InputError
from gagebench.gages import checked_results, with_gages
from gagebench.ids import canonical_id
from gagebench.report.plots import (
    NothingToPlot,
    _color,
    _marker,
    _new_figure,
    _root,
    _skill_cmap,
    draw_outline,
    models_of,
)

SEASONS = ("DJF", "MAM", "JJA", "SON")
SEASON_NAMES = {"DJF": "winter", "MAM": "spring", "JJA": "summer", "SON": "fall"}
MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
#: The statuses whose values a figure shows.
USABLE = ("ok", "partial")
#: The percentiles of the gages' median metric whose gages :func:`choose_gages` picks.
QUANTILES = (0.1, 0.5, 0.9)
KGE_MEAN_FLOW = 1 - 2**0.5  # KGE of the mean-flow benchmark (Knoben et al. 2019)


def usable_rows(table: pd.DataFrame, group: str, metric: str) -> pd.DataFrame:
    """The rows of a breakdown table a figure may show: status ``ok`` or ``partial``
    (every row when the table has no status), ``metric`` as float (NaN when missing)."""
    frame = checked_results(table)
    for column in (group, metric):
        if column not in frame.columns:
            raise NothingToPlot(
                f"the breakdown table has no {column!r} column (columns: {list(frame.columns)})"
            )
    if "status" in frame.columns:
        frame = frame[frame["status"].astype(str).isin(USABLE)]
    frame = frame.copy()
    frame[metric] = pd.to_numeric(frame[metric], errors="coerce")
    return frame


def plot_by_season(
    table: pd.DataFrame,
    metric: str = "KGE",
    *,
    gages: pd.DataFrame | None = None,
    models: Sequence[str] | None = None,
    figure: FigureBase | None = None,
) -> Figure:
    """Maps of ``metric`` per gage, one column per season (DJF, MAM, JJA, SON) and one row
    per model (small multiples, one colour scale).

    Parameters
    ----------
    table
        A breakdown table by season (``results_by_season.parquet``); rows whose status is
        not ``ok``/``partial`` are left out.
    metric
        The metric column that colours the gages.
    gages
        A gage list with coordinates (as for :func:`gagebench.plot_map`); None: the
        built-in gages' metadata.
    models
        The models to draw, one row each; None: every model of ``table``.
    figure
        A Figure or SubFigure to draw into; None: a new figure.

    Returns
    -------
    matplotlib.figure.Figure
        The figure; ``NothingToPlot`` when no usable row has a finite value.
    """
    frame = with_gages(usable_rows(table, "season", metric), gages)
    frame = frame[frame["season"].astype(str).isin(SEASONS)]
    if not np.isfinite(frame[metric]).any():
        raise NothingToPlot(f"no gage has a finite {metric} in any season (status ok/partial)")
    names = list(models) if models is not None else models_of(frame)
    fig = _new_figure(3.6 * len(SEASONS), 2.55 * len(names) + 0.7, figure)
    axes = fig.subplots(len(names), len(SEASONS), squeeze=False)
    cmap, norm = _skill_cmap()
    located = frame[np.isfinite(frame["lat"]) & np.isfinite(frame["lon"])]
    mappable = None
    for row, model in enumerate(names):
        for col, season in enumerate(SEASONS):
            ax = axes[row, col]
            part = located[(located["model"] == model) & (located["season"] == season)]
            draw_outline(ax, located["lon"], located["lat"])
            values = part[metric].to_numpy(dtype=float)
            finite = np.isfinite(values)
            ax.scatter(part["lon"][~finite], part["lat"][~finite], marker="x", s=6,
                       c="#888888", linewidths=0.6, zorder=3)  # fmt: skip
            order = np.random.default_rng(0).permutation(int(finite.sum()))
            size, edge = _marker(int(finite.sum()))
            mappable = ax.scatter(
                part["lon"].to_numpy()[finite][order],
                part["lat"].to_numpy()[finite][order],
                c=values[finite][order],
                cmap=cmap,
                norm=norm,
                s=size * 0.6,
                linewidths=edge,
                edgecolors="#333333",
            )
            median = f"{np.median(values[finite]):.2f}" if finite.any() else "–"
            ax.set_title(
                f"{season} ({SEASON_NAMES[season]}) · {model}: median {median}, "
                f"n={int(finite.sum())}",
                fontsize=8,
            )
            ax.set_xlabel("")
            ax.set_ylabel("")
    if mappable is not None:
        bar = fig.colorbar(mappable, ax=list(axes.ravel()), orientation="horizontal",
                           shrink=0.45, extend="min", aspect=45)  # fmt: skip
        bar.set_label(f"{metric} in the season (grey x: not computed)", fontsize=8)
        bar.ax.tick_params(labelsize=7)
    return _root(fig)


def gage_medians(table: pd.DataFrame, metric: str = "KGE", model: str | None = None) -> pd.Series:
    """Each gage's median ``metric`` over its usable water years (one model: the first
    when None), for gages with at least half as many finite years as the longest record."""
    frame = usable_rows(table, "water_year", metric)
    frame = frame[np.isfinite(frame[metric])]
    if frame.empty:
        raise NothingToPlot(f"no water year has a finite {metric} (status ok/partial)")
    model = model if model is not None else models_of(frame)[0]
    frame = frame[frame["model"] == model]
    counts = frame.groupby("site_no")[metric].count()
    long_enough = counts.index[counts >= max(1, counts.max() // 2)]
    medians = frame[frame["site_no"].isin(long_enough)].groupby("site_no")[metric].median()
    return medians.rename(f"median {metric}")


def choose_gages(
    table: pd.DataFrame,
    metric: str = "KGE",
    *,
    named: Sequence[str] | None = None,
    quantiles: Sequence[float] = QUANTILES,
) -> list[tuple[str, str]]:
    """The gages :func:`plot_water_years` draws, as ``(site_no, why)``.

    ``named``: these gages, in this order (ids as in gage lists: ``01013500`` or
    ``USGS-01013500``); an id the table does not hold is an :class:`InputError`. Else
    the gages whose median over their water years (first model) is at each of
    ``quantiles`` across gages (ranked by median, then site number: deterministic).
    """
    frame = checked_results(table)
    if named:
        held = {canonical_id(s): s for s in frame["site_no"].unique()}
        chosen: list[tuple[str, str]] = []
        missing: list[str] = []
        for name in named:
            site = held.get(canonical_id(name))
            if site is None:
                missing.append(str(name))
            elif site not in [c for c, _ in chosen]:
                chosen.append((site, "named"))
        if missing:
            sample = ", ".join(sorted(held.values())[:5])
            raise InputError(
                f"report gages {missing} are not in the water-year breakdown "
                f"({len(held)} gages there, e.g. {sample}): name gages of this run"
            )
        return chosen
    medians = gage_medians(table, metric)
    ranked = sorted(medians.items(), key=lambda item: (item[1], item[0]))
    out: list[tuple[str, str]] = []
    for q in quantiles:
        site, value = ranked[round(q * (len(ranked) - 1))]
        if str(site) not in [s for s, _ in out]:
            out.append((str(site), f"{q:.0%} percentile, median {metric} {value:.2f}"))
    return out


def plot_water_years(
    table: pd.DataFrame,
    metric: str = "KGE",
    *,
    sites: Sequence[str] | None = None,
    lower: float = -1.0,
    figure: FigureBase | None = None,
) -> Figure:
    """``metric`` per water year for a few gages, a line each, one panel per model.

    Parameters
    ----------
    table
        A breakdown table by water year (``results_by_water_year.parquet``); rows whose
        status is not ``ok``/``partial`` are left out (a gap in the line).
    metric
        The metric column drawn.
    sites
        The gages to draw; None: :func:`choose_gages` (10th, 50th, 90th percentile).
    lower
        Values below it are drawn at it.
    figure
        A Figure or SubFigure to draw into; None: a new figure.

    Returns
    -------
    matplotlib.figure.Figure
        The figure; ``NothingToPlot`` when no usable row has a finite value.
    """
    chosen = [s for s, _ in choose_gages(table, metric, named=sites)]
    frame = usable_rows(table, "water_year", metric)
    frame["water_year"] = pd.to_numeric(frame["water_year"], errors="coerce")
    if not np.isfinite(frame[metric]).any():
        raise NothingToPlot(f"no water year has a finite {metric} (status ok/partial)")
    names = models_of(frame)
    years = frame["water_year"].dropna()
    span = np.arange(int(years.min()), int(years.max()) + 1)
    fig = _new_figure(max(6.0, 5.2 * len(names)), 3.8, figure)
    axes = fig.subplots(1, len(names), squeeze=False, sharey=True)[0]
    for ax, model in zip(axes, names, strict=True):
        part = frame[frame["model"] == model]
        for site in chosen:
            series = part[part["site_no"] == site].groupby("water_year")[metric].first()
            values = series.reindex(span).to_numpy(dtype=float)  # a missing year: a gap
            ax.plot(span, np.clip(values, lower, 1.0), marker="o", markersize=3,
                    linewidth=1.2, color=_color(chosen, site),
                    label=f"{site} (n={int(np.isfinite(values).sum())})")  # fmt: skip
        ax.axhline(KGE_MEAN_FLOW, color="grey", linewidth=0.8, linestyle="--")
        ax.set_title(f"{model}: {metric} per water year", fontsize=9)
        ax.set_xlabel("water year (October-September, named by its ending year)", fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # years, never 2001.5
        ax.set_ylim(lower - 0.05, 1.02)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7, frameon=False, loc="lower left")
    axes[0].set_ylabel(f"{metric} (clipped at {lower:g})", fontsize=8)
    return _root(fig)


def month_table(table: pd.DataFrame, metric: str = "KGE") -> pd.DataFrame:
    """Median ``metric`` across gages and the count of gages, per month and model."""
    frame = usable_rows(table, "month", metric)
    frame = frame[np.isfinite(frame[metric])]
    if frame.empty:
        raise NothingToPlot(f"no month has a finite {metric} (status ok/partial)")
    frame["month"] = pd.to_numeric(frame["month"], errors="coerce")
    columns: dict[str, Any] = {}
    for model in models_of(frame):
        grouped = frame[frame["model"] == model].groupby("month")[metric]
        columns[f"{model}: median {metric}"] = grouped.median()
        columns[f"{model}: gages"] = grouped.count()
    out = pd.DataFrame(columns).reindex(range(1, 13))
    out.index = pd.Index([MONTH_NAMES[m - 1] for m in out.index], name="month")
    return out
