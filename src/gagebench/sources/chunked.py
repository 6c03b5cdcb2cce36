"""Chunk-aware work units for stores whose chunks hold several gages (e.g. raw NWM CHRTOUT).

The raw NWM v2.1 retrospective store is chunked 672 hours x 30000 reaches. Reading it
batch by batch fetches a chunk column again for every batch with a gage in it (about 7.6x
the whole variable for the built-in gage list, 42x in random order). Here instead:

- **Plan** (:func:`plan_units`, on the client): gages are grouped by the gage-axis chunk
  that holds them in every multi-gage store; a group is never split across work units,
  and small groups are packed together up to ``batch_size`` gages. So each chunk column
  belongs to exactly one unit, whatever the gage-list order and ``batch_size``.
- **Read** (:func:`read_range`, one Dask task per chunk column and time range): a column is
  streamed one time chunk at a time (each chunk fetched and decoded once, only the needed
  reaches kept), reduced at once to per-day sums and counts of valid values. Worker memory
  is one decoded chunk plus the (gage, day) sums of the range, whatever the column length.
  Long columns are split into ranges of ``time_chunks_per_task`` time chunks, so a run
  has enough tasks for 100+ workers.
- **Assemble** (:func:`assemble`, in the unit's evaluation task): ranges are added day by
  day, so a day that straddles two time chunks or two ranges gets the sum and count of all
  its hours: the mean is exactly pandas' ``resample("1D", offset="5h").mean()``.

Stores chunked one gage per chunk (HyTEST's layout) are not touched by any of this: their
units are the plain consecutive batches and they keep the per-gage fast path.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from dask.delayed import Delayed

    from gagebench.sources.interface import Store
    from gagebench.sources.sourceset import SourceSet

#: Time chunks per read task: 24 CHRTOUT chunks are ~1.8 years, ~0.8 GB compressed.
TIME_CHUNKS_PER_TASK = 24
#: Which store of a SourceSet: ("observed",) or ("model", name).
StoreKey = tuple[str, ...]


@dataclass(frozen=True)
class RangePart:
    """Per-day sums and valid counts of some gages over a range of days."""

    positions: np.ndarray  # store positions, one per row
    day0: int  # index of the first day on the store's day axis
    sums: np.ndarray  # (gage, day) float64
    counts: np.ndarray  # (gage, day) int32


def is_multi_gage(store: Store) -> bool:
    """True when one chunk of the store holds several gages (chunk-aware reading pays)."""
    return int(store.gage_chunk) > 1


def plan_units(
    stores: Sequence[Store], batches: Sequence[Sequence[str]], batch_size: int
) -> tuple[tuple[str, ...], ...]:
    """Work units: gages grouped by their chunk column in every multi-gage store.

    ``batches`` are the plain consecutive batches (returned unchanged when no store has
    multi-gage chunks). Groups keep gage-list order inside, come in chunk order, and are
    packed up to ``batch_size`` gages; a group larger than that is one unit on its own
    (splitting it would fetch its chunks twice). Gages in no multi-gage store are
    batched as usual.
    """
    chunked = [s for s in stores if is_multi_gage(s)]
    if not chunked:
        return tuple(tuple(b) for b in batches)
    ids = [g for b in batches for g in b]
    keys = np.stack(
        [
            np.where(pos >= 0, pos // int(s.gage_chunk), -1)
            for s, pos in ((s, s.positions(ids)) for s in chunked)
        ],
        axis=1,
    )
    groups: dict[tuple[int, ...], list[str]] = {}
    loose: list[str] = []
    for gage, key in zip(ids, map(tuple, keys.tolist()), strict=True):
        if all(k < 0 for k in key):
            loose.append(gage)
        else:
            groups.setdefault(key, []).append(gage)
    units: list[tuple[str, ...]] = []
    current: list[str] = []
    for key in sorted(groups):
        group = groups[key]
        if current and len(current) + len(group) > batch_size:
            units.append(tuple(current))
            current = []
        current.extend(group)
    if current:
        units.append(tuple(current))
    units.extend(tuple(loose[i : i + batch_size]) for i in range(0, len(loose), batch_size))
    return tuple(units)


def range_reads(
    store: Store, positions: np.ndarray, time_chunks_per_task: int
) -> list[tuple[tuple[int, ...], int, int]]:
    """``(positions, t0, t1)`` read tasks of a unit: one per chunk column and time range."""
    found = np.unique(positions[positions >= 0])
    if found.size == 0:
        return []
    step = max(int(time_chunks_per_task), 1) * int(store.time_chunk)
    n_time = int(store.n_time)
    columns = found // int(store.gage_chunk)
    reads: list[tuple[tuple[int, ...], int, int]] = []
    for column in np.unique(columns):
        cols = tuple(int(p) for p in found[columns == column])
        reads.extend((cols, t0, min(t0 + step, n_time)) for t0 in range(0, n_time, step))
    return reads


def read_range(store: Store, positions: Sequence[int], t0: int, t1: int) -> RangePart:
    """Sums and counts per day of ``positions`` over time steps ``[t0, t1)``.

    Reads one time chunk at a time (:meth:`Store.read_unit`: the store fetches and decodes
    each chunk once and keeps only the selected gages), so memory is one decoded chunk
    whatever ``t1 - t0``.
    """
    day_index, _ = store.day_layout()
    pos = np.asarray(positions, dtype=np.int64)
    d0 = int(day_index[t0])
    n_days = int(day_index[t1 - 1]) - d0 + 1
    sums = np.zeros((n_days, pos.size))
    counts = np.zeros((n_days, pos.size), dtype=np.int32)
    step = int(store.time_chunk)
    first = (t0 // step) * step
    for a in range(first, t1, step):
        lo, hi = max(a, t0), min(a + step, t1)
        values = np.asarray(store.read_unit(pos, lo, hi), dtype=np.float64)
        days = day_index[lo:hi] - d0
        starts = np.flatnonzero(np.r_[True, days[1:] != days[:-1]])
        valid = ~np.isnan(values)
        sums[days[starts]] += np.add.reduceat(np.where(valid, values, 0.0), starts, axis=0)
        counts[days[starts]] += np.add.reduceat(valid.astype(np.int32), starts, axis=0)
    return RangePart(pos, d0, np.ascontiguousarray(sums.T), np.ascontiguousarray(counts.T))


def assemble(store: Store, parts: Sequence[RangePart]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(positions, days, daily)``: the daily means of every position read by ``parts``.

    Sums and counts of all parts are added per day before dividing, so days split across
    time chunks or read tasks are exact.
    """
    _, days = store.day_layout()
    positions = np.unique(np.concatenate([p.positions for p in parts])) if parts else np.empty(0)
    positions = positions.astype(np.int64)
    sums = np.zeros((positions.size, days.size))
    counts = np.zeros((positions.size, days.size), dtype=np.int64)
    for part in parts:
        rows = np.searchsorted(positions, part.positions)
        span = slice(part.day0, part.day0 + part.sums.shape[1])
        sums[rows, span] += part.sums
        counts[rows, span] += part.counts
    with np.errstate(invalid="ignore", divide="ignore"):
        daily = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    return positions, days, daily.astype(store.daily_dtype(), copy=False)


# -- the Dask graph of a unit -------------------------------------------------------------


def _read_task(
    source: SourceSet, key: StoreKey, positions: tuple[int, ...], t0: int, t1: int
) -> RangePart:
    return read_range(source.store_of(key), positions, t0, t1)


def _with_parts(source: SourceSet, parts: Mapping[StoreKey, Sequence[RangePart]]) -> SourceSet:
    return source.with_daily(
        {key: assemble(source.store_of(key), list(chunks)) for key, chunks in parts.items()}
    )


def _as_list(
    run: Callable[..., Any], element: tuple[int, tuple[str, ...]], source: SourceSet, *args: Any
) -> list[Any]:
    return [run(element, source, *args)]


def unit_graphs(
    source: SourceSet,
    elements: Sequence[tuple[int, tuple[str, ...]]],
    run: Callable[..., Any],
    args: tuple[Any, ...],
) -> list[Delayed] | None:
    """One Dask delayed per work unit: its range reads, then ``run(element, source, *args)``.

    Each returns ``[run(...)]`` (a bag partition's shape). None when ``source`` has no
    multi-gage store: the caller keeps its plain bag of batches.
    """
    from dask import delayed

    stores = source.chunked_stores()
    if not stores:
        return None
    per_task = source.time_chunks_per_task
    graphs = []
    for element in elements:
        ids = list(element[1])
        parts: dict[StoreKey, list[Delayed]] = {}
        for key, store in stores.items():
            reads = range_reads(store, store.positions(ids), per_task)
            parts[key] = [delayed(_read_task)(source, key, *read) for read in reads]
        prepared = delayed(_with_parts)(source, parts)
        graphs.append(delayed(_as_list)(run, element, prepared, *args))
    return graphs
