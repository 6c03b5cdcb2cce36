"""Writing a run folder at any fsspec URL: per-batch parts, resume, the atomic final commit.

File names and schemas are :mod:`gagebench.results.layout`'s.
Atomic writes: on a local file system a file is written under a temporary name and
moved into place; on object stores (S3, GCS, memory) a file is staged on local disk and
uploaded only once complete (fsspec's writers would upload on close even after an
error; a staging folder is named after its process, and one left by a killed process is
removed at the next commit). A commit that fails removes the outputs it had published, so
no results.parquet or CSV without manifest.json looks finished - unless the manifest may
have landed (its write failed as far as this process can tell): it is read back first,
and the outputs are left in place when it is there or cannot be read. A manifest whose
outputs are missing (a commit cut short by an older version) is committed again by the
next run of the same run id, from the saved parts.
Resume: a run started again with the same run id keeps the parts it finds, recomputes
only the missing batches, and refuses to mix parts from a different plan.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import IO, Any, NoReturn

import fsspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

from gagebench.errors import ConfigError, StorageError
from gagebench.redact import redact
from gagebench.results.layout import (
    LOCK_FILE,
    MANIFEST_FILE,
    PARTS,
    PLAN_FILE,
    REPORT_FILE,
    RESULTS_FILE,
    SUITE_FILES,
    Plan,
    part_index,
    part_name,
    results_schema,
    run_path,
    suite_csv_columns,
    to_table,
)
from gagebench.results.reader import load_manifest, load_results
from gagebench.storage.errors import translating

log = logging.getLogger(__name__)


class RunSink:
    """The output folder of one run at an fsspec URL."""

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

    def part_path(self, index: int) -> str:
        """The part file of batch ``index``."""
        return self.path(PARTS, part_name(index))

    @property
    def is_local(self) -> bool:
        """True on a local file system, where atomicity needs a temporary name + move."""
        return isinstance(self.fs, LocalFileSystem)

    # -- low-level I/O -----------------------------------------------------------------
    def _guard(self, action: str, url: str) -> contextlib.AbstractContextManager[None]:
        return translating(url, action)

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

    def _url_for(self, path: str) -> str:
        if not path.startswith(self.root):
            return path  # (only named in a message)
        rel = path[len(self.root) :].lstrip("/")
        return self.url_of(rel) if rel else self.url

    # -- manifest, plan and parts --------------------------------------------------------
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

    def missing_outputs(self, manifest: Mapping[str, Any]) -> list[str]:
        """The outputs ``manifest`` lists that are not in the folder (a commit cut short)."""
        listed = manifest.get("outputs") or [RESULTS_FILE]
        rels = [str(rel) for rel in listed] if isinstance(listed, list) else [RESULTS_FILE]
        return [rel for rel in rels if not self.exists(self.path(rel))]

    def remove(self, rel: str) -> None:
        """Delete one file of the run folder (absent is fine)."""
        with self._guard("delete", self.url_of(rel)):
            with contextlib.suppress(FileNotFoundError):
                self.fs.rm_file(self.path(rel))
            self.fs.invalidate_cache()

    def start(self, plan: Plan) -> set[int]:
        """Save the plan (or check it against the saved one) and list finished batches.

        Raises ConfigError when a saved plan differs (other gages, batch size, models,
        suites or mode): parts of two plans must never be mixed.
        """
        plan_path = self.path(PARTS, PLAN_FILE)
        if self.exists(plan_path):
            saved = Plan.from_json(json.loads(self.read_bytes(plan_path)))
            diffs = saved.differences(plan)
            if diffs:
                raise ConfigError(
                    f"run {plan.run_id!r} at {self.url} was started with a different plan: "
                    f"{'; '.join(diffs)}. Resume it with the same settings, choose a new "
                    "gagebench.run_id, or start it over with --force"
                )
            done = self.finished_batches(len(plan.batches))
            log.info(
                "resuming run %s: %d of %d batches already done",
                plan.run_id,
                len(done),
                len(plan.batches),
            )
            return done
        self.write_bytes(plan_path, json.dumps(plan.to_json()).encode())
        return set()

    def finished_batches(self, n_batches: int) -> set[int]:
        """Indices of batches whose part file exists."""
        with self._guard("list", self.url_of(PARTS)):
            self.fs.invalidate_cache(self.path(PARTS))
            names = self.fs.ls(self.path(PARTS), detail=False)
        done = set()
        for name in names:
            index = part_index(str(name))
            if index is not None and index < n_batches:
                done.add(index)
        return done

    def write_part(self, index: int, frame: pd.DataFrame, suites: Sequence[str]) -> None:
        """Write one batch's rows as its part file, atomically."""
        buf = io.BytesIO()
        pq.write_table(to_table(frame, suites), buf)
        self.write_bytes(self.part_path(index), buf.getvalue())

    def read_part(self, index: int) -> pa.Table:
        """One batch's rows."""
        return pq.read_table(io.BytesIO(self.read_bytes(self.part_path(index))))

    def _read_whole_part(self, index: int) -> pa.Table:
        """A part for the commit; one that stays unreadable is removed (computed again).

        A part that does not parse is read twice more (the read may have been cut short on
        the way); one that still does not is damaged (cut short when written): it is
        deleted, so the next run of the same run id computes that batch again.
        """
        error: Exception | None = None
        for _ in range(3):
            try:
                return self.read_part(index)
            except pa.ArrowException as exc:  # ArrowInvalid: not a whole Parquet file
                error = exc
        self._drop_damaged(index, f"{type(error).__name__}: {error}")

    def _drop_damaged(self, index: int, why: str) -> NoReturn:
        """Remove a damaged part and raise the StorageError that says so."""
        rel = f"{PARTS}/{part_name(index)}"
        self.remove(rel)
        raise StorageError(
            f"part {index} of {self.url} ({rel}) is damaged ({why}); it is removed, and "
            "its batch is computed again when the run is resumed"
        )

    def remove_stale_temporaries(self) -> list[str]:
        """Remove temporary files of interrupted writes, here and in the staging folder."""
        from gagebench.results.lock import remove_stale_temporaries

        remove_stale_staging()
        with self._guard("list", self.url):
            return remove_stale_temporaries(self.fs, self.root)

    # -- final commit --------------------------------------------------------------------
    def commit(
        self,
        plan: Plan,
        manifest: Callable[[dict[str, Any]], dict[str, Any]],
        report: Callable[[dict[str, Any]], str | None] | None = None,
        lease: Callable[[], None] | None = None,
    ) -> dict[str, Any]:
        """Assemble the parts into the published outputs; write the manifest last.

        Streams part by part (memory stays flat): results.parquet and one HyTEST CSV per
        model and suite. Checks that every planned gage appears exactly once per model.
        ``manifest`` gets the commit facts (counts, outputs) and returns the manifest;
        ``report`` (optional) writes report.html and returns its URL. A report that fails
        is a warning, not a failed run: the facts get ``report`` (``{"status": "failed",
        "error": ...}``) and ``warnings``, and the manifest is written all the same.
        ``lease`` (optional) raises when this run no longer holds the run folder: it is
        called before anything is published and again before the manifest is written.
        A failed commit never deletes anything when the lease is lost or when the
        manifest may have landed (:meth:`_manifest_state`).
        """
        self.remove_stale_temporaries()
        missing = set(range(len(plan.batches))) - self.finished_batches(len(plan.batches))
        if missing:
            raise StorageError(
                f"cannot commit {self.url}: {len(missing)} batch part(s) are missing "
                f"(e.g. batch {min(missing)}); run again with the same run_id to finish them"
            )
        if lease is not None:
            lease()
        log.info("committing %d parts to %s", len(plan.batches), self.url)
        suites = plan.suites
        schema = results_schema(suites)
        counts: dict[str, dict[str, int]] = {m: {} for m in plan.models}
        summary: dict[str, dict[str, list[float]]] = {
            m: {"NSE": [], "KGE": []} for m in plan.models
        }
        outputs = [RESULTS_FILE]
        final: dict[str, Any] | None = None
        written: bytes | None = None
        try:
            self._assemble(plan, schema, counts, summary, outputs)
            facts: dict[str, Any] = {
                "counts": counts,
                "medians": {
                    m: {c: (float(np.median(v)) if v else None) for c, v in cols.items()}
                    for m, cols in summary.items()
                },
                "outputs": outputs,
            }
            if report is not None:
                self._report(report, facts)
            final = redact(manifest(facts))  # no secret in the file (nor what is returned)
            written = json.dumps(final, indent=2, default=str).encode()
            if lease is not None:
                lease()
            self.write_bytes(self.path(MANIFEST_FILE), written)
        except BaseException as exc:
            from gagebench.results.lock import LeaseLostError

            if isinstance(exc, LeaseLostError):
                raise  # the folder is another run's now: delete nothing of it
            # this commit's manifest may have landed only if its write was attempted
            state = "absent" if written is None else self._manifest_state(written)
            if state == "ours" and final is not None and isinstance(exc, Exception):
                log.warning(
                    "writing %s failed as far as this process can tell (%s), but it is in "
                    "place: the run is complete",
                    self.url_of(MANIFEST_FILE),
                    exc,
                )
                return final
            if state == "absent":
                # Nothing may look finished without its manifest (written last).
                self._unpublish([*outputs, REPORT_FILE])
                raise
            if state == "unknown" and isinstance(exc, Exception):
                raise StorageError(
                    f"{exc}; whether {self.url_of(MANIFEST_FILE)} was written cannot be read "
                    "back now, so the outputs are left in place (a rerun checks them)"
                ) from exc
            raise  # another manifest is there: leave it and its outputs alone
        return final

    def _manifest_state(self, written: bytes | None) -> str:
        """After a failed commit: ``ours`` (the manifest landed after all: the bytes this
        commit wrote), ``absent``, ``other`` (not this commit's) or ``unknown`` (the store
        cannot be read now)."""
        path = self.path(MANIFEST_FILE)
        try:
            self.fs.invalidate_cache()
            found = bytes(self.fs.cat_file(path))
        except FileNotFoundError:
            return "absent"
        except Exception:
            log.debug("cannot read back %s", self.url_of(MANIFEST_FILE), exc_info=True)
            return "unknown"
        return "ours" if written is not None and found == written else "other"

    def _assemble(
        self,
        plan: Plan,
        schema: pa.Schema,
        counts: dict[str, dict[str, int]],
        summary: dict[str, dict[str, list[float]]],
        outputs: list[str],
    ) -> None:
        """Write results.parquet and the CSVs from the parts (each published when whole)."""
        suites = plan.suites
        with contextlib.ExitStack() as stack:
            writer = pq.ParquetWriter(
                stack.enter_context(self.open_atomic(self.path(RESULTS_FILE))), schema
            )
            stack.callback(writer.close)
            csvs: dict[tuple[str, str], IO[bytes]] = {}
            for model in plan.models:
                for suite in suites:
                    rel = f"{model}/{SUITE_FILES[suite]}"
                    outputs.append(rel)
                    fh = stack.enter_context(self.open_atomic(self.path(model, SUITE_FILES[suite])))
                    fh.write((",".join(suite_csv_columns(suite)) + "\n").encode())
                    csvs[(model, suite)] = fh
            for index, batch in enumerate(plan.batches):
                table = self._read_whole_part(index).cast(schema)
                frame = table.to_pandas()
                wrong = _check_part(batch, plan.models, frame)
                if wrong:
                    self._drop_damaged(index, wrong)
                writer.write_table(table)
                for model, rows in frame.groupby("model", sort=False):
                    model = str(model)
                    for status, n in rows["status"].value_counts().items():
                        counts[model][str(status)] = counts[model].get(str(status), 0) + int(n)
                    for col in ("NSE", "KGE"):
                        if col in rows:
                            summary[model][col].extend(rows[col].dropna().tolist())
                    for suite in suites:
                        text = _suite_rows(rows, suite).to_csv(
                            index=False, header=False, lineterminator="\n"
                        )
                        csvs[(model, suite)].write(text.encode())

    def _report(
        self, report: Callable[[dict[str, Any]], str | None], facts: dict[str, Any]
    ) -> None:
        """Write the report; if it fails, record why in ``facts`` (the results stand)."""
        from gagebench.batches import is_bug
        from gagebench.storage.retry import error_summary

        try:
            report_url = report(facts)
        except Exception as exc:
            error = error_summary(exc)
            # a bug in the report shows its traceback; a storage error is one line
            log.warning(
                "the report of %s could not be written (%s); the results and manifest.json "
                "are written without it (make it later with: gagebench report %s)",
                self.url,
                error,
                self.url,
                exc_info=is_bug(exc),
            )
            self._unpublish([REPORT_FILE])
            facts["report"] = {"status": "failed", "error": error}
            facts.setdefault("warnings", []).append(f"the report could not be written: {error}")
            return
        if report_url is not None:
            facts["outputs"].append(REPORT_FILE)

    def _unpublish(self, outputs: Sequence[str]) -> None:
        """After a failed commit, remove outputs already published, so none looks finished."""
        for rel in outputs:
            path = self.path(rel)
            try:
                if self.fs.exists(path):
                    self.fs.rm(path)
            except Exception:  # best effort: the commit's own error is the one to report
                log.debug("could not remove %s after a failed commit", path, exc_info=True)

    def read_results(self) -> pd.DataFrame:
        """results.parquet of this run."""
        with self._guard("read", self.url_of(RESULTS_FILE)):
            results = load_results(self.fs, self.root)
        if results is None:
            raise StorageError(
                f"{self.url_of(RESULTS_FILE)} is missing: run the same command again (same "
                "run_id), which commits the run again from its saved batches"
            )
        return results


def _suite_rows(rows: pd.DataFrame, suite: str) -> pd.DataFrame:
    """One model's rows in the shape of a suite's CSV."""
    if suite == "uncertainty":
        from gagebench.uncertainty_suite import long_table

        return long_table(rows)
    return rows[suite_csv_columns(suite)]


def _check_part(batch: Sequence[str], models: Sequence[str], frame: pd.DataFrame) -> str | None:
    """Why a part does not hold every gage of its batch exactly once per model, or None."""
    expected = sorted((m, g) for m in models for g in batch)
    found = sorted(zip(frame["model"].astype(str), frame["site_no"].astype(str), strict=True))
    if found != expected:
        return (
            f"it does not hold exactly the planned gages x models: {len(found)} rows, "
            f"expected {len(expected)}"
        )
    return None


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
