"""A CSV or Parquet table at any fsspec URL (gage lists, crosswalks).

Storage failures become the one :class:`~gagebench.errors.StorageError` of
:mod:`gagebench.storage.errors`; a file that pandas/pyarrow cannot parse is an
:class:`~gagebench.errors.InputError` naming the table and the setting that points at it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from gagebench.errors import GagebenchError, InputError
from gagebench.storage.errors import translating
from gagebench.storage.fs import options_for_url


def read_table(
    url: str,
    storage_options: Mapping[str, Any] | None,
    *,
    what: str,
    key: str,
    dtype: Mapping[str, Any] | None = None,
    csv_options: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """The table at ``url``: Parquet for ``.parquet``/``.pq``, else CSV (``dtype`` per column).

    ``what``: the table with its article (``"the gage list"``); ``key``: the setting that
    holds the URL, named in the messages. ``csv_options``: more keywords of
    :func:`pandas.read_csv`.
    """
    options = options_for_url(url, dict(storage_options or {}))
    parquet = url.lower().split("?", 1)[0].endswith((".parquet", ".pq"))
    try:
        with translating(url, "read", what, key):
            if parquet:
                return pd.read_parquet(url, storage_options=options)
            return pd.read_csv(url, dtype=dtype, storage_options=options, **dict(csv_options or {}))
    except ValueError as exc:  # pandas/pyarrow parse errors, bad encodings
        if isinstance(exc, GagebenchError):
            raise
        raise InputError(
            f"cannot parse {what} {url!r}: {type(exc).__name__}: {exc}; it must be a CSV or "
            f"Parquet table (check {key})"
        ) from exc
