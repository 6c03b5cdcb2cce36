"""The outputs a commit writes from a run's parts, one exporter class each.

The commit (:meth:`gagebench.results.writer.RunSink.commit`) opens every file an exporter
names, atomically, streams the parts to it one at a time (memory stays flat), lists its
files in ``manifest.json`` and, on a later run, commits again when one is missing. An
exporter only says which files it writes and what goes in them: temporaries, publishing,
unpublishing after a failure and resume are the commit's, in one place.

Adding an output is one class here, listed in :data:`EXPORTERS` (docs/architecture.md,
"Adding an output").
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import IO, ClassVar

import pandas as pd
import pyarrow.parquet as pq

from gagebench.results.layout import (
    RESULTS_FILE,
    SUITE_FILES,
    USER_METRICS_FILE,
    Plan,
    breakdown_csv,
    breakdown_file,
    group_schema,
    results_schema,
    suite_csv_columns,
)
from gagebench.results.parts import Part

#: The open files of one exporter in one commit, by their path relative to the run folder.
Files = Mapping[str, IO[bytes]]


class Exporter(ABC):
    """One output of a run, written from its parts by the commit.

    A new instance serves each commit: :meth:`begin`, then :meth:`write` once per part in
    batch order, then :meth:`end` (also after a failure, to release what it holds).
    """

    #: A short name (messages, logs).
    name: ClassVar[str]

    @abstractmethod
    def files(self, plan: Plan) -> list[str]:
        """The files it writes for ``plan``, relative to the run folder (none: not run)."""

    def begin(self, plan: Plan, files: Files) -> None:  # noqa: B027 - optional hook
        """Before the first part (headers, writers)."""

    @abstractmethod
    def write(self, part: Part, files: Files) -> None:
        """Add one batch's rows."""

    def end(self, files: Files) -> None:  # noqa: B027 - optional hook
        """After the last part, or after a failure (footers, closing writers)."""


class ResultsParquet(Exporter):
    """``results.parquet``: every row, in the fixed results schema."""

    name = "results"

    def files(self, plan: Plan) -> list[str]:
        """One file, whatever the plan."""
        return [RESULTS_FILE]

    def begin(self, plan: Plan, files: Files) -> None:
        """Open one Parquet writer for the whole run."""
        self._writer = pq.ParquetWriter(
            files[RESULTS_FILE], results_schema(plan.suites, plan.metrics)
        )

    def write(self, part: Part, files: Files) -> None:
        """The part's table as it is (one row group per part)."""
        self._writer.write_table(part.table)

    def end(self, files: Files) -> None:
        """Write the footer."""
        self._writer.close()


class HytestCsvs(Exporter):
    """``<model>/standard_suite.csv``, ``<model>/dscore.csv`` and the like of every suite
    of per-gage columns (``kge.csv``, ``errors.csv``): HyTEST's shape (``site_no``, then
    the suite's columns in order), for the suites that ran."""

    name = "hytest-csv"
    suites: ClassVar[tuple[str, ...]] = tuple(s for s in SUITE_FILES if s != "uncertainty")

    def _files(self, plan: Plan) -> dict[tuple[str, str], str]:
        wanted = [s for s in plan.suites if s in self.suites]
        return {(m, s): f"{m}/{SUITE_FILES[s]}" for m in plan.models for s in wanted}

    def files(self, plan: Plan) -> list[str]:
        """One file per model and suite."""
        return list(self._files(plan).values())

    def begin(self, plan: Plan, files: Files) -> None:
        """Each file's header line."""
        self._names = self._files(plan)
        for (_, suite), rel in self._names.items():
            files[rel].write((",".join(suite_csv_columns(suite)) + "\n").encode())

    def write(self, part: Part, files: Files) -> None:
        """Each model's rows, in the columns of each suite."""
        for model, rows in part.by_model:
            for (m, suite), rel in self._names.items():
                if m == model:
                    files[rel].write(_csv(rows[suite_csv_columns(suite)]))


class UncertaintyCsv(Exporter):
    """``<model>/uncertainty.csv``: gumboot's long shape (one row per gage and statistic),
    when the uncertainty suite ran."""

    name = "uncertainty-csv"

    def files(self, plan: Plan) -> list[str]:
        """One file per model."""
        if "uncertainty" not in plan.suites:
            return []
        return [f"{m}/{SUITE_FILES['uncertainty']}" for m in plan.models]

    def begin(self, plan: Plan, files: Files) -> None:
        """Each file's header line."""
        for rel in self.files(plan):
            files[rel].write((",".join(suite_csv_columns("uncertainty")) + "\n").encode())

    def write(self, part: Part, files: Files) -> None:
        """Each model's rows in the long shape."""
        from gagebench.uncertainty_suite import long_table

        for model, rows in part.by_model:
            files[f"{model}/{SUITE_FILES['uncertainty']}"].write(_csv(long_table(rows)))


class Breakdowns(Exporter):
    """``results_by_<group>.parquet`` (every model) and ``<model>/by_<group>.csv`` for
    each breakdown of ``by``: one row per (site_no, model, group)."""

    name = "breakdowns"

    def files(self, plan: Plan) -> list[str]:
        """Per grouping: the Parquet table, then one CSV per model."""
        return [
            rel
            for by in plan.by
            for rel in (breakdown_file(by), *(breakdown_csv(m, by) for m in plan.models))
        ]

    def begin(self, plan: Plan, files: Files) -> None:
        """A Parquet writer per grouping; each CSV's header line."""
        self._by = plan.by
        self._schemas = {by: group_schema(by, plan.suites, plan.metrics) for by in plan.by}
        self._writers = {
            by: pq.ParquetWriter(files[breakdown_file(by)], self._schemas[by]) for by in plan.by
        }
        for by in plan.by:
            header = (",".join(self._schemas[by].names) + "\n").encode()
            for m in plan.models:
                files[breakdown_csv(m, by)].write(header)

    def write(self, part: Part, files: Files) -> None:
        """The part's breakdown rows: all of them to the table, each model's to its CSV."""
        import pyarrow as pa

        for by in self._by:
            rows = part.groups[by]
            table = pa.Table.from_pandas(rows, schema=self._schemas[by], preserve_index=False)
            self._writers[by].write_table(table)
            for model, of_model in rows.groupby("model", sort=False):
                files[breakdown_csv(str(model), by)].write(_csv(of_model))

    def end(self, files: Files) -> None:
        """Write the Parquet footers."""
        for writer in getattr(self, "_writers", {}).values():
            writer.close()


class UserMetricsCsv(Exporter):
    """``<model>/user_metrics.csv``: ``site_no`` and the user metrics' columns, when the
    run has user metrics (``metrics:``)."""

    name = "user-metrics-csv"

    def files(self, plan: Plan) -> list[str]:
        """One file per model."""
        return [f"{m}/{USER_METRICS_FILE}" for m in plan.models] if plan.metrics else []

    def begin(self, plan: Plan, files: Files) -> None:
        """Each file's header line."""
        self._columns = ["site_no", *plan.metrics]
        for rel in self.files(plan):
            files[rel].write((",".join(self._columns) + "\n").encode())

    def write(self, part: Part, files: Files) -> None:
        """Each model's rows, in the user metrics' columns."""
        for model, rows in part.by_model:
            files[f"{model}/{USER_METRICS_FILE}"].write(_csv(rows[self._columns]))


def _csv(frame: pd.DataFrame) -> bytes:
    """Rows as CSV lines, no header (the header is written once, by ``begin``)."""
    return frame.to_csv(index=False, header=False, lineterminator="\n").encode()


#: The outputs every commit writes, in this order (add a new output's class here).
EXPORTERS: tuple[type[Exporter], ...] = (
    ResultsParquet,
    HytestCsvs,
    UncertaintyCsv,
    Breakdowns,
    UserMetricsCsv,
)
