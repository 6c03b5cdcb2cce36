"""One canonical gage id (gagebench.ids) for gage lists, stores, crosswalks and the join of
results to gage metadata: the three used to disagree on ids that are not site numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gagebench.gages import load_gages, normalize_gages, with_gages
from gagebench.ids import canonical_id, canonical_ids, site_no

CASES = [
    ("01011000", "USGS-01011000"),
    (" USGS-01011000 ", "USGS-01011000"),
    (b"       01011000", "USGS-01011000"),
    (np.bytes_(b"0208111310\x00"), "USGS-0208111310"),
    (1011000, "USGS-01011000"),
    ("gageA", "gageA"),
    ("CDEC-ABC", "CDEC-ABC"),
]


@pytest.mark.parametrize(("raw", "expected"), CASES)
def test_canonical_id(raw, expected) -> None:
    assert canonical_id(raw) == expected
    assert canonical_ids(np.array([raw, raw]))[0] == expected


def test_blank_entries_have_no_id() -> None:
    assert canonical_id("  ") is None
    assert canonical_ids(np.array([b"   ", b" 01011000"], dtype="S9")) == [None, "USGS-01011000"]


def test_site_no_is_the_inverse_for_site_numbers() -> None:
    assert site_no(canonical_id("01011000")) == "01011000"
    assert site_no(" 01011000 ") == "01011000"


def test_gage_lists_and_the_results_join_use_the_canonical_id(tmp_path) -> None:
    listed = tmp_path / "gages.csv"
    listed.write_text("gage_id\nUSGS-01011000\n01013500\n")
    assert load_gages(str(listed))["gage_id"].tolist() == ["USGS-01011000", "USGS-01013500"]
    # a list of labelled gages (evaluate() keeps labels as given): joined on the same ids
    table = pd.DataFrame({"gage_id": ["gageA", " 01011000"], "lat": [40.0, 41.0]})
    assert normalize_gages(table)["site_no"].tolist() == ["gageA", "USGS-01011000"]
    results = pd.DataFrame({"site_no": ["gageA", "USGS-01011000"], "model": ["m", "m"]})
    joined = with_gages(results, table).set_index("site_no")
    assert joined.loc["gageA", "lat"] == 40.0
    assert joined.loc["USGS-01011000", "lat"] == 41.0


def test_a_site_number_that_lost_its_leading_zero_is_the_same_gage_as_text() -> None:
    """A site number read as an integer somewhere upstream (Excel, pandas) and written back
    as text ('1011000') is the gage the integer 1011000 is: USGS site numbers have at
    least 8 digits, so a shorter number lost its leading zeros."""
    assert canonical_id("1011000") == canonical_id(1011000) == "USGS-01011000"
    assert canonical_ids(np.array(["1011000", "394220106431500"])) == [
        "USGS-01011000",
        "USGS-394220106431500",
    ]


def test_a_crosswalk_as_csv_or_parquet_matches_the_same_gages(tmp_path) -> None:
    """The same crosswalk table as CSV (site numbers read back as text, '1011000') and as
    Parquet (integers) gives the same gage -> feature pairs; the CSV one matched only the
    gages whose site number starts with a non-zero digit."""
    import xarray as xr

    from gagebench.config import Crosswalk
    from gagebench.sources.crosswalk import crosswalk_pairs

    sites = ["01011000", "10017300", "02015800"]
    table = pd.DataFrame({"site_no": [int(s) for s in sites], "comid": [7, 8, 9]})
    table.to_csv(tmp_path / "xw.csv", index=False)
    table.to_parquet(tmp_path / "xw.parquet")
    ds = xr.Dataset(coords={"feature_id": [9, 8, 7]})
    pairs = [
        crosswalk_pairs(
            Crosswalk(url=str(tmp_path / name), gage="site_no", feature="comid"),
            ds,
            "feature_id",
            "model 'm'",
            "m.nc",
        )
        for name in ("xw.csv", "xw.parquet")
    ]
    assert pairs[0][:2] == pairs[1][:2]
    assert pairs[0][0] == [f"USGS-{s}" for s in sites]
    assert pairs[0][1] == [2, 1, 0]


def test_results_labelled_by_bare_site_numbers_get_their_gage_metadata() -> None:
    """evaluate() keeps labels as given: results rows labelled '01011000' join the gage
    table's USGS-01011000 (both sides canonical), and keep their label."""
    results = pd.DataFrame({"site_no": ["01011000", "USGS-01013500"], "model": ["m", "m"]})
    table = pd.DataFrame({"site_no": ["01011000", "01013500"], "lat": [40.0, 41.0]})
    joined = with_gages(results, table)
    assert joined["lat"].tolist() == [40.0, 41.0]
    assert joined["site_no"].tolist() == ["01011000", "USGS-01013500"]
