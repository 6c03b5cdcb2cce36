"""gagebench's S3 filesystem: s3fs with one retry layer (:mod:`gagebench.storage.retry`).

Registered for ``s3://`` and ``s3a://`` when gagebench is imported
(:func:`gagebench.storage.fs.register_s3`), so stores, gage lists, outputs and reports all
use it. botocore's retries are off (standard mode, ``total_max_attempts: 1``) unless the
storage options set ``config_kwargs: {retries: ...}`` explicitly, and s3fs's own retries
are off (``retries=1``); each API call, and each whole-object read with its body, is
retried by :func:`gagebench.storage.retry.retrying` under the filesystem's policy (storage option
``gagebench_retries``, else the dask config ``gagebench.retries``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from s3fs import S3FileSystem

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

    async def _cat_file(self, path: str, *args: Any, **kwargs: Any) -> Any:
        # The body is read after _call_s3 returns: retry the request and the read as one.
        return await self._retrying(lambda: S3FileSystem._cat_file(self, path, *args, **kwargs))
