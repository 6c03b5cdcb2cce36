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
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import dask.config
import yaml

from gagebench.clusters import BACKENDS
from gagebench.clusters.registry import check_name as check_backend_name
from gagebench.clusters.registry import is_target as is_backend_target
from gagebench.clusters.registry import registered as registered_backends
from gagebench.defaults import PACKAGED_DEFAULTS, UNCERTAINTY_DEFAULTS
from gagebench.errors import ConfigError
from gagebench.redact import redact, remember_settings

if TYPE_CHECKING:
    from gagebench.uncertainty import UncertaintySettings

# gagebench.yaml (gagebench.defaults) is the one source of every default below; importing
# gagebench.defaults registered it as dask's config defaults.

VALID_SUITES = ("standard", "dscore", "uncertainty")
#: The suites a run computes when ``suites`` is not set.
DEFAULT_SUITES: tuple[str, ...] = tuple(PACKAGED_DEFAULTS["suites"])
DEFAULT_BATCH_SIZE: int = int(PACKAGED_DEFAULTS["batch_size"])
VALID_MODES = ("standard", "hytest")
#: The built-in backends (:data:`gagebench.clusters.BACKENDS`; plugins: clusters.registry).
VALID_BACKENDS: tuple[str, ...] = tuple(BACKENDS)
VALID_LOG_FORMATS = ("text", "json")
#: Run ids and model names: each names a folder of the run (``<output>/<run_id>/<model>/``),
#: so one safe path segment: letters, digits, '.', '_', '-', not starting with a symbol
#: (never '.', '..' or a hidden name), at most 128 characters.
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}\Z")
_NAME_RULE = "letters, digits, '.', '_' or '-' (at most 128, not starting with a symbol)"
_MODEL_NAMES = f"model names of {_NAME_RULE}, as each names a folder of the run"


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


def _merge(base: dict[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in new.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _merge(base[key], value)
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
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
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
        if "url" in spec:
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


_TABLE_KEYS = {"url", "gage", "feature", "storage_options"}
_VARIABLE_KEYS = {"gage_variable", "feature_variable"}


class _MaskedRepr:
    """A settings dataclass whose repr masks its secrets (a notebook shows it as it
    shows any value): storage options and headers by key, URLs' passwords and tokens."""

    def __repr__(self) -> str:
        values = ", ".join(
            f"{f.name}={redact(getattr(self, f.name), f.name)!r}"
            for f in dataclasses.fields(self)  # type: ignore[arg-type]
        )
        return f"{type(self).__name__}({values})"


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

    @classmethod
    def parse(cls, raw: Any, key: str) -> Crosswalk | None:
        """Validate a ``crosswalk:`` setting (``key`` is its dotted name, for errors)."""
        if raw is None:
            return None
        example = (
            "{url: <CSV/Parquet>, gage: <column>, feature: <column>} or "
            "{gage_variable: <variable>, feature_variable: <variable>}"
        )
        if not isinstance(raw, Mapping):
            raise ConfigError(f"gagebench.{key}: expected {example}, got {raw!r}")
        keys = set(raw)
        if keys <= _TABLE_KEYS and {"url", "gage", "feature"} <= keys:
            values = {k: raw[k] for k in ("url", "gage", "feature")}
            opts = raw.get("storage_options") or {}
            if not isinstance(opts, Mapping):
                raise ConfigError(f"gagebench.{key}.storage_options: expected a mapping")
        elif keys == _VARIABLE_KEYS:
            values = {k: raw[k] for k in _VARIABLE_KEYS}
            opts = {}
        else:
            raise ConfigError(f"gagebench.{key}: expected {example}, got keys {sorted(keys)}")
        for name, value in values.items():
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(f"gagebench.{key}.{name}: expected a name, got {value!r}")
        return cls(**values, storage_options=dict(opts))

    def describe(self) -> dict[str, Any]:
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

    url: str
    variable: str = "streamflow"
    storage_options: Mapping[str, Any] = field(default_factory=dict)
    consolidated: bool | None = None
    units: str | None = None
    crosswalk: Crosswalk | None = None

    def options(self) -> dict[str, Any]:
        """The store's own storage options (a plain copy)."""
        return dict(self.storage_options or {})


@dataclass(frozen=True, repr=False)
class ClusterConfig(_MaskedRepr):
    """Which backend runs the bag, and each backend's own (unvalidated) settings."""

    backend: str = "local"
    options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def backend_options(self, name: str | None = None) -> dict[str, Any]:
        """The settings section of one backend (a copy), validated by that backend."""
        return _thaw(self.options.get(name or self.backend) or {})


@dataclass(frozen=True, repr=False)
class RunConfig(_MaskedRepr):
    """Everything a run needs, validated. Build it with :func:`load_config`."""

    run_id: str
    output: str
    gages: str = "builtin"
    gage_limit: int | None = None
    observed: StoreConfig | None = None
    models: Mapping[str, StoreConfig] = field(default_factory=dict)
    storage_options: Mapping[str, Any] = field(default_factory=dict)
    suites: tuple[str, ...] = DEFAULT_SUITES
    mode: str = "standard"
    batch_size: int = DEFAULT_BATCH_SIZE
    min_paired_days: int = 365
    report: bool = True
    progress: bool = True
    log_format: str = "text"
    retries: Mapping[str, Any] = field(default_factory=dict)
    integrity: Mapping[str, Any] = field(default_factory=dict)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    uncertainty: Mapping[str, Any] = field(default_factory=lambda: UNCERTAINTY_DEFAULTS)

    def uncertainty_settings(self) -> UncertaintySettings:
        """The uncertainty suite's settings; a null seed is derived from the run id, so a
        resumed run draws the same years as the batches it keeps."""
        from gagebench.uncertainty import settings_from

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
        url = store.url if store is not None else self.output
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
        return redact(_as_plain(self))

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


#: Settings that decide a run's results; the default run id is a hash of them, so running
#: the same command again resumes (or finds complete) the same run.
RESULT_KEYS = (
    "gages",
    "gage_limit",
    "observed",
    "models",
    "suites",
    "mode",
    "batch_size",
    "min_paired_days",
    "uncertainty",
)


def settings_run_id(settings: Mapping[str, Any]) -> str:
    """``run-`` and a short hash of the result settings (stores, gages, suites, mode...).

    Storage options (credentials, endpoints) are left out: the same stores reached another
    way are the same run.
    """
    # the uncertainty settings count only for runs of that suite (older ids stay the same)
    chosen = {
        k: settings.get(k) for k in RESULT_KEYS if k != "uncertainty" or settings.get(k) is not None
    }
    text = json.dumps(chosen, sort_keys=True, default=str)
    return "run-" + hashlib.sha256(text.encode()).hexdigest()[:10]


def _store_identity(store: StoreConfig | None) -> dict[str, Any] | None:
    """How a store is read (URL, variable, units, crosswalk...), without access options."""
    if store is None:
        return None
    plain = _as_plain(store)
    plain.pop("storage_options", None)
    return dict(plain)


def _expect(cond: bool, key: str, expected: str, got: Any) -> None:
    if not cond:
        raise ConfigError(f"gagebench.{key}: expected {expected}, got {got!r}")


def _check_bucket(url: str, key: str) -> None:
    """ConfigError when ``url`` is an object-store URL without a bucket (``s3://``)."""
    from gagebench.storage.fs import missing_bucket

    problem = missing_bucket(url)
    if problem is not None:
        raise ConfigError(f"gagebench.{key}: {problem} (got {url!r})")


def _mapping(raw: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = raw.get(key)
    if value is None:
        return {}
    _expect(isinstance(value, Mapping), key, "a mapping", value)
    return dict(value)


def _store(raw: Any, key: str) -> StoreConfig | None:
    if raw is None:
        return None
    if isinstance(raw, str):
        raw = {"url": raw}
    _expect(isinstance(raw, Mapping), key, "a mapping with 'url' (or a URL string)", raw)
    unknown = set(raw) - _STORE_KEYS
    _expect(not unknown, key, f"only the keys {', '.join(sorted(_STORE_KEYS))}", sorted(unknown))
    url = raw.get("url")
    if url is None:
        return None
    _expect(isinstance(url, str) and url.strip() != "", f"{key}.url", "a URL string", url)
    _check_bucket(url, f"{key}.url")
    variable = raw.get("variable") or "streamflow"
    _expect(isinstance(variable, str), f"{key}.variable", "a variable name", variable)
    opts = raw.get("storage_options") or {}
    _expect(isinstance(opts, Mapping), f"{key}.storage_options", "a mapping", opts)
    consolidated = raw.get("consolidated")
    _expect(
        consolidated is None or isinstance(consolidated, bool),
        f"{key}.consolidated",
        "true, false or null",
        consolidated,
    )
    units = raw.get("units")
    _expect(units is None or isinstance(units, str), f"{key}.units", "a units string", units)
    crosswalk = Crosswalk.parse(raw.get("crosswalk"), f"{key}.crosswalk")
    if crosswalk is not None:
        crosswalk = replace(crosswalk, storage_options=_freeze(dict(crosswalk.storage_options)))
    return StoreConfig(
        url=url,
        variable=variable,
        storage_options=_freeze(dict(opts)),
        consolidated=consolidated,
        units=units,
        crosswalk=crosswalk,
    )


_STORE_KEYS = {"url", "variable", "storage_options", "consolidated", "units", "crosswalk"}


_TOP_KEYS = {
    "run_id",
    "output",
    "gages",
    "gage_limit",
    "observed",
    "models",
    "storage_options",
    "suites",
    "mode",
    "batch_size",
    "min_paired_days",
    "report",
    "progress",
    "log_format",
    "retries",
    "integrity",
    "cluster",
    "uncertainty",
}


def _int_setting(value: Any, key: str, low: int, high: int | None = None) -> int:
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= low
    ok = ok and (high is None or value <= high)
    span = f"between {low} and {high}" if high is not None else f"of at least {low}"
    _expect(ok, key, f"an integer {span}", value)
    return int(value)


def _uncertainty(raw: Any) -> dict[str, Any]:
    """The validated ``uncertainty`` section, defaults filled in."""
    if raw is None:
        raw = {}
    _expect(isinstance(raw, Mapping), "uncertainty", "a mapping", raw)
    unknown = sorted(set(raw) - set(UNCERTAINTY_DEFAULTS))
    _expect(not unknown, "uncertainty", f"only the keys {', '.join(UNCERTAINTY_DEFAULTS)}", unknown)
    out = {**UNCERTAINTY_DEFAULTS, **raw}
    out["n_samples"] = _int_setting(out["n_samples"], "uncertainty.n_samples", 2, 1_000_000)
    if out["seed"] is not None:
        out["seed"] = _int_setting(out["seed"], "uncertainty.seed", 0, 2**63 - 1)
    out["water_year_month"] = _int_setting(
        out["water_year_month"], "uncertainty.water_year_month", 1, 13
    )
    out["min_days"] = _int_setting(out["min_days"], "uncertainty.min_days", 0, 366)
    out["min_years"] = _int_setting(out["min_years"], "uncertainty.min_years", 2)
    return out


def validate(raw: Mapping[str, Any]) -> RunConfig:
    """Turn a merged settings mapping into a :class:`RunConfig`, or raise ConfigError.

    One step per section, in this order (the first invalid setting is the one named).
    """
    raw = _normalize_keys(dict(raw))
    remember_settings(raw)  # its secrets are masked in every output from now on
    _check_top_keys(raw)
    output, gages, limit = _run_inputs(raw)
    observed = _store(raw.get("observed"), "observed")
    models = _models(raw)
    suites = _suites(raw)
    mode, batch, min_days, log_format = _run_settings(raw)
    cluster = _cluster(raw)
    storage_options = _mapping(raw, "storage_options")
    from gagebench.storage.retry import RetryPolicy

    retries = RetryPolicy.from_mapping(_mapping(raw, "retries")).to_dict()
    from gagebench.storage.digests import IntegritySettings

    integrity = IntegritySettings.from_mapping(_mapping(raw, "integrity")).to_dict()
    cfg = RunConfig(
        run_id="",
        output=output,
        gages=gages,
        gage_limit=limit,
        observed=observed,
        models=MappingProxyType(models),
        storage_options=_freeze(storage_options),
        suites=suites,
        mode=mode,
        batch_size=batch,
        min_paired_days=min_days,
        report=raw.get("report", True),
        progress=raw.get("progress", True),
        log_format=log_format,
        retries=_freeze(retries),
        integrity=_freeze(integrity),
        cluster=cluster,
        uncertainty=_freeze(_uncertainty(raw.get("uncertainty"))),
    )
    return replace(cfg, run_id=_run_id(raw.get("run_id"), cfg))


def _check_top_keys(raw: Mapping[str, Any]) -> None:
    unknown = sorted(set(raw) - _TOP_KEYS)
    if unknown:
        raise ConfigError(
            f"unknown setting(s) gagebench.{', gagebench.'.join(unknown)}; "
            f"valid keys are: {', '.join(sorted(_TOP_KEYS))}"
        )


def _run_inputs(raw: Mapping[str, Any]) -> tuple[str, str, int | None]:
    """``output``, ``gages`` and ``gage_limit``."""
    output = raw.get("output")
    _expect(isinstance(output, str) and output.strip() != "", "output", "a URL or path", output)
    _check_bucket(str(output), "output")
    gages = raw.get("gages", "builtin")
    _expect(isinstance(gages, str) and gages != "", "gages", "'builtin' or a URL", gages)
    _check_bucket(gages, "gages")
    limit = raw.get("gage_limit")
    _expect(
        limit is None or (isinstance(limit, int) and not isinstance(limit, bool) and limit > 0),
        "gage_limit",
        "null or a positive integer",
        limit,
    )
    return str(output), gages, limit


def _models(raw: Mapping[str, Any]) -> dict[str, StoreConfig]:
    """The ``models`` section: a store per model name."""
    models: dict[str, StoreConfig] = {}
    for name, spec in _mapping(raw, "models").items():
        _expect_text(name, "models", "model name")
        _expect(
            bool(NAME.match(str(name))),
            "models",
            _MODEL_NAMES,
            name,
        )
        store = _store(spec, f"models.{name}")
        _expect(store is not None, f"models.{name}.url", "a URL string", None)
        assert store is not None
        models[str(name)] = store
    return models


def _suites(raw: Mapping[str, Any]) -> tuple[str, ...]:
    """``suites`` (a list or a comma-separated string), in the order of VALID_SUITES."""
    suites = raw.get("suites", list(DEFAULT_SUITES))
    if isinstance(suites, str):
        suites = [s.strip() for s in suites.split(",") if s.strip()]
    _expect(
        isinstance(suites, list | tuple)
        and len(suites) > 0
        and all(s in VALID_SUITES for s in suites),
        "suites",
        f"a non-empty list of {list(VALID_SUITES)}",
        suites,
    )
    return tuple(s for s in VALID_SUITES if s in suites)


def _run_settings(raw: Mapping[str, Any]) -> tuple[str, int, int, str]:
    """``mode``, ``batch_size``, ``min_paired_days``, the flags and ``log_format``."""
    mode = raw.get("mode", "standard")
    _expect(mode in VALID_MODES, "mode", f"one of {list(VALID_MODES)}", mode)
    batch = _int_setting(raw.get("batch_size", DEFAULT_BATCH_SIZE), "batch_size", 1, 100_000)
    min_days = raw.get("min_paired_days", 365)
    _expect(
        isinstance(min_days, int) and not isinstance(min_days, bool) and min_days >= 2,
        "min_paired_days",
        "an integer of at least 2 (days with both observed and simulated flow)",
        min_days,
    )
    for flag in ("report", "progress"):
        _expect(isinstance(raw.get(flag, True), bool), flag, "true or false", raw.get(flag))
    log_format = raw.get("log_format", "text")
    _expect(
        log_format in VALID_LOG_FORMATS,
        "log_format",
        f"one of {list(VALID_LOG_FORMATS)}",
        log_format,
    )
    return mode, batch, min_days, log_format


def _cluster(raw: Mapping[str, Any]) -> ClusterConfig:
    """The ``cluster`` section: the backend and one mapping per backend's settings."""
    cluster_raw = _mapping(raw, "cluster")
    backend = cluster_raw.pop("backend", "local")
    check_backend_name(backend)  # built-in, entry point (gagebench.backends) or module:Class
    for name, section in cluster_raw.items():
        _expect(
            section is None or isinstance(section, Mapping),
            f"cluster.{name}",
            "a mapping of that backend's settings",
            section,
        )
    # a module:Class backend's section is named by its class: checked when it is imported
    # (gagebench.clusters.check_settings)
    builtin = [b for b in BACKENDS if b != "auto"]
    for name in cluster_raw:
        if name in builtin or is_backend_target(backend):
            continue
        names = [b for b in registered_backends() if b != "auto"]
        _expect(
            name in names,
            f"cluster.{name}",
            f"a section of one of the backends {names}",
            name,
        )
    return ClusterConfig(backend=backend, options=_freeze(cluster_raw))


def _expect_text(value: Any, key: str, what: str) -> None:
    """ConfigError for a name YAML read as another type (``null``, ``yes``/``no``/``on``,
    ``010``, a date): its text would not be the name written, so it is refused."""
    if not isinstance(value, str):
        raise ConfigError(
            f"gagebench.{key}: the {what} {value!r} was read as {type(value).__name__}, "
            "not text (YAML reads null, yes/no/on/off, 010 and dates that way): quote it"
        )


def _run_id(template: Any, cfg: RunConfig) -> str:
    """``run_id`` with ``{hash}`` (of the result settings) and ``{time}`` filled in."""
    if template is not None:
        _expect_text(template, "run_id", "run id")
    identity: dict[str, Any] = {
        "gages": cfg.gages,
        "gage_limit": cfg.gage_limit,
        "observed": _store_identity(cfg.observed),
        "models": {name: _store_identity(store) for name, store in sorted(cfg.models.items())},
        "suites": list(cfg.suites),
        "mode": cfg.mode,
        "batch_size": cfg.batch_size,
        "min_paired_days": cfg.min_paired_days,
    }
    if "uncertainty" in cfg.suites:
        identity["uncertainty"] = dict(cfg.uncertainty)
    run_id = str(template or "{hash}")
    run_id = run_id.replace("{hash}", settings_run_id(identity)).replace("{time}", new_run_id())
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
