"""The harness of the Kubernetes rehearsal (an emulation, see README.md in this folder).

The fixtures in conftest.py build on it:

``kube``: a fresh API emulator (kmock) on 127.0.0.1 with the test kubelet, a namespace and a
kubeconfig; ``dask_crds``: the dask-kubernetes CRDs from its wheel, applied; ``operator``:
the real dask-kubernetes operator (``kopf run`` of its controller module) as a subprocess;
``s3``: moto's S3 server on 127.0.0.1. Everything is function-scoped and torn down on every
exit path; the teardown fails the test if a process or a scheduler port is left behind.
"""

from __future__ import annotations

import atexit
import base64
import builtins
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kmock

from kube_emulated.emulator import (
    CRDS,
    NAMESPACES,
    ApiEmulator,
    EmulatorThread,
    Obj,
    load_crds,
)
from kube_emulated.kubelet import SHIM_DIR, Kubelet, group_alive, kill_group

NAMESPACE = "gagebench-rehearsal"
SCHEDULER_PORTS = (8786, 8787)

# Last resort if the test process itself is interrupted between setup and teardown.
_LIVE: list[subprocess.Popen[bytes]] = []
_KUBELETS: list[Kubelet] = []


@atexit.register
def _kill_leftovers() -> None:
    kill_group([p for p in _LIVE if p.poll() is None], 2)
    for kubelet in _KUBELETS:
        kill_group([c.proc for rp in kubelet.pods.values() for c in rp.containers.values()], 2)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_wrappers(bin_dir: Path) -> None:
    """The runtime image's ``dask-scheduler``/``dask-worker`` commands (the operator runs those
    names); this environment has only ``dask scheduler``/``dask worker``."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    dask = Path(sys.executable).parent / "dask"
    for name, sub in (("dask-scheduler", "scheduler"), ("dask-worker", "worker")):
        path = bin_dir / name
        path.write_text(f'#!/bin/sh\nexec "{dask}" {sub} "$@"\n')
        path.chmod(0o755)


@dataclass
class Kube:
    """A handle on the emulated cluster for tests (reads go through the emulator's loop)."""

    emu: EmulatorThread
    kubelet: Kubelet
    url: str
    kubeconfig: Path
    namespace: str
    workdir: Path
    image_bin: Path
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def api(self) -> ApiEmulator:
        assert self.emu.api is not None
        return self.emu.api

    def env(self, **extra: str) -> dict[str, str]:
        """Environment for a process that talks to the emulated cluster from "outside"."""
        env = dict(os.environ)
        env.update(
            KUBECONFIG=str(self.kubeconfig),
            KUBEEMU_API=self.url,
            PYTHONPATH=os.pathsep.join(filter(None, [str(SHIM_DIR), env.get("PYTHONPATH")])),
            PATH=f"{self.image_bin}:{Path(sys.executable).parent}:{env.get('PATH', '')}",
            PYTHONUNBUFFERED="1",
        )
        env.update(extra)
        return env

    def get(self, res: Any, name: str, namespace: str | None = "") -> Obj | None:
        ns = self.namespace if namespace == "" else namespace
        return self.emu.read(lambda api: api.get(kmock.resource(res), ns, name))

    def list(
        self, res: Any, namespace: str | None = "", labels: str | None = None
    ) -> builtins.list[Obj]:
        ns = self.namespace if namespace == "" else namespace
        return self.emu.read(lambda api: api.list(kmock.resource(res), ns, labels))

    def create(self, res: Any, body: Obj, namespace: str | None = "") -> Obj:
        ns = self.namespace if namespace == "" else namespace
        return self.emu.call(lambda api: api.create(kmock.resource(res), ns, body))

    def delete(self, res: Any, name: str, namespace: str | None = "", **opts: Any) -> Obj:
        ns = self.namespace if namespace == "" else namespace
        return self.emu.call(lambda api: api.delete(kmock.resource(res), ns, name, **opts))

    def wait(self, predicate: Callable[[], Any], timeout: float, what: str) -> Any:
        """Poll ``predicate`` until truthy; fail with ``what`` and the pods' logs otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.2)
        raise AssertionError(
            f"timed out after {timeout}s waiting for {what}\n{self.kubelet.all_logs()}"
        )

    def history(self, res: Any, name: str, namespace: str | None = "") -> builtins.list[Obj]:
        """Every stored version of an object (deletions skipped), oldest first."""
        ns = self.namespace if namespace == "" else namespace
        key = (kmock.resource(res), ns, name)

        def read(api: ApiEmulator) -> builtins.list[Obj]:
            if key not in api.objects:
                return []
            return [dict(v.raw) for v in api.objects[key].history if v is not None]

        return self.emu.read(read)

    def api_requests(self) -> builtins.list[tuple[str, str]]:
        """(method, path) of every request the emulator served, in order."""
        return self.emu.read(
            lambda api: [(str(r.method.value).upper(), r.url.path) for r in api._requests]
        )

    def diagnostics(self, operator: Operator | None = None) -> str:
        """The operator's log tail and every pod's output, for assertion messages."""
        text = f"--- operator\n{operator.log()[-6000:]}\n" if operator else ""
        return text + self.kubelet.all_logs()

    def apply_crds(self, files: builtins.list[Path]) -> builtins.list[Obj]:
        return [
            self.create("apiextensions.k8s.io/v1/customresourcedefinitions", d, None)
            for d in load_crds(files)
        ]

    def processes(self) -> builtins.list[int]:
        return self.emu.read(lambda api: self.kubelet.processes())

    def leftovers(self) -> builtins.list[str]:
        """What must be gone once a run ended: Dask objects, their Deployments and Services,
        and pods still running (finished Job pods stay, as on a real cluster)."""

        def read(api: ApiEmulator) -> builtins.list[str]:
            out = []
            for (res, _ns, name), obj in api.objects.items():
                if obj.deleted:
                    continue
                raw = obj.raw
                labels = raw["metadata"].get("labels") or {}
                if res.group == "kubernetes.dask.org" or (
                    res.plural in ("deployments", "services") and "dask.org/cluster-name" in labels
                ):
                    out.append(f"{res.plural}/{name}")
                elif res.plural == "pods" and raw.get("status", {}).get("phase") not in (
                    "Succeeded",
                    "Failed",
                ):
                    out.append(f"pods/{name}")
            return out

        return list(self.emu.read(read))


def write_kubeconfig(path: Path, url: str, namespace: str) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "kubeemu", "cluster": {"server": url}}],
        "users": [{"name": "kubeemu", "user": {"token": "kubeemu"}}],
        "contexts": [
            {
                "name": "kubeemu",
                "context": {"cluster": "kubeemu", "user": "kubeemu", "namespace": namespace},
            }
        ],
        "current-context": "kubeemu",
    }
    path.write_text(json.dumps(config, indent=2))


@dataclass
class Operator:
    proc: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_operator(kube: Kube, *, namespace: str | None = None) -> Operator:
    """The real dask-kubernetes operator: ``kopf run`` of its controller module."""
    port = free_port()
    args = [
        str(Path(sys.executable).parent / "kopf"),
        "run",
        "--standalone",
        "-m",
        "dask_kubernetes.operator.controller",
        f"--liveness=http://127.0.0.1:{port}/healthz",
    ]
    args += [f"--namespace={namespace}"] if namespace else ["--all-namespaces"]
    log_path = kube.workdir / "operator.log"
    with open(log_path, "wb") as logf:
        proc = subprocess.Popen(
            args,
            env=kube.env(),
            stdout=logf,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=kube.workdir,
        )
    _LIVE.append(proc)
    op = Operator(proc, log_path)
    import urllib.request

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the operator exited with {proc.returncode}:\n{op.log()}")
        url = f"http://127.0.0.1:{port}/healthz"
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as resp:
            if resp.status == 200:
                return op
        time.sleep(0.3)
    stop_process(proc)
    raise RuntimeError(f"the operator did not become live in 60 s:\n{op.log()}")


def stop_process(proc: subprocess.Popen[bytes], grace: float = 10) -> None:
    kill_group([proc], grace)
    assert not group_alive(proc.pid), f"process group {proc.pid} survived its teardown"
    if proc in _LIVE:
        _LIVE.remove(proc)


@dataclass
class S3:
    endpoint: str
    bucket: str

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def env(self) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def storage_options(self) -> dict[str, Any]:
        """fsspec/s3fs options for this server (for code running in the test process)."""
        return {"key": "testing", "secret": "testing", "endpoint_url": self.endpoint}

    def keys(self, prefix: str = "") -> list[str]:
        resp = self.client().list_objects_v2(Bucket=self.bucket, Prefix=prefix)
        return sorted(o["Key"] for o in resp.get("Contents", []))


def secret_manifest(name: str, data: dict[str, str]) -> Obj:
    return {
        "metadata": {"name": name},
        "type": "Opaque",
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }


__all__ = [
    "CRDS",
    "NAMESPACE",
    "NAMESPACES",
    "S3",
    "Kube",
    "Operator",
    "secret_manifest",
    "signal",
    "start_operator",
    "stop_process",
]
