"""A run's saved batches (``_parts/``): the plan, one part file per batch, resume.

A run started again with the same run id keeps the parts it finds, recomputes only the
missing batches, and refuses to mix parts from a different plan. The commit reads each
part back whole and checked (:meth:`Parts.load`): a part cut short when it was written
is removed, so the next run of the same run id computes its batch again.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import NoReturn

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from gagebench.errors import ConfigError, StorageError
from gagebench.results.folder import RunFolderIO, remove_stale_staging
from gagebench.results.layout import (
    PARTS,
    PLAN_FILE,
    Plan,
    part_index,
    part_name,
    split_groups,
    to_table,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Part:
    """One batch's rows as the commit hands them to each exporter: ``table`` in the
    results schema, and the same rows as ``frame`` (pandas)."""

    index: int
    table: pa.Table
    frame: pd.DataFrame
    #: The breakdowns' rows (grouping -> rows in its schema); empty without breakdowns.
    groups: Mapping[str, pd.DataFrame] = field(default_factory=dict)

    @cached_property
    def by_model(self) -> list[tuple[str, pd.DataFrame]]:
        """The rows of each model, models in the order of the part."""
        return [(str(m), rows) for m, rows in self.frame.groupby("model", sort=False)]


class Parts:
    """The ``_parts/`` folder of one run: plan, part files and the batches they finish."""

    def __init__(self, folder: RunFolderIO) -> None:
        self.folder = folder

    def path(self, index: int) -> str:
        """The part file of batch ``index``."""
        return self.folder.path(PARTS, part_name(index))

    def start(self, plan: Plan) -> set[int]:
        """Save the plan (or check it against the saved one) and list finished batches.

        Raises ConfigError when a saved plan differs (other gages, batch size, models,
        suites or mode): parts of two plans must never be mixed.
        """
        folder = self.folder
        plan_path = folder.path(PARTS, PLAN_FILE)
        if folder.exists(plan_path):
            saved = Plan.from_json(json.loads(folder.read_bytes(plan_path)))
            diffs = saved.differences(plan)
            if diffs:
                raise ConfigError(
                    f"run {plan.run_id!r} at {folder.url} was started with a different plan: "
                    f"{'; '.join(diffs)}. Resume it with the same settings, choose a new "
                    "gagebench.run_id, or start it over with --force"
                )
            done = self.finished(len(plan.batches))
            log.info(
                "resuming run %s: %d of %d batches already done",
                plan.run_id,
                len(done),
                len(plan.batches),
            )
            return done
        folder.write_bytes(plan_path, json.dumps(plan.to_json()).encode())
        return set()

    def finished(self, n_batches: int) -> set[int]:
        """Indices of batches whose part file exists."""
        folder = self.folder
        with folder._guard("list", folder.url_of(PARTS)):
            folder.fs.invalidate_cache(folder.path(PARTS))
            names = folder.fs.ls(folder.path(PARTS), detail=False)
        done = set()
        for name in names:
            index = part_index(str(name))
            if index is not None and index < n_batches:
                done.add(index)
        return done

    def write(
        self,
        index: int,
        frame: pd.DataFrame,
        suites: Sequence[str],
        by: Sequence[str] = (),
        metrics: Sequence[str] = (),
    ) -> None:
        """Write one batch's rows (with its breakdowns' rows) as its part file, atomically."""
        buf = io.BytesIO()
        pq.write_table(to_table(frame, suites, by, metrics), buf)
        self.folder.write_bytes(self.path(index), buf.getvalue())

    def read(self, index: int) -> pa.Table:
        """One batch's rows."""
        return pq.read_table(io.BytesIO(self.folder.read_bytes(self.path(index))))

    def load(self, plan: Plan, index: int, schema: pa.Schema) -> Part:
        """Batch ``index`` for the commit: whole, in ``schema``, holding exactly its planned
        gages once per model; a damaged part is removed (:meth:`_drop_damaged`)."""
        whole = self._read_whole(index)
        try:
            table, groups = split_groups(whole, plan.suites, plan.by, plan.metrics)
        except (KeyError, pa.ArrowException) as exc:  # a column or a breakdown missing
            self._drop_damaged(index, f"not in this plan's layout: {type(exc).__name__}: {exc}")
        table = table.cast(schema)
        frame = table.to_pandas()
        wrong = _check_part(plan.batches[index], plan.models, frame)
        for by, rows in groups.items():
            wrong = wrong or _check_groups(plan.batches[index], plan.models, by, rows)
        if wrong:
            self._drop_damaged(index, wrong)
        return Part(index, table, frame, groups)

    def _read_whole(self, index: int) -> pa.Table:
        """A part for the commit; one that stays unreadable is removed (computed again).

        A part that does not parse is read twice more (the read may have been cut short on
        the way); one that still does not is damaged (cut short when written).
        """
        error: Exception | None = None
        for _ in range(3):
            try:
                return self.read(index)
            except pa.ArrowException as exc:  # ArrowInvalid: not a whole Parquet file
                error = exc
        self._drop_damaged(index, f"{type(error).__name__}: {error}")

    def _drop_damaged(self, index: int, why: str) -> NoReturn:
        """Remove a damaged part and raise the StorageError that says so."""
        rel = f"{PARTS}/{part_name(index)}"
        self.folder.remove(rel)
        raise StorageError(
            f"part {index} of {self.folder.url} ({rel}) is damaged ({why}); it is removed, "
            "and its batch is computed again when the run is resumed"
        )

    def remove_stale_temporaries(self) -> list[str]:
        """Remove temporary files of interrupted writes, here and in the staging folder."""
        from gagebench.results.lock import remove_stale_temporaries

        remove_stale_staging()
        folder = self.folder
        with folder._guard("list", folder.url):
            return remove_stale_temporaries(folder.fs, folder.root)


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


def _check_groups(
    batch: Sequence[str], models: Sequence[str], by: str, rows: pd.DataFrame
) -> str | None:
    """Why a part's breakdown by ``by`` misses a planned gage x model, or None."""
    expected = {(m, g) for m in models for g in batch}
    found = set(zip(rows["model"].astype(str), rows["site_no"].astype(str), strict=True))
    if found != expected:
        return f"its breakdown by {by} does not hold exactly the planned gages x models"
    return None
