"""A test kubelet (plus the few controllers it needs) that runs pods as local processes.

An emulation, not a node: it acts on the :class:`emulator.ApiEmulator` store from the
emulator's own event loop, as a kube-controller-manager + kube-scheduler + kubelet would:

- Deployment controller: keeps ``spec.replicas`` Pods owned by each Deployment (directly:
  there are no ReplicaSets; template changes are not rolled out); reports ready replicas.
- Job controller: one Pod at a time owned by the Job, retried up to ``backoffLimit``;
  ``Complete``/``Failed`` conditions; ``activeDeadlineSeconds``.
- scheduler: one node; a pod whose ``nodeSelector`` does not match the node's labels or
  whose CPU/memory requests do not fit in what is left stays ``Pending`` (``Unschedulable``).
- kubelet: each container's ``command``/``args`` run as a local process in its own process
  group, with the container's env (``$(VAR)`` expansion, downward-API ``fieldRef``,
  ``secretKeyRef``/``configMapKeyRef``, ``envFrom``). Images are ignored: every container
  runs in this machine's Python environment (bare commands resolve to the venv's ``bin``
  first). Volumes become per-pod directories (ConfigMap/Secret files written there,
  ``emptyDir`` empty) and mount paths in args/env are rewritten to them. The pod is
  Running once its processes start and Ready once the readiness probes (HTTP GET, TCP,
  exec) pass. Deleting a pod sends SIGTERM to its process group, SIGKILL after the grace
  period, then removes the object. Restart policy: ``Always`` restarts (CrashLoopBackOff
  between tries), ``Never``/``OnFailure`` as Kubernetes.
- service controller: ``LoadBalancer`` Services get the ingress IP 127.0.0.1 (which
  forwards nowhere: there is no kube-proxy, use ClusterIP Services);
  service-account controller: each namespace gets its ``default`` ServiceAccount.

Networking: every pod gets its own loopback address (127.0.x.y) as ``podIP``; its
processes bind "any address" to it and Service names resolve to their pods' IPs through
the shim in ``shim/`` (see README.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import kmock

from kube_emulated.emulator import (
    CONFIGMAPS,
    DEPLOYMENTS,
    JOBS,
    NAMESPACES,
    NODE_NAME,
    NODES,
    PODS,
    SECRETS,
    SERVICEACCOUNTS,
    SERVICES,
    ApiEmulator,
    ApiError,
    Obj,
    label_selector,
    now_iso,
    secret_value,
)

log = logging.getLogger("kubeemu.kubelet")

SHIM_DIR = Path(__file__).parent / "shim"


def parse_quantity(value: Any) -> float:
    """A Kubernetes quantity (``500m``, ``2``, ``1Gi``, ``512M``) as a float."""
    s = str(value).strip()
    units = {
        "m": 1e-3,
        "k": 1e3,
        "K": 1e3,
        "M": 1e6,
        "G": 1e9,
        "T": 1e12,
        "Ki": 2**10,
        "Mi": 2**20,
        "Gi": 2**30,
        "Ti": 2**40,
    }
    m = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", s)
    if not m:
        raise ValueError(f"bad quantity {value!r}")
    return float(m[1]) * units.get(m[2], 1.0)


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes ``$(VAR)`` expansion: defined variables are replaced, ``$$`` escapes."""

    def repl(m: re.Match[str]) -> str:
        if m[0].startswith("$$"):
            return m[0][1:]
        return env.get(m[1], m[0])

    return re.sub(r"\$\$\([A-Za-z_][A-Za-z0-9_.-]*\)|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)", repl, text)


def owned_by(obj: Obj, uid: str) -> bool:
    return any(r.get("uid") == uid for r in obj["metadata"].get("ownerReferences") or [])


def owner_ref(owner: Obj) -> Obj:
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


@dataclass
class Container:
    name: str
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    restarts: int = 0
    exit_code: int | None = None
    ready: bool = False
    started_at: str = ""
    waiting: str | None = None
    message: str = ""


@dataclass
class RunningPod:
    ns: str
    name: str
    uid: str
    root: Path
    containers: dict[str, Container] = field(default_factory=dict)
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    ip: str = "127.0.0.1"
    terminating: bool = False
    done: bool = False


class Kubelet:
    """Runs the controllers above on the emulator's loop; ``stop()`` kills every process."""

    def __init__(
        self,
        api: ApiEmulator,
        workdir: Path,
        *,
        kubeconfig: Path,
        api_url: str,
        extra_env: Mapping[str, str] | None = None,
        restart_backoff: float = 1.0,
    ) -> None:
        self.api = api
        self.workdir = workdir
        self.kubeconfig = kubeconfig
        self.api_url = api_url
        self.extra_env = dict(extra_env or {})
        self.restart_backoff = restart_backoff
        self.pods: dict[tuple[str, str], RunningPod] = {}
        self.started_groups: list[int] = []
        self._ips = 0
        self._job_failures: dict[str, set[str]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.bin_dir = str(Path(sys.executable).parent)

    # ------------------------------------------------------------------ wiring

    async def start(self) -> None:
        self.api.add_hook(self._on_change)
        self.api.log_reader = self.read_log
        self.api.graceful = lambda res, obj: bool(
            res == PODS and (obj["metadata"].get("namespace"), obj["metadata"]["name"]) in self.pods
        )
        for res in (NAMESPACES, DEPLOYMENTS, JOBS, SERVICES, PODS):
            for obj in self.api.list(res):
                self._on_change("ADDED", res, obj, None)

    def _lock(self, key: str) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    def _on_change(self, kind: str, res: kmock.resource, obj: Obj, old: Obj | None) -> None:
        meta = obj["metadata"]
        if res == DEPLOYMENTS and kind != "DELETED":
            self.api.spawn(self._reconcile_deployment(meta["namespace"], meta["name"]))
        elif res == JOBS and kind != "DELETED":
            self.api.spawn(self._reconcile_job(meta["namespace"], meta["name"]))
        elif res == SERVICES and kind == "ADDED" and obj["spec"].get("type") == "LoadBalancer":
            self.api.spawn(
                self.api.patch(
                    SERVICES,
                    meta["namespace"],
                    meta["name"],
                    {"status": {"loadBalancer": {"ingress": [{"ip": "127.0.0.1"}]}}},
                    subresource="status",
                )
            )
        elif res == NAMESPACES and kind == "ADDED":
            # The service-account controller: every namespace gets a "default" account.
            self.api.spawn(
                self.api.create(SERVICEACCOUNTS, meta["name"], {"metadata": {"name": "default"}})
            )
        elif res == PODS:
            key = (meta["namespace"], meta["name"])
            if kind == "ADDED" and not obj["spec"].get("nodeName"):
                self.api.spawn(self._schedule(meta["namespace"], meta["name"]))
            elif kind == "MODIFIED" and meta.get("deletionTimestamp") and key in self.pods:
                self.api.spawn(
                    self._terminate(key, int(meta.get("deletionGracePeriodSeconds", 30)))
                )
            elif kind == "DELETED":
                if key in self.pods:  # force-deleted: kill now
                    self.api.spawn(self._terminate(key, 0, remove=False))
                self.api.spawn(self._schedule_pending())
            if kind != "ADDED" or obj.get("status", {}).get("phase") != "Pending":
                for ref in meta.get("ownerReferences") or []:
                    if ref.get("kind") == "Deployment":
                        self.api.spawn(self._reconcile_deployment(meta["namespace"], ref["name"]))
                    elif ref.get("kind") == "Job":
                        self.api.spawn(self._reconcile_job(meta["namespace"], ref["name"]))

    # ------------------------------------------------------------------ controllers

    def _owned_pods(self, owner: Obj) -> list[Obj]:
        return [
            p
            for p in self.api.list(PODS, owner["metadata"]["namespace"])
            if owned_by(p, owner["metadata"]["uid"])
        ]

    async def _reconcile_deployment(self, ns: str, name: str) -> None:
        async with self._lock(f"deploy/{ns}/{name}"):
            dep = self.api.get(DEPLOYMENTS, ns, name)
            if dep is None or dep["metadata"].get("deletionTimestamp"):
                return
            pods = [p for p in self._owned_pods(dep) if not p["metadata"].get("deletionTimestamp")]
            want = int(dep["spec"].get("replicas", 1))
            template = dep["spec"]["template"]
            phash = hashlib.sha1(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]
            for _ in range(want - len(pods)):
                tmeta = template.get("metadata") or {}
                labels = dict(tmeta.get("labels") or {}) | {"pod-template-hash": phash}
                pod = {
                    "metadata": {
                        "generateName": f"{name}-{phash}-",
                        "labels": labels,
                        "annotations": dict(tmeta.get("annotations") or {}),
                        "ownerReferences": [owner_ref(dep)],
                    },
                    "spec": copy.deepcopy(template.get("spec") or {}),
                }
                await self.api.create(PODS, ns, pod)
            for pod in sorted(pods, key=lambda p: p["metadata"]["creationTimestamp"])[want:]:
                with contextlib.suppress(ApiError):
                    await self.api.delete(PODS, ns, pod["metadata"]["name"])
            pods = [p for p in self._owned_pods(dep) if not p["metadata"].get("deletionTimestamp")]
            ready = sum(1 for p in pods if _pod_ready(p))
            status = {
                "observedGeneration": dep["metadata"].get("generation", 1),
                "replicas": len(pods),
                "updatedReplicas": len(pods),
                "readyReplicas": ready,
                "availableReplicas": ready,
            }
            with contextlib.suppress(ApiError):
                await self.api.patch(
                    DEPLOYMENTS, ns, name, {"status": status}, subresource="status"
                )

    async def _reconcile_job(self, ns: str, name: str) -> None:
        async with self._lock(f"job/{ns}/{name}"):
            job = self.api.get(JOBS, ns, name)
            if job is None or job["metadata"].get("deletionTimestamp"):
                return
            status = job.get("status") or {}
            if any(c.get("type") in ("Complete", "Failed") for c in status.get("conditions", [])):
                return
            pods = self._owned_pods(job)
            succeeded = sum(1 for p in pods if p["status"].get("phase") == "Succeeded")
            # Failed pods are remembered after they are gone (the Job's pod tracking).
            seen = self._job_failures.setdefault(job["metadata"]["uid"], set())
            seen |= {p["metadata"]["uid"] for p in pods if p["status"].get("phase") == "Failed"}
            failed = len(seen)
            active = [
                p
                for p in pods
                if p["status"].get("phase") not in ("Succeeded", "Failed")
                and not p["metadata"].get("deletionTimestamp")
            ]
            spec = job["spec"]
            start = status.get("startTime") or now_iso()
            new: Obj = {
                "startTime": start,
                "active": len(active),
                "succeeded": succeeded,
                "failed": failed,
            }
            deadline = spec.get("activeDeadlineSeconds")
            started = time.mktime(time.strptime(start, "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
            condition = None
            if succeeded >= int(spec.get("completions", 1)):
                condition = {"type": "Complete", "status": "True"}
                new["completionTime"] = now_iso()
            elif failed > int(spec.get("backoffLimit", 6)):
                condition = {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}
            elif deadline and time.time() > started + float(deadline):
                condition = {"type": "Failed", "status": "True", "reason": "DeadlineExceeded"}
            elif not active:
                tmeta = spec["template"].get("metadata") or {}
                uid = job["metadata"]["uid"]
                labels = dict(tmeta.get("labels") or {}) | {
                    "job-name": name,
                    "controller-uid": uid,
                    "batch.kubernetes.io/job-name": name,
                    "batch.kubernetes.io/controller-uid": uid,
                }
                pod = {
                    "metadata": {
                        "generateName": f"{name}-",
                        "labels": labels,
                        "annotations": dict(tmeta.get("annotations") or {}),
                        "ownerReferences": [owner_ref(job)],
                    },
                    "spec": copy.deepcopy(spec["template"]["spec"]),
                }
                await self.api.create(PODS, ns, pod)
                new["active"] = 1
                if deadline:
                    self.api.spawn(
                        self._later(float(deadline) + 0.5, lambda: self._reconcile_job(ns, name))
                    )
            if condition is not None:
                condition["lastTransitionTime"] = now_iso()
                new["conditions"] = [condition]
                new["active"] = 0
                for pod in active:
                    with contextlib.suppress(ApiError):
                        await self.api.delete(PODS, ns, pod["metadata"]["name"])
            with contextlib.suppress(ApiError):
                await self.api.patch(JOBS, ns, name, {"status": new}, subresource="status")

    @staticmethod
    async def _later(delay: float, make: Callable[[], Awaitable[None]]) -> None:
        await asyncio.sleep(delay)
        await make()

    # ------------------------------------------------------------------ scheduler

    async def _schedule_pending(self) -> None:
        for pod in self.api.list(PODS):
            if not pod["spec"].get("nodeName") and not pod["metadata"].get("deletionTimestamp"):
                await self._schedule(pod["metadata"]["namespace"], pod["metadata"]["name"])

    async def _schedule(self, ns: str, name: str) -> None:
        async with self._lock("scheduler"):
            pod = self.api.get(PODS, ns, name)
            if (
                pod is None
                or pod["spec"].get("nodeName")
                or pod["metadata"].get("deletionTimestamp")
            ):
                return
            reason = self._unschedulable(pod)
            if reason:
                cond = {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": f"0/1 nodes are available: 1 {reason}.",
                }
                if pod["status"].get("conditions") != [cond]:
                    await self.api.patch(
                        PODS, ns, name, {"status": {"conditions": [cond]}}, subresource="status"
                    )
                return
            await self.api.patch(PODS, ns, name, {"spec": {"nodeName": NODE_NAME}})
            self._ips += 1
            n = self._ips
            self.pods[(ns, name)] = RunningPod(
                ns,
                name,
                pod["metadata"]["uid"],
                self.workdir / "pods" / f"{ns}_{name}",
                ip=f"127.0.{(n // 250) % 256}.{n % 250 + 2}",
            )
        await self._run_pod(ns, name)

    def _unschedulable(self, pod: Obj) -> str | None:
        node = self.api.get(NODES, None, NODE_NAME)
        assert node is not None
        labels = node["metadata"].get("labels") or {}
        for key, value in (pod["spec"].get("nodeSelector") or {}).items():
            if labels.get(key) != value:
                return "node(s) didn't match Pod's node affinity/selector"
        alloc = node["status"]["allocatable"]
        used = {"cpu": 0.0, "memory": 0.0}
        for other in self.api.list(PODS):
            if other["spec"].get("nodeName") and other["status"].get("phase") not in (
                "Succeeded",
                "Failed",
            ):
                for k, v in _requests(other).items():
                    used[k] += v
        for k, v in _requests(pod).items():
            if used[k] + v > parse_quantity(alloc[k]):
                return f"Insufficient {k}"
        return None

    # ------------------------------------------------------------------ kubelet

    async def _run_pod(self, ns: str, name: str) -> None:
        rp = self.pods[(ns, name)]
        pod = self.api.get(PODS, ns, name)
        if pod is None:
            return
        rp.root.mkdir(parents=True, exist_ok=True)
        unpullable = [c for c in pod["spec"]["containers"] if _unpullable(c.get("image", ""))]
        if unpullable:
            # The one image failure the emulation knows: a registry under the reserved
            # ".invalid" TLD (RFC 2606) cannot exist anywhere, so its pull fails.
            for spec in unpullable:
                image = spec.get("image", "")
                host = image.split("/", 1)[0]
                rp.containers[spec["name"]] = Container(
                    spec["name"],
                    waiting="ErrImagePull",
                    message=(
                        f"failed to pull image {image!r}: dial tcp: lookup {host}: no such host"
                    ),
                )
            await self._set_status(rp)
            rp.done = True
            return
        try:
            mounts_by_volume = self._volumes(pod, rp.root)
            for spec in pod["spec"].get("initContainers") or []:
                c = Container(spec["name"])
                rp.containers[spec["name"]] = c
                self._start(pod, spec, c, mounts_by_volume, rp.root)
                assert c.proc is not None
                code = await asyncio.get_running_loop().run_in_executor(None, c.proc.wait)
                if code != 0:
                    raise RuntimeError(f"init container {spec['name']} exited with {code}")
            for spec in pod["spec"]["containers"]:
                c = Container(spec["name"])
                rp.containers[spec["name"]] = c
                self._start(pod, spec, c, mounts_by_volume, rp.root)
        except (RuntimeError, OSError, KeyError, ValueError) as exc:
            log.error("pod %s/%s failed to start: %s", ns, name, exc)
            await self._set_status(rp, phase="Failed", message=str(exc))
            rp.done = True
            return
        await self._set_status(rp, phase="Running")
        for spec in pod["spec"]["containers"]:
            rp.tasks.append(asyncio.ensure_future(self._supervise(rp, pod, spec, mounts_by_volume)))
            rp.tasks.append(asyncio.ensure_future(self._probe(rp, spec)))

    def _ip_of(self, pod: Obj) -> str:
        rp = self.pods.get((pod["metadata"]["namespace"], pod["metadata"]["name"]))
        return rp.ip if rp else "127.0.0.1"

    def _volumes(self, pod: Obj, root: Path) -> dict[str, Path]:
        ns = pod["metadata"]["namespace"]
        out: dict[str, Path] = {}
        for vol in pod["spec"].get("volumes") or []:
            path = root / "volumes" / vol["name"]
            path.mkdir(parents=True, exist_ok=True)
            out[vol["name"]] = path
            sources = [vol]
            if "projected" in vol:
                sources = vol["projected"].get("sources") or []
            for src in sources:
                if "configMap" in src:
                    cm = self.api.get(CONFIGMAPS, ns, src["configMap"]["name"])
                    if cm is None:
                        if src["configMap"].get("optional"):
                            continue
                        raise RuntimeError(f'configmap "{src["configMap"]["name"]}" not found')
                    data = dict(cm.get("data") or {})
                    self._write_items(path, data, src["configMap"].get("items"))
                elif "secret" in src:
                    sname = src["secret"].get("secretName") or src["secret"].get("name")
                    sec = self.api.get(SECRETS, ns, sname)
                    if sec is None:
                        if src["secret"].get("optional"):
                            continue
                        raise RuntimeError(f'secret "{sname}" not found')
                    data = {k: secret_value(sec, k) or "" for k in (sec.get("data") or {})}
                    self._write_items(path, data, src["secret"].get("items"))
                elif "downwardAPI" in src:
                    for item in src["downwardAPI"].get("items") or []:
                        value = (
                            field_ref(pod, item["fieldRef"]["fieldPath"])
                            if "fieldRef" in item
                            else ""
                        )
                        (path / item["path"]).write_text(value)
                elif "serviceAccountToken" in src:
                    (path / src["serviceAccountToken"].get("path", "token")).write_text(
                        "kubeemu-token"
                    )
        return out

    @staticmethod
    def _write_items(path: Path, data: Mapping[str, str], items: list[Obj] | None) -> None:
        pairs = [(i["key"], i["path"]) for i in items] if items else [(k, k) for k in data]
        for key, rel in pairs:
            target = path / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(data[key])

    def _env(self, pod: Obj, spec: Obj, root: Path) -> tuple[dict[str, str], dict[str, str]]:
        """(the node's base env, the container's own env) of a container."""
        ns = pod["metadata"]["namespace"]
        base = {
            "PATH": f"{self.bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": str(root / "home"),
            "LANG": "C.UTF-8",
            "HOSTNAME": pod["metadata"]["name"],
            "PYTHONPATH": str(SHIM_DIR),
            "PYTHONUNBUFFERED": "1",
            "KUBEEMU_API": self.api_url,
            "KUBEEMU_POD_IP": self._ip_of(pod),
            # In-cluster credentials: a kubeconfig for the emulator (no service-account token).
            "KUBECONFIG": str(self.kubeconfig),
            "KUBERNETES_SERVICE_HOST": "127.0.0.1",
            "KUBERNETES_SERVICE_PORT": self.api_url.rsplit(":", 1)[-1],
        } | self.extra_env
        (root / "home").mkdir(parents=True, exist_ok=True)
        env: dict[str, str] = {}
        for src in spec.get("envFrom") or []:
            prefix = src.get("prefix", "")
            if "configMapRef" in src:
                cm = self.api.get(CONFIGMAPS, ns, src["configMapRef"]["name"])
                if cm is None and not src["configMapRef"].get("optional"):
                    raise RuntimeError(f'configmap "{src["configMapRef"]["name"]}" not found')
                env.update({prefix + k: v for k, v in ((cm or {}).get("data") or {}).items()})
            if "secretRef" in src:
                sec = self.api.get(SECRETS, ns, src["secretRef"]["name"])
                if sec is None and not src["secretRef"].get("optional"):
                    raise RuntimeError(f'secret "{src["secretRef"]["name"]}" not found')
                for k in (sec or {}).get("data") or {}:
                    env[prefix + k] = secret_value(sec or {}, k) or ""
        for item in spec.get("env") or []:
            if "value" in item:
                env[item["name"]] = expand(str(item["value"]), base | env)
            elif "valueFrom" in item:
                vf = item["valueFrom"]
                value: str | None = None
                if "fieldRef" in vf:
                    value = field_ref(pod, vf["fieldRef"]["fieldPath"], self._ip_of(pod))
                elif "secretKeyRef" in vf:
                    ref = vf["secretKeyRef"]
                    sec = self.api.get(SECRETS, ns, ref["name"])
                    value = secret_value(sec, ref["key"]) if sec else None
                    if value is None and not ref.get("optional"):
                        raise RuntimeError(
                            f"CreateContainerConfigError: secret {ref['name']!r} "
                            f"key {ref['key']!r} not found"
                        )
                elif "configMapKeyRef" in vf:
                    ref = vf["configMapKeyRef"]
                    cm = self.api.get(CONFIGMAPS, ns, ref["name"])
                    value = ((cm or {}).get("data") or {}).get(ref["key"])
                    if value is None and not ref.get("optional"):
                        raise RuntimeError(
                            f"CreateContainerConfigError: configmap {ref['name']!r} "
                            f"key {ref['key']!r} not found"
                        )
                elif "resourceFieldRef" in vf:
                    res = vf["resourceFieldRef"]["resource"]
                    kind, _, what = res.partition(".")
                    raw = ((spec.get("resources") or {}).get(kind) or {}).get(what)
                    value = str(int(max(1, parse_quantity(raw)))) if raw else "0"
                if value is not None:
                    env[item["name"]] = value
            else:
                env[item["name"]] = ""
        return base, env

    def _start(
        self, pod: Obj, spec: Obj, c: Container, volumes: dict[str, Path], root: Path
    ) -> None:
        base, own = self._env(pod, spec, root)
        mounts: list[tuple[str, str]] = []
        for vm in spec.get("volumeMounts") or []:
            host = volumes.get(vm["name"])
            if host is None:
                raise RuntimeError(f"volume {vm['name']} is not defined")
            if vm.get("subPath"):
                host = host / vm["subPath"]
            mounts.append((vm["mountPath"].rstrip("/") or "/", str(host)))
        mounts.sort(key=lambda m: -len(m[0]))

        hosts = dict(mounts)
        pattern = (
            re.compile(r"(^|[=:,])(" + "|".join(re.escape(m) for m, _ in mounts) + r")(?=/|$|[,:])")
            if mounts
            else None
        )

        def rewrite(text: str) -> str:
            # One pass (longest mount first): a rewritten path is never rewritten again.
            if pattern is None:
                return text
            return pattern.sub(lambda m: m[1] + hosts[m[2]], text)

        # Only what the pod spec says is rewritten (the node's own paths may live under /tmp).
        env = base | {k: rewrite(v) for k, v in own.items()}
        for mount, host_dir in mounts:
            if mount == "/tmp":
                env["TMPDIR"] = host_dir
        argv = [expand(str(a), env) for a in (spec.get("command") or []) + (spec.get("args") or [])]
        argv = [rewrite(a) for a in argv]
        if not argv:
            raise RuntimeError(
                f"container {spec['name']} has no command/args: an image's default entrypoint "
                "cannot run in the emulation"
            )
        exe = argv[0]
        if "/" not in exe:
            found = shutil.which(exe, path=env["PATH"])
            if not found:
                raise RuntimeError(f'exec: "{exe}": executable file not found in $PATH')
            argv[0] = found
        cwd = rewrite(spec.get("workingDir") or str(root / "home"))
        if not Path(cwd).is_dir():  # an image's directory: not there without the image
            cwd = str(root / "home")
        c.log_path = Path(root) / f"{spec['name']}.log"
        logf = open(c.log_path, "ab")  # noqa: SIM115 - handed to the child
        try:
            c.proc = subprocess.Popen(
                argv,
                env=env,
                cwd=cwd,
                stdout=logf,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        finally:
            logf.close()
        self.started_groups.append(c.proc.pid)
        c.started_at, c.exit_code, c.waiting, c.ready = now_iso(), None, None, False
        log.info(
            "started %s/%s[%s] pid %s: %s",
            pod["metadata"]["namespace"],
            pod["metadata"]["name"],
            spec["name"],
            c.proc.pid,
            " ".join(argv),
        )

    async def _supervise(
        self, rp: RunningPod, pod: Obj, spec: Obj, volumes: dict[str, Path]
    ) -> None:
        c = rp.containers[spec["name"]]
        policy = pod["spec"].get("restartPolicy", "Always")
        loop = asyncio.get_running_loop()
        while True:
            assert c.proc is not None
            code = await loop.run_in_executor(None, c.proc.wait)
            c.exit_code, c.ready = code, False
            if rp.terminating:
                return
            log.info("container %s/%s[%s] exited with %s", rp.ns, rp.name, c.name, code)
            if policy == "Always" or (policy == "OnFailure" and code != 0):
                c.waiting = "CrashLoopBackOff"
                await self._set_status(rp)
                await asyncio.sleep(min(self.restart_backoff * 2**c.restarts, 10))
                if rp.terminating:
                    return
                c.restarts += 1
                try:
                    self._start(pod, spec, c, volumes, rp.root)
                except (RuntimeError, OSError) as exc:
                    log.error("restart failed: %s", exc)
                    continue
                await self._set_status(rp)
                continue
            break
        if all(x.exit_code is not None for x in rp.containers.values() if x.name in _names(pod)):
            ok = all(x.exit_code == 0 for x in rp.containers.values() if x.name in _names(pod))
            rp.done = True
            await self._set_status(rp, phase="Succeeded" if ok else "Failed")
            self.pods.pop((rp.ns, rp.name), None)
        else:
            await self._set_status(rp)

    async def _probe(self, rp: RunningPod, spec: Obj) -> None:
        c = rp.containers[spec["name"]]
        probe = spec.get("readinessProbe")
        ports = {p.get("name"): p["containerPort"] for p in spec.get("ports") or []}
        await asyncio.sleep(float((probe or {}).get("initialDelaySeconds", 0)))
        while not rp.terminating and not rp.done:
            running = c.proc is not None and c.proc.poll() is None
            ok = running and (probe is None or await self._check(probe, ports, rp))
            if ok != c.ready:
                c.ready = ok
                await self._set_status(rp)
            await asyncio.sleep(
                min(float((probe or {}).get("periodSeconds", 1)), 1.0) if probe else 0.5
            )

    async def _check(self, probe: Obj, ports: Mapping[str, int], rp: RunningPod) -> bool:
        timeout = float(probe.get("timeoutSeconds", 1))
        try:
            if "httpGet" in probe:
                h = probe["httpGet"]
                port = ports.get(h["port"], h["port"]) if isinstance(h["port"], str) else h["port"]
                url = f"{h.get('scheme', 'HTTP').lower()}://{rp.ip}:{port}{h.get('path', '/')}"
                async with (
                    aiohttp.ClientSession() as session,
                    session.get(url, timeout=aiohttp.ClientTimeout(total=min(timeout, 2))) as resp,
                ):
                    return 200 <= resp.status < 400
            if "tcpSocket" in probe:
                port = probe["tcpSocket"]["port"]
                port = ports.get(port, port) if isinstance(port, str) else port
                _, writer = await asyncio.wait_for(asyncio.open_connection(rp.ip, int(port)), 2)
                writer.close()
                return True
            if "exec" in probe:
                proc = await asyncio.create_subprocess_exec(
                    *probe["exec"]["command"],
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.DEVNULL,
                )
                return await asyncio.wait_for(proc.wait(), 10) == 0
        except (OSError, aiohttp.ClientError, TimeoutError):
            return False
        return True

    async def _set_status(
        self, rp: RunningPod, phase: str | None = None, message: str | None = None
    ) -> None:
        pod = self.api.get(PODS, rp.ns, rp.name)
        if pod is None or pod["metadata"]["uid"] != rp.uid:
            return
        statuses = []
        for c in rp.containers.values():
            if c.name not in _names(pod):
                continue
            if c.waiting:
                state: Obj = {"waiting": {"reason": c.waiting, "message": c.message}}
            elif c.exit_code is not None:
                state = {
                    "terminated": {
                        "exitCode": c.exit_code,
                        "reason": "Completed" if c.exit_code == 0 else "Error",
                        "startedAt": c.started_at,
                        "finishedAt": now_iso(),
                    }
                }
            else:
                state = {"running": {"startedAt": c.started_at}}
            image = next(
                (s.get("image", "") for s in pod["spec"]["containers"] if s["name"] == c.name), ""
            )
            statuses.append(
                {
                    "name": c.name,
                    "ready": c.ready,
                    "restartCount": c.restarts,
                    "state": state,
                    "started": c.exit_code is None and not c.waiting,
                    "image": image,
                    "imageID": "",
                }
            )
        all_ready = bool(statuses) and all(s["ready"] for s in statuses)
        ready = "True" if all_ready else "False"
        status: Obj = {
            "hostIP": "127.0.0.1",
            "podIP": rp.ip,
            "podIPs": [{"ip": rp.ip}],
            "startTime": pod["status"].get("startTime") or now_iso(),
            "conditions": [
                {"type": "PodScheduled", "status": "True"},
                {"type": "Initialized", "status": "True"},
                {"type": "ContainersReady", "status": ready},
                {"type": "Ready", "status": ready},
            ],
            "containerStatuses": statuses,
        }
        if phase:
            status["phase"] = phase
        if message:
            status["message"] = message
        with contextlib.suppress(ApiError):
            await self.api.patch(PODS, rp.ns, rp.name, {"status": status}, subresource="status")

    async def _terminate(self, key: tuple[str, str], grace: int, remove: bool = True) -> None:
        rp = self.pods.get(key)
        if rp is None or rp.terminating:
            return
        rp.terminating = True
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(
            None, kill_group, [c.proc for c in rp.containers.values()], grace
        )
        for task in rp.tasks:
            task.cancel()
        for c in rp.containers.values():
            if c.proc is not None and c.exit_code is None:
                c.exit_code = c.proc.returncode
        self.pods.pop(key, None)
        if remove:
            # The final status first (a Job counts a pod that ended non-zero as failed).
            codes = [c.exit_code for c in rp.containers.values()]
            ok = bool(codes) and all(code == 0 for code in codes)
            await self._set_status(rp, phase="Succeeded" if ok else "Failed")
            await self.api.remove(PODS, *key)

    # ------------------------------------------------------------------ logs and teardown

    def read_log(self, ns: str, name: str, container: str | None) -> str | None:
        root = self.workdir / "pods" / f"{ns}_{name}"
        files = [root / f"{container}.log"] if container else sorted(root.glob("*.log"))
        texts = [f.read_text(errors="replace") for f in files if f.exists()]
        return "".join(texts) if texts else None

    def all_logs(self) -> str:
        """Every pod's output (for failure reports)."""
        out = []
        for f in sorted((self.workdir / "pods").glob("*/*.log")):
            out.append(f"----- {f.parent.name} [{f.stem}]\n{f.read_text(errors='replace')[-6000:]}")
        return "\n".join(out)

    def process_groups(self) -> list[int]:
        """Every process group this kubelet ever started (one per container start)."""
        return list(self.started_groups)

    def processes(self) -> list[int]:
        """PIDs of container processes still alive."""
        return [
            c.proc.pid
            for rp in self.pods.values()
            for c in rp.containers.values()
            if c.proc is not None and c.proc.poll() is None
        ]

    async def stop(self) -> None:
        """Kill every container's process group (SIGTERM, then SIGKILL)."""
        procs = [c.proc for rp in self.pods.values() for c in rp.containers.values()]
        for rp in self.pods.values():
            rp.terminating = True
            for task in rp.tasks:
                task.cancel()
        await asyncio.get_running_loop().run_in_executor(None, kill_group, procs, 5)
        self.pods.clear()


def kill_group(procs: list[subprocess.Popen[bytes] | None], grace: float) -> None:
    """SIGTERM each process group, wait up to ``grace`` seconds, then SIGKILL what is left."""
    live = [p for p in procs if p is not None]
    for p in live:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(p.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for p in live:
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(max(0.0, deadline - time.monotonic()))
    for p in live:
        # The group may outlive its leader (children of the container's process).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(p.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(5)


def group_alive(pgid: int) -> bool:
    """Whether any process of process group ``pgid`` still exists."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def field_ref(pod: Obj, path: str, ip: str = "127.0.0.1") -> str:
    """A downward-API ``fieldRef`` value."""
    m = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
    if m:
        return str((pod["metadata"].get(m[1]) or {}).get(m[2], ""))
    simple = {
        "metadata.name": pod["metadata"]["name"],
        "metadata.namespace": pod["metadata"]["namespace"],
        "metadata.uid": pod["metadata"]["uid"],
        "spec.nodeName": NODE_NAME,
        "spec.serviceAccountName": pod["spec"].get("serviceAccountName", "default"),
        "status.podIP": ip,
        "status.hostIP": "127.0.0.1",
    }
    if path not in simple:
        raise RuntimeError(f"fieldRef {path!r} is not supported by the emulation")
    return str(simple[path])


def _unpullable(image: str) -> bool:
    host = image.split("/", 1)[0] if "/" in image else ""
    return host.split(":")[0].endswith(".invalid")


def _names(pod: Obj) -> set[str]:
    return {c["name"] for c in pod["spec"]["containers"]}


def _pod_ready(pod: Obj) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in pod.get("status", {}).get("conditions", [])
    )


def _requests(pod: Obj) -> dict[str, float]:
    total = {"cpu": 0.0, "memory": 0.0}
    for c in pod["spec"].get("containers") or []:
        req = (
            (c.get("resources") or {}).get("requests")
            or (c.get("resources") or {}).get("limits")
            or {}
        )
        for k in total:
            if k in req:
                total[k] += parse_quantity(req[k])
    return total


def port_free(port: int) -> bool:
    """Whether nothing listens on 127.0.0.1:``port``."""
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) != 0


__all__ = ["Kubelet", "kill_group", "label_selector", "port_free"]
