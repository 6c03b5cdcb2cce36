"""Pod networking for the Kubernetes rehearsal (an emulation): pod IPs and cluster DNS.

Every emulated pod gets its own loopback address (``KUBEEMU_POD_IP``, 127.0.x.y): in a pod's
processes a listening socket asked for "any address" (``0.0.0.0``, ``""``) binds that address
instead, so two pods can both listen on 8786/8787 - and nothing else on the machine that
holds 127.0.0.1:8787 gets in the way.

Cluster DNS: ``<service>.<namespace>``, ``<service>.<namespace>.svc`` and
``<service>.<namespace>.svc.cluster.local`` resolve, when that Service exists in the API
emulator at ``$KUBEEMU_API``, to the pod IP of a pod its selector picks (Ready first) - the
Service's endpoint, without a kube-proxy. A Service without a selector (a service for
something outside the cluster, like the test's S3 server) resolves to 127.0.0.1; one without
any pod resolves to 127.255.255.254, where nothing listens (connection refused, as a
ClusterIP without endpoints). Any other name resolves as usual.

Installed in every emulated pod, the operator and the test's client processes through
``sitecustomize`` (this folder on PYTHONPATH).
"""

from __future__ import annotations

import _socket
import json
import os
import re
import socket
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

_NAME = re.compile(
    r"^(?P<svc>[a-z0-9]([-a-z0-9]*[a-z0-9])?)\.(?P<ns>[a-z0-9]([-a-z0-9]*[a-z0-9])?)"
    r"(\.svc(\.cluster\.local)?)?\.?$"
)
NO_ENDPOINTS = "127.255.255.254"
_original_getaddrinfo = socket.getaddrinfo
_original_gethostbyname = socket.gethostbyname
_original_bind = socket.socket.bind
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _get(api: str, path: str) -> Any:
    with _opener.open(api + path, timeout=5) as resp:
        return json.load(resp)


def service_address(host: Any, api: str | None = None) -> str | None:
    """The address a Service name stands for in the emulated cluster, or None."""
    api = api or os.environ.get("KUBEEMU_API")
    if not api or not isinstance(host, (str, bytes)):
        return None
    name = host.decode() if isinstance(host, bytes) else host
    m = _NAME.match(name.lower())
    if not m:
        return None
    try:
        svc = _get(api, f"/api/v1/namespaces/{m['ns']}/services/{m['svc']}")
        if svc.get("kind") != "Service":
            return None
        selector = (svc.get("spec") or {}).get("selector") or {}
        if not selector:
            return "127.0.0.1"
        query = urllib.parse.urlencode(
            {"labelSelector": ",".join(f"{k}={v}" for k, v in sorted(selector.items()))}
        )
        pods = _get(api, f"/api/v1/namespaces/{m['ns']}/pods?{query}").get("items", [])
    except (urllib.error.URLError, OSError, ValueError):
        return None

    def ready(pod: dict[str, Any]) -> bool:
        conditions = (pod.get("status") or {}).get("conditions") or []
        return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)

    for pod in sorted(pods, key=lambda p: not ready(p)):
        ip = (pod.get("status") or {}).get("podIP")
        if ip and not (pod.get("metadata") or {}).get("deletionTimestamp"):
            return str(ip)
    return NO_ENDPOINTS


def _pod_ip() -> str | None:
    return os.environ.get("KUBEEMU_POD_IP") or None


def _getaddrinfo(
    host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0
) -> Any:
    pod_ip = _pod_ip()
    if pod_ip and host in (None, "", "0.0.0.0", "::", b"") and flags & socket.AI_PASSIVE:
        # A server asking for "any address" in a pod: its own pod IP only.
        port_num = int(port) if port not in (None, "") else 0
        return [(socket.AF_INET, type or socket.SOCK_STREAM, proto or 6, "", (pod_ip, port_num))]
    address = service_address(host)
    if address is not None:
        host = address
    return _original_getaddrinfo(host, port, family, type, proto, flags)


def _gethostbyname(host: str) -> str:
    return service_address(host) or _original_gethostbyname(host)


def _bind(self: _socket.socket, address: Any) -> None:
    pod_ip = _pod_ip()
    if (
        pod_ip
        and self.family == socket.AF_INET
        and isinstance(address, tuple)
        and address[0] in ("", "0.0.0.0")
    ):
        address = (pod_ip, *address[1:])
    _original_bind(self, address)


def install() -> None:
    """Pod IP binding and Service names in this process (idempotent)."""
    socket.getaddrinfo = _getaddrinfo
    socket.gethostbyname = _gethostbyname
    socket.socket.bind = _bind  # type: ignore[method-assign]
