"""Opened stores, kept per process: each store is opened once and reused while unchanged.

Workers read many batches of the same stores; opening a store (metadata, gage index,
time axis) once per process, not per batch, is what keeps batches cheap. The cache is
bounded (:data:`MAX_OPEN_STORES`) and revalidated (:data:`REVALIDATE_S`) against the
store's version token, so a store rewritten in place is opened again.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gagebench.sources.engines import engine_of
from gagebench.sources.interface import Store

if TYPE_CHECKING:
    from gagebench.config import StoreConfig


#: Stores kept open per process; beyond this the least recently used one is dropped.
MAX_OPEN_STORES = 8
#: Seconds a cached store is trusted before its metadata is checked for a rewrite.
REVALIDATE_S = 30.0


@dataclass
class _CachedStore:
    store: Store
    version: tuple[str, ...] | None
    checked: float


_CACHE: OrderedDict[tuple[Any, ...], _CachedStore] = OrderedDict()
_CACHE_LOCK = threading.Lock()


def _cache_key(spec: StoreConfig) -> tuple[Any, ...]:
    options = repr(sorted((str(k), repr(v)) for k, v in spec.options().items()))
    how = (spec.consolidated, spec.units, repr(spec.crosswalk), spec.engine)
    return (spec.url, spec.variable, options, *how)


def open_store(label: str, spec: StoreConfig, setting: str = "engine") -> Store:
    """The store, opened once per process and reused while it is unchanged.

    Cached by its whole spec, at most :data:`MAX_OPEN_STORES` at a time (least recently
    used dropped first). A cached store older than :data:`REVALIDATE_S` is reopened when
    its engine's version token changed (:meth:`StoreEngine.version`), so long-lived
    workers (a hub's gateway cluster) never read a rewritten store through stale metadata.
    ``setting`` names the store's ``engine`` setting in errors.
    """
    opener = engine_of(spec, setting)
    key = _cache_key(spec)
    now = time.monotonic()
    with _CACHE_LOCK:
        cached = _CACHE.get(key)
        if cached is not None and now - cached.checked < REVALIDATE_S:
            _CACHE.move_to_end(key)
            return cached.store
    version = opener.version(label, spec)
    with _CACHE_LOCK:
        cached = _CACHE.get(key)
        if cached is not None and cached.version == version:
            cached.checked = now
            _CACHE.move_to_end(key)
            return cached.store
    store = opener.open(label, spec)
    with _CACHE_LOCK:
        _CACHE[key] = _CachedStore(store, version, now)
        _CACHE.move_to_end(key)
        while len(_CACHE) > MAX_OPEN_STORES:
            _CACHE.popitem(last=False)
    return store


def clear_cache() -> None:
    """Forget every opened store (e.g. after a store was rewritten in place)."""
    with _CACHE_LOCK:
        _CACHE.clear()
