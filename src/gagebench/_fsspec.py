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
    return dict(options or {}) or None
