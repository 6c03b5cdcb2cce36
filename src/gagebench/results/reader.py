"""Reading a run back from any fsspec URL: its results table and its manifest.

A run folder (:mod:`gagebench.results.layout`) holds ``results.parquet``, the per-model
HyTEST CSVs and ``manifest.json``. The report, ``gagebench compare`` and resume
(:meth:`~gagebench.results.folder.RunFolderIO.read_manifest`) read it through here, so
they work the same on ``s3://``, ``file://``, ``memory://`` or a path.
A URL that names a ``.parquet`` or ``.csv`` file directly is read as a results table.
"""

from __future__ import annotations

import io
import json
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import fsspec
import pandas as pd

from gagebench.errors import InputError, StorageError
from gagebench.metrics.breakdown import GROUPINGS
from gagebench.results.layout import (
    LOCK_FILE,
    MANIFEST_FILE,
    PARTS,
    PLAN_FILE,
    RESULTS_FILE,
    STARTED_FILE,
    SUITE_FILES,
    breakdown_file,
    part_index,
)
from gagebench.results.resume import recorded_resume
from gagebench.storage.errors import translating


@dataclass(frozen=True)
class RunFolder:
    """A run read back: its URL, results table, manifest (``{}`` when absent), notes and
    breakdown tables (group -> long table, only those the folder holds)."""

    url: str
    results: pd.DataFrame
    manifest: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    breakdowns: dict[str, pd.DataFrame] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """A short name for the run: its run id, else the last part of its URL."""
        run_id = self.manifest.get("run_id") if isinstance(self.manifest, dict) else None
        if isinstance(run_id, str) and run_id:
            return run_id
        return posixpath.basename(self.url.rstrip("/")) or self.url


def open_fs(url: str, storage_options: Mapping[str, Any] | None) -> tuple[Any, str]:
    """The fsspec filesystem and path of ``url`` (a plain path means the local disk)."""
    # only this call: fsspec says an unknown or unavailable protocol with these types
    with translating(url, "open", also=(ImportError, ValueError)):
        return fsspec.core.url_to_fs(url, **dict(storage_options or {}))


def _read_table(url: str, storage_options: Mapping[str, Any] | None) -> pd.DataFrame:
    """A results table from a ``.parquet`` or ``.csv`` file at any URL."""
    fs, path = open_fs(url, storage_options)
    if not fs.exists(path):
        raise StorageError(f"no results table at {url!r}: check the URL and credentials")
    with fs.open(path, "rb") as handle:
        if path.endswith(".csv"):
            return pd.read_csv(handle, dtype={"site_no": str})
        return pd.read_parquet(handle)


def read_run(
    url: str,
    storage_options: Mapping[str, Any] | None = None,
    manifest: Mapping[str, Any] | None = None,
) -> RunFolder:
    """Read a run folder (or a results file) at ``url``.

    Falls back to the per-model HyTEST CSVs when ``results.parquet`` is absent, and notes
    a missing or unreadable manifest instead of failing (the run may still be going).

    Parameters
    ----------
    url
        A run folder (``<output>/<run_id>``) or a ``results.parquet``/``.csv`` file, at
        any fsspec URL.
    storage_options
        fsspec options for ``url`` (credentials, ``endpoint_url``).
    manifest
        Use this one instead of ``manifest.json`` (a run writing its report before its
        manifest, which goes last).

    Returns
    -------
    RunFolder
        ``results`` (one row per gage and model), ``manifest`` (``{}`` when absent),
        ``notes`` (what was missing or fell back) and ``url``.
    """
    with translating(url, "read"):
        return _read_run(url, storage_options, manifest)


def _read_run(
    url: str, storage_options: Mapping[str, Any] | None, manifest: Mapping[str, Any] | None
) -> RunFolder:
    if url.rstrip("/").endswith((".parquet", ".csv")):
        table = _read_table(url, storage_options)
        return RunFolder(url, table, dict(manifest or {}), ("a bare results table",))
    fs, root = open_fs(url, storage_options)
    root = root.rstrip("/")
    notes: list[str] = []
    if manifest is None:
        check_finished(fs, root, url)
    results = load_results(fs, root)
    if results is None:
        results = _from_hytest_csvs(fs, root, url)
        notes.append(f"no {RESULTS_FILE}: rebuilt from the per-model HyTEST CSVs")
    breakdowns = load_breakdowns(fs, root)
    if manifest is not None:
        return RunFolder(url, results, dict(manifest), tuple(notes), breakdowns)
    try:
        found = load_manifest(fs, root)
    except InputError as exc:
        notes.append(f"{exc}; provenance omitted")
        found = {}
    if found is None:
        notes.append(f"no {MANIFEST_FILE}: the run may be unfinished or was written elsewhere")
    return RunFolder(url, results, found or {}, tuple(notes), breakdowns)


class UnfinishedRunError(InputError):
    """The run folder holds a run that has not finished (no ``manifest.json``)."""


def check_finished(fs: Any, root: str, url: str) -> None:
    """Raise :class:`UnfinishedRunError` when ``root`` is a gagebench run folder in
    progress (a live lease: host, pid, heartbeat; e.g. a ``--force`` rerun replacing its
    outputs) or unfinished (stopped or killed: no ``manifest.json``), with the batches
    saved and the command that resumes it."""
    holder = _read_json(fs, posixpath.join(root, LOCK_FILE))
    live = _live_holder(holder)
    if not live and fs.exists(posixpath.join(root, MANIFEST_FILE)):
        return
    plan = _read_json(fs, posixpath.join(root, PARTS, PLAN_FILE))
    if not isinstance(plan, dict):
        return  # not a gagebench run folder (e.g. HyTEST CSVs written elsewhere)
    started = _read_json(fs, posixpath.join(root, PARTS, STARTED_FILE))
    run_id = str(plan.get("run_id") or posixpath.basename(root))
    total = len(plan.get("batches") or [])
    try:
        names = fs.ls(posixpath.join(root, PARTS), detail=False)
    except FileNotFoundError:
        names = []
    saved = sum(1 for name in names if part_index(str(name)) is not None)
    parts = f"{saved} of {total} batches saved"
    if live:
        raise UnfinishedRunError(
            f"{url} is run {run_id} in progress ({live}; {parts}): report or compare it "
            f"once it has finished and written {MANIFEST_FILE}"
        )
    raise UnfinishedRunError(
        f"{url} is run {run_id}, unfinished ({parts}, no {MANIFEST_FILE}: it stopped or was "
        f"killed before its commit): nothing to report or compare yet. Resume it with: "
        f"{recorded_resume(run_id, started)}"
    )


def _read_json(fs: Any, path: str) -> Any:
    try:
        return json.loads(fs.cat_file(path))
    except (FileNotFoundError, ValueError):
        return None


def _live_holder(holder: Any) -> str | None:
    """``host H, pid P, heartbeat N s ago`` of a lease that is still fresh, else None."""
    import os
    import socket
    import time

    if not isinstance(holder, dict):
        return None
    try:
        age = time.time() - float(holder.get("heartbeat", 0))
        ttl = float(holder.get("ttl_s", 60.0))
    except (TypeError, ValueError):
        return None
    if age > ttl:
        return None
    host, pid = holder.get("host"), holder.get("pid")
    if host == socket.gethostname() and isinstance(pid, int):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
    return f"host {host}, pid {pid}, heartbeat {age:.0f} s ago"


def load_results(fs: Any, root: str) -> pd.DataFrame | None:
    """``results.parquet`` of the run folder ``root`` on ``fs``, or None when absent."""
    path = posixpath.join(root.rstrip("/"), RESULTS_FILE)
    if not fs.exists(path):
        return None
    # whole-object reads (cat_file): retried and length-checked by the storage layer, and
    # never sized from a listing cached before the file was written
    return pd.read_parquet(io.BytesIO(fs.cat_file(path)))


def load_breakdown(fs: Any, root: str, by: str) -> pd.DataFrame | None:
    """``results_by_<by>.parquet`` (a breakdown: one row per site_no, model and group) of
    the run folder ``root`` on ``fs``, or None when the run has no such breakdown.

    Parameters
    ----------
    fs
        The fsspec file system of the run folder (e.g. ``fsspec.filesystem("file")``).
    root
        The run folder's path on ``fs``.
    by
        The breakdown: ``"season"``, ``"month"`` or ``"water_year"``.

    Returns
    -------
    pandas.DataFrame or None
        The long table (``site_no``, ``model``, the group column, the metric columns,
        ``n_days``, ``status``, ``note``), or None without that breakdown.
    """
    path = posixpath.join(root.rstrip("/"), breakdown_file(by))
    if not fs.exists(path):
        return None
    return pd.read_parquet(io.BytesIO(fs.cat_file(path)))


def load_breakdowns(fs: Any, root: str) -> dict[str, pd.DataFrame]:
    """The breakdown tables (``results_by_<group>.parquet``) of the run folder ``root``:
    group -> long table, for the groups whose file is there."""
    found = {}
    for group in GROUPINGS:
        table = load_breakdown(fs, root, group)
        if table is not None:
            found[group] = table
    return found


def load_manifest(fs: Any, root: str) -> dict[str, Any] | None:
    """``manifest.json`` of the run folder ``root`` on ``fs``; None while the run is not
    complete. Raises :class:`InputError` when the file is not a JSON object."""
    path = posixpath.join(root.rstrip("/"), MANIFEST_FILE)
    if not fs.exists(path):
        return None
    try:
        loaded = json.loads(fs.cat_file(path))
    except ValueError as exc:
        raise InputError(f"{MANIFEST_FILE} is not valid JSON ({exc})") from exc
    if not isinstance(loaded, dict):
        raise InputError(f"{MANIFEST_FILE} is not a JSON object")
    return loaded


def _from_hytest_csvs(fs: Any, root: str, url: str) -> pd.DataFrame:
    frames = []
    for suite_file in (SUITE_FILES["standard"], SUITE_FILES["dscore"], SUITE_FILES["benchmark"]):
        for path in sorted(fs.glob(posixpath.join(root, "*", suite_file))):
            model = posixpath.basename(posixpath.dirname(path))
            with fs.open(path, "rb") as handle:
                frame = pd.read_csv(handle, dtype={"site_no": str})
            frames.append(frame.assign(model=model).set_index(["site_no", "model"]))
    if not frames:
        raise InputError(
            f"{url!r} holds neither {RESULTS_FILE} nor <model>/standard_suite.csv or "
            "dscore.csv: give the folder of a gagebench run (or a results .parquet/.csv)"
        )
    merged: pd.DataFrame = frames[0]
    for frame in frames[1:]:
        merged = merged.combine_first(frame)
    return merged.reset_index()
