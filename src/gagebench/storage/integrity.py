"""Integrity checks on zarr stores' objects: damaged bytes are never decoded into values.

Many stores send no checksums (Ceph/OSN, objects written before checksums existed), so a
chunk body a few bytes short, or with a flipped byte, can arrive looking complete. Blosc's
decoder trusts its own header and decodes it anyway, into wrong values. Checked here,
before decoding, on every object :class:`VerifyingStore` reads (on the workers too):

- the store's digests, where it sends them (:mod:`gagebench.storage.digests`): for
  ``s3://`` stores the ``x-amz-checksum-*`` headers (asked for) and the ETag when it is a
  plain MD5 (single-part uploads without SSE-KMS/SSE-C) -- the only checks that catch a
  flipped byte;
- metadata (``.zmetadata``, ``.zarray``, ``.zattrs``, ``.zgroup``, ``zarr.json``): it
  must parse as JSON (a body cut short does not);
- a Blosc chunk's header: the compressed size it records must equal the body's length,
  and the decompressed size must be what the array's chunk holds;
- after decoding (see :func:`check_decoded`): the element count of the chunk.

A failed check raises :class:`IntegrityError`, which the retry layer treats as transient:
the object is fetched again within the retry budget, then the read fails with an error
naming the store and the key, never a value. What no digest covers stays unverified:
multipart uploads without checksums, ranged reads, and every store that is not
``s3://`` (local files, http, ``reference://``, gcs, azure); with
``gagebench.integrity.require_verified`` such an object is refused
(:class:`UnverifiedObjectError`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
from fsspec.core import split_protocol
from zarr.storage import WrapperStore

from gagebench.storage.digests import (
    INTEGRITY_OPTION,
    IntegrityError,
    IntegritySettings,
    UnverifiedObjectError,
)
from gagebench.storage.fs import options_for_url
from gagebench.storage.retry import POLICY_OPTION, RetryPolicy, default_policy, retrying

__all__ = [
    "IntegrityError",
    "UnverifiedObjectError",
    "VerifyingStore",
    "check_blosc",
    "check_decoded",
    "check_metadata",
    "verified_store",
]

_BLOSC_HEADER = 16
_METADATA_NAMES = (".zarray", ".zattrs", ".zgroup", ".zmetadata", "zarr.json")
_MISSING = (FileNotFoundError, IsADirectoryError, NotADirectoryError)


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


def check_metadata(key: str, data: bytes | memoryview) -> None:
    """Raise IntegrityError unless the metadata object ``key`` is whole JSON."""
    try:
        json.loads(bytes(data))
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise IntegrityError(
            f"metadata {key}: {len(data)} bytes that are not whole JSON (cut short?): {exc}"
        ) from exc


def _is_metadata(key: str) -> bool:
    return key.rsplit("/", 1)[-1] in _METADATA_NAMES


class VerifyingStore(WrapperStore[Any]):
    """A read-only zarr store that checks each object before zarr decodes it.

    Every whole object is checked against the store's digests (``s3://``), metadata must
    be JSON, and a Blosc chunk's frame must fit its array (found from the chunk's key:
    the nearest parent with a ``.zarray``, read once per store). An object that fails is
    fetched again within ``policy`` (:func:`gagebench.storage.retry.retrying`); one that
    no digest covers is refused when ``integrity.require_verified`` is set.
    """

    def __init__(
        self,
        store: Any,
        policy: RetryPolicy | None = None,
        name: str = "",
        integrity: IntegritySettings | None = None,
    ) -> None:
        super().__init__(store)
        self.policy = policy or default_policy()
        self.name = name or str(store)
        self.integrity = integrity or IntegritySettings.from_mapping(None)
        self._arrays: dict[str, int | None] = {}

    def _with_store(self, store: Any) -> VerifyingStore:
        return type(self)(store, self.policy, self.name, self.integrity)

    async def _chunk_nbytes(self, prefix: str) -> int | None:
        """Decoded bytes of one chunk of the Blosc v2 array at ``prefix``; None: not one."""
        if prefix not in self._arrays:
            from zarr.core.buffer import default_buffer_prototype

            raw = await self.get(
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

    async def _fetch(self, key: str, prototype: Any) -> tuple[Any, tuple[str, ...]]:
        """The object at ``key`` (None: absent) and the digests that verified it."""
        cat_verified = getattr(getattr(self._store, "fs", None), "_cat_verified", None)
        if cat_verified is None:  # a store that sends no digest we can check
            return await self._store.get(key, prototype), ()
        root = str(getattr(self._store, "path", "")).rstrip("/")
        path = (f"{root}/{key}" if root else key).rstrip("/")
        try:
            body, signals = await cat_verified(path)
        except _MISSING:
            return None, ()
        return prototype.buffer.from_bytes(body), signals

    def _unverified(self, key: str) -> UnverifiedObjectError:
        fs = getattr(self._store, "fs", None)
        if hasattr(fs, "_cat_verified"):
            why = (
                "the store sent no checksum and its ETag is not a plain MD5 (a multipart "
                "upload, or SSE-KMS/SSE-C encryption)"
            )
        else:
            protocol = split_protocol(self.name.split("::")[0])[0] or "local"
            why = f"{protocol} stores send no digest gagebench can check"
        return UnverifiedObjectError(
            f"cannot verify {key!r} of the store {self.name!r}: {why}; it is refused because "
            "gagebench.integrity.require_verified is true (set it to false to read objects "
            "no checksum covers)"
        )

    async def get(self, key: str, prototype: Any, byte_range: Any = None) -> Any:
        if byte_range is not None:  # a range: no digest covers it
            if self.integrity.require_verified:
                raise self._unverified(key)
            return await self._store.get(key, prototype, byte_range)
        metadata = _is_metadata(key)
        nbytes = None if metadata else await self._array_of(key)

        async def fetch() -> Any:
            buffer, signals = await self._fetch(key, prototype)
            if buffer is None:
                return None
            if metadata:
                check_metadata(key, buffer.as_buffer_like())
            elif nbytes is not None:
                check_blosc(key, buffer.as_buffer_like(), None if nbytes == -1 else nbytes)
            if not signals and self.integrity.require_verified:
                raise self._unverified(key)
            return buffer

        what = "metadata" if metadata else "chunk"
        return await retrying(self.policy, fetch, f"{self.name} ({what} {key})")


def verified_store(
    url: str, options: Mapping[str, Any] | None, run_options: Mapping[str, Any] | None = None
) -> VerifyingStore:
    """A read-only zarr store for ``url`` whose objects are checked before decoding.

    ``options``: fsspec storage options (ignored for local paths). ``run_options``: the
    store's options as the run resolved them (default: ``options``), whose
    ``gagebench_retries`` and ``gagebench_integrity`` set the retry policy and the
    integrity settings for every protocol (else gagebench.yaml's).
    """
    from zarr.storage import FsspecStore, LocalStore

    given = dict(run_options if run_options is not None else (options or {}))
    settings = IntegritySettings.from_mapping(given.get(INTEGRITY_OPTION))
    raw = given.get(POLICY_OPTION)
    policy = RetryPolicy.from_mapping(raw) if raw is not None else default_policy()
    opts = dict(options_for_url(url, options) or {})
    protocol, path = split_protocol(url)
    if protocol is None and "::" not in url:
        return VerifyingStore(LocalStore(path, read_only=True), policy, url, settings)
    if not _accepts_policy(url):
        opts.pop(POLICY_OPTION, None)
    store = FsspecStore.from_url(url, storage_options=opts, read_only=True)
    return VerifyingStore(store, policy, url, settings)


def _accepts_policy(url: str) -> bool:
    protocol, _ = split_protocol(url.split("::")[0])
    return protocol in ("s3", "s3a")
