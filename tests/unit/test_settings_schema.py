"""One typed settings schema (``gagebench.schema``): each key declared once, and from it
the validation, ``gagebench config-schema`` (checked with the ``jsonschema`` library on
every example and on bad files), the chart's ``values.schema.json`` section, the one
definition of the settings that decide the results, and every default read from
``gagebench.yaml``."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar

import jsonschema
import pytest
import yaml
from pydantic import Field

import gagebench
from gagebench import schema
from gagebench.clusters import BACKENDS, ClusterBackend, backend_class
from gagebench.config import RESULT_KEYS, RunConfig, load_config, result_settings
from gagebench.defaults import DEFAULTS_FILE, PACKAGED_DEFAULTS, default
from gagebench.errors import ConfigError
from gagebench.runfile import chart_config_schema, run_file_schema

ROOT = Path(__file__).resolve().parents[2]
SRC = Path(gagebench.__file__).parent
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
CHART_SCHEMA = ROOT / "helm" / "gagebench" / "values.schema.json"
_SCRIPT = Path(sys.executable).with_name("gagebench")
GAGEBENCH = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "gagebench.cli"]


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(SRC.parent)}
    return subprocess.run(
        [*GAGEBENCH, *args], capture_output=True, text=True, timeout=120, env=env, cwd=cwd
    )


@pytest.fixture(scope="module")
def printed_schema() -> dict[str, Any]:
    """The schema as ``gagebench config-schema`` prints it (the real entry point)."""
    result = _cli("config-schema")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    printed: dict[str, Any] = json.loads(result.stdout)
    jsonschema.Draft202012Validator.check_schema(printed)
    return printed


def _errors(printed: dict[str, Any], document: Any) -> list[str]:
    validator = jsonschema.Draft202012Validator(printed)
    return ["/".join(map(str, e.absolute_path)) for e in validator.iter_errors(document)]


def test_config_schema_is_the_generated_one(printed_schema: dict[str, Any]) -> None:
    assert printed_schema == run_file_schema()
    assert printed_schema["required"] == ["gagebench"]
    settings = printed_schema["properties"]["gagebench"]["properties"]
    assert set(settings) == set(schema.RunSettings.model_fields)
    assert settings["batch_size"]["default"] == PACKAGED_DEFAULTS["batch_size"]
    assert settings["batch_size"]["description"].startswith("Gages per Dask task")


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_config_schema_accepts_every_example(printed_schema: dict[str, Any], path: Path) -> None:
    first = path.read_text().splitlines()[0]
    assert first == "# yaml-language-server: $schema=" + printed_schema["$id"], path.name
    assert _errors(printed_schema, yaml.safe_load(path.read_text())) == []


def test_config_schema_accepts_the_packaged_defaults(printed_schema: dict[str, Any]) -> None:
    assert _errors(printed_schema, yaml.safe_load(DEFAULTS_FILE.read_text())) == []


#: Bad run files: where the schema points, and what gagebench's own validation says.
BAD = [
    ({"colour": "red"}, "gagebench", "unknown setting(s) gagebench.colour"),
    ({"batch_size": "many"}, "gagebench/batch_size", "gagebench.batch_size: expected an"),
    ({"batch_size": 0}, "gagebench/batch_size", "between 1 and 100000, got 0"),
    ({"mode": "fast"}, "gagebench/mode", "gagebench.mode: expected one of"),
    ({"suites": ["standard", "nse"]}, "gagebench/suites/1", "gagebench.suites: expected"),
    ({"report": "yes"}, "gagebench/report", "gagebench.report: expected true or false"),
    (
        {"observed": {"url": "s3://b/o.zarr", "varable": "q"}},
        "gagebench/observed",
        "did you mean gagebench.observed.variable?",
    ),
    ({"models": {"a b": "s3://b/m.zarr"}}, "gagebench/models", "expected model names of"),
    ({"uncertainty": {"n_samples": 1}}, "gagebench/uncertainty/n_samples", "uncertainty.n_"),
    ({"retries": {"max_wait": 5}}, "gagebench/retries", "unknown setting(s) gagebench.retr"),
    (
        {"cluster": {"local": {"nworkers": 2}}},
        "gagebench/cluster/local",
        "unknown setting(s) gagebench.cluster.local.nworkers",
    ),
    (
        {"cluster": {"address": {"timeout": 0}}},
        "gagebench/cluster/address/timeout",
        "gagebench.cluster.address.timeout: expected seconds > 0, got 0",
    ),
]


@pytest.mark.parametrize(("settings", "where", "message"), BAD)
def test_config_schema_and_validation_refuse_the_same_bad_files(
    printed_schema: dict[str, Any], settings: dict[str, Any], where: str, message: str
) -> None:
    assert where in _errors(printed_schema, {"gagebench": settings})
    from gagebench.clusters import check_settings

    with pytest.raises(ConfigError) as refused:
        check_settings(load_config(output="/out", **settings), cluster=False)
    assert message in str(refused.value)


def test_config_schema_refuses_a_file_without_the_gagebench_key(
    printed_schema: dict[str, Any],
) -> None:
    assert _errors(printed_schema, {"output": "/out"}) != []
    assert _errors(printed_schema, {"gagebench": {"output": "/o"}, "extra": 1}) != []


def test_a_plugin_backend_section_is_allowed_by_the_run_file_schema(
    printed_schema: dict[str, Any],
) -> None:
    document = {"gagebench": {"cluster": {"backend": "pkg.mod:Cls", "mine": {"x": 1}}}}
    assert _errors(printed_schema, document) == []


# -- the chart's section -------------------------------------------------------------------


def test_the_chart_values_schema_section_is_the_generated_one() -> None:
    written = json.loads(CHART_SCHEMA.read_text())["properties"]["config"]
    assert written == chart_config_schema(), (
        "helm/gagebench/values.schema.json's config section is out of date: run "
        "gagebench config-schema --write-chart-schema helm/gagebench/values.schema.json"
    )
    assert "$ref" not in json.dumps(written)  # draft-07 for Helm, every reference inlined
    assert written["properties"]["cluster"]["properties"]["backend"]["enum"] == [
        "kubernetes",
        "local",
        "address",
    ]


def test_write_chart_schema_restores_a_stale_section(tmp_path: Path) -> None:
    values = json.loads(CHART_SCHEMA.read_text())
    values["properties"]["config"]["properties"].pop("batch_size")
    stale = tmp_path / "values.schema.json"
    stale.write_text(json.dumps(values, indent=2) + "\n")
    result = _cli("config-schema", "--write-chart-schema", str(stale))
    assert result.returncode == 0, result.stderr
    assert "updated" in result.stdout
    assert stale.read_text() == CHART_SCHEMA.read_text()
    again = _cli("config-schema", "--write-chart-schema", str(stale))
    assert "up to date" in again.stdout


def test_write_chart_schema_names_a_missing_file(tmp_path: Path) -> None:
    result = _cli("config-schema", "--write-chart-schema", str(tmp_path / "none.json"))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "none.json" in result.stderr
    assert "values.schema.json" in result.stderr


# -- one declaration -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "section"),
    [
        (schema.RunSettings, ""),
        (schema.StoreSettings, "observed."),
        (schema.RetrySettings, "retries."),
        (schema.IntegritySettings, "integrity."),
        (schema.UncertaintySettings, "uncertainty."),
        *[
            (backend_class(name).Settings, f"cluster.{name}.")
            for name in BACKENDS
            if backend_class(name).Settings.model_fields
        ],
    ],
)
def test_every_key_of_gagebench_yaml_is_declared_with_its_default_and_help(
    model: Any, section: str
) -> None:
    """The schema and gagebench.yaml list the same keys; each default is the file's and
    each description is the file's comment (one place for both)."""
    packaged = default(section.rstrip(".")) if section else dict(PACKAGED_DEFAULTS)
    assert set(model.model_fields) == set(packaged), section
    for name, info in model.model_fields.items():
        assert info.description, f"{section}{name} has no help in gagebench.yaml"
        given = info.get_default(call_default_factory=True)
        if isinstance(given, schema.BaseModel) or name == "observed":
            continue  # a section of its own (observed: a store only once its url is set)
        assert given == packaged[name], f"{section}{name}"


def test_run_config_holds_exactly_the_declared_settings() -> None:
    """RunConfig and StoreConfig are built from the validated models field by field."""
    from gagebench.config import Crosswalk, StoreConfig

    fields = [f.name for f in dataclasses.fields(RunConfig)]
    assert fields == list(schema.RunSettings.model_fields)
    store_fields = {f.name for f in dataclasses.fields(StoreConfig)}
    assert store_fields == set(schema.StoreSettings.model_fields)
    crosswalk_fields = {f.name for f in dataclasses.fields(Crosswalk)}
    assert crosswalk_fields == set(schema.CrosswalkTable.model_fields) | set(
        schema.CrosswalkVariables.model_fields
    )
    for f in dataclasses.fields(RunConfig):
        if f.default is not dataclasses.MISSING and f.name not in ("run_id", "observed"):
            assert f.default == PACKAGED_DEFAULTS[f.name] or (
                isinstance(f.default, tuple) and list(f.default) == PACKAGED_DEFAULTS[f.name]
            ), f.name  # suites, by: a list in the file, a tuple in the frozen config


def test_no_literal_default_outside_gagebench_yaml() -> None:
    """365 (min_paired_days) and the retry policy's 12/60/3 were written in several
    modules; now every function default and RetryPolicy read gagebench.yaml."""
    from gagebench.evaluation import evaluate
    from gagebench.pipeline import evaluate_batch
    from gagebench.storage.retry import RetryPolicy

    offenders = []
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value == 365 and type(node.value) is int:
                offenders.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert offenders == []
    assert dataclasses.asdict(RetryPolicy()) == dict(PACKAGED_DEFAULTS["retries"])
    assert inspect.signature(evaluate).parameters["min_paired_days"].default == 365
    assert inspect.signature(evaluate_batch).parameters["min_days"].default == 365
    assert (
        list(inspect.signature(evaluate).parameters["suites"].default)
        == (PACKAGED_DEFAULTS["suites"])
    )


# -- messages --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"bach_size": 3}, "(did you mean gagebench.batch_size?)"),
        ({"uncertainty": {"nsamples": 3}}, "(did you mean gagebench.uncertainty.n_samples?)"),
        ({"models": {"nwm": {"url": "/m", "unit": "cfs"}}}, "gagebench.models.nwm.units?"),
        ({"integrity": {"etag": False}}, "valid keys are: etag_md5, require_verified"),
    ],
)
def test_unknown_keys_list_the_valid_ones_and_the_closest(
    settings: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match="unknown setting") as refused:
        load_config(output="/out", **settings)
    assert message in str(refused.value)


class _ToySettings(schema.Section):
    workers: int = Field(1, ge=0, description="Workers of the toy cluster.")


class _ToyBackend(ClusterBackend):
    """A plugin backend as H5's contract has it: a Settings model, nothing else."""

    name: ClassVar[str] = "toy"
    Settings = _ToySettings


def test_a_backend_validates_its_section_through_its_settings_model() -> None:
    assert dict(_ToyBackend.defaults) == {"workers": 1}
    assert _ToyBackend.settings({"workers": 3}) == {"workers": 3}
    with pytest.raises(ConfigError, match=r"gagebench\.cluster\.toy\.workers: expected an"):
        _ToyBackend.settings({"workers": -1})
    with pytest.raises(ConfigError, match=r"did you mean gagebench\.cluster\.toy\.workers\?"):
        _ToyBackend.settings({"worker": 2})
    for name in BACKENDS:
        settings_model = backend_class(name).Settings
        assert settings_model.model_config.get("extra") == "forbid", name


# -- the settings that decide the results ---------------------------------------------------


def test_the_settings_that_decide_the_results_are_one_marker_in_the_schema() -> None:
    marked = [
        name
        for name, info in schema.RunSettings.model_fields.items()
        if (info.json_schema_extra or {}).get(schema.DECIDES_RESULTS)  # type: ignore[union-attr]
    ]
    assert list(RESULT_KEYS) == marked
    cfg = load_config(
        output="/out",
        observed="/s/o.zarr",
        models={"nwm": "/s/n.zarr"},
        suites="standard,uncertainty",
        by=["season"],
        metrics=["pkg.mod:fn"],  # like uncertainty's settings: a result setting only when set
    )
    assert list(result_settings(cfg)) == list(RESULT_KEYS)
    base = load_config(output="/out", observed="/s/o.zarr", models={"nwm": "/s/n.zarr"})
    changed = (("batch_size", 8), ("mode", "hytest"), ("min_paired_days", 30), ("by", ["month"]))
    for key, value in changed:
        assert load_config(**{**_plain(base), key: value}).run_id != base.run_id, key
    unmarked: list[tuple[str, Any]] = [
        ("report", False),
        ("log_format", "json"),
        ("storage_options", {"anon": True}),
        ("retries", {"max_attempts": 2}),
    ]
    for key, value in unmarked:
        assert load_config(**{**_plain(base), key: value}).run_id == base.run_id, key


def _plain(cfg: RunConfig) -> dict[str, Any]:
    return {
        "output": cfg.output,
        "observed": cfg.observed.url if cfg.observed else None,
        "models": {n: s.url for n, s in cfg.models.items()},
    }


def test_settings_recorded_by_an_older_version_still_match() -> None:
    """``_parts/settings.json`` and manifests written before the one definition held the
    suites sorted and no store engine: the same settings, so the run resumes."""
    from gagebench.results.settings import differences

    cfg = load_config(output="/o", observed="/s/o.zarr", models={"nwm": "/s/n.zarr"})
    now = result_settings(cfg)
    older = {**now, "suites": sorted(now["suites"])}
    assert older["suites"] != now["suites"]
    assert differences(older, now) == []
    engine = {**now, "observed": {**now["observed"], "engine": "zarr"}}
    assert differences(engine, now) == []
    assert differences({**now, "batch_size": 8}, now) == ["batch_size (8 before, 64 now)"]


def test_gagebench_run_names_a_typo_and_its_fix_in_one_line(tmp_path: Path) -> None:
    """Through the real entry point: exit 2, one line naming the key and the closest one,
    no traceback, nothing written."""
    run_file = tmp_path / "run.yaml"
    run_file.write_text(
        "# yaml-language-server: $schema=gagebench.schema.json\n"
        "gagebench:\n  output: out\n  observed: o.zarr\n  models: {nwm: n.zarr}\n"
        "  bach_size: 3\n"
    )
    result = _cli("run", "--config", str(run_file), cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "unknown setting(s) gagebench.bach_size" in lines[0]
    assert "(did you mean gagebench.batch_size?)" in lines[0]
    assert not (tmp_path / "out").exists()
