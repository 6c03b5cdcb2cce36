"""The run sink on real fsspec file systems (local and memory://): parts, plan, commit."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from gagebench.errors import ConfigError, StorageError
from gagebench.evaluation import missing_rows, rows_frame
from gagebench.metrics import evaluate_arrays
from gagebench.results.writer import MANIFEST_FILE, Plan, RunSink, suite_csv_columns
from gagebench.storage.retry import error_summary

SUITES = ("standard", "dscore")
DATES = np.arange("2000-01-01", "2000-03-01", dtype="datetime64[D]")


def _rows(ids: list[str], model: str, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    obs = rng.gamma(2.0, 5.0, (len(ids), DATES.size))
    sim = obs * rng.uniform(0.5, 1.5, (len(ids), 1))
    return rows_frame(evaluate_arrays(obs, sim, DATES, suites=SUITES), ids, model, DATES)


def _plan(batch_size: int = 2, n: int = 5) -> Plan:
    ids = [f"USGS-0{i:07d}" for i in range(n)]
    batches = tuple(tuple(ids[i : i + batch_size]) for i in range(0, n, batch_size))
    return Plan("r1", batches, ("nwm", "nhm"), SUITES, "standard")


def _part(plan: Plan, index: int) -> pd.DataFrame:
    ids = list(plan.batches[index])
    if len(ids) == 1:
        return pd.concat([_rows(ids, m, index) for m in plan.models], ignore_index=True)
    frames = [_rows(ids[:-1], m, index) for m in plan.models]
    frames += [missing_rows(ids[-1:], m, SUITES, "not_in_model", "absent") for m in plan.models]
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(params=["local", "memory"])
def sink(request: pytest.FixtureRequest, tmp_path) -> RunSink:
    if request.param == "local":
        return RunSink(str(tmp_path / "out" / "r1"))
    return RunSink(f"memory://gagebench-test-{tmp_path.name}/r1")


def test_commit_writes_layout_and_manifest_last(sink: RunSink) -> None:
    plan = _plan()
    assert sink.start(plan) == set()
    for i in range(len(plan.batches)):
        sink.write_part(i, _part(plan, i), SUITES)
    seen_before_manifest = {}

    def manifest(facts):
        seen_before_manifest["exists"] = sink.exists(sink.path(MANIFEST_FILE))
        return {"run_id": "r1", **facts}

    final = sink.commit(plan, manifest)
    assert seen_before_manifest["exists"] is False
    assert json.loads(sink.read_bytes(sink.path(MANIFEST_FILE))) == json.loads(json.dumps(final))
    results = sink.read_results()
    assert len(results) == plan.n_gages * 2
    assert not results.duplicated(["site_no", "model"]).any()
    for model in plan.models:
        counts = final["counts"][model]
        assert counts["not_in_model"] == 2
        assert sum(counts.values()) == plan.n_gages
    for model in plan.models:
        for suite, name in (("standard", "standard_suite.csv"), ("dscore", "dscore.csv")):
            with sink.fs.open(sink.path(model, name)) as fh:
                table = pd.read_csv(fh, dtype={"site_no": str})
            assert list(table.columns) == suite_csv_columns(suite)
            assert len(table) == plan.n_gages
            expect = results[results.model == model].set_index("site_no")[
                "NSE" if suite == "standard" else "mse"
            ]
            got = table.set_index("site_no")["NSE" if suite == "standard" else "mse"]
            np.testing.assert_allclose(got.to_numpy(), expect.loc[got.index].to_numpy(), rtol=1e-12)
    assert set(final["outputs"]) == {
        "results.parquet",
        "nwm/standard_suite.csv",
        "nwm/dscore.csv",
        "nhm/standard_suite.csv",
        "nhm/dscore.csv",
    }


def test_resume_lists_finished_parts_and_rejects_another_plan(sink: RunSink) -> None:
    plan = _plan()
    sink.start(plan)
    sink.write_part(1, _part(plan, 1), SUITES)
    assert sink.start(plan) == {1}
    with pytest.raises(ConfigError, match="batch_size"):
        sink.start(_plan(batch_size=3))
    with pytest.raises(ConfigError, match="gage list"):
        sink.start(_plan(n=6))
    with pytest.raises(StorageError, match="missing"):
        sink.commit(plan, lambda facts: facts)


def test_part_with_wrong_rows_is_refused(sink: RunSink) -> None:
    plan = _plan()
    sink.start(plan)
    for i in range(len(plan.batches)):
        part = _part(plan, i)
        if i == 0:
            part = pd.concat([part, part.iloc[:1]], ignore_index=True)
        sink.write_part(i, part, SUITES)
    with pytest.raises(StorageError, match="part 0"):
        sink.commit(plan, lambda facts: facts)


def test_local_writes_leave_no_temporary_files(tmp_path) -> None:
    sink = RunSink(str(tmp_path / "r1"))
    plan = _plan()
    sink.start(plan)
    for i in range(len(plan.batches)):
        sink.write_part(i, _part(plan, i), SUITES)
    sink.commit(plan, lambda facts: facts)
    names = [p.name for p in (tmp_path / "r1").rglob("*")]
    assert not [n for n in names if ".tmp-" in n]
    sink.clear()
    assert not (tmp_path / "r1").exists()


def test_unwritable_output_names_the_url(tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    sink = RunSink(str(blocker / "r1"))
    with pytest.raises(StorageError, match=str(blocker)):
        sink.start(_plan())


@pytest.mark.parametrize(
    ("error", "traceback_logged"),
    [(KeyError("figure 'nse_map'"), True), (StorageError("cannot write report.html"), False)],
)
def test_a_failed_report_is_a_warning_in_the_manifest(
    sink: RunSink,
    caplog: pytest.LogCaptureFixture,
    error: Exception,
    traceback_logged: bool,
) -> None:
    plan = _plan()
    sink.start(plan)
    for i in range(len(plan.batches)):
        sink.write_part(i, _part(plan, i), SUITES)

    def report(facts):
        sink.write_bytes(sink.path("report.html"), b"<html>half a page")
        raise error

    with caplog.at_level("WARNING", logger="gagebench"):
        final = sink.commit(plan, lambda facts: {"run_id": "r1", **facts}, report)
    written = json.loads(sink.read_bytes(sink.path(MANIFEST_FILE)))
    assert written == json.loads(json.dumps(final))
    assert written["report"]["status"] == "failed"
    assert written["report"]["error"] == error_summary(error)
    assert written["warnings"] == [f"the report could not be written: {written['report']['error']}"]
    assert "report.html" not in written["outputs"]
    assert not sink.exists(sink.path("report.html"))  # no half page left behind
    assert len(sink.read_results()) == plan.n_gages * 2
    [record] = [r for r in caplog.records if "could not be written" in r.getMessage()]
    assert record.levelname == "WARNING"
    assert bool(record.exc_info) is traceback_logged
