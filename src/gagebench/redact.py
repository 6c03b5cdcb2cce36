"""One rule for secrets in settings that leave the process (``manifest.json``, logs, the
report's provenance): values under secret-looking keys and ``user:password@`` in URLs
become ``***``. Kept in one place so the manifest and the report can never disagree."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

MASK = "***"
# s3fs/botocore `key`/`secret`/`token`, `aws_secret_access_key`, `password`, `credentials`,
# `private_key`, `api_key`, ...
_SECRET_KEY = re.compile(r"secret|passw|token|credential|private|key", re.IGNORECASE)
# Name a Kubernetes Secret and its keys, never hold a secret value: shown as they are.
_NOT_SECRET = frozenset({"secret_env", "secret_name", "keys"})
_URL_USERINFO = re.compile(r"(://)[^/@\s]+@")


def is_secret_key(key: str) -> bool:
    """Whether a setting named ``key`` holds a secret value."""
    return key not in _NOT_SECRET and bool(_SECRET_KEY.search(key))


def redact_text(text: str) -> str:
    """``text`` with the user information of any URL in it (``user:pass@``) masked."""
    return _URL_USERINFO.sub(rf"\1{MASK}@", text)


def redact(value: Any, key: str = "") -> Any:
    """A copy of a plain settings tree (mappings, lists, scalars) with secrets masked:
    everything under a secret-looking key (a whole mapping too), URL user information in
    any string. Empty values stay as they are, so "not set" still shows."""
    if key and is_secret_key(key) and value not in (None, "", {}, []):
        return MASK
    if isinstance(value, Mapping):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


def redact_urls(value: Any) -> Any:
    """A copy of a plain tree with only URL user information masked (for records such as
    the manifest, whose other keys are not settings)."""
    if isinstance(value, Mapping):
        return {k: redact_urls(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_urls(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value
