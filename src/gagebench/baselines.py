"""Published benchmark tables (HyTEST's NWM v2.1 and NHM v1 scores) as comparison partners.

A baseline is a table of per-gage scores that someone else computed, read from a URL:

- a CSV or Parquet table in HyTEST's layout: ``site_no`` plus metric columns (standard
  suite ``NSE, KGE, ...`` or D-score ``mse, e_bias, ...``). Values are kept exactly as
  published (CSV floats parsed exactly; empty cells are NaN, ``-inf`` stays ``-inf``);
- ``CATALOG_URL#ENTRY``: an entry of an intake catalog in HyTEST's format
  (``sources: {ENTRY: {driver: csv, args: {urlpath, storage_options}}}``), read with the
  ``intake`` library (``pip install 'gagebench[baselines]'``). The entry's
  ``args.storage_options`` (``anon``, ``client_kwargs.endpoint_url``, ...) are used, and
  the caller's storage options are merged over them (the caller's win; a caller's
  ``endpoint_url`` replaces the catalog's ``client_kwargs.endpoint_url``).

Site ids are matched in their canonical form (:func:`gagebench.ids.canonical_id`), so
HyTEST's ``USGS-01011000`` meets a run's ``01011000``. A site id listed twice in one
table is an :class:`~gagebench.errors.InputError` naming the ids: which row is the
published value cannot be told.

A KGE-uncertainty companion (:func:`read_uncertainty`) is a gumboot ``bootjack()`` table
(HyTEST's ``KGE_gumbootStats_*.csv``), mapped by column name (:data:`UNCERTAINTY_FIELDS`).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from gagebench.errors import GagebenchError, InputError
from gagebench.ids import canonical_id
from gagebench.storage.errors import translating
from gagebench.storage.tables import read_table

#: The published catalog of HyTEST's streamflow benchmarks (named in the docs).
HYTEST_CATALOG = (
    "https://raw.githubusercontent.com/hytest-org/hytest/main/dataset_catalog/subcatalogs/"
    "streamflow-benchmarks-catalog.yml"
)
#: gumboot's ``bootjack()`` output fields, per statistic (Clark et al. 2021; CRAN gumboot).
UNCERTAINTY_FIELDS = (
    "score",
    "seJack",
    "seBoot",
    "p05",
    "p50",
    "p95",
    "biasJack",
    "biasBoot",
    "seJab",
)
#: A URL ending so is a table even when it holds ``#`` (not ``CATALOG_URL#ENTRY``).
TABLE_SUFFIXES = (".csv", ".parquet", ".pq", ".csv.gz", ".csv.bz2", ".csv.xz", ".csv.zip")
#: Columns that may hold the site id in a gumboot table (``bootjack`` callers name it).
SITE_COLUMNS = ("site_no", "site", "CAMELS_site", "hcdn_site")


#: pandas 3 parses floats exactly by default (and deprecates the option); pandas 2's
#: default "high" parser may miss the last bit, so ask it for round-trip parsing.
_EXACT_FLOATS = {} if int(pd.__version__.split(".")[0]) >= 3 else {"float_precision": "round_trip"}


@dataclass(frozen=True)
class BaselineSource:
    """Where a baseline comes from: its URL (or ``CATALOG#ENTRY``) and storage options."""

    url: str
    storage_options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Baseline:
    """A published model's per-gage scores, ready to be compared with a run.

    ``table``: one row per gage, ``site_no`` canonical (``USGS-...``), the published
    metric columns as read. ``uncertainty``: None, or one row per gage with ``site_no``
    and ``KGE_<field>`` columns (:data:`UNCERTAINTY_FIELDS` that the table has).
    ``sources``: the URLs read, for messages and the summary.
    """

    name: str
    table: pd.DataFrame
    sources: tuple[str, ...]
    uncertainty: pd.DataFrame | None = None


def _merge_options(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` merged into ``base`` (nested dicts merged key by key, ``over`` wins)."""
    out = copy.deepcopy(dict(base))
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge_options(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    if "endpoint_url" in over and isinstance(out.get("client_kwargs"), Mapping):
        kwargs = dict(out["client_kwargs"])
        if "endpoint_url" not in dict(over.get("client_kwargs") or {}):
            kwargs.pop("endpoint_url", None)  # the caller's endpoint replaces the catalog's
        out["client_kwargs"] = kwargs
    return out


def resolve(
    url: str, storage_options: Mapping[str, Any] | None = None
) -> tuple[str, dict[str, Any]]:
    """The table URL and storage options of ``url`` (a table, or ``CATALOG_URL#ENTRY``).

    Parameters
    ----------
    url
        A CSV/Parquet table's URL, or ``CATALOG_URL#ENTRY`` (an intake catalog's entry).
    storage_options
        The caller's fsspec options: used to read the catalog, and merged over the entry's
        ``args.storage_options`` (the caller's win; a caller's ``endpoint_url`` replaces
        the entry's ``client_kwargs.endpoint_url``).

    Returns
    -------
    tuple[str, dict]
        The table's URL (the entry's ``args.urlpath``) and the storage options to read it.
    """
    options = dict(storage_options or {})
    if "#" not in url or url.lower().split("?", 1)[0].endswith(TABLE_SUFFIXES):
        return url, options  # a table's own name may hold "#" (``nwm#v2.1.csv``)
    catalog_url, entry = url.rsplit("#", 1)
    if not catalog_url or not entry:
        raise InputError(
            f"baseline {url!r}: write a catalog entry as CATALOG_URL#ENTRY (both parts), "
            "or give the table's URL"
        )
    args = catalog_entry(catalog_url, entry, options)
    urlpath = args.get("urlpath")
    if not isinstance(urlpath, str) or not urlpath:
        raise InputError(
            f"the entry {entry!r} of the catalog {catalog_url!r} has no args.urlpath: "
            "it must name the table's URL"
        )
    return urlpath, _merge_options(dict(args.get("storage_options") or {}), options)


def catalog_entry(
    catalog_url: str, entry: str, storage_options: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The ``args`` of ``entry`` in the intake catalog at ``catalog_url``.

    Read with intake (2.x reads HyTEST's v1 catalogs, ``driver: csv``, without plugins);
    the entry is described, not opened, so gagebench's own reader reads the table.
    ``storage_options`` are used to read the catalog file itself (over HTTP(S) only
    their ``headers``: the others are for the table's store).
    """
    try:
        import intake
    except ImportError as exc:
        raise InputError(
            f"reading the catalog {catalog_url!r} needs the intake package: "
            "pip install 'gagebench[baselines]' (or give the table's URL instead of "
            "CATALOG_URL#ENTRY)"
        ) from exc
    from gagebench.storage.fs import options_for_url

    options = options_for_url(catalog_url, dict(storage_options or {}))
    if catalog_url.lower().startswith(("http://", "https://")) and options:
        # the caller's options are for the table's store (anon, key, endpoint_url); over
        # HTTP (HyTEST's catalog is on GitHub) they would reach aiohttp, which refuses them
        options = {k: v for k, v in options.items() if k == "headers"}
    try:
        with translating(catalog_url, "read", "the catalog", "the baseline's CATALOG_URL"):
            catalog = intake.open_catalog(catalog_url, storage_options=options or None)
            names = list(catalog)
    except GagebenchError:
        raise
    except Exception as exc:  # intake/yaml parse errors: not a catalog
        raise InputError(
            f"cannot read the catalog {catalog_url!r}: {_catalog_problem(exc)}; it must be "
            "an intake YAML catalog (sources: {ENTRY: {driver, args: {urlpath, ...}}})"
        ) from None  # the cause quotes the catalog, whose storage_options may hold keys
    if not names:
        raise InputError(
            f"the catalog {catalog_url!r} has no entries: check that it exists and is an "
            "intake YAML catalog (sources: {ENTRY: {driver, args: {urlpath, ...}}})"
        )
    if entry not in names:
        raise InputError(
            f"the catalog {catalog_url!r} has no entry {entry!r}; its entries are: "
            f"{', '.join(names)}"
        )
    source = catalog[entry]
    args = dict(source.describe().get("args") or {})
    # describe() gives the args as written; intake renders its templates
    # ({{ CATALOG_DIR }}, env(...)) into the kwargs it built the source with
    rendered = getattr(source, "_captured_init_kwargs", None)
    if isinstance(rendered, Mapping):
        args.update({k: v for k, v in rendered.items() if k in args})
    return args


def _catalog_problem(exc: Exception) -> str:
    """What is wrong with a catalog, without quoting it: intake's and yaml's messages
    print the entry (or the line) they stopped at, ``storage_options`` keys included."""
    import yaml

    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        return f"YAML error at line {mark.line + 1}, column {mark.column + 1}: {exc.problem}"
    errors = getattr(exc, "errors", None)  # intake's ValidationError: "(message, data)"
    if isinstance(errors, list) and errors:
        return "; ".join(_first_of(e) for e in errors)
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


def _first_of(error: object) -> str:
    """The message of one of intake's validation errors, without the data it quotes."""
    import ast

    try:
        value = ast.literal_eval(error) if isinstance(error, str) else error
    except (ValueError, SyntaxError):
        return "an entry does not validate"
    if isinstance(value, tuple) and value and isinstance(value[0], str):
        return value[0]
    return "an entry does not validate"


def _canonical_sites(frame: pd.DataFrame, what: str, column: str = "site_no") -> pd.DataFrame:
    """``frame`` with canonical site ids; refuses a table whose ids repeat or are blank."""
    frame = frame.reset_index(drop=True)
    values = frame[column]
    blank = values.isna() | (values.astype(str).str.strip() == "")
    if blank.any():
        rows = [int(i) + 1 for i in np.flatnonzero(blank)]
        shown = ", ".join(map(str, rows[:10])) + (" ..." if len(rows) > 10 else "")
        raise InputError(
            f"{what} has {len(rows)} row(s) without a site_no (data row {shown}): each row "
            "must name its gage; fill in or remove those rows"
        )
    if pd.api.types.is_float_dtype(values):  # integers stored as floats: 1011000.0
        values = values.map(lambda v: int(v) if float(v).is_integer() else v)
    frame[column] = [canonical_id(s) for s in values]
    repeated = frame[column][frame[column].duplicated()].unique()
    if len(repeated):
        shown = ", ".join(repeated[:10]) + (" ..." if len(repeated) > 10 else "")
        raise InputError(
            f"{what} lists {len(repeated)} site id(s) more than once ({shown}): which row is "
            "the published value cannot be told; keep one row per site_no"
        )
    return frame.reset_index(drop=True)


def read_table_at(
    url: str, storage_options: Mapping[str, Any] | None, what: str
) -> tuple[pd.DataFrame, str]:
    """The table at ``url`` (or ``CATALOG#ENTRY``), values exactly as written, and its URL."""
    table_url, options = resolve(url, storage_options)
    frame = read_table(
        table_url,
        options,
        what=what,
        key="the baseline URL (--baseline NAME=URL)",
        dtype={c: str for c in SITE_COLUMNS},
        csv_options=_EXACT_FLOATS,
    )
    return frame, table_url


def read_baseline(
    name: str,
    sources: str | BaselineSource | list[str | BaselineSource],
    storage_options: Mapping[str, Any] | None = None,
    uncertainty: str | BaselineSource | None = None,
) -> Baseline:
    """Read model ``name``'s published scores from one or more tables (joined on ``site_no``).

    Several tables of one model (its standard suite and its D-score) are joined into one
    row per gage; a metric given by two tables is refused.

    Parameters
    ----------
    name
        The baseline's model name (model B of a comparison).
    sources
        A table URL or ``CATALOG_URL#ENTRY``, a :class:`BaselineSource` (with its own
        storage options), or a list of them.
    storage_options
        fsspec options for the sources given as plain strings.
    uncertainty
        The model's KGE-uncertainty table (gumboot layout, :func:`read_uncertainty`).

    Returns
    -------
    Baseline
        One row per gage (``site_no`` canonical, values exactly as published), the
        uncertainty columns when given, and the URLs read.
    """
    items = sources if isinstance(sources, list) else [sources]
    merged: pd.DataFrame | None = None
    urls: list[str] = []
    for item in items:
        src = (
            item
            if isinstance(item, BaselineSource)
            else BaselineSource(item, storage_options or {})
        )
        what = f"the baseline {name!r}"
        frame, _ = read_table_at(src.url, src.storage_options, what)
        if "site_no" not in frame.columns:
            raise InputError(
                f"{what} at {src.url!r} has no site_no column (it has "
                f"{', '.join(map(str, frame.columns))}): a baseline is a table in HyTEST's "
                "layout, site_no plus metric columns"
            )
        frame = _canonical_sites(frame, f"{what} at {src.url!r}")
        urls.append(src.url)
        if merged is None:
            merged = frame
            continue
        clash = sorted((set(frame.columns) & set(merged.columns)) - {"site_no"})
        if clash:
            raise InputError(
                f"{what}: the tables {urls[0]!r} and {src.url!r} both give {clash}; "
                "give each metric once"
            )
        merged = merged.merge(frame, on="site_no", how="outer", sort=False)
    assert merged is not None
    unc = None
    if uncertainty is not None:
        src = (
            uncertainty
            if isinstance(uncertainty, BaselineSource)
            else BaselineSource(uncertainty, storage_options or {})
        )
        unc = read_uncertainty(src.url, src.storage_options, name=name)
        urls.append(src.url)
    return Baseline(name=name, table=merged, sources=tuple(urls), uncertainty=unc)


def uncertainty_columns(frame: pd.DataFrame, what: str, statistic: str = "KGE") -> pd.DataFrame:
    """gumboot's columns of ``statistic`` mapped by name: ``site_no`` + ``KGE_<field>``.

    Layouts read: gumboot's long table (a site column, ``GOF_stat``, then the fields; the
    rows of ``statistic`` are taken), the same without ``GOF_stat`` (a table of one
    statistic), and the wide form ``<statistic>_<field>`` (gagebench's results). The 90 %
    interval needs ``p05`` and ``p95``; any other layout is refused, listing its columns.
    """
    columns = [str(c) for c in frame.columns]
    site = next((c for c in SITE_COLUMNS if c in columns), None)
    wide = {f"{statistic}_{f}": f for f in UNCERTAINTY_FIELDS if f"{statistic}_{f}" in columns}
    if site is not None and "GOF_stat" in columns and {"p05", "p95"} <= set(columns):
        rows = frame[frame["GOF_stat"].astype(str).str.upper() == statistic.upper()]
        if rows.empty:
            found = ", ".join(map(str, frame["GOF_stat"].dropna().unique()[:10]))
            raise InputError(
                f"{what} has no {statistic} rows: its GOF_stat column has {found or '(none)'}; "
                f"give the {statistic} uncertainty table (gumboot's bootjack() of {statistic})"
            )
        picked = {f: f for f in UNCERTAINTY_FIELDS if f in columns}
    elif site is not None and {f"{statistic}_p05", f"{statistic}_p95"} <= set(columns):
        rows, picked = frame, wide
    elif site is not None and {"p05", "p95"} <= set(columns):
        rows = frame
        picked = {f: f for f in UNCERTAINTY_FIELDS if f in columns}
    else:
        raise InputError(
            f"{what} is not in a layout gagebench knows: it has the columns "
            f"{', '.join(columns)}; expected gumboot's bootjack() output: a site column "
            f"({' or '.join(SITE_COLUMNS)}), optionally GOF_stat, and at least p05 and p95 "
            f"(or {statistic}_p05 and {statistic}_p95)"
        )
    out = pd.DataFrame({"site_no": rows[site].to_numpy()})
    for col, fieldname in picked.items():
        out[f"{statistic}_{fieldname}"] = pd.to_numeric(rows[col], errors="coerce").to_numpy()
    return _canonical_sites(out, what)


def read_uncertainty(
    url: str, storage_options: Mapping[str, Any] | None = None, *, name: str = "baseline"
) -> pd.DataFrame:
    """A KGE-uncertainty table (gumboot layout, e.g. HyTEST's ``KGE_gumbootStats``).

    Parameters
    ----------
    url
        The table's URL or ``CATALOG_URL#ENTRY``.
    storage_options
        fsspec options (merged over a catalog entry's).
    name
        The baseline it belongs to, named in messages.

    Returns
    -------
    pandas.DataFrame
        ``site_no`` (canonical) and ``KGE_<field>`` for gumboot's fields the table has
        (:func:`uncertainty_columns` says which layouts are read).
    """
    what = f"the uncertainty table of the baseline {name!r} at {url!r}"
    frame, _ = read_table_at(url, storage_options, what)
    return uncertainty_columns(frame, what)


def parse_pairs(pairs: list[str] | None, option: str) -> dict[str, list[str]]:
    """``NAME=URL`` arguments as ``{NAME: [URL, ...]}`` (a NAME may be given again)."""
    out: dict[str, list[str]] = {}
    for pair in pairs or []:
        name, sep, url = pair.partition("=")
        if not sep or not name.strip() or not url.strip():
            raise InputError(f"{option} {pair!r}: write {option} NAME=URL (NAME: the model's name)")
        out.setdefault(name.strip(), []).append(url.strip())
    return out
