"""Phase 1 of the rehearsal: KubeCluster (make_cluster_spec defaults; the subclass gagebench
uses, see scripts/kubecluster_roundtrip.py) against the emulated API and the real
dask-kubernetes operator (kopf), with scheduler and workers run by the test kubelet."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kube_emulated.harness import Kube, Operator

pytestmark = pytest.mark.kube_emulated

SCRIPTS = Path(__file__).parent / "scripts"


def test_kubecluster_create_compute_delete_with_real_operator(
    kube: Kube, operator: Operator
) -> None:
    name = "roundtrip"
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, str(SCRIPTS / "kubecluster_roundtrip.py"), name, kube.namespace, "2"],
        env=kube.env(),
        capture_output=True,
        text=True,
        timeout=180,
    )
    elapsed = time.monotonic() - t0
    assert proc.returncode == 0, f"{proc.stdout}\n{proc.stderr}\n{kube.diagnostics(operator)}"
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["answer"] == 42
    # The workers that answered belong to this cluster (not a leftover scheduler's).
    assert len(report["worker_names"]) == 2
    assert all(n.startswith(f"{name}-default-worker-") for n in report["worker_names"])
    assert report["scheduler"].startswith(f"tcp://{name}-scheduler.{kube.namespace}")
    # The operator made the cluster's parts, owned by the DaskCluster (so GC applies).
    history = kube.history("kubernetes.dask.org/v1/daskclusters", name)
    assert any(v.get("status", {}).get("phase") == "Running" for v in history)
    # Closing deleted the DaskCluster; GC took its Deployments, Service and pods with it.
    kube.wait(lambda: not kube.leftovers(), 30, f"no leftovers, have {kube.leftovers()}")
    kube.wait(lambda: not kube.processes(), 30, "all pod processes gone")
    print(f"roundtrip {elapsed:.1f}s: startup {report['startup_s']}s, close {report['close_s']}s")
