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
