"""What went wrong with a Kubernetes Dask cluster, as messages that say what to do.

Two jobs: :func:`translate` turns the exceptions of kr8s, httpx and dask-kubernetes into
:class:`~gagebench.errors.ClusterError`; :func:`diagnose_pods` reads pod statuses (plain
dicts, as the API returns them) and names the reason a pod cannot run.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from gagebench.errors import ClusterError

OPERATOR_HINT = (
    "install the dask-kubernetes operator and its CRDs first: see operator/ in the "
    "gagebench repository (operator/install.sh)"
)
_FORBIDDEN = re.compile(
    r'cannot (?P<verb>[a-z]+) resource "(?P<resource>[^"]+)"'
    r'(?: in API group "(?P<group>[^"]*)")?'
    r'(?: in the namespace "(?P<namespace>[^"]*)")?'
)
_USER = re.compile(r'User "(?P<user>[^"]+)"')
_IMAGE_REASONS = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull")
_CONFIG_REASONS = ("CreateContainerConfigError", "CreateContainerError")


def _status_body(exc: BaseException) -> tuple[int | None, Mapping[str, Any], str]:
    """(HTTP status, Kubernetes Status body, URL) of a kr8s / httpx error, if it has one."""
    import httpx

    response = getattr(exc, "response", None)
    if not isinstance(response, httpx.Response):
        return None, {}, ""
    try:
        body = response.json()
    except ValueError:
        body = {"message": response.text}
    try:
        url = str(response.request.url)
    except RuntimeError:  # a response built without its request
        url = ""
    return response.status_code, body if isinstance(body, Mapping) else {}, url


def forbidden_message(body: Mapping[str, Any], namespace: str | None) -> str:
    """A what-to-do message naming the missing verb and resource of a 403 Status body."""
    text = str(body.get("message", ""))
    match = _FORBIDDEN.search(text)
    user = _USER.search(text)
    who = user.group("user") if user else "this service account"
    if match:
        group = match.group("group")
        resource = match.group("resource") + (f".{group}" if group else "")
        where = match.group("namespace") or namespace or "the namespace"
        need = f"verb {match.group('verb')!r} on resource {resource!r} in namespace {where!r}"
    else:
        need = f"the permission in: {text or 'the 403 response'}"
    return (
        f"Kubernetes RBAC forbids {who}: grant the {need} with a Role and RoleBinding "
        f"(the Helm chart's rbac.create=true does this for the controller's service account)"
    )


def crd_missing(exc: BaseException) -> bool:
    """True when ``exc`` says the DaskCluster CRD is not installed (a 404 on daskclusters)."""
    code, _, url = _status_body(exc)
    return (code == 404 and "daskcluster" in url.lower()) or (
        isinstance(exc, RuntimeError) and "Custom Resource Definitions installed" in str(exc)
    )


def translate(exc: BaseException, *, namespace: str | None, name: str) -> ClusterError | None:
    """A ClusterError for a known failure of starting or reaching a Kubernetes cluster."""
    import kr8s
    from dask_kubernetes.exceptions import SchedulerStartupError, ValidationError

    if isinstance(exc, ClusterError):
        return exc
    code, body, _ = _status_body(exc)
    if code == 403 or str(body.get("reason", "")) == "Forbidden":
        return ClusterError(forbidden_message(body, namespace))
    if code == 401:
        return ClusterError(
            "the Kubernetes API rejected our credentials (401 Unauthorized): refresh the "
            "kubeconfig token, or check the pod's service-account token is mounted"
        )
    message = str(exc)
    if crd_missing(exc):
        return ClusterError(f"the DaskCluster CRD is not installed here; {OPERATOR_HINT}")
    if isinstance(exc, TimeoutError) and "not actioned" in message:
        return ClusterError(
            f"DaskCluster {name!r} in namespace {namespace!r} got no status from the "
            f"dask-kubernetes operator: the operator is not running or not watching this "
            f"namespace. Check `kubectl get pods -A -l app.kubernetes.io/name="
            f"dask-kubernetes-operator`; {OPERATOR_HINT}"
        )
    if isinstance(exc, ValueError) and "valid credentials" in message:
        return ClusterError(
            "no Kubernetes credentials found: outside a cluster set KUBECONFIG (or create "
            "~/.kube/config); inside a pod mount the service-account token "
            "(automountServiceAccountToken: true)"
        )
    if isinstance(exc, SchedulerStartupError):
        logs = "\n".join(str(a) for a in exc.args[1:])
        return ClusterError(
            f"the Dask scheduler of {name!r} crashed on start; its logs follow. Check the "
            f"image runs `dask-scheduler` and the env/secret settings.\n{logs}"
        )
    if isinstance(exc, ValidationError):
        return ClusterError(f"invalid DaskCluster: {exc.message}")
    if isinstance(exc, kr8s.ServerError):
        return ClusterError(
            f"the Kubernetes API refused a request for DaskCluster {name!r} "
            f"(HTTP {code}): {body.get('message', message)}"
        )
    if isinstance(exc, kr8s.APITimeoutError | kr8s.ConnectionClosedError):
        return ClusterError(f"the Kubernetes API did not answer ({message}); check connectivity")
    import httpx

    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        return ClusterError(
            f"cannot connect to the Kubernetes API server ({message}): check the kubeconfig's "
            "server address, VPN and network policies"
        )
    return None


def _waiting(pod: Mapping[str, Any]) -> Iterable[tuple[str, Mapping[str, Any]]]:
    status = pod.get("status") or {}
    for key in ("initContainerStatuses", "containerStatuses"):
        for container in status.get(key) or []:
            waiting = (container.get("state") or {}).get("waiting")
            if waiting:
                yield str(container.get("image") or container.get("name")), waiting


def diagnose_pods(pods: Iterable[Mapping[str, Any]]) -> str | None:
    """Why these pods cannot run (image pull, bad config, unschedulable), or None."""
    for pod in pods:
        pod_name = (pod.get("metadata") or {}).get("name", "?")
        for image, waiting in _waiting(pod):
            reason = str(waiting.get("reason", ""))
            detail = str(waiting.get("message", "")).strip()
            if reason in _IMAGE_REASONS:
                return (
                    f"pod {pod_name} cannot pull image {image!r} ({reason}: {detail}). Check "
                    "the image name and tag, that the registry is reachable from the nodes, "
                    "and imagePullSecrets for a private registry (set "
                    "gagebench.cluster.kubernetes.image)"
                )
            if reason in _CONFIG_REASONS:
                return (
                    f"pod {pod_name} cannot start its container ({reason}: {detail}). A "
                    "Secret or key named in gagebench.cluster.kubernetes.secret_env may not "
                    "exist in the namespace"
                )
        for cond in (pod.get("status") or {}).get("conditions") or []:
            if cond.get("type") == "PodScheduled" and cond.get("reason") == "Unschedulable":
                return (
                    f"pod {pod_name} cannot be scheduled: {cond.get('message', '')}. Lower "
                    "the resource requests, fix nodeSelector/tolerations/affinity, or add nodes"
                )
    return None
