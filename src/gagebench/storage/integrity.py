"""Integrity checks on zarr chunks read from object stores: a cut-off body is never decoded.

Many stores send no checksums (Ceph/OSN, objects written before checksums existed), so a
chunk body a few bytes short can arrive looking complete. Blosc's decoder trusts its own
header and decodes it anyway, into wrong values. Checked here, before decoding:

- a Blosc chunk's header: the compressed size it records must equal the body's length,
  and the decompressed size must be what the array's chunk holds;
- after decoding (see :func:`check_decoded`): the element count of the chunk.

A failed check raises :class:`IntegrityError`, which :mod:`gagebench.storage.objectstore` treats as
transient: the chunk is fetched again within the retry budget and never decoded into
values. :class:`VerifyingStore` wraps any zarr store and checks every chunk of every v2
array whose compressor is Blosc, so both the whole-row fast path of
:mod:`gagebench.sources.zarrio` and zarr's own indexing read through it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
from fsspec.core import split_protocol
from zarr.storage import WrapperStore

from gagebench.errors import StorageError
from gagebench.storage.fs import options_for_url
from gagebench.storage.retry import POLICY_OPTION, RetryPolicy, default_policy, retrying

_BLOSC_HEADER = 16
_METADATA_NAMES = (".zarray", ".zattrs", ".zgroup", ".zmetadata", "zarr.json")


class IntegrityError(StorageError):
    """A chunk's bytes do not match what its header or array says (a cut-off body)."""


def check_blosc(key: str, data: bytes | memoryview, expected_nbytes: int | None) -> None:
    """Raise IntegrityError unless ``data`` is a whole Blosc frame of ``expected_nbytes``."""
    size = len(data)
    if size < _BLOSC_HEADER:
        raise IntegrityError(f"chunk {key}: {size} bytes, shorter than a Blosc header")
    header = np.frombuffer(bytes(data[:_BLOSC_HEADER]), dtype="<u4", offset=4, count=3)
    nbytes, _blocksize, cbytes = (int(v) for v in header)
    if cbytes != size:
        raise IntegrityError(
            f"chunk {key}: the Blosc header says {cbytes} compressed bytes, the body has {size}"
        )
    if expected_nbytes is not None and nbytes != expected_nbytes:
        raise IntegrityError(
            f"chunk {key}: the Blosc header says {nbytes} bytes decoded, the array's chunk "
            f"holds {expected_nbytes}"
        )


def check_decoded(key: str, data: Any, expected_items: int, dtype: np.dtype[Any]) -> np.ndarray:
    """The decoded chunk as ``dtype`` values; IntegrityError unless it has ``expected_items``."""
    values = np.frombuffer(memoryview(data).cast("B"), dtype=np.uint8)
    if values.nbytes != expected_items * dtype.itemsize:
        raise IntegrityError(
            f"chunk {key}: decoded to {values.nbytes} bytes, expected {expected_items} "
            f"values of {dtype.itemsize} bytes"
        )
    return values.view(dtype)


def _is_metadata(key: str) -> bool:
    return key.rsplit("/", 1)[-1] in _METADATA_NAMES


class VerifyingStore(WrapperStore[Any]):
    """A read-only zarr store that checks each Blosc chunk before zarr decodes it.

    The array a chunk belongs to is found from its key (the nearest parent with a
    ``.zarray``); its metadata is read once per store. A chunk that fails the check is
    fetched again within ``policy`` (:func:`gagebench.storage.objectstore.retrying`).
    """

    def __init__(self, store: Any, policy: RetryPolicy | None = None, name: str = "") -> None:
        super().__init__(store)
        self.policy = policy or default_policy()
        self.name = name or str(store)
        self._arrays: dict[str, int | None] = {}

    def _with_store(self, store: Any) -> VerifyingStore:
        return type(self)(store, self.policy, self.name)

    async def _chunk_nbytes(self, prefix: str) -> int | None:
        """Decoded bytes of one chunk of the Blosc v2 array at ``prefix``; None: not one."""
        if prefix not in self._arrays:
            from zarr.core.buffer import default_buffer_prototype

            raw = await self._store.get(
                f"{prefix}/.zarray" if prefix else ".zarray", default_buffer_prototype()
            )
            nbytes = None
            if raw is not None:
                meta = json.loads(raw.to_bytes())
                compressor = meta.get("compressor") or {}
                if compressor.get("id") == "blosc" and not meta.get("filters"):
                    items = int(np.prod(meta["chunks"], dtype=np.int64))
                    nbytes = items * np.dtype(meta["dtype"]).itemsize
                elif compressor.get("id") == "blosc":
                    nbytes = -1  # filters may change the size: check the frame only
            self._arrays[prefix] = nbytes
        return self._arrays[prefix]

    async def _array_of(self, key: str) -> int | None:
        """Chunk size of the Blosc array holding ``key`` (shortest parent prefix first)."""
        parts = key.split("/")
        for cut in range(len(parts)):
            nbytes = await self._chunk_nbytes("/".join(parts[:cut]))
            if nbytes is not None:
                return nbytes
        return None

    async def get(self, key: str, prototype: Any, byte_range: Any = None) -> Any:
        if byte_range is not None or _is_metadata(key):
            return await self._store.get(key, prototype, byte_range)
        nbytes = await self._array_of(key)
        if nbytes is None:
            return await self._store.get(key, prototype, byte_range)

        async def fetch() -> Any:
            buffer = await self._store.get(key, prototype, byte_range)
            if buffer is not None:
                check_blosc(key, buffer.as_buffer_like(), None if nbytes == -1 else nbytes)
            return buffer

        return await retrying(self.policy, fetch, f"{self.name} (chunk {key})")


def verified_store(url: str, options: Mapping[str, Any] | None) -> VerifyingStore:
    """A read-only zarr store for ``url`` whose Blosc chunks are checked before decoding.

    ``options``: fsspec storage options (ignored for local paths); a
    ``gagebench_retries`` entry sets the retry policy.
    """
    from zarr.storage import FsspecStore, LocalStore

    opts = dict(options_for_url(url, options) or {})
    raw = opts.get(POLICY_OPTION)
    policy = RetryPolicy.from_mapping(raw) if raw is not None else default_policy()
    protocol, path = split_protocol(url)
    if protocol is None and "::" not in url:
        return VerifyingStore(LocalStore(path, read_only=True), policy, url)
    if not _accepts_policy(url):
        opts.pop(POLICY_OPTION, None)
    store = FsspecStore.from_url(url, storage_options=opts, read_only=True)
    return VerifyingStore(store, policy, url)


def _accepts_policy(url: str) -> bool:
    protocol, _ = split_protocol(url.split("::")[0])
    return protocol in ("s3", "s3a")
