"""Storage options: deep per-store merge, keys kept as written, access mode per store."""

from __future__ import annotations

from typing import Any

import fsspec
import pytest

from gagebench.config import load_config, merge_options


def cfg(**settings: Any):
    base = {"output": "s3://bucket/out", "observed": {"url": "s3://bucket/obs.zarr"}}
    base.update(settings)
    return load_config(overrides=base)


def test_per_store_options_merge_key_by_key_at_every_depth() -> None:
    config = cfg(
        storage_options={
            "key": "K",
            "client_kwargs": {"endpoint_url": "http://global", "region_name": "us-west-2"},
            "config_kwargs": {"connect_timeout": 5},
        },
        models={
            "nwm": {
                "url": "s3://other/nwm.zarr",
                "storage_options": {"client_kwargs": {"endpoint_url": "http://store"}},
            }
        },
    )
    opts = config.options_for(config.models["nwm"])
    assert opts["client_kwargs"] == {"endpoint_url": "http://store", "region_name": "us-west-2"}
    assert opts["key"] == "K"
    assert opts["config_kwargs"] == {"connect_timeout": 5}
    # the global options themselves are untouched
    assert config.options_for()["client_kwargs"]["endpoint_url"] == "http://global"


def test_option_keys_are_never_rewritten() -> None:
    headers = {"x-amz-request-payer": "requester", "X-Custom_Key": "v"}
    config = cfg(
        storage_options={"client_kwargs": {"headers": headers}},
        models={"nwm": {"url": "s3://b/n.zarr", "storage_options": {"my-key": 1}}},
    )
    opts = config.options_for(config.models["nwm"])
    assert opts["client_kwargs"]["headers"] == headers
    assert opts["my-key"] == 1
    # dotted overrides below storage_options keep their dashes too
    config = load_config(
        overrides={
            "output": "o",
            "storage_options.client_kwargs.headers.x-api-key": "abc",
            "batch-size": 8,
        }
    )
    assert config.options_for()["client_kwargs"]["headers"] == {"x-api-key": "abc"}
    assert config.batch_size == 8


def test_access_mode_stays_per_store() -> None:
    config = cfg(
        storage_options={"anon": True},
        models={
            "paid": {"url": "s3://rp/n.zarr", "storage_options": {"requester_pays": True}},
            "open": {"url": "s3://open/n.zarr"},
        },
    )
    paid = config.options_for(config.models["paid"])
    assert paid["requester_pays"] is True
    assert "anon" not in paid
    assert config.options_for(config.models["open"])["anon"] is True
    config = cfg(
        storage_options={"requester_pays": True, "key": "K"},
        models={"pub": {"url": "s3://pub/n.zarr", "storage_options": {"anon": True}}},
    )
    pub = config.options_for(config.models["pub"])
    assert pub["anon"] is True
    assert "requester_pays" not in pub
    assert merge_options({"a": {"b": 1}}, {"a": {"c": 2}}) == {"a": {"b": 1, "c": 2}}


def test_hytest_catalog_options_reach_s3fs_as_written() -> None:
    options = {
        "anon": False,
        "requester_pays": True,
        "client_kwargs": {"endpoint_url": "https://usgs.osn.mghpcc.org"},
    }
    config = cfg(models={"nwm": {"url": "s3://b/nwm.zarr", "storage_options": options}})
    opts = config.options_for(config.models["nwm"])
    fs, _ = fsspec.core.url_to_fs("s3://b/nwm.zarr", **opts)
    assert type(fs).__name__ == "RetryingS3FileSystem"
    assert fs.client_kwargs == {"endpoint_url": "https://usgs.osn.mghpcc.org"}
    assert fs.req_kw == {"RequestPayer": "requester"}
    assert fs.retry_policy.max_wait_s == config.retries["max_wait_s"]


def test_config_kwargs_retries_do_not_crash_and_are_kept() -> None:
    config = cfg(storage_options={"config_kwargs": {"retries": {"max_attempts": 2}}})
    opts = config.options_for(config.observed)
    assert isinstance(opts["config_kwargs"], dict)
    opts["config_kwargs"].pop("retries")  # plain, mutable: what crashed as a mappingproxy
    fs, _ = fsspec.core.url_to_fs("s3://bucket/obs.zarr", **config.options_for(config.observed))
    assert fs.config_kwargs["retries"] == {"max_attempts": 2}
    # without it, botocore's own retries are off: one layer decides
    fs, _ = fsspec.core.url_to_fs("s3://bucket/x", anon=True)
    assert fs.config_kwargs["retries"] == {"mode": "standard", "total_max_attempts": 1}
    assert fs.retries == 1


def test_retry_policy_travels_only_to_s3_urls() -> None:
    config = cfg(retries={"max_wait_s": 7}, output="./local-out")
    assert "gagebench_retries" not in config.options_for()
    assert config.options_for(config.observed)["gagebench_retries"]["max_wait_s"] == 7.0
    from gagebench.storage.fs import options_for_url

    assert options_for_url("https://x/gages.csv", {"gagebench_retries": {}, "a": 1}) == {"a": 1}
    with pytest.raises(Exception, match=r"gagebench\.retries"):
        cfg(retries={"max_attempts": -1})
