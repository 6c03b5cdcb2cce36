"""Cluster DNS for the Kubernetes rehearsal (an emulation): Service names -> 127.0.0.1.

``<service>.<namespace>``, ``<service>.<namespace>.svc`` and
``<service>.<namespace>.svc.cluster.local`` resolve to 127.0.0.1 when that Service exists
in the API emulator at ``$KUBEEMU_API``: every emulated pod shares this machine's network,
so a Service's port is the pod's port on 127.0.0.1. Any other name resolves as usual.
Installed in every emulated pod and in the operator through ``sitecustomize`` (PYTHONPATH).
"""

from __future__ import annotations

import json
import os
import re
import socket
import urllib.error
import urllib.request
from typing import Any

_NAME = re.compile(
    r"^(?P<svc>[a-z0-9]([-a-z0-9]*[a-z0-9])?)\.(?P<ns>[a-z0-9]([-a-z0-9]*[a-z0-9])?)"
    r"(\.svc(\.cluster\.local)?)?\.?$"
)
_original_getaddrinfo = socket.getaddrinfo
_original_gethostbyname = socket.gethostbyname
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def service_host(host: Any, api: str | None = None) -> bool:
    """Whether ``host`` names a Service that exists in the emulated cluster."""
    api = api or os.environ.get("KUBEEMU_API")
    if not api or not isinstance(host, (str, bytes)):
        return False
    name = host.decode() if isinstance(host, bytes) else host
    m = _NAME.match(name.lower())
    if not m:
        return False
    url = f"{api}/api/v1/namespaces/{m['ns']}/services/{m['svc']}"
    try:
        with _opener.open(url, timeout=5) as resp:
            return json.load(resp).get("kind") == "Service"
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
    if service_host(host):
        host = "127.0.0.1"
    return _original_getaddrinfo(host, port, *args, **kwargs)


def _gethostbyname(host: str) -> str:
    return "127.0.0.1" if service_host(host) else _original_gethostbyname(host)


def install() -> None:
    """Route Service names to 127.0.0.1 in this process (idempotent)."""
    socket.getaddrinfo = _getaddrinfo
    socket.gethostbyname = _gethostbyname
