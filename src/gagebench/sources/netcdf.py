"""NetCDF-4 / HDF5 stores: one file, a list of files or a glob, at any fsspec URL.

``engine: netcdf`` reads the files as they are, with xarray's ``h5netcdf`` engine: each
file is opened once (h5netcdf over a local path, or over an fsspec file object for
remote URLs) and xarray's view of it gives the gage index, time axis, units and CF
encoding, while values are read straight from the HDF5 variable, lazily: a batch reads
only its gages' rows, and a chunk-aware unit (:mod:`gagebench.sources.chunked`) reads a
block of one time range, so HDF5 fetches each chunk it touches once.

Several files are one store joined along ``time`` (e.g. one file per year): ordered by
their first time step, they must hold the same gages in the same order and the same
chunking along the gage axis (a chunk-aware unit reads each chunk once when every file
but the last holds whole time chunks, as yearly files of one chunk each do). NetCDF
classic files (``CDF\\x01``...) are not HDF5 and are refused with what to do.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import TYPE_CHECKING, Any

import numpy as np

from gagebench.errors import InputError, StorageError
from gagebench.sources.arraystore import ArrayStore, check_variable, open_view
from gagebench.sources.interface import StoreEngine
from gagebench.sources.zarrstore import _file_kind, _info, has_magic
from gagebench.storage.errors import translating
from gagebench.storage.fs import options_for_url

if TYPE_CHECKING:
    import xarray as xr

    from gagebench.config import StoreConfig


#: Bytes a remote file is read ahead by, unless the store's storage options say
#: (``default_block_size``, ``default_cache_type``): HDF5 reads its metadata and chunks in
#: small pieces, and s3fs's default 50 MiB blocks fetched a whole file (several times
#: over for big ones) to open it, and 50 MiB per gage read.
BLOCK_SIZE = 2**18
#: ... and a file whose variable is contiguous (no HDF5 chunks), as s3fs reads files.
CONTIGUOUS_BLOCK_SIZE = 50 * 2**20


@dataclass
class _File:
    """One opened file: its URL, xarray's view, the raw variable, its time steps."""

    url: str
    ds: xr.Dataset
    variable: Any  # h5netcdf.Variable
    times: np.ndarray
    start: int = 0  # position of its first time step in the joined store


class NetCDFStore(ArrayStore):
    """NetCDF-4 / HDF5 files read lazily through h5netcdf, joined along time."""

    engine = "netcdf"

    def __init__(self, label: str, spec: StoreConfig):
        self.files = _open_files(label, spec)
        first = self.files[0]
        check_variable(label, first.url, first.ds, spec.variable)
        raw = first.variable
        dims = list(raw.dimensions)
        _check_dims(label, first, spec.variable)
        gage_axis = 1 - dims.index("time")
        _check_same_gages(label, self.files, spec.variable, gage_axis)
        start = 0
        for f in self.files:
            f.start = start
            start += f.times.size
        times = np.concatenate([f.times for f in self.files])
        shape = list(raw.shape)
        if len(shape) == 2:
            shape[1 - gage_axis] = int(times.size)
        # a contiguous variable has no chunk that gages share: read it gage by gage
        chunks = list(raw.chunks) if raw.chunks else [int(times.size), 1][:: 1 if gage_axis else -1]
        super().__init__(label, spec, first.ds, shape, chunks, np.dtype(raw.dtype), times=times)

    def _parts(self, t0: int, t1: int) -> Iterator[tuple[_File, int, int, int]]:
        """``(file, local start, local end, offset in the range)`` of time steps [t0, t1)."""
        for f in self.files:
            lo, hi = max(t0, f.start), min(t1, f.start + f.times.size)
            if lo < hi:
                yield f, lo - f.start, hi - f.start, lo - t0

    def _read_block(self, positions: np.ndarray, t0: int, t1: int) -> np.ndarray:
        out = np.empty((t1 - t0, positions.size), dtype=self.dtype)
        if positions.size == 0:
            return out
        index = positions.tolist()
        for f, lo, hi, at in self._parts(t0, t1):
            if self.gage_axis == 1:
                block = np.asarray(f.variable[lo:hi, index])
            else:
                block = np.asarray(f.variable[index, lo:hi]).T
            out[at : at + hi - lo] = block
        return out

    def _read_rows(self, positions: np.ndarray) -> np.ndarray:
        order = np.argsort(positions, kind="stable")
        block = self._read_block(positions[order], 0, self.n_time)
        out = np.empty((positions.size, self.n_time), dtype=block.dtype)
        out[order] = block.T
        return out

    def _describe_more(self) -> dict[str, Any]:
        return {"files": len(self.files)}


class NetCDFEngine(StoreEngine):
    """``engine: netcdf``: NetCDF-4 / HDF5 files through xarray's h5netcdf engine."""

    description = "NetCDF-4/HDF5 files (one, a list or a glob) at any fsspec URL, via h5netcdf"

    def open(self, label: str, spec: StoreConfig) -> NetCDFStore:
        return NetCDFStore(label, spec)

    def version(self, label: str, spec: StoreConfig) -> tuple[str, ...] | None:
        keys = ("ETag", "etag", "mtime", "LastModified", "last_modified", "size")
        token: list[str] = []
        for url, fs, path in _locate(label, spec):
            with translating(url, "open", f"the {label} store"):
                info = fs.info(path)
            token.extend(f"{path}:{k}={info[k]}" for k in keys if info.get(k) is not None)
        return tuple(token)


def _locate(label: str, spec: StoreConfig) -> list[tuple[str, Any, str]]:
    """``(url, file system, path)`` of every file of the store, globs expanded, sorted."""
    import fsspec

    found: list[tuple[str, Any, str]] = []
    for url in spec.urls:
        with translating(url, "open", f"the {label} store"):
            fs, path = fsspec.core.url_to_fs(url, **(options_for_url(url, spec.options()) or {}))
            if has_magic(url):
                paths = sorted(fs.glob(path))
                if not paths:
                    raise StorageError(
                        f"cannot open the {label} store {url!r}: no file matches the pattern; "
                        "check the URL"
                    )
                protocol = url.split("://", 1)[0] + "://" if "://" in url else ""
                found.extend((f"{protocol}{p}" if protocol else p, fs, p) for p in paths)
            else:
                found.append((url, fs, path))
    return found


def _open_files(label: str, spec: StoreConfig) -> list[_File]:
    """Every file of the store opened, ordered by first time step."""
    options = spec.options()
    tuned = any(k in options for k in ("block_size", "default_block_size", "default_cache_type"))
    block = None if tuned else BLOCK_SIZE
    files = [_open_file(label, spec.variable, *where, block) for where in _locate(label, spec)]
    files = sorted(files, key=lambda f: f.times[0] if f.times.size else np.datetime64("NaT"))
    timed = [f for f in files if f.times.size]
    for before, after in pairwise(timed):
        if after.times[0] <= before.times[-1]:
            raise InputError(
                f"the {label} store: its files overlap in time: {before.url!r} holds "
                f"{before.times[0]}..{before.times[-1]} and {after.url!r} "
                f"{after.times[0]}..{after.times[-1]}; give each time step in one file only "
                "(a file listed twice, or a glob matching two copies?)"
            )
    return files


def _open_file(
    label: str, variable: str, url: str, fs: Any, path: str, block: int | None = None
) -> _File:
    import h5netcdf
    import xarray as xr
    from xarray.backends import H5NetCDFStore

    with translating(url, "open", f"the {label} store"):
        info = _info(fs, path)
        if info is None:
            raise StorageError(
                f"cannot open the {label} store {url!r}: nothing there; check the URL"
            )
        if info.get("type") != "file":
            raise StorageError(
                f"cannot open the {label} store {url!r} as NetCDF: it is a folder (a zarr "
                "store?); set engine: zarr on this store, or give the URL of a NetCDF file"
            )
        kind = _file_kind(fs, path)
        if "HDF5" not in kind:
            raise StorageError(
                f"cannot open the {label} store {url!r} with engine: netcdf: it looks like "
                f"{kind}, not a NetCDF-4/HDF5 file; convert it (nccopy -k nc4 in.nc out.nc) or "
                "give a NetCDF-4 file"
            )
        local = "file" in _protocols(fs)
        sized = {} if block is None else {"block_size": block}
        remote = None if local else fs.open(path, "rb", **sized)
        handle = h5netcdf.File(path if remote is None else remote, "r")
        ds = open_view(
            label,
            url,
            lambda decode: xr.open_dataset(H5NetCDFStore(handle), chunks=None, decode_times=decode),
        )
    times = np.asarray(ds["time"].to_numpy()) if "time" in ds.variables else np.empty(0)
    if times.size and np.issubdtype(times.dtype, np.datetime64):
        times = times.astype("datetime64[ns]")
    raw = handle.variables.get(variable) if variable in ds.variables else None
    if remote is not None and block is not None and raw is not None and raw.chunks is None:
        _read_ahead(remote, CONTIGUOUS_BLOCK_SIZE)
    return _File(url, ds, raw, times)


def _read_ahead(remote: Any, size: int) -> None:
    """Read the fsspec file ``remote`` ahead by ``size`` bytes from now on.

    A contiguous ``(time, gage)`` variable (``to_netcdf``'s default) has no chunks: a
    gage's values are spread over the whole variable, which HDF5 reads in 64 KiB
    pieces; small blocks would make each piece a request (530 for a 70 MB file).
    """
    from fsspec.caching import ReadAheadCache

    remote.blocksize = size
    remote.cache = ReadAheadCache(size, remote._fetch_range, remote.size)


def _check_dims(label: str, f: _File, variable: str) -> None:
    """Refuse a variable that is not ``(time, gage)``, saying what to do with files of one
    time step each (NWM's CHRTOUT files hold ``streamflow(feature_id)``)."""
    dims = tuple(f.variable.dimensions)
    if len(dims) == 2 and "time" in dims:
        return
    hint = ""
    if "time" not in dims and f.times.size == 1:
        hint = (
            "; files of one time step each cannot be joined as they are: combine them "
            "along time first, e.g. xr.open_mfdataset(files, combine='nested', "
            "concat_dim='time', data_vars='all').to_zarr(...)"
        )
    raise StorageError(
        f"the {label} store {f.url!r}: variable {variable!r} must have dims (time, gage), "
        f"got {dims}{hint}"
    )


def _protocols(fs: Any) -> tuple[str, ...]:
    protocol = fs.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)


def _check_same_gages(label: str, files: Sequence[_File], variable: str, gage_axis: int) -> None:
    """Refuse files that do not hold the same gages, in the same order and chunking."""
    first = files[0]
    if len(files) < 2 or first.variable is None:
        return
    dim = first.variable.dimensions[gage_axis]
    ids = "gage_id" if "gage_id" in first.ds.variables else dim

    def gages(f: _File) -> np.ndarray | None:
        return np.asarray(f.ds[ids].to_numpy()) if ids in f.ds.variables else None

    for f in files[1:]:
        same = f.variable is not None and f.variable.dimensions == first.variable.dimensions
        if same:
            a, b = gages(first), gages(f)
            same = (a is None and b is None) or (
                a is not None and b is not None and np.array_equal(a, b)
            )
            same = same and _gage_chunk(f, gage_axis) == _gage_chunk(first, gage_axis)
        if not same:
            raise StorageError(
                f"the {label} store: {f.url!r} does not hold variable {variable!r} over the "
                f"same gages (in the same order and chunks) as {first.url!r}; the files of a "
                "store are joined along time and must share their gages"
            )


def _gage_chunk(f: _File, gage_axis: int) -> int:
    chunks = f.variable.chunks
    return int(chunks[gage_axis]) if chunks else 1
