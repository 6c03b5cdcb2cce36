"""gagebench's S3 filesystem: s3fs with one retry layer (:mod:`gagebench.storage.retry`).

Registered for ``s3://`` and ``s3a://`` when gagebench is imported
(:func:`gagebench.storage.fs.register_s3`), so stores, gage lists, outputs and reports all
use it. botocore's retries are off (standard mode, ``total_max_attempts: 1``) unless the
storage options set ``config_kwargs: {retries: ...}`` explicitly, and s3fs's own retries
are off (``retries=1``); each API call, and each whole-object read with its body, is
retried by :func:`gagebench.storage.retry.retrying` under the filesystem's policy (storage option
``gagebench_retries``, else the dask config ``gagebench.retries``).

A whole-object read asks for the object's checksum (``ChecksumMode=ENABLED``, checked by
botocore as the body is read) and checks its ETag when that is a plain MD5
(:mod:`gagebench.storage.digests`, storage option ``gagebench_integrity``): a damaged body
is fetched again, never returned. :meth:`RetryingS3FileSystem._cat_verified` also says
which digests verified it (:mod:`gagebench.storage.integrity` uses it for zarr stores).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from s3fs import S3FileSystem
from s3fs.core import version_id_kw

from gagebench.storage.digests import INTEGRITY_OPTION, IntegritySettings, verify_body
from gagebench.storage.retry import (
    POLICY_OPTION,
    RetryPolicy,
    default_policy,
    is_transient,
    retrying,
)

# -- the S3 filesystem ---------------------------------------------------------------------


class RetryingS3FileSystem(S3FileSystem):
    """s3fs's filesystem with one retry layer (:func:`retrying`) instead of three."""

    retries = 1  # s3fs's own retry loop: one attempt (the layer here decides)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raw = kwargs.pop(POLICY_OPTION, None)
        self.retry_policy = RetryPolicy.from_mapping(raw) if raw is not None else default_policy()
        self.integrity = IntegritySettings.from_mapping(kwargs.pop(INTEGRITY_OPTION, None))
        config_kwargs = dict(kwargs.get("config_kwargs") or {})
        config_kwargs.setdefault("retries", {"mode": "standard", "total_max_attempts": 1})
        kwargs["config_kwargs"] = config_kwargs
        super().__init__(*args, **kwargs)
        self._answered = False

    def _where(self) -> str:
        endpoint = (self.client_kwargs or {}).get("endpoint_url") or self.endpoint_url
        return str(endpoint or "s3")

    async def _retrying(self, call: Callable[[], Awaitable[Any]]) -> Any:
        """``call`` under the policy; until the endpoint first answers, a short one."""
        answered = self._answered
        policy = self.retry_policy if answered else self.retry_policy.startup()
        try:
            result = await retrying(policy, call, self._where(), answered)
        except Exception as exc:
            if not is_transient(exc):
                self._answered = True  # e.g. 404 or 403: the endpoint is up
            raise
        self._answered = True
        return result

    async def _call_s3(self, method: str, *akwarglist: Any, **kwargs: Any) -> Any:
        return await self._retrying(
            lambda: S3FileSystem._call_s3(self, method, *akwarglist, **kwargs)
        )

    async def _cat_verified(self, path: str) -> tuple[bytes, tuple[str, ...]]:
        """A whole object and the digests that verified it (none: unverified).

        The request and the read of the body are retried as one; a body that fails a
        digest is fetched again (:class:`~gagebench.storage.digests.IntegrityError`).
        """
        bucket, key, version = self.split_path(path)

        async def call() -> tuple[bytes, tuple[str, ...]]:
            resp = await S3FileSystem._call_s3(
                self,
                "get_object",
                Bucket=bucket,
                Key=key,
                ChecksumMode="ENABLED",
                **version_id_kw(version),
            )
            try:
                body = await resp["Body"].read()
            finally:
                resp["Body"].close()
            meta = resp.get("ResponseMetadata") or {}
            signals = verify_body(
                f"s3://{path}",
                body,
                meta.get("HTTPHeaders") or {},
                meta.get("ChecksumAlgorithm"),
                self.integrity.etag_md5,
            )
            return body, signals

        return await self._retrying(call)

    async def _cat_file(
        self,
        path: str,
        version_id: str | None = None,
        start: int | None = None,
        end: int | None = None,
        **kwargs: Any,
    ) -> Any:
        if start is None and end is None and version_id is None and not kwargs:
            return (await self._cat_verified(path))[0]
        # A range (no digest covers it) or a concurrent read: s3fs's own, under the layer.
        # The body is read after _call_s3 returns: retry the request and the read as one.
        return await self._retrying(
            lambda: S3FileSystem._cat_file(self, path, version_id, start, end, **kwargs)
        )
