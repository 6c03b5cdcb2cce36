"""Zarr stores written again as NetCDF-4 files (xarray + h5netcdf), and a file system that
logs every byte range read, to count HDF5 chunk reads.

The NetCDF copies keep the zarr store's raw encoding (dtype, scale_factor, add_offset,
fill values), so both engines decode the same integers: their reads must be equal.
"""

from __future__ import annotations

import io
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import xarray as xr
from _replicas import LoggedLocalFileSystem

_CF_KEYS = ("dtype", "scale_factor", "add_offset", "_FillValue", "missing_value", "units")


def zarr_to_netcdf(
    zarr_url: str,
    out: Path | str,
    *,
    chunks: tuple[int, ...] | None = None,
    time: slice | None = None,
    storage_options: dict[str, Any] | None = None,
) -> str:
    """Write the zarr store at ``zarr_url`` (or its ``time`` slice) as one NetCDF-4 file.

    ``chunks``: HDF5 chunk shape of each 2-D variable (compressed with zlib); None:
    contiguous, as ``to_netcdf`` writes by default.
    """
    ds = xr.open_zarr(zarr_url, storage_options=storage_options)
    if time is not None:
        ds = ds.isel(time=time)
    encoding: dict[str, dict[str, Any]] = {}
    for name, var in ds.variables.items():
        kept = {k: v for k, v in var.encoding.items() if k in _CF_KEYS}
        if var.ndim == 2 and chunks is not None:
            kept.update(chunksizes=chunks, zlib=True, complevel=1)
        encoding[str(name)] = kept
        var.encoding = {}
    ds.to_netcdf(str(out), engine="h5netcdf", encoding=encoding)
    return str(out)


def split_by_time(
    zarr_url: str,
    folder: Path,
    parts: Sequence[slice],
    stem: str,
    storage_options: dict[str, Any] | None = None,
) -> list[str]:
    """The zarr store as one NetCDF file per time slice: ``<stem>_<i>.nc`` in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    return [
        zarr_to_netcdf(
            zarr_url, folder / f"{stem}_{i}.nc", time=part, storage_options=storage_options
        )
        for i, part in enumerate(parts)
    ]


class RangeLoggingFileSystem(LoggedLocalFileSystem):
    """Local files under ``ranges://``; each read's ``path offset size`` appended to ``log``.

    Test-only: a fake of an object store's ranged-GET log (no real object store here
    logs byte ranges).
    """

    protocol = ("ranges",)

    def _open(self, path: Any, mode: str = "rb", **kwargs: Any) -> Any:
        handle = super()._open(path, mode, **kwargs)
        return _Logged(handle, self._strip_protocol(path), self.log) if self.log else handle


class _Logged(io.RawIOBase):
    def __init__(self, handle: Any, path: str, log: str):
        self.handle, self.path, self.log = handle, path, log

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return int(self.handle.seek(offset, whence))

    def tell(self) -> int:
        return int(self.handle.tell())

    def readinto(self, buffer: Any) -> int:
        at = self.handle.tell()
        data = self.handle.read(len(buffer))
        buffer[: len(data)] = data
        with open(self.log, "a") as fh:
            fh.write(f"{self.path} {at} {len(data)}\n")
        return len(data)

    def close(self) -> None:
        self.handle.close()
        super().close()


def register_ranges() -> None:
    """Make ``ranges://`` URLs open :class:`RangeLoggingFileSystem` in this process."""
    import fsspec

    fsspec.register_implementation("ranges", RangeLoggingFileSystem, clobber=True)


def chunk_reads(log: str, path: str, variable: str = "streamflow") -> Counter[tuple[int, ...]]:
    """How many logged reads covered each stored chunk of ``variable`` in ``path``."""
    import h5py

    with h5py.File(path, "r") as f:
        dset = f[variable]
        chunks = [dset.id.get_chunk_info(i) for i in range(dset.id.get_num_chunks())]
    spans = [(c.byte_offset, c.byte_offset + c.size, tuple(c.chunk_offset)) for c in chunks]
    reads = Counter({span[2]: 0 for span in spans})
    if not os.path.exists(log):
        return reads
    with open(log) as fh:
        for line in fh:
            name, at, size = line.rsplit(" ", 2)
            if name != path:
                continue
            lo, hi = int(at), int(at) + int(size)
            for start, end, key in spans:
                if lo <= start and end <= hi:
                    reads[key] += 1
    return reads
