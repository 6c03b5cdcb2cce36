"""Zarr stores at any fsspec URL, and kerchunk reference stores read through zarr.

A store is opened once: the zarr group is opened (through the integrity layer,
:func:`gagebench.storage.integrity.verified_store`) and xarray's view of the same group
gives the gage index, time axis, units and CF encoding, while reads go to the zarr
array itself. A store chunked one gage per chunk (HyTEST's layout) is read gage by gage,
concurrently, straight into contiguous rows (:mod:`gagebench.sources.zarrio`); other
chunkings use zarr's orthogonal indexing, which reads each needed chunk once.

``reference`` is a zarr store behind fsspec's ``reference://`` file system (kerchunk
JSON): ``url: reference://`` with ``storage_options.fo`` (found with the ``zarr`` engine
too, as before engines existed), or ``engine: reference`` with the JSON's URL as ``url``.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from gagebench.errors import StorageError
from gagebench.sources.arraystore import ArrayStore, check_variable, open_view
from gagebench.sources.interface import StoreEngine
from gagebench.sources.zarrio import read_gage_rows
from gagebench.storage.errors import translating
from gagebench.storage.fs import options_for_url
from gagebench.storage.retry import is_credential_conflict, is_transient

if TYPE_CHECKING:
    import xarray as xr

    from gagebench.config import StoreConfig

REFERENCE = "reference://"


class ZarrStore(ArrayStore):
    """An opened zarr store: xarray's view for the metadata, the zarr array for reads."""

    def __init__(self, label: str, spec: StoreConfig, read: StoreConfig | None = None):
        """Open ``read`` (by default ``spec``); ``spec`` is the store as the user gave it."""
        read = read or spec
        if not isinstance(read.url, str):
            raise StorageError(
                f"the {label} store: a list of URLs ({', '.join(read.url)}) is read as NetCDF "
                "files only; set engine: netcdf, or give the URL of one zarr store"
            )
        group, ds = _open_group(label, read.url, read.options(), read.consolidated)
        check_variable(label, read.url, ds, spec.variable)
        self.array = group[spec.variable]
        array = self.array
        super().__init__(label, spec, ds, array.shape, array.chunks, np.dtype(array.dtype))

    def _read_rows(self, positions: np.ndarray) -> np.ndarray:
        return read_gage_rows(self.array, positions, self.gage_axis)

    def _read_block(self, positions: np.ndarray, t0: int, t1: int) -> np.ndarray:
        sel = (slice(t0, t1), positions) if self.gage_axis == 1 else (positions, slice(t0, t1))
        raw = np.asarray(self.array.get_orthogonal_selection(sel))
        return raw if self.gage_axis == 1 else raw.T


class ZarrEngine(StoreEngine):
    """``engine: zarr`` (the default): a zarr v2 or v3 store at any fsspec URL."""

    description = "a zarr store (v2 or v3) at any fsspec URL; reference:// URLs as kerchunk"

    def open(self, label: str, spec: StoreConfig) -> ZarrStore:
        return ZarrStore(label, spec)

    def version(self, label: str, spec: StoreConfig) -> tuple[str, ...] | None:
        return store_version(label, spec)


class ReferenceEngine(ZarrEngine):
    """``engine: reference``: a kerchunk reference store (JSON) read as zarr."""

    description = "a kerchunk reference store: url is the JSON's URL (or reference:// with fo)"

    def open(self, label: str, spec: StoreConfig) -> ZarrStore:
        return ZarrStore(label, spec, read=as_reference(spec))

    def version(self, label: str, spec: StoreConfig) -> tuple[str, ...] | None:
        return None  # building the reference file system would load every reference again


def as_reference(spec: StoreConfig) -> StoreConfig:
    """``spec`` as a ``reference://`` store: its URL becomes ``fo`` unless it is one already.

    Options other than fsspec's reference file system's own go to the JSON's file system
    (``target_options``) when none are given, so one set of credentials reads both.
    """
    if not isinstance(spec.url, str) or spec.url.startswith(REFERENCE):
        return spec  # (a list of URLs: the zarr store refuses it, naming engine: netcdf)
    options = spec.options()
    own = {"remote_protocol", "remote_options", "target_protocol", "target_options", "fo"}
    target = {k: v for k, v in options.items() if k not in own and not k.startswith("gagebench_")}
    extra = {k: v for k, v in options.items() if k in own or k.startswith("gagebench_")}
    if "target_options" not in extra and target:
        extra["target_options"] = target
    consolidated = False if spec.consolidated is None else spec.consolidated
    return replace(
        spec, url=REFERENCE, storage_options={**extra, "fo": spec.url}, consolidated=consolidated
    )


def _opening(label: str, url: str) -> contextlib.AbstractContextManager[None]:
    """Storage failures while opening a store, as one StorageError naming it and the fix.

    zarr says a missing metadata key with a ``KeyError``: a storage failure here.
    """
    return translating(url, "open", f"the {label} store", also=(KeyError,))


def _open_group(
    label: str, url: str, options: Mapping[str, Any], consolidated: bool | None = None
) -> tuple[Any, xr.Dataset]:
    """The zarr group at ``url`` and xarray's dataset over it, from one open."""
    import xarray as xr
    from xarray.backends.zarr import ZarrStore as XarrayZarrStore

    from gagebench.storage.integrity import verified_store

    _probe(label, url, options)
    with _opening(label, url), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.filterwarnings("ignore", message=".*[Cc]onsolidated metadata.*")
        store = XarrayZarrStore.open_group(
            verified_store(url, zarr_options(url, options), options),
            mode="r",
            consolidated=consolidated,
        )
        ds = open_view(
            label,
            url,
            lambda decode: xr.open_dataset(
                store, engine="zarr", store=store, chunks=None, decode_times=decode
            ),
        )
        return store.zarr_group, ds


def zarr_options(url: str, options: Mapping[str, Any]) -> dict[str, Any] | None:
    """Storage options for zarr/xarray: a ``reference://`` store's remote fs made async.

    zarr 3 reads through an asynchronous file system, so it opens a ``reference://``
    store asynchronously, and fsspec's ReferenceFileSystem then refuses a synchronous
    remote file system ("must have same value of asynchronous"). HyTEST's catalogs give
    ``remote_options`` without ``asynchronous`` (written for zarr 2); for an async-capable
    remote protocol (s3, gcs, http) it is set here, as zarr 3 needs.
    """
    opts = options_for_url(url, options)
    if opts is None or not url.startswith("reference://"):
        return opts
    protocol = opts.get("remote_protocol")
    remote = dict(opts.get("remote_options") or {})
    if isinstance(protocol, str) and "asynchronous" not in remote:
        import fsspec

        if getattr(fsspec.get_filesystem_class(protocol), "async_impl", False):
            opts = {**opts, "remote_options": {**remote, "asynchronous": True}}
    return opts


#: Files whose presence makes a path a zarr store (v2 group, consolidated, v3).
_ZARR_METADATA = (".zgroup", ".zmetadata", "zarr.json", ".zarray")


def _probe(label: str, url: str, options: Mapping[str, Any]) -> None:
    """Fail early and cleanly (few requests) on a bad endpoint, credentials or URL.

    Opening a zarr store fires several metadata requests at once; when the endpoint is
    down they all fail and leave noise on stderr. One plain request first avoids that.
    A store's root need not exist as a path of its file system (a ``reference://``
    store's root is ``''``), so a missing root is refused only when no zarr metadata
    file is found under it either. Existence is asked with ``info`` (not ``exists``,
    which says False for an endpoint that cannot be reached), and a root that is a
    file is refused as not a zarr store, saying what it looks like (NetCDF, HDF5...).
    """
    import fsspec

    with _opening(label, url):
        fs, path = fsspec.core.url_to_fs(url, **(options_for_url(url, options) or {}))
        root = _info(fs, path) if path else None
        metadata = (root is None or root.get("type") == "file") and any(
            _info(fs, f"{path.rstrip('/')}/{name}" if path else name) is not None
            for name in _ZARR_METADATA
        )  # a file root may still be a store: http servers answer for folders too
        found = root is not None or metadata
        kind = (
            _file_kind(fs, path)
            if root is not None and not metadata and root.get("type") == "file"
            else None
        )
    if not found:
        glob = "; NetCDF files by a glob read with engine: netcdf" if has_magic(url) else ""
        raise StorageError(
            f"cannot open the {label} store {url!r}: nothing there; check the URL{glob}"
        )
    if kind is not None and "HDF5" in kind:
        raise StorageError(
            f"cannot open the {label} store {url!r} as zarr: it is {kind}; set engine: netcdf "
            "on this store to read it as it is"
        )
    if kind is not None:
        raise StorageError(
            f"cannot open the {label} store {url!r}: it is not a zarr store (a folder with "
            f".zgroup/.zmetadata or zarr.json), it looks like {kind}; give the URL of a zarr "
            "store, or convert the file (xarray: open_dataset(...).to_zarr(...))"
        )


def has_magic(url: str) -> bool:
    """True when ``url`` holds glob characters (``*``, ``?``, ``[``)."""
    return any(c in url for c in "*?[")


def _info(fs: Any, path: str) -> dict[str, Any] | None:
    """``fs.info(path)``, None when nothing is there; other failures raise (unreachable...)."""
    try:
        return dict(fs.info(path))
    except (FileNotFoundError, NotADirectoryError) as exc:
        cause = exc.__cause__
        if cause is not None and (is_transient(cause) or is_credential_conflict(cause)):
            raise cause from exc  # http's "not found" for a refused or refused-to-send request
        return None


#: Leading bytes of files that are not zarr stores, and what they are.
_FILE_MAGIC = (
    (b"\x89HDF\r\n\x1a\n", "a NetCDF-4 / HDF5 file"),
    (b"CDF\x01", "a NetCDF (classic) file"),
    (b"CDF\x02", "a NetCDF (64-bit offset) file"),
    (b"CDF\x05", "a NetCDF (64-bit data) file"),
    (b"PK\x03\x04", "a zip file (a zipped zarr store opens as zip::<URL>)"),
)


def _file_kind(fs: Any, path: str) -> str:
    """What the file at ``path`` looks like from its first bytes."""
    head = bytes(fs.cat_file(path, start=0, end=8))
    for magic, kind in _FILE_MAGIC:
        if head.startswith(magic):
            return kind
    if head.lstrip().startswith(b"{"):
        return "a JSON file (a kerchunk reference opens as url: reference:// with fo: <URL>)"
    return "a file"


def store_version(label: str, spec: StoreConfig) -> tuple[str, ...] | None:
    """A token that changes when the store at ``spec.url`` is rewritten in place.

    The identity (ETag, modification time, size) of its first zarr metadata file; None
    when the file system gives none or for ``reference://`` stores (then only the cache
    bound and :func:`clear_cache` apply).
    """
    import fsspec

    url = spec.url
    if not isinstance(url, str) or url.startswith(REFERENCE):
        return None  # building the reference file system would load every reference again
    options = options_for_url(url, spec.options()) or {}
    with _opening(label, url):
        fs, path = fsspec.core.url_to_fs(url, **options)
        for name in (".zmetadata", "zarr.json", ".zgroup", ".zarray"):
            try:
                info = fs.info(f"{path.rstrip('/')}/{name}" if path else name)
            except (FileNotFoundError, NotADirectoryError):
                continue  # (a file given as the store: _probe says what it is)
            keys = ("ETag", "etag", "mtime", "LastModified", "last_modified", "created", "size")
            return tuple(f"{k}={info[k]}" for k in keys if info.get(k) is not None)
    return None
