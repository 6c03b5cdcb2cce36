"""What users read: demo stores keyed by their settings, a gage's synthetic values that do
not depend on how many gages are made, built-in gage metadata for any gage list, the
report's provenance of the backend in use, and the comparison's column notes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import gagebench.report.comparison as comparison
from gagebench.demo import demo_stores
from gagebench.gages import with_gages
from gagebench.report.html import provenance_table
from gagebench.synth import synthesize


def test_a_gages_values_do_not_depend_on_how_many_are_made(tmp_path: Path) -> None:
    few = synthesize(str(tmp_path / "few"), n_gages=3, start="2001-01-01", end="2001-12-31")
    many = synthesize(str(tmp_path / "many"), n_gages=6, start="2001-01-01", end="2001-12-31")
    for name in ("observed.zarr", "nwm.zarr"):
        a = xr.open_zarr(tmp_path / "few" / name)["streamflow"].load()
        b = xr.open_zarr(tmp_path / "many" / name)["streamflow"].load()
        common = [g for g in a["gage_id"].to_numpy() if g in set(b["gage_id"].to_numpy())]
        assert len(common) >= 2
        np.testing.assert_array_equal(
            a.sel(gage_id=common).to_numpy(), b.sel(gage_id=common).to_numpy()
        )
    assert few.n_gages == 3
    assert many.n_gages == 6


def test_demo_stores_are_keyed_and_reused_for_fewer_gages(tmp_path: Path, monkeypatch) -> None:
    import gagebench.synth as synth

    calls: list[int] = []
    real = synth.synthesize

    def short(url: str, **kw):  # a short period keeps the test fast; still the real writer
        calls.append(kw["n_gages"])
        return real(url, **{**kw, "start": "2001-01-01", "end": "2001-03-31"})

    monkeypatch.setattr(synth, "synthesize", short)
    big = demo_stores(tmp_path, 4, seed=0)
    assert (tmp_path / "seed-0-gages-4" / "demo-stores.json").exists()
    small = demo_stores(tmp_path, 2, seed=0)  # served by the 4-gage stores, not replacing them
    assert small == big
    assert calls == [4]
    other_seed = demo_stores(tmp_path, 2, seed=1)
    assert calls == [4, 2]
    assert "seed-1-gages-2" in other_seed["observed"]["url"]
    more = demo_stores(tmp_path, 5, seed=0)  # more gages than any store: a new folder
    assert calls == [4, 2, 5]
    assert "seed-0-gages-5" in more["observed"]["url"]
    assert (tmp_path / "seed-0-gages-4" / "observed.zarr").exists()


def test_builtin_gages_keep_their_metadata_in_a_user_gage_list() -> None:
    results = pd.DataFrame(
        {"site_no": ["USGS-01011000", "USGS-99999999"], "model": "nwm", "KGE": [0.5, 0.1]}
    )
    user_list = pd.DataFrame({"site_no": ["01011000", "99999999"]})  # ids only
    joined = with_gages(results, user_list).set_index("site_no")
    assert np.isfinite(joined["lat"]["USGS-01011000"])
    assert np.isfinite(joined["lon"]["USGS-01011000"])
    assert isinstance(joined.loc["USGS-01011000", "gage_class"], str)
    assert np.isnan(joined["lat"]["USGS-99999999"])  # not a built-in gage


def test_provenance_shows_the_backend_in_use_only() -> None:
    manifest = {
        "run_id": "r",
        "run_url": "s3://b/r",
        "config": {
            "cluster": {
                "backend": "local",
                "options": {
                    "local": {"n_workers": 2},
                    "kubernetes": {"image": "x", "n_workers": 4},
                    "gateway": {"address": None},
                },
            }
        },
    }
    keys = provenance_table(manifest, "s3://b/r")["key"].tolist()
    assert keys.count("run URL") == 1
    assert "run_url" not in keys
    assert "config.cluster.options.local.n_workers" in keys
    assert not any("kubernetes" in k or "gateway" in k for k in keys)


def test_comparison_columns_are_explained_and_missing_scipy_is_named(monkeypatch) -> None:
    text = comparison.describe_columns()
    assert "median_diff: median of the per-gage differences A - B" in text
    assert "Not median_a - median_b" in text
    assert "scipy is not installed" not in text  # scipy is installed here
    monkeypatch.setattr(comparison, "scipy_available", lambda: False)
    assert "wilcoxon_p is empty because scipy is not installed" in comparison.describe_columns()
    assert np.isnan(comparison.wilcoxon_p(np.array([1.0, 2.0, -0.5])))


@pytest.mark.parametrize("suites", ["standard", ("standard",)])
def test_result_columns_accept_one_suite_as_a_string(suites) -> None:
    from gagebench.evaluation import result_columns

    assert "NSE" in result_columns(suites)
    assert "mse" not in result_columns(suites)


def test_the_cli_leaves_the_environment_as_it_found_it(tmp_path: Path) -> None:
    """main() may run in-process (notebooks, tests): its child-process settings are undone."""
    import os

    from gagebench.cli import main

    before = os.environ.get("PYTHONWARNINGS")
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert os.environ.get("PYTHONWARNINGS") == before
