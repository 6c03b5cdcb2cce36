"""Batches on the cluster with batch-level retries: a failed batch is run again, with backoff.

Request-level retries (:mod:`gagebench.storage.retry`) ride out short outages inside a batch;
this is the layer above, for what is left: a batch whose task failed (its store kept
failing past the request budget, a worker died) is submitted again after a backoff of
2, 4, 8... s (at most 30 s; a sleeping task on the cluster times it), up to
``batch_attempts`` times.
Errors in the inputs (:class:`~gagebench.errors.InputError`,
:class:`~gagebench.errors.ConfigError`) are not retried. An unexpected exception (not a
gagebench, storage or OS error: a bug, e.g. a TypeError in a metric) is retried within
the same attempts, then logged with its traceback at ERROR, and no new batch is started.

Worker-side failures come back as :class:`BatchFailure` values instead of exceptions,
so workers print no tracebacks. When a batch still fails, the run goes on with the
other batches (each finished batch is saved by the caller); once two batches have
failed for good it stops starting new ones and lets the running ones finish. Then
:class:`BatchesFailed` says which batches failed and why.

Workers that die of memory are not a batch failure to retry: the loop watches the
nanny's memory restarts (:class:`gagebench.workermemory.MemoryWatch`) and stops with
:class:`~gagebench.workermemory.WorkersOutOfMemory` when they repeat with no batch
finished, or when a batch killed its workers (Dask's ``KilledWorker``).
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gagebench.errors import ConfigError, GagebenchError, InputError, RunError
from gagebench.storage.retry import EVENT_TOPIC, error_summary, is_storage_failure, is_transient
from gagebench.workermemory import MEMORY_TOPIC, MemoryWatch, WorkersOutOfMemory

if TYPE_CHECKING:
    import distributed

log = logging.getLogger(__name__)

#: Batches that failed for good after which no new batch is started (the store looks down).
STOP_AFTER_FAILED = 2
_MAX_BACKOFF_S = 30.0


@dataclass(frozen=True)
class BatchFailure:
    """Why a batch failed on a worker (returned, not raised, so workers stay quiet)."""

    error: str
    retryable: bool
    transient: bool
    #: The worker's traceback when the error was unexpected (a bug), else None.
    traceback: str | None = None

    @property
    def bug(self) -> bool:
        """True when the batch raised an unexpected exception (not a known error)."""
        return self.traceback is not None


class BatchesFailed(GagebenchError):
    """Batches failed after all their attempts; the others finished and were saved."""

    def __init__(self, failures: dict[int, BatchFailure], attempts: int, not_started: int):
        self.failures = failures
        self.attempts = attempts
        self.not_started = not_started
        first = failures[min(failures)]
        super().__init__(
            f"{len(failures)} batch(es) failed after {attempts} attempt(s) "
            f"(batch {min(failures)}: {first.error})"
        )

    @property
    def outage(self) -> bool:
        """True when every failure was transient (an object-store outage, not bad input)."""
        return all(f.transient for f in self.failures.values())

    @property
    def bug(self) -> bool:
        """True when a failure was an unexpected exception (its traceback is logged)."""
        return any(f.bug for f in self.failures.values())


def is_bug(exc: BaseException) -> bool:
    """True for an exception no layer of gagebench expects: a programming error.

    Known errors are gagebench's own (:class:`~gagebench.errors.GagebenchError`), storage
    failures (:func:`gagebench.storage.retry.is_storage_failure`) and memory errors; anything else
    (TypeError, IndexError, ZeroDivisionError...) is a bug and must surface with its
    traceback.
    """
    return not (isinstance(exc, GagebenchError | MemoryError) or is_storage_failure(exc))


def failure_of(exc: BaseException, with_traceback: bool = False) -> BatchFailure:
    """The :class:`BatchFailure` of an exception raised while running a batch.

    ``with_traceback``: keep the traceback when the exception is a bug (:func:`is_bug`).
    """
    deterministic = isinstance(exc, InputError | ConfigError) and not is_transient(exc)
    trace = None
    if with_traceback and is_bug(exc):
        trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return BatchFailure(
        error_summary(exc),
        retryable=not deterministic,
        transient=is_transient(exc),
        traceback=trace,
    )


def backoff_s(attempt: int) -> float:
    """Seconds to wait before running a batch the ``attempt + 1``-th time."""
    return float(min(_MAX_BACKOFF_S, 2.0**attempt))


def stream_with_retries(
    client: distributed.Client,
    submit: Any,
    batches: Sequence[tuple[int, Sequence[str]]],
    max_in_flight: int,
    attempts: int,
) -> Iterator[tuple[int, Any]]:
    """Yield ``(index, frame)`` of each batch as it finishes; retry failed ones.

    ``submit(element)`` returns a future of ``[(index, frame | BatchFailure)]``.
    Raises :class:`BatchesFailed` at the end when batches failed after ``attempts``, and
    :class:`~gagebench.workermemory.WorkersOutOfMemory` at once when workers keep dying
    of memory (the tasks in flight are cancelled).
    """
    from distributed import as_completed
    from distributed.scheduler import KilledWorker

    elements = [(int(i), tuple(ids)) for i, ids in batches]
    pending = iter(elements)
    tries: dict[int, int] = {}
    failures: dict[int, BatchFailure] = {}
    owner: dict[Any, tuple[int, tuple[str, ...]]] = {}
    timers: dict[Any, tuple[int, tuple[str, ...]]] = {}
    inflight: dict[Any, Any] = {}  # key -> future, for cancelling them all from the loop
    watch = MemoryWatch(len(client.scheduler_info().get("workers", {})))
    stopped = False

    def start(element: tuple[int, tuple[str, ...]], delay: float) -> Any:
        if delay > 0:  # a timer task on the cluster: the batch starts when it is done
            timer = client.submit(time.sleep, delay, pure=False)
            timers[timer.key] = element
            inflight[timer.key] = timer
            return timer
        tries[element[0]] = tries.get(element[0], 0) + 1
        future = submit(element)
        owner[future.key] = element
        inflight[future.key] = future
        return future

    def relay(event: Any) -> None:
        message = event[1] if isinstance(event, tuple) and len(event) > 1 else event
        if isinstance(message, dict):
            log.warning("%s (on worker %s)", message.get("message"), message.get("worker"))

    def memory_restart(event: Any) -> Any:
        # on the client's event loop: cancelling wakes the loop below, which then stops
        # (list() of a dict view runs in C under the GIL: no torn read of ``inflight``)
        if watch.record(event):
            return client.cancel(list(inflight.values()), asynchronous=True)
        return None

    client.subscribe_topic(EVENT_TOPIC, relay)
    client.subscribe_topic(MEMORY_TOPIC, memory_restart)
    try:
        first = [start(e, 0.0) for e in _take(pending, max_in_flight)]
        queue = as_completed(first, loop=client.loop)
        for future in queue:
            inflight.pop(future.key, None)
            if watch.tripped:
                raise WorkersOutOfMemory(watch.total, watch.last_rss)
            if future.key in timers:
                future.release()
                queue.add(start(timers.pop(future.key), 0.0))
                continue
            element = owner.pop(future.key)
            index = element[0]
            try:
                outcome: Any = future.result()[0][1]
            except KilledWorker as exc:  # its workers died, most often of memory
                died = f"KilledWorker: {exc.allowed_failures + 1} workers died in batch {index}"
                raise WorkersOutOfMemory(watch.total, watch.last_rss, died) from exc
            except Exception as exc:  # the task itself died (e.g. its worker was lost)
                outcome = failure_of(exc)
            future.release()
            if isinstance(outcome, BatchFailure):
                if outcome.retryable and tries[index] < attempts:
                    delay = backoff_s(tries[index])
                    log.warning(
                        "batch %d failed (attempt %d of %d: %s); trying again in %.0f s",
                        index,
                        tries[index],
                        attempts,
                        outcome.error,
                        delay,
                    )
                    queue.add(start(element, delay))
                    continue
                failures[index] = outcome
                if outcome.bug:
                    log.error(
                        "batch %d failed after %d attempt(s) with an unexpected error "
                        "(a bug in gagebench; please report it with this traceback):\n%s",
                        index,
                        tries[index],
                        str(outcome.traceback).rstrip(),
                    )
                if len(failures) >= STOP_AFTER_FAILED or not outcome.retryable or outcome.bug:
                    stopped = True
            else:
                watch.progress()
                yield index, outcome
            if not stopped:
                for nxt in _take(pending, 1):
                    queue.add(start(nxt, 0.0))
    finally:
        client.unsubscribe_topic(EVENT_TOPIC)
        client.unsubscribe_topic(MEMORY_TOPIC)
    if failures:
        raise BatchesFailed(failures, attempts, sum(1 for _ in pending))


def _take(items: Iterator[Any], n: int) -> list[Any]:
    out = []
    for _ in range(n):
        try:
            out.append(next(items))
        except StopIteration:
            break
    return out


def batch_or_failure(evaluate: Any, element: tuple[int, tuple[str, ...]]) -> Any:
    """``evaluate(element)`` for one batch on a worker: its result, or its failure as a
    ``(index, BatchFailure)`` returned, not raised.

    The worker process masks its own log records and warnings first
    (:func:`gagebench.redact.install`, once per process): they reach a terminal through
    its own stderr, not through the client's masker.
    """
    from gagebench.redact import install

    install()
    try:
        return evaluate(element)
    except Exception as exc:
        log.debug("batch %d failed", element[0], exc_info=True)
        return element[0], failure_of(exc, with_traceback=True)


def batches_failed_error(
    run_id: str,
    parts_url: str,
    exc: BatchesFailed,
    saved: int,
    plan: Any,
    resume: str | None = None,
) -> RunError:
    """The one-line error of a run whose batches failed: what, how much is saved, resume
    (``resume``: the command, :func:`gagebench.results.resume.resume_command`)."""
    total = len(plan.batches)
    if exc.bug:
        cause = "a batch raised an unexpected error (a bug; its traceback is logged above)"
    elif exc.outage:
        cause = "the object store kept failing (an outage?)"
    else:
        cause = "batches failed on the cluster"
    text = (
        f"run {run_id} stopped: {cause}; {exc}. {saved} of {total} batches are saved under "
        f"{parts_url}; resume with: {resume or f'gagebench run ... --set run_id={run_id}'} "
        "(it computes only the missing batches)"
    )
    return RunError(text)
