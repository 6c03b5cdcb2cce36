"""What people see in the figures: maps zoomed to the gages, crosses above the dots, and
legends beside the boxes they describe (checked on the drawn matplotlib artists)."""

from __future__ import annotations

import json
from importlib import resources

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure

import gagebench
from gagebench.gages import builtin_gage_table
from gagebench.report.plots import map_extent

# The CONUS box, read from the shipped outline itself (not from the module under test).
CONUS = json.loads((resources.files("gagebench") / "data" / "conus_outline.json").read_text())[
    "extent"
]


def _results(gages: pd.DataFrame, models: tuple[str, ...] = ("nwm", "nhm")) -> pd.DataFrame:
    """A results table of ``gages``: KGE spread over (-1, 1), every 4th gage without one."""
    rng = np.random.default_rng(5)
    frames = []
    for model in models:
        kge = rng.uniform(-1.0, 1.0, len(gages))
        kge[::4] = np.nan
        frames.append(
            pd.DataFrame(
                {
                    "site_no": gages["site_no"].to_numpy(),
                    "model": model,
                    "KGE": kge,
                    "status": np.where(np.isnan(kge), "too_short", "ok"),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def gages() -> pd.DataFrame:
    """The built-in gages: ``site_no`` as in results, ``lon``/``lat``, class, ecoregion."""
    return builtin_gage_table()


@pytest.fixture(scope="module")
def northeast(gages: pd.DataFrame) -> pd.DataFrame:
    """Built-in gages in a 6 x 4 degree box around New York and Pennsylvania."""
    box = gages["lon"].between(-80, -74) & gages["lat"].between(39, 43)
    picked = gages[box].head(60)
    assert len(picked) >= 20
    return picked


def _maps(fig: Figure) -> list:
    return [ax for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]


def test_map_of_one_region_zooms_to_its_gages_with_the_country_around(
    northeast: pd.DataFrame,
) -> None:
    fig = gagebench.plot_map(_results(northeast), "KGE")
    panels = [ax for ax in _maps(fig) if ax.collections]
    assert len(panels) == 2
    for ax in panels:
        west, east = ax.get_xlim()
        south, north = ax.get_ylim()
        # every gage is on the panel...
        assert west < northeast["lon"].min() < northeast["lon"].max() < east
        assert south < northeast["lat"].min() < northeast["lat"].max() < north
        # ... which shows the region, not the country (CONUS: 60 x 26.5 degrees)
        assert east - west < (CONUS[1] - CONUS[0]) / 3
        assert north - south < (CONUS[3] - CONUS[2]) / 3
        # the country outline is drawn as context (filled polygons)
        assert len(ax.patches) > 3
        # both panels share one extent, so they can be compared side by side
        assert (west, east, south, north) == pytest.approx(
            (*panels[0].get_xlim(), *panels[0].get_ylim())
        )


def test_map_of_gages_across_the_country_shows_conus(gages: pd.DataFrame) -> None:
    spread = gages.iloc[:: max(len(gages) // 300, 1)]
    fig = gagebench.plot_map(_results(spread, ("nwm",)), "KGE")
    (ax,) = [ax for ax in _maps(fig) if ax.collections]
    assert (*ax.get_xlim(), *ax.get_ylim()) == pytest.approx(tuple(CONUS))


@pytest.mark.parametrize(
    ("lon", "lat"),
    [([-105.0], [40.0]), ([-125.5, -124.0], [48.5, 49.0]), ([-90.0, -89.5], [30.0, 47.0])],
    ids=["one-gage", "northwest-corner", "north-south-strip"],
)
def test_map_extent_holds_the_gages_in_a_readable_panel(lon: list, lat: list) -> None:
    west, east, south, north = map_extent(lon, lat)
    assert west < min(lon) <= max(lon) < east
    assert south < min(lat) <= max(lat) < north
    assert north - south >= 3.0  # a single gage still gets some land around it
    shape = (east - west) / ((north - south) * 1.25)  # on the page: lat drawn 1.25x
    assert 1.0 - 1e-9 <= shape <= 2.0 + 1e-9  # neither a sliver nor a ribbon
    assert east - west < (CONUS[1] - CONUS[0]) / 2


def test_map_extent_without_located_gages_is_conus() -> None:
    assert tuple(map_extent([np.nan], [np.nan])) == pytest.approx(tuple(CONUS))
    assert tuple(map_extent()) == pytest.approx(tuple(CONUS))


def _draw_order(ax) -> list:
    """The axes' children in the order matplotlib draws them (stable sort by zorder)."""
    return sorted(ax.get_children(), key=lambda artist: artist.get_zorder())


def test_not_computed_crosses_are_drawn_above_the_dots(northeast: pd.DataFrame) -> None:
    fig = gagebench.plot_map(_results(northeast, ("nwm",)), "KGE")
    (ax,) = [ax for ax in _maps(fig) if ax.collections]
    scatters = [c for c in ax.collections if isinstance(c, PathCollection)]
    n_missing = int(np.ceil(len(northeast) / 4))
    crosses = [c for c in scatters if np.shape(c.get_offsets())[0] == n_missing]
    dots = [c for c in scatters if np.shape(c.get_offsets())[0] == len(northeast) - n_missing]
    assert len(crosses) == 1
    assert len(dots) == 1
    order = _draw_order(ax)
    assert order.index(crosses[0]) > order.index(dots[0])


def test_box_plot_legend_sits_beside_the_boxes(gages: pd.DataFrame) -> None:
    fig = gagebench.plot_by_class(_results(gages.head(400)), "KGE", by="ecoregion")
    fig.draw_without_rendering()
    (ax,) = fig.axes
    legend = ax.get_legend()
    assert legend is not None
    box = legend.get_window_extent()
    area = ax.get_window_extent()
    assert box.x0 >= area.x1  # right of the axes: it covers no box and no whisker
    figure_box = fig.bbox
    assert box.x1 <= figure_box.x1 + 1  # and still on the figure
