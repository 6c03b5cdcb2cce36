"""A whole run on a CHRTOUT-layout replica on the S3 server, with worker processes:
chunk-aware units give the plain reader's values, record units in the manifest, resume
only missing units and refuse a changed plan."""

from __future__ import annotations

import random

import fsspec
import numpy as np
import pandas as pd
import pytest
from _replicas import write_chrtout, write_daily_observed

from gagebench.config import StoreConfig, load_config
from gagebench.errors import ConfigError
from gagebench.pipeline import evaluate_batch, run
from gagebench.sources.stores import SourceSet, clear_cache

pytestmark = pytest.mark.integration


def test_chunked_run_matches_plain_reads_and_resumes(dask_client, s3, bucket_url, tmp_path):
    rep = write_chrtout(
        tmp_path / "chrtout.zarr", reach_chunks=4, reach_chunk=200, time_chunks=4, gages=90
    )
    fs = fsspec.filesystem("s3", **s3.storage_options)
    model_url = f"{bucket_url}/chrtout.zarr"
    fs.put(rep.path, model_url, recursive=True)
    obs = write_daily_observed(tmp_path / "obs.zarr", rep.sites, "1979-01-30", 20, seed=4)
    sites = list(rep.sites)
    random.Random(5).shuffle(sites)
    gages = tmp_path / "gages.csv"
    pd.DataFrame({"site_no": sites}).to_csv(gages, index=False)
    settings = {
        "run_id": "chunked",
        "output": f"{bucket_url}/out",
        "gages": str(gages),
        "observed": {"url": obs},
        "models": {"nwm": {"url": model_url}},
        "storage_options": s3.storage_options,
        "batch_size": 16,
        "report": False,
        "min_paired_days": 5,  # a 20-day replica: score it (the default needs 365 days)
    }
    cfg = load_config(**settings)
    result = run(cfg, client=dask_client)
    manifest = result.manifest
    assert manifest["stores"]["models"]["nwm"]["units"] == "m3 s-1"
    assert manifest["stores"]["models"]["nwm"]["chunks"] == {"time": 96, "gage": 200}
    n_units = manifest["batches"]["total"]
    assert n_units == 4  # one unit per reach chunk column, whatever the list order

    # The same gages through the plain reader (zarr orthogonal indexing of whole columns).
    clear_cache()
    plain = SourceSet(
        StoreConfig(obs), {"nwm": StoreConfig(model_url, "streamflow", s3.storage_options)}
    )
    ids = [f"USGS-{s}" for s in sites]
    expected = evaluate_batch(
        plain, ids, ["nwm"], cfg.suites, cfg.mode, cfg.min_paired_days
    ).set_index("site_no")
    got = result.results.set_index("site_no").loc[expected.index]
    assert (got["status"] == expected["status"]).all()
    assert (got["status"] == "ok").any()
    for column in ("NSE", "KGE", "logNSE", "pbias", "spearman", "mse", "e_seq"):
        np.testing.assert_allclose(got[column], expected[column], rtol=1e-9, equal_nan=True)

    # Resume: drop the manifest, results and one unit's part; only that unit is computed.
    run_url = result.run_url
    fs.rm(f"{run_url}/manifest.json")
    fs.rm(f"{run_url}/results.parquet")
    fs.rm(f"{run_url}/_parts/batch-00002.parquet")
    again = run(cfg, client=dask_client)
    assert again.manifest["batches"]["computed"] == 1
    assert again.manifest["batches"]["reused"] == n_units - 1
    pd.testing.assert_frame_equal(
        again.results.sort_values("site_no").reset_index(drop=True),
        result.results.sort_values("site_no").reset_index(drop=True),
    )

    # A changed gage list is another plan: refused, never mixed with these parts.
    fs.rm(f"{run_url}/manifest.json")
    pd.DataFrame({"site_no": sites[:-1]}).to_csv(gages, index=False)
    with pytest.raises(ConfigError, match="different plan"):
        run(load_config(**settings), client=dask_client)
