"""Progress renderers and JSON log lines."""

from __future__ import annotations

import io
import json
import logging

import pytest

from gagebench.progress import (
    BarProgress,
    JsonFormatter,
    LogProgress,
    Progress,
    make_progress,
)


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bar_shows_batches_gages_and_rate() -> None:
    out = _Tty()
    bar = BarProgress(out)
    bar.start(total_batches=4, total_gages=100, done_batches=1, done_gages=25)
    bar.update(25)
    bar.update(25)
    bar.update(25)
    bar.close()
    text = out.getvalue()
    assert "4/4 batches" in text
    assert "100/100 gages" in text
    assert "gages/s" in text
    assert text.endswith("\n")
    assert bar.done_gages == 100


def test_make_progress_picks_the_renderer() -> None:
    assert type(make_progress(True, False, "text", _Tty())) is BarProgress
    assert type(make_progress(True, False, "text", io.StringIO())) is LogProgress
    assert type(make_progress(True, False, "json", _Tty())) is LogProgress
    assert type(make_progress(True, True, "text", _Tty())) is Progress
    assert type(make_progress(False, False, "text", _Tty())) is Progress


def test_log_progress_emits_json_fields(caplog: pytest.LogCaptureFixture) -> None:
    progress = LogProgress(every=0.0)
    with caplog.at_level(logging.INFO, logger="gagebench.progress"):
        progress.start(2, 10, 0, 0)
        progress.update(5)
    record = caplog.records[-1]
    line = json.loads(JsonFormatter().format(record))
    assert line["level"] == "info"
    assert line["logger"] == "gagebench.progress"
    assert line["gages_done"] == 5
    assert line["batches_total"] == 2
    assert "progress: 1/2 batches" in line["message"]
