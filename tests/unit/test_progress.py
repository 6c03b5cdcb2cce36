"""Progress renderers (a tqdm bar on a terminal, log lines elsewhere) and JSON log lines."""

from __future__ import annotations

import io
import json
import logging
import re
import time

import pytest
from tqdm.std import tqdm

from gagebench.logs import JsonFormatter
from gagebench.progress import (
    BarProgress,
    LogProgress,
    Progress,
    make_progress,
)


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bar_is_tqdm_counting_gages_with_rate_eta_and_batches() -> None:
    out = _Tty()
    bar = BarProgress(out)
    bar.start(total_batches=4, total_gages=100, done_batches=1, done_gages=25)
    assert isinstance(bar.bar, tqdm)
    assert bar.bar.initial == 25  # a resumed run starts at what is done
    assert bar.bar.unit == "gage"
    assert bar.bar.disable is False  # tqdm draws on this stream
    for _ in range(3):
        time.sleep(0.01)
        bar.update(25)
    bar.close()
    frames = out.getvalue().split("\r")
    assert " 25/100 " in frames[1]
    # count, ETA (elapsed<remaining), rate and batches while running; count at the end
    running = r" 50/100 \[\d\d:\d\d<\d\d:\d\d, +[\d.]+gage/s, 2/4 batches\]"
    assert re.search(running, out.getvalue())
    assert re.search(r" 100/100 \[.*gage/s, 4/4 batches\]\n$", frames[-1])
    assert bar.done_gages == 100


def test_bar_rate_counts_this_process_only() -> None:
    """75 gages computed here in >= 0.3 s: well under 250 gages/s, whatever was resumed."""
    out = _Tty()
    bar = BarProgress(out)
    bar.start(total_batches=4, total_gages=100_000, done_batches=1, done_gages=99_925)
    for _ in range(3):
        time.sleep(0.1)
        bar.update(25)
    bar.close()
    rate = float(re.findall(r"([\d.]+)gage/s", out.getvalue())[-1])
    assert 0 < rate < 250


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


@pytest.mark.parametrize("size", [(0, 0), (40, 60)])
def test_bar_draws_on_a_real_terminal_sized_or_not(size: tuple[int, int]) -> None:
    """A pseudo-terminal nobody sized reports 0 x 0, where tqdm alone would draw nothing."""
    import fcntl
    import os
    import select
    import struct
    import termios

    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", *size, 0, 0))
    with os.fdopen(slave, "w") as stream:
        assert stream.isatty()
        bar = make_progress(True, False, "text", stream)
        bar.start(total_batches=2, total_gages=20, done_batches=0, done_gages=0)
        bar.update(10)
        bar.update(10)
        bar.close()
    chunks = []
    while select.select([master], [], [], 0.5)[0]:  # a pty hands its output in pieces
        try:
            chunks.append(os.read(master, 1 << 16))
        except OSError:  # EIO: everything read, the terminal's other end is closed
            break
    os.close(master)
    text = b"".join(chunks).decode()
    last = text.replace("\r\n", "\n").split("\r")[-1]
    assert "20/20" in last
    assert "gage/s" in last
    assert len(last.rstrip("\n")) <= (size[1] or 100)
