"""One run at a time per run folder: a lease file with its owner and a heartbeat.

Two processes running the same run id would both compute and both commit. The first takes
``<run>/_lock.json`` (owner token, host, pid, start time, last heartbeat) and renews the
heartbeat from a background thread; a second one refuses while the lease is fresh.

Object stores have no portable "create if absent": the lease is written, left to settle
for a moment, and read back - whoever's token is there owns it (last writer wins, and the
loser sees it). On a local disk the file is created exclusively (``O_EXCL``).

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

from gagebench.errors import GagebenchError
from gagebench.results.layout import LOCK_FILE

log = logging.getLogger(__name__)

#: Seconds without a heartbeat after which a lease is stale.
TTL_S = 60.0
#: Seconds a remote lease is left to settle before it is read back.
SETTLE_S = 1.0


class RunLockedError(GagebenchError):
    """Another live process holds the run folder's lease."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


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

    def _read(self) -> dict[str, Any] | None:
        try:
            self.fs.invalidate_cache()
            data = json.loads(self.fs.cat_file(self.path))
        except FileNotFoundError:
            return None
        except ValueError:  # half-written or foreign: treat as stale
            return {}
        return data if isinstance(data, dict) else {}

    def _write(self) -> None:
        parent = self.path.rsplit("/", 1)[0]
        if self.local:
            self.fs.makedirs(parent, exist_ok=True)
            tmp = f"{self.path}.tmp-{self.token}"
            self.fs.pipe_file(tmp, self._document())
            self.fs.mv(tmp, self.path)
        else:
            self.fs.pipe_file(self.path, self._document())

    def _create_exclusive(self) -> bool:
        """Local disk: create the lease only if absent (atomic)."""
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as fh:
            fh.write(self._document())
        return True

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

    def _wait_for(self, holder: dict[str, Any], deadline: float) -> dict[str, Any] | None:
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
            current = self._read()
            if current is None or self.why_stale(current) is not None:
                return current
        return holder

    def acquire(self) -> None:
        """Take the lease, or raise :class:`RunLockedError` naming the live holder."""
        deadline = time.monotonic() + self.wait_s
        for _ in range(3):
            holder = self._read()
            if holder is not None and self.why_stale(holder) is None and self.wait_s > 0:
                holder = self._wait_for(holder, deadline)
            if holder is not None:
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
                with contextlib.suppress(FileNotFoundError):
                    self.fs.rm_file(self.path)
            if self.local:
                if self._create_exclusive():
                    break
                continue  # someone created it meanwhile: look again
            self._write()
            time.sleep(self.settle_s)
            holder = self._read()
            if holder and holder.get("token") == self.token:
                break
            if holder:
                raise self._refuse(holder)
        else:
            holder = self._read() or {}
            raise self._refuse(holder)
        self._thread = threading.Thread(
            target=self._heartbeat, name="gagebench-run-lock", daemon=True
        )
        self._thread.start()

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.ttl_s / 4):
            try:
                holder = self._read()
                if holder is not None and holder.get("token") not in (None, self.token):
                    log.warning("the lease of %s was taken by another run", self.url)
                    return
                self._write()
            except Exception as exc:  # a missed beat is not fatal; the next one may work
                log.debug("lease heartbeat failed: %s", exc)

    def refresh(self) -> None:
        """Write the lease again now (e.g. after the folder was cleared by --force)."""
        self._write()

    def release(self) -> None:
        """Stop the heartbeat and delete the lease if it is still ours."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with contextlib.suppress(Exception):
            holder = self._read()
            if holder is not None and holder.get("token") == self.token:
                self.fs.rm_file(self.path)

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
