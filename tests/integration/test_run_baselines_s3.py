"""A run file with ``baselines:`` through the real ``gagebench run`` entry point, on the
2-worker LocalCluster (``cluster.backend: address``) and a real S3 API (moto server):
HyTEST's published NWM v2.1 table is served beside the run, plus a baseline that cannot
be read. The results are committed whatever the baselines do; the report's section
"Against published benchmarks", the manifest, the summary and the run card give the
numbers C's ``compare(run, baseline=...)`` gives, and a pandas median checks them."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import pandas as pd
import pytest
import yaml

from gagebench.baselines import BaselineSource
from gagebench.ids import canonical_id
from gagebench.pipeline import RunResult
from gagebench.report.comparison import compare

pytestmark = pytest.mark.integration

DATA = Path(__file__).parents[1] / "data" / "published"
NWM_CSV = DATA / "NWM_v2.1_streamflow_example.csv"
_SCRIPT = Path(sys.executable).with_name("gagebench")
GAGEBENCH = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "gagebench.cli"]


@pytest.fixture(scope="module")
def baseline_run(
    daily_stores: Any, s3: Any, dask_client: Any, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """One ``gagebench run`` with two baselines: NWM v2.1's published table, and one at a
    key that does not exist."""
    prefix = f"s3://gagebench-it/baselines-run-{uuid.uuid4().hex[:8]}"
    fs = fsspec.filesystem("s3", **s3.storage_options)
    table_url = f"{prefix}/published/nwm_v21.csv"
    fs.pipe_file(table_url, NWM_CSV.read_bytes())
    settings = daily_stores.to_config_dict()
    settings.update(
        {
            "output": f"{prefix}/out",
            "run_id": "with-baselines",
            "storage_options": s3.storage_options,
            "report": True,
            "progress": False,
            "cluster": {
                "backend": "address",
                "address": {"address": dask_client.scheduler.address},
            },
            "baselines": {
                "nwm_v21": {"url": table_url, "storage_options": s3.storage_options},
                "missing": {
                    "url": f"{prefix}/published/no-such-table.csv",
                    "storage_options": s3.storage_options,
                },
            },
        }
    )
    run_file = tmp_path_factory.mktemp("runfile") / "run.yaml"
    run_file.write_text(yaml.safe_dump({"gagebench": settings}))
    proc = subprocess.run(
        [*GAGEBENCH, "run", "--config", str(run_file)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    run_url = f"{prefix}/out/with-baselines"
    return {
        "proc": proc,
        "run_url": run_url,
        "table_url": table_url,
        "fs": fs,
        "options": s3.storage_options,
        "secret": s3.secret,
    }


def _pandas_median_kge_diff(results: pd.DataFrame, model: str) -> tuple[float, int]:
    """Median of (run KGE − published KGE) over gages both have a finite KGE: pandas only."""
    run = results[results["model"] == model][["site_no", "KGE"]].copy()
    run["site_no"] = [canonical_id(str(s)) for s in run["site_no"]]
    published = pd.read_csv(NWM_CSV, dtype={"site_no": str})[["site_no", "KGE"]]
    both = run.merge(published, on="site_no", suffixes=("_run", "_pub"))
    both = both[np.isfinite(both["KGE_run"]) & np.isfinite(both["KGE_pub"])]
    return float((both["KGE_run"] - both["KGE_pub"]).median()), len(both)


def test_a_run_with_baselines_reports_the_published_comparison(
    baseline_run: dict[str, Any],
) -> None:
    proc, fs, run_url = baseline_run["proc"], baseline_run["fs"], baseline_run["run_url"]
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    manifest = json.loads(fs.cat_file(f"{run_url}/manifest.json"))
    results = pd.read_parquet(f"{run_url}/results.parquet", storage_options=baseline_run["options"])
    models = list(dict.fromkeys(results["model"].astype(str)))
    assert len(models) == 2  # each run model is compared with each baseline
    page = fs.cat_file(f"{run_url}/report.html").decode()
    assert "Against published benchmarks" in page
    entry = manifest["baselines"]["nwm_v21"]
    assert entry["status"] == "compared"
    source = BaselineSource(baseline_run["table_url"], baseline_run["options"])
    for model in models:
        theirs = compare(
            run_url,
            baseline={"nwm_v21": source},
            models=[model],
            storage_options=baseline_run["options"],
        )
        kge: dict[Any, Any] = theirs.summary.set_index("metric").loc["KGE"].to_dict()
        ours = entry["models"][model]
        assert ours["median_KGE_diff"] == pytest.approx(float(kge["median_diff"]), abs=0)
        assert ours["n_paired_KGE"] == int(kge["n_paired"])
        assert ours["gages_only_in_run"] == len(theirs.only_a)
        assert ours["gages_only_in_baseline"] == len(theirs.only_b)
        median, n = _pandas_median_kge_diff(results, model)
        assert ours["median_KGE_diff"] == pytest.approx(median, rel=1e-12)
        assert ours["n_paired_KGE"] == n > 0
        # the report's figure and paired summary of this pair; the summary's line
        assert f"{model} vs nwm_v21" in page
        assert f"Paired summary, {model} (A) vs nwm_v21 (B)" in page
        # the paired summary's row of KGE, as the report's table writes its cells
        cells = [f"{kge[c]:.3f}" for c in ("median_a", "median_b", "median_diff")]
        assert "</td><td>".join(cells) in page.replace("\n", "").replace(" ", "")
        assert f"{model} − nwm_v21 median per-gage difference: KGE {median:+.3f}" in proc.stdout
    assert fs.exists(f"{run_url}/figures/compare_{models[0]}_vs_nwm_v21.png")
    # the gages only the baseline has are counted in the page (5380 published, 24 run)
    assert "only in nwm_v21, not compared" in page
    assert "Where each model wins on KGE, by ecoregion" in page
    assert "beyond sampling noise, judged by none: no 90 % interval" in page
    manifest_text = fs.cat_file(f"{run_url}/manifest.json").decode()
    assert baseline_run["secret"] not in page + proc.stdout + proc.stderr + manifest_text


def test_an_unreadable_baseline_keeps_the_results_and_says_so(
    baseline_run: dict[str, Any],
) -> None:
    proc, fs, run_url = baseline_run["proc"], baseline_run["fs"], baseline_run["run_url"]
    assert proc.returncode == 0, proc.stderr  # the results are complete: exit 0 (errors.md)
    assert fs.exists(f"{run_url}/results.parquet")
    manifest = json.loads(fs.cat_file(f"{run_url}/manifest.json"))
    assert manifest["status"] == "complete"
    failed = manifest["baselines"]["missing"]
    assert failed["status"] == "failed"
    assert "no-such-table.csv" in failed["error"]
    assert "\n" not in failed["error"]
    assert any("the baseline 'missing' could not be compared" in w for w in manifest["warnings"])
    assert "baseline missing: FAILED, not compared:" in proc.stdout
    warnings = [ln for ln in proc.stderr.splitlines() if "the baseline 'missing'" in ln]
    assert len(warnings) == 1, proc.stderr  # logged once
    page = fs.cat_file(f"{run_url}/report.html").decode()
    assert "baseline missing: failed: " in page
    assert baseline_run["secret"] not in failed["error"] + proc.stderr


def test_the_run_card_shows_the_median_difference_against_each_baseline(
    baseline_run: dict[str, Any],
) -> None:
    fs, run_url = baseline_run["fs"], baseline_run["run_url"]
    manifest = json.loads(fs.cat_file(f"{run_url}/manifest.json"))
    results = pd.read_parquet(f"{run_url}/results.parquet", storage_options=baseline_run["options"])
    card = RunResult(run_url, manifest, results)._repr_html_()
    assert "against published baselines" in card
    for model in dict.fromkeys(results["model"].astype(str)):
        median, _ = _pandas_median_kge_diff(results, model)
        assert f"{median:+.3f}" in card
    assert "missing" in card
    assert "no-such-table.csv" in card


def test_report_with_a_baseline_adds_the_section_to_any_run(
    baseline_run: dict[str, Any], s3: Any, tmp_path: Path
) -> None:
    run_url, options = baseline_run["run_url"], baseline_run["options"]
    out = tmp_path / "report.html"
    read = [f"--storage-option={k}={v}" for k, v in options.items()]
    base = [f"--baseline-option={k}={v}" for k, v in options.items()]
    proc = subprocess.run(
        [
            *GAGEBENCH,
            "report",
            run_url,
            "--output",
            str(out),
            "--baseline",
            f"nwm_v21={baseline_run['table_url']}",
            *read,
            *base,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    page = out.read_text()
    assert "Against published benchmarks" in page
    results = pd.read_parquet(f"{run_url}/results.parquet", storage_options=options)
    for model in dict.fromkeys(results["model"].astype(str)):
        assert f"Paired summary, {model} (A) vs nwm_v21 (B)" in page
    assert s3.secret not in page + proc.stdout + proc.stderr
