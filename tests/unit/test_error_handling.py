"""Bugs surface as bugs: an unexpected exception fails the batch loudly, never a data row.

Known data conditions (the engine's InputError) stay ``error`` rows; anything else (a
TypeError or ZeroDivisionError in a metric) propagates, is retried within
``retries.batch_attempts``, then fails the run with its traceback logged at ERROR and the
usual resume message.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from distributed import Client

from gagebench import pipeline
from gagebench.batches import failure_of, is_bug
from gagebench.config import load_config
from gagebench.errors import InputError, RunError, StorageError
from gagebench.pipeline import ERROR, _evaluate_rows, _uncertainty_frames
from gagebench.sources.stores import SourceSet
from gagebench.storage.retry import StoreUnavailable
from gagebench.synth import synthesize

STORE = "memory://gagebench-errors-bugs-unit"
DATES = np.arange("2000-01-01", "2000-03-01", dtype="datetime64[D]")


@pytest.fixture(scope="module")
def stores() -> dict:
    made = synthesize(STORE, n_gages=6, seed=11, start="2005-01-01", end="2007-12-31")
    return made.to_config_dict()


def _raise(exc: BaseException) -> Any:
    def kernel(*args: Any, **kwargs: Any) -> Any:
        raise exc

    return kernel


def test_a_bug_in_the_engine_propagates_instead_of_becoming_error_rows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(pipeline, "evaluate_arrays", _raise(ZeroDivisionError("float division")))
    obs = np.ones((2, DATES.size))
    with pytest.raises(ZeroDivisionError, match="float division"):
        _evaluate_rows(obs, obs, DATES, ["USGS-1", "USGS-2"], "m", ("standard",), "standard")


def test_a_known_input_error_is_still_an_error_row(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipeline, "evaluate_arrays", _raise(InputError("gage 1: no paired day")))
    obs = np.ones((2, DATES.size))
    frame = _evaluate_rows(obs, obs, DATES, ["USGS-1", "USGS-2"], "m", ("standard",), "standard")
    assert list(frame.status) == [ERROR, ERROR]
    assert frame.note.str.contains("InputError: gage 1: no paired day").all()


def test_a_bug_in_the_uncertainty_suite_propagates(
    monkeypatch: pytest.MonkeyPatch, stores: dict, tmp_path: Path
) -> None:
    import gagebench.uncertainty_suite

    cfg = load_config(overrides={**stores, "output": str(tmp_path)})
    source = SourceSet.from_config(cfg)
    batch = source.read_batch(source.observed_ids()[:2])
    monkeypatch.setattr(
        gagebench.uncertainty_suite, "evaluate_models", _raise(IndexError("slot 9"))
    )
    with pytest.raises(IndexError, match="slot 9"):
        _uncertainty_frames(batch, ("nwm",), ("uncertainty",), "standard", None)


def test_which_errors_are_bugs() -> None:
    for known in (
        InputError("x"),
        StorageError("x"),
        StoreUnavailable("x"),
        OSError("x"),
        TimeoutError(),
        MemoryError(),
    ):
        assert not is_bug(known), known
        assert failure_of(known, with_traceback=True).traceback is None
    for bug in (TypeError("x"), IndexError("x"), ZeroDivisionError(), KeyError("k")):
        assert is_bug(bug), bug
    try:
        _ = 1 / 0
    except ZeroDivisionError as exc:
        failure = failure_of(exc, with_traceback=True)
    assert failure.bug
    assert failure.retryable
    assert failure.traceback is not None
    assert "Traceback" in failure.traceback
    assert "1 / 0" in failure.traceback


def test_a_bug_fails_the_run_loudly_after_its_attempts_and_resumes(
    monkeypatch: pytest.MonkeyPatch,
    stores: dict,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    cfg = load_config(
        overrides={
            **stores,
            "output": str(tmp_path),
            "report": False,
            "progress": False,
            "run_id": "bug",
            "batch_size": 2,
            "retries.batch_attempts": 2,
        }
    )
    real = pipeline.evaluate_arrays
    source = SourceSet.from_config(cfg)
    bad_row = source.read_batch(source.observed_ids()[:1]).observed[0]  # batch 0's first gage
    calls: list[int] = []

    def buggy(obs: Any, sim: Any, dates: Any, **kw: Any) -> Any:
        if any(np.array_equal(row, bad_row, equal_nan=True) for row in obs):
            calls.append(1)
            raise TypeError("unsupported operand type(s) for +: 'float' and 'NoneType'")
        return real(obs, sim, dates, **kw)

    monkeypatch.setattr(pipeline, "evaluate_arrays", buggy)
    caplog.set_level(logging.WARNING, logger="gagebench")
    with (
        Client(processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None) as c,
        pytest.raises(RunError) as info,
    ):
        pipeline.run(cfg, client=c)
    text = str(info.value)
    assert "a batch raised an unexpected error (a bug" in text
    assert "TypeError: unsupported operand" in text
    assert "2 of 3 batches are saved" in text
    assert "run_id=bug" in text
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    message = errors[0].getMessage()
    assert "batch 0 failed after 2 attempt(s) with an unexpected error" in message
    assert "Traceback (most recent call last)" in message
    assert "in buggy" in message
    # retried within batch_attempts (once per model), never more
    assert 1 <= len(calls) <= 2 * 2
    # the bug fixed, the same run_id computes only the missing batch
    monkeypatch.setattr(pipeline, "evaluate_arrays", real)
    with Client(processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None) as c:
        result = pipeline.run(cfg, client=c)
    assert result.manifest["batches"]["reused"] == 2
    assert result.manifest["batches"]["computed"] == 1
    assert set(result.results.status) != {ERROR}


# -- sources: only storage errors say "check the URL" ---------------------------------------


def _fresh_source(stores: dict, tmp_path: Path) -> SourceSet:
    from gagebench.sources.stores import clear_cache

    clear_cache()  # open the stores again, under the patch
    return SourceSet.from_config(load_config(overrides={**stores, "output": str(tmp_path)}))


def test_a_bug_while_opening_a_store_is_not_a_url_problem(
    monkeypatch: pytest.MonkeyPatch, stores: dict, tmp_path: Path
) -> None:
    from xarray.backends.zarr import ZarrStore  # what opens the store's zarr group

    monkeypatch.setattr(
        ZarrStore, "open_group", _raise(AttributeError("'NoneType' has no 'attrs'"))
    )
    with pytest.raises(AttributeError, match="has no 'attrs'"):
        _fresh_source(stores, tmp_path).observed_ids()
    monkeypatch.setattr(ZarrStore, "open_group", _raise(FileNotFoundError("zarr.json")))
    with pytest.raises(StorageError, match=r"cannot open the observed store .*check the URL"):
        _fresh_source(stores, tmp_path).observed_ids()


def test_a_bug_while_reading_gages_is_not_a_store_failure(
    monkeypatch: pytest.MonkeyPatch, stores: dict, tmp_path: Path
) -> None:
    import gagebench.sources.zarrstore

    source = _fresh_source(stores, tmp_path)
    ids = source.observed_ids()[:2]
    monkeypatch.setattr(gagebench.sources.zarrstore, "read_gage_rows", _raise(IndexError("row 7")))
    with pytest.raises(IndexError, match="row 7"):
        source.read_batch(ids)
    monkeypatch.setattr(
        gagebench.sources.zarrstore, "read_gage_rows", _raise(StoreUnavailable("down"))
    )
    with pytest.raises(StorageError, match="cannot read 2 gages from the observed store"):
        source.read_batch(ids)


def test_crosswalk_errors_name_their_cause(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import gagebench.storage.tables
    from gagebench.config import Crosswalk
    from gagebench.sources.crosswalk import _table

    table = tmp_path / "xwalk.parquet"
    table.write_bytes(b"not a parquet file")
    walk = Crosswalk(url=str(table), gage="gage", feature="feature")
    with pytest.raises(InputError, match=r"cannot parse the crosswalk .*CSV or Parquet"):
        _table(walk, "nwm")
    missing = Crosswalk(url=str(tmp_path / "none.csv"), gage="gage", feature="feature")
    with pytest.raises(StorageError, match=r"cannot read the crosswalk .*check crosswalk\.url"):
        _table(missing, "nwm")
    good = tmp_path / "xwalk.csv"
    good.write_text("gage,feature\nUSGS-1,11\n")
    # the bug is raised inside the shared table reader the crosswalk goes through
    monkeypatch.setattr(gagebench.storage.tables.pd, "read_csv", _raise(ZeroDivisionError("a bug")))
    with pytest.raises(ZeroDivisionError, match="a bug"):
        _table(Crosswalk(url=str(good), gage="gage", feature="feature"), "nwm")


# -- the report: a failure is a warning in the manifest -------------------------------------


def test_a_failed_report_still_writes_the_manifest(
    monkeypatch: pytest.MonkeyPatch, stores: dict, tmp_path: Path
) -> None:
    import json

    cfg = load_config(
        overrides={**stores, "output": str(tmp_path), "progress": False, "run_id": "rep"}
    )
    assert cfg.report
    import gagebench.report.html

    failing = _raise(ValueError("no figure for 'dKGE'"))
    monkeypatch.setattr(gagebench.report.html, "draw_report", failing)
    with Client(processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None) as c:
        result = pipeline.run(cfg, client=c)
    manifest = json.loads((tmp_path / "rep" / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["report"] == {"status": "failed", "error": "ValueError: no figure for 'dKGE'"}
    assert manifest["warnings"] == [
        "the report could not be written: ValueError: no figure for 'dKGE'"
    ]
    assert "report.html" not in manifest["outputs"]
    assert result.manifest == manifest
    assert len(result.results) == 2 * 6


@pytest.mark.parametrize(
    ("error", "traceback_logged"),
    [(KeyError("figure 'nse_map'"), True), (StorageError("cannot write report.html"), False)],
)
def test_a_report_cut_short_is_a_warning_in_the_manifest(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    stores: dict,
    tmp_path: Path,
    error: Exception,
    traceback_logged: bool,
) -> None:
    """Writing the page fails after half of it landed (a bug in the page, a failing
    store): no half page is left, the manifest says why, and only a bug logs its
    traceback."""
    import json

    from gagebench.report.html import DrawnReport
    from gagebench.storage.retry import error_summary

    def half_then_fail(self: DrawnReport, manifest: Any = None) -> str:
        (tmp_path / "rep" / "report.html").write_bytes(b"<html>half a page")
        raise error

    monkeypatch.setattr(DrawnReport, "write", half_then_fail)
    cfg = load_config(
        overrides={**stores, "output": str(tmp_path), "progress": False, "run_id": "rep"}
    )
    with (
        Client(processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None) as c,
        caplog.at_level("WARNING", logger="gagebench"),
    ):
        result = pipeline.run(cfg, client=c)
    written = json.loads((tmp_path / "rep" / "manifest.json").read_text())
    assert written == result.manifest
    assert written["report"] == {"status": "failed", "error": error_summary(error)}
    assert written["warnings"] == [f"the report could not be written: {error_summary(error)}"]
    assert "report.html" not in written["outputs"]
    assert written["timings"]["report_s"] > 0  # drawing the figures took that long
    assert not (tmp_path / "rep" / "report.html").exists()  # no half page left behind
    [record] = [r for r in caplog.records if "could not be written" in r.getMessage()]
    assert record.levelname == "WARNING"
    assert bool(record.exc_info) is traceback_logged
