"""gagebench.summary: the table the CLI prints at the end of a run."""

from __future__ import annotations

import pandas as pd
import pytest

from gagebench.pipeline import RunResult
from gagebench.summary import format_summary


def _manifest(report: bool) -> dict:
    return {
        "run_id": "r1",
        "counts": {"nwm": {"ok": 2, "too_few_days": 1}, "nhm": {"ok": 3}},
        "medians": {"nwm": {"NSE": 0.43219, "KGE": 0.5}, "nhm": {"NSE": 0.25, "KGE": 0.1}},
        "outputs": ["results.parquet", *(["report.html"] if report else [])],
        "timings": {"computed_gages": 3, "compute_s": 1.5, "gages_per_s": 2.0, "total_s": 3.25},
    }


def test_counts_medians_speed_and_where() -> None:
    text = format_summary(RunResult("/runs/r1", _manifest(report=True), pd.DataFrame()))
    lines = text.splitlines()
    assert "already complete" not in text
    assert lines[1] == "gages by status:"
    total = next(line for line in lines if line.startswith("total"))
    assert total.split() == ["total", "3", "3"]  # per model
    assert "0.432" in text
    assert "0.43219" not in text  # three decimals
    assert "computed 3 gages in 1.5 s (2 gages/s); total 3.2 s" in text
    assert "results: /runs/r1/  (results.parquet, report.html)" in lines
    assert lines[-1] == "report:  /runs/r1/report.html"


@pytest.mark.parametrize(
    ("gages", "seconds", "shown"),
    [
        (5390, 17.9, "(301 gages/s)"),
        (3, 1.5, "(2 gages/s)"),
        (1, 4.0, "(0.25 gages/s)"),
        (2, 50.0, "(1 gage every 25 s)"),
        (1, 1500.0, "(1 gage every 25 min)"),
    ],
)
def test_a_slow_rate_is_never_rounded_to_zero(gages: int, seconds: float, shown: str) -> None:
    manifest = _manifest(report=False)
    manifest["timings"] = {"computed_gages": gages, "compute_s": seconds, "total_s": seconds}
    text = format_summary(RunResult("/runs/r1", manifest, pd.DataFrame()))
    assert shown in text, text
    assert "(0 gages/s)" not in text


def test_an_already_complete_run_without_report_or_timings() -> None:
    manifest = _manifest(report=False)
    manifest["timings"] = {}
    result = RunResult("s3://b/r1", manifest, pd.DataFrame(), already_complete=True)
    lines = format_summary(result).splitlines()
    assert lines[0] == "run r1 was already complete (use --force to redo it)"
    assert not any(line.startswith(("computed", "report:")) for line in lines)
    assert lines[-1] == "results: s3://b/r1/  (results.parquet)"


def _idle_result(extra_model: bool = False) -> RunResult:
    counts = {"nwm": {"no_simulation": 3, "not_in_model": 1}}
    medians: dict = {"nwm": {"NSE": None, "KGE": None}}
    rows = [("nwm", "no simulated value in the period")] * 3 + [("nwm", "gage not found")]
    if extra_model:
        counts["nhm"] = {"ok": 4}
        medians["nhm"] = {"NSE": 0.5, "KGE": 0.25}
        rows += [("nhm", "")] * 4
    results = pd.DataFrame(rows, columns=["model", "note"])
    manifest = {"run_id": "r2", "counts": counts, "medians": medians, "outputs": []}
    return RunResult("/runs/r2", manifest, results)


def test_a_model_with_no_evaluated_gage_says_why_instead_of_none() -> None:
    from gagebench.summary import nothing_evaluated

    result = _idle_result(extra_model=True)
    text = format_summary(result)
    assert "None" not in text
    assert (
        "nwm: no gage evaluated (3 no_simulation, 1 not_in_model); most common note: "
        "'no simulated value in the period' (3 of 4 rows)"
    ) in text.splitlines()
    assert ["nhm", "0.500", "0.250"] in [line.split() for line in text.splitlines()]
    assert nothing_evaluated(result) is None  # nhm was evaluated: not a failed run

    alone = _idle_result()
    assert "median over evaluated gages" not in format_summary(alone)
    reason = nothing_evaluated(alone)
    assert reason is not None
    assert reason.startswith("4 rows of 1 model(s): 3 no_simulation, 1 not_in_model")


def test_medians_without_the_standard_suite_read_n_a() -> None:
    manifest = {
        "run_id": "r3",
        "counts": {"nwm": {"ok": 2}},
        "medians": {"nwm": {"NSE": None, "KGE": None}},
        "outputs": [],
    }
    text = format_summary(RunResult("/runs/r3", manifest, pd.DataFrame()))
    assert "None" not in text
    assert ["nwm", "n/a", "n/a"] in [line.split() for line in text.splitlines()]
