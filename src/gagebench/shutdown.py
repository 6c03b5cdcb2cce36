"""Quiet endings: one line on Ctrl-C or SIGTERM, not the cluster's shutdown chatter.

On Ctrl-C the terminal sends SIGINT to the whole foreground process group: every local
Dask worker process then raised KeyboardInterrupt and printed its own traceback (about 70
lines) while the run was already tearing its cluster down. Local workers are started with
SIGINT ignored instead (an ignored signal stays ignored in a spawned child, and Python
then installs no KeyboardInterrupt handler there); the run's own process still gets the
signal and closes the cluster, which stops the workers.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator


@contextlib.contextmanager
def children_ignore_sigint() -> Iterator[None]:
    """Ignore SIGINT while the block starts child processes (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class _DropMessages(logging.Filter):
    """Drop log records whose message contains one of ``phrases``."""

    def __init__(self, *phrases: str) -> None:
        super().__init__()
        self.phrases = phrases

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(phrase in message for phrase in self.phrases)


@contextlib.contextmanager
def quiet_close() -> Iterator[None]:
    """While a local cluster closes: no "Worker process still alive after 4.0 seconds,
    killing" (a worker still inside a task when the run ends or is interrupted is stopped
    either way; the warning only alarmed users at the end of good runs)."""
    noise = _DropMessages("Worker process still alive after")
    logger = logging.getLogger("distributed.nanny")
    logger.addFilter(noise)
    try:
        yield
    finally:
        logger.removeFilter(noise)


class _DropAllExit(logging.Filter):
    """Drop asyncio's "Task exception was never retrieved" of distributed's ``AllExit``."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return type(error).__name__ != "AllExit"


def quiet_abandoned_gathers() -> None:
    """For a run that stops while its main thread waits in ``future.result()``: the
    gather it leaves ends, when the client closes, with distributed's internal ``AllExit``,
    which asyncio logs with a traceback ("Task exception was never retrieved"), maybe
    only at exit. Not news: the run's own error says why it stopped."""
    logging.getLogger("asyncio").addFilter(_DropAllExit())


def quiet_worker_logs() -> None:
    """Run on each local worker: tasks cancelled because the run stopped are not news."""
    logging.getLogger("distributed.worker.state_machine").addFilter(
        _DropMessages("ended with CancelledError")
    )
