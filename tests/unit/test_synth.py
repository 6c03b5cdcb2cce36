"""gagebench.synth: stores readable by gagebench.sources.stores, realistic, deterministic."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import yaml

from gagebench.cli import main
from gagebench.config import StoreConfig, load_config
from gagebench.evaluation import evaluate
from gagebench.gages import builtin_gages
from gagebench.sample import load_sample
from gagebench.sources.stores import SourceSet, clear_cache
from gagebench.synth import SAMPLE_ID, synthesize

SHORT: dict[str, Any] = {"start": "2001-01-01", "end": "2002-12-31"}


@pytest.fixture(autouse=True)
def _fresh_cache():
    clear_cache()
    yield
    clear_cache()


def _sources(stores) -> SourceSet:
    return SourceSet(
        StoreConfig(stores.observed_url),
        {name: StoreConfig(url) for name, url in stores.model_urls.items()},
    )


def _read_all(stores, n: int):
    ids = builtin_gages()["gage_id"].iloc[:n].tolist()
    return _sources(stores).read_batch(ids)


def test_same_seed_same_stores_other_seed_other_values(tmp_path):
    args: dict[str, Any] = {"n_gages": 12, "models": ("nwm",), **SHORT}
    a = synthesize(str(tmp_path / "a"), seed=3, **args)
    b = synthesize(str(tmp_path / "b"), seed=3, **args)
    c = synthesize(str(tmp_path / "c"), seed=4, **args)
    for url_a, url_b, url_c in (
        (a.observed_url, b.observed_url, c.observed_url),
        (a.model_urls["nwm"], b.model_urls["nwm"], c.model_urls["nwm"]),
    ):
        xr.testing.assert_identical(xr.open_zarr(url_a).load(), xr.open_zarr(url_b).load())
        va = xr.open_zarr(url_a)["streamflow"].to_numpy()
        vc = xr.open_zarr(url_c)["streamflow"].to_numpy()
        assert va.shape != vc.shape or not np.array_equal(va, vc, equal_nan=True)


def test_layout_like_hytest(tmp_path):
    stores = synthesize(str(tmp_path), n_gages=12, **SHORT)
    obs = xr.open_zarr(stores.observed_url)
    assert obs["streamflow"].dims == ("time", "gage_id")
    assert obs["streamflow"].dtype == np.float32
    assert obs["streamflow"].encoding["chunks"] == (obs.sizes["time"], 1)
    times = obs["time"].to_numpy()
    assert times[0] == np.datetime64("2001-01-01T05:00")
    assert times[-1] == np.datetime64("2002-12-31T05:00")
    assert str(obs["gage_id"].to_numpy()[0]) == "USGS-01011000"
    assert stores.to_config_dict()["gage_limit"] == 12


def test_sample_gage_holds_the_real_record(tmp_path):
    stores = synthesize(str(tmp_path), n_gages=90)
    ids = builtin_gages()["gage_id"].iloc[:90].tolist()
    batch = _sources(stores).read_batch([SAMPLE_ID])
    sample = load_sample()
    days = pd.DatetimeIndex(batch.dates.astype("datetime64[ns]"))
    inside = days.isin(sample.index)
    assert inside.sum() == 12145
    expected = sample.reindex(days[inside])
    np.testing.assert_allclose(batch.observed[0, inside], expected["obs"], rtol=1e-6)
    np.testing.assert_allclose(batch.modeled["nwm"][0, inside], expected["nwm"], rtol=1e-6)
    np.testing.assert_allclose(batch.modeled["nhm"][0, inside], expected["nhm"], rtol=1e-6)
    assert np.isnan(batch.observed[0, ~inside]).all()
    assert SAMPLE_ID in ids


def test_hourly_feature_id_stores_average_to_the_daily_ones(tmp_path):
    daily = synthesize(str(tmp_path / "d"), n_gages=10, seed=5, **SHORT)
    hourly = synthesize(
        str(tmp_path / "h"),
        n_gages=10,
        seed=5,
        frequency="hourly",
        model_index="feature_id",
        **SHORT,
    )
    nwm = xr.open_zarr(hourly.model_urls["nwm"])
    assert nwm["streamflow"].dims == ("time", "feature_id")
    assert nwm["gage_id"].dtype == np.dtype("S15")
    assert nwm["gage_id"].to_numpy()[0] == b"       01011000"
    assert nwm.sizes["time"] == 730 * 24 - 1  # 01:00 on the first day to 23:00 on the last
    a, b = _read_all(daily, 10), _read_all(hourly, 10)
    np.testing.assert_array_equal(a.observed, b.observed)
    for name in ("nwm", "nhm"):
        # The last 05:00-05:00 day is cut at 23:00, so its mean is of 19 hours only.
        np.testing.assert_allclose(b.modeled[name][:, :-1], a.modeled[name][:, :-1], rtol=2e-5)


def test_missing_gages_are_left_out_of_stores(tmp_path):
    stores = synthesize(str(tmp_path), n_gages=200, missing_fraction=0.05, **SHORT)
    batch = _read_all(stores, 200)
    assert 2 <= len(batch.missing_observed) <= 25
    for name in ("nwm", "nhm"):
        assert 2 <= len(batch.missing_model[name]) <= 25
        assert np.isnan(
            batch.modeled[name][[batch.gage_ids.index(g) for g in batch.missing_model[name]]]
        ).all()
    assert batch.missing_model["nwm"] != batch.missing_model["nhm"]
    assert SAMPLE_ID not in batch.missing_observed


def test_realistic_spread_across_gages(tmp_path):
    gages = builtin_gages().sample(300, random_state=1).reset_index(drop=True)
    stores = synthesize(str(tmp_path), gages=gages, include_sample=False, missing_fraction=0)
    batch = _sources(stores).read_batch(gages["gage_id"].tolist())
    obs = batch.observed
    table = evaluate(
        obs,
        {"nwm": batch.modeled["nwm"], "nhm": batch.modeled["nhm"]},
        time=batch.dates,
        gages=batch.gage_ids,
        suites=("standard",),
    )
    medians = table.groupby("model")[["NSE", "KGE"]].median()
    assert 0.3 <= medians["NSE"]["nwm"] <= 0.56, medians
    assert 0.4 <= medians["KGE"]["nwm"] <= 0.62, medians
    assert 0.25 <= medians["NSE"]["nhm"] <= 0.56, medians
    # A real spread: some gages poor, some good.
    nse = table.loc[table["model"] == "nwm", "NSE"]
    assert (nse < 0).mean() > 0.1
    assert (nse > 0.7).mean() > 0.1
    # Flows scale with drainage area; some gages run dry; observations have gaps.
    mean_flow = pd.Series(np.nanmean(obs, axis=1))
    assert mean_flow.corr(gages["drain_sqkm"], method="spearman") > 0.6
    zero_share = np.nanmean(np.where(np.isnan(obs), np.nan, obs == 0), axis=1)
    assert 0.03 < (zero_share > 0.01).mean() < 0.4
    missing = np.isnan(obs).mean()
    assert 0.02 < missing < 0.5


def test_config_dict_runs_through_load_config(tmp_path):
    stores = synthesize(str(tmp_path / "s"), n_gages=5, models=("m1",), **SHORT)
    cfg = load_config(output=str(tmp_path / "out"), **stores.to_config_dict())
    assert cfg.gage_limit == 5
    assert list(cfg.models) == ["m1"]
    sources = SourceSet.from_config(cfg)
    sources.check()
    assert sources.read_batch(["USGS-01011000"]).modeled["m1"].shape == (1, 730)


def test_cli_synth_prints_config(tmp_path, capsys):
    code = main(
        [
            "synth",
            str(tmp_path / "cli"),
            "--gages",
            "4",
            "--models",
            "a,b",
            "--seed",
            "2",
            "--start",
            "2001-01-01",
            "--end",
            "2001-03-01",
            "--hourly",
            "--feature-id",
        ]
    )
    assert code == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["gage_limit"] == 4
    assert set(printed["models"]) == {"a", "b"}
    ds = xr.open_zarr(printed["models"]["a"]["url"])
    assert "feature_id" in ds.dims


def test_cli_synth_passes_storage_options(capsys):
    url = "memory://gagebench-cli-test/stores"
    code = main(
        [
            "synth",
            url,
            "--gages",
            "3",
            "--start",
            "2001-01-01",
            "--end",
            "2001-01-31",
            "--storage-option",
            "skip_instance_cache=true",
        ]
    )
    assert code == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["observed"]["storage_options"] == {"skip_instance_cache": True}
    assert xr.open_zarr(f"{url}/observed.zarr").sizes["gage_id"] == 3


def test_bad_arguments_are_input_errors(tmp_path):
    from gagebench.errors import InputError

    with pytest.raises(InputError, match="frequency"):
        synthesize(str(tmp_path), frequency="weekly")
    with pytest.raises(InputError, match="model_index"):
        synthesize(str(tmp_path), model_index="comid")
    with pytest.raises(InputError, match="distinct"):
        synthesize(str(tmp_path), models=("a", "a"))


def test_zarr_format_3_stores_read_the_same(tmp_path):
    v2 = synthesize(str(tmp_path / "v2"), n_gages=8, seed=9, frequency="hourly", **SHORT)
    v3 = synthesize(
        str(tmp_path / "v3"), n_gages=8, seed=9, frequency="hourly", zarr_format=3, **SHORT
    )
    assert (tmp_path / "v3" / "observed.zarr" / "zarr.json").exists()
    a, b = _read_all(v2, 8), _read_all(v3, 8)
    np.testing.assert_array_equal(a.observed, b.observed)
    np.testing.assert_array_equal(a.modeled["nwm"], b.modeled["nwm"])


def test_synth_spec_is_validated_frozen_and_the_keywords_make_it(tmp_path):
    import dataclasses

    from gagebench.errors import InputError
    from gagebench.synth import SynthSpec, write_stores

    spec = SynthSpec(n_gages=4, models=["nwm"], seed=2, **SHORT)  # type: ignore[arg-type]
    assert spec.models == ("nwm",)
    assert spec.stores == ["observed", "nwm"]
    assert spec.days[0] == np.datetime64("2001-01-01")
    assert spec.days.size == 730
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.seed = 3  # type: ignore[misc]
    for bad, match in (
        ({"n_gages": 0}, "n_gages must be a positive integer"),
        ({"start": "2002-01-01", "end": "2002-01-01"}, "must be before end"),
        ({"missing_fraction": 1.0}, r"\[0, 1\)"),
        ({"zarr_format": 4}, "zarr_format"),
    ):
        with pytest.raises(InputError, match=match):
            SynthSpec(**bad)
    by_spec = write_stores(str(tmp_path / "spec"), spec)
    by_keywords = synthesize(str(tmp_path / "kw"), n_gages=4, models=("nwm",), seed=2, **SHORT)
    assert by_spec.n_gages == by_keywords.n_gages == 4
    pairs = [(by_spec.observed_url, by_keywords.observed_url)]
    pairs.append((by_spec.model_urls["nwm"], by_keywords.model_urls["nwm"]))
    for a, b in pairs:
        xr.testing.assert_identical(xr.open_zarr(a).load(), xr.open_zarr(b).load())


def test_cli_synth_does_not_echo_credentials(capsys):
    url = "memory://gagebench-cli-test/stores-secret"
    code = main(
        [
            "synth",
            url,
            "--gages",
            "2",
            "--start",
            "2001-01-01",
            "--end",
            "2001-01-31",
            "--storage-option",
            "skip_instance_cache=true",
            "--storage-option",
            "token=synth-t0ken-value",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "synth-t0ken-value" not in out
    assert yaml.safe_load(out)["observed"]["storage_options"]["token"] == "***"


def test_synth_does_not_replace_a_store_it_did_not_write(tmp_path):
    """``synth`` writes ``<output>/observed.zarr`` with mode "w": over a real store of
    that name it deleted the store. A store synth wrote is replaced as before."""
    from gagebench.errors import InputError

    real = tmp_path / "observed.zarr"
    real.mkdir()
    (real / "data").write_bytes(b"real observations")
    with pytest.raises(InputError, match="already holds data that gagebench synth did not"):
        synthesize(str(tmp_path), n_gages=2, models=("nwm",), **SHORT)
    assert (real / "data").read_bytes() == b"real observations"
    assert not (tmp_path / "nwm.zarr").exists()  # checked before anything is written
    again = tmp_path / "again"
    synthesize(str(again), n_gages=2, models=("nwm",), **SHORT)
    synthesize(str(again), n_gages=3, models=("nwm",), **SHORT)  # its own: replaced
    assert xr.open_zarr(f"{again}/observed.zarr").sizes["gage_id"] == 3
