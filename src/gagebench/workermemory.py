"""Worker memory: what one batch needs, a warning when workers have less, and the watch
that stops a run whose workers keep dying of memory.

Dask's nanny restarts a worker whose memory passes 95 % of its limit (a
``worker-restart-memory`` event), and the scheduler fails a task whose workers died four
times with ``KilledWorker``. Left alone, a limit below what a worker needs restarts the
workers forever (``memory_limit=60MB``: 84 restarts in 150 s, no batch done) or ends in a
``KilledWorker`` that names no setting. :class:`MemoryWatch` counts the memory restarts
since the last batch finished; more of them than there are workers (so at least one
worker died twice with no batch done in between), or a ``KilledWorker``, stop the run
with one line naming the memory setting and ``batch_size`` (:func:`out_of_memory`).

The estimate (:func:`batch_need`), measured on the demo's stores (5390 gages x 15341 days,
3 stores, one worker process, December 2026): a worker's
baseline of about 400 MB (300 MB once gagebench, numba, pandas and zarr are imported,
400 MB after its first batch: compiled kernels, open stores), plus per worker thread
``batch_size x (time steps of every store) x 8 bytes x 2`` (the series as read and one
working copy; a batch of 64 demo gages measured 16 MB, estimated 47 MB).
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gagebench.errors import RunError

log = logging.getLogger(__name__)

#: The nanny's event when it restarts a worker for passing its memory limit.
MEMORY_TOPIC = "worker-restart-memory"
#: A worker's own memory once it has run a batch (imports, compiled kernels, open stores).
WORKER_BASELINE_BYTES = 400 * 2**20
#: Copies of a batch's series a worker holds at once (as read, and one working copy).
WORKING_COPIES = 2
_MB = 2**20


@dataclass(frozen=True)
class BatchNeed:
    """What one worker needs to run its batches: baseline plus its threads' batches."""

    gages: int
    steps: int
    threads: int

    @property
    def batch_bytes(self) -> int:
        """One batch's series: gages x time steps of every store x 8 bytes x copies."""
        return self.gages * self.steps * 8 * WORKING_COPIES

    @property
    def total_bytes(self) -> int:
        """The worker's baseline plus one batch per thread."""
        return WORKER_BASELINE_BYTES + self.threads * self.batch_bytes

    def explain(self) -> str:
        """The estimate in words, for messages."""
        threads = f"{self.threads} threads x " if self.threads > 1 else ""
        return (
            f"about {_size(self.total_bytes)}: a worker's baseline of "
            f"{_size(WORKER_BASELINE_BYTES)} + {threads}one batch of {self.gages} gages x "
            f"{self.steps} time steps (all stores) x 8 bytes x {WORKING_COPIES} = "
            f"{_size(self.batch_bytes)}"
        )

    def suggestion(self) -> str:
        """A memory limit that fits: the estimate rounded up to a whole GiB."""
        return f"{max(1, math.ceil(self.total_bytes * 1.25 / 2**30))}GiB"


def batch_need(gages: int, steps: Sequence[int], threads: int = 1) -> BatchNeed:
    """The memory one worker needs for batches of ``gages`` gages over stores of ``steps``."""
    return BatchNeed(int(gages), int(sum(steps)), max(1, int(threads)))


def _size(n_bytes: float) -> str:
    if n_bytes >= 2**30:
        return f"{n_bytes / 2**30:.1f} GiB"
    if n_bytes < 10 * _MB:
        return f"{n_bytes / _MB:.1f} MiB"
    return f"{n_bytes / _MB:.0f} MiB"


def smallest_worker(workers: Mapping[str, Mapping[str, Any]]) -> tuple[int, int] | None:
    """``(memory_limit, threads)`` of the worker with the least memory per thread, from
    ``client.scheduler_info()["workers"]``; None when no worker has a limit."""
    limited = [
        (int(info["memory_limit"]), max(1, int(info.get("nthreads") or 1)))
        for info in workers.values()
        if info.get("memory_limit")
    ]
    if not limited:
        return None
    return min(limited, key=lambda pair: pair[0] / pair[1])


def memory_warning(
    workers: Mapping[str, Mapping[str, Any]], gages: int, steps: Sequence[int], setting: str
) -> str | None:
    """The start-of-run warning when a worker's limit is below what its batches need."""
    smallest = smallest_worker(workers)
    if smallest is None:
        return None
    limit, threads = smallest
    need = batch_need(gages, steps, threads)
    if limit >= need.total_bytes:
        return None
    return (
        f"workers have {_size(limit)} of memory ({setting}) but one needs {need.explain()}; "
        f"they will be restarted when they pass 95 % of it and the run will stop: raise "
        f"{setting} (e.g. {need.suggestion()}) or lower batch_size ({need.gages} now)"
    )


class MemoryWatch:
    """Counts the cluster's memory restarts since the last finished batch (thread-safe:
    events arrive on the client's event loop, batches finish in the caller's thread)."""

    def __init__(self, workers: int) -> None:
        #: Memory restarts with no batch finished in between that stop the run.
        self.limit = max(3, int(workers) + 1)
        self.total = 0
        self.since_progress = 0
        self.last_rss: int | None = None
        self._lock = threading.Lock()

    def record(self, event: Any) -> bool:
        """One ``worker-restart-memory`` event; True when the run must stop."""
        message = event[1] if isinstance(event, tuple) and len(event) > 1 else event
        with self._lock:
            self.total += 1
            self.since_progress += 1
            if isinstance(message, Mapping) and message.get("rss"):
                self.last_rss = int(message["rss"])
            return self.since_progress >= self.limit

    def progress(self) -> None:
        """A batch finished: the workers can run batches after all."""
        with self._lock:
            self.since_progress = 0

    @property
    def tripped(self) -> bool:
        """True once the memory restarts since the last finished batch reached the limit."""
        with self._lock:
            return self.since_progress >= self.limit


class WorkersOutOfMemory(RunError):
    """Workers kept dying of memory (or a batch killed its workers: ``KilledWorker``)."""

    def __init__(self, restarts: int, last_rss: int | None, killed: str | None = None):
        self.restarts = restarts
        self.last_rss = last_rss
        self.killed = killed
        if killed is not None:
            what = f"a batch killed every worker that ran it ({killed})"
        else:
            rss = f", the last at {_size(last_rss)}" if last_rss else ""
            what = (
                f"workers were restarted {restarts} times for passing their memory limit{rss}, "
                "with no batch finished in between"
            )
        super().__init__(what)


def out_of_memory(
    exc: WorkersOutOfMemory,
    run_id: str,
    setting: str | None,
    need: BatchNeed,
    saved: int,
    total: int,
    parts_url: str,
    resume: Callable[[dict[str, str]], str],
) -> RunError:
    """The one-line error of a run whose workers ran out of memory: cause, settings, resume.

    ``resume(sets)``: the command that resumes the run with these ``--set`` settings.
    """
    key = setting or "the workers' memory limit"
    if setting is not None and setting.endswith(".local.memory_limit"):
        how = f"resume with: {resume({setting.removeprefix('gagebench.'): need.suggestion()})}"
    else:
        how = f"raise {key} to at least {need.suggestion()}, then resume with: {resume({})}"
    return RunError(
        f"run {run_id} stopped, out of memory: {exc}. One worker needs {need.explain()}. "
        f"Raise {key} or lower batch_size ({need.gages} gages now; a new batch_size starts "
        f"the run over). {saved} of {total} batches are saved under {parts_url}; {how}"
    )
