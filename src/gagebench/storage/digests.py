"""An object's bytes against the digests its store sends: checksum headers and MD5 ETags.

A body with a flipped byte keeps its length, so only a digest can tell it from the
object. What an S3 GET can carry, and how each is used (:func:`verify_body`):

- ``x-amz-checksum-*`` (CRC32, CRC32C, SHA-1, SHA-256, CRC64NVME): asked for with
  ``ChecksumMode=ENABLED`` and checked by botocore while the body is read (a mismatch
  raises its ``FlexibleChecksumError``); a composite checksum of a multipart upload
  (``...-N``) covers no single byte string and is not checked;
- the ``ETag``, when it is the MD5 of the bytes: 32 hex digits without a ``-N`` suffix
  (a single-part upload) and no SSE-KMS or SSE-C encryption (whose ETags are not MD5s).
  Checked here, unless ``gagebench.integrity.etag_md5`` is false (for stores whose ETags
  look like MD5s but are not, e.g. some gateways that encrypt or compress objects).

A mismatch is an :class:`IntegrityError` (transient: the object is fetched again within
the retry budget). An object no digest covers is *unverified*; with
``gagebench.integrity.require_verified`` it is refused (:class:`UnverifiedObjectError`,
not retried). Light: imported by the S3 filesystem without zarr.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gagebench.errors import StorageError

#: Storage-option key that carries the :class:`IntegritySettings` of a run to a store.
INTEGRITY_OPTION = "gagebench_integrity"
#: The digest name of a verified plain-MD5 ETag (botocore's checksums keep their own).
ETAG_MD5 = "etag-md5"

_MD5_ETAG = re.compile(r"^[0-9a-f]{32}$")
_KMS = ("aws:kms", "aws:kms:dsse")


class IntegrityError(StorageError):
    """An object's bytes do not match what its digest, header or array says."""


class UnverifiedObjectError(StorageError):
    """No digest covers an object and ``gagebench.integrity.require_verified`` is set."""


@dataclass(frozen=True)
class IntegritySettings:
    """``gagebench.integrity``: refuse unverified objects; check MD5 ETags."""

    require_verified: bool
    etag_md5: bool

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any] | None) -> IntegritySettings:
        """Settings over the dask config ``gagebench.integrity`` (gagebench.yaml's defaults)."""
        import dask.config

        from gagebench import defaults as _defaults  # registers gagebench.yaml  # noqa: F401
        from gagebench.schema import IntegritySettings as Schema
        from gagebench.schema import validated

        raw = dict(raw or {})
        merged = {**dict(dask.config.get("gagebench.integrity", default={}) or {}), **raw}
        return cls(**validated(Schema, merged, "integrity").model_dump())

    def to_dict(self) -> dict[str, bool]:
        """The settings as plain values (storage options, manifests)."""
        return {"require_verified": self.require_verified, "etag_md5": self.etag_md5}


def md5_etag(headers: Mapping[str, Any]) -> str | None:
    """The MD5 an S3 ``ETag`` states, or None when it is not one (multipart, SSE-KMS/C)."""
    lower = {str(k).lower(): str(v) for k, v in headers.items()}
    etag = lower.get("etag", "").strip().removeprefix("W/").strip('"').lower()
    if not _MD5_ETAG.match(etag):
        return None  # absent, or "<md5 of part md5s>-<parts>": a multipart upload
    if lower.get("x-amz-server-side-encryption", "").lower() in _KMS:
        return None
    if "x-amz-server-side-encryption-customer-algorithm" in lower:
        return None
    return etag


def verify_body(
    name: str,
    body: bytes,
    headers: Mapping[str, Any],
    checksum: str | None,
    etag_md5: bool = True,
) -> tuple[str, ...]:
    """The digests that verified ``body`` (empty: none could); IntegrityError on a mismatch.

    ``checksum``: the ``x-amz-checksum-*`` algorithm botocore checked while reading the
    body (its ``ResponseMetadata.ChecksumAlgorithm``), None when it checked none.
    ``name`` names the object in messages.
    """
    signals: list[str] = [checksum.lower()] if checksum else []
    expected = md5_etag(headers) if etag_md5 else None
    if expected is not None:
        got = hashlib.md5(body, usedforsecurity=False).hexdigest()
        if got != expected:
            raise IntegrityError(
                f"object {name}: {len(body)} bytes whose MD5 is {got}, the store's ETag says "
                f"{expected}: damaged on the way (if this store's ETags are not MD5 digests "
                "of the bytes, set gagebench.integrity.etag_md5: false)"
            )
        signals.append(ETAG_MD5)
    return tuple(signals)
