"""What a run needs from a store, and how a store engine opens one.

:class:`Store` is the typed contract between an opened store and the rest of gagebench
(``SourceSet``, the chunk-aware reader, the manifest): a ``(time, gage)`` variable
with its gage ids and positions, daily reads by gage batch and by chunk unit, a
description for the manifest and its warnings. :class:`StoreEngine` opens one from a
store's settings; the built-in engines are ``zarr``, ``reference`` and ``netcdf``
(:mod:`gagebench.sources.engines`), others come from the ``gagebench.stores`` entry-point
group, as xarray's backends do::

    [project.entry-points."gagebench.stores"]
    mystore = "mypackage.store:MyEngine"

and are picked with ``engine: mystore`` in a store's settings.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from gagebench.config import StoreConfig


@runtime_checkable
class Store(Protocol):
    """One opened store: a ``(time, gage)`` streamflow variable in m3/s.

    Positions are indices along the store's gage axis; -1 means "not in the store".
    Values come back decoded (CF fill values as NaN, scale and offset applied) and
    converted to m3/s.
    """

    #: How the store is named in messages (``observed``, ``model 'nwm'``) and its URL.
    label: str
    url: str
    #: The time axis (``datetime64[ns]``, strictly increasing) and its length.
    times: np.ndarray
    n_time: int
    #: True when the store holds at most one value per calendar day; then ``days`` is
    #: the calendar day of each time step (the axis of :meth:`daily_values`), else None.
    daily: bool
    days: np.ndarray | None
    #: Gages and time steps per storage chunk: a store with ``gage_chunk > 1`` is read
    #: in chunk-aware work units (:mod:`gagebench.sources.chunked`).
    gage_chunk: int
    time_chunk: int

    def gage_ids(self) -> list[str]:
        """Every canonical gage id of the store, in store order (first occurrences)."""
        ...

    def positions(self, gage_ids: Sequence[str]) -> np.ndarray:
        """Store positions of ``gage_ids`` (-1 where absent); ids in any accepted form."""
        ...

    def daily_values(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(days, values)`` of existing positions: one gage batch, hourly stores averaged
        to days; ``values`` is ``(len(positions), len(days))``."""
        ...

    def read_unit(self, positions: np.ndarray, t0: int, t1: int) -> np.ndarray:
        """Decoded values ``(t1 - t0, len(positions))`` of sorted, unique positions over
        time steps ``[t0, t1)``, fetching each storage chunk they touch once."""
        ...

    def day_layout(self) -> tuple[np.ndarray, np.ndarray]:
        """``(day index of each time step, days)``: the store's contiguous daily axis."""
        ...

    def daily_dtype(self) -> np.dtype[Any]:
        """The dtype of daily values, as :meth:`daily_values` gives them."""
        ...

    def manifest_entry(self) -> dict[str, Any]:
        """What the manifest records of the store (URL, engine, units, chunks...)."""
        ...

    def warnings(self) -> list[str]:
        """One line per thing the user should know about the store (logged once a run)."""
        ...


class StoreEngine(ABC):
    """Opens stores of one kind; subclass it to add a store (entry points ``gagebench.stores``).

    An engine is instantiated once per process with no arguments; :meth:`open` is called
    at most once per store and process (stores are cached, see
    :mod:`gagebench.sources.cache`).
    """

    #: A one-line description, listed with the available engines.
    description: str = ""

    @abstractmethod
    def open(self, label: str, spec: StoreConfig) -> Store:
        """Open the store of ``spec`` (``label`` names it in messages).

        Raise :class:`~gagebench.errors.StorageError` naming the URL and the fix when it
        cannot be read, :class:`~gagebench.errors.InputError` for unusable data.
        """

    def version(self, label: str, spec: StoreConfig) -> tuple[str, ...] | None:
        """A token that changes when the store is rewritten in place (None: unknown; then
        a cached store is reused until the cache drops it)."""
        return None
