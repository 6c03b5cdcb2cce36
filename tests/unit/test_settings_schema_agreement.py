"""The run file's JSON Schema and gagebench's own validation accept the same files
(an independent check of ``gagebench.schema``/``gagebench.runfile``): many run files,
valid and not, through both, each disagreement either fixed or one of the documented
checks only gagebench can make. Also the messages of settings a user mistypes at depth."""

from __future__ import annotations

import ast
import copy
import datetime
import functools
import importlib.util
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import jsonschema
import pytest

import gagebench
from gagebench.clusters import check_settings
from gagebench.config import RunConfig, load_config, parse_override, validate
from gagebench.defaults import PACKAGED_DEFAULTS, default
from gagebench.errors import ConfigError
from gagebench.runfile import run_file_schema

SRC = Path(gagebench.__file__).parent
BASE: dict[str, Any] = {
    "output": "/out",
    "observed": {"url": "/s/o.zarr"},
    "models": {"nwm": {"url": "/s/n.zarr"}},
}


@functools.cache
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(run_file_schema())


def _schema_accepts(settings: dict[str, Any]) -> bool:
    return not list(_validator().iter_errors({"gagebench": settings}))


def _gagebench_accepts(settings: dict[str, Any]) -> bool:
    """True when gagebench accepts ``settings``; a refusal must name the key."""
    refusal = ""
    try:
        check_settings(validate(copy.deepcopy(settings)), cluster=False)
    except ConfigError as exc:
        refusal = str(exc)
    assert refusal == "" or refusal.startswith(("gagebench.", "unknown setting(s) gagebench."))
    return refusal == ""


def _with(path: str, value: Any) -> dict[str, Any]:
    settings = copy.deepcopy(BASE)
    node = settings
    *parents, last = path.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    return settings


#: Values a YAML run file gives (``yes`` and ``on`` are booleans, ``010`` an int, a bare
#: date a date, an empty value null).
VALUES: list[Any] = [None, True, 0, 1, 2.5, "3", "yes", "", " ", "x", [], ["x"], {}, {"x": 1}]
VALUES.append(datetime.date(2020, 1, 1))

#: Settings (dotted) probed with every value above.
PATHS = [
    "models",
    "storage_options",
    "cluster",
    "cluster.local",
    "observed",
    "observed.url",
    "observed.variable",
    "observed.storage_options",
    "models.nwm",
    "models.nwm.variable",
    "models.nwm.url",
    "models.nwm.engine",
    "retries.max_attempts",
    "uncertainty.seed",
    "cluster.kubernetes.adapt",
    "cluster.gateway.adapt",
    "cluster.slurm.wait_timeout",
    "cluster.address.timeout",
    "cluster.kubernetes.wait_timeout",
]


#: Values of one setting probed beside the common ones.
OWN_VALUES: dict[str, list[Any]] = {
    "suites": [["standard", "standard"], ["dscore", "standard"], "standard,dscore", ["nse"]],
    "run_id": ["", "x-{hash}", "{time}", "a b", "../up", ".hidden", "nightly"],
    "gage_limit": [0, 5, -3],
    "batch_size": [100_000, 100_001],
    "uncertainty.water_year_month": [12, 13, 14],
    "uncertainty.min_days": [366, 367],
}


@pytest.mark.parametrize("path", [*PATHS, *OWN_VALUES])
def test_the_schema_and_gagebench_accept_the_same_values(path: str) -> None:
    disagree = []
    for value in VALUES + OWN_VALUES.get(path, []):
        settings = _with(path, value)
        schema_ok, ours = _schema_accepts(settings), _gagebench_accepts(settings)
        if schema_ok != ours:
            disagree.append(f"{value!r}: schema {schema_ok}, gagebench {ours}")
    assert disagree == []


def test_a_model_without_a_url_is_refused_by_both() -> None:
    settings = {**BASE, "models": {"nwm": {"variable": "q"}}}
    assert not _gagebench_accepts(settings)
    assert not _schema_accepts(settings)


@pytest.mark.parametrize("value", [False, 0, [], {}])
def test_a_variable_that_is_not_text_is_refused_not_replaced(value: Any) -> None:
    """``variable: false`` was quietly read as ``streamflow``."""
    with pytest.raises(ConfigError, match=r"gagebench\.observed\.variable: expected"):
        load_config(output="/o", observed={"url": "/o.zarr", "variable": value})


@pytest.mark.parametrize("backend", ["kubernetes", "gateway"])
@pytest.mark.parametrize("value", [True, 3, "2-5"])
def test_adapt_given_as_a_scalar_is_a_config_error(backend: str, value: Any) -> None:
    """``adapt: true`` crashed with TypeError ('bool' object is not a mapping)."""
    cfg = load_config(output="/o", cluster={"backend": "local", backend: {"adapt": value}})
    with pytest.raises(ConfigError, match=rf"gagebench\.cluster\.{backend}\.adapt: expected"):
        check_settings(cfg, cluster=False)


@pytest.mark.parametrize(
    ("crosswalk", "closest"),
    [
        ({"url": "/c.csv", "gage": "g", "featur": "f"}, "crosswalk.feature?"),
        ({"gage_variabl": "g", "feature_variable": "f"}, "crosswalk.gage_variable?"),
        (
            {"url": "/c.csv", "gage": "g", "feature": "f", "storage_option": {}},
            "crosswalk.storage_options?",
        ),
    ],
)
def test_a_crosswalk_typo_names_the_closest_key(crosswalk: dict[str, Any], closest: str) -> None:
    with pytest.raises(ConfigError, match=r"gagebench\.models\.nwm\.crosswalk") as refused:
        load_config(output="/o", models={"nwm": {"url": "/m.zarr", "crosswalk": crosswalk}})
    assert f"did you mean gagebench.models.nwm.{closest}" in str(refused.value)


# -- a store given as its URL, then one of its settings --------------------------------------


def test_set_a_store_setting_keeps_the_url_given_as_a_string(tmp_path: Path) -> None:
    """``models: {nwm: s3://b/n.zarr}`` in the run file and ``--set models.nwm.units=cfs``
    lost the URL ("models.nwm.url: expected a URL string, got None"); ``--set
    observed.variable=q`` quietly dropped the observed store."""
    run = tmp_path / "run.yaml"
    run.write_text("gagebench:\n  observed: s3://b/o.zarr\n  models: {nwm: s3://b/n.zarr}\n")
    sets = dict(map(parse_override, ["models.nwm.units=cfs", "observed.variable=q"]))
    cfg = load_config(run, overrides=sets, output="/o")
    assert cfg.models["nwm"].url == "s3://b/n.zarr"
    assert cfg.models["nwm"].units == "cfs"
    assert cfg.observed is not None
    assert (cfg.observed.url, cfg.observed.variable) == ("s3://b/o.zarr", "q")


def test_a_later_run_file_adds_to_a_store_given_as_a_string(tmp_path: Path) -> None:
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text("observed: s3://b/o.zarr\nmodels: {nwm: s3://b/n.zarr}\n")
    second.write_text("observed: {variable: q}\nmodels: {nwm: {units: cfs}}\n")
    cfg = load_config(first, second, output="/o")
    assert cfg.observed is not None
    assert (cfg.observed.url, cfg.observed.variable) == ("s3://b/o.zarr", "q")
    assert (cfg.models["nwm"].url, cfg.models["nwm"].units) == ("s3://b/n.zarr", "cfs")


# -- no default of gagebench.yaml written again in a signature -------------------------------

#: Parameter names that carry a setting, and the setting (dotted) whose default they take.
PARAMETERS = {
    "min_paired_days": "min_paired_days",
    "min_days": "min_paired_days",
    "mode": "mode",
    "suites": "suites",
    "batch_size": "batch_size",
    "log_format": "log_format",
    "attempts": "retries.batch_attempts",
    "batch_attempts": "retries.batch_attempts",
    "max_attempts": "retries.max_attempts",
    "max_wait_s": "retries.max_wait_s",
    "month": "uncertainty.water_year_month",
    "water_year_month": "uncertainty.water_year_month",
    "n_samples": "uncertainty.n_samples",
    "min_years": "uncertainty.min_years",
}


def _literal(node: ast.expr) -> Any:
    try:
        return ast.literal_eval(node)
    except ValueError:
        return _NOT_LITERAL


_NOT_LITERAL = object()


def test_no_signature_restates_a_default_of_gagebench_yaml() -> None:
    """A function's default equal to gagebench.yaml's, written as a literal (``attempts:
    int = 3``, ``month: int = 10``, ``log_format="text"``, ``mode="standard"``), drifts
    when the file changes: it must read the file (``default("...")``)."""
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            args = node.args
            positional = args.posonlyargs + args.args
            pairs = list(
                zip(positional[len(positional) - len(args.defaults) :], args.defaults, strict=True)
            )
            pairs += [
                (a, d)
                for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True)
                if d is not None
            ]
            for arg, value in pairs:
                setting = PARAMETERS.get(arg.arg)
                literal = _literal(value)
                if setting is None or literal is _NOT_LITERAL:
                    continue
                wanted = default(setting)
                if literal == wanted or (isinstance(literal, tuple) and list(literal) == wanted):
                    offenders.append(f"{path.relative_to(SRC)}:{node.lineno} {arg.arg}")
    assert offenders == []


# -- the default run id: the same as before the one definition ------------------------------

#: Default run ids computed by gagebench before the settings schema (commit ff283e4, run
#: in a separate checkout): a run folder started then is found again (resumed, or
#: reported complete) under the same id. Each result-deciding setting changes the id;
#: settings that only say how the run is done or reached do not.
PINNED_IDS: list[tuple[str, dict[str, Any], str]] = [
    ("base", {}, "run-c3fdfd4e28"),
    ("suites", {"suites": ["uncertainty", "dscore", "standard"]}, "run-7e65faabf5"),
    ("uncertainty", {"suites": ["uncertainty"], "uncertainty": {"seed": 5}}, "run-f5bbf85784"),
    ("mode", {"mode": "hytest"}, "run-d508544f4e"),
    ("batch_size", {"batch_size": 8}, "run-38996b9bb7"),
    ("min_paired_days", {"min_paired_days": 30}, "run-e8ed214e64"),
    ("gages", {"gages": "/g.csv"}, "run-6079077ce2"),
    ("gage_limit", {"gage_limit": 5}, "run-1678c02a78"),
    ("variable", {"observed": {"url": "/s/o.zarr", "variable": "q"}}, "run-9446bda079"),
    ("units", {"models": {"nwm": {"url": "/s/n.zarr", "units": "cfs"}}}, "run-82c3d76db9"),
    (
        "crosswalk",
        {
            "models": {
                "nwm": {
                    "url": "/s/n.zarr",
                    "crosswalk": {"gage_variable": "g", "feature_variable": "f"},
                }
            }
        },
        "run-7f617866ce",
    ),
    ("two models", {"models": {"b": "/s/b.zarr", "a": "/s/a.zarr"}}, "run-44c8a1e122"),
    ("uncertainty without its suite", {"uncertainty": {"seed": 5}}, "run-c3fdfd4e28"),
    ("storage options", {"storage_options": {"anon": True}}, "run-c3fdfd4e28"),
    ("outputs", {"report": False, "progress": False, "log_format": "json"}, "run-c3fdfd4e28"),
    (
        "retries",
        {"retries": {"max_attempts": 2}, "integrity": {"etag_md5": False}},
        "run-c3fdfd4e28",
    ),
    ("cluster", {"cluster": {"backend": "local", "local": {"n_workers": 2}}}, "run-c3fdfd4e28"),
    ("template", {"run_id": "x-{hash}"}, "x-run-c3fdfd4e28"),
]


@pytest.mark.parametrize(
    ("settings", "run_id"), [p[1:] for p in PINNED_IDS], ids=[p[0] for p in PINNED_IDS]
)
def test_the_default_run_id_is_the_one_earlier_versions_gave(
    settings: dict[str, Any], run_id: str
) -> None:
    base = {"output": "/out", "observed": "/s/o.zarr", "models": {"nwm": "/s/n.zarr"}}
    assert load_config(**{**base, **settings}).run_id == run_id


def test_the_configuration_reference_says_which_sections_may_be_null() -> None:
    """The docs' types come from the schema: a section that may be left empty reads
    ``mapping or null`` (not ``value``, which a schema type list would otherwise give)."""
    path = Path(gagebench.__file__).parents[2] / "docs" / "_ext" / "gagebench_docs.py"
    spec = importlib.util.spec_from_file_location("gagebench_docs_types", path)
    assert spec is not None
    assert spec.loader is not None
    ext = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = ext  # its dataclasses look their module up
    spec.loader.exec_module(ext)
    types = ext._schema_types()
    assert types["storage_options"] == "mapping or null"
    assert types["models"] == "mapping of name to store or null"
    assert types["observed.variable"] == "string or null"
    assert types["cluster.local"] == "mapping or null"


# -- every key of gagebench.yaml ---------------------------------------------------------------

#: Keys whose values gagebench checks further than the JSON Schema can (formats, rules
#: between keys: docs/reference/configuration.md lists them): the schema may accept a
#: value gagebench refuses there, never the other way round.
CHECKED_FURTHER = {
    "cluster.backend": "a backend installed (built in, an entry point or module:Class)",
    "cluster.address.address": "a scheduler address",
    "cluster.local.memory_limit": "a memory size",
    "cluster.slurm.memory": "a memory size",
    "cluster.slurm.walltime": "a SLURM time limit",
    "cluster.slurm.processes": "cores a multiple of processes",
    "cluster.kubernetes.n_workers": "at least 1 without adapt",
    "cluster.kubernetes.adapt.minimum": "both bounds or neither",
    "cluster.kubernetes.adapt.maximum": "both bounds or neither",
    "cluster.gateway.adapt.minimum": "both bounds or neither",
    "cluster.gateway.adapt.maximum": "both bounds or neither",
    "cluster.kubernetes.secret_env.keys": "a Secret named with its keys",
}
EVERY_VALUE: list[Any] = [
    *VALUES,
    *(2, 30, 3.0, "4GiB", "01:00:00", "tcp://h:8786", [{"key": "a"}]),
]


def _leaves(section: Any, prefix: str = "") -> list[str]:
    found = []
    for key, value in section.items():
        found.append(prefix + key)
        if isinstance(value, dict) and value:
            found += _leaves(value, f"{prefix}{key}.")
    return found


def test_every_key_of_gagebench_yaml_is_judged_alike_by_the_schema_and_gagebench() -> None:
    """Each key of the packaged defaults with values of every YAML type: where the two
    disagree, gagebench is the stricter and the key is one it documents checking
    further; an integer written as ``3.0`` is the one JSON Schema counts as an integer."""
    disagree = []
    for path in _leaves(dict(PACKAGED_DEFAULTS)):
        if path.startswith(("observed", "models")):
            continue  # probed above, as a store of a run
        for value in EVERY_VALUE:
            settings = _with(path, value)
            schema_ok, ours = _schema_accepts(settings), _gagebench_accepts(settings)
            if schema_ok == ours or (schema_ok and not ours and path in CHECKED_FURTHER):
                continue
            if schema_ok and not ours and isinstance(value, float) and value.is_integer():
                continue
            disagree.append(f"{path}={value!r}: schema {schema_ok}, gagebench {ours}")
    assert disagree == []


def test_gagebench_run_names_a_scalar_adapt_without_a_traceback(tmp_path: Path) -> None:
    """Through the real entry point: ``adapt: true`` was a TypeError traceback (exit 1)."""
    run = tmp_path / "run.yaml"
    run.write_text(
        "gagebench:\n  output: out\n  observed: o.zarr\n  models: {nwm: n.zarr}\n"
        "  cluster: {backend: local, kubernetes: {adapt: true}}\n"
    )
    script = Path(sys.executable).with_name("gagebench")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "gagebench.cli"]
    env = {**os.environ, "PYTHONPATH": str(SRC.parent)}
    done = subprocess.run(
        [*command, "run", "--config", str(run)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 2, done.stderr
    assert "gagebench.cluster.kubernetes.adapt: expected a mapping, got True" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()


# -- the typed RunConfig as a Python value ----------------------------------------------------


def test_a_run_config_pickles_and_copies_as_it_is() -> None:
    """``pickle`` (multiprocessing, a process pool) and ``copy.deepcopy`` failed with
    "cannot pickle 'mappingproxy' object"; the copy is equal and still read-only."""
    import pickle
    from types import MappingProxyType

    cfg = load_config(
        output="s3://b/out",
        observed={"url": "s3://b/o.zarr", "storage_options": {"secret": "SECRET1"}},
        models={"nwm": {"url": ["/a.nc", "/b.nc"], "engine": "netcdf"}},
        storage_options={"client_kwargs": {"headers": {"x": "y"}}},
        cluster={"backend": "local", "local": {"n_workers": 2}},
    )
    for copied in (pickle.loads(pickle.dumps(cfg)), copy.deepcopy(cfg)):
        assert copied == cfg
        assert copied.run_id == cfg.run_id
        assert isinstance(copied.storage_options, MappingProxyType)
        assert isinstance(copied.models, MappingProxyType)
        assert copied.models["nwm"].url == ("/a.nc", "/b.nc")
        assert "SECRET1" not in repr(copied)
    built = RunConfig(run_id="r", output="/o", storage_options={"a": [1]})
    assert pickle.loads(pickle.dumps(built)) == built


def test_the_run_id_help_names_the_settings_that_decide_the_results() -> None:
    """gagebench.yaml's run_id comment (the schema's and the docs' help) lists in words
    what the one marker decides: it named neither the uncertainty settings nor what is
    left out."""
    from gagebench.config import RESULT_KEYS
    from gagebench.defaults import help_text

    words = help_text("run_id")
    for key in RESULT_KEYS:
        assert ("stores" if key in ("observed", "models") else key) in words, key
    deciding = set(RESULT_KEYS)
    for key in ("report", "progress", "log_format", "retries", "integrity", "cluster"):
        assert key not in deciding
        assert key in words.split("not ", 1)[1], key


#: ``_parts/settings.json`` exactly as gagebench wrote it before the settings schema
#: (commit ff283e4, run in a separate checkout; stores under /s): suites sorted, no
#: engine. A run folder of that version resumes under the same id, with no difference.
OLD_SETTINGS_JSON = (
    '{"gages": "builtin", "gage_limit": 12, "observed": {"url": "/s/observed.zarr", '
    '"variable": "streamflow", "consolidated": null, "units": null, "crosswalk": null}, '
    '"models": {"nwm": {"url": "/s/nwm.zarr", "variable": "streamflow", "consolidated": '
    'null, "units": null, "crosswalk": null}}, "suites": ["dscore", "standard", '
    '"uncertainty"], "mode": "standard", "batch_size": 4, "min_paired_days": 365, '
    '"uncertainty": {"n_samples": 50, "seed": null, "water_year_month": 10, "min_days": '
    '100, "min_years": 10}}'
)


def test_a_run_folder_of_the_version_before_the_schema_resumes() -> None:
    import json

    from gagebench.config import result_settings
    from gagebench.results.settings import differences

    cfg = load_config(
        output="/runs",
        observed="/s/observed.zarr",
        models={"nwm": "/s/nwm.zarr"},
        gage_limit=12,
        batch_size=4,
        suites=["standard", "dscore", "uncertainty"],
        uncertainty={"n_samples": 50},
        progress=False,
        report=False,
    )
    assert cfg.run_id == "run-03e2ab8dd2"  # the id that version gave the folder
    saved = json.loads(OLD_SETTINGS_JSON)
    assert differences(saved, result_settings(cfg)) == []
    assert differences(saved, result_settings(replace(cfg, batch_size=8))) == [
        "batch_size (4 before, 8 now)"
    ]
