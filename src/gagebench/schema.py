"""The one typed schema of gagebench's settings: each key's type, bounds and help, once.

Pydantic v2 models, one per section of a run file. Defaults come from the packaged
``gagebench.yaml`` (:func:`gagebench.defaults.default`) and each key's help text is the
file's comment above it (:func:`gagebench.defaults.help_text`), so the file stays the one
place where defaults and their meaning are written. From these models derive:

- validation: :func:`validated` turns pydantic's errors into one :class:`ConfigError`
  naming the dotted key (``gagebench.batch_size: expected ...``), the accepted values,
  and, for an unknown key, the valid keys and the closest one (a typo suggestion);
- the run file's JSON Schema (``gagebench config-schema``, :mod:`gagebench.runfile`), the
  Helm chart's ``values.schema.json`` section and the docs' configuration reference;
- which settings decide a run's results (:func:`result_keys`): a per-field marker.

A leaf under ``config``: it imports only ``defaults`` and ``errors`` of gagebench, so the
storage layer and the cluster backends may declare their sections with it.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal, TypeVar, get_args, get_origin

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError

from gagebench.defaults import default, help_text
from gagebench.errors import ConfigError

#: Run ids and model names: each names a folder of the run (``<output>/<run_id>/<model>/``),
#: so one safe path segment: letters, digits, '.', '_', '-', not starting with a symbol
#: (never '.', '..' or a hidden name), at most 128 characters.
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}\Z")
NAME_RULE = "letters, digits, '.', '_' or '-' (at most 128, not starting with a symbol)"
MODEL_NAMES = f"model names of {NAME_RULE}, as each names a folder of the run"

#: The JSON Schema marker of a setting that decides a run's results (:func:`result_keys`).
DECIDES_RESULTS = "x-decides-results"


class Expect:
    """What a setting accepts, in words, for its error messages (``Annotated`` metadata):
    ``gagebench.<key>: expected <text>, got <value>``. Without it the words are derived
    from the type and bounds (:func:`expected_of`)."""

    def __init__(self, text: str) -> None:
        self.text = text


def setting(
    dotted: str,
    *,
    decides_results: bool = False,
    json_schema_extra: dict[str, Any] | None = None,
    **constraints: Any,
) -> Any:
    """A field whose default is ``gagebench.yaml``'s value at ``dotted`` and whose
    description is the file's comment there; ``constraints`` are pydantic's (ge, le...).

    ``decides_results``: the setting decides a run's results (:func:`result_keys`).
    """
    extra: dict[str, Any] = dict(json_schema_extra or {})
    if decides_results:
        extra[DECIDES_RESULTS] = True
    value = default(dotted)
    kwargs: dict[str, Any] = {"description": help_text(dotted) or None, **constraints}
    if isinstance(value, dict | list):
        kwargs["default_factory"] = lambda: default(dotted)
        extra.setdefault("default", value)  # pydantic leaves a factory's value out
    else:
        kwargs["default"] = value
    if extra:  # given as None, it would drop the type's own (a FreeMapping's null)
        kwargs["json_schema_extra"] = extra
    return Field(**kwargs)


def fail(text: str, sub: str = "", closest: tuple[str, ...] = ()) -> PydanticCustomError:
    """A validation error whose message is ``text`` as written (``sub``: a key below the
    field, added to the dotted name; ``closest``: keys below it the input likely meant,
    suggested by their dotted names)."""
    ctx = {"text": text, "sub": sub, "closest": ",".join(closest)}
    return PydanticCustomError("gagebench", "{text}", ctx)


def _mapping_or_empty(value: Any) -> Any:
    """None -> {}; any Mapping -> a plain dict (frozen settings given back from Python)."""
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return dict(value)
    return value


def _list_of(value: Any) -> Any:
    """A tuple given from Python is a list."""
    return list(value) if isinstance(value, tuple) else value


#: The JSON Schema of a mapping that may be given as null (read as {}): the schema accepts
#: what validation accepts (an empty ``storage_options:`` in YAML is null).
NULL_IS_EMPTY: dict[str, Any] = {"type": ["object", "null"]}
#: A free-form mapping (fsspec storage options...): kept exactly as written; null is {}.
FreeMapping = Annotated[
    dict[Any, Any],
    BeforeValidator(_mapping_or_empty),
    Expect("a mapping"),
    Field(json_schema_extra=NULL_IS_EMPTY),
]
#: A free-form mapping that must be given as one (a backend's ``env``, ``cluster_options``).
GivenMapping = Annotated[dict[Any, Any], Expect("a mapping")]


def not_text(value: Any, what: str) -> str:
    """Why a name YAML read as another type (``null``, ``yes``/``no``/``on``, ``010``, a
    date) is refused: its text would not be the name written."""
    return (
        f"the {what} {value!r} was read as {type(value).__name__}, not text (YAML reads "
        "null, yes/no/on/off, 010 and dates that way): quote it"
    )


class Section(BaseModel):
    """A section of settings: unknown keys refused, values type-checked strictly (a
    ``"3"`` is not 3, ``true`` is not 1), frozen once validated."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


# -- stores --------------------------------------------------------------------------------

_CROSSWALK_EXAMPLE = (
    "{url: <CSV/Parquet>, gage: <column>, feature: <column>} or "
    "{gage_variable: <variable>, feature_variable: <variable>}"
)
_NAME_FIELD = Annotated[str, Field(min_length=1, pattern=r"\S"), Expect("a name")]


class CrosswalkTable(Section):
    """A gage -> feature crosswalk table (CSV or Parquet) at a URL."""

    url: _NAME_FIELD = Field(description="The table's URL (CSV or Parquet, any fsspec URL).")
    gage: _NAME_FIELD = Field(description="The column of gage ids.")
    feature: _NAME_FIELD = Field(description="The column of the store's feature ids.")
    storage_options: FreeMapping = Field(
        default_factory=dict, description="fsspec storage options of the table."
    )


class CrosswalkVariables(Section):
    """A gage -> feature crosswalk held by two variables of the store itself."""

    gage_variable: _NAME_FIELD = Field(description="The variable of gage ids.")
    feature_variable: _NAME_FIELD = Field(description="The variable of feature ids.")


def _crosswalk_shape(raw: Any) -> Any:
    """The two crosswalk layouts, named in the error when neither fits."""
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise fail(f"expected {_CROSSWALK_EXAMPLE}, got {raw!r}")
    keys = set(raw)
    table = set(CrosswalkTable.model_fields)
    names: tuple[str, ...]
    if keys <= table and {"url", "gage", "feature"} <= keys:
        names = ("url", "gage", "feature")
        opts = raw.get("storage_options") or {}
        if not isinstance(opts, Mapping):
            raise fail("expected a mapping", "storage_options")
        raw = {**raw, "storage_options": dict(opts)}
    elif keys == set(CrosswalkVariables.model_fields):
        names = ("gage_variable", "feature_variable")
    else:
        raise fail(f"expected {_CROSSWALK_EXAMPLE}, got keys {sorted(keys)}", "", _closest(keys))
    for name in names:
        value = raw[name]
        if not isinstance(value, str) or not value.strip():
            raise fail(f"expected a name, got {value!r}", name)
    return dict(raw)


def _closest(keys: set[Any]) -> tuple[str, ...]:
    """The crosswalk keys meant by those neither layout has (typos)."""
    valid = sorted({*CrosswalkTable.model_fields, *CrosswalkVariables.model_fields})
    return tuple(
        match
        for key in sorted(map(str, keys))
        if key not in valid
        for match in difflib.get_close_matches(key, valid, n=1)
    )


#: The built-in engines that read one store URL (a list of URLs is refused for them).
ONE_URL_ENGINES = ("zarr", "reference")


class StoreSettings(Section):
    """One store: where it is, which variable, and how to read it."""

    # the JSON Schema of the rule _lists_for_engines_of_files checks (editors flag it too)
    model_config = ConfigDict(
        json_schema_extra={
            "if": {"properties": {"url": {"type": "array"}}, "required": ["url"]},
            "then": {
                "properties": {
                    "url": {"minItems": 1},
                    "engine": {"not": {"enum": list(ONE_URL_ENGINES)}},
                },
                "required": ["engine"],
            },
        }
    )

    url: Annotated[
        Annotated[str, Field(pattern=r"\S")] | list[Annotated[str, Field(pattern=r"\S")]] | None,
        Expect("a URL string (a list of URLs with engine: netcdf)"),
    ] = setting("observed.url")
    engine: Annotated[str, Field(min_length=1), Expect("the name of a store engine")] = setting(
        "observed.engine"
    )
    variable: Annotated[str, Expect("a variable name")] = setting(
        "observed.variable", json_schema_extra={"type": ["string", "null"]}
    )
    storage_options: FreeMapping = setting("observed.storage_options")
    consolidated: Annotated[bool | None, Expect("true, false or null")] = setting(
        "observed.consolidated"
    )
    units: Annotated[str | None, Expect("a units string")] = setting("observed.units")
    crosswalk: CrosswalkTable | CrosswalkVariables | None = setting("observed.crosswalk")

    @model_validator(mode="before")
    @classmethod
    def _url_alone(cls, raw: Any) -> Any:
        """A URL string alone is a store of that URL."""
        if isinstance(raw, str):
            return {"url": raw}
        if not isinstance(raw, Mapping):
            raise fail(f"expected a mapping with 'url' (or a URL string), got {raw!r}")
        return dict(raw)

    @model_validator(mode="after")
    def _lists_for_engines_of_files(self) -> StoreSettings:
        """A list of URLs is a list of files: ``zarr`` and ``reference`` read one store
        each, so they refuse it; ``netcdf`` (and a plugin engine) gets the list."""
        if isinstance(self.url, list):
            if self.engine in ONE_URL_ENGINES:
                raise fail(
                    f"expected a URL string (engine: {self.engine} reads one store; a list "
                    f"of NetCDF files needs engine: netcdf), got {self.url!r}",
                    "url",
                )
            if not self.url:
                raise fail("expected a non-empty list of URL strings, got []", "url")
        return self

    @field_validator("variable", mode="before")
    @classmethod
    def _variable_default(cls, value: Any) -> Any:
        """null or "": the default variable; anything else must be a name (``false``
        or ``0`` is a mistake, not the default)."""
        return default("observed.variable") if value is None or value == "" else value

    @field_validator("crosswalk", mode="before")
    @classmethod
    def _crosswalk(cls, value: Any) -> Any:
        return _crosswalk_shape(value)


# -- published baselines -------------------------------------------------------------------

_URL_FIELD = Annotated[str, Field(min_length=1, pattern=r"\S")]


class BaselineSettings(Section):
    """One published baseline (``baselines.<NAME>``): where its scores are, and which of
    the run's models it is compared with."""

    url: Annotated[
        _URL_FIELD | Annotated[list[_URL_FIELD], Field(min_length=1)],
        Expect("a URL (table or CATALOG_URL#ENTRY) or a non-empty list of them"),
    ] = Field(
        description="A CSV/Parquet table in HyTEST's layout, CATALOG_URL#ENTRY of an intake "
        "catalog, or a list of them (one model's standard suite and D-score)."
    )
    storage_options: FreeMapping = Field(
        default_factory=dict,
        description="fsspec options of the baseline's URLs (the run's are not used).",
    )
    uncertainty: Annotated[str | None, Expect("a URL or null")] = Field(
        default=None, description="The baseline's KGE-uncertainty table (gumboot layout)."
    )
    model: Annotated[str | None, Expect("a model name of the run or null")] = Field(
        default=None, description="The run's model compared with it (default: each model)."
    )

    @model_validator(mode="before")
    @classmethod
    def _url_alone(cls, raw: Any) -> Any:
        """A URL string alone is a baseline of that URL."""
        if isinstance(raw, str):
            return {"url": raw}
        if not isinstance(raw, Mapping):
            raise fail(f"expected a mapping with 'url' (or a URL string), got {raw!r}")
        if "url" in raw and raw["url"] is None:
            raise fail("expected a URL (table or CATALOG_URL#ENTRY), got None", "url")
        return dict(raw)


# -- sections of their own -----------------------------------------------------------------


class RetrySettings(Section):
    """``retries``: the one retry layer of every object-store request, and of batches."""

    max_attempts: int = setting("retries.max_attempts", ge=1)
    max_wait_s: Annotated[float, Expect("a number of seconds >= 0")] = setting(
        "retries.max_wait_s", ge=0
    )
    batch_attempts: int = setting("retries.batch_attempts", ge=1)


class IntegritySettings(Section):
    """``integrity``: what is checked before a store's bytes are decoded."""

    require_verified: bool = setting("integrity.require_verified")
    etag_md5: bool = setting("integrity.etag_md5")


class UncertaintySettings(Section):
    """``uncertainty``: the sampling uncertainty suite (gumboot's bootjack())."""

    n_samples: int = setting("uncertainty.n_samples", decides_results=True, ge=2, le=1_000_000)
    seed: int | None = setting("uncertainty.seed", decides_results=True, ge=0, le=2**63 - 1)
    water_year_month: int = setting(
        "uncertainty.water_year_month", decides_results=True, ge=1, le=13
    )
    min_days: int = setting("uncertainty.min_days", decides_results=True, ge=0, le=366)
    min_years: int = setting("uncertainty.min_years", decides_results=True, ge=2)


class ClusterSettings(BaseModel):
    """``cluster``: the backend, and one section of settings per backend (each validated by
    that backend's own ``Settings`` model, :class:`gagebench.clusters.ClusterBackend`)."""

    model_config = ConfigDict(extra="allow", strict=True, frozen=True)

    backend: Annotated[str, Expect("the name of a cluster backend")] = setting("cluster.backend")

    @model_validator(mode="before")
    @classmethod
    def _sections(cls, raw: Any) -> Any:
        raw = _mapping_or_empty(raw)
        if not isinstance(raw, dict):
            raise fail(f"expected a mapping, got {raw!r}")
        for name, section in raw.items():
            if name != "backend" and not (section is None or isinstance(section, Mapping)):
                raise fail(
                    f"expected a mapping of that backend's settings, got {section!r}", str(name)
                )
        return raw

    def sections(self) -> dict[str, dict[str, Any]]:
        """Each backend section as given (``{}`` for a null one), by backend name."""
        return {name: dict(value or {}) for name, value in (self.model_extra or {}).items()}


# -- the run file --------------------------------------------------------------------------

#: The suite names a run file accepts: ``gagebench.metrics.registry.SUITES`` (kept equal
#: by test_metrics_registry.py; this module stays a leaf, without the metrics package).
Suite = Literal["standard", "dscore", "kge", "errors", "benchmark", "uncertainty"]
#: The breakdowns of ``by`` (``gagebench.metrics.breakdown.GROUPINGS``).
Grouping = Literal["season", "month", "water_year"]


#: A user metric's import path (``gagebench.metrics.user.PATH_PATTERN``; schema imports
#: nothing of gagebench's stages, so the pattern is written here too).
USER_METRIC_PATH = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$"


def _suites(value: Any) -> Any:
    """A comma-separated string or a tuple is a list."""
    if isinstance(value, str):
        return [s.strip() for s in value.split(",") if s.strip()]
    return _list_of(value)


class RunSettings(Section):
    """Every setting of a run (a run file's ``gagebench:`` section)."""

    run_id: Annotated[str | None, Expect("a run id")] = setting(
        "run_id",
        # "" is unset (the hash); a name does not start with a symbol once filled in
        json_schema_extra={
            "pattern": r"^(([A-Za-z0-9]|\{hash\}|\{time\})([A-Za-z0-9._-]|\{hash\}|\{time\})*)?$"
        },
    )
    output: Annotated[str, Field(pattern=r"\S"), Expect("a URL or path")] = setting("output")
    gages: Annotated[str, Field(min_length=1), Expect("'builtin' or a URL")] = setting(
        "gages", decides_results=True
    )
    gage_limit: Annotated[int | None, Expect("null or a positive integer")] = setting(
        "gage_limit", decides_results=True, ge=1
    )
    observed: StoreSettings | None = Field(
        default=None, description=help_text("observed"), json_schema_extra={DECIDES_RESULTS: True}
    )
    models: Annotated[
        dict[str, StoreSettings],
        BeforeValidator(_mapping_or_empty),
        Expect("a mapping"),
        Field(json_schema_extra=NULL_IS_EMPTY),
    ] = setting("models", decides_results=True)
    storage_options: FreeMapping = setting("storage_options")
    suites: Annotated[
        list[Suite],
        BeforeValidator(_suites),
        Field(min_length=1),
        Expect(f"a non-empty list of {list(get_args(Suite))}"),
    ] = setting("suites", decides_results=True)  # a suite named twice runs once
    metrics: Annotated[
        list[Annotated[str, Field(pattern=USER_METRIC_PATH)]],
        Expect("a list of user metrics as 'package.module:function'"),
    ] = setting("metrics", decides_results=True)
    mode: Literal["standard", "hytest"] = setting("mode", decides_results=True)
    batch_size: int = setting("batch_size", decides_results=True, ge=1, le=100_000)
    min_paired_days: Annotated[
        int, Expect("an integer of at least 2 (days with both observed and simulated flow)")
    ] = setting("min_paired_days", decides_results=True, ge=2)
    by: Annotated[
        list[Grouping],
        BeforeValidator(_list_of),
        Expect("a list of ['season', 'month', 'water_year'] (or [])"),
    ] = setting("by", decides_results=True)  # a grouping named twice is computed once
    report: bool = setting("report")
    report_gages: Annotated[
        list[Annotated[str, Field(pattern=r"\S")]] | None,
        Expect("null or a list of gage ids, e.g. ['01013500']"),
    ] = setting("report_gages")
    baselines: Annotated[
        dict[str, BaselineSettings],
        BeforeValidator(_mapping_or_empty),
        Expect("a mapping"),
        Field(json_schema_extra=NULL_IS_EMPTY),
    ] = setting("baselines")  # compared after the commit: they decide nothing of the results
    progress: bool = setting("progress")
    log_format: Literal["text", "json"] = setting("log_format")
    retries: RetrySettings = Field(default_factory=RetrySettings, description=help_text("retries"))
    integrity: IntegritySettings = Field(
        default_factory=IntegritySettings, description=help_text("integrity")
    )
    cluster: ClusterSettings = Field(
        default_factory=ClusterSettings, description=help_text("cluster")
    )
    uncertainty: UncertaintySettings = Field(
        default_factory=UncertaintySettings,
        description=help_text("uncertainty"),
        json_schema_extra={DECIDES_RESULTS: True},
    )

    @field_validator("models", mode="before")
    @classmethod
    def _models(cls, value: Any) -> Any:
        """Model names are folder names, kept as written; each model has a URL."""
        value = _mapping_or_empty(value)
        if not isinstance(value, dict):
            return value
        for name, spec in value.items():
            if not isinstance(name, str):
                raise fail(not_text(name, "model name"))
            if not NAME.match(name):
                raise fail(f"expected {MODEL_NAMES}, got {name!r}")
            if spec is None or (isinstance(spec, Mapping) and spec.get("url") is None):
                raise fail("expected a URL string, got None", f"{name}.url")
        return value

    @field_validator("baselines", mode="before")
    @classmethod
    def _baselines(cls, value: Any) -> Any:
        """Baseline names are model names (model B of each comparison), kept as written."""
        value = _mapping_or_empty(value)
        if isinstance(value, dict):
            for name in value:
                if not isinstance(name, str):
                    raise fail(not_text(name, "baseline name"))
                if not NAME.match(name):
                    raise fail(f"expected baseline names of {NAME_RULE}, got {name!r}")
        return value

    @field_validator("run_id", mode="before")
    @classmethod
    def _run_id_text(cls, value: Any) -> Any:
        if value is not None and not isinstance(value, str):
            raise fail(not_text(value, "run id"))
        return value


# -- the one definition of "settings that decide the results" ------------------------------


def result_keys() -> tuple[str, ...]:
    """The run settings that decide a run's results, in schema order: the default run id
    hashes them, a run folder refuses to resume or report under others, and the manifest
    records them (:mod:`gagebench.results.settings`)."""
    return tuple(name for name, info in RunSettings.model_fields.items() if _decides_results(info))


def _decides_results(info: FieldInfo) -> bool:
    extra = info.json_schema_extra
    return isinstance(extra, dict) and bool(extra.get(DECIDES_RESULTS))


#: Store settings that do not decide results: how a store is reached, not what it holds.
STORE_ACCESS_KEYS = ("storage_options",)


# -- validation with gagebench's messages ---------------------------------------------------

M = TypeVar("M", bound=BaseModel)


def validated(model: type[M], raw: Any, key: str) -> M:
    """``raw`` validated as ``model``, the section at dotted ``key`` (``""``: the run file),
    or a :class:`ConfigError` naming the first invalid setting (unknown keys first)."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(message(model, exc, key)) from None


def message(model: type[BaseModel], exc: ValidationError, key: str) -> str:
    """One line for ``exc``: unknown keys (all at the first place they occur, with the
    valid keys and the closest match), else the first invalid value and what it accepts."""
    errors = exc.errors(include_url=False)
    unknown = [e for e in errors if e["type"] == "extra_forbidden"]
    if unknown:
        depth = min(len(e["loc"]) for e in unknown)
        parent = next(tuple(e["loc"][:-1]) for e in unknown if len(e["loc"]) == depth)
        names = [str(e["loc"][-1]) for e in unknown if tuple(e["loc"][:-1]) == parent]
        return _unknown(model, parent, names, key)
    error = errors[0]
    loc, info = _resolve(model, list(error["loc"]))
    ctx = error.get("ctx") or {}
    if error["type"] == "gagebench":
        where = _dotted(key, *loc, *([ctx["sub"]] if ctx.get("sub") else []))
        closest = [f"gagebench.{where}.{c}" for c in ctx.get("closest", "").split(",") if c]
        hint = f" (did you mean {', '.join(closest)}?)" if closest else ""
        return f"gagebench.{where}: {ctx['text']}{hint}"
    expected = expected_of(info) if info is not None else error["msg"].lower()
    return f"gagebench.{_dotted(key, *loc)}: expected {expected}, got {error['input']!r}"


def _resolve(model: type[BaseModel], parts: list[Any]) -> tuple[list[str], FieldInfo | None]:
    """The dotted location of an error (names of settings and of models' entries) and the
    field it is in. pydantic's location also names the member of a union it tried and
    list items: the setting named is then the union or the list itself."""
    loc: list[str] = []
    info: FieldInfo | None = None
    current: type[BaseModel] | None = model
    i = 0
    while i < len(parts) and current is not None:
        field = current.model_fields.get(str(parts[i]))
        if field is None:
            break  # a union member's tag, a list index, a free-form mapping's key
        loc.append(str(parts[i]))
        info = field
        inner = _inner_models(field.annotation)
        current = inner[0] if len(inner) == 1 else None
        if current is not None and _is_mapping_of_models(field.annotation) and i + 1 < len(parts):
            i += 1
            loc.append(str(parts[i]))  # models.<name>
        i += 1
    return loc, info


def _is_mapping_of_models(annotation: Any) -> bool:
    return get_origin(annotation) is dict or any(
        get_origin(a) is dict for a in get_args(annotation)
    )


def _dotted(*parts: str) -> str:
    return ".".join(p for p in parts if p)


def _unknown(model: type[BaseModel], parent: tuple[Any, ...], names: list[str], key: str) -> str:
    loc, _ = _resolve(model, list(parent))
    where = _dotted(key, *loc)
    target = _model_at(model, loc)
    valid = sorted(target.model_fields) if target is not None else []
    prefix = f"gagebench.{where}." if where else "gagebench."
    text = f"unknown setting(s) {prefix}{f', {prefix}'.join(names)}"
    if valid:
        text += f"; valid keys are: {', '.join(valid)}"
    close = [m for n in names for m in difflib.get_close_matches(n, valid, n=1)]
    if close:
        text += f" (did you mean {', '.join(prefix + c for c in close)}?)"
    return text


def _inner_models(annotation: Any) -> list[type[BaseModel]]:
    """The models an annotation holds (``X | None``, ``dict[str, X]``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in get_args(annotation):
        found += _inner_models(arg)
    return found


def _model_at(model: type[BaseModel], loc: list[str]) -> type[BaseModel] | None:
    """The model of the section at ``loc`` under ``model`` (None: a free-form part)."""
    current: type[BaseModel] | None = model
    i = 0
    while current is not None and i < len(loc):
        info = current.model_fields.get(loc[i])
        if info is None:
            return None
        inner = _inner_models(info.annotation)
        if not inner:
            return None
        i += 2 if _is_mapping_of_models(info.annotation) else 1  # models.<name>: the name
        current = inner[0]
    return current


def expected_of(info: FieldInfo) -> str:
    """What a field accepts, in words (its :class:`Expect`, else from type and bounds)."""
    for meta in info.metadata:
        if isinstance(meta, Expect):
            return meta.text
    bounds: dict[str, Any] = {}
    for meta in info.metadata:
        for name in ("ge", "gt", "le"):
            if getattr(meta, name, None) is not None:
                bounds[name] = getattr(meta, name)
    return _words(info.annotation, bounds)


def _words(annotation: Any, bounds: dict[str, Any]) -> str:
    args = get_args(annotation)
    if get_origin(annotation) is Literal:
        return f"one of {list(args)}"
    if type(None) in args:
        rest = [a for a in args if a is not type(None)]
        inner = _words(rest[0], bounds) if len(rest) == 1 else "a value"
        return f"null or {inner}"
    if annotation is bool:
        return "true or false"
    if annotation in (int, float):
        noun = "an integer" if annotation is int else "a number"
        lo, hi = bounds.get("ge"), bounds.get("le")
        if lo is not None and hi is not None:
            return f"{noun} between {lo} and {hi}"
        if lo is not None:
            return f"{noun} >= {lo}"
        if "gt" in bounds:
            return f"{noun} > {bounds['gt']}"
        return noun
    if annotation is str:
        return "a string"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "a mapping"
    return "a value of another type"
