"""A run's breakdown files, from its parts: ``results_by_<group>.parquet`` and
``<model>/by_<group>.csv`` (the ``Breakdowns`` exporter), the plan that records ``by``,
and parts that carry the group rows (what a resumed run commits from)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from gagebench.errors import ConfigError, StorageError
from gagebench.evaluation import group_rows_frame, missing_group_rows, missing_rows, rows_frame
from gagebench.metrics import evaluate_arrays
from gagebench.metrics.breakdown import evaluate_groups
from gagebench.results.layout import PARTS, PLAN_FILE, Plan, with_groups
from gagebench.results.writer import RunSink

SUITES = ("standard", "dscore")
DATES = np.arange("1999-08-01", "2002-03-01", dtype="datetime64[D]")
BY = ("season", "water_year")
LABELS: dict[str, list[Any]] = {
    "season": ["DJF", "MAM", "JJA", "SON"],
    "water_year": [1999, 2000, 2001, 2002],
}


def _plan(by: tuple[str, ...] = BY) -> Plan:
    ids = [f"USGS-0{i:07d}" for i in range(6)]
    batches = tuple(tuple(ids[i : i + 3]) for i in range(0, 6, 3))
    return Plan("r1", batches, ("nwm", "nhm"), SUITES, "standard", by)


def _part(plan: Plan, index: int) -> pd.DataFrame:
    """The rows a batch sends back: results rows, then each breakdown's rows."""
    ids = list(plan.batches[index])
    rng = np.random.default_rng(index)
    frames: list[pd.DataFrame] = []
    groups: dict[str, list[pd.DataFrame]] = {by: [] for by in plan.by}
    for model in plan.models:
        obs = rng.gamma(2.0, 5.0, (len(ids) - 1, DATES.size))
        sim = obs * rng.uniform(0.5, 1.5, (len(ids) - 1, 1))
        frames.append(
            rows_frame(evaluate_arrays(obs, sim, DATES, suites=SUITES), ids[:-1], model, DATES)
        )
        frames.append(missing_rows(ids[-1:], model, SUITES, "not_in_model", "absent"))
        for by in plan.by:
            grouped = evaluate_groups(obs, sim, DATES, by, suites=SUITES, min_days=30)
            assert list(grouped.labels) == LABELS[by]
            groups[by].append(group_rows_frame(grouped, ids[:-1], model))
            groups[by].append(
                missing_group_rows(
                    ids[-1:], model, SUITES, by, LABELS[by], "not_in_model", "absent"
                )
            )
    frame = pd.concat(frames, ignore_index=True)
    if not plan.by:
        return frame
    return with_groups(frame, {by: pd.concat(g, ignore_index=True) for by, g in groups.items()})


def _committed(root: Path, plan: Plan) -> dict:
    sink = RunSink(str(root))
    sink.parts.start(plan)
    for i in range(len(plan.batches)):
        sink.parts.write(i, _part(plan, i), SUITES, plan.by)
    with sink.commit(plan) as commit:
        return commit.finish({"run_id": "r1", "outputs": list(commit.facts.outputs)})


def test_breakdown_files_hold_every_batchs_group_rows(tmp_path: Path) -> None:
    plan = _plan()
    manifest = _committed(tmp_path / "r1", plan)
    for by in BY:
        assert f"results_by_{by}.parquet" in manifest["outputs"]
        table = pd.read_parquet(tmp_path / "r1" / f"results_by_{by}.parquet")
        assert list(table.columns[:3]) == ["site_no", "model", by]
        assert list(table.columns[-3:]) == ["n_days", "status", "note"]
        if by == "season":
            assert pd.api.types.is_string_dtype(table[by])
        else:
            assert table[by].dtype == np.int64
        # every planned gage x model x group, the absent gage with its status
        expected = {
            (g, m, lab) for b in plan.batches for g in b for m in plan.models for lab in LABELS[by]
        }
        assert set(zip(table["site_no"], table["model"], table[by], strict=True)) == expected
        assert len(table) == len(expected)
        assert (
            table.loc[table["site_no"].isin([b[-1] for b in plan.batches]), "status"]
            == "not_in_model"
        ).all()
        for model in plan.models:
            rows = table[table["model"] == model]
            reference = rows.to_csv(index=False, lineterminator="\n").encode()
            assert (tmp_path / "r1" / model / f"by_{by}.csv").read_bytes() == reference


def test_results_parquet_is_the_same_with_or_without_breakdowns(tmp_path: Path) -> None:
    _committed(tmp_path / "with", _plan())
    _committed(tmp_path / "without", _plan(()))
    with_by = pd.read_parquet(tmp_path / "with" / "results.parquet")
    pd.testing.assert_frame_equal(
        with_by, pd.read_parquet(tmp_path / "without" / "results.parquet")
    )
    assert not list((tmp_path / "without").glob("results_by_*"))
    assert not list((tmp_path / "without").glob("*/by_*.csv"))


def test_the_plan_records_by_only_when_set(tmp_path: Path) -> None:
    assert "by" not in _plan(()).to_json()  # plans of runs without breakdowns unchanged
    saved = _plan().to_json()
    assert saved["by"] == list(BY)
    assert Plan.from_json(json.loads(json.dumps(saved))) == _plan()
    assert any("by" in d for d in _plan(("season",)).differences(_plan()))
    sink = RunSink(str(tmp_path / "r1"))
    sink.parts.start(_plan(("season",)))
    assert (tmp_path / "r1" / PARTS / PLAN_FILE).exists()
    with pytest.raises(ConfigError, match="by"):
        sink.parts.start(_plan())


def test_a_part_without_its_breakdown_rows_is_damaged(tmp_path: Path) -> None:
    plan = _plan()
    sink = RunSink(str(tmp_path / "r1"))
    sink.parts.start(plan)
    sink.parts.write(0, _part(plan, 0), SUITES, plan.by)
    sink.parts.write(1, _part(_plan(()), 1), SUITES)  # the layout of a run without by
    with pytest.raises(StorageError, match=r"part 1 .* damaged"), sink.commit(plan) as commit:
        commit.finish({"run_id": "r1"})
    assert sink.parts.finished(2) == {0}  # removed: a resume computes it again
