"""Figures from a results table: CDFs, maps, box plots by class, the D-score scorecard.

Every function takes a results DataFrame (``site_no, model, <metrics>, ..., status``, as
written to ``results.parquet`` or returned by :func:`gagebench.evaluate`) and returns a
:class:`matplotlib.figure.Figure`, built without pyplot so nothing global changes and
figures render with Agg anywhere (a notebook, a worker pod, CI). Maps are plain lon/lat
scatter plots over a small country outline shipped with the package: no tiles, no
downloads. A figure that has nothing to show raises :class:`NothingToPlot`, which says why.
Each function also takes ``figure=`` (a Figure or a SubFigure) to draw into, so panels can
be composed (``fig.subfigures``); it then returns the root Figure.

New figures are :class:`NotebookFigure`: a plain Figure that also has ``_repr_png_``, so
it displays inline in Jupyter as the last expression of a cell even though pyplot (and
with it IPython's inline backend) was never imported. Nothing is closed before return.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pandas as pd
from matplotlib.colors import BoundaryNorm, Colormap, ListedColormap
from matplotlib.figure import Figure, FigureBase
from matplotlib.lines import Line2D

from gagebench.errors import InputError
from gagebench.gages import (
    CLASS_COLUMN,
    ECOREGION_COLUMN,
    checked_results,
    with_gages,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from numpy.typing import ArrayLike

    from gagebench.report.comparison import ComparisonResult

DPI = 100
CDF_METRICS = ("NSE", "KGE", "logNSE")
# D-score card rows: (group, column in results, label); shares are of each gage's mse.
SCORECARD_ROWS: tuple[tuple[str, str, str], ...] = (
    ("components", "e_bias", "bias"),
    ("components", "e_dist", "distribution"),
    ("components", "e_seq", "sequence"),
    ("season", "winter", "winter (DJF)"),
    ("season", "spring", "spring (MAM)"),
    ("season", "summer", "summer (JJA)"),
    ("season", "fall", "fall (SON)"),
    ("flow quartile", "low", "low"),
    ("flow quartile", "below_avg", "below average"),
    ("flow quartile", "above_avg", "above average"),
    ("flow quartile", "high", "high"),
)
MODEL_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf")
# Skill bins for maps (KGE/NSE): anything below 0 is "worse than the mean flow" territory.
SKILL_BOUNDS = (-1.0, 0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


class Extent(NamedTuple):
    """A map's bounds in degrees."""

    west: float
    east: float
    south: float
    north: float


class NothingToPlot(InputError):
    """The results hold no values a figure could show (the message says which)."""


@lru_cache(maxsize=1)
def _outline() -> dict[str, Any]:
    ref = resources.files("gagebench") / "data" / "conus_outline.json"
    outline: dict[str, Any] = json.loads(ref.read_text())
    return outline


# --------------------------------------------------------------------------- helpers


def models_of(results: pd.DataFrame) -> list[str]:
    """Model names in order of first appearance."""
    return list(dict.fromkeys(results["model"].astype(str)))


def _values(frame: pd.DataFrame, metric: str) -> np.ndarray:
    if metric not in frame.columns:
        return np.array([], dtype=float)
    values = pd.to_numeric(frame[metric], errors="coerce").to_numpy(dtype=float)
    return values[np.isfinite(values)]


def _require(frame: pd.DataFrame, metric: str) -> None:
    if metric not in frame.columns:
        raise NothingToPlot(
            f"results have no {metric!r} column (was its suite computed? columns: "
            f"{[c for c in frame.columns if c not in ('site_no', 'model')][:12]}…)"
        )
    if _values(frame, metric).size == 0:
        raise NothingToPlot(f"no gage has a finite {metric} value (all NaN or empty results)")


def _color(models: Sequence[str], model: str) -> str:
    return MODEL_COLORS[list(models).index(model) % len(MODEL_COLORS)]


class NotebookFigure(Figure):
    """A :class:`~matplotlib.figure.Figure` that shows itself as a PNG in notebooks."""

    def _repr_png_(self) -> bytes:
        import io

        buffer = io.BytesIO()
        self.savefig(buffer, format="png", dpi=DPI)
        return buffer.getvalue()


def _new_figure(width: float, height: float, figure: FigureBase | None = None) -> FigureBase:
    """A new constrained-layout figure, or ``figure`` (a Figure or SubFigure) to draw into."""
    if figure is not None:
        return figure
    return NotebookFigure(figsize=(width, height), dpi=DPI, layout="constrained")


def _root(fig: FigureBase) -> Figure:
    root = fig.figure
    if not isinstance(root, Figure):  # pragma: no cover - matplotlib always sets it
        raise TypeError("figure has no root Figure")
    return root


def _grid(count: int, columns: int = 2) -> tuple[int, int]:
    cols = min(columns, max(count, 1))
    return -(-count // cols), cols


def _skill_cmap() -> tuple[Colormap, BoundaryNorm]:
    colors = ["#a50026", "#f46d43", "#fdae61", "#abd9e9", "#74add1", "#313695"]
    cmap = ListedColormap(colors).with_extremes(under="#67001f")
    return cmap, BoundaryNorm(SKILL_BOUNDS, cmap.N)


def _marker(count: int) -> tuple[float, float]:
    """Marker area and edge width for a map of ``count`` gages (smaller when crowded)."""
    return float(np.clip(6000.0 / max(count, 1), 5.0, 36.0)), (0.2 if count < 1500 else 0.0)


MAP_ASPECT = 1.25  # ~1/cos(37°): keeps CONUS shapes close to an equal-area look
MAP_MIN_SPAN = 3.0  # degrees of latitude shown at least (one gage, or a few close ones)
MAP_PAD = 0.08  # share of the gages' span added on each side
MAP_SHAPES = (1.2, 2.0)  # the panel's width / height on the page, at least and at most


def map_extent(lon: ArrayLike | None = None, lat: ArrayLike | None = None) -> Extent:
    """(west, east, south, north) of a map of gages at ``lon``/``lat`` (degrees).

    The CONUS extent when no gage is located or the gages spread over most of it; else the
    gages' bounding box, padded, grown to at least :data:`MAP_MIN_SPAN` degrees and to a
    panel 1.2 to 2 times as wide as high: gages in one region fill the panel,
    with the country outline around them as context.
    """
    full = Extent(*(float(v) for v in _outline()["extent"]))
    x = np.asarray(lon if lon is not None else [], dtype=float).ravel()
    y = np.asarray(lat if lat is not None else [], dtype=float).ravel()
    keep = np.isfinite(x) & np.isfinite(y)
    if not keep.any():
        return full
    x, y = x[keep], y[keep]
    # sizes on the page: a degree of latitude is drawn MAP_ASPECT times a degree of longitude
    width = float(np.ptp(x)) * (1 + 2 * MAP_PAD)
    height = max(float(np.ptp(y)) * (1 + 2 * MAP_PAD), MAP_MIN_SPAN) * MAP_ASPECT
    narrowest, widest = MAP_SHAPES
    width = max(width, height * narrowest)
    height = max(height, width / widest)
    inside = full.west <= x.min() and x.max() <= full.east
    inside = inside and full.south <= y.min() and y.max() <= full.north
    if inside and (
        width >= 0.8 * (full.east - full.west)
        or height / MAP_ASPECT >= 0.8 * (full.north - full.south)
    ):
        return full
    cx, cy = (x.min() + x.max()) / 2, (y.min() + y.max()) / 2
    half_x, half_y = width / 2, height / MAP_ASPECT / 2
    return Extent(float(cx - half_x), float(cx + half_x), float(cy - half_y), float(cy + half_y))


def draw_outline(ax: Axes, lon: ArrayLike | None = None, lat: ArrayLike | None = None) -> None:
    """Country outlines (USA, Canada, Mexico; Natural Earth 1:110m) around the gages at
    ``lon``/``lat`` (:func:`map_extent`; CONUS without gages)."""
    outline = _outline()
    for code, rings in outline["countries"].items():
        face = "#f4f4f0" if code == "USA" else "#fbfbfb"
        for ring in rings:
            xy = np.asarray(ring, dtype=float)
            ax.fill(xy[:, 0], xy[:, 1], facecolor=face, edgecolor="#9a9a9a", linewidth=0.6)
    west, east, south, north = map_extent(lon, lat)
    ax.set_xlim(west, east)
    ax.set_ylim(south, north)
    ax.set_aspect(MAP_ASPECT)
    ax.set_facecolor("#e8f1f8")
    ax.tick_params(labelsize=7)
    ax.set_xlabel("longitude", fontsize=7)
    ax.set_ylabel("latitude", fontsize=7)


# --------------------------------------------------------------------------- figures


def plot_cdf(
    results: pd.DataFrame,
    metric: str | Sequence[str] = "KGE",
    *,
    lower: float = -1.0,
    figure: FigureBase | None = None,
) -> Figure:
    """Cumulative distribution across gages of one metric (or several, one panel each).

    One line per model; values below ``lower`` pile up at the left edge (NSE/KGE have no
    lower bound), and the legend gives each model's median and gage count.

    Parameters
    ----------
    results
        A results table, one row per (gage, model): ``site_no, model, <metrics>, ...,
        status``, as :func:`gagebench.evaluate` returns, ``RunResult.results`` holds or
        ``results.parquet`` stores.
    metric
        A metric column (``"KGE"``) or several (one panel each).
    lower
        Values below it are drawn at it (the axis starts there).
    figure
        A :class:`~matplotlib.figure.Figure` or ``SubFigure`` to draw into (to compose
        panels with ``fig.subfigures``); None: a new figure.

    Returns
    -------
    matplotlib.figure.Figure
        The figure (the root figure when drawn into ``figure``); a new one shows itself
        inline in Jupyter. ``NothingToPlot`` (an :class:`~gagebench.InputError`) is raised
        when the results hold nothing to draw, naming why.
    """
    frame = checked_results(results)
    metrics = [metric] if isinstance(metric, str) else list(metric)
    drawable = [m for m in metrics if _values(frame, m).size]
    if not drawable:
        _require(frame, metrics[0])
    models = models_of(frame)
    fig = _new_figure(4.6 * len(metrics), 3.8, figure)
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    for ax, name in zip(axes, metrics, strict=True):
        ax.set_title(f"{name}: cumulative distribution across gages", fontsize=10)
        ax.set_xlabel(f"{name} (values below {lower:g} shown at {lower:g})", fontsize=8)
        ax.set_ylabel("share of gages ≤ x", fontsize=8)
        ax.set_xlim(lower, 1.0)
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=8)
        if name not in drawable:
            ax.text(0.5, 0.5, f"no finite {name} values", ha="center", transform=ax.transAxes)
            continue
        for model in models:
            values = np.sort(_values(frame[frame["model"] == model], name))
            if values.size == 0:
                continue
            # From (lower, 0) to (1, 1), so that even a single gage draws a visible step.
            shown = np.r_[lower, np.clip(values, lower, 1.0), 1.0]
            share = np.r_[0.0, np.arange(1, values.size + 1) / values.size, 1.0]
            label = f"{model} (median {np.median(values):.2f}, n={values.size})"
            ax.step(shown, share, where="post", color=_color(models, model), label=label)
        ax.axvline(0.0, color="grey", linewidth=0.8, linestyle=":")
        ax.legend(loc="upper left", fontsize=7, frameon=False)
    return _root(fig)


def plot_map(
    results: pd.DataFrame,
    metric: str = "KGE",
    *,
    gages: pd.DataFrame | None = None,
    models: Sequence[str] | None = None,
    figure: FigureBase | None = None,
) -> Figure:
    """Gage locations coloured by ``metric``, one panel per model, offline (no tiles).

    Gages whose metric is NaN are drawn as small grey crosses; gages missing from the
    gage list (no coordinates) are counted in the panel title. The map shows the gages'
    extent, with the country outline around them as context.

    Parameters
    ----------
    results
        A results table, one row per (gage, model): ``site_no, model, <metrics>, ...,
        status``, as :func:`gagebench.evaluate` returns, ``RunResult.results`` holds or
        ``results.parquet`` stores.
    metric
        The metric column that colours the gages.
    gages
        A gage list with ``site_no`` and coordinates (``lat``/``lon``, or HyTEST's
        ``dec_lat_va``/``dec_long_va``; class and ecoregion optional), e.g. from
        :func:`gagebench.gages.load_gages`; None: the built-in gages' metadata. A built-in
        gage gets the shipped metadata the list leaves out.
    models
        The models to map, one panel each, in this order; None: every model of
        ``results``.
    figure
        A :class:`~matplotlib.figure.Figure` or ``SubFigure`` to draw into (to compose
        panels with ``fig.subfigures``); None: a new figure.

    Returns
    -------
    matplotlib.figure.Figure
        The figure (the root figure when drawn into ``figure``); a new one shows itself
        inline in Jupyter. ``NothingToPlot`` (an :class:`~gagebench.InputError`) is raised
        when the results hold nothing to draw, naming why.
    """
    frame = with_gages(results, gages)
    _require(frame, metric)
    names = list(models) if models is not None else models_of(frame)
    rows, cols = _grid(len(names))
    fig = _new_figure(6.2 * cols, 3.9 * rows + 0.6, figure)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    cmap, norm = _skill_cmap()
    mappable = None
    shown = frame[frame["model"].isin(names)]  # one extent for every panel: all their gages
    for ax, model in zip(axes, names, strict=False):
        part = frame[frame["model"] == model]
        located = part[np.isfinite(part["lat"]) & np.isfinite(part["lon"])]
        draw_outline(ax, shown["lon"], shown["lat"])
        values = pd.to_numeric(located[metric], errors="coerce").to_numpy(dtype=float)
        finite = np.isfinite(values)
        ax.scatter(
            located["lon"][~finite],
            located["lat"][~finite],
            marker="x",
            s=6,
            c="#888888",
            linewidths=0.6,
            zorder=3,  # above the dots: a gage without a value is not hidden by a neighbour
        )
        # A fixed shuffle: drawing sorted would let the best or the worst gages hide the rest.
        order = np.random.default_rng(0).permutation(int(finite.sum()))
        size, edge = _marker(int(finite.sum()))
        mappable = ax.scatter(
            located["lon"].to_numpy()[finite][order],
            located["lat"].to_numpy()[finite][order],
            c=values[finite][order],
            cmap=cmap,
            norm=norm,
            s=size,
            linewidths=edge,
            edgecolors="#333333",
        )
        unplaced = len(part) - len(located)
        extra = f", {unplaced} without coordinates" if unplaced else ""
        median = f"{np.median(values[finite]):.2f}" if finite.any() else "–"
        ax.set_title(
            f"{model}: {metric} at {int(finite.sum())} gages (median {median}{extra})",
            fontsize=9,
        )
    for ax in axes[len(names) :]:
        ax.set_visible(False)
    if mappable is not None:
        bar = fig.colorbar(
            mappable,
            ax=list(axes[: len(names)]),
            orientation="horizontal",
            shrink=0.5,
            extend="min",
            aspect=40,
        )
        bar.set_label(f"{metric} (grey x: not computed)", fontsize=8)
        bar.ax.tick_params(labelsize=7)
    return _root(fig)


def plot_by_class(
    results: pd.DataFrame,
    metric: str = "KGE",
    *,
    by: str = CLASS_COLUMN,
    gages: pd.DataFrame | None = None,
    lower: float = -1.0,
    figure: FigureBase | None = None,
) -> Figure:
    """Box plots of ``metric`` by gage class (``gage_class``) or ``ecoregion``, per model.

    Gages without a value of ``by`` are grouped as "unknown". Boxes span 25-75 %,
    whiskers 5-95 %.

    Parameters
    ----------
    results
        A results table, one row per (gage, model): ``site_no, model, <metrics>, ...,
        status``, as :func:`gagebench.evaluate` returns, ``RunResult.results`` holds or
        ``results.parquet`` stores.
    metric
        The metric column to box.
    by
        The column that groups the gages: ``"gage_class"`` (Ref / Non-ref),
        ``"ecoregion"``, or any other column of the results or of the gage list.
    gages
        A gage list with ``site_no`` and coordinates (``lat``/``lon``, or HyTEST's
        ``dec_lat_va``/``dec_long_va``; class and ecoregion optional), e.g. from
        :func:`gagebench.gages.load_gages`; None: the built-in gages' metadata. A built-in
        gage gets the shipped metadata the list leaves out.
    lower
        Values below it are drawn at it.
    figure
        A :class:`~matplotlib.figure.Figure` or ``SubFigure`` to draw into (to compose
        panels with ``fig.subfigures``); None: a new figure.

    Returns
    -------
    matplotlib.figure.Figure
        The figure (the root figure when drawn into ``figure``); a new one shows itself
        inline in Jupyter. ``NothingToPlot`` (an :class:`~gagebench.InputError`) is raised
        when the results hold nothing to draw, naming why.
    """
    frame = with_gages(results, gages)
    _require(frame, metric)
    if by not in frame.columns:
        raise InputError(f"cannot group by {by!r}: no such column in results or gage list")
    frame[by] = frame[by].astype(object).where(frame[by].notna(), "unknown").astype(str)
    frame[metric] = pd.to_numeric(frame[metric], errors="coerce")
    frame = frame[np.isfinite(frame[metric])]
    groups = sorted(frame[by].unique(), key=lambda g: (g == "unknown", g))
    names = models_of(frame)
    width = max(5.0, min(14.0, 1.1 + len(groups) * (0.45 + 0.35 * len(names))))
    fig = _new_figure(width, 4.2, figure)
    ax = fig.subplots()
    step = 0.8 / len(names)
    for index, model in enumerate(names):
        part = frame[frame["model"] == model]
        data = [np.clip(part.loc[part[by] == g, metric].to_numpy(), lower, 1.0) for g in groups]
        keep = [i for i, d in enumerate(data) if d.size]
        if not keep:
            continue
        positions = np.arange(len(groups))[keep] - 0.4 + step * (index + 0.5)
        box = ax.boxplot(
            [data[i] for i in keep],
            positions=positions,
            widths=step * 0.85,
            whis=(5, 95),
            showfliers=False,
            patch_artist=True,
            manage_ticks=False,
        )
        for patch in box["boxes"]:
            patch.set(facecolor=_color(names, model), alpha=0.55, edgecolor="#333333")
        for median in box["medians"]:
            median.set(color="black")
    counts = frame.drop_duplicates("site_no")[by].value_counts()
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels(
        [f"{g}\n(n={counts.get(g, 0)})" for g in groups],
        fontsize=7,
        rotation=30 if len(groups) > 4 else 0,
    )
    ax.set_xlim(-0.6, len(groups) - 0.4)
    ax.set_ylim(lower - 0.05, 1.02)
    ax.axhline(0.0, color="grey", linewidth=0.8, linestyle=":")
    ax.set_ylabel(f"{metric} (clipped at {lower:g})", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(axis="y", alpha=0.3)
    label = {CLASS_COLUMN: "gage class", ECOREGION_COLUMN: "ecoregion"}.get(by, by)
    ax.set_title(f"{metric} by {label} (boxes: 25-75 %, whiskers: 5-95 %)", fontsize=10)
    handles = [Line2D([], [], color=_color(names, m), lw=6, alpha=0.55) for m in names]
    # Beside the axes, not in them: inside, it would hide the whiskers of some group.
    ax.legend(
        handles,
        names,
        fontsize=7,
        frameon=False,
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        borderaxespad=0.0,
    )
    return _root(fig)


def scorecard_table(results: pd.DataFrame) -> pd.DataFrame:
    """Median share (%) of each gage's D-score mse in each component, one column per model.

    Rows follow :data:`SCORECARD_ROWS` (bias/distribution/sequence, the four seasons, the
    four flow quartiles). Medians of shares need not add up to 100 within a group.
    """
    frame = checked_results(results)
    _require(frame, "mse")
    rows = [(group, label) for group, _, label in SCORECARD_ROWS]
    table = pd.DataFrame(
        np.nan,
        index=pd.MultiIndex.from_tuples(rows, names=["group", "component"]),
        columns=models_of(frame),
    )
    for model in table.columns:
        part = frame[frame["model"] == model]
        mse = pd.to_numeric(part["mse"], errors="coerce").to_numpy(dtype=float)
        usable = np.isfinite(mse) & (mse > 0)
        for group, column, label in SCORECARD_ROWS:
            if column not in part.columns or not usable.any():
                continue
            values = pd.to_numeric(part[column], errors="coerce").to_numpy(dtype=float)
            share = 100.0 * values[usable] / mse[usable]
            share = share[np.isfinite(share)]
            if share.size:
                table.loc[(group, label), model] = float(np.median(share))
    table.attrs["median_mse"] = {
        m: float(np.nanmedian(_values(frame[frame["model"] == m], "mse")))
        if _values(frame[frame["model"] == m], "mse").size
        else np.nan
        for m in table.columns
    }
    return table


def plot_scorecard(results: pd.DataFrame, *, figure: FigureBase | None = None) -> Figure:
    """The D-score card: median share of mse by component, season and flow quartile.

    In the spirit of HyTEST's ILAMB-style cards (Hodson et al. 2021, Collier et al. 2018):
    rows are the decompositions, columns the models, each cell a percentage of mse.

    Parameters
    ----------
    results
        A results table, one row per (gage, model): ``site_no, model, mse, e_bias, ...,
        status``, as :func:`gagebench.evaluate` returns, ``RunResult.results`` holds or
        ``results.parquet`` stores; it needs the ``dscore`` suite's columns.
    figure
        A :class:`~matplotlib.figure.Figure` or ``SubFigure`` to draw into (to compose
        panels with ``fig.subfigures``); None: a new figure.

    Returns
    -------
    matplotlib.figure.Figure
        The figure (the root figure when drawn into ``figure``); a new one shows itself
        inline in Jupyter. ``NothingToPlot`` (an :class:`~gagebench.InputError`) is raised
        when the results hold nothing to draw, naming why.
    """
    table = scorecard_table(results)
    if table.isna().all().all():
        raise NothingToPlot("no gage has a positive finite D-score mse to decompose")
    values = table.to_numpy(dtype=float)
    n_rows, n_cols = values.shape
    fig = _new_figure(3.2 + 1.25 * n_cols, 5.6, figure)
    ax = fig.subplots()
    image = ax.imshow(
        np.ma.masked_invalid(values), cmap="RdYlBu_r", vmin=0, vmax=100, aspect="auto", alpha=0.85
    )
    for i in range(n_rows):
        for j in range(n_cols):
            text = "n/a" if not np.isfinite(values[i, j]) else f"{values[i, j]:.0f}"
            ax.text(j, i, text, ha="center", va="center", fontsize=8)
    medians = table.attrs.get("median_mse", {})
    ax.set_xticks(range(n_cols))
    ax.set_xticklabels(
        [f"{m}\nmedian mse {medians.get(m, np.nan):.3g}" for m in table.columns], fontsize=8
    )
    ax.xaxis.tick_top()
    ax.set_yticks(range(n_rows))
    ax.set_yticklabels(
        [f"{label}" for _, label in table.index], fontsize=8
    )  # group shown by separators
    ax.tick_params(length=0)
    ax.set_xticks(np.arange(n_cols + 1) - 0.5, minor=True)
    ax.set_yticks(np.arange(n_rows + 1) - 0.5, minor=True)
    ax.grid(which="minor", color="white", linewidth=1.0)
    groups = [g for g, _ in table.index]
    for i in range(1, n_rows):
        if groups[i] != groups[i - 1]:
            ax.axhline(i - 0.5, color="black", linewidth=1.6)
    for name in dict.fromkeys(groups):
        rows = [i for i, g in enumerate(groups) if g == name]
        ax.text(
            -0.9 - 0.02 * n_cols,
            (rows[0] + rows[-1]) / 2,
            name,
            rotation=90,
            ha="center",
            va="center",
            fontsize=8,
            fontweight="bold",
            transform=ax.transData,
        )
    bar = fig.colorbar(image, ax=ax, orientation="horizontal", shrink=0.7, aspect=30)
    bar.set_label("median share of each gage's mse (%)", fontsize=8)
    bar.ax.tick_params(labelsize=7)
    ax.set_title("D-score card: where the error comes from", fontsize=10, pad=28)
    return _root(fig)


def plot_comparison(
    results: pd.DataFrame | ComparisonResult,
    model_a: str | None = None,
    model_b: str | None = None,
    *,
    metric: str = "KGE",
    gages: pd.DataFrame | None = None,
    figure: FigureBase | None = None,
) -> Figure:
    """Two models gage by gage: ``metric`` of A against B, and a map of who wins where.

    The left panel plots each gage's ``metric`` of A against B (above the diagonal: A
    is better); the right one maps the difference A - B.

    Parameters
    ----------
    results
        A results table with both models (as for :func:`plot_cdf`), or the
        ``ComparisonResult`` that :func:`gagebench.compare` returned.
    model_a, model_b
        The two models of a results table; None: its first two models. Ignored for a
        ``ComparisonResult``, which names its own.
    metric
        The metric compared.
    gages
        A gage list with ``site_no`` and coordinates (``lat``/``lon``, or HyTEST's
        ``dec_lat_va``/``dec_long_va``; class and ecoregion optional), e.g. from
        :func:`gagebench.gages.load_gages`; None: the built-in gages' metadata. A built-in
        gage gets the shipped metadata the list leaves out.
    figure
        A :class:`~matplotlib.figure.Figure` or ``SubFigure`` to draw into (to compose
        panels with ``fig.subfigures``); None: a new figure.

    Returns
    -------
    matplotlib.figure.Figure
        The figure (the root figure when drawn into ``figure``); a new one shows itself
        inline in Jupyter. ``NothingToPlot`` (an :class:`~gagebench.InputError`) is raised
        when the results hold nothing to draw, naming why.
    """
    from gagebench.report.comparison import ComparisonResult, compare

    if isinstance(results, ComparisonResult):
        comparison = results
    else:
        chosen = None if model_a is None and model_b is None else [model_a, model_b]
        comparison = compare(results, models=chosen, metrics=(metric,))
    if metric not in comparison.metrics:
        raise InputError(f"the comparison has no {metric!r}; it compared {comparison.metrics}")
    per_gage = comparison.per_gage
    a, b = comparison.model_a, comparison.model_b
    col_a, col_b, col_d = f"{metric}_a", f"{metric}_b", f"{metric}_diff"
    paired = per_gage[np.isfinite(per_gage[col_d])]
    if paired.empty:
        raise NothingToPlot(f"no gage has a finite {metric} for both {a!r} and {b!r}")
    fig = _new_figure(13.0, 4.6, figure)
    left, right = fig.subplots(1, 2, width_ratios=[1.0, 1.7])
    lo = -1.0
    xa = np.clip(paired[col_a].to_numpy(dtype=float), lo, 1.0)
    xb = np.clip(paired[col_b].to_numpy(dtype=float), lo, 1.0)
    diff = paired[col_d].to_numpy(dtype=float)
    left.scatter(xb, xa, s=7, c=np.where(diff > 0, "#2166ac", "#b2182b"), alpha=0.7, linewidths=0)
    left.plot([lo, 1], [lo, 1], color="black", linewidth=0.8)
    left.set_xlim(lo, 1.0)
    left.set_ylim(lo, 1.0)
    left.set_aspect("equal")
    left.set_xlabel(f"{metric} of {b}", fontsize=8)
    left.set_ylabel(f"{metric} of {a}", fontsize=8)
    left.tick_params(labelsize=7)
    left.grid(alpha=0.3)
    share_a = float((diff > 0).mean())
    left.set_title(f"{a} better at {share_a:.0%} of {len(diff)} gages (above the line)", fontsize=9)
    meta = with_gages(paired.assign(model=a), gages)
    located = np.isfinite(meta["lat"]) & np.isfinite(meta["lon"])
    draw_outline(right, meta["lon"][located], meta["lat"][located])
    limit = 0.5
    bounds = [-limit, -0.2, -0.05, 0.05, 0.2, limit]
    cmap = ListedColormap(["#b2182b", "#ef8a62", "#e0e0e0", "#67a9cf", "#2166ac"]).with_extremes(
        under="#67001f", over="#053061"
    )
    order = np.argsort(np.abs(diff[located.to_numpy()]))  # largest differences on top
    size, edge = _marker(int(located.sum()))
    points = right.scatter(
        meta["lon"][located].to_numpy()[order],
        meta["lat"][located].to_numpy()[order],
        c=diff[located.to_numpy()][order],
        cmap=cmap,
        norm=BoundaryNorm(bounds, cmap.N),
        s=size,
        linewidths=edge,
        edgecolors="#333333",
    )
    right.set_title(
        f"{metric}({a}) − {metric}({b}): blue where {a} wins, red where {b} wins", fontsize=9
    )
    bar = fig.colorbar(
        points, ax=right, orientation="horizontal", shrink=0.6, extend="both", aspect=40
    )
    bar.set_label(f"difference in {metric}", fontsize=8)
    bar.ax.tick_params(labelsize=7)
    return _root(fig)
