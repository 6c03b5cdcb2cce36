"""Quiet endings: what a stopping run leaves behind in asyncio is not logged as a traceback."""

from __future__ import annotations

import asyncio
import gc
import logging

import pytest
from distributed.client import AllExit

from gagebench.shutdown import quiet_abandoned_gathers


async def _abandoned_gather_wait() -> asyncio.Task[None]:
    async def wait() -> None:  # what distributed's Client._gather.<locals>.wait raises
        raise AllExit()

    task = asyncio.ensure_future(wait())
    await asyncio.sleep(0.01)
    return task


def _never_retrieved(caplog: pytest.LogCaptureFixture) -> list[str]:
    loop = asyncio.new_event_loop()
    try:
        task = loop.run_until_complete(_abandoned_gather_wait())
        del task  # garbage: asyncio logs "Task exception was never retrieved"
        gc.collect()
    finally:
        loop.close()
    return [r.getMessage() for r in caplog.records if r.name == "asyncio"]


def test_an_abandoned_gather_of_a_stopping_run_logs_no_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="asyncio")
    assert any("never retrieved" in m for m in _never_retrieved(caplog))  # the noise is real
    caplog.clear()
    asyncio_logger = logging.getLogger("asyncio")
    before = list(asyncio_logger.filters)
    try:
        quiet_abandoned_gathers()
        assert _never_retrieved(caplog) == []
    finally:
        asyncio_logger.filters[:] = before
