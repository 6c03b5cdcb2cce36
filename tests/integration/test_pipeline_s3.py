"""The whole job against a real S3 API server and real Dask worker processes.

synth -> run -> outputs read back from S3 and compared with ``gagebench.evaluate`` run in
this process on the same stores; gages missing from stores; an hourly feature_id-indexed
model store.
"""

from __future__ import annotations

import io
import json
from importlib import resources
from typing import Any

import fsspec
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from expected_results import evaluate_in_process
from gagebench.config import RunConfig, load_config
from gagebench.evaluation import evaluate
from gagebench.pipeline import run
from gagebench.results.writer import suite_csv_columns
from gagebench.synth import synthesize

pytestmark = pytest.mark.integration


def config_for(stores: Any, output: str, s3: Any, **settings: Any) -> RunConfig:
    """A run on the stores, writing to ``output``, with the server's storage options."""
    base = stores.to_config_dict()
    base.update(
        {
            "output": output,
            "run_id": "it",
            "batch_size": 5,
            "storage_options": s3.storage_options,
            "report": False,
        }
    )
    base.update(settings)
    return load_config(overrides=base)


def store_ids(url: str, s3: Any) -> set[str]:
    """Gage ids a zarr store holds, read with xarray (independently of gagebench.sources.stores)."""
    ds = xr.open_zarr(fsspec.get_mapper(url, **s3.storage_options), consolidated=None)
    return {_gage_text(v) for v in ds["gage_id"].to_numpy()}


def _gage_text(value: Any) -> str:
    """``USGS-<site_no>`` from a store's id (NWM stores hold space-padded byte site numbers)."""
    text = (value.decode() if isinstance(value, bytes) else str(value)).strip()
    return text if text.startswith("USGS-") else f"USGS-{text}"


def builtin_site_nos() -> list[str]:
    """Site numbers of the packaged gage list, read with pandas."""
    path = resources.files("gagebench") / "data" / "streamflow_gages_v1_n5390.csv"
    with resources.as_file(path) as local:
        return pd.read_csv(local, dtype={"site_no": str})["site_no"].tolist()


def read_s3(url: str, s3: Any) -> bytes:
    with fsspec.open(url, "rb", **s3.storage_options) as fh:
        return fh.read()


def test_run_on_s3_matches_in_process_evaluate(daily_stores, bucket_url, s3, dask_client) -> None:
    cfg = config_for(daily_stores, bucket_url, s3, report=True)
    result = run(cfg, client=dask_client)
    run_url = f"{bucket_url}/it"
    assert result.run_url == run_url

    got = pd.read_parquet(io.BytesIO(read_s3(f"{run_url}/results.parquet", s3)))
    n_gages = daily_stores.n_gages
    ids = [f"USGS-{s}" for s in builtin_site_nos()[:n_gages]]
    # every gage exactly once per model
    assert sorted(got["site_no"].unique()) == sorted(ids)
    assert len(got) == n_gages * 2
    assert not got.duplicated(["site_no", "model"]).any()

    # gages missing from a store: statuses match what the stores hold
    obs_ids = store_ids(daily_stores.observed_url, s3)
    for model, url in daily_stores.model_urls.items():
        rows = got[got.model == model].set_index("site_no")
        model_ids = store_ids(url, s3)
        not_obs = {g for g in ids if g not in obs_ids}
        not_model = {g for g in ids if g in obs_ids and g not in model_ids}
        assert set(rows.index[rows.status == "not_in_observed"]) == not_obs
        assert set(rows.index[rows.status == "not_in_model"]) == not_model
    assert (got.status.isin(["not_in_observed", "not_in_model"])).any(), "synth left none out"

    # metrics identical to gagebench.evaluate in this process
    expected = evaluate_in_process(cfg, ids).set_index(["model", "site_no"]).sort_index()
    evaluated = got.set_index(["model", "site_no"]).loc[expected.index]
    metric_cols = [
        c for c in expected.columns if c not in ("first_day", "last_day", "status", "note")
    ]
    np.testing.assert_allclose(
        evaluated[metric_cols].to_numpy(float), expected[metric_cols].to_numpy(float), rtol=1e-12
    )
    assert (evaluated["status"] == expected["status"]).all()
    assert (evaluated["first_day"] == expected["first_day"]).all()

    # HyTEST CSVs per model, column names and order, same numbers as the parquet
    for model in cfg.models:
        for suite, name in (("standard", "standard_suite.csv"), ("dscore", "dscore.csv")):
            table = pd.read_csv(
                io.BytesIO(read_s3(f"{run_url}/{model}/{name}", s3)), dtype={"site_no": str}
            )
            assert list(table.columns) == suite_csv_columns(suite)
            assert sorted(table.site_no) == sorted(ids)
            col = "KGE" if suite == "standard" else "e_seq"
            ref = got[got.model == model].set_index("site_no")[col]
            np.testing.assert_allclose(
                table.set_index("site_no")[col].to_numpy(float),
                ref.loc[table.site_no].to_numpy(float),
                rtol=1e-12,
            )

    manifest = json.loads(read_s3(f"{run_url}/manifest.json", s3))
    # the report, written before the manifest, shows the manifest's provenance
    assert "report.html" in manifest["outputs"]
    page = read_s3(f"{run_url}/report.html", s3).decode()
    assert "<html" in page.lower()
    assert manifest["run_id"] in page
    assert manifest["run_id"] == "it"
    assert manifest["batches"] == {"total": 5, "batch_size": 5, "reused": 0, "computed": 5}
    for model in cfg.models:
        counts = got[got.model == model].status.value_counts().to_dict()
        assert manifest["counts"][model] == counts
    assert manifest["config"]["storage_options"]["secret"] == "***"
    assert s3.secret not in json.dumps(manifest)

    # a second run with the same id is complete already: nothing recomputed
    again = run(cfg, client=dask_client)
    assert again.already_complete
    assert again.manifest == manifest
    # ... unless forced: then every batch is computed again.
    forced = run(cfg, client=dask_client, force=True)
    assert not forced.already_complete
    assert forced.manifest["batches"]["computed"] == 5
    assert forced.manifest["timings"]["started"] != manifest["timings"]["started"]


def test_gage_list_with_unknown_gage(daily_stores, bucket_url, s3, dask_client) -> None:
    site_nos = builtin_site_nos()[:6]
    listing = pd.DataFrame({"site_no": [*site_nos, "99999999"]})
    with fsspec.open(f"{bucket_url}/gages.csv", "wb", **s3.storage_options) as fh:
        fh.write(listing.to_csv(index=False).encode())
    cfg = config_for(daily_stores, bucket_url, s3, gages=f"{bucket_url}/gages.csv", gage_limit=None)
    got = run(cfg, client=dask_client).results
    assert len(got) == 7 * 2
    unknown = got[got.site_no == "USGS-99999999"]
    assert list(unknown.status) == ["not_in_observed", "not_in_observed"]
    assert (unknown.n_days == 0).all()
    assert unknown[["NSE", "KGE", "mse"]].isna().all().all()


def test_hourly_feature_id_model_store(bucket_url, s3, dask_client) -> None:
    stores = synthesize(
        f"{bucket_url}/stores",
        n_gages=8,
        seed=5,
        models=("nwm",),
        frequency="hourly",
        model_index="feature_id",
        missing_fraction=0.0,
        storage_options=s3.storage_options,
        start="2003-01-01",
        end="2005-12-31",
    )
    cfg = config_for(stores, bucket_url, s3, batch_size=3, gage_limit=8)
    got = run(cfg, client=dask_client).results
    assert len(got) == 8
    assert got.status.isin(["ok", "partial"]).all(), got[["site_no", "status", "note"]]

    # Independent daily means: xarray resample (1 day, 5 h offset) of the raw hourly store.
    raw = xr.open_zarr(fsspec.get_mapper(stores.model_urls["nwm"], **s3.storage_options))
    site = got.site_no.iloc[0]
    ids = [_gage_text(v) for v in raw["gage_id"].to_numpy()]
    hourly = raw["streamflow"].isel(feature_id=ids.index(site)).to_series()
    daily = hourly.resample("1D", offset="5h").mean()
    daily.index = daily.index.floor("D")
    obs = xr.open_zarr(fsspec.get_mapper(stores.observed_url, **s3.storage_options))
    o = obs["streamflow"].sel(gage_id=site).to_series()
    o.index = o.index.floor("D")
    ref = evaluate(o, daily.reindex(o.index), suites=("standard",))
    np.testing.assert_allclose(got.iloc[0]["NSE"], ref["NSE"].iloc[0], rtol=1e-5)
    np.testing.assert_allclose(got.iloc[0]["KGE"], ref["KGE"].iloc[0], rtol=1e-5)
