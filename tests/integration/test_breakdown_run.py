"""``gagebench run`` with ``by: [season, water_year]``: a real process on the 2-worker
LocalCluster (``cluster.backend: address``) against the moto S3 server.

It writes ``results_by_<group>.parquet`` and ``<model>/by_<group>.csv`` whose rows equal
``gagebench.evaluate(..., by=...)`` run in this process on the series the run reads; a
run whose commit never happened (its outputs and some parts gone, as a run killed midway
leaves them) is resumed from the parts left and writes the same files, byte for byte.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import pandas as pd
import pytest
import yaml

from expected_results import evaluate_in_process
from gagebench.config import load_config

pytestmark = pytest.mark.integration

BY = ("season", "water_year")


def _run(run_file: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gagebench.cli", "run", "-q", "-c", str(run_file)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=dict(os.environ),
    )


def _expected(settings: dict[str, Any], ids: list[str], by: str) -> pd.DataFrame:
    """``gagebench.evaluate(by=...)`` on each model's gages present in both stores."""
    return evaluate_in_process(load_config(overrides=settings), ids, by=by)


def test_run_writes_breakdowns_equal_to_the_api_and_resumes(
    daily_stores, bucket_url, s3, dask_client, tmp_path
) -> None:
    settings = daily_stores.to_config_dict()
    settings.update(
        {
            "output": bucket_url,
            "run_id": "by",
            "storage_options": s3.storage_options,
            "report": False,
            "batch_size": 5,
            "min_paired_days": 60,
            "by": list(BY),
            "cluster": {
                "backend": "address",
                "address": {"address": dask_client.scheduler.address},
            },
        }
    )
    run_file = tmp_path / "run.yaml"
    run_file.write_text(yaml.safe_dump({"gagebench": settings}))
    done = _run(run_file)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr

    fs = fsspec.filesystem("s3", skip_instance_cache=True, **s3.storage_options)
    root = f"{bucket_url}/by".removeprefix("s3://")
    manifest = json.loads(fs.cat(f"{root}/manifest.json"))
    listed = json.dumps(manifest)
    results = pd.read_parquet(io.BytesIO(fs.cat(f"{root}/results.parquet")))
    models = list(settings["models"])
    files = {}
    for by in BY:
        rel = [f"results_by_{by}.parquet", *(f"{m}/by_{by}.csv" for m in models)]
        for r in rel:
            assert r in listed, r
            files[r] = fs.cat(f"{root}/{r}")
        got = pd.read_parquet(io.BytesIO(files[rel[0]]))
        # every gage x model of results.parquet is in the breakdown
        pairs = set(zip(results["site_no"], results["model"], strict=True))
        assert set(zip(got["site_no"], got["model"], strict=True)) == pairs
        evaluated = got[~got["status"].isin(["not_in_observed", "not_in_model"])]
        want = _expected(settings, sorted({s for s, _ in pairs}), by)
        key = ["model", "site_no", by]
        evaluated = evaluated.sort_values(key).reset_index(drop=True)
        want = want.sort_values(key).reset_index(drop=True)
        assert list(evaluated.columns) == list(want.columns)
        assert evaluated[key].astype(str).values.tolist() == want[key].astype(str).values.tolist()
        assert evaluated["status"].tolist() == want["status"].tolist()
        assert evaluated["n_days"].tolist() == want["n_days"].tolist()
        metrics = [c for c in want.columns if c not in (*key, "n_days", "status", "note")]
        np.testing.assert_allclose(
            evaluated[metrics].to_numpy(float), want[metrics].to_numpy(float), rtol=1e-12
        )
        # each model's CSV holds its rows of the table
        for m in models:
            csv = pd.read_csv(io.BytesIO(files[f"{m}/by_{by}.csv"]), dtype={"site_no": str})
            mine = pd.read_parquet(io.BytesIO(files[rel[0]]))
            mine = mine[mine["model"] == m].reset_index(drop=True)
            assert csv["site_no"].tolist() == mine["site_no"].tolist()
            assert csv[by].astype(str).tolist() == mine[by].astype(str).tolist()
            np.testing.assert_allclose(csv["NSE"], mine["NSE"], rtol=1e-12)
    missing = got[got["status"].isin(["not_in_observed", "not_in_model"])]
    assert len(missing) > 0, "the stores leave gages out: their rows carry the status"

    # As a run killed before its commit leaves it: parts of some batches, no outputs.
    parts = sorted(fs.ls(f"{root}/_parts"))
    batch_parts = [p for p in parts if p.endswith(".parquet")]
    assert len(batch_parts) >= 4
    for p in batch_parts[::2]:
        fs.rm(p)
    fs.rm(f"{root}/manifest.json")
    for r in files:
        fs.rm(f"{root}/{r}")
    resumed = _run(run_file)
    assert resumed.returncode == 0, resumed.stderr
    for r, content in files.items():
        assert fs.cat(f"{root}/{r}") == content, r
