"""One store dataclass from the settings to the workers: ``StoreConfig`` as validated, and
as :meth:`RunConfig.resolved` hands it to the sources (run options merged, picklable)."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from gagebench.config import RunConfig, StoreConfig, load_config
from gagebench.errors import ConfigError
from gagebench.sources.cache import _cache_key
from gagebench.sources.stores import SourceSet


def _config(tmp_path: Path) -> RunConfig:
    return load_config(
        overrides={
            "output": str(tmp_path),
            "storage_options": {"anon": True, "client_kwargs": {"region_name": "us-west-2"}},
            "observed": {"url": "s3://bucket/obs.zarr"},
            "models": {
                "nwm": {
                    "url": "s3://bucket/nwm.zarr",
                    "storage_options": {"client_kwargs": {"endpoint_url": "http://x"}},
                    "crosswalk": {
                        "url": "s3://other/xwalk.csv",
                        "gage": "site",
                        "feature": "reach",
                        "storage_options": {"requester_pays": True},
                    },
                }
            },
        }
    )


def test_the_sources_read_the_config_dataclass_with_the_run_options_merged(
    tmp_path: Path,
) -> None:
    cfg = _config(tmp_path)
    source = SourceSet.from_config(cfg)
    model = source.models["nwm"]
    assert type(model) is StoreConfig
    assert type(source.observed) is StoreConfig
    assert model.options()["anon"] is True
    assert model.options()["client_kwargs"] == {
        "region_name": "us-west-2",
        "endpoint_url": "http://x",
    }
    assert "gagebench_retries" in model.options()  # s3: the run's retry policy travels along
    assert model.crosswalk is not None
    crosswalk_options = dict(model.crosswalk.storage_options)
    assert crosswalk_options["requester_pays"] is True
    assert "anon" not in crosswalk_options  # access mode stays per table
    # picklable for the workers, and the validated config is left as it was
    again = pickle.loads(pickle.dumps(source))
    assert _cache_key(again.models["nwm"]) == _cache_key(model)
    assert "anon" not in cfg.models["nwm"].storage_options


def test_the_cache_key_is_the_url_options_and_how_it_is_read() -> None:
    plain = StoreConfig("s3://b/a.zarr")
    assert _cache_key(plain) == _cache_key(StoreConfig("s3://b/a.zarr", storage_options={}))
    assert _cache_key(plain) != _cache_key(StoreConfig("s3://b/a.zarr", storage_options={"a": 1}))
    assert _cache_key(plain) != _cache_key(StoreConfig("s3://b/a.zarr", units="cfs"))
    assert _cache_key(plain) != _cache_key(StoreConfig("s3://b/b.zarr"))


def test_the_default_engine_keeps_earlier_runs_ids_and_settings(tmp_path: Path) -> None:
    """Runs recorded before stores had an ``engine`` are the same runs now: same default
    run id (pinned: computed by gagebench before engines), no settings difference."""
    from gagebench.results.settings import differences, result_settings

    cfg = load_config(output=str(tmp_path), observed="o.zarr", models={"nwm": "m.zarr"})
    assert cfg.observed is not None
    assert cfg.observed.engine == "zarr"
    assert cfg.run_id == "run-0ffa2d9b87"
    before = cfg.to_dict()  # a manifest's config written before engines: no engine key
    for store in [before["observed"], *before["models"].values()]:
        del store["engine"]
    assert differences(result_settings(before), result_settings(cfg)) == []
    netcdf = load_config(
        output=str(tmp_path),
        observed={"url": "o.zarr", "engine": "netcdf"},
        models={"nwm": "m.zarr"},
    )
    assert netcdf.run_id != cfg.run_id
    diffs = differences(result_settings(cfg), result_settings(netcdf))
    assert diffs == ["observed (o.zarr before, o.zarr {engine: 'netcdf'} now)"]


@pytest.mark.parametrize("engine", ["netcdf", "my_files_engine"])
def test_a_list_of_urls_goes_to_engines_that_read_files(engine: str, tmp_path) -> None:
    """netcdf and plugin engines get a list of files as a tuple, in order; the built-in
    one-store engines (zarr, reference) refuse it, naming the engine that reads lists."""
    cfg = load_config(
        output=str(tmp_path),
        observed={"url": ["s3://b/2.nc", "s3://b/1.nc"], "engine": engine},
        models={"m": str(tmp_path / "m.zarr")},
    )
    assert cfg.observed is not None
    assert cfg.observed.url == ("s3://b/2.nc", "s3://b/1.nc")
    for one_store in ("zarr", "reference"):
        with pytest.raises(ConfigError, match=rf"engine: {one_store} reads one store.*netcdf"):
            load_config(
                output=str(tmp_path),
                observed={"url": ["a.nc", "b.nc"], "engine": one_store},
                models={"m": str(tmp_path / "m.zarr")},
            )
