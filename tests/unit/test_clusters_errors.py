"""Error translation of the kubernetes backend, on the real exception types.

Each case builds the exception the failing library call really raises - ``kr8s.ServerError``
carrying a real ``httpx.Response``, ``httpx.HTTPStatusError``, distributed's
``TimeoutError`` from a real ``Client.wait_for_workers`` - and checks the message says
what to do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import kr8s
import pytest
from dask_kubernetes.exceptions import SchedulerStartupError, ValidationError
from distributed import Client, LocalCluster

from gagebench.clusters._kubeerrors import diagnose_pods, forbidden_message, translate
from gagebench.clusters.kubernetes import wait_for_workers
from gagebench.errors import ClusterError

URL = "https://k8s.example:6443/apis/kubernetes.dask.org/v1/namespaces/gb/daskclusters"


def _response(code: int, body: dict[str, Any] | str, url: str = URL) -> httpx.Response:
    request = httpx.Request("POST", url)
    if isinstance(body, str):
        return httpx.Response(code, text=body, request=request)
    return httpx.Response(code, json=body, request=request)


def _server_error(code: int, body: dict[str, Any], url: str = URL) -> kr8s.ServerError:
    """What kr8s raises for a 4xx: ServerError(message, status=body, response=response)."""
    response = _response(code, body, url)
    try:
        response.raise_for_status()
    except httpx.HTTPStatusError as exc:
        try:
            # kr8s passes the Status object as `status` itself; its annotation says str
            raise kr8s.ServerError(
                body["message"],
                status=body,  # type: ignore[arg-type]
                response=response,
            ) from exc
        except kr8s.ServerError as server_error:
            return server_error
    raise AssertionError("raise_for_status did not raise")


FORBIDDEN: dict[str, Any] = {
    "kind": "Status",
    "status": "Failure",
    "reason": "Forbidden",
    "code": 403,
    "message": 'pods is forbidden: User "system:serviceaccount:gb:runner" cannot list resource '
    '"pods" in API group "" in the namespace "gb"',
    "details": {"kind": "pods"},
}


def test_rbac_forbidden_names_verb_resource_and_user() -> None:
    error = translate(_server_error(403, FORBIDDEN), namespace="gb", name="c")
    assert isinstance(error, ClusterError)
    assert "verb 'list' on resource 'pods' in namespace 'gb'" in str(error)
    assert "system:serviceaccount:gb:runner" in str(error)
    assert "Role and RoleBinding" in str(error)


def test_rbac_forbidden_from_an_httpx_error_too() -> None:
    response = _response(
        403, FORBIDDEN | {"message": FORBIDDEN["message"].replace("list", "watch")}
    )
    with pytest.raises(httpx.HTTPStatusError) as info:
        response.raise_for_status()
    error = translate(info.value, namespace="gb", name="c")
    assert error is not None
    assert "verb 'watch' on resource 'pods'" in str(error)


def test_forbidden_message_without_a_parsable_body_still_says_rbac() -> None:
    text = forbidden_message({"message": "forbidden: policy says no"}, "gb")
    assert "policy says no" in text
    assert "RoleBinding" in text


def test_missing_crd_points_at_the_operator_folder() -> None:
    body = {
        "kind": "Status",
        "reason": "NotFound",
        "code": 404,
        "message": "the server could not find the requested resource",
    }
    error = translate(_server_error(404, body), namespace="gb", name="c")
    assert error is not None
    assert "CRD is not installed" in str(error)
    assert "operator/" in str(error)
    # a 404 for something else (a pod) is not a missing CRD
    other = _server_error(404, body, "https://k8s.example:6443/api/v1/namespaces/gb/pods/x")
    assert "CRD" not in str(translate(other, namespace="gb", name="c"))
    # dask-kubernetes' own wording when it catches the 404 itself
    legacy = RuntimeError(
        "Failed to create DaskCluster resource.Are the Dask Custom Resource Definitions "
        "installed? https://kubernetes.dask.org/en/latest/operator.html"
    )
    assert "operator/" in str(translate(legacy, namespace="gb", name="c"))


def test_unauthorized_and_unreachable_api() -> None:
    body = {"kind": "Status", "code": 401, "message": "Unauthorized", "reason": "Unauthorized"}
    assert "401" in str(translate(_server_error(401, body), namespace="gb", name="c"))
    refused = httpx.ConnectError(
        "[Errno 111] Connection refused", request=httpx.Request("GET", URL)
    )
    assert "cannot connect to the Kubernetes API" in str(
        translate(refused, namespace="gb", name="c")
    )


def test_operator_not_running_from_kubecluster_timeout() -> None:
    from distributed.utils import TimeoutError as DistributedTimeout

    exc = DistributedTimeout(
        "Dask Cluster resource not actioned after 60 seconds, is the Dask Operator running?"
    )
    error = translate(exc, namespace="gb", name="gagebench-x")
    assert error is not None
    assert "got no status from the dask-kubernetes operator" in str(error)
    assert "'gagebench-x'" in str(error)


def test_scheduler_crash_and_invalid_name() -> None:
    crash = SchedulerStartupError("Scheduler failed to start.", "Scheduler Pod logs:", "boom")
    assert "boom" in str(translate(crash, namespace="gb", name="c"))
    invalid = ValidationError("The DaskCluster X is invalid")
    assert "invalid DaskCluster" in str(translate(invalid, namespace="gb", name="c"))


def test_no_credentials_from_a_real_kr8s_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "nothing"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    from kr8s._api import Api

    Api._instances.clear()
    with pytest.raises(ValueError, match="credentials") as info:
        kr8s.api(serviceaccount=str(tmp_path / "no-sa"))
    error = translate(info.value, namespace=None, name="c")
    assert error is not None
    assert "KUBECONFIG" in str(error)


def test_unknown_errors_are_not_translated() -> None:
    assert translate(KeyError("x"), namespace="gb", name="c") is None


def _pod(name: str, **status: Any) -> dict[str, Any]:
    return {"metadata": {"name": name}, "status": status}


def _waiting(reason: str, message: str, image: str = "img:1") -> dict[str, Any]:
    return {
        "name": "worker",
        "image": image,
        "state": {"waiting": {"reason": reason, "message": message}},
    }


@pytest.mark.parametrize("reason", ["ErrImagePull", "ImagePullBackOff", "InvalidImageName"])
def test_diagnose_image_pull_failures(reason: str) -> None:
    pods = [
        _pod("ok", phase="Running", containerStatuses=[{"name": "w", "state": {"running": {}}}]),
        _pod("bad", phase="Pending", containerStatuses=[_waiting(reason, "not found", "img:9")]),
    ]
    text = diagnose_pods(pods)
    assert text is not None
    assert "cannot pull image 'img:9'" in text
    assert reason in text


def test_diagnose_missing_secret_and_unschedulable() -> None:
    config = _pod(
        "w1",
        phase="Pending",
        containerStatuses=[
            _waiting("CreateContainerConfigError", 'secret "s3-credentials" not found')
        ],
    )
    assert "secret_env" in str(diagnose_pods([config]))
    pending = _pod(
        "w2",
        phase="Pending",
        conditions=[
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": "0/3 nodes are available: 3 Insufficient memory.",
            }
        ],
    )
    text = diagnose_pods([pending])
    assert text is not None
    assert "Insufficient memory" in text
    assert diagnose_pods([_pod("fine", phase="Running")]) is None
    assert diagnose_pods([]) is None


def test_workers_not_arriving_in_time_on_a_real_scheduler() -> None:
    with (
        LocalCluster(n_workers=0, processes=False, dashboard_address=":0") as cluster,
        Client(cluster) as client,
    ):
        unschedulable = _pod(
            "gagebench-x-default-worker-1",
            phase="Pending",
            conditions=[
                {
                    "type": "PodScheduled",
                    "reason": "Unschedulable",
                    "message": "0/2 nodes are available: 2 Insufficient cpu.",
                }
            ],
        )
        with pytest.raises(
            ClusterError, match=r"did not join within 1 s.*Insufficient cpu"
        ) as info:
            wait_for_workers(client, 1, 1.0, lambda: diagnose_pods([unschedulable]))
        assert isinstance(info.value.__cause__, TimeoutError)
        with pytest.raises(ClusterError, match=r"kubectl describe pods"):
            wait_for_workers(client, 1, 0.5, lambda: None)
        wait_for_workers(client, 0, 0.1, lambda: "never asked")  # adaptive from zero
