"""Issue 23's parts together in one real run (reviewer V-combo): ``gagebench run`` in a
subprocess starting its own 2-worker LocalCluster (worker processes whose PYTHONPATH holds
a user-metric module), against the moto S3 server, with every new suite, every breakdown
and a user metric at once.

Checked: ``results.parquet``, ``results_by_<group>.parquet`` and every ``<model>/*.csv``
agree with each other and with ``gagebench.evaluate(..., by=..., metrics=...)`` in this
process; the manifest lists every file; the report draws the breakdown figures, the
benchmark share and the user metric's median; a run killed before its commit resumes to
the same bytes; a rerun with other breakdowns is refused with the documented message.
"""

from __future__ import annotations

import io
import json
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
import yaml

from expected_results import evaluate_in_process
from gagebench.config import load_config
from gagebench.metrics import SUITES

pytestmark = pytest.mark.integration

MODULE = "usermetrics_combo_it"
SUITE_LIST = ["standard", "dscore", "kge", "errors", "benchmark"]
BY = ["season", "month", "water_year"]
CSVS = {"standard": "standard_suite", "dscore": "dscore", "kge": "kge", "errors": "errors",
        "benchmark": "benchmark"}  # fmt: skip
SOURCE = textwrap.dedent(
    """
    import numpy as np
    import gagebench

    @gagebench.metric("abs_error_combo", higher_is_better=False, optimal=0.0)
    def abs_error_combo(obs, sim):
        return float(np.mean(np.abs(sim - obs)))
    """
)


def _run(run_file: Path, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gagebench.cli", "run", "-q", "-c", str(run_file), *extra],
        capture_output=True, text=True, timeout=420, check=False, env=env,
    )  # fmt: skip


def _expected(settings: dict[str, Any], ids: list[str], by: str | None) -> pd.DataFrame:
    """``gagebench.evaluate`` on each model's gages present in both stores."""
    cfg = load_config(overrides={k: v for k, v in settings.items() if k != "cluster"})
    return evaluate_in_process(cfg, ids, by=by, metrics=[f"{MODULE}:abs_error_combo"])


def _same(got: pd.DataFrame, want: pd.DataFrame, key: list[str]) -> None:
    got = got[~got["status"].isin(["not_in_observed", "not_in_model"])]
    got = got.sort_values(key).reset_index(drop=True)
    want = want.sort_values(key).reset_index(drop=True)
    assert list(got.columns) == list(want.columns)
    assert got[key].astype(str).values.tolist() == want[key].astype(str).values.tolist()
    assert got["status"].tolist() == want["status"].tolist()
    assert got["n_days"].tolist() == want["n_days"].tolist()
    values = [c for c in want.columns if pd.api.types.is_float_dtype(want[c].dtype)]
    np.testing.assert_allclose(
        got[values].to_numpy(float), want[values].to_numpy(float), rtol=1e-12
    )


def test_every_new_part_in_one_cli_run_on_s3_agrees_resumes_and_reports(
    daily_stores, bucket_url, s3, tmp_path, monkeypatch
) -> None:
    folder = tmp_path / "mods"
    folder.mkdir()
    (folder / f"{MODULE}.py").write_text(SOURCE)
    monkeypatch.syspath_prepend(str(folder))  # for evaluate() in this process
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(folder), *filter(None, [os.environ.get("PYTHONPATH")])]),
    }
    settings = daily_stores.to_config_dict()
    settings.update(
        output=bucket_url, run_id="combo", batch_size=6, storage_options=s3.storage_options,
        min_paired_days=60, suites=SUITE_LIST, by=BY, metrics=[f"{MODULE}:abs_error_combo"],
        cluster={"backend": "local", "local": {"n_workers": 2, "memory_limit": "1GiB"}},
    )  # fmt: skip
    run_file = tmp_path / "run.yaml"
    run_file.write_text(yaml.safe_dump({"gagebench": settings}))
    done = _run(run_file, env)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr

    fs = fsspec.filesystem("s3", skip_instance_cache=True, **s3.storage_options)
    root = f"{bucket_url}/combo".removeprefix("s3://")
    manifest = json.loads(fs.cat(f"{root}/manifest.json"))
    models = list(settings["models"])
    data = ["results.parquet", *(f"results_by_{g}.parquet" for g in BY)]
    data += [f"{m}/{CSVS[s]}.csv" for m in models for s in SUITE_LIST]
    data += [f"{m}/by_{g}.csv" for m in models for g in BY]
    data += [f"{m}/user_metrics.csv" for m in models]
    assert sorted(manifest["outputs"]) == sorted([*data, "report.html"])
    files = {rel: fs.cat(f"{root}/{rel}") for rel in data}

    results = pd.read_parquet(io.BytesIO(files["results.parquet"]))
    ids = sorted(results["site_no"].unique())
    _same(results, _expected(settings, ids, None), ["model", "site_no"])
    for m in models:
        mine = results[results["model"] == m].set_index("site_no")
        for suite in SUITE_LIST:
            table = pd.read_csv(io.BytesIO(files[f"{m}/{CSVS[suite]}.csv"]), dtype={"site_no": str})
            cols = list(SUITES[suite])
            np.testing.assert_allclose(
                table[cols].to_numpy(float), mine.loc[table["site_no"], cols].to_numpy(float),
                rtol=1e-12,
            )  # fmt: skip
        user = pd.read_csv(io.BytesIO(files[f"{m}/user_metrics.csv"]), dtype={"site_no": str})
        np.testing.assert_allclose(
            user["abs_error_combo"], mine.loc[user["site_no"], "abs_error_combo"], rtol=1e-12
        )
    for group in BY:
        table = pd.read_parquet(io.BytesIO(files[f"results_by_{group}.parquet"]))
        assert set(zip(table["site_no"], table["model"], strict=True)) == set(
            zip(results["site_no"], results["model"], strict=True)
        )
        assert {"KGE_skill", "KGE2012", "RMSE", "abs_error_combo"} <= set(table.columns)
        _same(table, _expected(settings, ids, group), ["model", "site_no", group])
        for m in models:
            csv = pd.read_csv(io.BytesIO(files[f"{m}/by_{group}.csv"]), dtype={"site_no": str})
            mine = table[table["model"] == m].reset_index(drop=True)
            assert list(csv.columns) == list(mine.columns)
            assert csv["site_no"].tolist() == mine["site_no"].tolist()
            values = [c for c in mine.columns if pd.api.types.is_float_dtype(mine[c].dtype)]
            np.testing.assert_allclose(
                csv[values].to_numpy(float), mine[values].to_numpy(float), rtol=1e-12
            )

    page = fs.cat(f"{root}/report.html").decode()
    for figure in ("by_season_kge.png", "water_year_kge.png", "map_kge_skill.png"):
        assert figure in page, figure
    assert "beats its day-of-year benchmark" in page
    assert "median abs_<wbr>error_<wbr>combo" in page  # the summary table breaks names at "_"
    assert "median lat" not in page

    # As a run killed before its commit leaves it: some parts, no outputs, no manifest.
    batch_parts = sorted(p for p in fs.ls(f"{root}/_parts") if p.endswith(".parquet"))
    assert len(batch_parts) >= 3
    for p in batch_parts[::2]:
        fs.rm(p)
    fs.rm(f"{root}/manifest.json")
    for rel in data:
        fs.rm(f"{root}/{rel}")
    resumed = _run(run_file, env)
    assert resumed.returncode == 0, resumed.stderr
    for rel, content in files.items():
        assert fs.cat(f"{root}/{rel}") == content, rel

    refused = _run(run_file, env, "--set", "by=[season]")
    assert refused.returncode == 2, refused.stderr
    assert "Traceback" not in refused.stderr
    assert "is complete with other settings: by" in refused.stderr
    assert "--force" in refused.stderr
