"""The Helm chart, rendered and linted by the real Helm engine (helm-python-sdk)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from chartkit import CHART_DIR, NAMESPACE, RELEASE, ROOT, VALUE_SETS, helm, one

from gagebench._version import __version__
from gagebench.config import PACKAGED_DEFAULTS

pytestmark = pytest.mark.chart

LINTED = ["default", *[name for name in VALUE_SETS if name != "default"]]


def pod_spec(objects: list[dict[str, Any]]) -> dict[str, Any]:
    """The controller pod spec, from the Job or the CronJob."""
    for obj in objects:
        if obj["kind"] == "Job":
            return obj["spec"]["template"]["spec"]
        if obj["kind"] == "CronJob":
            return obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    raise AssertionError("no Job or CronJob rendered")


def run_config(objects: list[dict[str, Any]]) -> dict[str, Any]:
    """The run configuration the Job reads (the ConfigMap's run.yaml)."""
    data = one(objects, "ConfigMap")["data"]
    assert set(data) == {"run.yaml"}
    loaded: dict[str, Any] = yaml.safe_load(data["run.yaml"])
    assert set(loaded) == {"gagebench"}
    return loaded["gagebench"]


def test_app_version_is_package_version() -> None:
    chart = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())
    assert str(chart["appVersion"]) == __version__, (
        f"helm/gagebench/Chart.yaml appVersion {chart['appVersion']!r} != package version "
        f"{__version__!r} (src/gagebench/_version.py): set appVersion to the package version"
    )


@pytest.mark.parametrize("name", LINTED)
def test_lint_strict(name: str) -> None:
    report = helm.lint(CHART_DIR, VALUE_SETS[name], strict=True, namespace=NAMESPACE)
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert report["errors"] == [], report
    assert problems == [], problems
    assert report["total_charts_linted"] == 1


@pytest.mark.parametrize("name", LINTED)
def test_renders_expected_objects(render: Any, name: str) -> None:
    objects = render(VALUE_SETS[name])
    kinds = sorted(o["kind"] for o in objects)
    workload = "CronJob" if VALUE_SETS[name].get("schedule") else "Job"
    expected = ["ConfigMap", "Pod", "Role", "RoleBinding", "ServiceAccount", workload]
    if VALUE_SETS[name].get("s3", {}).get("inlineCredentials", {}).get("enabled"):
        expected.append("Secret")
    assert kinds == sorted(expected)
    for obj in objects:
        assert obj["metadata"]["namespace"] == NAMESPACE, obj["metadata"]


def test_bad_values_fail_the_schema(chart: Any) -> None:
    bad = yaml.safe_load((ROOT / "tests" / "chart" / "bad-values.yaml").read_text())
    with pytest.raises(helm.HelmValuesError) as err:
        chart.render(bad, name=RELEASE, namespace=NAMESPACE)
    message = str(err.value)
    for needle in ("imagee", "/job/backoffLimit", "/dask/nWorkers", "/config/cluster/backend"):
        assert needle in message, message


@pytest.mark.parametrize(
    ("values", "where"),
    [
        ({"controller": {"resources": {"requests": {"cpu": 1}}, "extra": 1}}, "extra"),
        ({"s3": {"inlineCredentials": {"enabled": "yes"}}}, "/s3/inlineCredentials/enabled"),
        ({"config": {"suites": ["standard", "nse"]}}, "/config/suites/1"),
        ({"config": {"observed": {"url": "s3://x", "varable": "q"}}}, "varable"),
        ({"dask": {"securityContext": {"runAsUser": 0}}}, "/dask/securityContext/runAsUser"),
        ({"crdCheck": "sometimes"}, "/crdCheck"),
    ],
)
def test_schema_rejects_unknown_keys_and_wrong_types(
    chart: Any, values: dict[str, Any], where: str
) -> None:
    with pytest.raises(helm.HelmValuesError, match=re.escape(where)):
        chart.render(values, name=RELEASE, namespace=NAMESPACE)


def test_schema_forbids_additional_properties_everywhere() -> None:
    """Every object of the schema closes its keys, except documented free-form maps."""
    import json

    schema = json.loads((CHART_DIR / "values.schema.json").read_text())
    open_maps: list[str] = []

    def walk(node: dict[str, Any], path: str) -> None:
        if node.get("type") == "object" and "properties" in node:
            assert node.get("additionalProperties") is False, f"{path} allows unknown keys"
            for key, sub in node["properties"].items():
                walk(sub, f"{path}.{key}")
        elif node.get("type") == "object":
            open_maps.append(path)
            extra = node.get("additionalProperties")
            if isinstance(extra, dict):
                walk(extra, f"{path}.*")

    walk(schema, "")
    # Free-form by nature: Kubernetes objects the API server validates, fsspec options,
    # string maps (labels, annotations, nodeSelector, env), resource quantities.
    allowed = re.compile(
        r"\.(global|affinity|podSecurityContext|securityContext|storage_options|annotations|"
        r"labels|nodeSelector|podAnnotations|podLabels|env|requests|limits|models)$"
    )
    unexpected = [p for p in open_maps if not allowed.search(p)]
    assert unexpected == [], unexpected


def test_every_value_is_commented() -> None:
    """Each top-level and second-level key of values.yaml has a comment above it (a comment
    may cover a group of sibling keys written directly below it)."""
    lines = (CHART_DIR / "values.yaml").read_text().splitlines()
    key = re.compile(r"^(\s*)([A-Za-z_][\w-]*):")
    missing = []
    for i, line in enumerate(lines):
        m = key.match(line)
        if not m or len(m.group(1)) > 2:
            continue
        indent = m.group(1)
        j = i - 1
        while j >= 0:
            prev = lines[j]
            if prev.startswith(indent + "#"):
                break
            sibling = key.match(prev)
            if sibling and sibling.group(1) == indent and not prev.rstrip().endswith(":"):
                j -= 1  # a scalar sibling of the same comment group
                continue
            missing.append(f"line {i + 1}: {line.strip()}")
            break
        else:
            missing.append(f"line {i + 1}: {line.strip()}")
    assert missing == [], missing


def test_job_by_default_cronjob_when_scheduled(render: Any) -> None:
    job = one(render({}), "Job")
    assert job["metadata"]["name"] == f"{RELEASE}-gagebench-1"
    spec = job["spec"]
    assert spec["backoffLimit"] == 1
    assert spec["activeDeadlineSeconds"] == 86400
    assert spec["ttlSecondsAfterFinished"] == 604800
    assert spec["template"]["spec"]["restartPolicy"] == "Never"

    objects = render(VALUE_SETS["cronjob-values"])
    assert [o for o in objects if o["kind"] == "Job"] == []
    cron = one(objects, "CronJob")
    assert cron["spec"]["schedule"] == "0 3 * * 1"
    assert cron["spec"]["timeZone"] == "Etc/UTC"
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    job_spec = cron["spec"]["jobTemplate"]["spec"]
    assert job_spec["backoffLimit"] == 1
    assert job_spec["activeDeadlineSeconds"] == 86400
    # Each scheduled run needs its own id: the controller puts the UTC time in it (a null
    # run_id would be the settings hash, the same every night).
    assert run_config(objects)["run_id"] == f"{RELEASE}-{{time}}"


def test_ttl_can_be_disabled(render: Any) -> None:
    spec = one(render({"job": {"ttlSecondsAfterFinished": None}}), "Job")["spec"]
    assert "ttlSecondsAfterFinished" not in spec


@pytest.mark.parametrize("name", LINTED)
def test_secure_defaults(render: Any, name: str) -> None:
    objects = render(VALUE_SETS[name])
    pods = [pod_spec(objects), one(objects, "Pod")["spec"]]
    for spec in pods:
        psc = spec["securityContext"]
        assert psc["runAsNonRoot"] is True
        assert psc["runAsUser"] == 10001
        assert psc["runAsGroup"] == 10001
        assert psc["seccompProfile"] == {"type": "RuntimeDefault"}
        assert spec["enableServiceLinks"] is False
        (container,) = spec["containers"]
        csc = container["securityContext"]
        assert csc["readOnlyRootFilesystem"] is True
        assert csc["allowPrivilegeEscalation"] is False
        assert csc["privileged"] is False
        assert csc["capabilities"] == {"drop": ["ALL"]}
        assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
        assert any(v["name"] == "tmp" and "emptyDir" in v for v in spec["volumes"])
        assert {"name": "HOME", "value": "/tmp"} in container["env"]
        assert container["resources"]["limits"]["memory"]
    # Only the controller gets an API token; the helm test pod needs none.
    assert pods[0]["automountServiceAccountToken"] is True
    assert pods[1]["automountServiceAccountToken"] is False
    # The Dask pods: gagebench.yaml's non-root default unless values set one.
    kube = run_config(objects)["cluster"]["kubernetes"]
    sc = kube.get(
        "security_context", PACKAGED_DEFAULTS["cluster"]["kubernetes"]["security_context"]
    )
    assert sc == {"run_as_user": 10001, "run_as_group": 10001, "fs_group": 10001}


def test_controller_command_env_and_config_mount(render: Any) -> None:
    objects = render({})
    (container,) = pod_spec(objects)["containers"]
    assert container["command"] == ["gagebench", "run", "--config", "/etc/gagebench/run.yaml"]
    assert "args" not in container
    env = {e["name"]: e for e in container["env"]}
    assert env["POD_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["POD_NAMESPACE"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert env["GAGEBENCH_IMAGE"]["value"] == container["image"]
    assert container["image"] == f"ghcr.io/gagebench/gagebench:{__version__}"
    assert not any(name.startswith("AWS_") for name in env), "no credentials by default"
    mount = next(m for m in container["volumeMounts"] if m["name"] == "config")
    assert mount == {"name": "config", "mountPath": "/etc/gagebench", "readOnly": True}
    volume = next(v for v in pod_spec(objects)["volumes"] if v["name"] == "config")
    assert volume["configMap"]["name"] == one(objects, "ConfigMap")["metadata"]["name"]


def test_credentials_from_existing_secret(render: Any) -> None:
    objects = render(VALUE_SETS["cronjob-values"])
    assert [o for o in objects if o["kind"] == "Secret"] == []
    env = {e["name"]: e for e in pod_spec(objects)["containers"][0]["env"]}
    refs = {
        name: e["valueFrom"]["secretKeyRef"]
        for name, e in env.items()
        if "secretKeyRef" in e.get("valueFrom", {})
    }
    assert refs == {
        "AWS_ACCESS_KEY_ID": {"name": "gagebench-s3", "key": "access-key"},
        "AWS_SECRET_ACCESS_KEY": {"name": "gagebench-s3", "key": "secret-key"},
        "AWS_SESSION_TOKEN": {"name": "gagebench-s3", "key": "session-token"},
    }
    assert env["AWS_REGION"]["value"] == "eu-central-1"
    # The Dask pods get the same credentials from the same Secret (secret_env).
    kube = run_config(objects)["cluster"]["kubernetes"]
    assert kube["secret_env"] == {
        "secret_name": "gagebench-s3",
        "keys": {
            "AWS_ACCESS_KEY_ID": "access-key",
            "AWS_SECRET_ACCESS_KEY": "secret-key",
            "AWS_SESSION_TOKEN": "session-token",
        },
    }
    assert kube["env"] == {
        "AWS_DEFAULT_REGION": "eu-central-1",
        "AWS_REGION": "eu-central-1",
        "MALLOC_TRIM_THRESHOLD_": "65536",
    }


def test_inline_credentials_are_test_only_and_exclusive(chart: Any, render: Any) -> None:
    objects = render(VALUE_SETS["kind-values"])
    secret = one(objects, "Secret")
    assert "test-only" in secret["metadata"]["annotations"]["gagebench/warning"]
    assert set(secret["stringData"]) == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    kube = run_config(objects)["cluster"]["kubernetes"]
    assert kube["secret_env"]["secret_name"] == secret["metadata"]["name"]
    assert kube["env"]["AWS_ENDPOINT_URL"] == "http://s3.gagebench-e2e.svc.cluster.local:5000"
    both = {"s3": {"existingSecret": "x", "inlineCredentials": {"enabled": True}}}
    with pytest.raises(helm.HelmRenderError, match="mutually exclusive"):
        chart.render(both, name=RELEASE, namespace=NAMESPACE)


def test_irsa_service_account_and_dask_placement(render: Any) -> None:
    objects = render(VALUE_SETS["s3-irsa-values"])
    sa = one(objects, "ServiceAccount")
    assert sa["metadata"]["annotations"] == {
        "eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/gagebench-s3"
    }
    assert pod_spec(objects)["serviceAccountName"] == sa["metadata"]["name"]
    assert pod_spec(objects)["nodeSelector"] == {"kubernetes.io/os": "linux"}
    kube = run_config(objects)["cluster"]["kubernetes"]
    assert kube["service_account"] == sa["metadata"]["name"]
    assert kube["adapt"] == {"minimum": 2, "maximum": 40}
    assert kube["node_selector"] == {"workload": "dask"}
    assert kube["tolerations"][0]["key"] == "dedicated"
    assert "nodeAffinity" in kube["affinity"]
    assert kube["worker_threads"] == 2
    assert "secret_env" not in kube  # no Secret: gagebench.yaml's default (none)


def test_config_map_maps_onto_the_kubernetes_backend(render: Any) -> None:
    cfg = run_config(render({}))
    kube = cfg["cluster"]["kubernetes"]
    # what the chart knows; unset `dask` values keep gagebench.yaml's defaults (not written)
    assert set(kube) == {
        "namespace", "image", "image_pull_policy", "service_account", "labels", "owner_job",
    }  # fmt: skip
    assert kube["namespace"] == NAMESPACE
    assert kube["image"] == f"ghcr.io/gagebench/gagebench:{__version__}"
    assert kube["owner_job"] == "auto"
    assert kube["labels"]["app.kubernetes.io/instance"] == RELEASE
    assert cfg["run_id"] == f"{RELEASE}-1"
    assert cfg["cluster"]["backend"] == "kubernetes"


@pytest.mark.parametrize("name", LINTED)
def test_config_map_is_a_valid_run_config(render: Any, name: str, tmp_path: Path) -> None:
    """The real config loader accepts what the chart writes (same keys, same types)."""
    from gagebench.config import load_config

    path = tmp_path / "run.yaml"
    path.write_text(one(render(VALUE_SETS[name]), "ConfigMap")["data"]["run.yaml"])
    cfg = load_config(path)
    assert cfg.cluster.backend == "kubernetes"
    expected_id = VALUE_SETS[name].get("config", {}).get("run_id") or f"{RELEASE}-1"
    if not VALUE_SETS[name].get("schedule"):
        assert cfg.run_id == expected_id
    assert cfg.cluster.options["kubernetes"]["namespace"] == NAMESPACE


@pytest.mark.parametrize("name", LINTED)
def test_kubernetes_backend_accepts_the_chart_settings(
    render: Any, name: str, tmp_path: Path
) -> None:
    """gagebench's own kubernetes backend validates the settings the chart renders."""
    clusters = pytest.importorskip("gagebench.clusters.kubernetes")
    from gagebench.config import load_config

    path = tmp_path / "run.yaml"
    path.write_text(one(render(VALUE_SETS[name]), "ConfigMap")["data"]["run.yaml"])
    backend = clusters.KubernetesBackend(load_config(path))
    assert backend.options["namespace"] == NAMESPACE


@pytest.mark.parametrize("name", LINTED)
def test_standard_labels_everywhere(render: Any, name: str) -> None:
    for obj in render(VALUE_SETS[name]):
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "gagebench"
        assert labels["app.kubernetes.io/instance"] == RELEASE
        assert labels["app.kubernetes.io/version"] == __version__
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels["app.kubernetes.io/component"]
        assert labels["helm.sh/chart"] == "gagebench-0.1.0"


def test_crd_check_offline_rendering_succeeds_by_default(render: Any) -> None:
    """`helm template` (no cluster: lookup returns nothing) must work with default values."""
    assert one(render({}), "Job")


def test_crd_check_fails_with_a_clear_message_when_the_api_lacks_it(chart: Any) -> None:
    """crdCheck=always checks .Capabilities.APIVersions even offline: the offline engine
    knows only built-in APIs, exactly the situation of a cluster without the operator."""
    with pytest.raises(helm.HelmRenderError) as err:
        chart.render({"crdCheck": "always"}, name=RELEASE, namespace=NAMESPACE)
    message = str(err.value)
    assert "kubernetes.dask.org/v1" in message
    assert "operator/install.sh" in message
    assert "dask-kubernetes-operator" in message


@pytest.mark.parametrize(
    "values",
    [{"crdCheck": "never"}, {"crdCheck": "always", "config": {"cluster": {"backend": "local"}}}],
)
def test_crd_check_skipped_when_not_needed(render: Any, values: dict[str, Any]) -> None:
    assert one(render(values), "Job")


def test_helm_test_hook_checks_the_manifest(render: Any) -> None:
    objects = render({})
    pod = one(objects, "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    (container,) = pod["spec"]["containers"]
    assert container["image"] == pod_spec(objects)["containers"][0]["image"]
    assert container["command"][:2] == ["python", "-c"]
    assert "manifest.json" in container["command"][2]
    compile(container["command"][2], "helm-test", "exec")  # valid Python


def test_notes_say_how_to_follow_the_run_and_where_results_land(chart: Any) -> None:
    notes = chart.render({}, name=RELEASE, namespace=NAMESPACE)["gagebench/templates/NOTES.txt"]
    assert f"kubectl -n {NAMESPACE} logs -f job/{RELEASE}-gagebench-1" in notes
    assert f"s3://gagebench-results/runs/{RELEASE}-1/" in notes
    assert "manifest.json" in notes
    assert f"helm test {RELEASE}" in notes
