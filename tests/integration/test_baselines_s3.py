"""Published baselines served by a real S3 API (moto server on 127.0.0.1): HyTEST's tables
at the keys its catalog names, in a bucket ``hytest``, and a copy of the catalog whose
``client_kwargs.endpoint_url`` points at the server. Read through the catalog (intake)
and through ``gagebench compare --baseline`` in a subprocess: values exactly as
published, paired numbers as pandas computes them, errors as docs/errors.md says."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pandas as pd
import pytest
import yaml

from baseline_fixtures import sample_run
from gagebench.baselines import BaselineSource, read_baseline
from gagebench.errors import StorageError
from gagebench.report.comparison import compare

pytestmark = pytest.mark.integration

DATA = Path(__file__).parents[1] / "data" / "published"
_SCRIPT = Path(sys.executable).with_name("gagebench")
GAGEBENCH = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "gagebench.cli"]
NWM_ENTRY = "nwm2d1-standardsuite-osn"
#: catalog entry -> the file of tests/data/published served at its urlpath
SERVED = {
    NWM_ENTRY: "NWM_v2.1_streamflow_example.csv",
    "nwm2d1-dscore-osn": "DScore_streamflow_example.csv",
    "nwm2d1-standardsuite-KGE-uncertainty-osn": "KGE_gumbootStats_nwmv21_example.csv",
}


@pytest.fixture(scope="module")
def served(s3: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The tables at the catalog's keys; the catalog copy on the server and as a local
    file (as a user who downloaded it has it); a run's results file on the server."""
    client = boto3.client(
        "s3",
        endpoint_url=s3.endpoint,
        region_name="us-east-1",
        aws_access_key_id=s3.key,
        aws_secret_access_key=s3.secret,
    )
    catalog = yaml.safe_load((DATA / "streamflow-benchmarks-catalog.yml").read_text())
    if "hytest" not in {b["Name"] for b in client.list_buckets()["Buckets"]}:
        client.create_bucket(Bucket="hytest")
    for entry, source in catalog["sources"].items():
        source["args"]["storage_options"]["client_kwargs"]["endpoint_url"] = s3.endpoint
        if entry in SERVED:
            key = source["args"]["urlpath"].removeprefix("s3://hytest/")
            client.upload_file(str(DATA / SERVED[entry]), "hytest", key)
    prefix = f"baselines-{uuid.uuid4().hex[:8]}"
    client.put_object(
        Bucket="gagebench-it", Key=f"{prefix}/catalog.yml", Body=yaml.safe_dump(catalog).encode()
    )
    local = tmp_path_factory.mktemp("catalog") / "streamflow-benchmarks-catalog.yml"
    local.write_text(yaml.safe_dump(catalog))
    results, _ = sample_run()
    url = f"s3://gagebench-it/{prefix}/results.parquet"
    results.to_parquet(url, storage_options=s3.storage_options)
    return {
        "s3_catalog": f"s3://gagebench-it/{prefix}/catalog.yml",
        "catalog": str(local),
        "results": url,
        "frame": results,
    }


def user_options(s3: Any) -> dict[str, Any]:
    """The catalog says anon: true; this server wants its key: the caller's options win
    (the endpoint comes from the catalog's client_kwargs)."""
    return {"anon": False, "key": s3.key, "secret": s3.secret}


def test_catalog_entries_over_s3_give_the_published_values(s3: Any, served: dict[str, Any]) -> None:
    base = read_baseline(
        "nwm",
        [f"{served['catalog']}#{NWM_ENTRY}", f"{served['catalog']}#nwm2d1-dscore-osn"],
        storage_options=user_options(s3),
        uncertainty=f"{served['catalog']}#nwm2d1-standardsuite-KGE-uncertainty-osn",
    )
    local = pd.read_csv(DATA / SERVED[NWM_ENTRY], dtype={"site_no": str}).set_index("site_no")
    table = base.table.set_index("site_no")
    for col in local.columns:  # exactly, NaN where HyTEST left the cell empty
        np.testing.assert_array_equal(table.loc[local.index, col], local[col])
    assert np.isneginf(table["pBiasFLV"]).sum() == np.isneginf(local["pBiasFLV"]).sum() > 0
    assert base.uncertainty is not None
    assert len(base.uncertainty) == 200


def test_the_catalogs_anon_reaches_the_reader(s3: Any, served: dict[str, Any]) -> None:
    """Without the caller's key the entry is read anonymously, as the catalog says, and
    this server refuses that: the error names the table's URL and what to check."""
    with pytest.raises(StorageError) as info:
        read_baseline("nwm", f"{served['catalog']}#{NWM_ENTRY}")
    text = str(info.value)
    assert "s3://hytest/benchmarks/streamflow/nwmv2d1/standard_suite_v1_nwmv2d1_V2.csv" in text
    assert "anon" in text


def test_python_api_over_s3_matches_pandas(s3: Any, served: dict[str, Any]) -> None:
    options = user_options(s3)
    result = compare(
        served["results"],
        storage_options=s3.storage_options,
        baseline={"nwm": BaselineSource(f"{served['catalog']}#{NWM_ENTRY}", options)},
    )
    run = served["frame"]
    ref = run.assign(site_no="USGS-" + run["site_no"].str.removeprefix("USGS-")).merge(
        pd.read_csv(DATA / SERVED[NWM_ENTRY], dtype={"site_no": str}),
        on="site_no",
        suffixes=("_a", "_b"),
    )
    diff = ref["KGE_a"] - ref["KGE_b"]
    row = result.summary.set_index("metric").loc["KGE"]
    assert row["median_diff"] == pytest.approx(diff.median(), rel=1e-12)
    assert row["n_paired"] == len(ref)
    assert result.only_a == ("USGS-99999990", "USGS-99999991")


def gagebench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*GAGEBENCH, *args], capture_output=True, text=True, timeout=180, check=False
    )


def test_cli_compare_with_a_published_baseline(
    s3: Any, served: dict[str, Any], tmp_path: Path
) -> None:
    cat = served["s3_catalog"]  # the catalog on the server too: the caller names its endpoint
    out = tmp_path / "vs.csv"
    result = gagebench(
        "compare",
        served["results"],
        "--storage-option",
        f"endpoint_url={s3.endpoint}",
        "--baseline",
        f"nwm={cat}#{NWM_ENTRY}",
        "--baseline",
        f"nwm={cat}#nwm2d1-dscore-osn",
        "--baseline-uncertainty",
        f"nwm={cat}#nwm2d1-standardsuite-KGE-uncertainty-osn",
        "--baseline-option",
        f"endpoint_url={s3.endpoint}",
        "--baseline-option",
        "anon=false",
        "--baseline-option",
        f"key={s3.key}",
        "--baseline-option",
        f"secret={s3.secret}",
        "--models",
        "mine",
        "--output",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert s3.secret not in result.stdout + result.stderr
    assert "gages only in the run (not compared): 2: USGS-99999990, USGS-99999991" in result.stdout
    assert "gages only in the baseline (not compared): 5368" in result.stdout
    assert "verdict (beyond sampling noise): both 90 % intervals" in result.stdout
    table = pd.read_csv(out, dtype={"site_no": str}).set_index("site_no")
    local = pd.read_csv(DATA / SERVED[NWM_ENTRY], dtype={"site_no": str}).set_index("site_no")
    np.testing.assert_array_equal(table.loc[local.index, "KGE_b"], local["KGE"])
    assert {"mse_a", "mse_b", "mse_diff", "e_seq_b", "KGE_beyond", "found_in"} <= set(table.columns)


@pytest.mark.parametrize(
    ("baseline", "text"),
    [
        ("nwm={cat}#nwm21-standardsuite", "has no entry 'nwm21-standardsuite'; its entries are: "),
        ("nwm=s3://gagebench-it/nowhere/x.csv", "cannot read the baseline 'nwm'"),
        ("nwm", "write --baseline NAME=URL"),
    ],
)
def test_cli_baseline_errors_are_one_line(
    s3: Any, served: dict[str, Any], baseline: str, text: str
) -> None:
    result = gagebench(
        "compare",
        served["results"],
        "--storage-option",
        f"endpoint_url={s3.endpoint}",
        "--baseline",
        baseline.format(cat=served["catalog"]),
        "--baseline-option",
        f"secret={s3.secret}",
        "--baseline-option",
        f"key={s3.key}",
    )
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1, result.stderr
    assert text in errors[0], errors[0]
    assert s3.secret not in result.stdout + result.stderr
