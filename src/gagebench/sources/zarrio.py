"""Whole-gage row I/O on 2-D zarr arrays (time x gage), the hot path of reads and synth.

HyTEST's stores hold one gage per chunk over all time. zarr-python's per-chunk machinery
costs ~0.5 ms of CPU per chunk here, more than decoding a 60 kB chunk, so for zarr v2
arrays chunked that way (HyTEST's layout) rows are fetched concurrently with the store's
own async ``get``/``set`` and (de)compressed with the array's numcodecs codecs directly:
~5x less CPU. Every other layout goes through zarr's public indexing.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np


def _v2_whole_rows(array: Any, gage_axis: int) -> bool:
    """True for a zarr v2 array with one chunk per gage covering the whole time axis."""
    metadata = getattr(array, "metadata", None)
    return (
        getattr(metadata, "zarr_format", None) == 2
        and array.ndim == 2
        and array.chunks[gage_axis] == 1
        and array.chunks[1 - gage_axis] == array.shape[1 - gage_axis]
        and hasattr(array, "store")
    )


def _chunk_key(array: Any, position: int, gage_axis: int) -> str:
    sep = array.metadata.dimension_separator or "."
    coords = (0, position) if gage_axis == 1 else (position, 0)
    name = f"{coords[0]}{sep}{coords[1]}"
    return f"{array.path}/{name}" if array.path else name


def _native_dtype(array: Any) -> np.dtype[Any]:
    return np.dtype(array.metadata.dtype.to_native_dtype())


def _sync(coro: Any) -> Any:
    from zarr.core.sync import sync

    return sync(coro)


def read_gage_rows(array: Any, positions: np.ndarray, gage_axis: int) -> np.ndarray:
    """``(len(positions), time)`` rows of a 2-D zarr array, reading only their chunks."""
    n_time = array.shape[1 - gage_axis]
    if positions.size == 0:
        return np.empty((0, n_time), dtype=array.dtype)
    if _v2_whole_rows(array, gage_axis):
        return _read_v2_rows(array, positions, gage_axis)
    if array.chunks[gage_axis] == 1:
        async_array = array.async_array

        def key(pos: int) -> tuple[Any, ...]:
            return (slice(None), pos) if gage_axis == 1 else (pos, slice(None))

        async def gather() -> list[Any]:
            return await asyncio.gather(*(async_array.getitem(key(int(p))) for p in positions))

        return np.stack([np.asarray(row) for row in _sync(gather())])
    order = np.argsort(positions, kind="stable")
    sel: tuple[Any, ...] = (
        (slice(None), positions[order]) if gage_axis == 1 else (positions[order], slice(None))
    )
    block = np.asarray(array.get_orthogonal_selection(sel))
    rows = block.T if gage_axis == 1 else block
    out = np.empty((positions.size, n_time), dtype=rows.dtype)
    out[order] = rows
    return out


def _read_v2_rows(array: Any, positions: np.ndarray, gage_axis: int) -> np.ndarray:
    """Fetch the rows' chunks concurrently, decode them here, fetch bad ones again.

    A chunk that does not decode to exactly one row (a damaged body that slipped past
    the store's checks) is fetched again within the retry policy, never used.
    """
    from zarr.core.buffer import default_buffer_prototype

    from gagebench.storage.integrity import IntegrityError, check_decoded
    from gagebench.storage.retry import OUTAGE, default_policy, given_up

    metadata = array.metadata
    store = array.store
    prototype = default_buffer_prototype()
    keys = [_chunk_key(array, int(p), gage_axis) for p in positions]
    dtype = _native_dtype(array)
    n_time = array.shape[1 - gage_axis]
    out = np.empty((positions.size, n_time), dtype=dtype)
    filters = list(metadata.filters or ())[::-1]
    policy = getattr(store, "policy", None) or default_policy()

    def decode(key: str, buffer: Any) -> np.ndarray:
        data: Any = buffer.to_bytes()
        try:
            if metadata.compressor is not None:
                data = metadata.compressor.decode(data)
            for codec in filters:
                data = codec.decode(data)
        except Exception as exc:
            raise IntegrityError(f"chunk {key} does not decode: {exc}") from exc
        return check_decoded(key, data, n_time, dtype)

    pending = list(range(len(keys)))
    attempt, waited = 0, 0.0
    where = str(getattr(store, "name", store))
    ok = False
    try:
        while pending:

            async def fetch(todo: list[int] = pending) -> list[Any]:
                # Wait for every request, failed or not, so none is left pending (and closed
                # later from another context, which prints "Exception ignored" tracebacks).
                got = await asyncio.gather(
                    *(store.get(keys[i], prototype=prototype) for i in todo),
                    return_exceptions=True,
                )
                for item in got:
                    if isinstance(item, BaseException):
                        raise item
                return got

            failed: list[int] = []
            error: IntegrityError | None = None
            for i, buffer in zip(pending, _sync(fetch()), strict=True):
                if buffer is None:  # a chunk never written holds the fill value
                    out[i] = metadata.fill_value if metadata.fill_value is not None else 0
                    continue
                try:
                    out[i] = decode(keys[i], buffer)
                except IntegrityError as exc:
                    failed.append(i)
                    error = exc
            if error is None:
                ok = True
                break
            attempt += 1
            where = f"{getattr(store, 'name', store)} (chunk {keys[failed[0]]})"
            pause = policy.delay(attempt, waited)
            if pause is None:
                raise given_up(where, error, attempt, waited, True) from error
            OUTAGE.failed(error, first=attempt == 1)
            time.sleep(pause)
            waited += pause
            pending = failed
    finally:
        if attempt:  # some chunks failed at least once: they have settled now
            OUTAGE.settled(where, ok)
    return out


def write_gage_rows(array: Any, rows: np.ndarray, values: np.ndarray) -> None:
    """Write ``values`` (gage, time) into gage columns ``rows`` of a (time, gage) array."""
    data = np.asarray(values, dtype=array.dtype)
    if _v2_whole_rows(array, 1):
        _write_v2_rows(array, rows, data)
        return
    async_array = array.async_array

    async def put() -> None:
        await asyncio.gather(
            *(
                async_array.setitem((slice(None), int(row)), data[i])
                for i, row in enumerate(rows.tolist())
            )
        )

    _sync(put())


def _write_v2_rows(array: Any, rows: np.ndarray, data: np.ndarray) -> None:
    from zarr.core.buffer import default_buffer_prototype

    metadata = array.metadata
    store = array.store
    prototype = default_buffer_prototype()
    dtype = _native_dtype(array)
    payloads = []
    for i, row in enumerate(rows.tolist()):
        chunk: Any = np.ascontiguousarray(data[i], dtype=dtype)
        for codec in metadata.filters or ():
            chunk = codec.encode(chunk)
        if metadata.compressor is not None:
            chunk = metadata.compressor.encode(chunk)
        payloads.append((_chunk_key(array, row, 1), prototype.buffer.from_bytes(bytes(chunk))))

    async def put() -> None:
        await asyncio.gather(*(store.set(key, buffer) for key, buffer in payloads))

    _sync(put())
