"""``baselines:`` in run files: validated by the settings schema (and the run-file JSON
Schema agrees), recorded in the manifest's config only when given, and never part of what
decides a run's results (the run id stays the same)."""

from __future__ import annotations

import copy
from typing import Any

import jsonschema
import pytest

from gagebench.config import load_config, result_settings, validate
from gagebench.errors import ConfigError
from gagebench.runfile import run_file_schema

BASE: dict[str, Any] = {
    "output": "/out",
    "observed": {"url": "/s/o.zarr"},
    "models": {"nwm": {"url": "/s/n.zarr"}},
}

ACCEPTED: list[Any] = [
    {"nwm_v21": {"url": "s3://hytest/nwm.csv"}},
    {"nwm_v21": "s3://hytest/nwm.csv"},
    {"nwm_v21": {"url": ["cat.yml#nwm2d1-standardsuite-osn", "cat.yml#nwm2d1-dscore-osn"]}},
    {
        "nwm_v21": {
            "url": "https://example.org/catalog.yml#nwm2d1-standardsuite-osn",
            "storage_options": {"anon": True, "client_kwargs": {"endpoint_url": "http://x"}},
            "uncertainty": "cat.yml#nwm2d1-standardsuite-KGE-uncertainty-osn",
            "model": "nwm",
        },
        "nhm": {"url": "nhm.parquet", "storage_options": None},
    },
    None,
    {},
]

REFUSED: list[tuple[Any, str]] = [
    (
        {"nwm_v21": {"urll": "x.csv"}},
        "unknown setting(s) gagebench.baselines.nwm_v21.urll; valid keys are: model, "
        "storage_options, uncertainty, url (did you mean gagebench.baselines.nwm_v21.url?)",
    ),
    ({"nwm_v21": {"storage_options": {"anon": True}}}, "gagebench.baselines.nwm_v21.url:"),
    ({"nwm_v21": {"url": None}}, "gagebench.baselines.nwm_v21.url: expected a URL"),
    ({"nwm_v21": {"url": []}}, "gagebench.baselines.nwm_v21.url: expected a URL"),
    ({"nwm_v21": {"url": " "}}, "gagebench.baselines.nwm_v21.url: expected a URL"),
    ({"nwm_v21": None}, "gagebench.baselines.nwm_v21: expected a mapping with 'url'"),
    ({"nwm_v21": {"url": "x.csv", "storage_options": 3}}, "storage_options: expected a mapping"),
    ({"../up": {"url": "x.csv"}}, "gagebench.baselines: expected baseline names of"),
    (["x.csv"], "gagebench.baselines: expected a mapping"),
]


def _schema_accepts(baselines: Any) -> bool:
    validator = jsonschema.Draft202012Validator(run_file_schema())
    return not list(validator.iter_errors({"gagebench": {**BASE, "baselines": baselines}}))


@pytest.mark.parametrize("baselines", ACCEPTED)
def test_the_run_file_schema_accepts_baselines(baselines: Any) -> None:
    cfg = validate({**copy.deepcopy(BASE), "baselines": copy.deepcopy(baselines)})
    assert set(cfg.baselines) == set(baselines or {})
    for spec in cfg.baselines.values():
        assert spec["url"]
    assert _schema_accepts(baselines)


@pytest.mark.parametrize(("baselines", "message"), REFUSED)
def test_the_run_file_schema_refuses_bad_baselines(baselines: Any, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        validate({**copy.deepcopy(BASE), "baselines": copy.deepcopy(baselines)})
    assert message in str(info.value)
    assert not _schema_accepts(baselines)


def test_baselines_decide_nothing_of_the_results() -> None:
    plain = load_config(**BASE)
    with_baselines = load_config(
        **BASE, baselines={"nwm_v21": {"url": "s3://hytest/nwm.csv", "model": "nwm"}}
    )
    assert with_baselines.run_id == plain.run_id
    assert result_settings(with_baselines) == result_settings(plain)
    assert "baselines" not in result_settings(with_baselines)
    # a run without baselines records the config it recorded before they existed
    assert "baselines" not in plain.to_dict()
    assert with_baselines.to_dict()["baselines"]["nwm_v21"]["url"] == "s3://hytest/nwm.csv"


def test_baseline_secrets_are_masked_in_the_recorded_config() -> None:
    cfg = load_config(
        **BASE,
        baselines={"nwm_v21": {"url": "s3://b/t.csv", "storage_options": {"secret": "s3kr1t"}}},
    )
    assert "s3kr1t" not in repr(cfg.to_dict())
    assert "s3kr1t" not in repr(cfg)
