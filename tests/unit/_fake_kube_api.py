"""A FAKE Kubernetes API server on 127.0.0.1, for the kubernetes backend's unit tests.

No real API server (or kind) can run on these machines, so the tests that need one say
``fake_api`` in their names. It is deliberately small: a dict of objects by URL path with
GET (object or filtered list), POST, PATCH (merge) and DELETE, plus scripted failures
(a status code and a real Kubernetes ``Status`` body for a method + path). The clients
talking to it are the real ones (kr8s, httpx, dask-kubernetes), so the exceptions they
raise are the real ones too.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

Hook = Callable[["FakeKubeAPI", dict[str, Any]], None]


def status_body(code: int, reason: str, message: str, **details: Any) -> dict[str, Any]:
    """A Kubernetes ``Status`` object, as the API server returns with an error."""
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "details": details,
        "code": code,
    }


def _selector(text: str) -> dict[str, str]:
    pairs = [p.split("=", 1) for p in text.split(",") if "=" in p]
    return {k.strip(): v.strip() for k, v in pairs}


def _field(obj: dict[str, Any], dotted: str) -> Any:
    node: Any = obj
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


class FakeKubeAPI:
    """The fake server: ``objects`` by path, ``failures`` by (METHOD, path), ``requests``."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.failures: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {}
        self.on_create: list[Hook] = []
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, code: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> dict[str, Any]:
                length = int(self.headers.get("Content-Length") or 0)
                return json.loads(self.rfile.read(length) or b"{}")

            def _handle(self, method: str) -> None:
                url = urlparse(self.path)
                path = url.path.rstrip("/")
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                with api.lock:
                    api.requests.append((method, path))
                    failure = api.failures.get((method, path))
                if failure is not None:
                    self._send(*failure)
                    return
                body = self._body()  # DELETE carries options: read every body
                with api.lock:
                    code, reply = api.handle(method, path, query, body)
                self._send(code, reply)

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

            def do_PATCH(self) -> None:
                self._handle("PATCH")

            def do_DELETE(self) -> None:
                self._handle("DELETE")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _defaults(self) -> None:
        self.objects["/version"] = {"major": "1", "minor": "30", "gitVersion": "v1.30.0-fake"}

    def start(self) -> FakeKubeAPI:
        self._defaults()
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def reset(self) -> None:
        with self.lock:
            self.objects.clear()
            self.failures.clear()
            self.on_create.clear()
            self.requests.clear()
            self._defaults()

    def put(self, path: str, obj: dict[str, Any]) -> dict[str, Any]:
        """Store an object at its path (adds a uid when missing)."""
        obj.setdefault("metadata", {}).setdefault("uid", str(uuid.uuid4()))
        self.objects[path.rstrip("/")] = obj
        return obj

    def kubeconfig(self, folder: Path, namespace: str = "gb") -> Path:
        """A kubeconfig file pointing at this server."""
        path = folder / "kubeconfig"
        path.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
                    "users": [{"name": "fake", "user": {"token": "fake-token"}}],
                    "contexts": [
                        {
                            "name": "fake",
                            "context": {"cluster": "fake", "user": "fake", "namespace": namespace},
                        }
                    ],
                    "current-context": "fake",
                }
            )
        )
        return path

    def handle(
        self, method: str, path: str, query: dict[str, str], body: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        if method == "GET" and path in self.objects:
            return 200, self.objects[path]
        if method == "GET":
            prefix = path + "/"
            items = [
                o
                for p, o in self.objects.items()
                if p.startswith(prefix) and "/" not in p[len(prefix) :]
            ]
            if not items and path.rsplit("/", 1)[-1] not in _COLLECTIONS:
                return 404, status_body(404, "NotFound", f"{path} not found")
            for key, value in _selector(query.get("labelSelector", "")).items():
                items = [o for o in items if o["metadata"].get("labels", {}).get(key) == value]
            for key, value in _selector(query.get("fieldSelector", "")).items():
                items = [o for o in items if str(_field(o, key)) == value]
            return 200, {"kind": "List", "apiVersion": "v1", "metadata": {}, "items": items}
        if method == "POST":
            name = body["metadata"]["name"]
            target = f"{path}/{name}"
            if target in self.objects:
                return 409, status_body(409, "AlreadyExists", f"{name} already exists")
            obj = self.put(target, body)
            for hook in self.on_create:
                hook(self, obj)
            return 201, obj
        if method == "PATCH":
            if path not in self.objects:
                return 404, status_body(404, "NotFound", f"{path} not found")
            _merge(self.objects[path], body)
            return 200, self.objects[path]
        if method == "DELETE":
            removed = self.objects.pop(path, None)
            if removed is None:
                return 404, status_body(404, "NotFound", f"{path} not found")
            return 200, removed
        return 405, status_body(405, "MethodNotAllowed", method)


_COLLECTIONS = {"pods", "services", "jobs", "daskclusters", "daskworkergroups", "daskautoscalers"}


def _merge(base: dict[str, Any], patch: dict[str, Any]) -> None:
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
