"""Observed and modeled streamflow for a batch of gages, from zarr at any fsspec URL.

Store layouts read here (as HyTEST's):

- observed: dims ``(time, gage_id)``, daily (stamped 05:00 UTC in HyTEST's store);
- modeled: daily or hourly, with a ``gage_id`` dimension, or a ``feature_id`` dimension
  carrying a ``gage_id`` coordinate of space-padded bytes (``b'       01011000'``), as the
  raw NWM retrospective store.

Gage ids are matched on a canonical form: bytes are decoded and stripped, a bare site
number ``01011000`` becomes ``USGS-01011000``; other text is kept as is. Matching is on
the exact string, so leading zeros matter; integer ids (which cannot hold leading
zeros) are zero-padded to 8 digits. Blank ids are ignored; when a store holds the same
gage twice, the first occurrence is read (the run warns and records it). Stores indexed
by features (segments, reaches) take a per-store crosswalk
(:mod:`gagebench.sources.crosswalk`); an integer feature dimension without ``gage_id``
coordinate or crosswalk is refused. Values are converted to m3/s from the variable's
``units`` attribute or the store's ``units`` setting (:mod:`gagebench.sources.units`).

Stores open through fsspec as zarr or xarray would: any URL, ``reference://`` (kerchunk
JSON, local or remote, given as ``storage_options.fo``) and ``consolidated`` per store.
Stores whose chunks hold several gages are read chunk by chunk in work units
(:mod:`gagebench.sources.chunked`), each needed chunk once per run.

Daily alignment is by calendar day: a daily series stamped at any hour is assigned to
its date. A sub-daily (e.g. hourly) series is first averaged over days starting at 05:00
UTC (``resample("1D", offset="5h").mean()`` in pandas), each mean labelled by the date
its day starts on; a day's mean is the mean of its available (non-NaN) hours, NaN when
it has none, exactly as pandas gives. The common daily axis of a batch is the observed
store's days; model series are reindexed onto it (NaN where a model has no day).

Reading a batch touches only that batch's gages: positions come from an index built once
per process per store (stores are cached per process; :func:`clear_cache` forgets them),
and a store chunked one gage per chunk reads exactly one chunk per gage, concurrently
(:mod:`gagebench.sources.zarrio`); other chunkings go through zarr's orthogonal indexing.
Values are CF-decoded as xarray would (fill values to NaN, scale_factor, add_offset).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numba as nb
import numpy as np
import pandas as pd

from gagebench.errors import InputError, StorageError
from gagebench.gages import ID_PREFIX, plan_batches
from gagebench.sources.chunked import TIME_CHUNKS_PER_TASK, is_multi_gage, plan_units
from gagebench.sources.crosswalk import (
    Crosswalk,
    Duplicate,
    build_index,
    crosswalk_pairs,
    is_integer_dim,
)
from gagebench.sources.units import Units, resolve_units
from gagebench.sources.zarrio import read_gage_rows
from gagebench.storage.errors import translating
from gagebench.storage.fs import options_for_url
from gagebench.storage.retry import is_credential_conflict, is_transient

if TYPE_CHECKING:
    import xarray as xr

    from gagebench.config import RunConfig, StoreConfig

log = logging.getLogger(__name__)

DAY_OFFSET = np.timedelta64(5, "h")
_HOUR = np.timedelta64(1, "h")
_DAY = np.timedelta64(1, "D")
# Gages reduced at once when averaging hours to days: bounds the float64 temporaries.
_REDUCE_BLOCK = 16


@dataclass(frozen=True)
class Batch:
    """Daily observed and modeled series of a batch of gages on one common daily axis."""

    gage_ids: list[str]
    dates: np.ndarray
    observed: np.ndarray
    modeled: dict[str, np.ndarray]
    missing_observed: frozenset[str]
    missing_model: dict[str, frozenset[str]]


def normalize_id(value: Any) -> str | None:
    """The canonical gage id of a store or list entry; None for a blank entry."""
    if isinstance(value, bytes | np.bytes_):
        text = bytes(value).decode("utf-8", errors="replace").strip().strip("\x00")
    elif isinstance(value, int | np.integer) and not isinstance(value, bool):
        text = f"{int(value):08d}"
    else:
        text = str(value).strip()
    if not text:
        return None
    return ID_PREFIX + text if text.isdigit() else text


def _normalize_many(values: np.ndarray) -> list[str | None]:
    """Canonical ids of a whole coordinate; fast on millions of mostly blank bytes."""
    if values.dtype.kind == "S":
        stripped = np.char.strip(values)
        out: list[str | None] = [None] * len(values)
        for pos in np.flatnonzero(stripped != b""):
            out[int(pos)] = normalize_id(stripped[pos])
        return out
    return [normalize_id(v) for v in values.tolist()]


def daily_days(times: np.ndarray) -> np.ndarray:
    """Calendar days (``datetime64[D]``) of a daily time axis stamped at any hour."""
    return np.asarray(times, dtype="datetime64[ns]").astype("datetime64[D]")


def subdaily_to_daily(values: np.ndarray, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Average a sub-daily ``(gage, time)`` array to days starting at 05:00 UTC.

    Returns ``(days, daily)``: ``days`` as ``datetime64[D]`` (the date each 05:00-05:00
    day starts on) and ``daily`` float64 of shape ``(gage, days)``, the mean of each
    day's non-NaN values (NaN when none), as ``resample("1D", offset="5h").mean()``.
    A regular hourly axis is averaged as ``(gage, day, 24)`` blocks in one compiled
    pass; any other sorted axis is summed per day with ``np.add.reduceat``.
    """
    values = np.asarray(values)
    if values.ndim != 2:
        raise InputError(f"expected a (gage, time) array, got shape {values.shape}")
    t = np.asarray(times, dtype="datetime64[ns]")
    if t.size != values.shape[1]:
        raise InputError(f"time axis has {t.size} steps but the values have {values.shape[1]}")
    if t.size == 0:
        return np.empty(0, dtype="datetime64[D]"), np.empty((values.shape[0], 0))
    if t.size > 1 and not bool(np.all(t[1:] > t[:-1])):
        raise InputError("the time axis of a sub-daily store must be strictly increasing")
    shifted = t - DAY_OFFSET
    first_day = shifted[0].astype("datetime64[D]")
    regular = t.size > 1 and bool(np.all(np.diff(t) == _HOUR))
    if regular:
        lead = int((shifted[0] - first_day.astype("datetime64[ns]")) // _HOUR)
        n_days = -(-(lead + t.size) // 24)
        daily = _hourly_means(values, lead, n_days)
        return first_day + np.arange(n_days) * _DAY, daily
    day_of = shifted.astype("datetime64[D]")
    starts = np.flatnonzero(np.r_[True, day_of[1:] != day_of[:-1]])
    days = day_of[starts]
    daily = np.empty((values.shape[0], starts.size), dtype=np.float64)
    for start in range(0, values.shape[0], _REDUCE_BLOCK):
        block = values[start : start + _REDUCE_BLOCK].astype(np.float64)
        valid = ~np.isnan(block)
        sums = np.add.reduceat(np.where(valid, block, 0.0), starts, axis=1)
        counts = np.add.reduceat(valid, starts, axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            daily[start : start + _REDUCE_BLOCK] = np.where(counts > 0, sums / counts, np.nan)
    # Days with no sample at all are absent from ``days``; reindexing makes them NaN.
    return days, daily


@nb.njit(cache=True, nogil=True)
def _hourly_means(values: np.ndarray, lead: int, n_days: int) -> np.ndarray:
    """Means of non-NaN hours per day: hour ``k`` of a row falls in day ``(k + lead) // 24``.

    The same as padding the row with ``lead`` NaN hours, reshaping to ``(days, 24)`` and
    taking a NaN-mean, in one pass without temporaries.
    """
    n_gage, n_hour = values.shape
    out = np.empty((n_gage, n_days))
    for i in range(n_gage):
        for d in range(n_days):
            lo = max(d * 24 - lead, 0)
            hi = min((d + 1) * 24 - lead, n_hour)
            total = 0.0
            count = 0
            for k in range(lo, hi):
                v = values[i, k]
                if not np.isnan(v):
                    total += v
                    count += 1
            out[i, d] = total / count if count > 0 else np.nan
    return out


# --- stores -------------------------------------------------------------------------------


def _opening(label: str, url: str) -> contextlib.AbstractContextManager[None]:
    """Storage failures while opening a store, as one StorageError naming it and the fix.

    zarr says a missing metadata key with a ``KeyError``: a storage failure here.
    """
    return translating(url, "open", f"the {label} store", also=(KeyError,))


class _Store:
    """One opened zarr store: the variable, its gage index, units and daily time axis."""

    def __init__(self, label: str, spec: StoreConfig):
        url, variable, options = spec.url, spec.variable, spec.options()
        self.label = label
        self.url = url
        self.variable = variable
        ds = _open_dataset(label, url, options, spec.consolidated)
        if variable not in ds.data_vars and variable not in ds.variables:
            raise StorageError(
                f"the {label} store {url!r} has no variable {variable!r} (it has: "
                f"{', '.join(map(str, ds.data_vars)) or 'none'}); set the store's 'variable'"
            )
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
        self.array = _open_array(label, url, variable, options, spec.consolidated)
        self.n_time = int(self.array.shape[1 - self.gage_axis])
        self.gage_chunk = int(self.array.chunks[self.gage_axis])
        self.time_chunk = int(self.array.chunks[1 - self.gage_axis])
        self.crosswalk = spec.crosswalk
        self.index, self.duplicates = _store_index(ds, self.gage_dim, label, url, spec.crosswalk)
        times = np.asarray(ds["time"].to_numpy())
        if not np.issubdtype(times.dtype, np.datetime64):
            raise StorageError(
                f"the {label} store {url!r}: time is not decoded as dates (dtype {times.dtype})"
            )
        self.times = times.astype("datetime64[ns]")
        _check_time_order(label, url, self.times)
        days = daily_days(self.times)
        self.daily = days.size < 2 or bool(np.all(days[1:] > days[:-1]))
        self.days = days if self.daily else None
        self._layout: tuple[np.ndarray, np.ndarray] | None = None

    def positions(self, gage_ids: Sequence[str]) -> np.ndarray:
        """Store positions of ``gage_ids`` (-1 where absent); ids in any accepted form."""
        get = self.index.get
        return np.array([get(normalize_id(g) or "", -1) for g in gage_ids], dtype=np.int64)

    def read(self, positions: np.ndarray) -> np.ndarray:
        """Values ``(len(positions), time)`` of existing positions, touching only their chunks.

        A store chunked one gage per chunk is read gage by gage, concurrently, straight
        into contiguous rows (see :mod:`gagebench.sources.zarrio`); other chunkings use zarr's
        orthogonal indexing, which reads each needed chunk once. A position asked for
        twice (gages sharing a feature) is read once.
        """
        unique, inverse = np.unique(positions, return_inverse=True)
        shared = unique.size != positions.size
        with translating(self.url, f"read {positions.size} gages from", f"the {self.label} store"):
            raw = read_gage_rows(self.array, unique if shared else positions, self.gage_axis)
        values = self.decode.apply(raw)
        return values[inverse.reshape(-1)] if shared else values

    def daily_values(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Daily ``(days, values)`` of existing positions (hourly stores averaged)."""
        values = self.read(positions)
        if self.daily:
            assert self.days is not None
            return self.days, values
        return subdaily_to_daily(values, self.times)

    # -- what the chunk-aware reader needs (gagebench.sources.chunked) --

    def decode_values(self, raw: np.ndarray) -> np.ndarray:
        """Raw values as decoded floats in m3/s (fills as NaN)."""
        return self.decode.apply(raw)

    def daily_dtype(self) -> np.dtype[Any]:
        """The dtype of daily values: as the plain read gives them (float32 stays)."""
        if self.daily and self.decode.keeps(np.dtype(self.array.dtype)):
            return np.dtype(self.array.dtype)
        return np.dtype(np.float64)

    def day_layout(self) -> tuple[np.ndarray, np.ndarray]:
        """``(day of each time step, days)``: the store's contiguous daily axis.

        Daily stores: each step's calendar day. Sub-daily: the day (starting 05:00 UTC)
        each step falls in, as :func:`subdaily_to_daily`.
        """
        if self._layout is None:
            t = self.times
            if self.daily:
                day_of = daily_days(t)
            else:
                if t.size > 1 and not bool(np.all(t[1:] > t[:-1])):
                    raise InputError(
                        f"the {self.label} store {self.url!r}: the time axis of a sub-daily "
                        "store must be strictly increasing"
                    )
                day_of = (t - DAY_OFFSET).astype("datetime64[D]")
            first = day_of[0] if day_of.size else np.datetime64("1970-01-01", "D")
            index = (day_of - first).astype(np.int64)
            n_days = int(index[-1]) + 1 if index.size else 0
            self._layout = (index, first + np.arange(n_days) * _DAY)
        return self._layout

    def manifest_entry(self) -> dict[str, Any]:
        """What the manifest records of this store: units, conversion, crosswalk, duplicates."""
        return {
            "url": self.url,
            "variable": self.variable,
            **self.units.manifest_entry(),
            "crosswalk": None if self.crosswalk is None else self.crosswalk.manifest_entry(),
            "chunks": {"time": self.time_chunk, "gage": self.gage_chunk},
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
        coded = self.decode.uncoded_integers(np.dtype(self.array.dtype))
        if coded:
            lines.append(
                f"the {self.label} store {self.url!r}: variable {self.variable!r} holds "
                f"{coded} with no scale_factor, add_offset or _FillValue attribute, so each "
                f"integer is scored as a flow in {self.units.units or 'm3/s'} and none as "
                "missing; if they are coded (e.g. hundredths, -100 for missing), add those CF "
                "attributes to the store's variable"
            )
        return lines


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


@dataclass(frozen=True)
class _Decoding:
    """CF decoding xarray would apply (fill values, scale, offset), then units to m3/s."""

    fills: tuple[float, ...] = ()
    scale: float | None = None
    offset: float | None = None
    factor: float = 1.0

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
        values = raw if np.issubdtype(raw.dtype, np.floating) else raw.astype(np.float64)
        if self.fills:
            mask = np.isin(raw, self.fills)
            if mask.any():
                values = values.copy() if values is raw else values
                values[mask] = np.nan
        if self.scale is not None or self.offset is not None:
            values = values.astype(np.float64) * (1.0 if self.scale is None else self.scale)
            values += 0.0 if self.offset is None else self.offset
        if self.factor != 1.0:
            values = values.astype(np.float64) * self.factor
        return values


def zarr_options(url: str, options: Mapping[str, Any]) -> dict[str, Any] | None:
    """Storage options for zarr/xarray: a ``reference://`` store's remote fs made async.

    zarr 3 reads through an asynchronous file system, so it opens a ``reference://``
    store asynchronously, and fsspec's ReferenceFileSystem then refuses a synchronous
    remote file system ("must have same value of asynchronous"). HyTEST's catalogs give
    ``remote_options`` without ``asynchronous`` (written for zarr 2); for an async-capable
    remote protocol (s3, gcs, http) it is set here, as zarr 3 needs.
    """
    opts = options_for_url(url, options)
    if opts is None or not url.startswith("reference://"):
        return opts
    protocol = opts.get("remote_protocol")
    remote = dict(opts.get("remote_options") or {})
    if isinstance(protocol, str) and "asynchronous" not in remote:
        import fsspec

        if getattr(fsspec.get_filesystem_class(protocol), "async_impl", False):
            opts = {**opts, "remote_options": {**remote, "asynchronous": True}}
    return opts


def _open_array(
    label: str,
    url: str,
    variable: str,
    options: Mapping[str, Any],
    consolidated: bool | None = None,
) -> Any:
    import zarr

    from gagebench.storage.integrity import verified_store

    with _opening(label, url):
        group = zarr.open_group(
            verified_store(url, zarr_options(url, options), options),
            mode="r",
            use_consolidated=consolidated,
        )
        return group[variable]


#: Files whose presence makes a path a zarr store (v2 group, consolidated, v3).
_ZARR_METADATA = (".zgroup", ".zmetadata", "zarr.json", ".zarray")


def _probe(label: str, url: str, options: Mapping[str, Any]) -> None:
    """Fail early and cleanly (few requests) on a bad endpoint, credentials or URL.

    Opening a zarr store fires several metadata requests at once; when the endpoint is
    down they all fail and leave noise on stderr. One plain request first avoids that.
    A store's root need not exist as a path of its file system (a ``reference://``
    store's root is ``''``), so a missing root is refused only when no zarr metadata
    file is found under it either. Existence is asked with ``info`` (not ``exists``,
    which says False for an endpoint that cannot be reached), and a root that is a
    file is refused as not a zarr store, saying what it looks like (NetCDF, HDF5...).
    """
    import fsspec

    with _opening(label, url):
        fs, path = fsspec.core.url_to_fs(url, **(options_for_url(url, options) or {}))
        root = _info(fs, path) if path else None
        metadata = (root is None or root.get("type") == "file") and any(
            _info(fs, f"{path.rstrip('/')}/{name}" if path else name) is not None
            for name in _ZARR_METADATA
        )  # a file root may still be a store: http servers answer for folders too
        found = root is not None or metadata
        kind = (
            _file_kind(fs, path)
            if root is not None and not metadata and root.get("type") == "file"
            else None
        )
    if not found:
        raise StorageError(f"cannot open the {label} store {url!r}: nothing there; check the URL")
    if kind is not None:
        raise StorageError(
            f"cannot open the {label} store {url!r}: it is not a zarr store (a folder with "
            f".zgroup/.zmetadata or zarr.json), it looks like {kind}; give the URL of a zarr "
            "store, or convert the file (xarray: open_dataset(...).to_zarr(...))"
        )


def _info(fs: Any, path: str) -> dict[str, Any] | None:
    """``fs.info(path)``, None when nothing is there; other failures raise (unreachable...)."""
    try:
        return dict(fs.info(path))
    except (FileNotFoundError, NotADirectoryError) as exc:
        cause = exc.__cause__
        if cause is not None and (is_transient(cause) or is_credential_conflict(cause)):
            raise cause from exc  # http's "not found" for a refused or refused-to-send request
        return None


#: Leading bytes of files that are not zarr stores, and what they are.
_FILE_MAGIC = (
    (b"\x89HDF\r\n\x1a\n", "a NetCDF-4 / HDF5 file"),
    (b"CDF\x01", "a NetCDF (classic) file"),
    (b"CDF\x02", "a NetCDF (64-bit offset) file"),
    (b"CDF\x05", "a NetCDF (64-bit data) file"),
    (b"PK\x03\x04", "a zip file (a zipped zarr store opens as zip::<URL>)"),
)


def _file_kind(fs: Any, path: str) -> str:
    """What the file at ``path`` looks like from its first bytes."""
    head = bytes(fs.cat_file(path, start=0, end=8))
    for magic, kind in _FILE_MAGIC:
        if head.startswith(magic):
            return kind
    if head.lstrip().startswith(b"{"):
        return "a JSON file (a kerchunk reference opens as url: reference:// with fo: <URL>)"
    return "a file"


def _open_dataset(
    label: str, url: str, options: Mapping[str, Any], consolidated: bool | None = None
) -> xr.Dataset:
    import xarray as xr

    from gagebench.storage.integrity import verified_store

    _probe(label, url, options)
    with _opening(label, url), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.filterwarnings("ignore", message=".*[Cc]onsolidated metadata.*")
        return xr.open_zarr(
            verified_store(url, zarr_options(url, options), options),
            chunks=None,
            consolidated=consolidated,
        )


def _store_index(
    ds: xr.Dataset, gage_dim: str, label: str, url: str, crosswalk: Crosswalk | None
) -> tuple[dict[str, int], list[Duplicate]]:
    """Gage id -> store position (first occurrence) and the gages listed twice."""
    labels: list[Any]
    if crosswalk is not None:
        gages, positions, labels = crosswalk_pairs(
            crosswalk, ds, gage_dim, label, url, normalize_id
        )
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
    ids = _normalize_many(np.asarray(raw))
    if gage_dim in ds.variables:
        labels = [f"{gage_dim}={v}" for v in np.asarray(ds[gage_dim].to_numpy()).tolist()]
    else:
        labels = [f"{gage_dim}[{i}]" for i in range(len(ids))]
    return build_index(ids, range(len(ids)), labels)


#: Stores kept open per process; beyond this the least recently used one is dropped.
MAX_OPEN_STORES = 8
#: Seconds a cached store is trusted before its metadata is checked for a rewrite.
REVALIDATE_S = 30.0


@dataclass
class _CachedStore:
    store: _Store
    version: tuple[str, ...] | None
    checked: float


_CACHE: OrderedDict[tuple[Any, ...], _CachedStore] = OrderedDict()
_CACHE_LOCK = threading.Lock()


def _cache_key(spec: StoreConfig) -> tuple[Any, ...]:
    options = repr(sorted((str(k), repr(v)) for k, v in spec.options().items()))
    return (spec.url, spec.variable, options, spec.consolidated, spec.units, repr(spec.crosswalk))


def store_version(label: str, spec: StoreConfig) -> tuple[str, ...] | None:
    """A token that changes when the store at ``spec.url`` is rewritten in place.

    The identity (ETag, modification time, size) of its first zarr metadata file; None
    when the file system gives none or for ``reference://`` stores (then only the cache
    bound and :func:`clear_cache` apply).
    """
    import fsspec

    if spec.url.startswith("reference://"):
        return None  # building the reference file system would load every reference again
    options = options_for_url(spec.url, spec.options()) or {}
    with _opening(label, spec.url):
        fs, path = fsspec.core.url_to_fs(spec.url, **options)
        for name in (".zmetadata", "zarr.json", ".zgroup", ".zarray"):
            try:
                info = fs.info(f"{path.rstrip('/')}/{name}" if path else name)
            except (FileNotFoundError, NotADirectoryError):
                continue  # (a file given as the store: _probe says what it is)
            keys = ("ETag", "etag", "mtime", "LastModified", "last_modified", "created", "size")
            return tuple(f"{k}={info[k]}" for k in keys if info.get(k) is not None)
    return None


def open_store(label: str, spec: StoreConfig) -> _Store:
    """The store, opened once per process and reused while it is unchanged.

    Cached by its whole spec, at most :data:`MAX_OPEN_STORES` at a time (least recently
    used dropped first). A cached store older than :data:`REVALIDATE_S` is reopened when
    its :func:`store_version` changed, so long-lived workers (a hub's gateway cluster)
    never read a rewritten store through stale metadata.
    """
    key = _cache_key(spec)
    now = time.monotonic()
    with _CACHE_LOCK:
        cached = _CACHE.get(key)
        if cached is not None and now - cached.checked < REVALIDATE_S:
            _CACHE.move_to_end(key)
            return cached.store
    version = store_version(label, spec)
    with _CACHE_LOCK:
        cached = _CACHE.get(key)
        if cached is not None and cached.version == version:
            cached.checked = now
            _CACHE.move_to_end(key)
            return cached.store
    store = _Store(label, spec)
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

    def _observed(self) -> _Store:
        spec = self.observed
        store = open_store("observed", spec)
        if not store.daily:
            raise InputError(
                f"the observed store {spec.url!r} is not daily (several values per calendar "
                "day); observations must be daily values"
            )
        return store

    def _model(self, name: str) -> _Store:
        return open_store(f"model {name!r}", self.models[name])

    def store_of(self, key: tuple[str, ...]) -> _Store:
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

    def chunked_stores(self) -> dict[tuple[str, ...], _Store]:
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
        return list(self._observed().index)

    def read_batch(self, gage_ids: Sequence[str]) -> Batch:
        """Daily observed and modeled series of ``gage_ids`` on the observed store's days."""
        ids = [str(g) for g in gage_ids]
        wanted = [normalize_id(g) or "" for g in ids]
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


def overlap_warning(observed: _Store, model: _Store, min_days: int | None) -> str | None:
    """A warning when ``model``'s days barely or never meet ``observed``'s, else None."""
    if observed.times.size == 0 or model.times.size == 0:
        return None
    obs_days = daily_days(observed.times[[0, -1]])
    model_days = daily_days(model.times[[0, -1]]) if model.daily else None
    if model_days is None:
        shifted = model.times[[0, -1]] - DAY_OFFSET
        model_days = shifted.astype("datetime64[D]")
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
    store: _Store, positions: np.ndarray, dates: np.ndarray, daily: _Daily | None = None
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
