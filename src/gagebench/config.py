"""The run configuration: one validated, frozen object built from dask's config system.

Defaults live in the commented ``gagebench.yaml`` beside this module; the same dotted keys
come from dask YAML files, ``DASK_GAGEBENCH__...`` environment variables, run files and
keyword/flag overrides. Validation happens once, here, and errors name the key.
"""

from __future__ import annotations

import codecs
import copy
import dataclasses
import datetime as _dt
import hashlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, get_args

import dask.config
import yaml
from pydantic import BaseModel

from gagebench import schema
from gagebench.clusters import BACKENDS
from gagebench.clusters.registry import check_name as check_backend_name
from gagebench.clusters.registry import is_target as is_backend_target
from gagebench.clusters.registry import registered as registered_backends
from gagebench.defaults import PACKAGED_DEFAULTS as PACKAGED_DEFAULTS  # re-exported
from gagebench.defaults import UNCERTAINTY_DEFAULTS, default
from gagebench.errors import ConfigError
from gagebench.redact import redact, remember_settings

if TYPE_CHECKING:
    from gagebench.uncertainty_suite import UncertaintySettings

# gagebench.yaml (gagebench.defaults) is the one source of every default below, and
# gagebench.schema the one declaration of every setting's type and bounds.

VALID_SUITES: tuple[str, ...] = get_args(schema.Suite)
#: The breakdowns a run may write (``by``), in their canonical order.
GROUPINGS: tuple[str, ...] = get_args(schema.Grouping)
#: The suites a run computes when ``suites`` is not set.
DEFAULT_SUITES: tuple[str, ...] = tuple(default("suites"))
DEFAULT_BATCH_SIZE: int = default("batch_size")
VALID_MODES: tuple[str, ...] = get_args(schema.RunSettings.model_fields["mode"].annotation)
#: The built-in backends (:data:`gagebench.clusters.BACKENDS`; plugins: clusters.registry).
VALID_BACKENDS: tuple[str, ...] = tuple(BACKENDS)
VALID_LOG_FORMATS: tuple[str, ...] = get_args(
    schema.RunSettings.model_fields["log_format"].annotation
)
#: Run ids and model names: one safe path segment (see :data:`gagebench.schema.NAME`).
NAME = schema.NAME
_NAME_RULE = schema.NAME_RULE
_MODEL_NAMES = schema.MODEL_NAMES


#: Settings whose contents are passed to other libraries as written (never renamed).
_VERBATIM = "storage_options"
#: Settings whose keys are names chosen by the user (kept as written: ``nwm-v3``).
_NAMED = "models"


def _normalize_keys(value: Any) -> Any:
    """Accept ``batch-size`` and ``batch_size`` alike (dask treats them as one key).

    Keys inside ``storage_options`` are fsspec's and HTTP's (header names such as
    ``x-amz-request-payer``): they are kept exactly as written. Model names (the keys of
    ``models``) are kept as written too; only the settings inside each are normalized.
    """
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            key = str(k).replace("-", "_")
            if key == _VERBATIM:
                out[key] = v
            elif key == _NAMED and isinstance(v, Mapping):
                # names kept as parsed: a YAML null, yes/no or 010 key is refused, not renamed
                out[key] = {name: _normalize_keys(spec) for name, spec in v.items()}
            else:
                out[key] = _normalize_keys(v)
        return out
    if isinstance(value, list):
        return [_normalize_keys(v) for v in value]
    return value


def merge_options(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Storage options ``over`` merged into ``base`` key by key, at every depth (copies).

    Access mode stays per store: when ``over`` sets ``anon`` or ``requester_pays``, the
    other of the two is not inherited from ``base`` (a global ``anon: true`` must not
    reach a requester-pays store, nor a global ``requester_pays`` an anonymous one).
    """
    merged = _thaw(base)
    if "anon" in over or "requester_pays" in over:
        for key in ("anon", "requester_pays"):
            if key not in over:
                merged.pop(key, None)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_options(merged[key], value)
        else:
            merged[key] = _thaw(value)
    return merged


def _is_store(path: tuple[str, ...]) -> bool:
    """``observed`` or ``models.<name>``: a store, which may be given as its URL alone."""
    return path == ("observed",) or (len(path) == 2 and path[0] == _NAMED)


def _store_node(value: Any, path: tuple[str, ...]) -> Any:
    """A store given as its URL string, as the mapping a later setting adds to."""
    return {"url": value} if isinstance(value, str) and _is_store(path) else value


def _merge(
    base: dict[str, Any], new: Mapping[str, Any], path: tuple[str, ...] = ()
) -> dict[str, Any]:
    for key, value in new.items():
        here = (*path, str(key))
        if isinstance(value, Mapping):
            base[key] = _store_node(base.get(key), here)  # observed: URL, then {variable}
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _merge(base[key], value, here)
        else:
            base[key] = copy.deepcopy(value)
    return base


def _set_dotted(target: dict[str, Any], dotted: str, value: Any) -> None:
    raw_parts = dotted.split(".")
    if len(raw_parts) > MAX_NESTING:
        raise ConfigError(
            f"the setting {dotted[:80]!r}... has {len(raw_parts)} parts: settings need a "
            f"few levels (at most {MAX_NESTING})"
        )
    if raw_parts[0] == "gagebench":
        raw_parts = raw_parts[1:]
    parts: list[str] = []
    for i, part in enumerate(raw_parts):  # keys below storage_options are kept verbatim
        verbatim = _VERBATIM in parts and i > parts.index(_VERBATIM)
        model_name = i == 1 and parts == [_NAMED]  # models.<name>: the name as written
        parts.append(part if verbatim or model_name else part.replace("-", "_"))
    if _VERBATIM not in parts:
        # normalized where it lands (a mapping given for ``models`` keeps its names)
        nested: Any = value
        for part in reversed(parts):
            nested = {part: nested}
        value = _normalize_keys(nested)
        for part in parts:
            value = value[part]
    node = target
    for i, part in enumerate(parts[:-1]):
        # a store given as its URL keeps it when one of its settings is set
        child = _store_node(node.get(part), tuple(parts[: i + 1]))
        node[part] = child = child if isinstance(child, dict) else {}
        node = child
    node[parts[-1]] = value


#: A run file holds settings, not data: larger ones are refused before parsing (a pure
#: Python YAML parse of this size takes a fraction of a second).
MAX_RUN_FILE_BYTES = 256 * 1024
#: Nodes a run file may hold once its YAML aliases are expanded (an alias bomb, nested
#: anchors, would otherwise grow without bound when the settings are walked).
MAX_EXPANDED_NODES = 100_000
#: Levels of nested mappings and lists a run file may hold (settings need a handful;
#: hundreds would exhaust Python's recursion limit when the settings are walked).
MAX_NESTING = 64


#: libyaml's safe loader when PyYAML has it (fast, and it caps nesting depth), else PyYAML's.
_SafeLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _RunFileLoader(_SafeLoader):
    """``yaml.SafeLoader`` that refuses documents whose aliases expand past
    :data:`MAX_EXPANDED_NODES` nodes, or refer to themselves, before building them."""

    def get_single_node(self) -> yaml.Node | None:
        """The document's node, checked before anything is built from it."""
        node = super().get_single_node()
        if node is not None:
            _check_expansion(node)
        return node


def _check_expansion(root: yaml.Node) -> None:
    """Refuse a YAML document whose aliases expand past :data:`MAX_EXPANDED_NODES` nodes."""
    _check_size(root, _children)


def check_expanded_size(value: Any, what: str) -> None:
    """ConfigError when a settings tree already built (a dask config file, a value given
    from Python) holds more than :data:`MAX_EXPANDED_NODES` values once its shared parts
    (YAML aliases) are counted each time they appear, or contains itself: walking it
    would otherwise grow memory without bound. Linear in the tree's distinct values."""
    try:
        _check_size(value, _value_children)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{what}: {exc}") from exc


def _check_size(root: Any, children_of: Any) -> None:
    """Count the nodes of ``root`` with every alias expanded, each node once (memoized):
    linear in the file's size however deeply anchors nest."""
    sizes: dict[int, int] = {}
    heights: dict[int, int] = {}
    active: set[int] = set()
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if key in sizes:
            continue
        children = children_of(node)
        if children_done:
            active.discard(key)
            sizes[key] = 1 + sum(sizes[id(child)] for child in children)
            heights[key] = 1 + max((heights[id(child)] for child in children), default=0)
            if sizes[key] > MAX_EXPANDED_NODES:
                raise yaml.YAMLError(
                    f"its aliases expand to more than {MAX_EXPANDED_NODES} values (nested "
                    "anchors, an alias bomb?)"
                )
            if heights[key] > MAX_NESTING:
                raise yaml.YAMLError(
                    f"it nests values more than {MAX_NESTING} levels deep: settings need "
                    "a few levels"
                )
            continue
        if key in active:
            raise yaml.YAMLError("an alias refers to the value that contains it")
        active.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in children if id(child) not in sizes)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _value_children(value: Any) -> list[Any]:
    if isinstance(value, Mapping):
        return [part for pair in value.items() for part in pair]
    if isinstance(value, list | tuple):
        return list(value)
    return []


def load_yaml(text: str, what: str) -> Any:
    """YAML text of a run file or a ``--set`` value (``what`` names it in errors), with
    alias expansion bounded: refuses alias bombs and self-referring aliases at once."""
    try:
        return yaml.load(text, Loader=_RunFileLoader)  # a SafeLoader
    except RecursionError as exc:
        raise ConfigError(f"{what} is nested too deeply to be a settings file") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{what} is not valid YAML: {exc}") from exc


def _bom_encoding(raw: bytes) -> str:
    """The encoding a run file's byte-order mark names (YAML allows UTF-16 and UTF-32,
    and Windows PowerShell 5 writes UTF-16 with ``>``), else UTF-8."""
    if raw.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return "utf-32"
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    return "utf-8-sig" if raw.startswith(codecs.BOM_UTF8) else "utf-8"


def read_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a run file (YAML), with or without the top-level ``gagebench:`` key.

    Relative paths in it (store, crosswalk and gage list URLs, ``output``) are resolved
    against the file's folder, as docker compose does; see :func:`_relative_to`.
    """
    what = f"config file {str(path)!r}"
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_RUN_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {str(path)!r}: {exc.strerror}") from exc
    if len(raw) > MAX_RUN_FILE_BYTES:
        raise ConfigError(
            f"{what} is larger than {MAX_RUN_FILE_BYTES // 1024} KiB: a run file holds "
            "settings (give gage lists and crosswalks as URLs of CSV/Parquet tables)"
        )
    encoding = _bom_encoding(raw)
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{what} is not {encoding.upper()} text (byte {exc.start} is "
            f"{raw[exc.start : exc.start + 1]!r}): save it as UTF-8"
        ) from exc
    data = load_yaml(text, what)
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{what} must hold a mapping of settings")
    if set(data) == {"gagebench"}:
        data = data["gagebench"]
        if not isinstance(data, Mapping) or not data:
            state = "empty" if not data else f"not a mapping ({type(data).__name__})"
            raise ConfigError(
                f"{what}: its gagebench: section is {state}: put the settings under it, "
                "indented (output: ..., observed: ..., models: ...)"
            )
    return _relative_to(Path(path).parent, _normalize_keys(data))


def _is_relative_path(url: Any) -> bool:
    """A plain relative path: no ``scheme://``, not absolute, not ``~``."""
    return (
        isinstance(url, str)
        and url.strip() != ""
        and "://" not in url
        and not os.path.isabs(url)
        and not url.startswith("~")
    )


#: ``file:`` and ``local:`` URLs, whose path fsspec reads relative to the current folder
#: when it is relative (``file://x.zarr``, ``file:./x.zarr``).
_LOCAL_URL = re.compile(r"^(?P<scheme>file|local):(?://)?(?P<path>.*)$", re.IGNORECASE)


def _relative_to(folder: Path, data: dict[str, Any]) -> dict[str, Any]:
    """``data`` (a run file's settings) with its relative paths made absolute against
    ``folder``: ``output``, ``gages`` (unless ``builtin``), the ``url`` of ``observed``
    and of every model store, and of their crosswalk tables. ``--set`` values and dask
    config files are not run files: their relative paths stay relative to the current
    directory."""

    def absolute(url: Any) -> Any:
        if not isinstance(url, str):
            return url
        if "::" in url:  # a chained URL (zip::data/x.zip): its last part names the file
            head, _, last = url.rpartition("::")
            return f"{head}::{absolute(last)}"
        local = _LOCAL_URL.match(url)  # file://x.zarr, file:x.zarr: fsspec reads x.zarr
        if local and _is_relative_path(local["path"]):
            return f"{local['scheme']}://{absolute(local['path'])}"
        if not _is_relative_path(url):
            return url
        return os.path.normpath(os.path.join(os.path.abspath(folder), url))

    def store(spec: Any) -> Any:
        if isinstance(spec, str):
            return absolute(spec)
        if not isinstance(spec, Mapping):
            return spec
        spec = dict(spec)
        if isinstance(spec.get("url"), list | tuple):  # NetCDF files: each one
            spec["url"] = [absolute(url) for url in spec["url"]]
        elif "url" in spec:
            spec["url"] = absolute(spec["url"])
        crosswalk = spec.get("crosswalk")
        if isinstance(crosswalk, Mapping) and "url" in crosswalk:
            spec["crosswalk"] = {**crosswalk, "url": absolute(crosswalk["url"])}
        return spec

    out = dict(data)
    for key in ("output", "gages"):
        if key in out and out[key] != "builtin":
            out[key] = absolute(out[key])
    if "observed" in out:
        out["observed"] = store(out["observed"])
    if isinstance(out.get("models"), Mapping):
        out["models"] = {name: store(spec) for name, spec in out["models"].items()}
    return out


def parse_override(text: str) -> tuple[str, Any]:
    """Parse a ``key.sub=value`` flag; the value is read as YAML (numbers, lists, null)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {text!r} must look like key.subkey=value")
    if key.strip().removeprefix("gagebench.") == "run_id" and raw.strip():
        return key.strip(), raw.strip()  # a name, as typed (YAML would read 010 as 8)
    return key.strip(), load_yaml(raw, f"override {text!r}") if raw.strip() else None


class _ReadOnly(dict[Any, Any]):
    """A read-only mapping (``MappingProxyType``, which pickle refuses) while pickled."""


def _to_state(value: Any) -> Any:
    """``value`` with each read-only mapping as a :class:`_ReadOnly` dict (picklable)."""
    if isinstance(value, MappingProxyType):
        return _ReadOnly({k: _to_state(v) for k, v in value.items()})
    if isinstance(value, dict):
        return {k: _to_state(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_to_state(v) for v in value)
    return value


def _from_state(value: Any) -> Any:
    """The inverse of :func:`_to_state`: each :class:`_ReadOnly` read-only again."""
    if isinstance(value, _ReadOnly):
        return MappingProxyType({k: _from_state(v) for k, v in value.items()})
    if isinstance(value, dict):
        return {k: _from_state(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_from_state(v) for v in value)
    return value


class _MaskedRepr:
    """A settings dataclass whose repr masks its secrets (a notebook shows it as it
    shows any value): storage options and headers by key, URLs' passwords and tokens.
    Its read-only mappings pickle and deep-copy (a process pool, ``copy.deepcopy``)."""

    def __repr__(self) -> str:
        values = ", ".join(
            f"{f.name}={redact(getattr(self, f.name), f.name)!r}"
            for f in dataclasses.fields(self)  # type: ignore[arg-type]
        )
        return f"{type(self).__name__}({values})"

    def __getstate__(self) -> dict[str, Any]:
        return {name: _to_state(value) for name, value in self.__dict__.items()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update({name: _from_state(value) for name, value in state.items()})


@dataclass(frozen=True, repr=False)
class Crosswalk(_MaskedRepr):
    """A gage -> feature crosswalk: a table at ``url`` or two variables of the store.

    Read by :mod:`gagebench.sources.crosswalk`, which also says what the layouts mean.
    """

    url: str | None = None
    gage: str | None = None
    feature: str | None = None
    gage_variable: str | None = None
    feature_variable: str | None = None
    storage_options: Mapping[str, Any] = field(default_factory=dict)

    def manifest_entry(self) -> dict[str, Any]:
        """What the manifest records (no storage options: they may hold secrets)."""
        if self.url is not None:
            return {"url": self.url, "gage": self.gage, "feature": self.feature}
        return {"gage_variable": self.gage_variable, "feature_variable": self.feature_variable}


@dataclass(frozen=True, repr=False)
class StoreConfig(_MaskedRepr):
    """One zarr store: URL, variable, fsspec options, and how to read it (see gagebench.yaml).

    ``consolidated``: as xarray's ``open_zarr`` (None = try consolidated metadata first);
    ``units``: overrides the variable's ``units`` attribute; ``crosswalk``: gage ->
    feature mapping for stores indexed by segments or reaches. The sources read it as it
    is; :meth:`RunConfig.resolved` gives it the run's options, picklable for workers.
    """

    url: str | tuple[str, ...]
    variable: str = default("observed.variable")
    storage_options: Mapping[str, Any] = field(default_factory=dict)
    consolidated: bool | None = default("observed.consolidated")
    units: str | None = default("observed.units")
    crosswalk: Crosswalk | None = None
    #: Which store engine reads it (``gagebench.yaml``: ``observed.engine``): zarr,
    #: reference, netcdf or an entry point's name (gagebench.sources.engines); a tuple of
    #: URLs is a list of NetCDF files.
    engine: str = default("observed.engine")

    def options(self) -> dict[str, Any]:
        """The store's own storage options (a plain copy)."""
        return dict(self.storage_options or {})

    @property
    def urls(self) -> tuple[str, ...]:
        """The store's URL, or its list of file URLs, as a tuple."""
        return (self.url,) if isinstance(self.url, str) else tuple(self.url)


@dataclass(frozen=True, repr=False)
class ClusterConfig(_MaskedRepr):
    """Which backend runs the bag, and each backend's own (unvalidated) settings."""

    backend: str = default("cluster.backend")
    options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def backend_options(self, name: str | None = None) -> dict[str, Any]:
        """The settings section of one backend (a copy), validated by that backend."""
        return _thaw(self.options.get(name or self.backend) or {})


@dataclass(frozen=True, repr=False)
class RunConfig(_MaskedRepr):
    """Everything a run needs, validated. Build it with :func:`load_config`."""

    run_id: str
    output: str
    gages: str = default("gages")
    gage_limit: int | None = default("gage_limit")
    observed: StoreConfig | None = None
    models: Mapping[str, StoreConfig] = field(default_factory=dict)
    storage_options: Mapping[str, Any] = field(default_factory=dict)
    suites: tuple[str, ...] = DEFAULT_SUITES
    metrics: tuple[str, ...] = tuple(default("metrics"))
    mode: str = default("mode")
    batch_size: int = DEFAULT_BATCH_SIZE
    min_paired_days: int = default("min_paired_days")
    by: tuple[str, ...] = tuple(default("by"))
    report: bool = default("report")
    report_gages: tuple[str, ...] | None = default("report_gages")
    baselines: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    progress: bool = default("progress")
    log_format: str = default("log_format")
    retries: Mapping[str, Any] = field(default_factory=dict)
    integrity: Mapping[str, Any] = field(default_factory=dict)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    uncertainty: Mapping[str, Any] = field(default_factory=lambda: UNCERTAINTY_DEFAULTS)

    def uncertainty_settings(self) -> UncertaintySettings:
        """The uncertainty suite's settings; a null seed is derived from the run id, so a
        resumed run draws the same years as the batches it keeps."""
        from gagebench.uncertainty_suite import settings_from

        opts = dict(self.uncertainty)
        n_samples = int(opts.pop("n_samples"))
        seed = opts.pop("seed")
        return settings_from(opts, n_samples=n_samples, seed=seed, key=self.run_id)

    @property
    def run_url(self) -> str:
        """The folder of this run: ``<output>/<run_id>``."""
        return f"{self.output.rstrip('/')}/{self.run_id}"

    def options_for(self, store: StoreConfig | None = None) -> dict[str, Any]:
        """fsspec storage options for a store (None: the output): plain, mutable copies.

        The store's options are merged over the global ones key by key at every depth
        (:func:`merge_options`). For an ``s3://`` URL the run's retry policy is added as
        ``gagebench_retries`` (read by :mod:`gagebench.storage.objectstore`, also on workers),
        and its integrity settings as ``gagebench_integrity`` (:mod:`gagebench.storage.digests`).
        """
        merged = merge_options(self.storage_options, store.storage_options if store else {})
        url = store.urls[0] if store is not None else self.output
        if url.split("://", 1)[0] in ("s3", "s3a"):
            merged.setdefault("gagebench_retries", dict(self.retries))
            merged.setdefault("gagebench_integrity", dict(self.integrity))
        return merged

    def resolved(self, store: StoreConfig) -> StoreConfig:
        """``store`` as the sources read it: the run's storage options merged over its own
        and over its crosswalk table's (:meth:`options_for`), as plain picklable dicts."""
        crosswalk = store.crosswalk
        if crosswalk is not None:
            table_url = crosswalk.url
            options: dict[str, Any] = {}
            if table_url is not None:
                table = StoreConfig(url=table_url, storage_options=crosswalk.storage_options)
                options = _thaw(self.options_for(table))
            crosswalk = replace(crosswalk, storage_options=options)
        options = _thaw(self.options_for(store))
        # every store's reader (storage.integrity) applies them, whatever its protocol
        options.setdefault("gagebench_retries", dict(self.retries))
        options.setdefault("gagebench_integrity", dict(self.integrity))
        return replace(store, storage_options=options, crosswalk=crosswalk)

    def to_dict(self) -> dict[str, Any]:
        """A plain, YAML/JSON-safe view, with secrets masked (for manifests and logs)."""
        plain = _as_plain(self)
        if not plain.get("baselines"):
            plain.pop("baselines", None)  # runs without baselines record what they did before
        return redact(plain)

    def require_stores(self) -> None:
        """Raise unless observed and at least one model store are configured, and the run
        id and model names are safe folder names (also for a RunConfig built by hand)."""
        if self.observed is None:
            raise ConfigError(
                "gagebench.observed.url is not set: give the zarr store of observed "
                "daily streamflow (e.g. s3://bucket/nwis.zarr)"
            )
        if not self.models:
            raise ConfigError(
                "gagebench.models is empty: give at least one model store, e.g. "
                "models: {nwm: {url: s3://bucket/nwm.zarr}}"
            )
        for name in self.models:
            _expect(bool(NAME.match(str(name))), "models", _MODEL_NAMES, name)
        _expect(bool(NAME.match(self.run_id)), "run_id", _NAME_RULE, self.run_id)


def _as_plain(value: Any) -> Any:
    if isinstance(value, RunConfig | StoreConfig | ClusterConfig | Crosswalk):
        return {k: _as_plain(v) for k, v in value.__dict__.items()}
    if isinstance(value, Mapping):
        return {str(k): _as_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_as_plain(v) for v in value]
    return value


def _thaw(value: Any) -> Any:
    """A plain, mutable deep copy of a frozen value (mappingproxy cannot be deep-copied)."""
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_thaw(v) for v in value]
    return copy.deepcopy(value)


def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def new_run_id(now: _dt.datetime | None = None) -> str:
    """A sortable run id from the UTC time, e.g. ``20261126T141500Z``."""
    now = now or _dt.datetime.now(_dt.UTC)
    return now.strftime("%Y%m%dT%H%M%SZ")


#: Settings that decide a run's results (marked in :mod:`gagebench.schema`): the default run
#: id is a hash of them, so running the same command again resumes (or finds complete)
#: the same run; a run folder refuses to go on under others; the manifest records them.
RESULT_KEYS: tuple[str, ...] = schema.result_keys()


def result_settings(config: RunConfig | Mapping[str, Any]) -> dict[str, Any]:
    """The result-deciding settings of a config (or of a manifest's ``config``), in one
    canonical form: stores as they are read (no access options), models by name, suites
    in their canonical order, the uncertainty settings only when that suite runs.

    The one definition behind the default run id (:func:`settings_run_id`), the refusal
    of a run folder computed with other settings and the manifest's comparison
    (:mod:`gagebench.results.settings`). A RunConfig is taken as its manifest records it
    (:meth:`RunConfig.to_dict`, secrets masked); the run id hashes the plain values."""
    plain = config.to_dict() if isinstance(config, RunConfig) else dict(config)
    out: dict[str, Any] = {}
    for key in RESULT_KEYS:
        if key not in plain:
            continue
        value = plain[key]
        if key == "observed":
            value = store_identity(value)
        elif key == "models":
            value = {str(k): store_identity(v) for k, v in sorted((value or {}).items())}
        elif key == "suites":
            value = [s for s in VALID_SUITES if s in (value or [])]
        elif key == "by":
            if not value:
                continue  # no breakdown: the run ids from before ``by`` existed stay
            value = [g for g in GROUPINGS if g in value]
        elif key == "metrics":
            if not value:
                continue  # no user metric: run ids from before the setting stay the same
            value = list(value)
        elif key == "uncertainty":
            if "uncertainty" not in (plain.get("suites") or []):
                continue  # its settings decide nothing when the suite does not run
            value = dict(value or {})
        out[key] = value
    return out


def store_identity(store: Any) -> Any:
    """How a store is read (URL, variable, units, crosswalk...), without the options that
    only say how it is reached (:data:`gagebench.schema.STORE_ACCESS_KEYS`); the default
    engine is left out too, so ids and manifests from before it existed still match."""
    if not isinstance(store, Mapping):
        return store
    return {
        k: v
        for k, v in store.items()
        if k not in schema.STORE_ACCESS_KEYS
        and not (k == "engine" and v == default("observed.engine"))
    }


def settings_run_id(settings: Mapping[str, Any]) -> str:
    """``run-`` and a short hash of the result settings (stores, gages, suites, mode...).

    Storage options (credentials, endpoints) are left out: the same stores reached another
    way are the same run.
    """
    chosen = result_settings(settings)
    text = json.dumps(chosen, sort_keys=True, default=str)
    return "run-" + hashlib.sha256(text.encode()).hexdigest()[:10]


def _expect(cond: bool, key: str, expected: str, got: Any) -> None:
    if not cond:
        raise ConfigError(f"gagebench.{key}: expected {expected}, got {got!r}")


def _check_bucket(url: str, key: str) -> None:
    """ConfigError when ``url`` is an object-store URL without a bucket (``s3://``)."""
    from gagebench.storage.fs import missing_bucket

    problem = missing_bucket(url)
    if problem is not None:
        raise ConfigError(f"gagebench.{key}: {problem} (got {url!r})")


def validate(raw: Mapping[str, Any]) -> RunConfig:
    """Turn a merged settings mapping into a :class:`RunConfig`, or raise ConfigError.

    The schema (:class:`gagebench.schema.RunSettings`) checks every key and value; an
    unknown key is named first, else the first invalid setting. Then the URLs' buckets,
    the cluster backend and the run id.
    """
    raw = _normalize_keys(dict(raw))
    remember_settings(raw)  # its secrets are masked in every output from now on
    settings = schema.validated(schema.RunSettings, raw, "")
    _check_mode_suites(settings.suites, settings.mode)
    _check_bucket(settings.output, "output")
    _check_bucket(settings.gages, "gages")
    models = {name: _store_config(m, f"models.{name}") for name, m in settings.models.items()}
    special: dict[str, Any] = {
        "run_id": "",  # filled in below, from the other settings
        "observed": _store_config(settings.observed, "observed"),
        "models": MappingProxyType({k: v for k, v in models.items() if v is not None}),
        "suites": tuple(s for s in VALID_SUITES if s in settings.suites),
        "by": tuple(g for g in GROUPINGS if g in settings.by),
        "metrics": tuple(dict.fromkeys(settings.metrics)),
        "cluster": _cluster(settings.cluster),
        "baselines": _freeze({k: v.model_dump() for k, v in settings.baselines.items()}),
    }
    values = {
        name: special[name] if name in special else _frozen(settings, name)
        for name in schema.RunSettings.model_fields
    }
    cfg = RunConfig(**values)
    if cfg.by and cfg.suites == ("uncertainty",):
        raise ConfigError(
            f"gagebench.by: {list(cfg.by)} breaks down the per-day suites "
            f"({', '.join(s for s in VALID_SUITES if s != 'uncertainty')}) "
            "and gagebench.suites has none: add 'standard' to suites, or remove by"
        )
    return replace(cfg, run_id=_run_id(settings.run_id, cfg))


def _check_mode_suites(suites: Sequence[str], mode: str) -> None:
    """ConfigError when ``mode`` cannot compute ``suites`` (hytest mode computes only the
    suites HyTEST defines: the metric registry says which). The metrics package is
    imported only for hytest mode, so loading a standard run's settings stays light."""
    if mode != "hytest":
        return
    from gagebench.metrics.registry import mode_refusal

    if refusal := mode_refusal(suites, mode):
        raise ConfigError(f"gagebench.suites: {refusal}")


def _frozen(model: BaseModel, name: str) -> Any:
    """A validated setting as the frozen config holds it: a section or mapping read-only."""
    value = getattr(model, name)
    if isinstance(value, BaseModel):
        value = value.model_dump()
    return _freeze(value) if isinstance(value, dict) else value


def _store_config(store: schema.StoreSettings | None, key: str) -> StoreConfig | None:
    """The validated store as the frozen dataclass the sources read."""
    if store is None or store.url is None:
        return None
    for url in (store.url,) if isinstance(store.url, str) else store.url:
        _check_bucket(url, f"{key}.url")
    crosswalk = None
    if store.crosswalk is not None:
        plain = store.crosswalk.model_dump()
        plain["storage_options"] = _freeze(dict(plain.get("storage_options") or {}))
        crosswalk = Crosswalk(**plain)
    values = {name: _frozen(store, name) for name in schema.StoreSettings.model_fields}
    if isinstance(store.url, list):
        values["url"] = tuple(store.url)  # NetCDF files, in order (frozen, hashable)
    return StoreConfig(**{**values, "crosswalk": crosswalk})


def _cluster(settings: schema.ClusterSettings) -> ClusterConfig:
    """The ``cluster`` section: a backend (a built-in name, an entry point of the group
    ``gagebench.backends`` or ``module:Class``), and sections only of backends (each
    validated by its backend's own ``Settings`` model, :mod:`gagebench.clusters`)."""
    backend = settings.backend
    check_backend_name(backend)
    sections = settings.sections()
    # a module:Class backend's section is named by its class: checked when it is imported
    # (gagebench.clusters.check_settings)
    builtin = [b for b in VALID_BACKENDS if b != "auto"]
    for name in sections:
        if name in builtin or is_backend_target(backend):
            continue
        names = [b for b in registered_backends() if b != "auto"]
        _expect(name in names, f"cluster.{name}", f"a section of one of the backends {names}", name)
    options = {name: (settings.model_extra or {})[name] for name in sections}
    return ClusterConfig(backend=backend, options=_freeze(options))


def _run_id(template: str | None, cfg: RunConfig) -> str:
    """``run_id`` with ``{hash}`` (of the result settings) and ``{time}`` filled in."""
    run_id = str(template or "{hash}")
    if "{hash}" in run_id:
        run_id = run_id.replace("{hash}", settings_run_id(_as_plain(cfg)))
    run_id = run_id.replace("{time}", new_run_id())
    _expect(
        bool(NAME.match(run_id)),
        "run_id",
        f"{_NAME_RULE}; '{{hash}}' and '{{time}}' are replaced by the settings hash and "
        "the UTC time",
        run_id,
    )
    return run_id


def load_config(
    *files: str | os.PathLike[str],
    overrides: Mapping[str, Any] | None = None,
    **keywords: Any,
) -> RunConfig:
    """Build the run configuration.

    Precedence, lowest first: packaged defaults, dask config (YAML files and
    ``DASK_GAGEBENCH__...`` env vars), each run file in ``files``, ``overrides``
    (dotted keys, e.g. ``{"cluster.backend": "local"}``) and ``keywords``
    (top-level keys, e.g. ``batch_size=32``).

    Parameters
    ----------
    files
        Run files (YAML, with or without the top-level ``gagebench:`` key); later files
        win. Relative paths in a run file are read against the run file's folder.
    overrides
        Settings by dotted key, e.g. ``{"cluster.backend": "local", "output": "runs"}``.
    keywords
        Settings by top-level key, e.g. ``run_id="nightly"``, ``batch_size=32``.

    Returns
    -------
    RunConfig
        The validated, frozen settings. An unknown key or a bad value raises
        :class:`~gagebench.ConfigError` naming the key (``gagebench run``: exit 2).
    """
    from_dask = dask.config.get("gagebench", default={})
    check_expanded_size(
        from_dask,
        "the gagebench section of the dask config (YAML files in $DASK_CONFIG or "
        "~/.config/dask, DASK_GAGEBENCH__ variables)",
    )
    check_expanded_size(dict(overrides or {}), "the overrides")
    check_expanded_size(keywords, "the keyword settings")
    merged = _normalize_keys(copy.deepcopy(from_dask))
    for path in files:
        _merge(merged, read_config_file(path))
    for dotted, value in (overrides or {}).items():
        _set_dotted(merged, dotted, value)
    for key, value in keywords.items():
        _set_dotted(merged, key, value)
    return validate(merged)
