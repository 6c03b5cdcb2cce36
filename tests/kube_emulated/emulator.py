"""A stateful Kubernetes API emulator on 127.0.0.1 for the rehearsal tests (an emulation).

Built on ``kmock.KubernetesEmulator`` (kopf's author's API mock): kmock serves discovery
(``/api``, ``/apis``, ``/apis/<group>/<version>``, ``/version``), keeps objects in memory with
their history (``emulator.objects[...]``) and renders errors as Kubernetes ``Status``
objects. This subclass fills what the real clients (kr8s, kopf, the kubernetes client) need
from a real API server and kmock 0.8 lacks:

- ``/api/v1/namespaces`` and ``/api/v1/namespaces/<name>`` paths; trailing-slash paths;
- ``labelSelector`` and ``fieldSelector`` on list and watch; ``resourceVersion`` and
  ``timeoutSeconds`` on watch (events replayed from a log, so list-then-watch never loses one);
- server-set ``uid``, ``resourceVersion`` (bumped on every change, checked as a
  precondition when a write carries one), ``creationTimestamp``, ``generation``,
  ``generateName``; null values pruned on writes; status subresource semantics;
- merge, JSON and strategic-merge (treated as merge) patches and PUT;
- finalizers, graceful pod deletion (the test kubelet finishes it), garbage collection by
  ``ownerReferences`` (background; ``Orphan`` honoured), namespace deletion;
- CRDs registered by creating ``CustomResourceDefinition`` objects (so a test can leave
  one out), a default Service ``clusterIP``/status, one Node, ``pods/log`` from the kubelet,
  ``SelfSubjectAccessReview`` always allowed (there is no RBAC).

What is *not* emulated (admission, RBAC, schema validation, ...) is listed in README.md.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import datetime
import json
import logging
import random
import re
import string
import threading
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp.web
import attrs
import jsonpatch
import kmock
import yaml
from kmock._internal import dicts as kmock_dicts
from kmock._internal import parsing as kmock_parsing
from kmock._internal import rendering as kmock_rendering

log = logging.getLogger("kubeemu.api")

Obj = dict[str, Any]
ChangeHook = Callable[[str, kmock.resource, Obj, Obj | None], Awaitable[None] | None]

#: Resources the test kubelet/controllers act on, by their API path parts.
PODS = kmock.resource("", "v1", "pods")
SERVICES = kmock.resource("", "v1", "services")
NAMESPACES = kmock.resource("", "v1", "namespaces")
NODES = kmock.resource("", "v1", "nodes")
SECRETS = kmock.resource("", "v1", "secrets")
SERVICEACCOUNTS = kmock.resource("", "v1", "serviceaccounts")
CONFIGMAPS = kmock.resource("", "v1", "configmaps")
DEPLOYMENTS = kmock.resource("apps", "v1", "deployments")
JOBS = kmock.resource("batch", "v1", "jobs")
CRDS = kmock.resource("apiextensions.k8s.io", "v1", "customresourcedefinitions")
ACCESS_REVIEWS = {
    kmock.resource("authorization.k8s.io", "v1", "selfsubjectaccessreviews"),
    kmock.resource("authorization.k8s.io", "v1", "selfsubjectrulesreviews"),
}

NODE_NAME = "kubeemu-node"


class ApiError(Exception):
    """A Kubernetes API error, rendered as a ``Status`` object."""

    def __init__(self, code: int, reason: str, message: str, details: Obj | None = None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details or {}

    def status(self) -> Obj:
        return {
            "apiVersion": "v1",
            "kind": "Status",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "details": self.details,
            "code": self.code,
        }


def not_found(resource: kmock.resource, name: str) -> ApiError:
    return ApiError(
        404,
        "NotFound",
        f'{resource.plural}.{resource.group} "{name}" not found'.replace(". ", " ")
        if resource.group
        else f'{resource.plural} "{name}" not found',
        {"name": name, "group": resource.group, "kind": resource.plural},
    )


def now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def prune_nulls(value: Any) -> Any:
    """Drop ``null`` map values recursively, as the API server does when it stores objects."""
    if isinstance(value, Mapping):
        return {k: prune_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [prune_nulls(v) for v in value]
    return value


def dig(obj: Any, path: str) -> Any:
    """The value at a dotted path (``metadata.name``), or None."""
    for part in path.split("."):
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(part)
    return obj


# --------------------------------------------------------------------------- selectors

_LABEL_TERM = re.compile(
    r"^\s*(?P<neg>!)?\s*(?P<key>[A-Za-z0-9./_-]+)\s*"
    r"(?:(?P<op>==|=|!=|\s+in\s+|\s+notin\s+)\s*(?P<val>\([^)]*\)|[A-Za-z0-9._-]*))?\s*$"
)


def _split_terms(selector: str) -> list[str]:
    terms, depth, cur = [], 0, ""
    for ch in selector:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            terms.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        terms.append(cur)
    return [t for t in terms if t.strip()]


def label_selector(selector: str | None) -> Callable[[Obj], bool]:
    """A predicate for a ``labelSelector`` string (equality- and set-based terms)."""
    if not selector:
        return lambda obj: True
    checks: list[Callable[[dict[str, str]], bool]] = []
    for term in _split_terms(selector):
        m = _LABEL_TERM.match(term)
        if not m:
            raise ApiError(400, "BadRequest", f"unable to parse requirement: {term!r}")
        key, op, val, neg = m["key"], (m["op"] or "").strip(), m["val"], bool(m["neg"])
        if not op:
            checks.append(
                (lambda k: lambda lb: k not in lb)(key)
                if neg
                else (lambda k: lambda lb: k in lb)(key)
            )
        elif op in ("=", "=="):
            checks.append((lambda k, v: lambda lb: lb.get(k) == v)(key, val))
        elif op == "!=":
            checks.append((lambda k, v: lambda lb: lb.get(k) != v)(key, val))
        else:
            values = {item.strip() for item in val.strip("()").split(",") if item.strip()}
            if op == "in":
                checks.append((lambda k, vs: lambda lb: lb.get(k) in vs)(key, values))
            else:
                checks.append((lambda k, vs: lambda lb: lb.get(k) not in vs)(key, values))
    return lambda obj: all(c(obj.get("metadata", {}).get("labels") or {}) for c in checks)


def field_selector(selector: str | None) -> Callable[[Obj], bool]:
    """A predicate for a ``fieldSelector`` string (``path=value``, ``==``, ``!=`` terms)."""
    if not selector:
        return lambda obj: True
    checks: list[Callable[[Obj], bool]] = []
    for term in _split_terms(selector):
        m = re.match(r"^\s*([A-Za-z0-9._]+)\s*(==|=|!=)\s*(.*?)\s*$", term)
        if not m:
            raise ApiError(400, "BadRequest", f"invalid field selector: {term!r}")
        path, op, val = m.groups()

        def check(obj: Obj, path: str = path, op: str = op, val: str = val) -> bool:
            got = dig(obj, path)
            got_s = "" if got is None else str(got)
            return (got_s == val) if op != "!=" else (got_s != val)

        checks.append(check)
    return lambda obj: all(c(obj) for c in checks)


# --------------------------------------------------------------------------- the server


@dataclass
class Event:
    """One change in the store, kept in a log so watches can resume from a resourceVersion."""

    rv: int
    resource: kmock.resource
    type: str  # ADDED / MODIFIED / DELETED
    obj: Obj
    old: Obj | None


def _normalize_path(path: str) -> str:
    return path.rstrip("/") or "/"


def _parse_path(path: str) -> kmock_parsing.ParsedPath:
    """kmock's URL parsing plus the cluster-scoped ``namespaces`` resource it lacks."""
    m = re.fullmatch(r"/api/v1/namespaces(?:/(?P<name>[^/]+)(?:/(?P<sub>status|finalize))?)?", path)
    if m:
        return kmock_parsing.ParsedPath("", "v1", "namespaces", None, m["name"], m["sub"])
    return kmock_parsing.parse_path(path)


@attrs.define(kw_only=True)
class ApiEmulator(kmock.KubernetesEmulator):
    """The emulated API server: kmock's discovery and storage, real-server object semantics."""

    _rv: int = attrs.field(default=0, init=False)
    _events: list[Event] = attrs.field(factory=list, init=False)
    _changed: asyncio.Condition | None = attrs.field(default=None, init=False)
    _hooks: list[ChangeHook] = attrs.field(factory=list, init=False)
    _bg: set[asyncio.Task[Any]] = attrs.field(factory=set, init=False)
    _orphaned: set[str] = attrs.field(factory=set, init=False)
    #: ``(namespace, pod, container) -> text``: where ``pods/<name>/log`` reads from.
    log_reader: Callable[[str, str, str | None], str | None] | None = None
    #: objects whose graceful deletion someone else (the kubelet) finishes: a predicate.
    graceful: Callable[[kmock.resource, Obj], bool] | None = None

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.resources.load_bundled()
        for name in ("default", "kube-system", "kube-public", "kube-node-lease"):
            self._store_new(NAMESPACES, None, {"metadata": {"name": name}})
        self._store_new(
            NODES,
            None,
            {
                "metadata": {
                    "name": NODE_NAME,
                    "labels": {
                        "kubernetes.io/hostname": NODE_NAME,
                        "kubernetes.io/os": "linux",
                        "kubernetes.io/arch": "amd64",
                    },
                },
                "status": {
                    "capacity": {"cpu": "16", "memory": "64Gi", "pods": "110"},
                    "allocatable": {"cpu": "16", "memory": "64Gi", "pods": "110"},
                    "addresses": [
                        {"type": "InternalIP", "address": "127.0.0.1"},
                        {"type": "Hostname", "address": NODE_NAME},
                    ],
                    "conditions": [{"type": "Ready", "status": "True"}],
                },
            },
        )

    async def _serve_server_version(self, request: kmock_rendering.Request) -> Obj:
        # kmock reports v1.26 (k3s); clients warn below 1.28. Say what is emulated.
        return {
            "major": "1",
            "minor": "33",
            "gitVersion": "v1.33.0+kubeemu",
            "gitCommit": "kubeemu",
            "gitTreeState": "clean",
            "buildDate": "2026-01-01T00:00:00Z",
            "goVersion": "none",
            "compiler": "none",
            "platform": "linux/amd64",
        }

    def _get_resources(self) -> list[kmock.resource]:
        # Discovery serves exactly the registered resources (kmock also adds the resources of
        # every object it ever stored, which would keep a deleted CRD discoverable).
        return [r for r in self.resources if isinstance(r, kmock.resource)]  # keys, normalized

    # ------------------------------------------------------------------ public API (in-loop)

    def add_hook(self, hook: ChangeHook) -> None:
        """Call ``hook(type, resource, obj, old)`` after every stored change (controllers)."""
        self._hooks.append(hook)

    # get/patch/delete below are the emulator's object store API; they shadow kmock's
    # HTTP client helpers of the same names (get(url), ...), which these tests never call.
    def get(self, resource: kmock.resource, namespace: str | None, name: str) -> Obj | None:  # type: ignore[override]
        """The current object or None (a deep copy)."""
        key = (resource, namespace, name)
        if key in self.objects and not self.objects[key].deleted:
            return copy.deepcopy(self.objects[key].raw)
        return None

    def list(
        self,
        resource: kmock.resource,
        namespace: str | None = None,
        labels: str | None = None,
        fields: str | None = None,
    ) -> list[Obj]:
        """Current objects of a resource (all namespaces when ``namespace`` is None)."""
        lsel, fsel = label_selector(labels), field_selector(fields)
        out = []
        for (res, ns, _name), obj in self.objects.items():
            if res != resource or obj.deleted or (namespace is not None and ns != namespace):
                continue
            raw = obj.raw
            if lsel(raw) and fsel(raw):
                out.append(copy.deepcopy(raw))
        return out

    async def create(self, resource: kmock.resource, namespace: str | None, body: Obj) -> Obj:
        return await self._create(resource, namespace, body)

    async def patch(  # type: ignore[override]
        self,
        resource: kmock.resource,
        namespace: str | None,
        name: str,
        patch: Obj,
        subresource: str | None = None,
    ) -> Obj:
        return await self._update(resource, namespace, name, patch, "merge", subresource)

    async def delete(  # type: ignore[override]
        self, resource: kmock.resource, namespace: str | None, name: str, **opts: Any
    ) -> Obj:
        return await self._delete(resource, namespace, name, opts)

    async def remove(self, resource: kmock.resource, namespace: str | None, name: str) -> None:
        """Finish a graceful deletion: drop the object from the store now (the kubelet's part)."""
        if self.get(resource, namespace, name) is not None:
            await self._remove(resource, namespace, name)

    def register_crd(self, crd: Obj) -> kmock.resource:
        """Serve the custom resource a CRD defines (discovery, list, watch, CRUD)."""
        spec = crd["spec"]
        names = spec["names"]
        version = next(v for v in spec["versions"] if v.get("storage", v.get("served")))
        res = kmock.resource(spec["group"], version["name"], names["plural"])
        subresources = set(version.get("subresources") or spec.get("subresources") or {})
        self.resources[res] = kmock.ResourceInfo(
            kind=names["kind"],
            singular=names.get("singular", names["kind"].lower()),
            namespaced=spec.get("scope", "Namespaced") == "Namespaced",
            verbs=[
                "create",
                "delete",
                "deletecollection",
                "get",
                "list",
                "patch",
                "update",
                "watch",
            ],
            shortnames=names.get("shortNames", []),
            categories=names.get("categories", []),
            subresources=subresources,
        )
        return res

    # ------------------------------------------------------------------ HTTP entry point

    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        await raw_request.read()
        try:
            request = await self._parse_request(raw_request)
            self._requests.append(request)
            return await self._handle(request)
        except ApiError as exc:
            return aiohttp.web.json_response(exc.status(), status=exc.code)
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception as exc:
            log.exception("emulator error on %s %s", raw_request.method, raw_request.path)
            err = ApiError(500, "InternalError", f"emulator: {exc!r}")
            return aiohttp.web.json_response(err.status(), status=500)

    async def _parse_request(self, raw: aiohttp.web.BaseRequest) -> kmock_rendering.Request:
        body = await raw.read()
        data: Any = None
        if body:
            text = body.decode("utf-8", "replace")
            try:
                data = json.loads(text)
            except ValueError:
                with contextlib.suppress(yaml.YAMLError):
                    data = yaml.safe_load(text)  # server-side apply bodies may be YAML
        path = _normalize_path(raw.path)
        k8s = _parse_path(path)
        resource = (
            None
            if k8s.group is None
            else kmock.resource(group=k8s.group, version=k8s.version, plural=k8s.plural)
        )
        method = kmock.method(raw.method)
        action = kmock_parsing.guess_k8s(k8s, method, dict(raw.query))
        return kmock_rendering.Request(
            raw_request=raw,
            url=raw.url.with_path(path),
            method=raw.method,
            params=dict(raw.query),
            headers=dict(raw.headers),
            cookies=dict(raw.cookies),
            data=data,
            body=body,
            text=body.decode("utf-8", "replace"),
            action=action,
            resource=resource,
            namespace=k8s.namespace,
            name=k8s.name,
            subresource=k8s.subresource,
        )

    async def _handle(self, request: kmock_rendering.Request) -> aiohttp.web.StreamResponse:
        res = request.resource
        if res is None or res.plural is None or request.method is None:
            # Discovery and anything else: kmock's scaffold (skipping its object tracking).
            return await kmock.RawHandler._handle(self, request)
        if res not in self.resources and res not in ACCESS_REVIEWS:
            raise ApiError(
                404,
                "NotFound",
                f"the server could not find the requested resource ({res.plural}.{res.group})",
            )
        method = request.method.value.upper()
        params = request.params
        ns, name, sub = request.namespace, request.name, request.subresource
        if res in ACCESS_REVIEWS and method == "POST":
            body = dict(request.data or {})
            body["status"] = {"allowed": True, "reason": "kubeemu: no RBAC is emulated"}
            return aiohttp.web.json_response(body, status=201)
        if method == "GET" and params.get("watch") in ("true", "1"):
            return await self._serve_watch_stream(request)
        if method == "GET" and name is None:
            return aiohttp.web.json_response(self._serve_list_body(res, ns, params))
        if method == "GET" and sub == "log" and res == PODS:
            return self._serve_log(ns, name, params)
        if method == "GET":
            obj = self.get(res, ns, name)  # type: ignore[arg-type]
            if obj is None:
                raise not_found(res, name or "")
            return aiohttp.web.json_response(obj)
        if method == "POST" and name is None:
            created = await self._create(res, ns, request.data or {}, params)
            return aiohttp.web.json_response(created, status=201)
        if method in ("PATCH", "PUT") and name is not None:
            ctype = request.headers.get("Content-Type", "").split(";")[0].strip()
            kind = (
                "replace"
                if method == "PUT"
                else "json"
                if ctype == "application/json-patch+json"
                else "merge"
            )
            obj = await self._update(res, ns, name, request.data, kind, sub)
            return aiohttp.web.json_response(obj)
        if method == "DELETE" and name is not None:
            opts = dict(request.data or {}) if isinstance(request.data, Mapping) else {}
            for key in ("propagationPolicy", "gracePeriodSeconds"):
                if key in params:
                    opts[key] = params[key]
            obj = await self._delete(res, ns, name, opts)
            return aiohttp.web.json_response(obj)
        if method == "DELETE":
            lsel = params.get("labelSelector")
            for item in self.list(res, ns, lsel, params.get("fieldSelector")):
                meta = item["metadata"]
                await self._delete(res, meta.get("namespace"), meta["name"], {})
            return aiohttp.web.json_response({"kind": "Status", "status": "Success"})
        raise ApiError(405, "MethodNotAllowed", f"{method} is not supported on this path")

    # ------------------------------------------------------------------ reads

    def _kind(self, res: kmock.resource) -> tuple[str, str]:
        info = self.resources[res]
        api_version = f"{res.group}/{res.version}" if res.group else str(res.version)
        return api_version, info.kind or (res.plural or "").capitalize()

    def _serve_list_body(
        self, res: kmock.resource, ns: str | None, params: Mapping[str, str]
    ) -> Obj:
        items = self.list(res, ns, params.get("labelSelector"), params.get("fieldSelector"))
        api_version, kind = self._kind(res)
        return {
            "apiVersion": api_version,
            "kind": f"{kind}List",
            "metadata": {"resourceVersion": str(self._rv)},
            "items": items,
        }

    def _serve_log(self, ns: str | None, name: str | None, params: Mapping[str, str]) -> Any:
        if self.get(PODS, ns, name or "") is None:
            raise not_found(PODS, name or "")
        text = (
            self.log_reader(ns or "", name or "", params.get("container"))
            if self.log_reader
            else None
        )
        if text is None:
            raise ApiError(400, "BadRequest", f'container in pod "{name}" is waiting to start')
        return aiohttp.web.Response(text=text, content_type="text/plain")

    async def _serve_watch_stream(
        self, request: kmock_rendering.Request
    ) -> aiohttp.web.StreamResponse:
        res, ns, params = request.resource, request.namespace, request.params
        assert res is not None
        lsel, fsel = (
            label_selector(params.get("labelSelector")),
            field_selector(params.get("fieldSelector")),
        )
        if request.name is not None:  # watch on a single object = field selector on its name
            name = request.name
            base = fsel
            fsel = lambda o: base(o) and o.get("metadata", {}).get("name") == name  # noqa: E731
        timeout = float(params.get("timeoutSeconds") or 0) or None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout if timeout else None

        def selected(obj: Obj | None) -> bool:
            if obj is None:
                return False
            if ns is not None and obj.get("metadata", {}).get("namespace") != ns:
                return False
            return lsel(obj) and fsel(obj)

        raw = request._raw_request
        assert raw is not None
        response = aiohttp.web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(raw)

        async def send(kind: str, obj: Obj) -> None:
            await response.write(json.dumps({"type": kind, "object": obj}).encode() + b"\n")

        since = params.get("resourceVersion")
        if since in (None, "", "0"):
            for obj in self.list(res, ns):
                if selected(obj):
                    await send("ADDED", obj)
            index = len(self._events)
        else:
            index = next(
                (i for i, e in enumerate(self._events) if e.rv > int(since)), len(self._events)
            )
        assert self._changed is not None
        try:
            while True:
                while index < len(self._events):
                    event = self._events[index]
                    index += 1
                    if event.resource != res:
                        continue
                    now_in, was_in = selected(event.obj), selected(event.old)
                    if event.type == "DELETED":
                        if now_in or was_in:
                            await send("DELETED", event.obj)
                    elif now_in and was_in:
                        await send(event.type, event.obj)
                    elif now_in:
                        await send("ADDED", event.obj)
                    elif was_in:
                        await send("DELETED", event.obj)
                remaining = None if deadline is None else deadline - loop.time()
                if remaining is not None and remaining <= 0:
                    break

                def more(seen: int = index) -> bool:
                    return seen < len(self._events)

                async with self._changed:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(
                            self._changed.wait_for(more),
                            timeout=min(remaining or 5.0, 5.0),
                        )
        except (ConnectionResetError, asyncio.CancelledError):
            return response
        with contextlib.suppress(ConnectionResetError):
            await response.write_eof()
        return response

    # ------------------------------------------------------------------ writes

    def _store_new(self, res: kmock.resource, ns: str | None, body: Obj) -> Obj:
        self._rv += 1
        meta = body.setdefault("metadata", {})
        meta.update(
            uid=str(uuid.uuid4()),
            resourceVersion=str(self._rv),
            creationTimestamp=now_iso(),
            generation=1,
        )
        if ns is not None:
            meta["namespace"] = ns
        api_version, kind = self._kind(res)
        body["apiVersion"], body["kind"] = api_version, kind
        key = (res, ns, meta["name"])
        if key in self.objects:
            self.objects[key].create(body)
        else:
            self.objects[key] = body
        return body

    async def _emit(self, kind: str, res: kmock.resource, obj: Obj, old: Obj | None) -> None:
        self._events.append(Event(self._rv, res, kind, copy.deepcopy(obj), old))
        if self._changed is None:
            self._changed = asyncio.Condition()
        async with self._changed:
            self._changed.notify_all()
        for hook in list(self._hooks):
            result = hook(kind, res, copy.deepcopy(obj), old)
            if asyncio.iscoroutine(result):
                task = asyncio.ensure_future(result)
                self._bg.add(task)
                task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._bg.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background controller failed", exc_info=task.exception())

    def spawn(self, coro: Awaitable[Any]) -> None:
        """Run a controller coroutine in the background (errors logged, never lost)."""
        task = asyncio.ensure_future(coro)
        self._bg.add(task)
        task.add_done_callback(self._task_done)

    async def _create(
        self,
        res: kmock.resource,
        ns: str | None,
        body: Obj,
        params: Mapping[str, str] | None = None,
    ) -> Obj:
        if not isinstance(body, Mapping):
            raise ApiError(400, "BadRequest", "the request body must be a JSON object")
        body = prune_nulls(copy.deepcopy(dict(body)))
        info = self.resources[res]
        meta = body.setdefault("metadata", {})
        if not info.namespaced:
            ns = None
        else:
            ns = ns or meta.get("namespace")
            if not ns:
                raise ApiError(400, "BadRequest", "a namespaced object needs a namespace")
            if meta.get("namespace", ns) != ns:
                raise ApiError(
                    400,
                    "BadRequest",
                    "the namespace of the provided object does not match the namespace "
                    "sent on the request",
                )
            nsobj = self.get(NAMESPACES, None, ns)
            if nsobj is None:
                raise ApiError(
                    404,
                    "NotFound",
                    f'namespaces "{ns}" not found',
                    {"name": ns, "kind": "namespaces"},
                )
            if nsobj["metadata"].get("deletionTimestamp"):
                raise ApiError(403, "Forbidden", f"namespace {ns} is being terminated")
        if not meta.get("name"):
            if not meta.get("generateName"):
                raise ApiError(422, "Invalid", "metadata.name or metadata.generateName is required")
            alphabet = string.ascii_lowercase + string.digits
            while True:
                name = meta["generateName"] + "".join(random.choices(alphabet, k=5))
                if self.get(res, ns, name) is None:
                    break
            meta["name"] = name
        if self.get(res, ns, meta["name"]) is not None:
            raise ApiError(
                409,
                "AlreadyExists",
                f'{res.plural} "{meta["name"]}" already exists',
                {"name": meta["name"], "kind": res.plural},
            )
        for key in ("uid", "resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds"):
            meta.pop(key, None)
        if "status" in info.subresources:
            body.pop("status", None)
        self._default(res, body)
        if params and params.get("dryRun"):
            return body
        stored = copy.deepcopy(self._store_new(res, ns, body))
        if res == CRDS:
            self.register_crd(stored)
            stored.setdefault("status", {})["conditions"] = [
                {"type": "Established", "status": "True"},
                {"type": "NamesAccepted", "status": "True"},
            ]
            self.objects[(res, ns, meta["name"])].create(copy.deepcopy(stored))
        await self._emit("ADDED", res, stored, None)
        return stored

    def _default(self, res: kmock.resource, body: Obj) -> None:
        """Server-side defaults the clients rely on."""
        spec = body.setdefault("spec", {}) if res in (SERVICES, PODS, DEPLOYMENTS, JOBS) else None
        if res == SERVICES:
            assert spec is not None
            spec.setdefault("type", "ClusterIP")
            if spec.get("clusterIP") != "None":
                spec["clusterIP"] = f"10.96.{random.randint(0, 255)}.{random.randint(1, 254)}"
                spec["clusterIPs"] = [spec["clusterIP"]]
            for port in spec.get("ports", []):
                port.setdefault("protocol", "TCP")
                port.setdefault("targetPort", port.get("port"))
            body["status"] = {"loadBalancer": {}}
        elif res == PODS:
            assert spec is not None
            spec.setdefault("restartPolicy", "Always")
            spec.setdefault("terminationGracePeriodSeconds", 30)
            spec.setdefault("serviceAccountName", spec.get("serviceAccount", "default"))
            body["status"] = {"phase": "Pending", "qosClass": "BestEffort"}
        elif res == DEPLOYMENTS:
            assert spec is not None
            spec.setdefault("replicas", 1)
            body["status"] = {}
        elif res == JOBS:
            assert spec is not None
            spec.setdefault("backoffLimit", 6)
            spec.setdefault("completions", 1)
            spec.setdefault("parallelism", 1)
            spec["template"].setdefault("spec", {}).setdefault("restartPolicy", "Never")
            body["status"] = {}
        elif res == SECRETS:
            data = dict(body.get("data") or {})
            for key, value in (body.pop("stringData", None) or {}).items():
                data[key] = base64.b64encode(str(value).encode()).decode()
            body["data"] = data
        elif res == NAMESPACES:
            body["status"] = {"phase": "Active"}
            body.setdefault("spec", {"finalizers": ["kubernetes"]})

    async def _update(
        self,
        res: kmock.resource,
        ns: str | None,
        name: str,
        patch: Any,
        kind: str,
        sub: str | None,
    ) -> Obj:
        info = self.resources[res]
        ns = ns if info.namespaced else None
        old = self.get(res, ns, name)
        if old is None:
            raise not_found(res, name)
        if sub not in (None, "status"):
            raise ApiError(404, "NotFound", f"the subresource {sub!r} is not emulated")
        if kind == "json":
            new = jsonpatch.apply_patch(copy.deepcopy(old), patch or [], in_place=False)
        elif kind == "replace":
            new = copy.deepcopy(dict(patch or {}))
        else:
            if not isinstance(patch, Mapping):
                raise ApiError(400, "BadRequest", "a merge patch must be a JSON object")
            new = dict(kmock_dicts.merge_patch_dict(copy.deepcopy(old), patch))
        new = prune_nulls(new)
        want_rv = (
            (patch or {}).get("metadata", {}).get("resourceVersion")
            if isinstance(patch, Mapping)
            else None
        )
        if want_rv and str(want_rv) != old["metadata"]["resourceVersion"]:
            raise ApiError(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on {res.plural} "{name}": the object has been '
                "modified; please apply your changes to the latest version and try again",
            )
        # Status subresource semantics: the main path cannot change status, /status only status.
        if sub == "status":
            kept = copy.deepcopy(old)
            if "status" in new:
                kept["status"] = new["status"]
            else:
                kept.pop("status", None)
            new = kept
        elif "status" in info.subresources:
            if "status" in old:
                new["status"] = old["status"]
            else:
                new.pop("status", None)
        meta = new.setdefault("metadata", {})
        for key in (
            "uid",
            "creationTimestamp",
            "namespace",
            "name",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
        ):
            if key in old["metadata"]:
                meta[key] = old["metadata"][key]
            else:
                meta.pop(key, None)
        new["apiVersion"], new["kind"] = old["apiVersion"], old["kind"]
        meta["resourceVersion"] = old["metadata"]["resourceVersion"]
        if new == old:
            return old
        strip = lambda o: {k: v for k, v in o.items() if k not in ("metadata", "status")}  # noqa: E731
        if strip(new) != strip(old):
            meta["generation"] = int(old["metadata"].get("generation", 1)) + 1
        if old["metadata"].get("deletionTimestamp") and len(meta.get("finalizers", [])) > len(
            old["metadata"].get("finalizers", [])
        ):
            raise ApiError(
                422, "Invalid", "no new finalizers can be added if the object is being deleted"
            )
        self._rv += 1
        meta["resourceVersion"] = str(self._rv)
        self.objects[(res, ns, name)].create(new)
        await self._emit("MODIFIED", res, new, old)
        if (
            meta.get("deletionTimestamp")
            and not meta.get("finalizers")
            and not self._is_graceful(res, new)
        ):
            await self._remove(res, ns, name)
        return copy.deepcopy(new)

    def _is_graceful(self, res: kmock.resource, obj: Obj) -> bool:
        return bool(self.graceful and self.graceful(res, obj))

    async def _delete(
        self, res: kmock.resource, ns: str | None, name: str, opts: Mapping[str, Any]
    ) -> Obj:
        info = self.resources[res]
        ns = ns if info.namespaced else None
        obj = self.get(res, ns, name)
        if obj is None:
            raise not_found(res, name)
        meta = obj["metadata"]
        policy = opts.get("propagationPolicy") or (
            "Orphan" if opts.get("orphanDependents") else "Background"
        )
        if policy == "Orphan":
            self._orphaned.add(meta["uid"])
        if meta.get("deletionTimestamp"):
            return obj
        grace = opts.get("gracePeriodSeconds")
        graceful = self._is_graceful(res, obj) and str(grace) != "0"
        if meta.get("finalizers") or graceful:
            patch: Obj = {"metadata": {"deletionTimestamp": now_iso()}}
            if graceful:
                default = obj.get("spec", {}).get("terminationGracePeriodSeconds", 30)
                patch["metadata"]["deletionGracePeriodSeconds"] = int(
                    grace if grace is not None else default
                )
            self._rv += 1
            new = dict(kmock_dicts.merge_patch_dict(copy.deepcopy(obj), patch))
            new["metadata"]["resourceVersion"] = str(self._rv)
            self.objects[(res, ns, name)].create(new)
            await self._emit("MODIFIED", res, new, obj)
            return copy.deepcopy(new)
        await self._remove(res, ns, name)
        return obj

    async def _remove(self, res: kmock.resource, ns: str | None, name: str) -> None:
        old = self.get(res, ns, name)
        if old is None:
            return
        self._rv += 1
        final = copy.deepcopy(old)
        final["metadata"]["resourceVersion"] = str(self._rv)
        self.objects[(res, ns, name)].delete()
        await self._emit("DELETED", res, final, old)
        uid = old["metadata"]["uid"]
        orphan = uid in self._orphaned
        self._orphaned.discard(uid)
        if res == CRDS:
            spec = old["spec"]
            gone = kmock.resource(
                spec["group"], spec["versions"][0]["name"], spec["names"]["plural"]
            )
            for item in self.list(gone):
                await self._remove(
                    gone, item["metadata"].get("namespace"), item["metadata"]["name"]
                )
            for key in [k for k in self.objects if k[0] == gone]:
                del self.objects[key]
            del self.resources[gone]
        if res == NAMESPACES:
            self.spawn(self._delete_namespace_content(old["metadata"]["name"]))
        self.spawn(self._collect_dependents(uid, orphan))

    async def _delete_namespace_content(self, ns: str) -> None:
        for (res, ons, name), obj in list(self.objects.items()):
            if ons == ns and not obj.deleted:
                with contextlib.suppress(ApiError):
                    await self._delete(res, ns, name, {})

    async def _collect_dependents(self, uid: str, orphan: bool) -> None:
        """The garbage collector: dependents whose owners are all gone are deleted."""
        await asyncio.sleep(0)
        live_uids = {obj.raw["metadata"]["uid"] for obj in self.objects.values() if not obj.deleted}
        for (res, ns, name), obj in list(self.objects.items()):
            if obj.deleted:
                continue
            refs = obj.raw["metadata"].get("ownerReferences") or []
            if not any(r.get("uid") == uid for r in refs):
                continue
            remaining = [r for r in refs if r.get("uid") != uid and r.get("uid") in live_uids]
            if orphan or remaining:
                with contextlib.suppress(ApiError):
                    await self._update(
                        res,
                        ns,
                        name,
                        {"metadata": {"ownerReferences": remaining or None}},
                        "merge",
                        None,
                    )
            else:
                log.info("garbage-collecting %s %s/%s (owner %s gone)", res.plural, ns, name, uid)
                with contextlib.suppress(ApiError):
                    await self._delete(res, ns, name, {})


def load_crds(paths: Iterable[Path]) -> list[Obj]:
    """CustomResourceDefinition documents from YAML files."""
    docs: list[Obj] = []
    for path in paths:
        docs.extend(
            d
            for d in yaml.safe_load_all(path.read_text())
            if d and d.get("kind") == "CustomResourceDefinition"
        )
    return docs


def dask_crd_files() -> list[Path]:
    """The dask-kubernetes operator's CRDs, as shipped inside its wheel."""
    import dask_kubernetes

    root = (
        Path(dask_kubernetes.__file__).parent
        / "operator/deployment/helm/dask-kubernetes-operator/crds"
    )
    files = sorted(root.glob("*.yaml"))
    if not files:
        raise FileNotFoundError(f"no CRDs under {root}: is dask-kubernetes installed in full?")
    return files


class EmulatorThread:
    """Runs an :class:`ApiEmulator` (and in-loop controllers) on its own event loop thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.api: ApiEmulator | None = None
        self.url = ""
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="kubeemu-api", daemon=True)
        self._setup: list[Callable[[ApiEmulator], Awaitable[None]]] = []

    def start(self, timeout: float = 30) -> EmulatorThread:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("the API emulator did not start")
        if self._error:
            raise RuntimeError("the API emulator failed to start") from self._error
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._main())
        except BaseException as exc:  # reported through start()
            self._error = exc
            self._ready.set()
        finally:
            self.loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        api = ApiEmulator()
        api._changed = asyncio.Condition()
        async with api, kmock.Server(api) as server:
            self.api = api
            self.url = str(server.url).rstrip("/")
            self._ready.set()
            await self._stop.wait()
            for task in list(api._bg):
                task.cancel()

    def call(
        self, coro_fn: Callable[[ApiEmulator], Coroutine[Any, Any, Any]], timeout: float = 60
    ) -> Any:
        """Run ``coro_fn(api)`` on the emulator's loop and return its result (thread-safe)."""
        assert self.api is not None
        fut = asyncio.run_coroutine_threadsafe(coro_fn(self.api), self.loop)
        return fut.result(timeout)

    def read(self, fn: Callable[[ApiEmulator], Any], timeout: float = 30) -> Any:
        """Run a plain function on the emulator's loop (consistent reads from tests)."""

        async def wrapper(api: ApiEmulator) -> Any:
            return fn(api)

        return self.call(wrapper, timeout)

    def stop(self) -> None:
        if self._stop is not None and self.loop.is_running():
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)


def secret_value(secret: Obj, key: str) -> str | None:
    """A decoded value of a Secret's ``data`` (or ``stringData``) key."""
    if key in (secret.get("stringData") or {}):
        return str(secret["stringData"][key])
    raw = (secret.get("data") or {}).get(key)
    return None if raw is None else base64.b64decode(raw).decode()
