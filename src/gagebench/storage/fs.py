"""fsspec helpers shared by the readers and writers of gage lists and stores."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fsspec.core import split_protocol

_LOCAL = (None, "file", "local")


def options_for_url(url: str, options: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Storage options to pass for ``url``: None for local paths.

    A run's storage options usually target its object store (``s3://``); a gage list or
    store given as a local path must not receive them (pandas and zarr refuse options
    for local files).
    """
    protocol, _ = split_protocol(url.split("::")[-1] if "::" in url else url)
    if protocol in _LOCAL and "::" not in url:
        return None
    opts = dict(options or {})
    if split_protocol(url.split("::")[0])[0] not in ("s3", "s3a"):
        for key in ("gagebench_retries", "gagebench_integrity"):
            opts.pop(key, None)  # only gagebench's S3 filesystem reads them
    return opts or None


def register_s3() -> None:
    """Make ``s3://`` and ``s3a://`` URLs use gagebench's retrying S3 filesystem.

    Registered by import path, so nothing heavy is imported until an S3 URL is used.
    See :mod:`gagebench.storage.objectstore` for the retry layer it adds.
    """
    import fsspec
    from fsspec.registry import _registry

    target = "gagebench.storage.objectstore.RetryingS3FileSystem"
    for protocol in ("s3", "s3a"):
        if getattr(_registry.get(protocol), "__name__", "") != "RetryingS3FileSystem":
            _registry.pop(protocol, None)
        fsspec.register_implementation(protocol, target, clobber=True)


#: Protocols whose URLs start with a bucket (or container) name: ``s3://<bucket>/<key>``.
_BUCKET_PROTOCOLS = ("s3", "s3a", "gs", "gcs", "az", "abfs", "abfss")


def missing_bucket(url: str) -> str | None:
    """What to write instead, when ``url`` names no bucket (``s3://``, ``s3:///x.zarr``).

    None for a URL with a bucket, and for every protocol without buckets.
    """
    outer = url.split("::")[-1] if "::" in url else url
    protocol, rest = split_protocol(outer)
    if protocol not in _BUCKET_PROTOCOLS or "://" not in outer:
        return None
    if rest.split("/", 1)[0].strip():
        return None
    name = "container" if protocol in ("az", "abfs", "abfss") else "bucket"
    path = rest.strip("/") or "<path>"
    return f"the URL names no {name}: write {protocol}://<{name}>/{path}"
