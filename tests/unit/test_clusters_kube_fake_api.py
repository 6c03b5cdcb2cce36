"""The kubernetes backend's API conversations, against a FAKE API server on 127.0.0.1.

No real Kubernetes can run here. The fake (``_fake_kube_api.py``) stores objects and
replays scripted failures; the clients are the real kr8s and dask-kubernetes
``KubeCluster``, so the exceptions the backend translates are the real ones. What the
fake cannot show - an operator acting on the DaskCluster, pods really running - is left to
the kube_emulated and kind suites.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kr8s
import pytest
from _fake_kube_api import FakeKubeAPI, status_body
from kr8s._api import Api as _Kr8sApi

import gagebench.clusters.kubernetes as kube
from gagebench.clusters import cluster_client
from gagebench.clusters._kubespec import KubeContext
from gagebench.clusters.auto import choose
from gagebench.config import load_config
from gagebench.errors import ClusterError

NS = "gb"
DC = f"/apis/kubernetes.dask.org/v1/namespaces/{NS}/daskclusters"
JOB_UID = "5d1c3c1e-0000-4000-8000-00000000j0b1"


@pytest.fixture(scope="module")
def fake_api() -> Iterator[FakeKubeAPI]:
    api = FakeKubeAPI().start()
    yield api
    api.stop()


@pytest.fixture
def api(
    fake_api: FakeKubeAPI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FakeKubeAPI]:
    """The fake server, emptied, with KUBECONFIG pointing at it and no pod around us."""
    fake_api.reset()
    monkeypatch.setenv("KUBECONFIG", str(fake_api.kubeconfig(tmp_path)))
    monkeypatch.setenv("HOME", str(tmp_path))
    for var in (
        "POD_NAME",
        "POD_NAMESPACE",
        "GAGEBENCH_IMAGE",
        "KUBERNETES_SERVICE_HOST",
        "DASK_SCHEDULER_ADDRESS",
        "GAGEBENCH_JOB_NAME",
        "GAGEBENCH_JOB_UID",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(kube, "SERVICEACCOUNT_DIR", tmp_path / "no-serviceaccount")
    # kr8s keeps one client per thread and event loop; forget those of earlier servers.
    _Kr8sApi._instances.clear()
    yield fake_api
    _Kr8sApi._instances.clear()


def _in_pod(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pod_name: str) -> None:
    sa = tmp_path / "serviceaccount"
    sa.mkdir()
    (sa / "token").write_text("fake-token")
    (sa / "namespace").write_text(NS)
    monkeypatch.setattr(kube, "SERVICEACCOUNT_DIR", sa)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("POD_NAME", pod_name)


def _controller(api: FakeKubeAPI, owned: bool = True) -> None:
    api.put(
        f"/apis/batch/v1/namespaces/{NS}/jobs/gagebench-nightly",
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "gagebench-nightly", "namespace": NS, "uid": JOB_UID},
        },
    )
    owners = [
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "name": "gagebench-nightly",
            "uid": JOB_UID,
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    api.put(
        f"/api/v1/namespaces/{NS}/pods/gagebench-nightly-x7k2p",
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": "gagebench-nightly-x7k2p",
                "namespace": NS,
                "ownerReferences": owners if owned else [],
            },
            "spec": {
                "serviceAccountName": "gagebench-runner",
                "containers": [
                    {"name": "sidecar", "image": "proxy:1"},
                    {"name": "gagebench", "image": "registry.example/gagebench:1.4.0"},
                ],
            },
        },
    )


def _cfg(tmp_path: Path, **options: Any):
    base = {
        "cluster.backend": "kubernetes",
        "cluster.kubernetes.namespace": NS,
        "cluster.kubernetes.image": "registry.example/gagebench:1.4.0",
        "cluster.kubernetes.owner_job": None,
        "cluster.kubernetes.wait_timeout": 20,
    }
    base.update({f"cluster.kubernetes.{k}": v for k, v in options.items()})
    return load_config(output=str(tmp_path), run_id="nightly-1", overrides=base)


def _open(cfg: Any) -> None:
    with cluster_client(cfg):
        pass


def _backend(cfg: Any) -> kube.KubernetesBackend:
    return kube.KubernetesBackend(cfg)


def test_fake_api_live_context_comes_from_the_controller_pod_and_its_job(
    api: FakeKubeAPI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _controller(api)
    _in_pod(tmp_path, monkeypatch, "gagebench-nightly-x7k2p")
    cfg = load_config(output=str(tmp_path), overrides={"cluster.backend": "kubernetes"})
    ctx = _backend(cfg).live_context()
    assert ctx == KubeContext(
        namespace=NS,
        image="registry.example/gagebench:1.4.0",
        service_account="gagebench-runner",
        owner={
            "apiVersion": "batch/v1",
            "kind": "Job",
            "name": "gagebench-nightly",
            "uid": JOB_UID,
        },
    )
    assert ("GET", f"/apis/batch/v1/namespaces/{NS}/jobs") in api.requests
    # settings win over what the pod says; owner_job null means no owner
    cfg = load_config(
        output=str(tmp_path),
        overrides={
            "cluster.kubernetes.image": "img:pinned",
            "cluster.kubernetes.service_account": "other-sa",
            "cluster.kubernetes.owner_job": None,
        },
    )
    ctx = _backend(cfg).live_context()
    assert (ctx.image, ctx.service_account, ctx.owner) == ("img:pinned", "other-sa", None)


def test_fake_api_pod_without_a_job_gets_no_owner(
    api: FakeKubeAPI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _controller(api, owned=False)
    _in_pod(tmp_path, monkeypatch, "gagebench-nightly-x7k2p")
    ctx = _backend(load_config(output=str(tmp_path))).live_context()
    assert ctx.owner is None
    assert ctx.service_account == "gagebench-runner"


def test_fake_api_outside_a_pod_needs_namespace_and_image(api: FakeKubeAPI, tmp_path: Path) -> None:
    with pytest.raises(Exception, match=r"cluster\.kubernetes\.namespace is not set.*'default'"):
        _backend(load_config(output=str(tmp_path))).live_context()
    cfg = load_config(output=str(tmp_path), overrides={"cluster.kubernetes.namespace": NS})
    with pytest.raises(Exception, match=r"cluster\.kubernetes\.image is not set"):
        _backend(cfg).live_context()


def _assert_deleted(api: FakeKubeAPI, name: str) -> None:
    assert ("DELETE", f"{DC}/{name}") in api.requests
    assert f"{DC}/{name}" not in api.objects


def test_fake_api_rbac_forbidden_names_verb_and_resource(api: FakeKubeAPI, tmp_path: Path) -> None:
    api.failures[("POST", DC)] = (
        403,
        status_body(
            403,
            "Forbidden",
            'daskclusters.kubernetes.dask.org is forbidden: User "system:serviceaccount:gb:'
            'gagebench-runner" cannot create resource "daskclusters" in API group '
            '"kubernetes.dask.org" in the namespace "gb"',
            group="kubernetes.dask.org",
            kind="daskclusters",
        ),
    )
    with pytest.raises(ClusterError) as info:
        _open(_cfg(tmp_path))
    message = str(info.value)
    assert "verb 'create' on resource 'daskclusters.kubernetes.dask.org' in namespace 'gb'" in (
        message
    )
    assert "system:serviceaccount:gb:gagebench-runner" in message
    assert isinstance(info.value.__cause__, kr8s.ServerError)


def test_fake_api_missing_crd_points_at_operator_folder(api: FakeKubeAPI, tmp_path: Path) -> None:
    api.failures[("POST", DC)] = (
        404,
        status_body(404, "NotFound", "the server could not find the requested resource"),
    )
    with pytest.raises(ClusterError, match=r"CRD is not installed.*operator/") as info:
        _open(_cfg(tmp_path))
    assert isinstance(info.value.__cause__, kr8s.ServerError)


def test_fake_api_operator_not_running_times_out_and_deletes(
    api: FakeKubeAPI, tmp_path: Path
) -> None:
    t0 = time.monotonic()
    with pytest.raises(ClusterError, match=r"got no status from the dask-kubernetes operator"):
        _open(_cfg(tmp_path, wait_timeout=2))
    assert time.monotonic() - t0 < 15
    assert ("POST", DC) in api.requests
    _assert_deleted(api, "gagebench-nightly-1")


def _pull_failure(api: FakeKubeAPI, obj: dict[str, Any]) -> None:
    """What the operator and kubelet would show: a Pending cluster, a scheduler pod that
    cannot pull its image."""
    name = obj["metadata"]["name"]
    obj["status"] = {"phase": "Pending"}
    image = obj["spec"]["scheduler"]["spec"]["containers"][0]["image"]
    api.put(
        f"/api/v1/namespaces/{NS}/pods/{name}-scheduler-abc",
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": f"{name}-scheduler-abc",
                "namespace": NS,
                "labels": {"dask.org/cluster-name": name, "dask.org/component": "scheduler"},
            },
            "status": {
                "phase": "Pending",
                "containerStatuses": [
                    {
                        "name": "scheduler",
                        "image": image,
                        "ready": False,
                        "restartCount": 0,
                        "state": {
                            "waiting": {
                                "reason": "ImagePullBackOff",
                                "message": f'Back-off pulling image "{image}"',
                            }
                        },
                    }
                ],
            },
        },
    )


def test_fake_api_image_pull_failure_is_named_quickly_and_cleaned_up(
    api: FakeKubeAPI, tmp_path: Path
) -> None:
    api.on_create.append(_pull_failure)
    t0 = time.monotonic()
    with pytest.raises(ClusterError, match=r"cannot pull image 'registry.example/gagebench:1.4.0'"):
        _open(_cfg(tmp_path, wait_timeout=60))
    assert time.monotonic() - t0 < 15, "should not wait for the whole wait_timeout"
    _assert_deleted(api, "gagebench-nightly-1")


def test_fake_api_foreign_cluster_with_our_name_is_refused(
    api: FakeKubeAPI, tmp_path: Path
) -> None:
    api.put(
        f"{DC}/gagebench-nightly-1",
        {
            "apiVersion": "kubernetes.dask.org/v1",
            "kind": "DaskCluster",
            "metadata": {"name": "gagebench-nightly-1", "namespace": NS, "annotations": {}},
        },
    )
    with pytest.raises(ClusterError, match=r"already exists .* not made by this run"):
        _open(_cfg(tmp_path))
    assert f"{DC}/gagebench-nightly-1" in api.objects, "someone else's cluster must survive"


def test_fake_api_stale_cluster_of_this_run_is_replaced(api: FakeKubeAPI, tmp_path: Path) -> None:
    api.put(
        f"{DC}/gagebench-nightly-1",
        {
            "apiVersion": "kubernetes.dask.org/v1",
            "kind": "DaskCluster",
            "metadata": {
                "name": "gagebench-nightly-1",
                "namespace": NS,
                "annotations": {"gagebench.io/run-id": "nightly-1"},
            },
        },
    )
    api.on_create.append(_pull_failure)
    with pytest.raises(ClusterError, match="cannot pull image"):
        _open(_cfg(tmp_path))
    calls = api.requests
    assert calls.index(("DELETE", f"{DC}/gagebench-nightly-1")) < calls.index(("POST", DC))


def test_no_credentials_anywhere_says_what_to_set(
    api: FakeKubeAPI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing-kubeconfig"))
    with pytest.raises(ClusterError, match=r"no Kubernetes credentials found.*KUBECONFIG") as info:
        _open(_cfg(tmp_path))
    assert isinstance(info.value.__cause__, ValueError)  # kr8s' own error


def test_fake_api_auto_picks_kubernetes_in_a_pod_with_the_crd(
    api: FakeKubeAPI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = load_config(output=str(tmp_path), overrides={"cluster.backend": "auto"})
    assert choose(cfg) == "local"  # not in a pod
    _in_pod(tmp_path, monkeypatch, "gagebench-nightly-x7k2p")
    assert choose(cfg) == "kubernetes"  # the fake serves the daskclusters list
    api.failures[("GET", DC)] = (
        404,
        status_body(404, "NotFound", "the server could not find the requested resource"),
    )
    assert choose(cfg) == "local"  # CRD missing: no kubernetes backend here
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", "tcp://127.0.0.1:8786")
    assert choose(cfg) == "address"


def test_fake_api_auto_does_not_fall_back_to_local_when_kubernetes_is_there_but_refused(
    api: FakeKubeAPI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = load_config(output=str(tmp_path), overrides={"cluster.backend": "auto"})
    _in_pod(tmp_path, monkeypatch, "gagebench-nightly-x7k2p")
    api.failures[("GET", DC)] = (
        403,
        status_body(
            403,
            "Forbidden",
            'daskclusters.kubernetes.dask.org is forbidden: User "system:serviceaccount:gb:'
            'gagebench-runner" cannot list resource "daskclusters" in API group '
            '"kubernetes.dask.org" in the namespace "gb"',
        ),
    )
    with pytest.raises(ClusterError) as info:
        choose(cfg)
    message = str(info.value)
    assert "cluster.backend=auto" in message
    assert "verb 'list' on resource 'daskclusters.kubernetes.dask.org'" in message
    assert "--set cluster.backend=local" in message
    # a bug while asking is not "no kubernetes here" either: it surfaces as itself
    api.failures.pop(("GET", DC))
    monkeypatch.setattr(kube, "_daskcluster_class", _raise_type_error)
    with pytest.raises(TypeError, match="a bug"):
        choose(cfg)


def _raise_type_error() -> Any:
    raise TypeError("a bug")


_HOLDER = """
import sys
from gagebench.config import load_config
from gagebench.clusters import cluster_client
cfg = load_config(output=sys.argv[1], run_id="nightly-1", overrides={
    "cluster.backend": "kubernetes", "cluster.kubernetes.namespace": "gb",
    "cluster.kubernetes.image": "img:1", "cluster.kubernetes.owner_job": None,
    "cluster.kubernetes.wait_timeout": 120})
with cluster_client(cfg):
    print("UNREACHABLE", flush=True)
"""


def test_fake_api_sigterm_while_starting_deletes_the_daskcluster(
    api: FakeKubeAPI, tmp_path: Path
) -> None:
    """Kubernetes deletes the controller's Job while the cluster starts: the DaskCluster
    we created must be deleted before the process exits (no operator here to act)."""
    import os
    import signal
    import subprocess
    import sys

    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("POD_NAME", "POD_NAMESPACE", "KUBERNETES_SERVICE_HOST")
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(tmp_path)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while ("POST", DC) not in api.requests:
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, "the DaskCluster was never created"
            time.sleep(0.1)
        time.sleep(0.5)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=40)
        elapsed = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "UNREACHABLE" not in out
    assert elapsed < 30
    _assert_deleted(api, "gagebench-nightly-1")


def test_fake_api_unknown_controller_pod_says_how_to_name_it(
    api: FakeKubeAPI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _in_pod(tmp_path, monkeypatch, "not-this-pod")
    with pytest.raises(ClusterError, match=r"pod 'not-this-pod' was not found.*POD_NAME"):
        _backend(load_config(output=str(tmp_path))).live_context()
