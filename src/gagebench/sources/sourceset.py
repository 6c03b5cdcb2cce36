"""A run's sources: the observed store and the model stores, read a batch at a time.

:class:`SourceSet` is what the pipeline maps over its batches: picklable (it holds the
stores' settings, not the opened stores), it opens each store at most once per process
through its engine (:mod:`gagebench.sources.cache`) and reads a batch's daily observed
and model series on the observed store's days. It speaks to stores only through the
:class:`~gagebench.sources.interface.Store` protocol, whatever their engine.

The common daily axis of a batch is the observed store's days; model series are
reindexed onto it (NaN where a model has no day).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from gagebench.errors import InputError
from gagebench.gages import plan_batches
from gagebench.ids import canonical_id
from gagebench.sources.cache import open_store
from gagebench.sources.chunked import TIME_CHUNKS_PER_TASK, is_multi_gage, plan_units
from gagebench.sources.daily import daily_days, day_span
from gagebench.sources.engines import engine_of
from gagebench.sources.interface import Store

if TYPE_CHECKING:
    from gagebench.config import RunConfig, StoreConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Batch:
    """Daily observed and modeled series of a batch of gages on one common daily axis."""

    gage_ids: list[str]
    dates: np.ndarray
    observed: np.ndarray
    modeled: dict[str, np.ndarray]
    missing_observed: frozenset[str]
    missing_model: dict[str, frozenset[str]]


#: Key of the observed store among a SourceSet's stores; models are ("model", name).
OBSERVED = ("observed",)
_Daily = tuple[np.ndarray, np.ndarray, np.ndarray]


class SourceSet:
    """The observed store and the model stores of a run; picklable, opened lazily.

    Stores are opened at most once per process (a module-level cache), so sending a
    SourceSet to Dask workers costs one open per worker, not one per batch.
    ``time_chunks_per_task`` sets the length of the chunk-aware read tasks (see
    :mod:`gagebench.sources.chunked`).
    """

    def __init__(
        self,
        observed: StoreConfig,
        models: Mapping[str, StoreConfig],
        *,
        time_chunks_per_task: int = TIME_CHUNKS_PER_TASK,
    ):
        if not models:
            raise InputError("a SourceSet needs at least one model store")
        if time_chunks_per_task < 1:
            raise InputError(f"time_chunks_per_task must be >= 1, got {time_chunks_per_task}")
        self.observed = observed
        self.models = dict(models)
        for setting, spec in self._settings().items():
            engine_of(spec, setting)  # an unknown engine fails here, before anything is read
        self.time_chunks_per_task = int(time_chunks_per_task)
        self._daily: dict[tuple[str, ...], _Daily] = {}

    @classmethod
    def from_config(cls, cfg: RunConfig) -> SourceSet:
        """Stores of a validated run configuration (storage options merged per store)."""
        cfg.require_stores()
        assert cfg.observed is not None
        return cls(
            cfg.resolved(cfg.observed),
            {name: cfg.resolved(store) for name, store in cfg.models.items()},
        )

    def __repr__(self) -> str:
        return f"SourceSet(observed={self.observed.url!r}, models={list(self.models)!r})"

    def _settings(self) -> dict[str, StoreConfig]:
        """Each store's settings by the name of its ``engine`` setting."""
        named = {f"models.{name}.engine": spec for name, spec in self.models.items()}
        return {"observed.engine": self.observed, **named}

    def _observed(self) -> Store:
        spec = self.observed
        store = open_store("observed", spec, "observed.engine")
        if not store.daily:
            raise InputError(
                f"the observed store {spec.url!r} is not daily (several values per calendar "
                "day); observations must be daily values"
            )
        return store

    def _model(self, name: str) -> Store:
        return open_store(f"model {name!r}", self.models[name], f"models.{name}.engine")

    def store_of(self, key: tuple[str, ...]) -> Store:
        """The opened store of a key: :data:`OBSERVED` or ``("model", name)``."""
        return self._observed() if key == OBSERVED else self._model(key[1])

    def _keys(self) -> list[tuple[str, ...]]:
        return [OBSERVED, *(("model", name) for name in self.models)]

    def check(self, min_days: int | None = None) -> list[str]:
        """Open every store once (on the client) so bad URLs or credentials fail early.

        Returns the stores' warnings (duplicate gages, missing units, a model whose time
        span shares no day - or fewer than ``min_days`` - with the observed store's, so
        every gage would be ``no_simulation``/``too_few_days``), each logged once.
        """
        lines = []
        for key in self._keys():
            lines.extend(self.store_of(key).warnings())
        for name in self.models:
            overlap = overlap_warning(self._observed(), self._model(name), min_days)
            if overlap:
                lines.append(overlap)
        for line in lines:
            log.warning("%s", line)
        return lines

    def manifest_entry(self) -> dict[str, Any]:
        """Per store: URL, units and conversion, crosswalk, chunks, duplicate gages."""
        return {
            "observed": self._observed().manifest_entry(),
            "models": {name: self._model(name).manifest_entry() for name in self.models},
        }

    def chunked_stores(self) -> dict[tuple[str, ...], Store]:
        """The stores whose chunks hold several gages (read in chunk-aware units)."""
        stores = {key: self.store_of(key) for key in self._keys()}
        return {key: store for key, store in stores.items() if is_multi_gage(store)}

    def plan_units(self, gage_ids: Sequence[str], batch_size: int) -> tuple[tuple[str, ...], ...]:
        """Work units of a run: plain batches, or chunk groups when a store needs them."""
        batches = plan_batches(gage_ids, batch_size)
        stores = [self.store_of(key) for key in self._keys()]
        return plan_units(stores, batches, batch_size)

    def with_daily(self, daily: Mapping[tuple[str, ...], _Daily]) -> SourceSet:
        """A copy that takes these stores' daily values from ``daily`` (already read)."""
        copy = SourceSet(self.observed, self.models, time_chunks_per_task=self.time_chunks_per_task)
        copy._daily = dict(daily)
        return copy

    def observed_ids(self) -> list[str]:
        """Every gage id of the observed store, in store order."""
        return self._observed().gage_ids()

    def read_batch(self, gage_ids: Sequence[str]) -> Batch:
        """Daily observed and modeled series of ``gage_ids`` on the observed store's days."""
        ids = [str(g) for g in gage_ids]
        wanted = [canonical_id(g) or "" for g in ids]
        obs_store = self._observed()
        assert obs_store.days is not None
        dates = obs_store.days
        obs_pos = obs_store.positions(wanted)
        observed = _place(obs_store, obs_pos, dates, self._daily.get(OBSERVED))
        missing_observed = frozenset(g for g, p in zip(ids, obs_pos, strict=True) if p < 0)
        modeled: dict[str, np.ndarray] = {}
        missing_model: dict[str, frozenset[str]] = {}
        for name in self.models:
            store = self._model(name)
            pos = store.positions(wanted)
            modeled[name] = _place(store, pos, dates, self._daily.get(("model", name)))
            missing_model[name] = frozenset(g for g, p in zip(ids, pos, strict=True) if p < 0)
        return Batch(
            gage_ids=ids,
            dates=dates,
            observed=observed,
            modeled=modeled,
            missing_observed=missing_observed,
            missing_model=missing_model,
        )


def overlap_warning(observed: Store, model: Store, min_days: int | None) -> str | None:
    """A warning when ``model``'s days barely or never meet ``observed``'s, else None."""
    if observed.times.size == 0 or model.times.size == 0:
        return None
    obs_days = daily_days(observed.times[[0, -1]])
    model_days = day_span(model.times, model.daily)
    first = max(obs_days[0], model_days[0])
    last = min(obs_days[1], model_days[1])
    common = int((last - first).astype(np.int64)) + 1 if last >= first else 0
    spans = (
        f"the {model.label} store {model.url!r} covers {model_days[0]}..{model_days[1]}, "
        f"the observed store {observed.url!r} {obs_days[0]}..{obs_days[1]}"
    )
    if common == 0:
        return f"{spans}: no day in common, so every gage will be no_simulation"
    if min_days is not None and common < min_days:
        return (
            f"{spans}: only {common} days in common, fewer than min_paired_days={min_days}, "
            "so every gage will be too_few_days"
        )
    return None


def _place(
    store: Store, positions: np.ndarray, dates: np.ndarray, daily: _Daily | None = None
) -> np.ndarray:
    """A ``(len(positions), len(dates))`` array: the store's daily values, NaN elsewhere.

    ``daily`` = ``(positions, days, values)`` already read (chunk-aware units); else the
    store is read here.
    """
    present = positions >= 0
    found = positions[present]
    if found.size == 0:
        return np.full((positions.size, dates.size), np.nan, dtype=np.float32)
    if daily is None:
        days, values = store.daily_values(found)
    else:
        read, days, all_values = daily
        rows = np.searchsorted(read, found)
        if np.any(rows >= read.size) or np.any(read[np.minimum(rows, read.size - 1)] != found):
            raise InputError(f"the {store.label} store: a gage was not read by its work unit")
        values = all_values[rows]
    out = np.full((positions.size, dates.size), np.nan, dtype=values.dtype)
    if days.size == dates.size and bool(np.all(days == dates)):
        out[present] = values
        return out
    where = pd.Index(days).get_indexer(pd.Index(dates))
    hit = where >= 0
    rows = np.flatnonzero(present)
    out[np.ix_(rows, np.flatnonzero(hit))] = values[:, where[hit]]
    return out
