"""Gage lists: the built-in 5390-gage list, CSV/Parquet lists at any fsspec URL, validation.

A gage list is a table with a ``site_no`` column (USGS site number, a string of 8-15
digits whose leading zeros matter). Loading adds ``gage_id`` = ``"USGS-" + site_no`` as
the first column; that id is what stores are matched on and what result rows carry.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd

from gagebench.errors import InputError
from gagebench.ids import canonical_id, site_no
from gagebench.storage.tables import read_table

BUILTIN = "builtin"
# USGS site numbers are 8 to 15 digits; the HyTEST list has 8, 9 and 10 digit ones.
_SITE_NO = re.compile(r"^[0-9]{8,15}\Z")
# Columns that look numeric but are codes whose leading zeros matter.
_TEXT_COLUMNS = {"site_no": str, "huc02": str, "reachcode": str, "gage_id": str}
_MAX_NAMED = 10
# Gage-list columns the report groups by (normalized from the HyTEST list's names).
CLASS_COLUMN = "gage_class"
ECOREGION_COLUMN = "ecoregion"
# The gage metadata columns ``with_gages`` joins to results (``normalize_gages``' output).
METADATA_COLUMNS = ("lat", "lon", CLASS_COLUMN, ECOREGION_COLUMN, "drain_sqkm")


def builtin_gages() -> pd.DataFrame:
    """The packaged HyTEST gage list (Foks et al. 2022, doi:10.5066/P972P42Z): 5390 gages."""
    ref = resources.files("gagebench") / "data" / "streamflow_gages_v1_n5390.csv"
    with resources.as_file(ref) as path:
        frame = pd.read_csv(path, dtype=_TEXT_COLUMNS)
    return _finish(frame, "the built-in gage list")


def load_gages(
    url: str = BUILTIN,
    *,
    storage_options: Mapping[str, Any] | None = None,
    limit: int | None = None,
) -> pd.DataFrame:
    """Read and validate a gage list: ``"builtin"``, or a CSV/Parquet file at any fsspec URL.

    The list needs a ``site_no`` column (or a ``gage_id`` column of ``USGS-<site_no>``
    ids). Parquet is chosen by the ``.parquet``/``.pq`` suffix, anything else is read as
    CSV. Raises :class:`InputError` naming the offending rows (1 = first data row) for
    duplicates or malformed ids.

    Parameters
    ----------
    url
        ``"builtin"`` (the 5390 gages shipped with gagebench), or the URL of a CSV or
        Parquet table (local path, ``s3://``, ``https://``, ...).
    storage_options
        fsspec options for ``url`` (credentials, ``endpoint_url``, ``requester_pays``).
    limit
        Keep the first N gages, in list order; None: all.

    Returns
    -------
    pandas.DataFrame
        One row per gage: ``site_no`` (text, leading zeros kept) and the list's other
        columns (the built-in list: HyTEST's, e.g. ``dec_lat_va``, ``dec_long_va``,
        ``gagesII_class``, ``aggecoregion``, ``n_days``).
    """
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise InputError(f"gage limit must be a positive integer or None, got {limit!r}")
    if url == BUILTIN:
        frame = builtin_gages()
    else:
        table = read_table(
            url, storage_options, what="the gage list", key="gagebench.gages", dtype=_TEXT_COLUMNS
        )
        frame = _finish(table, f"gage list {url!r}")
    if limit is not None:
        frame = frame.iloc[:limit].reset_index(drop=True)
    return frame


def _rows(mask: np.ndarray, values: pd.Series) -> str:
    """Name offending rows: ``row 3 ('1011000'), row 9 ('x')`` (1 = first data row)."""
    positions = np.flatnonzero(mask).tolist()
    named = ", ".join(f"row {i + 1} ({values.iloc[i]!r})" for i in positions[:_MAX_NAMED])
    more = len(positions) - _MAX_NAMED
    return named + (f" and {more} more" if more > 0 else "")


def _site_numbers(frame: pd.DataFrame, what: str) -> pd.Series:
    if "site_no" in frame.columns:
        raw = frame["site_no"]
    elif "gage_id" in frame.columns:
        raw = frame["gage_id"]
    else:
        raise InputError(
            f"{what} has no 'site_no' column (columns: {', '.join(map(str, frame.columns))}); "
            "give USGS site numbers as text in a 'site_no' column"
        )
    if pd.api.types.is_numeric_dtype(raw.dtype):
        raise InputError(
            f"{what}: column {raw.name!r} holds numbers, which lose leading zeros "
            f"(e.g. {raw.iloc[0]!r}); store site numbers as text, e.g. '01011000'"
        )
    missing = raw.isna().to_numpy()
    if missing.any():
        raise InputError(f"{what}: empty {raw.name!r} in {_rows(missing, raw)}")
    return raw.astype(str).map(site_no)


def _finish(frame: pd.DataFrame, what: str) -> pd.DataFrame:
    """Validate ids, add ``gage_id`` first, and return a fresh 0..N-1 indexed frame."""
    frame = frame.reset_index(drop=True)
    if frame.empty:
        raise InputError(f"{what} has no rows: give at least one gage")
    sites = _site_numbers(frame, what)
    malformed = ~sites.str.fullmatch(_SITE_NO).to_numpy(dtype=bool)
    if malformed.any():
        raise InputError(
            f"{what}: malformed site numbers in {_rows(malformed, sites)}; a USGS site "
            "number is 8 to 15 digits, e.g. '01011000' (keep the leading zeros)"
        )
    duplicated = sites.duplicated(keep=False).to_numpy()
    if duplicated.any():
        raise InputError(f"{what}: duplicate site numbers in {_rows(duplicated, sites)}")
    out = frame.drop(columns=[c for c in ("gage_id", "site_no") if c in frame.columns])
    out.insert(0, "site_no", sites.to_numpy(dtype=object))
    out.insert(0, "gage_id", [canonical_id(s) for s in sites])
    return out


def check_site_no(text: str, what: str) -> str:
    """``text`` (a site number, or ``USGS-`` and one) checked as gage lists are; returned
    stripped. Raises :class:`InputError` naming ``what`` for anything else."""
    site = site_no(text)
    if not _SITE_NO.fullmatch(site):
        raise InputError(
            f"{what}: malformed site number {text!r}; a USGS site number is 8 to 15 digits, "
            "e.g. '01011000' or 'USGS-01011000' (keep the leading zeros)"
        )
    return str(text).strip()


def plan_batches(gage_ids: Sequence[str], batch_size: int) -> tuple[tuple[str, ...], ...]:
    """Consecutive batches of ``batch_size`` gages (the last may be shorter)."""
    if batch_size < 1:
        raise InputError(f"batch_size must be at least 1, got {batch_size}")
    ids = [str(g) for g in gage_ids]
    dupes = sorted({g for g in ids if ids.count(g) > 1}) if len(set(ids)) != len(ids) else []
    if dupes:
        raise InputError(f"the gage list repeats {dupes[:5]}: each gage must appear once")
    return tuple(tuple(ids[i : i + batch_size]) for i in range(0, len(ids), batch_size))


# --- gage metadata joined to results (used by the report and comparisons)


def builtin_gage_table() -> pd.DataFrame:
    """The packaged 5390-gage list (:func:`builtin_gages`), normalized for joining results."""
    return _builtin_gages().copy()


@lru_cache(maxsize=1)
def _builtin_gages() -> pd.DataFrame:
    return normalize_gages(builtin_gages())


def normalize_gages(gages: pd.DataFrame) -> pd.DataFrame:
    """A gage list as columns ``site_no`` (``USGS-…``), ``lat``, ``lon``, class, ecoregion.

    Accepts the HyTEST list layout (``site_no`` without prefix, ``dec_lat_va``,
    ``dec_long_va``, ``gagesII_class``, ``aggecoregion``) or one with ``gage_id`` /
    ``lat`` / ``lon`` columns; missing optional columns become NaN.
    """
    frame = gages.copy()
    if "gage_id" in frame.columns:
        ids = frame["gage_id"].astype(str)
    elif "site_no" in frame.columns:
        ids = frame["site_no"].astype(str)
    else:
        raise InputError(
            f"gage list has no 'gage_id' or 'site_no' column (columns: {list(frame.columns)})"
        )
    out = pd.DataFrame({"site_no": [canonical_id(g) for g in ids]})
    for target, candidates in (
        ("lat", ("lat", "latitude", "dec_lat_va")),
        ("lon", ("lon", "longitude", "dec_long_va")),
        (CLASS_COLUMN, (CLASS_COLUMN, "gagesII_class", "class")),
        (ECOREGION_COLUMN, (ECOREGION_COLUMN, "aggecoregion")),
        ("drain_sqkm", ("drain_sqkm",)),
    ):
        source = next((c for c in candidates if c in frame.columns), None)
        out[target] = frame[source].to_numpy() if source else np.nan
    out["lat"] = pd.to_numeric(out["lat"], errors="coerce")
    out["lon"] = pd.to_numeric(out["lon"], errors="coerce")
    return out.drop_duplicates("site_no").reset_index(drop=True)


def with_gages(results: pd.DataFrame, gages: pd.DataFrame | None = None) -> pd.DataFrame:
    """Results joined to gage metadata on ``site_no``; unknown gages keep NaN metadata.

    Built-in gages always get the shipped table's metadata (location, class, ecoregion)
    where a user's gage list leaves it out; the user's own values win where given.
    """
    builtin = builtin_gage_table()
    if gages is None:
        table = builtin
    else:
        user = normalize_gages(gages).drop_duplicates("site_no").set_index("site_no")
        shipped = builtin.drop_duplicates("site_no").set_index("site_no")
        table = user.combine_first(shipped.loc[shipped.index.intersection(user.index)])
        table = table.reset_index()
    frame = checked_results(results)
    meta = [c for c in table.columns if c != "site_no" and c not in frame.columns]
    if not meta:
        return frame
    keys = [canonical_id(k) for k in frame["site_no"].astype(str)]  # as the table's
    joined = table.set_index("site_no")[meta].reindex(keys)
    for column in meta:
        frame[column] = joined[column].to_numpy()
    return frame


def checked_results(results: pd.DataFrame) -> pd.DataFrame:
    """A copy of a results table with ``site_no`` and ``model`` as strings (checked)."""
    if not isinstance(results, pd.DataFrame):
        raise InputError(
            f"results must be a pandas DataFrame (got {type(results).__name__}); "
            "read a run with gagebench.results.reader.read_run(url).results"
        )
    missing = [c for c in ("site_no", "model") if c not in results.columns]
    if missing:
        raise InputError(f"results has no {missing} column(s); columns: {list(results.columns)}")
    frame = results.copy()
    frame["site_no"] = frame["site_no"].astype(str)
    frame["model"] = frame["model"].astype(str)
    return frame
