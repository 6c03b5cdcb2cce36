"""The run file's JSON Schema, and the Helm chart's section of it, from the settings schema.

Both are generated from :mod:`gagebench.schema` (the run settings) and the built-in
cluster backends' ``Settings`` models, never written by hand:

- :func:`run_file_schema`: a whole run file (the top-level ``gagebench:`` key), printed by
  ``gagebench config-schema``; editors validate and complete run files with it through a
  ``# yaml-language-server: $schema=...`` line. A backend section the schema does not
  know (a plugin backend's) is allowed here and checked by that backend when it loads;
- :func:`chart_config_schema`: the ``config`` section of the Helm chart's
  ``values.schema.json`` (draft-07, every reference inlined, the backends the chart can
  run), written by ``gagebench config-schema --write-chart-schema`` and checked against
  the file by a test.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from gagebench import schema
from gagebench.clusters import BACKENDS, backend_class
from gagebench.defaults import help_text
from gagebench.errors import GagebenchError

#: Where the docs site publishes the run file's schema (the examples point to it).
SCHEMA_URL = "https://gagebench.github.io/gagebench/schema/run-file.json"
#: The backends the Helm chart runs (``cluster.kubernetes`` is filled in by the chart).
CHART_BACKENDS = ("kubernetes", "local", "address")
#: Top-level settings the chart's values must give.
CHART_REQUIRED = ("output", "observed", "models", "cluster")

_STORE = "#/$defs/StoreSettings"


def builtin_backends() -> dict[str, Any]:
    """Backend name -> its class, for the built-in backends that have settings."""
    out = {}
    for name in BACKENDS:
        try:
            cls = backend_class(name)
        except GagebenchError:  # a backend that cannot load has no schema here
            continue
        if cls.Settings.model_fields:
            out[name] = cls
    return out


def settings_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12, with ``$defs``) of the ``gagebench:`` section."""
    body = schema.RunSettings.model_json_schema(ref_template="#/$defs/{model}")
    defs = body.pop("$defs", {})
    cluster = body["properties"]["cluster"]
    cluster_def = defs.pop("ClusterSettings")
    sections: dict[str, Any] = {}
    for name, cls in builtin_backends().items():
        section = cls.Settings.model_json_schema(ref_template="#/$defs/{model}")
        defs.update(section.pop("$defs", {}))
        section["description"] = help_text(f"cluster.{name}") or section.get("description")
        section["type"] = ["object", "null"]  # an empty section (null) is its defaults
        sections[name] = section
    cluster_def["properties"]["backend"]["examples"] = list(BACKENDS)
    cluster_def["properties"].update(sections)
    cluster_def["additionalProperties"] = {
        "type": ["object", "null"],
        "description": "the section of a plugin backend (checked by that backend)",
    }
    cluster.pop("$ref")
    cluster.update({k: v for k, v in cluster_def.items() if k != "description"})
    cluster["type"] = ["object", "null"]  # null: the defaults, as validation reads it
    body["$defs"] = defs
    models = body["properties"]["models"]
    models["propertyNames"] = {"pattern": schema.NAME.pattern.replace("\\Z", "$")}
    _walk(body, _tidy)
    # a store may be given as its URL alone (observed: s3://...)
    url_alone = {"type": "string", "minLength": 1, "pattern": r"\S"}
    # a model's store needs its URL (observed may leave it for the command line)
    with_url = {"required": ["url"], "properties": {"url": {"not": {"type": "null"}}}}
    models["additionalProperties"] = {"anyOf": [{"allOf": [{"$ref": _STORE}, with_url]}, url_alone]}
    observed = body["properties"]["observed"]
    observed["anyOf"] = [{"$ref": _STORE}, url_alone, {"type": "null"}]
    # a baseline may be given as its URL alone too; its name is a model name (model B)
    baselines = body["properties"]["baselines"]
    baselines["propertyNames"] = {"pattern": schema.NAME.pattern.replace("\\Z", "$")}
    baselines["additionalProperties"] = {"anyOf": [{"$ref": "#/$defs/BaselineSettings"}, url_alone]}
    _suites_as_text(body["properties"]["suites"])
    return body


def _suites_as_text(suites: dict[str, Any]) -> None:
    """``suites`` may also be one comma-separated string (``standard,dscore``), as
    ``--set`` and ``DASK_GAGEBENCH__SUITES`` give it; validation reads it as a list."""
    names = "|".join(suites["items"]["enum"])
    # items and minItems judge a list, pattern a string: each error keeps its place
    suites["type"] = ["array", "string"]
    suites["pattern"] = rf"^\s*({names})\s*(,\s*({names})\s*)*,?\s*$"


def run_file_schema() -> dict[str, Any]:
    """The JSON Schema of a whole run file: its settings under ``gagebench:``."""
    settings = settings_schema()
    defs = settings.pop("$defs")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_URL,
        "title": "gagebench run file",
        "description": (
            "Settings of a gagebench run (gagebench run --config FILE). Defaults and help "
            "come from the packaged gagebench.yaml; generated by gagebench config-schema."
        ),
        "type": "object",
        "additionalProperties": False,
        "required": ["gagebench"],
        "properties": {"gagebench": settings},
        "$defs": defs,
    }


def chart_config_schema() -> dict[str, Any]:
    """The ``config`` section of the chart's ``values.schema.json`` (draft-07, inlined)."""
    settings = settings_schema()
    defs = settings.pop("$defs")
    inlined = _inline(settings, defs)
    _walk(inlined, _chart_tidy)
    cluster = inlined["properties"]["cluster"]
    cluster["properties"] = {
        "backend": {
            "type": "string",
            "enum": list(CHART_BACKENDS),
            "description": cluster["properties"]["backend"].get("description", ""),
        },
        **{
            name: section
            for name, section in cluster["properties"].items()
            if name in CHART_BACKENDS and name != "kubernetes"
        },
    }
    cluster["additionalProperties"] = False
    cluster["required"] = ["backend"]
    cluster["type"] = "object"
    inlined["required"] = list(CHART_REQUIRED)
    inlined["description"] = (
        "The run configuration (gagebench.yaml's keys), GENERATED from gagebench's settings "
        "schema by `gagebench config-schema --write-chart-schema`: do not edit by hand"
    )
    return inlined


def write_chart_schema(path: Path) -> bool:
    """Write :func:`chart_config_schema` as ``properties.config`` of the chart's
    ``values.schema.json`` at ``path`` (the rest kept); True when the file changed."""
    text = path.read_text()
    values = json.loads(text)
    values["properties"]["config"] = chart_config_schema()
    new = json.dumps(values, indent=2) + "\n"
    if new != text:
        path.write_text(new)
    return new != text


# -- tidying pydantic's output ------------------------------------------------------------


def _walk(node: Any, visit: Any) -> None:
    if isinstance(node, dict):
        visit(node)
        for value in node.values():
            _walk(value, visit)
    elif isinstance(node, list):
        for value in node:
            _walk(value, visit)


def _tidy(node: dict[str, Any]) -> None:
    """No generated titles; a store may be given as its URL alone."""
    if isinstance(node.get("title"), str) and "properties" not in node:
        node.pop("title")
    if isinstance(node.get("properties"), dict):
        node.pop("title", None)
    if node.get("additionalProperties") is True:
        node["additionalProperties"] = {}


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    """``node`` with every ``$ref`` to ``#/$defs/X`` replaced by a copy of X."""
    if isinstance(node, dict):
        if "$ref" in node:
            target = _inline(copy.deepcopy(defs[node["$ref"].rsplit("/", 1)[-1]]), defs)
            rest = {k: _inline(v, defs) for k, v in node.items() if k != "$ref"}
            return {**target, **rest}
        return {k: _inline(v, defs) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline(v, defs) for v in node]
    return node


def _chart_tidy(node: dict[str, Any]) -> None:
    """Draft-07 for Helm: no 2020-12 keywords, no gagebench markers."""
    for key in [k for k in node if k.startswith("x-")]:
        node.pop(key)
    node.pop("examples", None)
    if node.get("additionalProperties") == {}:
        node.pop("additionalProperties")
