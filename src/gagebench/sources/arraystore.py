"""The shared body of stores holding a ``(time, gage)`` variable that xarray can describe.

An engine opens its storage once and hands :class:`ArrayStore` the xarray view (for the
gage index, the time axis, units and the CF encoding) and a raw reader; everything
else a :class:`~gagebench.sources.interface.Store` does is here, the same for every
engine: positions, CF decoding (fill values to NaN, scale_factor, add_offset, as xarray
would), units to m3/s, daily alignment, the manifest's description and the warnings.

Layouts read (as HyTEST's):

- observed: dims ``(time, gage_id)``, daily (stamped 05:00 UTC in HyTEST's store);
- modeled: daily or hourly, with a ``gage_id`` dimension, or a ``feature_id`` dimension
  carrying a ``gage_id`` coordinate of space-padded bytes (``b'       01011000'``), as the
  raw NWM retrospective store.

Gage ids are matched on their canonical form (:mod:`gagebench.ids`). Blank ids are
ignored; when a store holds the same gage twice, the first occurrence is read (the run
warns and records it). Stores indexed by features (segments, reaches) take a per-store
crosswalk (:mod:`gagebench.sources.crosswalk`); an integer feature dimension without
``gage_id`` coordinate or crosswalk is refused. Values are converted to m3/s from the
variable's ``units`` attribute or the store's ``units`` setting
(:mod:`gagebench.sources.units`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from gagebench.errors import InputError, StorageError
from gagebench.ids import canonical_id, canonical_ids
from gagebench.sources.crosswalk import (
    Crosswalk,
    Duplicate,
    build_index,
    crosswalk_pairs,
    is_integer_dim,
)
from gagebench.sources.daily import daily_days, day_layout, is_daily, subdaily_to_daily
from gagebench.sources.units import Units, resolve_units
from gagebench.storage.errors import translating

if TYPE_CHECKING:
    import xarray as xr

    from gagebench.config import StoreConfig


class ArrayStore(ABC):
    """One opened store: the variable, its gage index, units and time axis.

    Subclasses give the raw reads (:meth:`_read_rows`, :meth:`_read_block`); ``shape``
    and ``chunks`` are the variable's, in the order of its dims.
    """

    #: The engine's name, recorded in the manifest when it is not the default ``zarr``.
    engine = "zarr"

    def __init__(
        self,
        label: str,
        spec: StoreConfig,
        ds: xr.Dataset,
        shape: Sequence[int],
        chunks: Sequence[int],
        dtype: np.dtype[Any],
        times: np.ndarray | None = None,
    ):
        url = spec.url if isinstance(spec.url, str) else "[" + ", ".join(spec.url) + "]"
        variable = spec.variable
        self.label = label
        self.url = url
        self.url_record: str | list[str] = spec.url if isinstance(spec.url, str) else [*spec.url]
        self.variable = variable
        check_variable(label, url, ds, variable)
        da = ds[variable]
        if da.ndim != 2 or "time" not in da.dims:
            raise StorageError(
                f"the {label} store {url!r}: variable {variable!r} must have dims (time, gage), "
                f"got {tuple(da.dims)}"
            )
        self.gage_dim = next(str(d) for d in da.dims if d != "time")
        self.gage_axis = list(da.dims).index(self.gage_dim)
        self.units: Units = resolve_units(da.attrs.get("units"), spec.units, label, url)
        self.decode = _Decoding.of(da.encoding, self.units.factor)
        self.dtype = np.dtype(dtype)
        self.n_time = int(shape[1 - self.gage_axis])
        self.gage_chunk = int(chunks[self.gage_axis])
        self.time_chunk = int(chunks[1 - self.gage_axis])
        self.crosswalk = spec.crosswalk
        self.index, self.duplicates = _store_index(ds, self.gage_dim, label, url, spec.crosswalk)
        times = np.asarray(ds["time"].to_numpy()) if times is None else times
        if not np.issubdtype(times.dtype, np.datetime64):
            calendar = _calendar(ds)
            if calendar is not None:
                raise calendar_error(label, url, calendar)
            raise StorageError(
                f"the {label} store {url!r}: time is not decoded as dates (dtype {times.dtype})"
            )
        self.times = times.astype("datetime64[ns]")
        _check_time_order(label, url, self.times)
        self.daily = is_daily(self.times)
        self.days = daily_days(self.times) if self.daily else None
        self._layout: tuple[np.ndarray, np.ndarray] | None = None

    # -- what an engine gives --

    @abstractmethod
    def _read_rows(self, positions: np.ndarray) -> np.ndarray:
        """Raw values ``(len(positions), time)`` of distinct positions (any order)."""

    @abstractmethod
    def _read_block(self, positions: np.ndarray, t0: int, t1: int) -> np.ndarray:
        """Raw values ``(t1 - t0, len(positions))`` of sorted distinct positions."""

    def _describe_more(self) -> dict[str, Any]:
        """Engine facts for the manifest, besides the common ones."""
        return {}

    # -- the Store protocol --

    def gage_ids(self) -> list[str]:
        """Every gage id of the store, in store order."""
        return list(self.index)

    def positions(self, gage_ids: Sequence[str]) -> np.ndarray:
        """Store positions of ``gage_ids`` (-1 where absent); ids in any accepted form."""
        get = self.index.get
        return np.array([get(canonical_id(g) or "", -1) for g in gage_ids], dtype=np.int64)

    def read(self, positions: np.ndarray) -> np.ndarray:
        """Values ``(len(positions), time)`` of existing positions, touching only their chunks.

        A position asked for twice (gages sharing a feature) is read once.
        """
        unique, inverse = np.unique(positions, return_inverse=True)
        shared = unique.size != positions.size
        with translating(self.url, f"read {positions.size} gages from", f"the {self.label} store"):
            raw = self._read_rows(unique if shared else positions)
        values = self.decode.apply(raw)
        return values[inverse.reshape(-1)] if shared else values

    def daily_values(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Daily ``(days, values)`` of existing positions (hourly stores averaged)."""
        values = self.read(positions)
        if self.daily:
            assert self.days is not None
            return self.days, values
        return subdaily_to_daily(values, self.times)

    def read_unit(self, positions: np.ndarray, t0: int, t1: int) -> np.ndarray:
        """Decoded values ``(t1 - t0, len(positions))`` of sorted distinct positions."""
        with translating(self.url, f"read {positions.size} gages from", f"the {self.label} store"):
            raw = self._read_block(np.asarray(positions, dtype=np.int64), t0, t1)
        return self.decode.apply(raw)

    def daily_dtype(self) -> np.dtype[Any]:
        """The dtype of daily values: as the plain read gives them (float32 stays)."""
        if self.daily and self.decode.keeps(self.dtype):
            return self.dtype
        return np.dtype(np.float64)

    def day_layout(self) -> tuple[np.ndarray, np.ndarray]:
        """``(day of each time step, days)``: the store's contiguous daily axis."""
        if self._layout is None:
            what = f"the {self.label} store {self.url!r}"
            self._layout = day_layout(self.times, self.daily, what)
        return self._layout

    def manifest_entry(self) -> dict[str, Any]:
        """What the manifest records of this store: units, conversion, crosswalk, duplicates."""
        engine = {} if self.engine == "zarr" else {"engine": self.engine}
        return {
            "url": self.url_record,
            "variable": self.variable,
            **engine,
            **self.units.manifest_entry(),
            "crosswalk": None if self.crosswalk is None else self.crosswalk.manifest_entry(),
            "chunks": {"time": self.time_chunk, "gage": self.gage_chunk},
            **self._describe_more(),
            "duplicate_gages": {
                d.gage: {"used": _plain(d.used), "ignored": [_plain(x) for x in d.ignored]}
                for d in self.duplicates
            },
        }

    def warnings(self) -> list[str]:
        """One line per thing the user should know about this store (logged once per run)."""
        lines = [d.message(self.label, self.url) for d in self.duplicates]
        if self.units.source == "missing":
            lines.append(
                f"the {self.label} store {self.url!r}: variable {self.variable!r} has no "
                "units attribute; taking m3/s (set the store's 'units' to say otherwise)"
            )
        coded = self.decode.uncoded_integers(self.dtype)
        if coded:
            lines.append(
                f"the {self.label} store {self.url!r}: variable {self.variable!r} holds "
                f"{coded} with no scale_factor, add_offset or _FillValue attribute, so each "
                f"integer is scored as a flow in {self.units.units or 'm3/s'} and none as "
                "missing; if they are coded (e.g. hundredths, -100 for missing), add those CF "
                "attributes to the store's variable"
            )
        return lines


def check_variable(label: str, url: str, ds: xr.Dataset, variable: str) -> None:
    """Raise naming the store and its variables when it has no ``variable``."""
    if variable not in ds.data_vars and variable not in ds.variables:
        raise StorageError(
            f"the {label} store {url!r} has no variable {variable!r} (it has: "
            f"{', '.join(map(str, ds.data_vars)) or 'none'}); set the store's 'variable'"
        )


#: CF calendars whose dates are the standard (Gregorian) ones that observations use.
_STANDARD_CALENDARS = frozenset({"standard", "gregorian", "proleptic_gregorian"})


def open_view(label: str, url: str, open_: Callable[[bool], xr.Dataset]) -> xr.Dataset:
    """xarray's view of a store, ``open_(decode_times)``; a time axis on a calendar other
    than the standard one (a model's ``noleap``, ``360_day``...) or times that cannot be
    decoded are refused naming the store, where xarray raises a ValueError."""
    try:
        return open_(True)
    except ValueError as exc:
        calendar = _calendar(open_(False))  # opens: it was the times that failed
        if calendar is not None:
            raise calendar_error(label, url, calendar) from None
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(
            f"the {label} store {url!r}: its times cannot be read as dates ({reason}); "
            "give its time variable CF units, e.g. 'hours since 1979-02-01 00:00:00'"
        ) from exc


def _calendar(ds: xr.Dataset) -> str | None:
    """The CF calendar of ``ds``'s time when it is not the standard one, else None."""
    if "time" not in ds.variables:
        return None
    time = ds.variables["time"]
    calendar = time.attrs.get("calendar", time.encoding.get("calendar"))
    if calendar is None or str(calendar).strip().lower() in _STANDARD_CALENDARS:
        return None
    return str(calendar)


def calendar_error(label: str, url: str, calendar: str) -> InputError:
    """The error of a store whose time axis is on a non-standard CF calendar."""
    return InputError(
        f"the {label} store {url!r}: its time axis uses the {calendar!r} calendar, whose "
        "days are not the observations' calendar days; write the store again on the "
        "standard calendar, e.g. ds.convert_calendar('standard', align_on='date') in "
        "xarray (with cftime installed; days the calendar lacks become missing)"
    )


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


@dataclass(frozen=True)
class _Decoding:
    """CF decoding xarray would apply (fill values, scale, offset), then units to m3/s."""

    fills: tuple[float, ...] = ()
    scale: float | None = None
    offset: float | None = None
    factor: float = 1.0
    #: CF ``_Unsigned = "true"``: signed integers hold unsigned ones (NetCDF-3's way).
    unsigned: bool = False

    @classmethod
    def of(cls, encoding: Mapping[str, Any], factor: float = 1.0) -> _Decoding:
        fills = tuple(
            float(v)
            for key in ("_FillValue", "missing_value")
            for v in np.atleast_1d(encoding.get(key, []))
            if v is not None and not np.isnan(float(v))
        )
        scale = encoding.get("scale_factor")
        offset = encoding.get("add_offset")
        return cls(
            fills=fills,
            scale=None if scale is None else float(scale),
            offset=None if offset is None else float(offset),
            factor=float(factor),
            unsigned=str(encoding.get("_Unsigned", "")).strip().lower() == "true",
        )

    def keeps(self, dtype: np.dtype[Any]) -> bool:
        """True when decoded values keep the raw float ``dtype`` (no scaling at all)."""
        return (
            np.issubdtype(dtype, np.floating)
            and self.scale is None
            and self.offset is None
            and self.factor == 1.0
        )

    def uncoded_integers(self, dtype: np.dtype[Any]) -> str | None:
        """The integer dtype's name when integers come with no CF coding at all (no scale,
        offset or fill value: probably coded values read as flows), else None."""
        if dtype.kind in "iu" and not self.fills and self.scale is None and self.offset is None:
            return f"{dtype.name} integers"
        return None

    def apply(self, raw: np.ndarray) -> np.ndarray:
        """Raw values as floats with fills as NaN (float32 stays float32 when unscaled)."""
        fills = self.fills
        if self.unsigned and raw.dtype.kind == "i":
            as_unsigned = np.dtype(f"u{raw.dtype.itemsize}")
            fills = tuple(
                float(np.array(f).astype(raw.dtype).view(as_unsigned)) if f < 0 else f
                for f in fills
            )
            raw = raw.view(as_unsigned)
        values = raw if np.issubdtype(raw.dtype, np.floating) else raw.astype(np.float64)
        if fills:
            mask = np.isin(raw, fills)
            if mask.any():
                values = values.copy() if values is raw else values
                values[mask] = np.nan
        if self.scale is not None or self.offset is not None:
            values = values.astype(np.float64) * (1.0 if self.scale is None else self.scale)
            values += 0.0 if self.offset is None else self.offset
        if self.factor != 1.0:
            values = values.astype(np.float64) * self.factor
        return values


def _store_index(
    ds: xr.Dataset, gage_dim: str, label: str, url: str, crosswalk: Crosswalk | None
) -> tuple[dict[str, int], list[Duplicate]]:
    """Gage id -> store position (first occurrence) and the gages listed twice."""
    labels: list[Any]
    if crosswalk is not None:
        gages, positions, labels = crosswalk_pairs(crosswalk, ds, gage_dim, label, url)
        return build_index(gages, positions, labels)
    if "gage_id" in ds.variables and ds["gage_id"].dims == (gage_dim,):
        raw = ds["gage_id"].to_numpy()
    elif gage_dim in ds.variables:
        if gage_dim != "gage_id" and is_integer_dim(ds, gage_dim):
            raise StorageError(
                f"the {label} store {url!r} is indexed by integer {gage_dim!r} values "
                "(reach or segment ids, not site numbers) and has no 'gage_id' coordinate: "
                "give the store a crosswalk, {url: <CSV>, gage: <column>, feature: <column>} "
                "or {gage_variable: <var>, feature_variable: <var>}"
            )
        raw = ds[gage_dim].to_numpy()
    else:
        raise StorageError(
            f"the {label} store {url!r} has no gage ids: expected a 'gage_id' coordinate "
            f"along {gage_dim!r}, or a crosswalk"
        )
    ids = canonical_ids(raw)
    if gage_dim in ds.variables:
        labels = [f"{gage_dim}={v}" for v in np.asarray(ds[gage_dim].to_numpy()).tolist()]
    else:
        labels = [f"{gage_dim}[{i}]" for i in range(len(ids))]
    return build_index(ids, range(len(ids)), labels)


def _check_time_order(label: str, url: str, times: np.ndarray) -> None:
    """Raise naming the store when its time axis is not strictly increasing."""
    if times.size < 2:
        return
    steps = times[1:] <= times[:-1]
    if bool(steps.any()):
        at = int(np.flatnonzero(steps)[0])
        order = "descending" if bool(np.all(times[1:] < times[:-1])) else "not increasing"
        raise InputError(
            f"the {label} store {url!r}: its time axis is {order} ({times[at]} is followed by "
            f"{times[at + 1]} at position {at + 1}); write the store with time sorted in "
            "increasing order, e.g. ds.sortby('time').to_zarr(...)"
        )
