"""Scenario 4 of the rehearsal: adaptive scaling through the operator's DaskAutoscaler.

gagebench's kubernetes backend with ``adapt: {minimum: 1, maximum: 3}`` creates a
DaskAutoscaler; a backlog of tasks makes the scheduler ask for more workers; the real
operator's autoscaler timer reads the scheduler's adaptive target (through the emulated
cluster DNS) and scales the default DaskWorkerGroup; the kubelet runs the new workers.
"""

from __future__ import annotations

import json
import time

import pytest

from kube_emulated.harness import Kube, Operator
from kube_emulated.probe import kube_settings, run_probe

pytestmark = pytest.mark.kube_emulated


def test_adapt_creates_autoscaler_and_operator_scales_workers(
    kube: Kube, operator: Operator
) -> None:
    t0 = time.monotonic()
    settings = kube_settings(kube, adapt={"minimum": 1, "maximum": 3}, run_id="adaptive")
    proc = run_probe(kube, settings, n_tasks=24, seconds=1.0, timeout=240)
    assert proc.returncode == 0, proc.stderr[-4000:] + kube.diagnostics(operator)
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["sum"] == sum(i * i for i in range(24))
    name = "gagebench-adaptive"
    autoscaler = kube.history("kubernetes.dask.org/v1/daskautoscalers", name)
    assert autoscaler, "no DaskAutoscaler was created"
    assert autoscaler[0]["spec"] == {"cluster": name, "minimum": 1, "maximum": 3}
    replicas = [
        v["spec"]["worker"]["replicas"]
        for v in kube.history("kubernetes.dask.org/v1/daskworkergroups", f"{name}-default")
    ]
    assert replicas[0] == 1
    assert max(replicas) > 1, f"the operator never scaled up: {replicas}\n{operator.log()[-3000:]}"
    assert max(replicas) <= 3
    assert "Autoscaler updated" in operator.log()
    kube.wait(lambda: not kube.leftovers(), 30, f"no leftovers ({kube.leftovers()})")
    kube.wait(lambda: not kube.processes(), 30, "no pod processes")
    print(f"adapt: replicas {replicas[0]} -> {max(replicas)} in {time.monotonic() - t0:.1f}s")
