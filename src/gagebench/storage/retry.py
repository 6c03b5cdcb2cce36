"""One retry layer for every object-store request, with a time budget.

The policy, what is transient, the retry loop and the outage log line live here (light:
no s3fs import); :mod:`gagebench.storage.objectstore` applies them to the S3 filesystem.

Stock s3fs stacks three retry layers (s3fs's own, botocore's, aiohttp's): measured, one
read against a dropping endpoint made 250 attempts over 183 s, while a 20 s outage still
killed a run in 5 s (botocore's legacy mode gives up after 5 quick tries, and its
standard mode shares a retry quota of about 100 retries per client, which concurrent
chunk reads use up within seconds). Here one layer decides, once per S3 request:

- ``RetryingS3FileSystem`` (:mod:`gagebench.storage.objectstore`), registered for ``s3://`` when
  gagebench is imported, is s3fs's filesystem with botocore's and s3fs's own retries
  off; every API call and every whole-body read is retried by :func:`retrying`;
- :class:`RetryPolicy` (``gagebench.retries``: ``max_attempts``, ``max_wait_s``) bounds
  the attempts and the total time slept per request; backoff is exponential with jitter;
- transient (retried): refused or dropped connections, timeouts, HTTP 5xx and throttling,
  checksum mismatches, cut-off bodies and chunks that fail the integrity checks of
  :mod:`gagebench.storage.integrity`; anything else (403, 404, bad credentials) fails at once;
- each process logs one line per outage, once every request that failed has succeeded
  again (never while some are still being retried), saying how long the object store
  failed; on a Dask worker the line is sent to the client as an event
  on the topic :data:`EVENT_TOPIC`.

Storage options may carry the policy for one filesystem as ``gagebench_retries``
(:meth:`gagebench.config.RunConfig.options_for` adds it for ``s3://`` URLs), so workers
apply the run's policy; without it, the dask config ``gagebench.retries`` is used.
A user's explicit ``config_kwargs: {retries: ...}`` is kept (then botocore retries too).
"""

from __future__ import annotations

import asyncio
import contextvars
import errno
import logging
import random
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from gagebench.defaults import default
from gagebench.errors import StorageError

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Storage-option key that carries a :class:`RetryPolicy` mapping to the S3 filesystem.
POLICY_OPTION = "gagebench_retries"
#: Dask event topic of the outage lines logged on workers (the client logs them).
EVENT_TOPIC = "gagebench-storage"
#: Outages at least this long are logged as warnings (shorter ones at debug level).
NOTICE_S = 2.0
#: Seconds waited for an endpoint that has never answered (see RetryPolicy.startup).
STARTUP_WAIT_S = 5.0
_BASE_S = 0.25
_CAP_S = 10.0


@dataclass(frozen=True)
class RetryPolicy:
    """How long a request is retried: at most ``max_attempts``, sleeping ``max_wait_s``.

    ``batch_attempts`` is the number of times the pipeline runs a failing batch (the
    batch-level retry, after the request-level one gave up).
    """

    max_attempts: int = default("retries.max_attempts")
    max_wait_s: float = float(default("retries.max_wait_s"))
    batch_attempts: int = default("retries.batch_attempts")

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any] | None, key: str = "retries") -> RetryPolicy:
        """A policy from ``{max_attempts, max_wait_s, batch_attempts}``, missing keys from
        gagebench.yaml, checked by the schema (:class:`gagebench.schema.RetrySettings`;
        errors name ``key``)."""
        from gagebench.schema import RetrySettings, validated

        return cls(**validated(RetrySettings, dict(raw or {}), key).model_dump())

    def startup(self) -> RetryPolicy:
        """The policy until an endpoint has answered once: at most 5 s of waiting.

        An endpoint that never answered is most likely a wrong ``endpoint_url`` or
        network, not an outage: say so quickly.
        """
        return RetryPolicy(self.max_attempts, min(self.max_wait_s, STARTUP_WAIT_S), 1)

    def to_dict(self) -> dict[str, Any]:
        """The policy as plain settings (storage options, manifests)."""
        return {
            "max_attempts": self.max_attempts,
            "max_wait_s": self.max_wait_s,
            "batch_attempts": self.batch_attempts,
        }

    def delay(self, attempt: int, waited: float) -> float | None:
        """Seconds to sleep before attempt ``attempt + 1`` (None: give up).

        Exponential backoff (0.25 s doubling, capped at 10 s) with jitter in [0.5, 1],
        clipped to what is left of ``max_wait_s``.
        """
        left = self.max_wait_s - waited
        if attempt >= self.max_attempts or left <= 0:
            return None
        step = min(_CAP_S, _BASE_S * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)
        return min(step, left)


def default_policy() -> RetryPolicy:
    """The policy of the dask config ``gagebench.retries`` (gagebench.yaml defaults)."""
    import dask.config

    from gagebench import defaults as _defaults  # registers gagebench.yaml  # noqa: F401

    return RetryPolicy.from_mapping(dask.config.get("gagebench.retries", default=None))


# -- what is transient -------------------------------------------------------------------

_TRANSIENT_CODES = {
    "SlowDown",
    "ServiceUnavailable",
    "InternalError",
    "RequestTimeout",
    "RequestTimeTooSkewed",
    "Throttling",
    "ThrottlingException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "BadDigest",
    "XAmzContentSHA256Mismatch",
    "500",
    "502",
    "503",
    "504",
}
_TRANSIENT_NAMES = {
    # botocore
    "ConnectionError",
    "EndpointConnectionError",
    "ConnectTimeoutError",
    "ReadTimeoutError",
    "ConnectionClosedError",
    "ResponseStreamingError",
    "HTTPClientError",
    "IncompleteReadError",
    "FlexibleChecksumError",
    "ChecksumError",
    "ResponseParserError",
    # aiohttp / asyncio / builtins
    "ClientConnectionError",
    "ClientConnectorError",
    "ClientOSError",
    "ServerDisconnectedError",
    "ClientPayloadError",
    "ContentLengthError",
    "TransferEncodingError",
    "ServerTimeoutError",
    "TimeoutError",
    "ConnectionResetError",
    "ConnectionRefusedError",
    "ConnectionAbortedError",
    "BrokenPipeError",
    "IncompleteRead",
    "FSTimeoutError",
    # gagebench.storage.integrity
    "IntegrityError",
}
_TRANSIENT_ERRNOS = {errno.EBUSY, errno.EIO, errno.ECONNRESET, errno.ECONNREFUSED, errno.ETIMEDOUT}
_PERMANENT_NAMES = {
    "FileNotFoundError",
    "PermissionError",
    "NoCredentialsError",
    "PartialCredentialsError",
}


def exception_chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and the exceptions it was raised from or during, each once."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _http_status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    if isinstance(response, Mapping):
        meta = response.get("ResponseMetadata") or {}
        status = meta.get("HTTPStatusCode")
        return int(status) if isinstance(status, int) else None
    return None


def is_transient(exc: BaseException) -> bool:
    """True for errors a retry can cure: outages, 5xx, throttling, cut-off or bad bodies."""
    chain = exception_chain(exc)
    for err in chain:
        names = {cls.__name__ for cls in type(err).__mro__}
        if names & _PERMANENT_NAMES and not names & {"ConnectionError"}:
            return False
        status = _http_status(err)
        if status is not None:
            code = str((getattr(err, "response", {}) or {}).get("Error", {}).get("Code", ""))
            if status == 501:  # Not Implemented (e.g. a conditional write): never cured
                return False
            return status >= 500 or status == 429 or code in _TRANSIENT_CODES
    for err in chain:
        names = {cls.__name__ for cls in type(err).__mro__}
        if names & _TRANSIENT_NAMES:
            return True
        if isinstance(err, OSError) and err.errno in _TRANSIENT_ERRNOS:
            return True
    return False


#: Packages whose own exceptions are storage failures (S3, HTTP, file systems, zarr).
STORAGE_PACKAGES = frozenset(
    {"botocore", "aiobotocore", "s3fs", "aiohttp", "gcsfs", "adlfs", "fsspec", "zarr", "numcodecs"}
)


#: aiohttp's refusal of an ``Authorization`` header beside ``user:pass@`` in the URL.
_TWO_CREDENTIALS = "Cannot combine AUTHORIZATION header"


def is_credential_conflict(exc: BaseException) -> bool:
    """aiohttp's ``ValueError`` for ``user:pass@`` in a URL beside an ``Authorization``
    header (a request refused before it is sent: a setting to fix, not a missing file)."""
    return isinstance(exc, ValueError) and _TWO_CREDENTIALS in str(exc)


def is_storage_failure(exc: BaseException) -> bool:
    """True for an error of reading or opening storage, as opposed to a bug in gagebench.

    gagebench's StorageError (with StoreUnavailable and IntegrityError), OS errors and
    timeouts, transient errors, a storage option the file system does not take, and the
    storage libraries' own exceptions (by package, so botocore need not be imported).
    """
    if isinstance(exc, StorageError | OSError | TimeoutError) or is_transient(exc):
        return True
    if isinstance(exc, TypeError) and "unexpected keyword argument" in str(exc):
        return True
    if is_credential_conflict(exc):
        return True
    return type(exc).__module__.split(".")[0] in STORAGE_PACKAGES


def error_summary(exc: BaseException) -> str:
    """``Type: first line`` of an error, for one-line messages (gagebench's: the line only)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if text and isinstance(exc, StorageError):
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class StoreUnavailable(StorageError, ConnectionError):
    """The object store kept failing for the whole retry budget (an outage, or never up)."""


def given_up(
    where: str, exc: BaseException, attempts: int, waited: float, answered: bool
) -> StoreUnavailable:
    """The error of a request that kept failing for ``attempts`` and ``waited`` seconds."""
    if answered:
        text = (
            f"the object store {where} kept failing for {waited:.1f} s and {attempts} "
            f"attempts ({error_summary(exc)}): an outage or a damaged object; raise "
            "gagebench.retries.max_wait_s to wait longer"
        )
    else:
        text = (
            f"the object store {where} cannot be reached ({error_summary(exc)}, {attempts} "
            "attempts): check endpoint_url in storage_options and the network (on the "
            "command line: --storage-option endpoint_url=... or --config run.yaml)"
        )
    return StoreUnavailable(text)


# -- outage bookkeeping ------------------------------------------------------------------


class _Outage:
    """Requests of this process that are failing now; one log line once they all succeed.

    An outage starts with the first failed request and lasts while any request that
    failed is still being retried. It ends when the last of them settles: if it
    succeeded, the outage is logged as waited out (how long, how many retries); if it
    gave up, nothing is logged here (its error is raised and reported by the caller).
    Requests that succeed without having failed end nothing: during a storm some
    requests get through while others are still failing.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.since: float | None = None
        self.failing = 0
        self.retries = 0
        self.last = ""

    def failed(self, exc: BaseException, first: bool = True) -> None:
        """A request failed (``first``: its first failure, so one more request is failing)."""
        with self._lock:
            if self.since is None:
                self.since = time.monotonic()
                self.retries = 0
            if first:
                self.failing += 1
            self.retries += 1
            self.last = error_summary(exc)

    def settled(self, where: str, ok: bool) -> None:
        """A request that had failed succeeded (``ok``) or gave up."""
        with self._lock:
            if self.since is None:
                return
            self.failing = max(0, self.failing - 1)
            if self.failing:
                return  # other requests are still failing: the outage goes on
            waited = time.monotonic() - self.since
            message = (
                f"object store {where} failed for {waited:.1f} s ({self.retries} retried "
                f"requests, last error {self.last}); waited it out and continued"
            )
            self.since = None
        if not ok:
            log.debug("%s gave up after %.1f s of failures", where, waited)
        elif waited >= NOTICE_S:
            _report(message)
        else:
            log.debug("%s", message)


OUTAGE = _Outage()


def _report(message: str) -> None:
    """Log on the client; in a Dask worker process, send the line to the client as an event.

    Requests run on fsspec's I/O thread, where ``get_worker()`` knows no worker: the
    worker of this process is found among the live ones.
    """
    worker = _this_worker()
    if worker is None:
        log.warning("%s", message)
        return
    log.info("%s", message)
    worker.log_event(EVENT_TOPIC, {"message": message, "worker": worker.address})


def _this_worker() -> Any:
    import sys

    if "distributed" not in sys.modules:
        return None
    from distributed import Worker, get_worker

    try:
        return get_worker()
    except ValueError:
        workers = list(Worker._instances)
        return workers[0] if len(workers) == 1 else None


# -- the retry loop ------------------------------------------------------------------------

_IN_RETRY: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "gagebench_in_retry", default=False
)


async def retrying(
    policy: RetryPolicy,
    call: Callable[[], Awaitable[T]],
    where: str,
    answered: bool = True,
) -> T:
    """Await ``call()`` until it succeeds, retrying transient errors within ``policy``.

    Calls nested inside ``call`` are not retried again (one layer, one budget). When the
    budget is spent, raises :class:`StoreUnavailable` (``answered``: whether the endpoint
    ever answered, which words the message as an outage rather than a bad endpoint).
    """
    if _IN_RETRY.get():
        return await call()
    attempt = 0
    waited = 0.0
    ok = False
    try:
        while True:
            attempt += 1
            _IN_RETRY.set(True)  # restored by value below: a token reset raises when an
            try:  # abandoned coroutine is closed from another context (garbage collection)
                result = await call()
            except Exception as exc:
                if not is_transient(exc):
                    raise
                pause = policy.delay(attempt, waited)
                if pause is None:
                    if attempt == 1:
                        raise
                    raise given_up(where, exc, attempt, waited, answered) from exc
                OUTAGE.failed(exc, first=attempt == 1)
                log.debug(
                    "transient error on %s (attempt %d): %s", where, attempt, error_summary(exc)
                )
                await asyncio.sleep(pause)
                waited += pause
            else:
                ok = True
                return result
            finally:
                _IN_RETRY.set(False)
    finally:
        if attempt > 1:  # this request failed at least once: it has settled now
            OUTAGE.settled(where, ok)
