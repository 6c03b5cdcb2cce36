"""Runs with the ``kge`` and ``errors`` suites: real Dask worker processes, a real S3 API
server (moto) and the real ``gagebench`` entry point. Their columns reach
``results.parquet`` and each model's ``kge.csv`` / ``errors.csv`` (``site_no`` then the
suite's columns), with the values of ``gagebench.evaluate`` in this process."""

from __future__ import annotations

import io
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
from gagebench.metrics import SUITES
from gagebench.pipeline import run
from gagebench.results.layout import suite_csv_columns

pytestmark = pytest.mark.integration

NEW = ("kge", "errors")


def _read(url: str, options: dict[str, Any]) -> bytes:
    with fsspec.open(url, "rb", **options) as handle:
        return handle.read()


def test_a_run_on_s3_writes_the_new_suites(daily_stores, bucket_url, s3, dask_client) -> None:
    settings = {
        **daily_stores.to_config_dict(),
        "output": bucket_url,
        "run_id": "kge",
        "batch_size": 5,
        "storage_options": s3.storage_options,
        "report": False,
        "suites": ["standard", *NEW],
    }
    cfg = load_config(overrides=settings)
    run(cfg, client=dask_client)
    root = f"{bucket_url}/kge"
    got = pd.read_parquet(io.BytesIO(_read(f"{root}/results.parquet", s3.storage_options)))
    for suite in ("standard", *NEW):
        assert set(SUITES[suite]) <= set(got.columns), suite
    assert "mse" not in got.columns
    evaluated = got[got["status"] == "ok"]
    assert len(evaluated) > 10
    np.testing.assert_allclose(evaluated["R2"], evaluated["pearson"] ** 2, rtol=1e-12)

    ids = sorted(got["site_no"].unique())
    expected = evaluate_in_process(cfg, ids).set_index(["model", "site_no"]).sort_index()
    rows = got.set_index(["model", "site_no"]).loc[expected.index]
    columns = [c for suite in NEW for c in SUITES[suite]]
    np.testing.assert_allclose(
        rows[columns].to_numpy(float), expected[columns].to_numpy(float), rtol=1e-12
    )
    for model in cfg.models:
        mine = got[got["model"] == model].set_index("site_no")
        for suite in NEW:
            table = pd.read_csv(
                io.BytesIO(_read(f"{root}/{model}/{suite}.csv", s3.storage_options)),
                dtype={"site_no": str},
            )
            assert list(table.columns) == suite_csv_columns(suite)
            assert sorted(table["site_no"]) == sorted(mine.index)
            np.testing.assert_allclose(
                table.set_index("site_no")[list(SUITES[suite])].to_numpy(float),
                mine.loc[table["site_no"], list(SUITES[suite])].to_numpy(float),
                rtol=1e-12,
            )


_SCRIPT = Path(sys.executable).with_name("gagebench")
GAGEBENCH = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "gagebench.cli"]


def test_gagebench_run_with_the_new_suites_on_two_workers(tmp_path: Path) -> None:
    """``gagebench run`` of a run file naming the suites, on a 2-worker LocalCluster."""
    from gagebench.synth import synthesize

    synthesize(str(tmp_path / "stores"), n_gages=6, start="2001-01-01", end="2003-12-31",
               models=("nwm",), seed=3)  # fmt: skip
    run_file = tmp_path / "run.yaml"
    settings = {
        "observed": str(tmp_path / "stores" / "observed.zarr"),
        "models": {"nwm": str(tmp_path / "stores" / "nwm.zarr")},
        "output": str(tmp_path / "out"),
        "run_id": "r1",
        "gage_limit": 6,
        "batch_size": 3,
        "report": False,
        "suites": ["errors", "kge"],
        "cluster": {"backend": "local", "local": {"n_workers": 2, "memory_limit": "1GiB"}},
    }
    run_file.write_text(yaml.safe_dump({"gagebench": settings}))
    done = subprocess.run(
        [*GAGEBENCH, "run", "-c", str(run_file), "-q"], capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    folder = tmp_path / "out" / "r1"
    assert (folder / "manifest.json").exists()
    results = pd.read_parquet(folder / "results.parquet")
    assert [c for c in results.columns if c in {m for s in SUITES.values() for m in s}] == [
        *SUITES["kge"], *SUITES["errors"],
    ]  # fmt: skip
    assert (results["status"] == "ok").all()
    for suite in NEW:
        table = pd.read_csv(folder / "nwm" / f"{suite}.csv", dtype={"site_no": str})
        assert list(table.columns) == suite_csv_columns(suite)
        assert len(table) == 6
    assert not (folder / "nwm" / "standard_suite.csv").exists()
