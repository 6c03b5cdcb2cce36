"""The I/O of one run folder at any fsspec URL: atomic writes, reads, clearing it.

Atomic writes: on a local file system a file is written under a temporary name and
moved into place; on object stores (S3, GCS, memory) a file is staged on local disk and
uploaded only once complete (fsspec's writers would upload on close even after an
error; a staging folder is named after its process, and one left by a killed process is
removed at the next commit: :func:`remove_stale_staging`).
Every path is made by :func:`~gagebench.results.layout.run_path` (never outside the
folder) and every failure names the URL (:func:`~gagebench.storage.errors.translating`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import IO, Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from gagebench.results.layout import LOCK_FILE, MANIFEST_FILE, PARTS, run_path
from gagebench.results.reader import load_manifest
from gagebench.storage.errors import translating

log = logging.getLogger(__name__)


class RunFolderIO:
    """Reads and atomic writes inside the folder of one run at an fsspec URL."""

    def __init__(self, run_url: str, storage_options: Mapping[str, Any] | None = None):
        self.url = run_url.rstrip("/")
        self.storage_options = dict(storage_options or {})
        # only this call: fsspec says a bad protocol or option with these types
        with translating(self.url, "open the output", also=(ImportError, ValueError, TypeError)):
            fs, root = fsspec.core.url_to_fs(self.url, **self.storage_options)
        self.fs: fsspec.AbstractFileSystem = fs
        self.root: str = root.rstrip("/")

    # -- paths -------------------------------------------------------------------------
    def path(self, *parts: str) -> str:
        """A path inside the run folder (:func:`~gagebench.results.layout.run_path`: never
        outside it)."""
        return run_path(self.root, *parts)

    def url_of(self, *parts: str) -> str:
        """A URL inside the run folder (for messages and the manifest)."""
        return run_path(self.url, *parts)

    @property
    def is_local(self) -> bool:
        """True on a local file system, where atomicity needs a temporary name + move."""
        return isinstance(self.fs, LocalFileSystem)

    def _guard(self, action: str, url: str) -> contextlib.AbstractContextManager[None]:
        return translating(url, action)

    def _url_for(self, path: str) -> str:
        if not path.startswith(self.root):
            return path  # (only named in a message)
        rel = path[len(self.root) :].lstrip("/")
        return self.url_of(rel) if rel else self.url

    # -- whole files ---------------------------------------------------------------------
    def write_bytes(self, path: str, data: bytes) -> None:
        """Write a whole file atomically (temporary name + move locally, one PUT remotely).

        A local write that fails (a full disk) leaves no temporary file behind.
        """
        with self._guard("write", self._url_for(path)):
            if self.is_local:
                self.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
                tmp = f"{path}.tmp-{uuid.uuid4().hex}"
                try:
                    self.fs.pipe_file(tmp, data)
                    self.fs.mv(tmp, path)
                except BaseException:
                    with contextlib.suppress(OSError):
                        os.unlink(tmp)
                    raise
            else:
                self.fs.pipe_file(path, data)

    @contextlib.contextmanager
    def open_atomic(self, path: str) -> Iterator[IO[bytes]]:
        """A writable file that appears under ``path`` only once it is closed complete."""
        with self._guard("write", self._url_for(path)):
            if self.is_local:
                self.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
                tmp = f"{path}.tmp-{uuid.uuid4().hex}"
                try:
                    with self.fs.open(tmp, "wb") as fh:
                        yield fh
                    self.fs.mv(tmp, path)
                finally:
                    if self.fs.exists(tmp):
                        self.fs.rm(tmp)
            else:
                # fsspec's writers upload on close even when the block raised: stage the
                # file locally and upload it only once it is complete.
                with tempfile.TemporaryDirectory(prefix=_staging_prefix()) as tmpdir:
                    local = f"{tmpdir}/{path.rsplit('/', 1)[-1]}"
                    with open(local, "wb") as fh:
                        yield fh
                    self.fs.put_file(local, path)

    def read_bytes(self, path: str) -> bytes:
        """Read a whole file."""
        with self._guard("read", self._url_for(path)):
            return bytes(self.fs.cat_file(path))

    def exists(self, path: str) -> bool:
        """Whether a file exists (errors name the URL)."""
        with self._guard("read", self._url_for(path)):
            return bool(self.fs.exists(path))

    def remove(self, rel: str) -> None:
        """Delete one file of the run folder (absent is fine)."""
        with self._guard("delete", self.url_of(rel)):
            with contextlib.suppress(FileNotFoundError):
                self.fs.rm_file(self.path(rel))
            self.fs.invalidate_cache()

    def remove_tree(self, rel: str) -> None:
        """Delete a file or a folder of the run folder, whatever it holds (absent is fine)."""
        path = self.path(rel)
        with self._guard("delete", self.url_of(rel)):
            self.fs.invalidate_cache()
            if self.fs.exists(path):
                self.fs.rm(path, recursive=True)
            self.fs.invalidate_cache()

    def unpublish(self, rels: Sequence[str]) -> None:
        """Best effort: remove files of the run folder after a failed commit (the
        commit's own error is the one to report, not a failure to remove)."""
        for rel in rels:
            path = self.path(rel)
            try:
                if self.fs.exists(path):
                    self.fs.rm(path)
            except Exception:
                log.debug("could not remove %s after a failed commit", path, exc_info=True)

    # -- the folder ----------------------------------------------------------------------
    def read_manifest(self) -> dict[str, Any] | None:
        """The manifest of a completed run, or None while the run is not complete."""
        with self._guard("read", self.url_of(MANIFEST_FILE)):
            return load_manifest(self.fs, self.root)

    def foreign_entries(self) -> list[str]:
        """The entries of an existing folder at this run's place that is not a gagebench run
        folder (no ``_parts``, ``_lock.json`` or ``manifest.json``): a run must not write
        into it, nor ``--force`` delete it. Empty when absent, empty or a run folder."""
        with self._guard("read", self.url):
            try:
                entries = [str(e).rstrip("/") for e in self.fs.ls(self.root, detail=False)]
            except (FileNotFoundError, NotADirectoryError):
                return []
        names = [name for name in (e.rsplit("/", 1)[-1] for e in entries) if name]
        if {PARTS, LOCK_FILE, MANIFEST_FILE} & set(names):
            return []
        return sorted(names)

    def clear(self) -> None:
        """Remove everything of this run (``--force``): parts, results, manifest.

        The lease (``_lock.json``) stays: the run clearing the folder holds it.
        """
        with self._guard("delete", self.url):
            if self.fs.exists(self.root):
                entries = [str(e) for e in self.fs.ls(self.root, detail=False)]
                others = [e for e in entries if e.rstrip("/").rsplit("/", 1)[-1] != LOCK_FILE]
                if len(others) == len(entries):
                    self.fs.rm(self.root, recursive=True)
                else:
                    for entry in others:
                        self.fs.rm(entry, recursive=True)
            self.fs.invalidate_cache()


_STAGING = "gagebench-stage-"


def _staging_prefix() -> str:
    """The prefix of this process's staging folders (its pid, so stale ones can be told)."""
    return f"{_STAGING}{os.getpid()}-"


def remove_stale_staging() -> list[str]:
    """Remove staging folders that killed processes of this host left in the temp folder."""
    from gagebench.results.lock import _pid_alive

    removed = []
    root = tempfile.gettempdir()
    with contextlib.suppress(OSError):
        for name in os.listdir(root):
            if not name.startswith(_STAGING):
                continue
            pid = name[len(_STAGING) :].split("-", 1)[0]
            if pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
                shutil.rmtree(os.path.join(root, name), ignore_errors=True)
                removed.append(name)
    if removed:
        log.info("removed %d staging folder(s) of killed runs from %s", len(removed), root)
    return removed
