"""The report's breakdown figures: KGE by season, per water year, and by month.

A real run (synthetic stores, ``gagebench.run`` on an in-process Dask client) is written
first; its breakdown tables (``results_by_<group>.parquet``, the long layout agreed for
issue 23) are then computed here, independently of the engine, by a pandas groupby of the
paired observed and simulated days read back from the stores, and the report is drawn
through the real CLI and the API.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from matplotlib.collections import PathCollection

from gagebench.config import load_config
from gagebench.errors import InputError
from gagebench.report.html import write_report
from gagebench.report.plots_breakdown import choose_gages, plot_by_season, plot_water_years
from report_fixtures import check_report, parse_page

MIN_GROUP_DAYS = 100
#: A value no real group has: a row carrying it has a status a figure must never show.
SENTINEL = 0.987654


def _kge(o: np.ndarray, s: np.ndarray) -> float:
    """KGE (Gupta et al. 2009) from its definition: r, sd ratio, mean ratio."""
    r = np.corrcoef(o, s)[0, 1]
    return float(
        1 - np.sqrt((r - 1) ** 2 + (s.std() / o.std() - 1) ** 2 + (s.mean() / o.mean() - 1) ** 2)
    )


def _daily(url: str) -> pd.DataFrame:
    """A store's flows as a (day, gage) frame, on calendar days."""
    with xr.open_zarr(url) as store:
        flows = store["streamflow"].transpose("time", "gage_id").load()
    frame = pd.DataFrame(
        flows.values, index=pd.DatetimeIndex(flows["time"].values).floor("D"),
        columns=[str(g) for g in flows["gage_id"].values],
    )  # fmt: skip
    return frame.groupby(level=0).mean()


def _long_tables(stores: dict, site_nos: list[str]) -> dict[str, pd.DataFrame]:
    """The breakdown tables, per the agreed layout, from a pandas groupby of paired days."""
    observed = _daily(stores["observed"]["url"])
    rows: dict[str, list[dict]] = {"season": [], "month": [], "water_year": []}
    for model, spec in stores["models"].items():
        simulated = _daily(spec["url"])
        for column in observed.columns:
            site = next(s for s in site_nos if s.endswith(column.removeprefix("USGS-")))
            if column not in simulated.columns:
                continue
            days = pd.DataFrame({"o": observed[column], "s": simulated[column]}).dropna()
            when = pd.DatetimeIndex(days.index)
            month = when.month
            keys: dict[str, pd.Index] = {
                "season": pd.Index(np.array(["DJF", "MAM", "JJA", "SON"])[(month % 12) // 3]),
                "month": pd.Index(month),
                "water_year": pd.Index(when.year + (month >= 10)),
            }
            for group, key in keys.items():
                for value, part in days.groupby(key):
                    enough = len(part) >= MIN_GROUP_DAYS
                    rows[group].append({
                        "site_no": site, "model": model,
                        group: value if group == "season" else int(value),
                        "KGE": _kge(part["o"].to_numpy(), part["s"].to_numpy())
                        if enough else np.nan,
                        "n_days": len(part),
                        "status": "ok" if enough else "too_few_days",
                        "note": "" if enough else f"{len(part)} paired days",
                    })  # fmt: skip
    return {group: pd.DataFrame(found) for group, found in rows.items()}


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, pd.DataFrame]]:
    """A finished real run (report off) and its breakdown tables, not yet in the folder."""
    from distributed import Client

    from gagebench.pipeline import run
    from gagebench.synth import synthesize

    root = tmp_path_factory.mktemp("breakdowns")
    stores = synthesize(
        str(root / "stores"), n_gages=10, seed=11, start="1999-10-01", end="2009-09-30"
    ).to_config_dict()
    over = {**stores, "output": str(root / "runs"), "report": False, "progress": False,
            "run_id": "by", "batch_size": 5}  # fmt: skip
    with Client(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=":0") as c:
        result = run(load_config(overrides=over), client=c)
    sites = sorted(result.results["site_no"].astype(str).unique())
    return Path(result.run_url), _long_tables(stores, sites)


@pytest.fixture
def run_dir(run_folder: tuple[Path, dict], tmp_path: Path) -> Path:
    """A copy of the run, without breakdown tables or report, for one test to change."""
    folder = tmp_path / "by"
    shutil.copytree(run_folder[0], folder)
    return folder


def _with_tables(folder: Path, tables: dict[str, pd.DataFrame]) -> None:
    for group, table in tables.items():
        table.to_parquet(folder / f"results_by_{group}.parquet", index=False)


def _caption(page_text: str, figure: str) -> str:
    match = re.search(rf'data-figure="{figure}">.*?<figcaption>(.*?)</figcaption>', page_text, re.S)
    assert match, f"no caption of {figure}"
    return match.group(1)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("gagebench")
    return subprocess.run(
        [str(exe), *args], capture_output=True, text=True, timeout=300, env=dict(os.environ),
        check=False,
    )  # fmt: skip


def test_cli_report_draws_the_breakdown_figures_for_named_gages(
    run_folder: tuple[Path, dict], run_dir: Path
) -> None:
    tables = run_folder[1]
    _with_tables(run_dir, tables)
    sites = sorted(tables["water_year"]["site_no"].unique())
    named = [sites[3], sites[0].removeprefix("USGS-")]  # a bare site number works too
    proc = _cli("report", str(run_dir), "--report-gages", *named)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    report = Path(proc.stdout.strip().splitlines()[-1])
    page = check_report(str(report), {"by_season_kge", "water_year_kge", "map_kge"})
    assert page.figures()["by_season_kge"] == "img"
    assert page.figures()["water_year_kge"] == "img"
    for name in ("by_season_kge", "water_year_kge"):
        assert (run_dir / "figures" / f"{name}.png").stat().st_size > 5000
    text = report.read_text(encoding="utf-8")
    caption = _caption(text, "water_year_kge")
    assert "named in the report options" in caption
    assert f"{sites[3]} (named); {sites[0]} (named)" in caption  # in the order named
    assert "KGE by season" in _caption(text, "by_season_kge")
    assert "KGE by month: median across gages" in text
    month = tables["month"]
    for model in month["model"].unique():
        jan = month[(month["model"] == model) & (month["month"] == 1) & (month["status"] == "ok")]
        assert f"<td>{jan['KGE'].median():.3f}</td>" in text  # the month table's median


def test_api_report_chooses_gages_at_the_quantiles_of_median_kge(
    run_folder: tuple[Path, dict], run_dir: Path
) -> None:
    tables = run_folder[1]
    _with_tables(run_dir, {"water_year": tables["water_year"]})
    text = Path(write_report(str(run_dir))).read_text(encoding="utf-8")
    page = parse_page(text)
    assert "water_year_kge" in page.figures()
    assert "by_season_kge" not in page.figures()
    # the rule, computed here: first model, gages ranked by median KGE over ok water years
    wy = tables["water_year"]
    first = wy[(wy["model"] == wy["model"].iloc[0]) & (wy["status"] == "ok")]
    medians = first.groupby("site_no")["KGE"].median().sort_values(kind="stable")
    ranked = sorted(medians.items(), key=lambda kv: (kv[1], kv[0]))
    expect = [ranked[round(q * (len(ranked) - 1))][0] for q in (0.1, 0.5, 0.9)]
    caption = _caption(text, "water_year_kge")
    assert [site for site, _ in choose_gages(wy)] == expect
    for site, q in zip(expect, ("10%", "50%", "90%"), strict=True):
        assert f"{site} ({q} percentile" in caption


def test_a_status_other_than_ok_or_partial_never_reaches_a_figure(
    run_folder: tuple[Path, dict],
) -> None:
    tables = run_folder[1]
    wy = tables["water_year"].copy()
    site = sorted(wy["site_no"].unique())[2]
    model = wy["model"].iloc[0]
    bad = (wy["site_no"] == site) & (wy["model"] == model) & (wy["water_year"] == 2005)
    assert bad.sum() == 1
    wy.loc[bad, ["KGE", "status"]] = [SENTINEL, "error"]
    fig = plot_water_years(wy, sites=[site])
    for ax in fig.axes:
        for line in ax.get_lines():
            assert not np.isclose(np.asarray(line.get_ydata(), float), SENTINEL).any()
    drawn = next(line for line in fig.axes[0].get_lines() if str(line.get_label()).startswith(site))
    years = np.asarray(drawn.get_xdata())
    assert np.isnan(np.asarray(drawn.get_ydata(), float)[years == 2005]).all()  # a gap

    season = tables["season"].copy()
    hidden = season["site_no"] == site
    season.loc[hidden, ["KGE", "status"]] = [SENTINEL, "too_few_days"]
    fig = plot_by_season(season)
    points = 0
    for ax in fig.axes:
        for collection in ax.collections:
            if isinstance(collection, PathCollection):
                values = collection.get_array()
                if values is not None:
                    assert not np.isclose(np.asarray(values, float), SENTINEL).any()
                points += np.asarray(collection.get_offsets()).shape[0]
    shown = season[season["status"].isin(["ok", "partial"])]
    assert points == len(shown)  # every usable row a dot or a cross, nothing else


def test_an_unknown_report_gage_is_an_input_error_naming_it(
    run_folder: tuple[Path, dict], run_dir: Path
) -> None:
    _with_tables(run_dir, {"water_year": run_folder[1]["water_year"]})
    proc = _cli("report", str(run_dir), "--report-gages", "99999999")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "USGS-99999999" in proc.stderr or "99999999" in proc.stderr
    assert "name gages of this run" in proc.stderr
    with pytest.raises(InputError, match="report_gages must be a list"):
        write_report(str(run_dir), report_gages="01013500")


def test_without_breakdown_tables_the_report_is_unchanged(
    run_folder: tuple[Path, dict], run_dir: Path
) -> None:
    def page() -> str:
        text = Path(write_report(str(run_dir))).read_text(encoding="utf-8")
        return re.sub(r"on \d{4}-\d\d-\d\d \d\d:\d\d UTC", "on <time>", text)

    before = page()
    _with_tables(run_dir, run_folder[1])
    with_tables = page()
    assert 'id="breakdowns"' in with_tables
    assert 'id="breakdowns"' not in before
    for group in ("season", "month", "water_year"):
        (run_dir / f"results_by_{group}.parquet").unlink()
    shutil.rmtree(run_dir / "figures")
    assert page() == before
    assert not (run_dir / "figures" / "by_season_kge.png").exists()


def test_a_run_file_names_the_report_gages_and_is_validated(
    run_folder: tuple[Path, dict], run_dir: Path, tmp_path: Path
) -> None:
    _with_tables(run_dir, {"water_year": run_folder[1]["water_year"]})
    site = sorted(run_folder[1]["water_year"]["site_no"].unique())[4]
    run_file = tmp_path / "run.yaml"
    run_file.write_text(f'report_gages: ["{site}"]\n')
    proc = _cli("report", str(run_dir), "-c", str(run_file))
    assert proc.returncode == 0, proc.stderr
    text = Path(proc.stdout.strip().splitlines()[-1]).read_text(encoding="utf-8")
    assert f"{site} (named)" in _caption(text, "water_year_kge")

    run_file.write_text("report_gages: 01013500\n")  # one id, not a list
    proc = _cli("report", str(run_dir), "-c", str(run_file))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "gagebench.report_gages" in proc.stderr
    assert "a list of gage ids" in proc.stderr
