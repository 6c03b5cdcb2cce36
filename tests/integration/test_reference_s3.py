"""A kerchunk reference store with its JSON and netCDF files on the S3 server, configured
as HyTEST's catalogs write it (``url: reference://``, ``fo``, ``remote_protocol: s3``,
``remote_options``/``target_options``, ``consolidated: false``), run on worker processes."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from _replicas import write_daily_observed, write_nhm_reference

from gagebench.config import load_config
from gagebench.pipeline import run
from gagebench.sources.units import FT3_TO_M3

pytestmark = pytest.mark.integration


def test_kerchunk_store_on_s3_runs_with_crosswalk_and_units(dask_client, s3, bucket_url, tmp_path):
    opts = s3.storage_options
    nhm = write_nhm_reference(tmp_path, remote=f"{bucket_url}/nhm", storage_options=opts)
    obs = write_daily_observed(tmp_path / "obs.zarr", nhm.poi_sites, "2000-01-01", 80, seed=2)
    gages = tmp_path / "gages.csv"
    gages.write_text("site_no\n" + "\n".join(nhm.poi_sites) + "\n")
    cfg = load_config(
        run_id="nhm",
        output=f"{bucket_url}/out",
        gages=str(gages),
        observed={"url": obs},
        models={
            "nhm": {
                "url": "reference://",
                "variable": "seg_outflow",
                "consolidated": False,
                "storage_options": {
                    "fo": nhm.reference,
                    "target_options": opts,
                    "remote_protocol": "s3",
                    "remote_options": opts,
                },
                "crosswalk": {
                    "gage_variable": "poi_gage_id",
                    "feature_variable": "poi_gage_segment",
                },
            }
        },
        storage_options=opts,  # the output's; merged under the store's own options
        report=False,
        min_paired_days=30,  # an 80-day replica (the default needs 365 days)
    )
    result = run(cfg, client=dask_client)
    facts = result.manifest["stores"]["models"]["nhm"]
    assert facts["units"] == "ft3 s-1"
    assert facts["to_m3_per_s"] == pytest.approx(FT3_TO_M3)
    rows = result.results.set_index("site_no")
    assert (rows["status"] == "ok").all()
    assert (rows["n_days"] == 80).all()
    # pbias from xarray's observed values and the written ft3/s flows of each gage's
    # segment, converted by hand (gages 01013500 and 01015800 share segment 7)
    observed = xr.open_zarr(obs)["streamflow"]
    for site, segment in zip(nhm.poi_sites, nhm.poi_segments, strict=True):
        o = observed.sel(gage_id=f"USGS-{site}").to_numpy().astype(np.float64)
        s = nhm.flow_cfs[:, segment - 1].astype(np.float64) * FT3_TO_M3
        pbias = 100 * (s - o).sum() / o.sum()
        assert rows.loc[f"USGS-{site}", "pbias"] == pytest.approx(pbias, rel=1e-9)
