"""Published baselines (issue 24) from real files: HyTEST's NWM v2.1 tables as published
(``tests/data/published``), read exactly; the run's model paired with them, checked
against a pandas computation written here; the errors a user meets (no site_no, repeated
ids, a missing catalog entry, an unknown uncertainty layout), each naming the input."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from baseline_fixtures import sample_run
from gagebench.baselines import (
    _merge_options,
    read_baseline,
    read_uncertainty,
    resolve,
    uncertainty_columns,
)
from gagebench.errors import InputError
from gagebench.report.comparison import compare, compare_baselines, describe_columns

DATA = Path(__file__).parents[1] / "data" / "published"
NWM = DATA / "NWM_v2.1_streamflow_example.csv"
DSCORE = DATA / "DScore_streamflow_example.csv"
KGE_UNC = DATA / "KGE_gumbootStats_nwmv21_example.csv"
CATALOG = DATA / "streamflow-benchmarks-catalog.yml"


def published(path: Path) -> dict[str, dict[str, str]]:
    """The table as text, with Python's csv module: site_no -> {column: cell}."""
    with path.open(newline="") as handle:
        return {row["site_no"]: row for row in csv.DictReader(handle)}


def same(cell: str, value: object) -> bool:
    """A value read equals the published cell exactly (empty: NaN; -inf: -inf)."""
    if cell == "":
        return isinstance(value, float) and math.isnan(value)
    return float(cell) == value


def test_published_values_are_read_exactly_empty_cells_and_inf_kept() -> None:
    base = read_baseline("nwm", [str(NWM), str(DSCORE)])
    text = published(NWM)
    dtext = published(DSCORE)
    assert len(base.table) == len(text) == 5380
    table = base.table.set_index("site_no")
    n_empty = n_inf = 0
    for site, row in text.items():
        for col, cell in row.items():
            if col == "site_no":
                continue
            assert same(cell, table.at[site, col]), (site, col, cell, table.at[site, col])
            n_empty += cell == ""
            n_inf += cell == "-inf"
        for col, cell in dtext[site].items():
            if col != "site_no":
                assert same(cell, table.at[site, col]), (site, col)
    assert n_empty > 1000
    assert n_inf > 200


@pytest.fixture(scope="module")
def run_results() -> tuple[pd.DataFrame, list[str]]:
    return sample_run()


def test_paired_numbers_equal_a_pandas_computation(
    run_results: tuple[pd.DataFrame, list[str]],
) -> None:
    results, _sites = run_results
    result = compare(
        results,
        baseline={"nwm": [str(NWM), str(DSCORE)]},
        baseline_uncertainty=str(KGE_UNC),
    )
    assert (result.model_a, result.model_b) == ("mine", "nwm")
    # the reference: a pandas merge on "USGS-" + the run's bare site numbers
    run = results.assign(site_no="USGS-" + results["site_no"].str.removeprefix("USGS-"))
    pub = pd.read_csv(NWM, dtype={"site_no": str})
    merged = run.merge(pub, on="site_no", suffixes=("_a", "_b"))
    got = result.per_gage.set_index("site_no")
    for metric in ("NSE", "KGE"):
        ref = merged.set_index("site_no")
        paired = ref[np.isfinite(ref[f"{metric}_a"]) & np.isfinite(ref[f"{metric}_b"])]
        diff = paired[f"{metric}_a"] - paired[f"{metric}_b"]
        row = result.summary.set_index("metric").loc[metric]
        assert row["n_paired"] == len(paired) == 12
        assert row["median_diff"] == pytest.approx(diff.median(), rel=1e-12)
        assert row["share_a_better"] == pytest.approx((diff > 0).mean(), rel=1e-12)
        assert row["median_b"] == pytest.approx(paired[f"{metric}_b"].median(), rel=1e-12)
        np.testing.assert_array_equal(got.loc[paired.index, f"{metric}_b"], paired[f"{metric}_b"])
        np.testing.assert_allclose(got.loc[paired.index, f"{metric}_diff"], diff, rtol=1e-12)
        want = np.where(diff > 0, "mine", np.where(diff < 0, "nwm", "tie"))
        assert list(got.loc[paired.index, f"{metric}_winner"]) == list(want)
    # gages of one side only: counted and named
    assert result.only_a == ("USGS-99999990", "USGS-99999991")
    assert len(result.only_b) == 5380 - 12
    assert set(result.summary["gages_only_in_run"]) == {2}
    assert set(result.summary["gages_only_in_baseline"]) == {5368}
    assert got.loc["USGS-99999990", "found_in"] == "run"
    # D-score components from the D-score table, mse lower-is-better
    dpub = pd.read_csv(DSCORE, dtype={"site_no": str}).set_index("site_no")
    both = got[got["found_in"] == "both"]
    np.testing.assert_array_equal(both["e_seq_b"], dpub.loc[both.index, "e_seq"])
    mse_diff = both["mse_a"] - dpub.loc[both.index, "mse"]
    want = np.where(mse_diff < 0, "mine", np.where(mse_diff > 0, "nwm", "tie"))
    assert list(both["mse_winner"]) == list(want)


def test_verdicts_use_both_intervals_or_the_runs(
    run_results: tuple[pd.DataFrame, list[str]],
) -> None:
    results, _ = run_results
    run = results.assign(site_no="USGS-" + results["site_no"].str.removeprefix("USGS-"))
    pub = pd.read_csv(NWM, dtype={"site_no": str})
    unc = pd.read_csv(KGE_UNC, dtype={"site_no": str})
    ref = run.merge(pub, on="site_no", suffixes=("", "_pub")).merge(unc, on="site_no")
    # with the baseline's interval: both intervals must not overlap
    both = compare(results, baseline={"nwm": str(NWM)}, baseline_uncertainty=str(KGE_UNC))
    row = both.summary.set_index("metric").loc["KGE"]
    assert row["verdict"].startswith("both 90 % intervals")
    a_better = ref["KGE_p05"] > ref["p95"]
    b_better = ref["p05"] > ref["KGE_p95"]
    assert row["a_better_beyond_90"] == a_better.sum()
    assert row["b_better_beyond_90"] == b_better.sum()
    assert row["with_interval_90"] == len(ref)
    got = both.per_gage.set_index("site_no").loc[ref["site_no"], "KGE_beyond"]
    want = np.where(a_better, "mine", np.where(b_better, "nwm", "within"))
    assert list(got) == list(want)
    # without it: the published score outside the run's interval
    alone = compare(results, baseline={"nwm": str(NWM)})
    row = alone.summary.set_index("metric").loc["KGE"]
    assert row["verdict"].startswith("run's 90 % interval")
    ref2 = run.merge(pub, on="site_no", suffixes=("", "_pub"))
    assert row["a_better_beyond_90"] == (ref2["KGE_pub"] < ref2["KGE_p05"]).sum()
    assert row["b_better_beyond_90"] == (ref2["KGE_pub"] > ref2["KGE_p95"]).sum()
    assert "verdict" in describe_columns(alone)
    # a run without the uncertainty suite and no baseline interval: no verdict, said so
    plain = results.drop(columns=[c for c in results.columns if c.endswith(("_p05", "_p95"))])
    none = compare(plain, baseline={"nwm": str(NWM)})
    assert str(none.summary.set_index("metric").loc["KGE", "verdict"]).startswith("none")
    assert "KGE_beyond" not in none.per_gage.columns


def test_compare_baselines_takes_several_and_model_to_model_is_unchanged(
    run_results: tuple[pd.DataFrame, list[str]],
) -> None:
    results, _ = run_results
    out = compare_baselines(
        results, {"nwm": str(NWM), "nwm-dscore": str(DSCORE)}, uncertainty={"nwm": str(KGE_UNC)}
    )
    assert set(out) == {"nwm", "nwm-dscore"}
    assert out["nwm-dscore"].metrics == ("mse",)
    with pytest.raises(InputError, match="no baseline of that name"):
        compare_baselines(results, {"nwm": str(NWM)}, uncertainty={"nhm": str(KGE_UNC)})
    with pytest.raises(InputError, match="compare takes one baseline"):
        compare(results, baseline={"a": str(NWM), "b": str(NWM)})
    two = pd.concat([results, results.assign(model="other")])
    plain = compare(two)
    assert "found_in" not in plain.per_gage.columns
    assert plain.only_a == ()


def test_a_table_without_site_no_names_the_table_and_its_columns(tmp_path: Path) -> None:
    path = tmp_path / "scores.csv"
    pd.read_csv(NWM, nrows=3).rename(columns={"site_no": "gage"}).to_csv(path, index=False)
    with pytest.raises(InputError, match=r"no site_no column \(it has gage, NSE"):
        read_baseline("nwm", str(path))


def test_repeated_site_ids_are_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "dup.csv"
    rows = pd.read_csv(NWM, dtype={"site_no": str}, nrows=3)
    extra = rows.iloc[[0]].assign(site_no="01011000")  # the same gage, bare
    pd.concat([rows, extra]).to_csv(path, index=False)
    with pytest.raises(InputError, match=r"1 site id\(s\) more than once \(USGS-01011000\)"):
        read_baseline("nwm", str(path))


def test_a_missing_catalog_entry_lists_the_entries() -> None:
    with pytest.raises(InputError) as info:
        read_baseline("nwm", f"{CATALOG}#nwm21-standardsuite")
    text = str(info.value)
    assert "has no entry 'nwm21-standardsuite'" in text
    assert "nwm2d1-standardsuite-osn" in text
    assert "nhmv1-dscore-osn" in text


def test_a_catalog_entry_gives_its_url_and_options_with_the_callers_over_them() -> None:
    url, options = resolve(f"{CATALOG}#nwm2d1-dscore-osn", {"anon": False, "key": "k"})
    assert url.endswith("nwmv2d1/streamflow_nwm_v2.1-dscore_v0.1-benchmark_v1.csv")
    assert options == {
        "anon": False,
        "requester_pays": False,
        "client_kwargs": {"endpoint_url": "https://usgs.osn.mghpcc.org/"},
        "key": "k",
    }
    _, moved = resolve(f"{CATALOG}#nwm2d1-dscore-osn", {"endpoint_url": "http://127.0.0.1:9"})
    assert moved["endpoint_url"] == "http://127.0.0.1:9"
    assert moved["client_kwargs"] == {}
    assert _merge_options({"a": {"b": 1, "c": 2}}, {"a": {"b": 3}}) == {"a": {"b": 3, "c": 2}}


def test_uncertainty_layouts_are_mapped_by_name_and_unknown_ones_listed() -> None:
    long = pd.read_csv(KGE_UNC, dtype={"site_no": str})
    got = read_uncertainty(str(KGE_UNC))
    fields = ("score", "seJack", "seBoot", "p05", "p50", "p95", "biasJack", "biasBoot", "seJab")
    assert list(got.columns) == ["site_no", *(f"KGE_{c}" for c in fields)]
    np.testing.assert_array_equal(got["KGE_p05"], long["p05"])
    # gumboot's long table with both statistics: the KGE rows
    nse = long.assign(GOF_stat="NSE", p05=-9.0)
    both = uncertainty_columns(pd.concat([nse, long]), "t")
    np.testing.assert_array_equal(both["KGE_p05"], long["p05"])
    # one statistic without GOF_stat, and the wide form of a gagebench run
    bare = uncertainty_columns(long.drop(columns="GOF_stat"), "t")
    np.testing.assert_array_equal(bare["KGE_p95"], long["p95"])
    wide = long[["site_no"]].assign(KGE_p05=long["p05"], KGE_p95=long["p95"])
    np.testing.assert_array_equal(uncertainty_columns(wide, "t")["KGE_p95"], long["p95"])
    with pytest.raises(InputError, match=r"has the columns site_no, lower, upper; expected"):
        uncertainty_columns(long[["site_no"]].assign(lower=0.1, upper=0.2), "the table")


def test_a_parquet_baseline_reads_the_same_values(tmp_path: Path) -> None:
    path = tmp_path / "nwm.parquet"
    pd.read_csv(NWM, dtype={"site_no": str}).to_parquet(path)
    from_csv = read_baseline("nwm", str(NWM)).table
    from_parquet = read_baseline("nwm", str(path)).table
    pd.testing.assert_frame_equal(from_parquet, from_csv)


def test_a_baseline_read_once_serves_several_comparisons(
    run_results: tuple[pd.DataFrame, list[str]],
) -> None:
    results, _ = run_results
    base = read_baseline("nwm", str(NWM))
    direct = compare(results, baseline=base)
    mapped = compare(results, baseline={"nwm": base}, baseline_uncertainty=str(KGE_UNC))
    pd.testing.assert_series_equal(direct.per_gage["KGE_b"], mapped.per_gage["KGE_b"])
    assert mapped.baseline_sources == (str(NWM), str(KGE_UNC))
    assert "KGE_b_p05" in mapped.per_gage.columns
