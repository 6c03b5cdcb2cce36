"""The chart's Role grants exactly what the controller and dask-kubernetes use.

Derived by reading the code (dask-kubernetes 2026.3.0, kr8s 0.20; gagebench's kubernetes
backend). In kr8s, ``Cls.get(name)`` is a LIST with a ``metadata.name`` field selector,
``obj.exists()`` / ``obj.refresh()`` / ``obj.ready()`` a GET, ``create`` a POST,
``patch`` a PATCH, ``delete`` a DELETE. Not granted, because not used in a pod:
``pods/portforward`` and ``nodes`` (only when the scheduler Service is unreachable by DNS,
i.e. outside the cluster), ``watch`` (nothing watches), DaskWorkerGroup create/patch/delete
and DaskAutoscaler delete (``add_worker_group`` / ``scale``, which the controller never
calls: the worker count is in the DaskCluster spec).
"""

from __future__ import annotations

from importlib import metadata
from typing import Any

import pytest
from chartkit import VALUE_SETS, one

pytestmark = pytest.mark.chart

DASK = "kubernetes.dask.org"
#: (apiGroup, resource, verb) -> the call that needs it
EXPECTED: dict[tuple[str, str, str], str] = {
    (DASK, "daskclusters", "get"): "KubeCluster._create_cluster/_close: DaskCluster.exists(), "
    "ready(); gagebench _remove_stale/_delete_cluster: exists(), refresh()",
    (DASK, "daskclusters", "list"): "KubeCluster._wait_for_controller/_close/"
    "_watch_component_status: DaskCluster.get(name)",
    (DASK, "daskclusters", "create"): "KubeCluster._create_cluster: DaskCluster.create()",
    (DASK, "daskclusters", "delete"): "KubeCluster._close, gagebench _delete_cluster",
    (DASK, "daskclusters", "patch"): "gagebench _unstick_pending: status.phase=Running "
    "(dask-kubernetes#968 workaround)",
    (DASK, "daskworkergroups", "list"): "KubeCluster._watch_component_status: "
    "DaskWorkerGroup.get(name)",
    (DASK, "daskautoscalers", "patch"): "KubeCluster._adapt: autoscaler.patch()",
    (DASK, "daskautoscalers", "create"): "KubeCluster._adapt: autoscaler.create() on NotFound",
    ("", "pods", "list"): "networking.wait_for_scheduler: Pod.get(label_selector); "
    "get_logs: kr8s.get('pods'); gagebench: Pod.get(POD_NAME), Pod.list (diagnosis)",
    ("", "pods", "get"): "wait_for_scheduler / Service.ready: pod.ready() refreshes",
    ("", "pods/log", "get"): "KubeCluster._create_cluster (scheduler failed), get_logs",
    ("", "services", "list"): "wait_for_service / get_scheduler_address: Service.get(name)",
    ("", "services", "get"): "wait_for_service: service.ready() refreshes",
    ("batch", "jobs", "list"): "gagebench owner_job=auto: Job.get(name) of the pod's owner",
}


def granted(role: dict[str, Any]) -> set[tuple[str, str, str]]:
    out = set()
    for rule in role["rules"]:
        assert "resourceNames" not in rule
        assert "nonResourceURLs" not in rule
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    out.add((group, resource, verb))
    return out


def test_derived_from_this_dask_kubernetes() -> None:
    """Upgrading dask-kubernetes means re-reading its code for new API calls."""
    assert metadata.version("dask-kubernetes") == "2026.3.0", (
        "dask-kubernetes changed: re-derive EXPECTED from operator/kubecluster/kubecluster.py "
        "and operator/networking.py, then update this pin, requirements/constraints.txt "
        "and operator/values.yaml"
    )


@pytest.mark.parametrize("name", list(VALUE_SETS))
def test_role_is_exactly_what_is_used(render: Any, name: str) -> None:
    objects = render(VALUE_SETS[name])
    assert not [o for o in objects if o["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    role = one(objects, "Role")
    grants = granted(role)
    missing = set(EXPECTED) - grants
    extra = grants - set(EXPECTED)
    assert not missing, f"Role lacks {sorted(missing)}"
    assert not extra, f"Role grants more than is used: {sorted(extra)}"
    assert not any("*" in part for grant in grants for part in grant)


def test_role_binding_binds_the_run_service_account(render: Any) -> None:
    objects = render({})
    binding = one(objects, "RoleBinding")
    sa = one(objects, "ServiceAccount")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": one(objects, "Role")["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": sa["metadata"]["name"], "namespace": "hydro"}
    ]


def test_rbac_and_service_account_can_be_brought_by_the_admin(render: Any) -> None:
    objects = render({"rbac": {"create": False}, "serviceAccount": {"create": False, "name": "x"}})
    kinds = {o["kind"] for o in objects}
    assert not kinds & {"Role", "RoleBinding", "ServiceAccount"}
    job = one(objects, "Job")
    assert job["spec"]["template"]["spec"]["serviceAccountName"] == "x"
