"""gagebench.gages: the built-in list, lists at URLs, validation messages, batching."""

from __future__ import annotations

import pandas as pd
import pytest

from gagebench.errors import InputError, StorageError
from gagebench.gages import builtin_gages, load_gages


def test_builtin_list_keeps_leading_zeros_and_adds_gage_ids():
    frame = builtin_gages()
    assert len(frame) == 5390
    assert list(frame.columns[:2]) == ["gage_id", "site_no"]
    assert frame["site_no"].iloc[0] == "01011000"
    assert frame["gage_id"].iloc[0] == "USGS-01011000"
    assert frame["site_no"].str.len().isin([8, 9, 10]).all()
    assert (frame["site_no"].str.len() == 10).sum() == 42
    assert frame["gage_id"].is_unique
    assert frame["reachcode"].iloc[0] == "01010002000001"  # a code, not a number
    assert frame["huc02"].iloc[0] == "01"
    assert {"dec_lat_va", "dec_long_va", "drain_sqkm", "gagesII_class", "camels"} <= set(
        frame.columns
    )
    assert "USGS-01104200" in set(frame["gage_id"])


def test_load_builtin_with_limit_keeps_list_order():
    frame = load_gages("builtin", limit=3)
    assert frame["gage_id"].tolist() == builtin_gages()["gage_id"].iloc[:3].tolist()
    assert frame.index.tolist() == [0, 1, 2]


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_lists_from_csv_and_parquet_urls(tmp_path, suffix):
    table = pd.DataFrame(
        {"site_no": ["01011000", "0208111310", "12345678"], "drain_sqkm": [1.0, 2.0, 3.0]}
    )
    path = tmp_path / f"gages.{suffix}"
    if suffix == "csv":
        table.to_csv(path, index=False)
    else:
        table.to_parquet(path)
    for url in (str(path), f"file://{path}"):
        frame = load_gages(url)
        assert frame["gage_id"].tolist() == [
            "USGS-01011000",
            "USGS-0208111310",
            "USGS-12345678",
        ]
        assert frame["drain_sqkm"].tolist() == [1.0, 2.0, 3.0]
    assert len(load_gages(str(path), limit=2)) == 2


def test_gage_id_column_alone_is_accepted(tmp_path):
    path = tmp_path / "ids.csv"
    path.write_text("gage_id\nUSGS-01011000\nUSGS-01013500\n")
    assert load_gages(str(path))["site_no"].tolist() == ["01011000", "01013500"]


def test_duplicates_are_named_by_row(tmp_path):
    path = tmp_path / "dup.csv"
    path.write_text("site_no\n01011000\n01013500\n01011000\n")
    with pytest.raises(InputError, match=r"duplicate.*row 1 \('01011000'\).*row 3"):
        load_gages(str(path))


def test_malformed_ids_are_named_by_row(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("site_no\n01011000\n1011000\nabc12345\n01013500\n")
    with pytest.raises(InputError) as info:
        load_gages(str(path))
    message = str(info.value)
    assert "row 2 ('1011000')" in message
    assert "row 3 ('abc12345')" in message
    assert "row 1" not in message
    assert "row 4" not in message
    assert "leading zeros" in message


def test_missing_site_no_column_and_empty_values(tmp_path):
    path = tmp_path / "nocol.csv"
    path.write_text("station,lat\n01011000,47.1\n")
    with pytest.raises(InputError, match=r"no 'site_no' column \(columns: station, lat\)"):
        load_gages(str(path))
    path.write_text("site_no,lat\n01011000,47.1\n,48\n")
    with pytest.raises(InputError, match=r"empty 'site_no' in row 2"):
        load_gages(str(path))


def test_numeric_site_numbers_are_refused(tmp_path):
    path = tmp_path / "num.parquet"
    pd.DataFrame({"site_no": [1011000, 1013500]}).to_parquet(path)
    with pytest.raises(InputError, match="lose leading zeros"):
        load_gages(str(path))


def test_missing_file_is_a_storage_error(tmp_path):
    with pytest.raises(StorageError, match=r"nope\.csv.*does not exist"):
        load_gages(str(tmp_path / "nope.csv"))


def test_bad_limit():
    with pytest.raises(InputError, match="limit"):
        load_gages(limit=0)


def test_object_store_options_are_not_passed_to_local_lists(tmp_path):
    path = tmp_path / "g.csv"
    path.write_text("site_no\n01011000\n")
    options = {"key": "k", "secret": "s", "endpoint_url": "http://127.0.0.1:1"}
    assert load_gages(str(path), storage_options=options)["gage_id"].tolist() == ["USGS-01011000"]
