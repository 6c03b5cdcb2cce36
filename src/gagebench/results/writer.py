"""Writing a run folder at any fsspec URL: its parts, then the atomic final commit.

:class:`RunSink` is the run folder (:class:`~gagebench.results.folder.RunFolderIO`: reads
and atomic writes), its saved batches (:class:`~gagebench.results.parts.Parts`: plan,
parts, resume) and the commit, which streams the parts through a list of exporters
(:mod:`gagebench.results.exporters`: ``results.parquet``, the HyTEST CSVs,
``uncertainty.csv``) and writes ``manifest.json`` last. The commit's rules are here, once,
for every exporter:

- each file is published only when whole (a temporary or staged file until then);
- the parts are read once, in batch order; every planned gage appears once per model;
- the lease is read back before the parts are streamed, again right before the streamed
  files are published, and before the manifest;
- a commit that fails removes the outputs it had published, so no results.parquet or CSV
  without manifest.json looks finished - unless the manifest may have landed (its write
  failed as far as this process can tell): it is read back first, and the outputs are left
  in place when it is there or cannot be read;
- ``manifest.json`` lists every exporter's files: a manifest whose outputs are missing (a
  commit cut short) is committed again by the next run of the same run id, from the parts.

Publishing returns the facts (:class:`CommitFacts`); the caller builds the manifest from
them once, may publish more (the report) and hands the manifest to :meth:`Commit.finish`.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any

import numpy as np
import pandas as pd

from gagebench.errors import StorageError
from gagebench.redact import redact
from gagebench.results import exporters as _exporters
from gagebench.results.exporters import Exporter, Files
from gagebench.results.folder import RunFolderIO
from gagebench.results.layout import (
    MANIFEST_FILE,
    RESULTS_FILE,
    Plan,
    results_schema,
    suite_csv_columns,
)
from gagebench.results.parts import Part, Parts
from gagebench.results.reader import load_results

__all__ = ["MANIFEST_FILE", "Commit", "CommitFacts", "Plan", "RunSink", "suite_csv_columns"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CommitFacts:
    """What publishing the outputs found: gages by status and the median NSE and KGE per
    model, and the files published (in the manifest's order)."""

    counts: dict[str, dict[str, int]]
    medians: dict[str, dict[str, float | None]]
    outputs: tuple[str, ...]


def manifest_bytes(manifest: Mapping[str, Any]) -> bytes:
    """``manifest.json``'s bytes: secrets masked, two-space JSON."""
    return json.dumps(redact(dict(manifest)), indent=2, default=str).encode()


def as_written(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """The manifest as ``manifest.json`` will hold it (masked, through JSON): what the
    report shows, so the two are equal."""
    loaded: dict[str, Any] = json.loads(manifest_bytes(manifest))
    return loaded


class Commit:
    """One commit in progress: its facts once published; :meth:`finish` writes the manifest."""

    def __init__(self, folder: RunFolderIO, lease: Callable[[], None] | None) -> None:
        self._folder = folder
        self._lease = lease
        self.facts = CommitFacts({}, {}, ())
        #: Every file this commit publishes (removed again when it fails).
        self.published: list[str] = []
        #: The manifest written, once :meth:`finish` was called.
        self.manifest: dict[str, Any] | None = None
        self._written: bytes | None = None
        self._landed = False

    def verify_lease(self) -> None:
        """Read the lease back (``LeaseLostError`` when another run holds the folder):
        before anything of this commit is published."""
        if self._lease is not None:
            self._lease()

    def publishes(self, rel: str) -> None:
        """Say that the caller publishes ``rel`` in this commit (the report): removed with
        the outputs when the commit fails before its manifest."""
        self.published.append(rel)

    def discard(self, rel: str) -> None:
        """Remove a file the caller could not finish (a report cut short), best effort."""
        self._folder.unpublish([rel])

    def finish(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        """Write ``manifest.json`` (masked), last, after reading the lease back; return it
        as written. The commit's block must end here."""
        written = manifest_bytes(manifest)
        self.manifest = json.loads(written)
        self._written = written
        self.verify_lease()
        self._folder.write_bytes(self._folder.path(MANIFEST_FILE), written)
        self._landed = True
        return self.manifest


class RunSink(RunFolderIO):
    """The output folder of one run: its parts, its outputs (``exporters``), the commit."""

    def __init__(
        self,
        run_url: str,
        storage_options: Mapping[str, Any] | None = None,
        exporters: Sequence[type[Exporter]] | None = None,
    ):
        super().__init__(run_url, storage_options)
        self.parts = Parts(self)
        #: The outputs a commit writes (default: :data:`~gagebench.results.exporters.EXPORTERS`
        #: as it is when the sink is made).
        self.exporters: tuple[type[Exporter], ...] = tuple(
            _exporters.EXPORTERS if exporters is None else exporters
        )

    def missing_outputs(self, manifest: Mapping[str, Any]) -> list[str]:
        """The outputs ``manifest`` lists that are not in the folder (a commit cut short)."""
        listed = manifest.get("outputs") or [RESULTS_FILE]
        rels = [str(rel) for rel in listed] if isinstance(listed, list) else [RESULTS_FILE]
        return [rel for rel in rels if not self.exists(self.path(rel))]

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

    # -- the commit ----------------------------------------------------------------------
    @contextlib.contextmanager
    def commit(self, plan: Plan, lease: Callable[[], None] | None = None) -> Iterator[Commit]:
        """Publish the outputs from the parts, then (in the block) write the manifest last.

        ``with sink.commit(plan) as commit:`` publishes every exporter's files (streamed
        part by part: memory stays flat) and gives ``commit.facts``; the block builds the
        manifest from them, may publish more (:meth:`Commit.publishes`) and ends with
        :meth:`Commit.finish`. ``lease`` (optional) raises when this run no longer holds
        the run folder: it is called before the parts are streamed, right before their
        files are published (:meth:`Commit.verify_lease`) and again before the manifest.
        A failed commit never deletes anything when the lease is lost or when the
        manifest may have landed (:meth:`_manifest_state`); when it did land, the error
        is a warning and ``commit.manifest`` is the run's manifest.
        """
        from gagebench.results.lock import LeaseLostError

        self.parts.remove_stale_temporaries()
        done = self.parts.finished(len(plan.batches))
        missing = set(range(len(plan.batches))) - done
        if missing:
            raise StorageError(
                f"cannot commit {self.url}: {len(missing)} batch part(s) are missing "
                f"(e.g. batch {min(missing)}); run again with the same run_id to finish them"
            )
        if lease is not None:
            lease()
        log.info("committing %d parts to %s", len(plan.batches), self.url)
        commit = Commit(self, lease)
        try:
            commit.facts = self._publish(plan, commit)
            yield commit
            if commit.manifest is None:
                raise RuntimeError("a commit's block must end with commit.finish(manifest)")
        except BaseException as exc:
            if isinstance(exc, LeaseLostError) or commit._landed:
                raise  # another run's folder now / a complete run: delete nothing of it
            # this commit's manifest may have landed only if its write was attempted
            written = commit._written
            state = "absent" if written is None else self._manifest_state(written)
            if state == "ours" and isinstance(exc, Exception):
                log.warning(
                    "writing %s failed as far as this process can tell (%s), but it is in "
                    "place: the run is complete",
                    self.url_of(MANIFEST_FILE),
                    exc,
                )
                return
            if state == "absent":
                # Nothing may look finished without its manifest (written last).
                self.unpublish(commit.published)
                raise
            if state == "unknown" and isinstance(exc, Exception):
                raise StorageError(
                    f"{exc}; whether {self.url_of(MANIFEST_FILE)} was written cannot be read "
                    "back now, so the outputs are left in place (a rerun checks them)"
                ) from exc
            raise  # another manifest is there: leave it and its outputs alone

    def _exporters_for(self, plan: Plan) -> list[tuple[Exporter, list[str]]]:
        """A new instance of each exporter that writes files for ``plan``, with its files."""
        found: list[tuple[Exporter, list[str]]] = []
        seen: dict[str, str] = {}
        for make in self.exporters:
            exporter = make()
            rels = exporter.files(plan)
            for rel in rels:
                self.path(rel)  # inside the run folder, or a ConfigError naming it
                if rel in seen:
                    raise ValueError(
                        f"the exporters {seen[rel]!r} and {exporter.name!r} both write {rel}"
                    )
                seen[rel] = exporter.name
            if rels:
                found.append((exporter, rels))
        return found

    def _publish(self, plan: Plan, commit: Commit) -> CommitFacts:
        """Stream the parts through every exporter; each file is published when whole."""
        schema = results_schema(plan.suites, plan.metrics)
        active = self._exporters_for(plan)
        outputs = [rel for _, rels in active for rel in rels]
        commit.published.extend(outputs)
        counts: dict[str, dict[str, int]] = {m: {} for m in plan.models}
        scores: dict[str, dict[str, list[float]]] = {m: {"NSE": [], "KGE": []} for m in plan.models}
        with contextlib.ExitStack() as stack:
            opened: list[tuple[Exporter, Files]] = []
            for exporter, rels in active:
                handles = {rel: stack.enter_context(self._open(rel)) for rel in rels}
                exporter.begin(plan, handles)
                stack.callback(exporter.end, handles)
                opened.append((exporter, handles))
            for index in range(len(plan.batches)):
                part = self.parts.load(plan, index, schema)
                for exporter, files in opened:
                    exporter.write(part, files)
                _tally(part, counts, scores)
            # the files are published as the block closes: the folder must still be ours
            # (the lease may have been taken while the parts streamed)
            commit.verify_lease()
        medians = {
            m: {c: (float(np.median(v)) if v else None) for c, v in cols.items()}
            for m, cols in scores.items()
        }
        return CommitFacts(counts, medians, tuple(_manifest_order(plan, outputs)))

    def _open(self, rel: str) -> contextlib.AbstractContextManager[IO[bytes]]:
        """An output file, published when its block ends whole (never before)."""
        return self.open_atomic(self.path(rel))

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


def _tally(
    part: Part, counts: dict[str, dict[str, int]], scores: dict[str, dict[str, list[float]]]
) -> None:
    """Add one part's gages by status and its NSE and KGE values, per model."""
    for model, rows in part.by_model:
        for status, n in rows["status"].value_counts().items():
            counts[model][str(status)] = counts[model].get(str(status), 0) + int(n)
        for col in ("NSE", "KGE"):
            if col in rows:
                scores[model][col].extend(rows[col].dropna().tolist())


def _manifest_order(plan: Plan, rels: Sequence[str]) -> list[str]:
    """Files of the run folder itself first, then each model's folder in the plan's order
    (each group in the exporters' order)."""
    models = {m: i for i, m in enumerate(plan.models)}

    def folder(rel: str) -> int:
        head, sep, _ = rel.partition("/")
        return models.get(head, len(models)) if sep else -1

    return sorted(rels, key=folder)
