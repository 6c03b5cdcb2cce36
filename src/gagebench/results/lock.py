"""One run at a time per run folder: a lease file with its owner and a heartbeat.

Two processes running the same run id would both compute and both commit. The first takes
``<run>/_lock.json`` (owner token, host, pid, start time, last heartbeat) and renews the
heartbeat from a background thread; a second one refuses while the lease is fresh.

Taking, renewing and taking over the lease are compare-and-swap writes, so exactly one of
two runs racing for a folder wins:

- **S3** (and stores that implement S3's conditional writes: AWS, MinIO, Ceph RGW 18+,
  Cloudflare R2): the lease is created with ``If-None-Match: *`` and renewed or taken over
  with ``If-Match: <its ETag>``; a ``412 Precondition Failed`` means another run was first.
  A write whose answer was lost and retried can see its own earlier write as the
  precondition that failed: the lease is read back, and a token of ours is ours.
- **Local disk**: the lease is created complete with an exclusive hard link (``os.link``
  of a written temporary file; fails if the lease exists); renew and take-over compare the
  file's bytes under an ``flock`` of the run folder and then replace it.
- **Other stores** (gcs, az, memory), and an S3 endpoint that answers the conditional
  headers with ``501 Not Implemented``: no portable "create if absent", so the lease is
  written, left to settle for ``settle_s`` and read back - whoever's token is there owns
  it (last writer wins, the loser sees it). Two runs started within the same second can
  then both proceed; a warning says so when it happens on S3.

A run that finds its lease taken by another run (when it renews it, or reads it back)
has lost it: :meth:`RunLock.check` then raises :class:`LeaseLostError` (exit 1); the
pipeline checks after each batch and :meth:`RunLock.verify` reads the lease back before
the commit publishes anything, so a run without the lease never commits or unpublishes.

Stale rule: a lease whose heartbeat is older than ``ttl_s`` belongs to a dead run and is
taken over (with a warning); so is one held by a process of this host that no longer
exists. A clean exit (success, error, Ctrl-C, SIGTERM) deletes the lease.

In a Kubernetes pod (``POD_NAME`` set, as the chart does) a fresh lease of another host is
waited out for up to one TTL before refusing: the Job controller starts a retry pod only
after the previous one died, and one killed with SIGKILL (out of memory) could not delete
its lease - the retry must not fail on it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

from gagebench.errors import LeaseLostError, RunLockedError
from gagebench.results.layout import LOCK_FILE
from gagebench.storage.errors import translating
from gagebench.storage.retry import exception_chain

log = logging.getLogger(__name__)

#: Seconds without a heartbeat after which a lease is stale.
TTL_S = 60.0
#: Seconds a lease is left to settle before it is read back (stores without conditional writes).
SETTLE_S = 1.0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _precondition_failed(exc: BaseException) -> bool:
    """True when a conditional write was refused: 412, 409 (a concurrent conditional write)."""
    for err in exception_chain(exc):
        if isinstance(err, FileExistsError):
            return True
        response = getattr(err, "response", None)
        if isinstance(response, dict):
            code = str(response.get("Error", {}).get("Code", ""))
            status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in ("PreconditionFailed", "ConditionalRequestConflict") or status in (409, 412):
                return True
    return False


def _not_implemented(exc: BaseException) -> bool:
    """True when the store does not take the conditional headers (501 / NotImplemented)."""
    for err in exception_chain(exc):
        response = getattr(err, "response", None)
        if isinstance(response, dict):
            code = str(response.get("Error", {}).get("Code", ""))
            status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code == "NotImplemented" or status == 501:
                return True
    return False


def _parse(data: bytes) -> dict[str, Any]:
    try:
        loaded = json.loads(data)
    except ValueError:  # half-written or foreign: treat as stale
        return {}
    return loaded if isinstance(loaded, dict) else {}


# -- how each kind of store takes the lease ----------------------------------------------
# ``version`` is what a compare-and-swap compares: the ETag on S3, the bytes on a local
# disk, the owner's token on stores without conditional writes.


class _Settled:
    """Stores without conditional writes: write, settle, read back (last writer wins)."""

    conditional = False

    def __init__(self, fs: Any, path: str, settle_s: float) -> None:
        self.fs = fs
        self.path = path
        self.settle_s = settle_s

    def fetch(self) -> tuple[dict[str, Any] | None, Any]:
        try:
            self.fs.invalidate_cache()
            holder = _parse(bytes(self.fs.cat_file(self.path)))
        except FileNotFoundError:
            return None, None
        return holder, holder.get("token")

    def _write_and_see(self, data: bytes, token: str) -> Any | None:
        self.fs.pipe_file(self.path, data)
        time.sleep(self.settle_s)
        holder, version = self.fetch()
        return version if holder is not None and holder.get("token") == token else None

    def create(self, data: bytes, token: str) -> Any | None:
        if self.fetch()[0] is not None:
            return None
        return self._write_and_see(data, token)

    def replace(self, data: bytes, token: str, version: Any) -> Any | None:
        if self.fetch()[1] != version:
            return None
        if version == token:  # a renewal: nothing to settle
            self.fs.pipe_file(self.path, data)
            return token
        return self._write_and_see(data, token)

    def delete(self, version: Any, token: str) -> None:
        holder = self.fetch()[0]
        if holder is not None and holder.get("token") == token:
            self.fs.rm_file(self.path)


class _S3(_Settled):
    """S3 conditional writes: ``If-None-Match: *`` to create, ``If-Match: <ETag>`` to swap."""

    conditional = True

    def fetch(self) -> tuple[dict[str, Any] | None, Any]:
        from fsspec.asyn import sync

        bucket, key, _ = self.fs.split_path(self.path)

        async def get() -> tuple[bytes, str]:
            resp = await self.fs._call_s3("get_object", Bucket=bucket, Key=key)
            async with resp["Body"] as body:
                data = await body.read()
            return data, str(resp["ETag"])

        try:
            data, etag = sync(self.fs.loop, get)
        except FileNotFoundError:
            return None, None
        return _parse(data), etag

    def _conditional(self, data: bytes, token: str, **condition: Any) -> Any | None:
        try:
            resp = self.fs.pipe_file(self.path, data, **condition)
        except Exception as exc:
            if _not_implemented(exc):
                raise _NoConditionalWrites from exc
            # If-Match on a lease deleted meanwhile: NoSuchKey (a missing bucket raises)
            gone = isinstance(exc, FileNotFoundError) and "IfMatch" in condition
            if not _precondition_failed(exc) and not gone:
                raise
            # refused - or our own earlier attempt, whose answer was lost, got there first
            holder, version = self.fetch()
            return version if holder is not None and holder.get("token") == token else None
        return str(resp["ETag"]) if isinstance(resp, dict) and "ETag" in resp else None

    def create(self, data: bytes, token: str) -> Any | None:
        return self._conditional(data, token, mode="create")

    def replace(self, data: bytes, token: str, version: Any) -> Any | None:
        return self._conditional(data, token, IfMatch=version)

    def delete(self, version: Any, token: str) -> None:
        bucket, key, _ = self.fs.split_path(self.path)
        try:
            self.fs.call_s3("delete_object", Bucket=bucket, Key=key, IfMatch=version)
        except Exception as exc:
            if _precondition_failed(exc) or isinstance(exc, FileNotFoundError):
                return  # no longer ours, or already gone
            if not _not_implemented(exc):
                raise
            super().delete(version, token)


class _NoConditionalWrites(Exception):
    """The S3 endpoint refused the conditional headers (501): fall back to read-back."""


class _LocalDisk:
    """A local disk: exclusive hard link to create, compare-then-replace under flock."""

    conditional = True

    def __init__(self, path: str) -> None:
        self.path = path
        self.folder = os.path.dirname(path) or "."

    def fetch(self) -> tuple[dict[str, Any] | None, Any]:
        try:
            with open(self.path, "rb") as fh:
                data = fh.read()
        except FileNotFoundError:
            return None, None
        return _parse(data), data

    def _temporary(self, data: bytes, token: str) -> str:
        tmp = f"{self.path}.tmp-{token}"
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return tmp

    @contextlib.contextmanager
    def _folder_locked(self) -> Iterator[None]:
        import fcntl

        fd = os.open(self.folder, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the flock

    def create(self, data: bytes, token: str) -> Any | None:
        os.makedirs(self.folder, exist_ok=True)
        tmp = self._temporary(data, token)
        try:
            os.link(tmp, self.path)
        except FileExistsError:
            return None
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        return data

    def replace(self, data: bytes, token: str, version: Any) -> Any | None:
        with self._folder_locked():
            if self.fetch()[1] != version:
                return None
            tmp = self._temporary(data, token)
            try:
                os.replace(tmp, self.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        return data

    def delete(self, version: Any, token: str) -> None:
        with self._folder_locked():
            if self.fetch()[1] == version:
                os.unlink(self.path)


def _is_s3(fs: Any) -> bool:
    protocol = getattr(fs, "protocol", ())
    protocols = (protocol,) if isinstance(protocol, str) else tuple(protocol or ())
    return "s3" in protocols and hasattr(fs, "call_s3")


class RunLock:
    """The lease on one run folder (a :class:`gagebench.results.writer.RunSink`'s file system)."""

    def __init__(
        self,
        fs: Any,
        path: str,
        url: str,
        *,
        ttl_s: float = TTL_S,
        settle_s: float = SETTLE_S,
        local: bool = False,
        wait_s: float | None = None,
    ) -> None:
        self.fs = fs
        self.wait_s = (
            (ttl_s + 15.0 if os.environ.get("POD_NAME") else 0.0) if wait_s is None else wait_s
        )
        self.path = path
        self.url = url
        self.ttl_s = ttl_s
        self.settle_s = settle_s
        self.local = local
        self.token = uuid.uuid4().hex
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.started = time.time()
        self._store: _Settled | _LocalDisk
        if local:
            self._store = _LocalDisk(path)
        elif _is_s3(fs):
            self._store = _S3(fs, path, settle_s)
        else:
            self._store = _Settled(fs, path, settle_s)
        self._version: Any = None
        self._renewed = 0.0
        self._lost: str | None = None
        self._guard = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the lease document ------------------------------------------------------------
    def _document(self) -> bytes:
        return json.dumps(
            {
                "token": self.token,
                "host": self.host,
                "pid": self.pid,
                "started": self.started,
                "heartbeat": time.time(),
                "ttl_s": self.ttl_s,
            }
        ).encode()

    def _call(self, method: str, *args: Any) -> Any:
        """One store operation; an S3 endpoint without conditional writes falls back."""
        try:
            return getattr(self._store, method)(*args)
        except _NoConditionalWrites:
            log.warning(
                "the object store of %s does not support conditional writes (If-None-Match, "
                "If-Match): the run folder's lease falls back to write-and-read-back, which "
                "cannot tell two runs started within %.0f s apart",
                self.url,
                self.settle_s,
            )
            self._store = _Settled(self.fs, self.path, self.settle_s)
            if method == "replace":  # versions are now owners' tokens, not ETags
                data, token, version = args
                ours = version is not None and version == self._version
                args = (data, token, token if ours else self._store.fetch()[1])
            return getattr(self._store, method)(*args)

    def _read(self) -> dict[str, Any] | None:
        return self._store.fetch()[0]

    # -- acquire / release -------------------------------------------------------------
    def why_stale(self, holder: dict[str, Any]) -> str | None:
        """Why ``holder``'s lease can be taken over, or None while it is alive."""
        if not holder:
            return "the lease file is unreadable"
        age = time.time() - float(holder.get("heartbeat", 0))
        if age > float(holder.get("ttl_s", self.ttl_s)):
            return f"its last heartbeat is {age:.0f} s old"
        pid = holder.get("pid")
        if holder.get("host") == self.host and isinstance(pid, int) and not _pid_alive(pid):
            return f"process {pid} on this host no longer exists"
        return None

    def _refuse(self, holder: dict[str, Any]) -> RunLockedError:
        age = time.time() - float(holder.get("heartbeat", 0))
        ttl = float(holder.get("ttl_s", self.ttl_s))
        return RunLockedError(
            f"run folder {self.url} is in use by another gagebench run (host "
            f"{holder.get('host')}, pid {holder.get('pid')}, heartbeat {age:.0f} s ago): "
            "wait for it to finish, or choose another run_id; if that run is dead, its "
            f"lease expires {max(ttl - age, 0):.0f} s from now (or delete {self.url}/{LOCK_FILE})"
        )

    def _wait_for(
        self, holder: dict[str, Any], version: Any, deadline: float
    ) -> tuple[dict[str, Any] | None, Any]:
        """Poll a live holder's lease until it goes stale or away, or ``deadline`` passes."""
        log.warning(
            "run folder %s is held by host %s pid %s; waiting up to %.0f s for it to be "
            "released or go stale",
            self.url,
            holder.get("host"),
            holder.get("pid"),
            deadline - time.monotonic(),
        )
        while time.monotonic() < deadline:
            time.sleep(min(5.0, max(deadline - time.monotonic(), 0.1)))
            current, version = self._call("fetch")
            if current is None or self.why_stale(current) is not None:
                return current, version
        return holder, version

    def acquire(self) -> None:
        """Take the lease, or raise :class:`RunLockedError` naming the live holder.

        A storage failure (a missing bucket, a path that is a file, a read-only disk) is
        a :class:`~gagebench.errors.StorageError` naming the run folder.
        """
        with translating(self.url, "take the lease of the run folder", key="gagebench.output"):
            self._acquire()
        self._renewed = time.monotonic()
        self._thread = threading.Thread(
            target=self._heartbeat, name="gagebench-run-lock", daemon=True
        )
        self._thread.start()

    def _acquire(self) -> None:
        deadline = time.monotonic() + self.wait_s
        holder: dict[str, Any] | None = None
        for _ in range(3):
            holder, version = self._call("fetch")
            if holder is None:
                got = self._call("create", self._document(), self.token)
                if got is not None:
                    self._version = got
                    return
                continue  # someone created it meanwhile: look again
            if self.why_stale(holder) is None and self.wait_s > 0:
                holder, version = self._wait_for(holder, version, deadline)
                if holder is None:
                    continue
            reason = self.why_stale(holder)
            if reason is None:
                raise self._refuse(holder)
            log.warning(
                "taking over the lease of %s from host %s pid %s: %s",
                self.url,
                holder.get("host"),
                holder.get("pid"),
                reason,
            )
            got = self._call("replace", self._document(), self.token, version)
            if got is not None:
                self._version = got
                return
        holder = self._read() or holder
        if holder:
            raise self._refuse(holder)
        raise RunLockedError(
            f"could not take the lease of run folder {self.url}: other runs kept writing it "
            "(3 attempts); make sure only one run uses this output and run_id, then run again"
        )

    def _heartbeat(self) -> None:
        warned = False
        while not self._stop.wait(self.ttl_s / 4):
            try:
                self.renew()
                warned = False
            except LeaseLostError as exc:  # the run raises it at its next check
                log.debug("%s", exc)
                return
            except Exception as exc:  # a missed beat is not fatal; the next one may work
                log.debug("lease heartbeat failed: %s", exc)
                if time.monotonic() - self._renewed > self.ttl_s and not warned:
                    warned = True  # the next renewal or the commit's check tells
                    log.warning(
                        "the lease of %s could not be renewed for %.0f s (%s); another run "
                        "may take the folder over, and this one then stops before committing",
                        self.url,
                        self.ttl_s,
                        exc,
                    )

    def _lose(self, why: str) -> LeaseLostError:
        with self._guard:
            if self._lost is None:
                self._lost = why
        return self.lost_error()

    def lost_error(self) -> LeaseLostError:
        """The error of a run that lost its lease (why, and what to do)."""
        return LeaseLostError(
            f"this run no longer holds the run folder {self.url}: {self._lost}. It stops "
            "without committing; the other run finishes the folder. If no other run should "
            "be there, check that two runs do not share output and run_id"
        )

    def _taken(self, holder: dict[str, Any] | None) -> LeaseLostError:
        if holder is None:
            return self._lose("its lease file was deleted")
        return self._lose(
            f"its lease was taken by another run (host {holder.get('host')}, pid "
            f"{holder.get('pid')})"
        )

    def renew(self) -> None:
        """Write a fresh heartbeat if the lease is still ours; else :class:`LeaseLostError`."""
        self.check()
        with self._guard:
            got = self._call("replace", self._document(), self.token, self._version)
            if got is not None:
                self._version = got
                self._renewed = time.monotonic()
                return
            holder, version = self._call("fetch")
            if holder is not None and holder.get("token") == self.token:
                self._version = version  # ours: a renewal whose answer was lost
                return
        raise self._taken(holder)

    def check(self) -> None:
        """Raise :class:`LeaseLostError` if this run has lost its lease (no I/O)."""
        if self._lost is not None:
            raise self.lost_error()

    def verify(self) -> None:
        """Read the lease back: raise :class:`LeaseLostError` unless it is still ours."""
        self.check()
        with translating(self.url, "read the lease of the run folder", key="gagebench.output"):
            holder = self._read()
        if holder is None or holder.get("token") != self.token:
            raise self._taken(holder)

    def refresh(self) -> None:
        """Renew the lease now (e.g. after the folder was cleared by --force)."""
        with translating(self.url, "renew the lease of the run folder", key="gagebench.output"):
            self.renew()

    def release(self) -> None:
        """Stop the heartbeat and delete the lease if it is still ours."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._lost is None and self._version is not None:
            with contextlib.suppress(Exception):
                self._call("delete", self._version, self.token)

    @contextlib.contextmanager
    def held(self) -> Iterator[RunLock]:
        """Hold the lease for the duration of the block."""
        self.acquire()
        try:
            yield self
        finally:
            self.release()


_TMP_NAME = re.compile(r"\.tmp-[0-9a-f]{32}$")


def remove_stale_temporaries(fs: Any, root: str) -> list[str]:
    """Delete ``*.tmp-<uuid>`` files under ``root`` (writers killed mid-write left them).

    Safe only while the run's lease is held: no other writer can own them then.
    """
    try:
        found = fs.find(root)
    except FileNotFoundError:
        return []
    stale = [path for path in found if _TMP_NAME.search(str(path))]
    for path in stale:
        with contextlib.suppress(FileNotFoundError):
            fs.rm_file(path)
    if stale:
        log.info("removed %d temporary file(s) left by an interrupted write", len(stale))
    return stale
