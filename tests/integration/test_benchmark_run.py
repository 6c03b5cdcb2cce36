"""The benchmark suite through ``gagebench run`` (the real entry point, in a subprocess) on
the session's 2-worker LocalCluster, with stores and run folder on a real S3 API (moto on
127.0.0.1): ``<model>/benchmark.csv`` with its columns, the same values as the in-process
engine, the report's share of gages beating their benchmark and its KGE_skill map, and the
summary's line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import pandas as pd
import pytest
import yaml

from gagebench.report.html import BEATS_BENCHMARK

pytestmark = pytest.mark.integration

_SCRIPT = Path(sys.executable).with_name("gagebench")
GAGEBENCH = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "gagebench.cli"]


@pytest.mark.timeout(300)
def test_run_writes_benchmark_csv_report_and_summary(
    daily_stores: Any, bucket_url: str, s3: Any, dask_client: Any, tmp_path: Path
) -> None:
    settings = {
        **daily_stores.to_config_dict(),
        "output": bucket_url,
        "run_id": "bench",
        "batch_size": 5,
        "storage_options": s3.storage_options,
        "suites": ["standard", "benchmark"],
        "report": True,
    }
    cfg = tmp_path / "run.yaml"
    cfg.write_text(yaml.safe_dump({"gagebench": settings}))
    address = dask_client.scheduler.address
    result = subprocess.run(
        [*GAGEBENCH, "run", "-c", str(cfg), "--set", "cluster.backend=address",
         "--set", f"cluster.address.address={address}"],
        capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert s3.secret not in result.stdout + result.stderr
    run = f"{bucket_url}/bench"
    options = s3.storage_options
    with fsspec.open(f"{run}/results.parquet", "rb", **options) as fh:
        results = pd.read_parquet(fh)
    for model in ("nwm", "nhm"):
        with fsspec.open(f"{run}/{model}/benchmark.csv", "rt", **options) as fh:
            csv = pd.read_csv(fh, dtype={"site_no": str})
        assert list(csv.columns) == ["site_no", "KGE_bench", "NSE_bench", "KGE_skill", "NSE_skill"]
        rows = results[results["model"] == model].set_index("site_no")
        assert csv["site_no"].tolist() == rows.index.tolist()
        evaluated = rows["status"].isin(["ok", "partial"]).to_numpy()
        assert evaluated.sum() >= 15
        skill = csv["KGE_skill"].to_numpy()
        assert np.isfinite(skill[evaluated]).all()
        np.testing.assert_allclose(skill, rows["KGE_skill"].to_numpy(), rtol=1e-12)
        # the skill is the standard suite's KGE against the benchmark's
        kge, bench = rows["KGE"].to_numpy(), rows["KGE_bench"].to_numpy()
        np.testing.assert_allclose(skill, (kge - bench) / (1 - bench), rtol=1e-12, atol=1e-12)
    # the summary printed at the end and the report give each model's share
    shares = {
        str(m): float((part["KGE_skill"].dropna() > 0).mean())
        for m, part in results.groupby("model")
    }
    assert "beats its day-of-year benchmark (KGE_skill > 0):" in result.stdout
    for name, share in shares.items():
        assert f"{name}: {share:.0%} of " in result.stdout
    with fsspec.open(f"{run}/report.html", "rt", **options) as fh:
        page = fh.read()
    # the header may break after its underscore (<wbr>)
    assert BEATS_BENCHMARK.split("_", 1)[1].replace(">", "&gt;") in page
    for share in shares.values():
        assert f"<td>{share:.0%}</td>" in page
    assert "Map of KGE skill against the day-of-year benchmark" in page
    fs = fsspec.filesystem("s3", **options)
    assert fs.exists(f"{run}/figures/map_kge_skill.png")
