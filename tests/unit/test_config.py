"""The run configuration: precedence of sources and errors that name the key."""

from __future__ import annotations

import pytest

from gagebench.config import load_config
from gagebench.errors import ConfigError


def test_defaults_are_valid() -> None:
    cfg = load_config(run_id="r1")
    assert cfg.run_id == "r1"
    assert cfg.suites == ("standard", "dscore")
    assert cfg.mode == "standard"
    assert cfg.cluster.backend == "local"
    assert cfg.run_url.endswith("/r1")


def test_file_then_overrides_then_keywords(tmp_path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(
        "gagebench:\n  batch-size: 10\n  observed: {url: memory://obs.zarr}\n"
        "  models: {nwm: memory://nwm.zarr}\n"
    )
    cfg = load_config(path, overrides={"batch_size": 20}, mode="hytest")
    assert cfg.batch_size == 20
    assert cfg.mode == "hytest"
    assert cfg.observed is not None
    assert cfg.observed.url == "memory://obs.zarr"
    assert cfg.models["nwm"].url == "memory://nwm.zarr"


def test_env_var_reaches_config(monkeypatch) -> None:
    import dask.config

    monkeypatch.setenv("DASK_GAGEBENCH__BATCH_SIZE", "7")
    dask.config.refresh()
    try:
        assert load_config().batch_size == 7
    finally:
        monkeypatch.delenv("DASK_GAGEBENCH__BATCH_SIZE")
        dask.config.refresh()


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("batch_size", "many", "gagebench.batch_size"),
        ("mode", "fast", "gagebench.mode"),
        ("suites", ["nse"], "gagebench.suites"),
        ("cluster.backend", "pbs", "gagebench.cluster.backend"),
        ("run_id", "../etc", "gagebench.run_id"),
        ("colour", "red", "gagebench.colour"),
    ],
)
def test_errors_name_the_key(key: str, value: object, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment.replace(".", r"\.")):
        load_config(overrides={key: value})


def test_secrets_are_masked() -> None:
    cfg = load_config(storage_options={"key": "AKIA", "secret": "s3cr3t", "anon": False})
    shown = cfg.to_dict()["storage_options"]
    assert shown == {"key": "***", "secret": "***", "anon": False}


def test_defaults_have_one_source_the_packaged_yaml() -> None:
    """gagebench.yaml decides the defaults; Python derives them, never restates them."""
    from pathlib import Path

    import yaml

    import gagebench.config as config_module
    from gagebench.clusters import BACKENDS, backend_class
    from gagebench.uncertainty_suite import UncertaintySettings

    packaged = yaml.safe_load(Path(config_module.__file__).with_name("gagebench.yaml").read_text())
    section = packaged["gagebench"]
    assert tuple(BACKENDS) == config_module.VALID_BACKENDS
    assert section["cluster"]["backend"] in BACKENDS
    cfg = load_config()
    assert cfg.batch_size == section["batch_size"] == config_module.RunConfig.batch_size
    assert list(cfg.suites) == section["suites"] == list(config_module.DEFAULT_SUITES)
    assert dict(config_module.UNCERTAINTY_DEFAULTS) == section["uncertainty"]
    settings = UncertaintySettings()
    assert {k: getattr(settings, k) for k in section["uncertainty"]} == section["uncertainty"]
    for name in BACKENDS:  # every backend's keys and defaults are its section of the file
        assert dict(backend_class(name).defaults) == section["cluster"].get(name, {}), name
