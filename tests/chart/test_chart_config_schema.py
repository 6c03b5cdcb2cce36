"""The chart's ``config`` section (generated from gagebench's settings schema) accepts the
run settings gagebench accepts, through the real Helm engine, and the ConfigMap it renders
is a run file gagebench loads (an independent check of the generated section)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from chartkit import NAMESPACE, RELEASE, Manifests, helm, one

from gagebench.clusters import check_settings
from gagebench.config import validate

#: Settings users give the chart that gagebench accepts (each merged over the chart's config).
ACCEPTED: list[tuple[str, dict[str, Any]]] = [
    (
        "netcdf list",
        {"models": {"nc": {"url": ["s3://b/a.nc", "s3://b/b.nc"], "engine": "netcdf"}}},
    ),
    ("netcdf glob", {"models": {"nc": {"url": "s3://b/*.nc", "engine": "netcdf"}}}),
    ("url alone", {"models": {"nwm": "s3://b/nwm.zarr"}, "observed": "s3://b/o.zarr"}),
    ("empty storage options", {"storage_options": None, "observed": {"url": "s3://b/o.zarr"}}),
    ("variable null", {"observed": {"url": "s3://b/o.zarr", "variable": None}}),
    ("local backend", {"cluster": {"backend": "local", "local": {"n_workers": 2}}}),
    ("uncertainty", {"suites": ["standard", "uncertainty"], "uncertainty": {"seed": 3}}),
    ("suites as text", {"suites": "standard,dscore"}),
    ("a suite twice", {"suites": ["standard", "standard"]}),
]


@pytest.mark.parametrize("config", [a[1] for a in ACCEPTED], ids=[a[0] for a in ACCEPTED])
def test_the_chart_accepts_what_gagebench_accepts(
    render: Callable[..., Manifests], config: dict[str, Any]
) -> None:
    objects = render({"config": config})
    run_file = yaml.safe_load(one(objects, "ConfigMap")["data"]["run.yaml"])
    settings = run_file.get("gagebench", run_file)
    check_settings(validate(settings), cluster=False)


@pytest.mark.parametrize(
    ("config", "where"),
    [
        ({"models": {"nc": {"url": ["s3://b/a.nc"]}}}, "/config/models/nc"),
        ({"models": {"m2": {"variable": "q"}}}, "/config/models/m2"),
        ({"observed": " "}, "/config/observed"),
    ],
)
def test_the_chart_refuses_what_gagebench_refuses(
    chart: Any, config: dict[str, Any], where: str
) -> None:
    with pytest.raises(helm.HelmValuesError, match=re.escape(where)):
        chart.render({"config": config}, name=RELEASE, namespace=NAMESPACE)
