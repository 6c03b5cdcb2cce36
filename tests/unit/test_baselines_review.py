"""Published baselines as users meet them, checked independently of the implementation:
a published ``-inf`` or empty score at a gage both sides have (counted and named, not
silently left out of the summary), a row without a site id, site ids stored as floats in
Parquet, and a table whose file name holds ``#``. Reference values come from pandas and
the csv module here, not from gagebench."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from baseline_fixtures import sample_run
from gagebench.baselines import read_baseline
from gagebench.errors import InputError
from gagebench.report.comparison import compare

DATA = Path(__file__).parents[1] / "data" / "published"
NWM = DATA / "NWM_v2.1_streamflow_example.csv"
_SCRIPT = Path(sys.executable).with_name("gagebench")
GAGEBENCH = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "gagebench.cli"]


@pytest.fixture(scope="module")
def run_results() -> tuple[pd.DataFrame, list[str]]:
    return sample_run()


@pytest.fixture(scope="module")
def inf_table(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """HyTEST's first 12 gages with a published KGE of -inf at one and empty at another."""
    pub = pd.read_csv(NWM, dtype={"site_no": str}).head(12)
    pub.loc[0, "KGE"] = -np.inf
    pub.loc[1, "KGE"] = np.nan
    path = tmp_path_factory.mktemp("inf") / "nwm.csv"
    pub.to_csv(path, index=False)
    assert ",-inf," in path.read_text()  # as HyTEST writes it
    return path, [str(pub.loc[0, "site_no"]), str(pub.loc[1, "site_no"])]


def test_a_published_inf_or_empty_score_at_a_shared_gage_is_counted_and_named(
    run_results: tuple[pd.DataFrame, list[str]], inf_table: tuple[Path, list[str]]
) -> None:
    results, _ = run_results
    path, odd = inf_table
    result = compare(results, baseline={"nwm": str(path)})
    pub = pd.read_csv(path, dtype={"site_no": str})
    both = results.assign(site_no="USGS-" + results["site_no"]).merge(
        pub, on="site_no", suffixes=("_a", "_b")
    )
    finite = np.isfinite(both["KGE_a"]) & np.isfinite(both["KGE_b"])
    kge = result.summary.set_index("metric").loc["KGE"]
    assert kge["n_paired"] == finite.sum() == len(both) - 2
    assert kge["gages_not_paired"] == (~finite).sum() == 2
    assert result.not_paired("KGE") == tuple(odd)
    assert result.summary.set_index("metric").loc["NSE", "gages_not_paired"] == 0
    per_gage = result.per_gage.set_index("site_no")
    assert per_gage.at[odd[0], "KGE_b"] == -np.inf  # kept as published


def test_cli_names_the_gages_whose_published_score_is_not_finite(
    run_results: tuple[pd.DataFrame, list[str]], inf_table: tuple[Path, list[str]], tmp_path: Path
) -> None:
    results, _ = run_results
    path, odd = inf_table
    run = tmp_path / "results.parquet"
    results.to_parquet(run)
    done = subprocess.run(
        [*GAGEBENCH, "compare", str(run), "--baseline", f"nwm={path}"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    line = f"KGE: gages in both not paired (a value empty or infinite): 2: {odd[0]}, {odd[1]}"
    assert line in done.stdout, done.stdout


def test_a_row_without_a_site_id_is_refused_not_read_as_a_gage_nan(tmp_path: Path) -> None:
    lines = NWM.read_text().splitlines()[:4]
    path = tmp_path / "blank.csv"
    path.write_text("\n".join([*lines, "," + lines[1].split(",", 1)[1]]) + "\n")
    with pytest.raises(InputError, match=r"1 row\(s\) without a site_no.*row 4"):
        read_baseline("nwm", str(path))


def test_parquet_site_ids_stored_as_floats_match_the_gages(tmp_path: Path) -> None:
    """A Parquet table whose site_no column became floats (as pandas writes integers
    beside a missing value) still names gages by their USGS ids."""
    pub = pd.read_csv(NWM, dtype={"site_no": str}).head(5)
    floats = pub.assign(site_no=pub["site_no"].str.removeprefix("USGS-").astype(float))
    path = tmp_path / "floats.parquet"
    floats.to_parquet(path)
    table = read_baseline("nwm", str(path)).table
    assert list(table["site_no"]) == list(pub["site_no"])
    np.testing.assert_array_equal(table["KGE"], pub["KGE"])


def test_a_table_whose_file_name_has_a_hash_is_read_as_a_table(tmp_path: Path) -> None:
    path = tmp_path / "nwm#v2.1.csv"
    path.write_text("\n".join(NWM.read_text().splitlines()[:4]) + "\n")
    table = read_baseline("nwm", str(path)).table
    assert len(table) == 3


def test_a_catalog_url_that_does_not_exist_says_so(tmp_path: Path) -> None:
    """intake opens a path without .yml that does not exist as an empty catalog: the
    message must not read as if the catalog existed without the entry."""
    missing = tmp_path / "no-such-catalog"
    with pytest.raises(InputError, match="has no entries: check that it exists") as info:
        read_baseline("nwm", f"{missing}#nwm2d1-standardsuite-osn")
    assert "its entries are: (none)" not in str(info.value)


SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
ENTRY_WITH_KEY = (
    "sources:\n  nwm:\n{extra}    args:\n      urlpath: s3://hytest/x.csv\n"
    "      storage_options:\n        key: AKIAEXAMPLEKEY123456\n        secret: {secret}\n"
)


@pytest.mark.parametrize(
    ("catalog", "said"),
    [
        # intake's ValidationError prints the whole entry, storage_options included
        (ENTRY_WITH_KEY.format(extra="", secret=SECRET), "missing required key 'driver'"),
        # yaml's ScannerError quotes the line it stopped at
        (
            ENTRY_WITH_KEY.format(extra="    driver: csv\n", secret='"' + SECRET) + "  x: [\n",
            "YAML error at line",
        ),
    ],
)
def test_a_broken_catalog_with_credentials_never_shows_them(
    run_results: tuple[pd.DataFrame, list[str]], tmp_path: Path, catalog: str, said: str
) -> None:
    results, _ = run_results
    run = tmp_path / "results.parquet"
    results.to_parquet(run)
    path = tmp_path / "catalog.yml"
    path.write_text(catalog)
    with pytest.raises(InputError) as info:
        read_baseline("nwm", f"{path}#nwm")
    assert said in str(info.value)
    done = subprocess.run(
        [*GAGEBENCH, "compare", str(run), "--baseline", f"nwm={path}#nwm"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    for part in (SECRET, SECRET[:16], "AKIAEXAMPLEKEY123456"):
        assert part not in str(info.value)
        assert part not in done.stdout + done.stderr
    errors = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(errors) == 1, done.stderr
    assert errors[0].startswith("ERROR"), done.stderr


@pytest.fixture
def http_catalog(tmp_path: Path) -> Iterator[str]:
    """HyTEST's catalog served over HTTP on 127.0.0.1, as GitHub serves the real one."""
    import functools
    import http.server
    import shutil
    import threading

    shutil.copy(DATA / "streamflow-benchmarks-catalog.yml", tmp_path / "catalog.yml")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/catalog.yml"
    finally:
        server.shutdown()
        server.server_close()


def test_an_http_catalog_with_the_tables_s3_options_as_the_docs_show(http_catalog: str) -> None:
    """compare.md: ``BaselineSource(f"{CAT}#ENTRY", {"anon": True})`` and
    ``--baseline-option anon=false key=... endpoint_url=...`` with CAT on https: the
    options are for the table's store, not for reading the catalog over HTTP."""
    from gagebench.baselines import resolve

    entry = f"{http_catalog}#nwm2d1-standardsuite-osn"
    table = "s3://hytest/benchmarks/streamflow/nwmv2d1/standard_suite_v1_nwmv2d1_V2.csv"
    url, options = resolve(entry, {"anon": True})
    assert url == table
    assert options["anon"] is True
    mine = {"anon": False, "key": "AKIAEXAMPLE", "secret": "s3cr3t", "endpoint_url": "http://x"}
    url, options = resolve(entry, mine)
    assert url == table
    assert options["endpoint_url"] == "http://x"
    assert options["key"] == "AKIAEXAMPLE"
    assert "endpoint_url" not in options["client_kwargs"]


def test_a_gumboot_table_without_kge_rows_is_refused_naming_its_statistics(
    tmp_path: Path,
) -> None:
    """A gumboot long table of NSE only would leave the baseline's interval unknown and
    the verdict quietly falling back to the run's: refused, naming what it has."""
    from gagebench.baselines import read_uncertainty

    text = (DATA / "KGE_gumbootStats_nwmv21_example.csv").read_text().replace(",KGE,", ",NSE,")
    path = tmp_path / "nse_only.csv"
    path.write_text(text)
    with pytest.raises(InputError, match=r"no KGE rows.*GOF_stat.*NSE"):
        read_uncertainty(str(path), name="nwm")


def test_a_catalog_copy_beside_its_tables_uses_intakes_catalog_dir(tmp_path: Path) -> None:
    """intake catalogs name tables beside them as ``{{ CATALOG_DIR }}/table.csv``: the
    template is rendered as intake renders it, not read as a file name."""
    import shutil

    shutil.copy(NWM, tmp_path / "nwm.csv")
    (tmp_path / "catalog.yml").write_text(
        "sources:\n  nwm:\n    driver: csv\n    args:\n      urlpath: '{{ CATALOG_DIR }}/nwm.csv'\n"
    )
    table = read_baseline("nwm", f"{tmp_path / 'catalog.yml'}#nwm").table
    assert len(table) == 5380
