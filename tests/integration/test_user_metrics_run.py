"""User metrics in a run: ``metrics: ["package.module:function"]`` imported by real worker
processes (a 2-worker LocalCluster whose PYTHONPATH holds the module), against a real S3
API server; and the one-line error of a module the workers cannot import, through the CLI.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import pandas as pd
import pytest
import xarray as xr
import yaml

from gagebench.config import load_config
from gagebench.pipeline import run

pytestmark = pytest.mark.integration

MODULE = "usermetrics_it"

SOURCE = textwrap.dedent(
    """
    import numpy as np
    import gagebench

    @gagebench.metric("mean_abs_error_it", higher_is_better=False, optimal=0.0)
    def mean_abs_error_it(obs, sim):
        return float(np.mean(np.abs(sim - obs)))

    def flaky_it(obs, sim):
        if obs.size > 2000:
            raise ValueError("record longer than 2000 days")
        return float(obs.size)
    """
)


def _write_module(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{MODULE}.py").write_text(SOURCE)
    return folder


def _read(url: str, s3: Any) -> bytes:
    with fsspec.open(url, "rb", **s3.storage_options) as fh:
        return fh.read()


def _series(url: str, s3: Any) -> pd.DataFrame:
    """A store's flows as (day x gage id) with pandas/xarray, independently of gagebench."""
    ds = xr.open_zarr(fsspec.get_mapper(url, **s3.storage_options), consolidated=None)
    var = next(v for v in ds.data_vars if ds[v].ndim == 2)
    da = ds[var]
    gdim = next(d for d in da.dims if d != "time")
    frame = da.transpose("time", gdim).to_pandas()
    frame.columns = [
        (v.decode() if isinstance(v, bytes) else str(v)).strip() for v in ds["gage_id"].to_numpy()
    ]
    return frame


def test_a_run_computes_user_metrics_on_worker_processes(
    daily_stores, bucket_url, s3, tmp_path, monkeypatch
) -> None:
    from distributed import Client, LocalCluster

    folder = _write_module(tmp_path / "mods")
    assert MODULE not in sys.modules
    settings = daily_stores.to_config_dict()
    settings.update(
        output=bucket_url,
        run_id="um",
        batch_size=5,
        storage_options=s3.storage_options,
        report=False,
        metrics=[f"{MODULE}:mean_abs_error_it", f"{MODULE}:flaky_it"],
        min_paired_days=30,
    )
    cfg = load_config(overrides=settings)
    # On the PYTHONPATH of the process that starts the cluster, as a user of a local
    # cluster does: its spawned workers start with that process's sys.path.
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join([str(folder), *filter(None, [os.environ.get("PYTHONPATH")])])
    )
    monkeypatch.syspath_prepend(str(folder))
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            memory_limit="2GiB",
        ) as cluster,
        Client(cluster) as client,
    ):
        run(cfg, client=client)
    assert MODULE not in sys.modules  # only the workers imported it

    got = pd.read_parquet(io.BytesIO(_read(f"{bucket_url}/um/results.parquet", s3)))
    cols = list(got.columns)
    assert cols.index("mean_abs_error_it") > cols.index("KGE")
    assert cols[-7:-5] == ["mean_abs_error_it", "flaky_it"]
    observed = _series(daily_stores.observed_url, s3)
    checked = 0
    for model, url in daily_stores.model_urls.items():
        sim_all = _series(url, s3)
        rows = got[got["model"] == model].set_index("site_no")
        csv = pd.read_csv(
            io.BytesIO(_read(f"{bucket_url}/um/{model}/user_metrics.csv", s3)),
            dtype={"site_no": str},
        ).set_index("site_no")
        assert list(csv.columns) == ["mean_abs_error_it", "flaky_it"]
        for site, row in rows.iterrows():
            if row["status"] not in ("ok", "partial"):
                assert np.isnan(row["mean_abs_error_it"])
                continue
            o = observed[site].to_numpy(float)
            s = sim_all[site].reindex(observed.index).to_numpy(float)
            keep = np.isfinite(o) & np.isfinite(s)
            expected = np.mean(np.abs(s[keep] - o[keep]))
            assert row["mean_abs_error_it"] == pytest.approx(expected, rel=1e-12)
            assert csv.loc[site, "mean_abs_error_it"] == pytest.approx(expected, rel=1e-12)
            if keep.sum() > 2000:  # the flaky metric raised: a partial row naming it
                assert np.isnan(row["flaky_it"])
                assert row["status"] == "partial"
                assert "'flaky_it' raised ValueError: record longer than 2000 days" in row["note"]
            else:
                assert row["flaky_it"] == keep.sum()
            checked += 1
    assert checked >= 20

    # compare, through the CLI, ranks the user metric as its decorator says (lower is
    # better); the module is imported from the run's manifest (it is on PYTHONPATH here)
    models = list(daily_stores.model_urls)
    opts = [f"--storage-option={k}={v}" for k, v in s3.storage_options.items()]
    proc = subprocess.run(
        [sys.executable, "-m", "gagebench.cli", "compare", f"{bucket_url}/um", *opts,
         "--metrics", "mean_abs_error_it", "KGE"],
        capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    header = next(x for x in lines if x.split()[:1] == ["metric"]).split()
    line = next(x for x in lines if x.split()[:1] == ["mean_abs_error_it"]).split()
    summary = dict(zip(header, line, strict=True))
    a = got[got["model"] == models[0]].set_index("site_no")["mean_abs_error_it"]
    b = got[got["model"] == models[1]].set_index("site_no")["mean_abs_error_it"]
    both = pd.concat([a, b], axis=1, keys=["a", "b"]).dropna()
    share_a = float((both["a"] < both["b"]).mean())
    assert float(summary["share_a_better"]) == pytest.approx(share_a, abs=1e-6)
    assert int(summary["n_paired"]) == len(both)


def test_a_module_the_workers_cannot_import_is_one_clear_error(
    daily_stores, bucket_url, s3, tmp_path
) -> None:
    settings = daily_stores.to_config_dict()
    settings.update(
        output=bucket_url,
        run_id="um-missing",
        storage_options=s3.storage_options,
        report=False,
        metrics=["no_such_metrics_pkg.peaks:peak_bias"],
        cluster={"backend": "local", "local": {"n_workers": 1, "memory_limit": "1GiB"}},
    )
    run_file = tmp_path / "run.yaml"
    run_file.write_text(yaml.safe_dump({"gagebench": settings}))
    proc = subprocess.run(
        [sys.executable, "-m", "gagebench.cli", "run", "--config", str(run_file)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "no_such_metrics_pkg" in proc.stderr
    assert "cannot import" in proc.stderr
    assert "PYTHONPATH" in proc.stderr
    assert "worker" in proc.stderr
    # one error at the start: no batch was computed
    fs = fsspec.filesystem("s3", skip_instance_cache=True, **s3.storage_options)
    parts = fs.glob(f"{bucket_url}/um-missing/_parts/batch-*.parquet".removeprefix("s3://"))
    assert parts == []
