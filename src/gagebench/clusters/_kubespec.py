"""Build the DaskCluster manifest of the ``kubernetes`` backend, without touching a cluster.

The starting point is dask-kubernetes' own ``make_cluster_spec``; this module edits it for
what a production run needs (image, service account, env and Secret refs, resources,
scheduling, a hardened security context, labels, idle timeout, namespace, owner). It is
pure: the cluster-dependent facts (namespace, image, service account, owner) arrive in a
:class:`KubeContext`, so ``gagebench cluster-spec`` can print exactly what would be created.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gagebench._version import __version__

RUN_ID_LABEL = "gagebench.io/run-id"
RUN_ID_ANNOTATION = "gagebench.io/run-id"
TMP_VOLUME = "tmp"
_LABEL_VALUE = re.compile(r"[^A-Za-z0-9._-]")


@dataclass(frozen=True)
class KubeContext:
    """Where and as whom the cluster runs: resolved from config, env or the API."""

    namespace: str
    image: str
    service_account: str | None = None
    owner: Mapping[str, Any] | None = None


def default_cluster_name(run_id: str) -> str:
    """``gagebench-<run_id>`` lowercased and made DNS-safe, short enough for the operator."""
    from dask_kubernetes.constants import MAX_CLUSTER_NAME_LEN

    slug = re.sub(r"[^a-z0-9-]+", "-", f"gagebench-{run_id}".lower())
    slug = re.sub(r"-{2,}", "-", slug)[:MAX_CLUSTER_NAME_LEN]
    return slug.strip("-")


def label_value(text: str) -> str:
    """A Kubernetes label value: at most 63 of [A-Za-z0-9._-], alphanumeric at both ends."""
    value = _LABEL_VALUE.sub("-", text)[:63]
    return re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", value)


def owner_reference(job_name: str, job_uid: str) -> dict[str, Any]:
    """An ownerReference to a batch/v1 Job: deleting the Job garbage-collects the owned."""
    return {"apiVersion": "batch/v1", "kind": "Job", "name": job_name, "uid": job_uid}


def _env_list(options: Mapping[str, Any]) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [
        {"name": "DASK_TEMPORARY_DIRECTORY", "value": "/tmp"},
    ]
    names = {"DASK_TEMPORARY_DIRECTORY"}
    for name, value in options["env"].items():
        if name in names:
            env = [e for e in env if e["name"] != name]
        env.append({"name": str(name), "value": "" if value is None else str(value)})
        names.add(name)
    secret = options["secret_env"]
    for name, key in secret["keys"].items():
        if name in names:
            env = [e for e in env if e["name"] != name]
        env.append(
            {
                "name": str(name),
                "valueFrom": {"secretKeyRef": {"name": secret["secret_name"], "key": str(key)}},
            }
        )
        names.add(name)
    return env


def _harden(pod: dict[str, Any], options: Mapping[str, Any], ctx: KubeContext) -> None:
    """Pod-level settings shared by scheduler and workers."""
    sc = options["security_context"]
    pod["securityContext"] = {
        "runAsNonRoot": True,
        "runAsUser": sc["run_as_user"],
        "runAsGroup": sc["run_as_group"],
        "fsGroup": sc["fs_group"],
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    pod["volumes"] = [{"name": TMP_VOLUME, "emptyDir": {}}]
    if ctx.service_account:
        pod["serviceAccountName"] = ctx.service_account
    if options["node_selector"]:
        pod["nodeSelector"] = {str(k): str(v) for k, v in options["node_selector"].items()}
    if options["tolerations"]:
        pod["tolerations"] = copy.deepcopy(list(options["tolerations"]))
    if options["affinity"]:
        pod["affinity"] = copy.deepcopy(dict(options["affinity"]))
    for container in pod["containers"]:
        container["env"] = copy.deepcopy(container.get("env") or [])  # no shared lists
        container["imagePullPolicy"] = options["image_pull_policy"]
        container["securityContext"] = {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        }
        container["volumeMounts"] = [{"name": TMP_VOLUME, "mountPath": "/tmp"}]


def _resources(raw: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    return {
        part: {str(k): str(v) for k, v in (raw.get(part) or {}).items()}
        for part in ("requests", "limits")
        if raw.get(part)
    }


def to_yaml(manifest: Mapping[str, Any]) -> str:
    """The manifest as YAML, keys in build order, without YAML anchors/aliases."""
    import yaml

    class _NoAliases(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:
            return True

    return yaml.dump(dict(manifest), Dumper=_NoAliases, sort_keys=False)


def build_cluster_spec(
    options: Mapping[str, Any], ctx: KubeContext, *, name: str, run_id: str
) -> dict[str, Any]:
    """The DaskCluster object (a plain dict) for validated backend ``options``."""
    from dask_kubernetes.operator import make_cluster_spec

    adapt = options["adapt"]
    adaptive = adapt["minimum"] is not None
    replicas = adapt["minimum"] if adaptive else options["n_workers"]
    spec = make_cluster_spec(
        name=name,
        image=ctx.image,
        n_workers=replicas,
        env=_env_list(options),
        worker_command=["dask-worker", "--nthreads", str(options["worker_threads"])],
        idle_timeout=int(options["idle_timeout"]),
    )
    scheduler_pod = spec["spec"]["scheduler"]["spec"]
    worker_pod = spec["spec"]["worker"]["spec"]
    scheduler_pod["containers"][0]["resources"] = _resources(options["scheduler_resources"])
    worker_pod["containers"][0]["resources"] = _resources(options["worker_resources"])
    for pod in (scheduler_pod, worker_pod):
        _harden(pod, options, ctx)

    labels = {str(k): str(v) for k, v in options["labels"].items()}
    labels.update(
        {
            "app.kubernetes.io/name": "gagebench",
            "app.kubernetes.io/instance": name,
            "app.kubernetes.io/version": label_value(__version__),
            "app.kubernetes.io/component": "dask-cluster",
            "app.kubernetes.io/part-of": "gagebench",
            "app.kubernetes.io/managed-by": "gagebench",
            RUN_ID_LABEL: label_value(run_id),
        }
    )
    annotations = {str(k): str(v) for k, v in options["annotations"].items()}
    annotations[RUN_ID_ANNOTATION] = run_id
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": ctx.namespace,
        "labels": labels,
        "annotations": annotations,
    }
    if ctx.owner:
        metadata["ownerReferences"] = [dict(ctx.owner)]
    spec["metadata"] = metadata
    spec["spec"]["scheduler"]["metadata"] = {
        "labels": {"app.kubernetes.io/component": "dask-scheduler"}
    }
    spec["spec"]["worker"]["metadata"] = {"labels": {"app.kubernetes.io/component": "dask-worker"}}
    return spec
