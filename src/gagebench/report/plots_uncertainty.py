"""Figures of the uncertainty suite: intervals per gage, width vs record, paired wins.

Same conventions as :mod:`gagebench.report.plots`: a results DataFrame in, a matplotlib Figure
out (no pyplot), :class:`~gagebench.report.plots.NothingToPlot` when there is nothing to show.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure, FigureBase
from matplotlib.lines import Line2D

from gagebench.gages import checked_results, with_gages
from gagebench.report.plots import (
    NothingToPlot,
    _color,
    _grid,
    _marker,
    _new_figure,
    _require,
    _root,
    draw_outline,
    models_of,
)

if TYPE_CHECKING:
    from gagebench.report.comparison import ComparisonResult


def plot_intervals(
    results: pd.DataFrame,
    metric: str = "KGE",
    *,
    models: Sequence[str] | None = None,
    figure: FigureBase | None = None,
) -> Figure:
    """Each gage's ``metric`` score with its 90 % bootstrap interval (p05-p95), gages
    ranked by score, one panel per model.

    Parameters
    ----------
    results
        A results table of a run or of :func:`gagebench.evaluate` with the
        ``uncertainty`` suite (its ``<metric>_score``, ``_p05``, ``_p95`` and
        ``n_years_valid`` columns).
    metric
        ``"KGE"`` or ``"NSE"`` (the metrics the suite bootstraps).
    models
        The models to draw, one panel each; None: every model of ``results``.
    figure
        A :class:`~matplotlib.figure.Figure` or ``SubFigure`` to draw into; None: a new
        figure.

    Returns
    -------
    matplotlib.figure.Figure
        The figure (the root figure when drawn into ``figure``). ``NothingToPlot`` (an
        :class:`~gagebench.InputError`) is raised when there is nothing to draw.
    """
    frame = checked_results(results)
    for col in (f"{metric}_score", f"{metric}_p05", f"{metric}_p95"):
        _require(frame, col)
    names = list(models) if models is not None else models_of(frame)
    rows, cols = _grid(len(names))
    fig = _new_figure(6.2 * cols, 3.6 * rows + 0.3, figure)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, model in zip(axes, names, strict=False):
        part = frame[frame["model"] == model]
        score = pd.to_numeric(part[f"{metric}_score"], errors="coerce").to_numpy(dtype=float)
        lo = pd.to_numeric(part[f"{metric}_p05"], errors="coerce").to_numpy(dtype=float)
        hi = pd.to_numeric(part[f"{metric}_p95"], errors="coerce").to_numpy(dtype=float)
        ok = np.isfinite(score) & np.isfinite(lo) & np.isfinite(hi)
        order = np.argsort(score[ok])
        s, a, b = score[ok][order], lo[ok][order], hi[ok][order]
        x = np.arange(s.size)
        floor = -1.0
        segments = np.stack(
            [
                np.column_stack([x, np.clip(a, floor, 1)]),
                np.column_stack([x, np.clip(b, floor, 1)]),
            ],
            axis=1,
        )
        ax.add_collection(
            LineCollection(list(segments), colors=_color(names, model), alpha=0.35, linewidths=0.6)
        )
        ax.plot(x, np.clip(s, floor, 1), color="black", linewidth=0.9)
        ax.set_xlim(-0.5, max(s.size, 1) - 0.5)
        ax.set_ylim(floor, 1.0)
        ax.axhline(1 - 2**0.5, color="grey", linewidth=0.6, linestyle="--")
        width = np.median(b - a) if s.size else np.nan
        ax.set_title(
            f"{model}: {metric} and 90 % interval at {s.size} gages (median width {width:.3f})",
            fontsize=9,
        )
        ax.set_xlabel(f"gages ranked by {metric}", fontsize=8)
        ax.set_ylabel(metric, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in axes[len(names) :]:
        ax.set_visible(False)
    return _root(fig)


def plot_width_vs_record(
    results: pd.DataFrame,
    metric: str = "KGE",
    *,
    figure: FigureBase | None = None,
) -> Figure:
    """Width of the 90 % interval (p95 − p05) of ``metric`` against valid water years.

    Parameters
    ----------
    results
        A results table of a run or of :func:`gagebench.evaluate` with the
        ``uncertainty`` suite (its ``<metric>_score``, ``_p05``, ``_p95`` and
        ``n_years_valid`` columns).
    metric
        ``"KGE"`` or ``"NSE"``.
    figure
        A :class:`~matplotlib.figure.Figure` or ``SubFigure`` to draw into; None: a new
        figure.

    Returns
    -------
    matplotlib.figure.Figure
        The figure (the root figure when drawn into ``figure``). ``NothingToPlot`` (an
        :class:`~gagebench.InputError`) is raised when there is nothing to draw.
    """
    frame = checked_results(results)
    for col in (f"{metric}_p05", f"{metric}_p95", "n_years_valid"):
        _require(frame, col)
    names = models_of(frame)
    fig = _new_figure(6.4, 4.2, figure)
    ax = fig.subplots()
    handles = []
    for model in names:
        part = frame[frame["model"] == model]
        width = (
            pd.to_numeric(part[f"{metric}_p95"], errors="coerce")
            - pd.to_numeric(part[f"{metric}_p05"], errors="coerce")
        ).to_numpy(dtype=float)
        years = pd.to_numeric(part["n_years_valid"], errors="coerce").to_numpy(dtype=float)
        ok = np.isfinite(width) & np.isfinite(years)
        if not ok.any():
            continue
        jitter = np.random.default_rng(0).uniform(-0.25, 0.25, int(ok.sum()))
        ax.scatter(years[ok] + jitter, width[ok], s=6, alpha=0.5, color=_color(names, model))
        med = pd.Series(width[ok]).groupby(years[ok]).median()
        ax.plot(med.index, med.to_numpy(), color=_color(names, model), linewidth=1.5)
        handles.append(Line2D([], [], color=_color(names, model), label=f"{model} (median)"))
    if not handles:
        raise NothingToPlot(f"no gage has a finite {metric} interval")
    ax.set_yscale("log")
    ax.set_xlabel("valid water years", fontsize=8)
    ax.set_ylabel(f"width of the 90 % interval of {metric}", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3, which="both")
    ax.legend(handles=handles, fontsize=7)
    ax.set_title(f"Sampling uncertainty of {metric} against record length", fontsize=9)
    return _root(fig)


def beyond_counts(comparison: ComparisonResult) -> pd.DataFrame:
    """Per metric: gages where A or B is better beyond the 90 % interval, and within."""
    rows = []
    for metric in comparison.metrics:
        col = f"{metric}_beyond"
        if col not in comparison.per_gage:
            continue
        values = comparison.per_gage[col]
        rows.append(
            {
                "metric": metric,
                f"{comparison.model_a} better": int((values == comparison.model_a).sum()),
                f"{comparison.model_b} better": int((values == comparison.model_b).sum()),
                "within the interval": int((values == "within").sum()),
                "no interval": int(values.isna().sum()),
            }
        )
    if not rows:
        raise NothingToPlot("the comparison has no paired uncertainty (uncertainty suite)")
    return pd.DataFrame(rows)


def plot_beyond_map(
    comparison: ComparisonResult,
    metric: str = "KGE",
    *,
    gages: pd.DataFrame | None = None,
    figure: FigureBase | None = None,
) -> Figure:
    """Map of where one model is better beyond the 90 % interval of the paired difference.

    Parameters
    ----------
    comparison
        What :func:`gagebench.compare` returns for one run with the uncertainty suite
        (its ``<metric>_beyond`` column: A, B or "within" per gage).
    metric
        ``"KGE"`` or ``"NSE"``.
    gages
        A gage list with ``site_no``, ``lat`` and ``lon``; None: the built-in gages.
    figure
        A :class:`~matplotlib.figure.Figure` or ``SubFigure`` to draw into; None: a new
        figure.

    Returns
    -------
    matplotlib.figure.Figure
        The figure (the root figure when drawn into ``figure``). ``NothingToPlot`` (an
        :class:`~gagebench.InputError`) is raised when there is nothing to draw.
    """
    col = f"{metric}_beyond"
    if col not in comparison.per_gage:
        raise NothingToPlot(f"the comparison has no paired uncertainty of {metric}")
    a, b = comparison.model_a, comparison.model_b
    frame = with_gages(comparison.per_gage.assign(model=a), gages)
    frame = frame[frame[col].notna()]
    if frame.empty:
        raise NothingToPlot(f"no gage has a paired {metric} interval")
    located = frame[np.isfinite(frame["lat"]) & np.isfinite(frame["lon"])]
    fig = _new_figure(7.6, 4.8, figure)
    ax = fig.subplots()
    draw_outline(ax, located["lon"], located["lat"])
    size, edge = _marker(len(located))
    styles = (
        ("within", "#d0d0d0", "within the interval"),
        (a, "#2166ac", f"{a} better"),
        (b, "#b2182b", f"{b} better"),
    )
    handles = []
    for value, color, label in styles:
        part = located[located[col] == value]
        ax.scatter(part["lon"], part["lat"], s=size, c=color, linewidths=edge, edgecolors="#333")
        count = int((frame[col] == value).sum())
        handles.append(
            Line2D([], [], marker="o", linestyle="", color=color, label=f"{label}: {count}")
        )
    ax.legend(handles=handles, fontsize=7, loc="lower left")
    ax.set_title(
        f"{metric}: where {a} or {b} is better beyond the 90 % bootstrap interval "
        "of the paired difference",
        fontsize=9,
    )
    return _root(fig)
