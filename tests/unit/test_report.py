"""The report, the model comparison and the notebook figures.

Results are computed by the real metrics engine on synthetic flows at real gage locations
(``tests/report_fixtures.py``); run folders are written in the layout of
docs/user-guide/outputs.md and
read back through fsspec (local paths and ``memory://``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

import gagebench
from gagebench.cli import main
from gagebench.errors import InputError, StorageError
from gagebench.evaluation import missing_rows
from gagebench.gages import builtin_gage_table
from gagebench.metrics import DSCORE_COLUMNS, STANDARD_COLUMNS
from gagebench.report.comparison import compare, sign_test
from gagebench.report.html import write_report
from gagebench.report.plots import NothingToPlot, scorecard_table
from gagebench.results.reader import read_run
from report_fixtures import (
    GAGE_CSV,
    Page,
    check_report,
    png_size,
    synthetic_results,
    write_run,
)

ALL_FIGURES = {"cdf", "map_kge", "by_class_kge", "by_ecoregion_kge", "scorecard"}
# Pixel sizes follow from each figure's size in inches at 100 dpi (see gagebench.report.plots).
EXPECTED_SIZES = {
    "cdf": (1380, 380),  # 3 panels x 4.6 in, 3.8 in
    "map_kge": (1240, 450),  # 2 models side by side: 2 x 6.2 in, 3.9 + 0.6 in
    "scorecard": (570, 560),  # 3.2 + 1.25 in per model (2), 5.6 in
    "compare_nwm_vs_nhm": (1300, 460),
    "by_class_kge": (500, 420),
}


@pytest.fixture(scope="module")
def results() -> pd.DataFrame:
    return synthetic_results(150, models=("nwm", "nhm"))


@pytest.fixture(scope="module")
def small(results: pd.DataFrame) -> pd.DataFrame:
    """25 gages of ``results``: edge cases need rows, not volume."""
    return results[results["site_no"].isin(results["site_no"].unique()[:25])].reset_index(drop=True)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory, results: pd.DataFrame) -> tuple[Path, str]:
    run = tmp_path_factory.mktemp("runs") / "run-2026-11-26"
    frame = results.copy()
    manifest = {
        "run_id": run.name,
        "version": gagebench.__version__,
        # A manifest that forgot to mask must still not leak into the report.
        "config": {"storage_options": {"secret": "hunter2-not-masked", "key": "AKIAEXAMPLE"}},
        "inputs": {"observed": "s3://user:pa55word@bench/obs.zarr"},
        "counts": frame["status"].value_counts().to_dict(),
        "timings": {"total_s": 10.0},
    }
    write_run(run, frame, manifest)
    return run, write_report(str(run))


def test_report_of_two_models_embeds_every_figure(report: tuple[Path, str]) -> None:
    run, path = report
    assert path == str(run / "report.html")
    page = check_report(path, ALL_FIGURES | {"compare_nwm_vs_nhm"})
    assert set(page.figures().values()) == {"img"}, page.notes
    for name, size in EXPECTED_SIZES.items():
        assert png_size((run / "figures" / f"{name}.png").read_bytes()) == size, name
    ids = {attrs.get("id") for _, attrs in page.tags}
    assert {"summary", "skill", "map", "groups", "dscore", "compare", "gages", "provenance"} <= ids


def test_report_tables_match_the_results(report: tuple[Path, str], results: pd.DataFrame) -> None:
    text = Path(report[1]).read_text(encoding="utf-8")
    for model in ("nwm", "nhm"):
        part = results[results["model"] == model]
        best = part.sort_values("KGE", ascending=False).iloc[0]
        worst = part.sort_values("KGE").iloc[0]
        assert best["site_no"] in text
        assert worst["site_no"] in text
        assert f"{part['KGE'].median():.3f}" in text
    ok = int((results[results["model"] == "nwm"]["status"] == "ok").sum())
    assert f"<td>ok</td><td>{ok}</td>" in text  # status table: one row per status


def test_report_never_prints_secrets(report: tuple[Path, str]) -> None:
    text = Path(report[1]).read_text(encoding="utf-8")
    assert "hunter2" not in text
    assert "AKIAEXAMPLE" not in text
    assert "pa55word" not in text
    assert "s3://***@bench/obs.zarr" in text


def _edge(tmp_path: Path, name: str, frame: pd.DataFrame, manifest: bool = True) -> Page:
    run = write_run(tmp_path / name, frame)
    if not manifest:
        (run / "manifest.json").unlink()
    path = write_report(str(run))
    return check_report(path, ALL_FIGURES)


def test_report_with_a_missing_model(tmp_path: Path, small: pd.DataFrame) -> None:
    sites = small["site_no"].unique().tolist()
    absent = missing_rows(sites, "nhm", ("standard", "dscore"), "not_in_model", "no such gage")
    frame = pd.concat([small[small["model"] == "nwm"], absent], ignore_index=True)
    page = _edge(tmp_path, "missing-model", frame)
    assert page.figures()["cdf"] == "img"
    assert page.figures()["compare_nwm_vs_nhm"] == "note"
    assert any("no gage has a finite KGE for both" in note for note in page.notes)


def test_report_with_all_nan_metrics(tmp_path: Path, small: pd.DataFrame) -> None:
    frame = small.copy()
    frame[[*STANDARD_COLUMNS, *DSCORE_COLUMNS]] = np.nan
    frame["status"] = "too_few_days"
    page = _edge(tmp_path, "all-nan", frame)
    figures = page.figures()
    assert all(figures[name] == "note" for name in ALL_FIGURES), figures
    assert any("no gage has a finite KGE" in note for note in page.notes)
    assert not list((tmp_path / "all-nan" / "figures").glob("*.png"))
    page = _edge(tmp_path, "no-rows", small.iloc[:0])  # a run with no gage at all
    assert set(page.figures().values()) == {"note"}


def test_report_with_one_gage(tmp_path: Path, small: pd.DataFrame) -> None:
    frame = small[small["site_no"] == small["site_no"].iloc[0]]
    # fields of odd types
    odd: dict[str, Any] = {"config": None, "counts": [1, 2], "timings": {}, "run_id": 7}
    run = write_run(tmp_path / "one-gage", frame, odd)
    page = check_report(write_report(str(run)), ALL_FIGURES)
    assert set(page.figures().values()) == {"img"}
    (run / "manifest.json").write_text("{not json")
    assert any("not valid JSON" in note for note in read_run(str(run)).notes)


def test_report_with_one_suite_and_no_manifest(tmp_path: Path, small: pd.DataFrame) -> None:
    standard = small.drop(columns=list(DSCORE_COLUMNS))
    page = _edge(tmp_path, "standard-only", standard, manifest=False)
    assert page.figures()["scorecard"] == "note"
    assert page.figures()["map_kge"] == "img"
    assert any("no manifest.json" in note for note in page.notes)
    dscore = small.drop(columns=list(STANDARD_COLUMNS))
    run = write_run(tmp_path / "dscore-only", dscore)
    (run / "manifest.json").unlink()  # the pipeline writes the report before its manifest
    path = write_report(str(run), manifest={"run_id": "given-by-the-pipeline"})
    page = check_report(path, ALL_FIGURES)
    assert "given-by-the-pipeline" in Path(path).read_text(encoding="utf-8")
    assert not any("manifest" in note for note in page.notes)
    figures = page.figures()
    assert figures["scorecard"] == "img"
    assert figures["cdf"] == figures["map_kge"] == figures["by_class_kge"] == "note"


def test_report_with_gages_not_in_the_list(tmp_path: Path, small: pd.DataFrame) -> None:
    frame = small.copy()
    stranger = frame["site_no"] == frame["site_no"].iloc[0]
    frame.loc[stranger, "site_no"] = "USGS-99999999"
    page = _edge(tmp_path, "unknown-gage", frame)
    assert set(page.figures().values()) == {"img"}
    assert any("1 gage(s) are not in the gage list" in note for note in page.notes)
    # A gage list given as a file that also holds the stranger: every gage is placed.
    listed = tmp_path / "gages.csv"
    stranger_row = {"site_no": "99999999", "dec_lat_va": 40.0, "dec_long_va": -100.0}
    builtin = pd.read_csv(GAGE_CSV, dtype={"site_no": str})
    pd.concat([builtin, pd.DataFrame([stranger_row])]).to_csv(listed, index=False)
    out = str(tmp_path / "listed" / "report.html")
    path = write_report(str(tmp_path / "unknown-gage"), gages=str(listed), output=out)
    assert "are not in the gage list" not in Path(path).read_text(encoding="utf-8")
    # Nothing in the list at all: still a report, with notes.
    frame["site_no"] = [f"XX-{i}" for i in range(len(frame))]
    page = _edge(tmp_path, "no-known-gage", frame)
    assert page.figures()["cdf"] == "img"


def test_report_of_three_models_compares_each_with_the_first(tmp_path: Path) -> None:
    frame = synthetic_results(40, models=("nwm", "nhm", "lstm"), seed=3)
    page = _edge(tmp_path, "three", frame)
    assert page.figures()["compare_nwm_vs_nhm"] == "img"
    assert page.figures()["compare_nwm_vs_lstm"] == "img"
    assert png_size((tmp_path / "three" / "figures" / "map_kge.png").read_bytes()) == (1240, 840)


def test_report_on_an_fsspec_url_and_a_separate_output(tmp_path: Path, small: pd.DataFrame) -> None:
    local = write_run(tmp_path / "local-run", small[small["site_no"].isin(small["site_no"][:20])])
    fs = fsspec.filesystem("memory")
    for file in local.rglob("*"):
        if file.is_file():
            fs.pipe(f"/bench/runs/r1/{file.relative_to(local).as_posix()}", file.read_bytes())
    url = write_report("memory://bench/runs/r1")
    assert url == "memory:///bench/runs/r1/report.html"
    assert fs.cat("/bench/runs/r1/report.html").startswith(b"<!DOCTYPE html>")
    assert fs.exists("/bench/runs/r1/figures/map_kge.png")


def test_report_rebuilds_results_from_hytest_csvs(tmp_path: Path, small: pd.DataFrame) -> None:
    run = write_run(tmp_path / "csv-only", small)
    (run / "results.parquet").unlink()
    page = check_report(write_report(str(run)), ALL_FIGURES)
    assert page.figures()["scorecard"] == "img"
    assert any("rebuilt from the per-model HyTEST CSVs" in note for note in page.notes)


def test_report_of_a_missing_run_says_what_to_fix(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"neither results\.parquet"):
        write_report(str(tmp_path / "nothing-here"))
    with pytest.raises(StorageError, match="no results table"):
        write_report(str(tmp_path / "nothing.parquet"))


# --------------------------------------------------------------------------- compare


def test_compare_two_models_of_one_run(results: pd.DataFrame) -> None:
    result = compare(results)
    assert (result.model_a, result.model_b) == ("nwm", "nhm")
    a = results[results["model"] == "nwm"].set_index("site_no")["KGE"]
    b = results[results["model"] == "nhm"].set_index("site_no")["KGE"]
    per_gage = result.per_gage.set_index("site_no")
    diff = (a - b).reindex(per_gage.index)
    np.testing.assert_allclose(per_gage["KGE_diff"], diff)
    assert (per_gage.loc[diff > 0, "KGE_winner"] == "nwm").all()
    assert (per_gage.loc[diff < 0, "KGE_winner"] == "nhm").all()
    row = result.summary.set_index("metric").loc["KGE"]
    paired = diff.dropna()
    assert row["n_paired"] == len(paired)
    assert row["share_a_better"] == pytest.approx((paired > 0).mean())
    assert row["median_diff"] == pytest.approx(paired.median())
    stats = pytest.importorskip("scipy.stats")
    wins = int((paired > 0).sum())
    expected = stats.binomtest(wins, len(paired)).pvalue
    assert row["sign_test_p"] == pytest.approx(expected, rel=1e-9)
    assert row["wilcoxon_p"] == pytest.approx(stats.wilcoxon(paired.to_numpy()).pvalue)
    wins_table = result.wins_by(by="ecoregion")
    assert wins_table.to_numpy().sum() == len(paired)


def test_sign_test_exact_values() -> None:
    assert sign_test(0, 5) == pytest.approx(2 / 32)
    assert sign_test(10, 10) == 1.0
    assert np.isnan(sign_test(0, 0))
    assert sign_test(5390, 0) == 0.0


def test_compare_two_runs(tmp_path: Path, results: pd.DataFrame) -> None:
    other = synthetic_results(150, models=("nwm",), seed=11)
    run_a = write_run(tmp_path / "a", results)
    run_b = write_run(tmp_path / "b", other)
    result = compare(str(run_a), str(run_b), models=["nwm", "nwm"])
    assert (result.model_a, result.model_b) == ("nwm (a)", "nwm (b)")
    assert len(result.per_gage) == len(set(results["site_no"]) | set(other["site_no"]))


def test_compare_refuses_what_it_cannot_compare(results: pd.DataFrame) -> None:
    one = results[results["model"] == "nwm"]
    with pytest.raises(InputError, match="comparing needs two models"):
        compare(one)
    with pytest.raises(InputError, match="'gr4j'"):
        compare(results, models=["nwm", "gr4j"])
    with pytest.raises(InputError, match="larger is better"):
        compare(results, metrics=("pbias",))


# --------------------------------------------------------------------------- notebook API


def test_plot_functions_return_figures(results: pd.DataFrame) -> None:
    for name in ("plot_cdf", "plot_map", "plot_by_class", "plot_scorecard", "plot_comparison"):
        assert name in dir(gagebench)
    figures = [
        gagebench.plot_cdf(results),
        gagebench.plot_cdf(results, ["NSE", "KGE"]),
        gagebench.plot_map(results, "NSE"),
        gagebench.plot_by_class(results, by="ecoregion"),
        gagebench.plot_scorecard(results),
        gagebench.plot_comparison(results, "nhm", "nwm"),
        gagebench.plot_comparison(gagebench.compare(results)),
    ]
    assert all(isinstance(fig, Figure) for fig in figures)
    assert len(figures[1].axes) == 2


def test_plots_say_when_there_is_nothing_to_draw(results: pd.DataFrame) -> None:
    empty = results.assign(KGE=np.nan)
    with pytest.raises(NothingToPlot, match="finite KGE"):
        gagebench.plot_cdf(empty)
    with pytest.raises(NothingToPlot, match="no 'mse' column"):
        gagebench.plot_scorecard(results.drop(columns=["mse"]))
    with pytest.raises(InputError, match="DataFrame"):
        gagebench.plot_map(results.to_dict())


def test_scorecard_shares(results: pd.DataFrame) -> None:
    table = scorecard_table(results)
    part = results[results["model"] == "nwm"]
    share = 100 * part["e_bias"] / part["mse"]
    assert table.loc[("components", "bias"), "nwm"] == pytest.approx(share.median())
    assert table.shape == (11, 2)
    assert ((table >= 0) & (table <= 100)).all().all()


def test_builtin_gage_table_keeps_leading_zeros() -> None:
    table = builtin_gage_table()
    assert len(table) == 5390
    assert "USGS-01011000" in set(table["site_no"])
    assert set(table["gage_class"].dropna()) == {"Ref", "Non-ref"}


# --------------------------------------------------------------------------- CLI


def test_cli_report_and_compare(
    tmp_path: Path, small: pd.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    run = write_run(tmp_path / "cli-run", small[small["site_no"].isin(small["site_no"][:30])])
    out = tmp_path / "out" / "report.html"
    assert main(["report", str(run), "--output", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert (tmp_path / "out" / "figures" / "cdf.png").exists()
    # A bare results file: the report goes beside it.
    assert main(["report", str(run / "results.parquet")]) == 0
    assert capsys.readouterr().out.strip() == str(run / "report.html")

    table = tmp_path / "cmp.csv"
    assert main(["compare", str(run), "--models", "nhm", "nwm", "--output", str(table)]) == 0
    printed = capsys.readouterr().out
    assert "share_a_better" in printed
    assert "nhm" in printed
    saved = pd.read_csv(table)
    assert {"site_no", "KGE_diff", "KGE_winner", "NSE_diff"} <= set(saved.columns)
    page = tmp_path / "cmp.html"
    assert main(["compare", str(run), "--output", str(page)]) == 0
    check_report(str(page), {"compare_nwm_vs_nhm"}, figure_files=False)


def test_cli_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "give the folder of a gagebench run" in capsys.readouterr().err
    assert main(["compare", str(tmp_path / "x.parquet")]) == 2
    assert "no results table" in capsys.readouterr().err


def test_plots_compose_into_subfigures(results: pd.DataFrame) -> None:
    fig = Figure(figsize=(12, 4), dpi=100, layout="constrained")
    subfigures = fig.subfigures(1, 2)
    assert isinstance(subfigures, np.ndarray)  # one SubFigure only for 1 x 1
    left, right = subfigures
    assert gagebench.plot_cdf(results, figure=left) is fig
    assert gagebench.plot_map(results, models=["nhm"], figure=right) is fig
    assert len(fig.axes) == 3  # CDF, map, colorbar
