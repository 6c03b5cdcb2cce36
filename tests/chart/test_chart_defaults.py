"""The chart restates none of gagebench's defaults: gagebench.yaml is their one source.

The ConfigMap's run.yaml carries what the chart knows (run id, namespace, image, service
account, S3 Secret, labels) and what the user set in values; every other setting is left
out, so the package's default applies (and changes with the package, not the chart).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
import yaml
from chartkit import CHART_DIR, one

from gagebench.config import load_config

pytestmark = pytest.mark.chart

#: Set by the chart from what it knows, whatever the package's default is: the pull policy
#: of the chart's image (used for the controller pod too) and the ownership of the
#: DaskCluster by the controller's Job, which the chart's cleanup relies on.
CHART_OWNED = {"cluster.kubernetes.image_pull_policy", "cluster.kubernetes.owner_job"}


def _leaves(node: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted key -> value of every non-mapping value (empty mappings count as values)."""
    if not isinstance(node, dict) or not node:
        return {prefix: node}
    out: dict[str, Any] = {}
    for key, value in node.items():
        out.update(_leaves(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def _package_defaults() -> dict[str, Any]:
    text = files("gagebench").joinpath("gagebench.yaml").read_text()
    defaults: dict[str, Any] = yaml.safe_load(text)["gagebench"]
    return defaults


def _run_yaml(render: Any, values: dict[str, Any]) -> dict[str, Any]:
    data = one(render(values), "ConfigMap")["data"]["run.yaml"]
    cfg: dict[str, Any] = yaml.safe_load(data)["gagebench"]
    return cfg


def test_rendered_config_restates_no_package_default(render: Any) -> None:
    defaults = _leaves(_package_defaults())
    rendered = _leaves(_run_yaml(render, {}))
    restated = {
        key: value
        for key, value in rendered.items()
        if key in defaults and defaults[key] == value and key not in CHART_OWNED
    }
    assert restated == {}


def test_values_restate_no_package_default() -> None:
    """values.yaml's `config` holds only the chart's own choices (pod-friendly logging, the
    kubernetes backend, example URLs), and `dask` only unset (null / {}) settings."""
    values = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    defaults = _leaves(_package_defaults())
    config = _leaves(values["config"])
    del config["run_id"]  # null means the chart's own id (<release>-<revision>), set below
    assert {k: v for k, v in config.items() if defaults.get(k, object()) == v} == {}
    assert values["config"]["uncertainty"] == {}
    unset = {k: v for k, v in values["dask"].items() if k != "name" and v not in (None, {}, [])}
    assert unset == {}


def test_settings_left_out_take_the_package_defaults(render: Any, tmp_path: Path) -> None:
    cfg = _run_yaml(render, {})
    assert not {"suites", "uncertainty", "batch_size", "mode", "gages"} & set(cfg)
    kube = cfg["cluster"]["kubernetes"]
    assert not {"n_workers", "worker_threads", "idle_timeout", "security_context"} & set(kube)
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({"gagebench": cfg}))
    loaded = load_config(path)
    defaults = _package_defaults()
    assert list(loaded.suites) == defaults["suites"]
    assert loaded.batch_size == defaults["batch_size"]
    options = loaded.cluster.options["kubernetes"]
    assert options["n_workers"] == defaults["cluster"]["kubernetes"]["n_workers"]
    assert options["idle_timeout"] == defaults["cluster"]["kubernetes"]["idle_timeout"]


def test_what_the_user_sets_is_written(render: Any, tmp_path: Path) -> None:
    cfg = _run_yaml(
        render,
        {
            "config": {"uncertainty": {"n_samples": 200}, "batch_size": 16, "suites": ["standard"]},
            "dask": {
                "nWorkers": 0,
                "workerThreads": 2,
                "securityContext": {"runAsUser": 2000},
                "idleTimeout": 60,
            },
        },
    )
    assert cfg["uncertainty"] == {"n_samples": 200}
    assert cfg["batch_size"] == 16
    assert cfg["suites"] == ["standard"]
    kube = cfg["cluster"]["kubernetes"]
    assert kube["n_workers"] == 0  # a set zero is kept, not taken for unset
    assert kube["worker_threads"] == 2
    assert kube["security_context"] == {"run_as_user": 2000}
    assert kube["idle_timeout"] == 60
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({"gagebench": cfg}))
    loaded = load_config(path)
    assert loaded.uncertainty["n_samples"] == 200
    assert loaded.uncertainty["min_years"] == _package_defaults()["uncertainty"]["min_years"]
    security = loaded.cluster.options["kubernetes"]["security_context"]
    assert security["run_as_user"] == 2000
    default_security = _package_defaults()["cluster"]["kubernetes"]["security_context"]
    assert security["fs_group"] == default_security["fs_group"]
