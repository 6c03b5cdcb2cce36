"""DaskCluster manifests of the kubernetes backend against the CRD shipped in dask-kubernetes.

Every object the backend can generate (defaults, and each option set) is validated with
jsonschema against the ``openAPIV3Schema`` of the DaskCluster CRD found inside the
installed dask-kubernetes wheel, made strict the way the API server reads it (see
:func:`structural`), and the option mapping is checked field by field.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import dask_kubernetes
import jsonschema
import pytest
import yaml

from gagebench.clusters import get_backend
from gagebench.clusters._kubespec import KubeContext, default_cluster_name, label_value, to_yaml
from gagebench.clusters.kubernetes import KubernetesBackend
from gagebench.config import load_config
from gagebench.errors import ConfigError

CRD_FILE = (
    Path(dask_kubernetes.__file__).parent
    / "operator/deployment/helm/dask-kubernetes-operator/crds/daskcluster.yaml"
)
CTX = KubeContext(namespace="gb", image="registry.example/gagebench:1.2.3")

# ObjectMeta fields an API server accepts on a custom resource; the CRD leaves metadata
# to the server, so the test spells out the part we use.
_OBJECT_META = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "maxLength": 63, "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
        "namespace": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
        "labels": {
            "type": "object",
            "additionalProperties": {
                "type": "string",
                "maxLength": 63,
                "pattern": "^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$",
            },
        },
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
        "ownerReferences": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["apiVersion", "kind", "name", "uid"],
                "properties": {
                    "apiVersion": {"type": "string"},
                    "kind": {"type": "string"},
                    "name": {"type": "string"},
                    "uid": {"type": "string"},
                    "controller": {"type": "boolean"},
                    "blockOwnerDeletion": {"type": "boolean"},
                },
            },
        },
    },
}


def structural(node: Any) -> Any:
    """The CRD schema with unknown fields rejected where the API server drops/rejects them.

    In a structural CRD schema an object node that lists ``properties`` and has neither
    ``additionalProperties`` nor ``x-kubernetes-preserve-unknown-fields: true`` does not
    keep unknown fields: the server prunes them, and rejects them under strict field
    validation (``kubectl --validate=strict``, the default since 1.27). jsonschema reads
    a missing ``additionalProperties`` as "anything goes", so we set it to false on those
    nodes. Nodes with ``additionalProperties`` (maps such as labels, nodeSelector,
    resources) and nodes marked ``x-kubernetes-preserve-unknown-fields`` stay open,
    as they are open on the server.
    """
    if isinstance(node, list):
        return [structural(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: structural(v) for k, v in node.items()}
    if (
        out.get("type") == "object"
        and "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft4Validator:
    crd = yaml.safe_load(CRD_FILE.read_text())
    assert crd["spec"]["names"]["kind"] == "DaskCluster"
    (version,) = [v for v in crd["spec"]["versions"] if v["storage"]]
    schema = structural(copy.deepcopy(version["schema"]["openAPIV3Schema"]))
    group = crd["spec"]["group"]
    # apiVersion/kind/metadata are implicit in every CRD; the server checks them itself.
    schema["properties"].update(
        {
            "apiVersion": {"enum": [f"{group}/{version['name']}"]},
            "kind": {"enum": ["DaskCluster"]},
            "metadata": _OBJECT_META,
        }
    )
    schema["required"] = sorted({*schema.get("required", []), "apiVersion", "kind", "metadata"})
    return jsonschema.Draft4Validator(schema)


def _backend(tmp_path: Path, **options: Any) -> KubernetesBackend:
    overrides = {f"cluster.kubernetes.{k}": v for k, v in options.items()}
    cfg = load_config(output=str(tmp_path), run_id="Run_2026.11.26-a", overrides=overrides)
    backend = get_backend(cfg, "kubernetes")
    assert isinstance(backend, KubernetesBackend)
    return backend


OPTION_CASES: dict[str, dict[str, Any]] = {
    "defaults": {},
    "name": {"name": "nwm-retro"},
    "namespace": {"namespace": "hydro"},
    "image": {"image": "ghcr.io/org/gagebench:2.0"},
    "image_pull_policy": {"image_pull_policy": "Always"},
    "service_account": {"service_account": "gagebench-runner"},
    "n_workers": {"n_workers": 7},
    "adapt": {"adapt": {"minimum": 0, "maximum": 20}},
    "resources": {
        "scheduler_resources": {"requests": {"cpu": 1, "memory": "2Gi"}},
        "worker_resources": {
            "requests": {"cpu": "2", "memory": "8Gi"},
            "limits": {"memory": "8Gi", "nvidia.com/gpu": 1},
        },
    },
    "worker_threads": {"worker_threads": 4},
    "env": {"env": {"AWS_REGION": "us-west-2", "DASK_LOGGING__DISTRIBUTED": "info"}},
    "secret_env": {
        "secret_env": {
            "secret_name": "s3-credentials",
            "keys": {"AWS_ACCESS_KEY_ID": "access-key", "AWS_SECRET_ACCESS_KEY": "secret-key"},
        }
    },
    "node_selector": {"node_selector": {"kubernetes.io/arch": "amd64", "pool": "dask"}},
    "tolerations": {
        "tolerations": [
            {"key": "dask", "operator": "Equal", "value": "true", "effect": "NoSchedule"},
            {"key": "spot", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 60},
        ]
    },
    "affinity": {
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {"key": "pool", "operator": "In", "values": ["dask", "batch"]}
                            ]
                        }
                    ]
                }
            },
            "podAntiAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "weight": 50,
                        "podAffinityTerm": {
                            "topologyKey": "kubernetes.io/hostname",
                            "labelSelector": {"matchLabels": {"dask.org/component": "worker"}},
                        },
                    }
                ]
            },
        }
    },
    "labels": {"labels": {"team": "hytest", "cost-center": "42"}},
    "annotations": {"annotations": {"example.org/owner": "hydro team"}},
    "security_context": {
        "security_context": {"run_as_user": 2000, "run_as_group": 3000, "fs_group": 4000}
    },
    "idle_timeout": {"idle_timeout": 0},
    "owner_job": {"owner_job": {"name": "gagebench-run", "uid": "0b1c-uid"}},
}


@pytest.mark.parametrize("case", sorted(OPTION_CASES))
def test_every_generated_daskcluster_validates_against_the_crd(
    case: str,
    tmp_path: Path,
    validator: jsonschema.Draft4Validator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("POD_NAMESPACE", "gb")
    monkeypatch.setenv("GAGEBENCH_IMAGE", "registry.example/gagebench:1.2.3")
    manifest = _backend(tmp_path, **OPTION_CASES[case]).manifest()
    errors = sorted(validator.iter_errors(manifest), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)
    # and its YAML form (what `gagebench cluster-spec` prints) is the same object
    assert yaml.safe_load(to_yaml(manifest)) == manifest


def test_the_strict_schema_rejects_what_the_server_would(
    tmp_path: Path, validator: jsonschema.Draft4Validator
) -> None:
    good = _backend(tmp_path).manifest(CTX)
    assert validator.is_valid(good)
    typo = copy.deepcopy(good)
    typo["spec"]["worker"]["spec"]["containers"][0]["imagePulPolicy"] = "Always"
    assert not validator.is_valid(typo)
    wrong_type = copy.deepcopy(good)
    wrong_type["spec"]["idleTimeout"] = "600"
    assert not validator.is_valid(wrong_type)
    top = copy.deepcopy(good)
    top["spec"]["workers"] = top["spec"]["worker"]
    assert not validator.is_valid(top)
    bad_label = copy.deepcopy(good)
    bad_label["metadata"]["labels"]["x"] = "not valid!"
    assert not validator.is_valid(bad_label)
    no_scheduler = copy.deepcopy(good)
    del no_scheduler["spec"]["scheduler"]
    assert not validator.is_valid(no_scheduler)


def _containers(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    spec = manifest["spec"]
    return [spec["scheduler"]["spec"]["containers"][0], spec["worker"]["spec"]["containers"][0]]


def _pods(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    return [manifest["spec"]["scheduler"]["spec"], manifest["spec"]["worker"]["spec"]]


def test_defaults_are_hardened_labelled_and_sized(tmp_path: Path) -> None:
    m = _backend(tmp_path).manifest(CTX)
    assert m["apiVersion"] == "kubernetes.dask.org/v1"
    assert m["kind"] == "DaskCluster"
    assert m["metadata"]["name"] == "gagebench-run-2026-11-26-a"
    assert m["metadata"]["namespace"] == "gb"
    assert "ownerReferences" not in m["metadata"]
    labels = m["metadata"]["labels"]
    assert labels["app.kubernetes.io/name"] == "gagebench"
    assert labels["app.kubernetes.io/instance"] == "gagebench-run-2026-11-26-a"
    assert labels["app.kubernetes.io/managed-by"] == "gagebench"
    assert labels["gagebench.io/run-id"] == "Run_2026.11.26-a"
    assert m["metadata"]["annotations"]["gagebench.io/run-id"] == "Run_2026.11.26-a"
    assert m["spec"]["idleTimeout"] == 600
    assert m["spec"]["worker"]["replicas"] == 2
    assert m["spec"]["scheduler"]["metadata"]["labels"]["app.kubernetes.io/component"] == (
        "dask-scheduler"
    )
    assert m["spec"]["worker"]["metadata"]["labels"]["app.kubernetes.io/component"] == (
        "dask-worker"
    )
    for pod in _pods(m):
        assert pod["securityContext"] == {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "runAsGroup": 10001,
            "fsGroup": 10001,
            "seccompProfile": {"type": "RuntimeDefault"},
        }
        assert pod["volumes"] == [{"name": "tmp", "emptyDir": {}}]
        assert "serviceAccountName" not in pod
        for key in ("nodeSelector", "tolerations", "affinity"):
            assert key not in pod
    for container in _containers(m):
        assert container["image"] == CTX.image
        assert container["imagePullPolicy"] == "IfNotPresent"
        assert container["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        }
        assert container["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]
        assert {"name": "DASK_TEMPORARY_DIRECTORY", "value": "/tmp"} in container["env"]
    scheduler, worker = _containers(m)
    assert scheduler["resources"] == {
        "requests": {"cpu": "500m", "memory": "1Gi"},
        "limits": {"memory": "2Gi"},
    }
    assert worker["resources"] == {
        "requests": {"cpu": "1", "memory": "4Gi"},
        "limits": {"memory": "4Gi"},
    }
    assert worker["args"][:3] == ["dask-worker", "--nthreads", "1"]
    assert scheduler["args"][0] == "dask-scheduler"


def test_each_option_lands_where_kubernetes_reads_it(tmp_path: Path) -> None:
    def built(**options: Any) -> dict[str, Any]:
        return _backend(tmp_path, **options).manifest(CTX)

    assert built(name="nwm-retro")["metadata"]["name"] == "nwm-retro"
    assert all(
        c["imagePullPolicy"] == "Always" for c in _containers(built(image_pull_policy="Always"))
    )
    m = _backend(tmp_path).manifest(
        KubeContext(namespace="hydro", image="img:2", service_account="runner")
    )
    assert m["metadata"]["namespace"] == "hydro"
    assert [p["serviceAccountName"] for p in _pods(m)] == ["runner", "runner"]
    assert {c["image"] for c in _containers(m)} == {"img:2"}
    assert built(n_workers=7)["spec"]["worker"]["replicas"] == 7
    assert built(adapt={"minimum": 3, "maximum": 9})["spec"]["worker"]["replicas"] == 3
    assert _containers(built(worker_threads=4))[1]["args"][:3] == ["dask-worker", "--nthreads", "4"]
    m = built(**OPTION_CASES["resources"])
    # each of requests/limits replaces its default as a whole; an unset one stays...
    assert _containers(m)[0]["resources"] == {
        "requests": {"cpu": "1", "memory": "2Gi"},
        "limits": {"memory": "2Gi"},
    }
    # ...unless set to null
    m2 = built(scheduler_resources={"requests": {"cpu": "250m"}, "limits": None})
    assert _containers(m2)[0]["resources"] == {"requests": {"cpu": "250m"}}
    assert _containers(m)[1]["resources"]["limits"] == {"memory": "8Gi", "nvidia.com/gpu": "1"}
    m = built(env={"AWS_REGION": "us-west-2", "DASK_TEMPORARY_DIRECTORY": "/scratch"})
    for c in _containers(m):
        assert {"name": "AWS_REGION", "value": "us-west-2"} in c["env"]
        assert [e for e in c["env"] if e["name"] == "DASK_TEMPORARY_DIRECTORY"] == [
            {"name": "DASK_TEMPORARY_DIRECTORY", "value": "/scratch"}
        ]
    m = built(**OPTION_CASES["secret_env"])
    for c in _containers(m):
        assert {
            "name": "AWS_SECRET_ACCESS_KEY",
            "valueFrom": {"secretKeyRef": {"name": "s3-credentials", "key": "secret-key"}},
        } in c["env"]
        assert all("secret-key" not in str(e.get("value", "")) for e in c["env"])
    m = built(**OPTION_CASES["node_selector"], **OPTION_CASES["tolerations"])
    for pod in _pods(m):
        assert pod["nodeSelector"] == {"kubernetes.io/arch": "amd64", "pool": "dask"}
        assert pod["tolerations"] == OPTION_CASES["tolerations"]["tolerations"]
    m = built(**OPTION_CASES["affinity"])
    assert all(p["affinity"] == OPTION_CASES["affinity"]["affinity"] for p in _pods(m))
    m = built(labels={"team": "hytest"}, annotations={"example.org/owner": "hydro"})
    assert m["metadata"]["labels"]["team"] == "hytest"
    assert m["metadata"]["annotations"]["example.org/owner"] == "hydro"
    m = built(**OPTION_CASES["security_context"])
    assert all(
        (p["securityContext"]["runAsUser"], p["securityContext"]["fsGroup"]) == (2000, 4000)
        for p in _pods(m)
    )
    assert built(idle_timeout=0)["spec"]["idleTimeout"] == 0
    m = _backend(tmp_path).manifest(
        KubeContext(
            namespace="gb",
            image="i",
            owner={"apiVersion": "batch/v1", "kind": "Job", "name": "j", "uid": "u-1"},
        )
    )
    assert m["metadata"]["ownerReferences"] == [
        {"apiVersion": "batch/v1", "kind": "Job", "name": "j", "uid": "u-1"}
    ]


def test_cluster_names_are_dns_safe_and_short() -> None:
    assert default_cluster_name("20261126T141500Z") == "gagebench-20261126t141500z"
    assert default_cluster_name("My_Run..2") == "gagebench-my-run-2"
    long = default_cluster_name("x" * 128)
    assert len(long) <= 53
    assert long.startswith("gagebench-xxx")
    assert default_cluster_name("a" * 43 + "-.b") == "gagebench-" + "a" * 43
    assert label_value("run.-") == "run"
    assert label_value("r" * 100) == "r" * 63


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"name": "Bad_Name"}, r"cluster\.kubernetes\.name"),
        ({"namespace": "Has Spaces"}, r"cluster\.kubernetes\.namespace"),
        ({"image_pull_policy": "Sometimes"}, r"image_pull_policy"),
        ({"adapt": {"minimum": 1, "maximum": None}}, r"adapt: expected both"),
        ({"adapt": {"minimum": 5, "maximum": 2}}, r"adapt\.maximum"),
        ({"n_workers": 0}, r"n_workers: expected an integer >= 1"),
        ({"worker_threads": 0}, r"worker_threads"),
        ({"secret_env": {"keys": {"AWS_ACCESS_KEY_ID": "k"}}}, r"secret_env\.secret_name"),
        ({"security_context": {"run_as_user": 0, "run_as_group": 1, "fs_group": 1}}, "run_as_user"),
        ({"worker_resources": {"request": {"cpu": 1}}}, r"worker_resources"),
        ({"tolerations": {"key": "x"}}, r"tolerations"),
        ({"env": {"1BAD": "x"}}, r"env"),
        ({"owner_job": "always"}, r"owner_job"),
        ({"idle_timeout": -1}, r"idle_timeout"),
        ({"wait_timeout": 0}, r"wait_timeout"),
        ({"workers": 3}, r"unknown setting\(s\) gagebench\.cluster\.kubernetes\.workers"),
    ],
)
def test_bad_settings_name_the_key(tmp_path: Path, options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _backend(tmp_path, **options)
