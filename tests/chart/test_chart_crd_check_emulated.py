"""The install-time CRD check against a live API server - an EMULATED one.

No Kubernetes API server can run here, so a minimal HTTP emulation on 127.0.0.1 answers
the few requests Helm makes while installing (version, discovery, the ``lookup`` of the
namespace's default ServiceAccount). Helm itself is real (helm-python-sdk's Go SDK): a
server-side dry-run install does its own discovery, fills ``.Capabilities.APIVersions``
from it and runs the chart's ``lookup`` against the emulation.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from chartkit import CHART_DIR, NAMESPACE, RELEASE, helm

pytestmark = pytest.mark.chart

DASK_GROUP = {
    "name": "kubernetes.dask.org",
    "versions": [{"groupVersion": "kubernetes.dask.org/v1", "version": "v1"}],
    "preferredVersion": {"groupVersion": "kubernetes.dask.org/v1", "version": "v1"},
}
CRD_MESSAGE = "has no kubernetes.dask.org/v1 API"


class EmulatedApi:
    """Discovery + one ServiceAccount; ``with_dask`` toggles the operator's API group."""

    def __init__(self, with_dask: bool) -> None:
        self.with_dask = with_dask
        self.requests: list[str] = []

    def answer(self, path: str) -> dict[str, Any] | None:
        sa = f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts/default"
        resources: dict[str, dict[str, Any]] = {
            "/version": {"major": "1", "minor": "31", "gitVersion": "v1.31.2"},
            "/api": {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []},
            "/apis": {
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": [DASK_GROUP] if self.with_dask else [],
            },
            "/api/v1": {
                "kind": "APIResourceList",
                "groupVersion": "v1",
                "resources": [
                    {
                        "name": "serviceaccounts",
                        "singularName": "serviceaccount",
                        "namespaced": True,
                        "kind": "ServiceAccount",
                        "verbs": ["get", "list"],
                    }
                ],
            },
            sa: {
                "kind": "ServiceAccount",
                "apiVersion": "v1",
                "metadata": {"name": "default", "namespace": NAMESPACE, "uid": "u-1"},
            },
        }
        if self.with_dask:
            resources["/apis/kubernetes.dask.org/v1"] = {
                "kind": "APIResourceList",
                "groupVersion": "kubernetes.dask.org/v1",
                "resources": [
                    {
                        "name": "daskclusters",
                        "singularName": "daskcluster",
                        "namespaced": True,
                        "kind": "DaskCluster",
                        "verbs": ["get", "list", "create", "delete"],
                    }
                ],
            }
        return resources.get(path)


@pytest.fixture
def api(request: pytest.FixtureRequest) -> Iterator[tuple[EmulatedApi, str]]:
    state = EmulatedApi(with_dask=request.param)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.requests.append(self.path)
            body = state.answer(self.path.split("?")[0])
            code = 200 if body is not None else 404
            if body is None:
                body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404}
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def dry_run_install(url: str, values: dict[str, Any]) -> str:
    """A server-side dry-run install; returns the error text ("" if it succeeded)."""
    with helm.Config(kube_apiserver=url, kube_token="t", namespace=NAMESPACE) as cfg:
        try:
            cfg.install(str(CHART_DIR), RELEASE, values, namespace=NAMESPACE, dry_run="server")
        except helm.HelmError as exc:
            return str(exc)
    return ""


@pytest.mark.parametrize("api", [False], indirect=True)
def test_emulated_cluster_without_operator_fails_install_with_a_clear_message(
    api: tuple[EmulatedApi, str],
) -> None:
    state, url = api
    error = dry_run_install(url, {})
    assert CRD_MESSAGE in error, error
    assert "operator/install.sh" in error
    assert f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts/default" in state.requests


@pytest.mark.parametrize("api", [True], indirect=True)
def test_emulated_cluster_with_operator_passes_the_check(api: tuple[EmulatedApi, str]) -> None:
    """With kubernetes.dask.org/v1 discovered, rendering succeeds; the emulation then stops
    Helm at manifest validation (it serves no OpenAPI), which is past the check."""
    state, url = api
    error = dry_run_install(url, {})
    assert CRD_MESSAGE not in error
    assert "unable to build kubernetes objects from release manifest" in error, error
    assert "/apis/kubernetes.dask.org/v1" in [r.split("?")[0] for r in state.requests]


@pytest.mark.parametrize("api", [False], indirect=True)
def test_emulated_cluster_without_operator_is_fine_for_the_local_backend(
    api: tuple[EmulatedApi, str],
) -> None:
    _, url = api
    error = dry_run_install(url, {"config": {"cluster": {"backend": "local"}}})
    assert CRD_MESSAGE not in error
    assert "unable to build kubernetes objects from release manifest" in error, error
