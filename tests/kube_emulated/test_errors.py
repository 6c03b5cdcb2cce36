"""Scenario 3 of the rehearsal: what goes wrong on a real cluster, against the emulator.

Each case runs gagebench's kubernetes backend (scripts/cluster_probe.py, the same
``cluster_client`` path as ``gagebench run``) and checks the one-line message the user
gets (exit status 2) and that nothing is left behind: no DaskCluster, no pods, no
processes.
"""

from __future__ import annotations

import subprocess
import time

import pytest

from kube_emulated.harness import Kube, Operator
from kube_emulated.probe import kube_settings, run_probe

pytestmark = pytest.mark.kube_emulated


def error_lines(proc: subprocess.CompletedProcess[str]) -> str:
    """The lines the user reads: gagebench's ERROR log lines (httpx request logs dropped)."""
    return "\n".join(line for line in proc.stderr.splitlines() if line.startswith("ERROR"))


def assert_clean(kube: Kube, op: Operator | None = None) -> None:
    kube.wait(lambda: not kube.leftovers(), 30, f"no leftovers ({kube.leftovers()})")
    kube.wait(lambda: not kube.processes(), 30, "no pod processes")


def test_crd_absent_says_install_the_operator(kube: Kube) -> None:
    t0 = time.monotonic()
    proc = run_probe(kube, kube_settings(kube))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    msg = error_lines(proc)
    assert "the DaskCluster CRD is not installed here" in msg, msg
    assert "operator/" in msg, msg
    assert_clean(kube)
    print(f"crd absent: {time.monotonic() - t0:.1f}s")


def test_operator_not_running_is_named_and_cluster_deleted(kube: Kube, dask_crds: list) -> None:
    t0 = time.monotonic()
    proc = run_probe(kube, kube_settings(kube, wait_timeout=6))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    msg = error_lines(proc)
    assert "got no status from the dask-kubernetes operator" in msg, msg
    assert "operator is not running" in msg, msg
    # The DaskCluster was created, then deleted by the controller on the way out.
    created = [r for r in kube.api_requests() if r[0] == "POST" and r[1].endswith("/daskclusters")]
    assert created, "the controller never tried to create its DaskCluster"
    assert_clean(kube)
    print(f"operator absent: {time.monotonic() - t0:.1f}s")


def test_workers_never_scheduled_names_the_reason(kube: Kube, operator: Operator) -> None:
    t0 = time.monotonic()
    settings = kube_settings(
        kube, wait_timeout=12, worker_resources={"requests": {"cpu": "64", "memory": "1Gi"}}
    )
    proc = run_probe(kube, settings)
    assert proc.returncode == 2, proc.stdout + proc.stderr + kube.diagnostics(operator)
    # The backend sees the unschedulable worker while the cluster starts (before the
    # wait-for-workers timeout) and names the scheduler's reason.
    msg = error_lines(proc)
    assert "cannot be scheduled" in msg, msg
    assert "Insufficient cpu" in msg, msg
    assert_clean(kube, operator)
    print(f"workers unschedulable: {time.monotonic() - t0:.1f}s")


def test_image_pull_failure_names_the_image(kube: Kube, operator: Operator) -> None:
    t0 = time.monotonic()
    image = "registry.invalid/gagebench:missing"
    proc = run_probe(kube, kube_settings(kube, image=image, wait_timeout=20))
    assert proc.returncode == 2, proc.stdout + proc.stderr + kube.diagnostics(operator)
    msg = error_lines(proc)
    assert f"cannot pull image '{image}'" in msg, msg
    assert "ErrImagePull" in msg, msg
    assert_clean(kube, operator)
    print(f"image pull: {time.monotonic() - t0:.1f}s")
