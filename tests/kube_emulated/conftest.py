"""Fixtures of the Kubernetes rehearsal (an emulation, see README.md in this folder).

``kube``: a fresh API emulator (kmock) on 127.0.0.1 with the test kubelet, a namespace and a
kubeconfig; ``dask_crds``: the dask-kubernetes CRDs from its wheel, applied; ``operator``:
the real dask-kubernetes operator (``kopf run`` of its controller module) as a subprocess;
``s3``: moto's S3 server on 127.0.0.1. Everything is function-scoped and torn down on every
exit path; the teardown fails the test if a process it started is left behind.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kube_emulated.emulator import EmulatorThread, Obj, dask_crd_files
from kube_emulated.harness import (
    _KUBELETS,
    NAMESPACE,
    S3,
    Kube,
    Operator,
    free_port,
    start_operator,
    stop_process,
    write_kubeconfig,
    write_wrappers,
)
from kube_emulated.kubelet import Kubelet, group_alive


@pytest.fixture
def kube(tmp_path: Path) -> Iterator[Kube]:
    """An emulated Kubernetes: API emulator + test kubelet + namespace + kubeconfig."""
    emu = EmulatorThread().start()
    kubeconfig = tmp_path / "kubeconfig"
    write_kubeconfig(kubeconfig, emu.url, NAMESPACE)
    image_bin = tmp_path / "image-bin"
    write_wrappers(image_bin)
    assert emu.api is not None
    kubelet = Kubelet(
        emu.api,
        tmp_path / "node",
        kubeconfig=kubeconfig,
        api_url=emu.url,
        extra_env={
            "PATH": os.pathsep.join(
                [str(image_bin), str(Path(sys.executable).parent), os.environ.get("PATH", "/bin")]
            ),
            # No pod may probe a cloud metadata address from this machine.
            "AWS_EC2_METADATA_DISABLED": "true",
        },
    )
    _KUBELETS.append(kubelet)
    k = Kube(emu, kubelet, emu.url, kubeconfig, NAMESPACE, tmp_path, image_bin)
    try:
        emu.call(lambda api: kubelet.start())
        k.create("v1/namespaces", {"metadata": {"name": NAMESPACE}}, None)
        yield k
    finally:
        with contextlib.suppress(Exception):
            emu.call(lambda api: kubelet.stop(), timeout=60)
        emu.stop()
        _KUBELETS.remove(kubelet)
    # Nothing the kubelet started may survive the test (checked by process group).
    # SIGKILLed processes take a moment to exit: allow 10 s before calling them leaked.
    deadline = time.monotonic() + 10
    alive = [g for g in kubelet.process_groups() if group_alive(g)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.2)
        alive = [g for g in alive if group_alive(g)]
    assert not alive, f"pod process groups {alive} survived the test"


@pytest.fixture
def dask_crds(kube: Kube) -> list[Obj]:
    """The DaskCluster, DaskWorkerGroup, DaskAutoscaler, DaskJob CRDs from dask-kubernetes."""
    return kube.apply_crds(dask_crd_files())


@pytest.fixture
def operator(kube: Kube, dask_crds: list[Obj]) -> Iterator[Operator]:
    """The dask-kubernetes operator watching all namespaces of the emulated cluster."""
    op = start_operator(kube)
    try:
        yield op
    finally:
        stop_process(op.proc)


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[S3]:
    """moto's S3 server (server mode, so pod processes reach it) on 127.0.0.1.

    moto's IAM check is process-wide: the integration suite's session-scoped server turns it
    on (to test bad credentials), so this server turns it off for its own lifetime.
    """
    from moto import settings
    from moto.server import ThreadedMotoServer

    monkeypatch.setattr(settings, "INITIAL_NO_AUTH_ACTION_COUNT", float("inf"))

    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        monkeypatch.setenv(key, value)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        s3 = S3(f"http://127.0.0.1:{port}", "gagebench")
        s3.client().create_bucket(Bucket=s3.bucket)
        yield s3
    finally:
        server.stop()
