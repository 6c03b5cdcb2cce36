"""Helpers of the scenarios that drive gagebench's kubernetes backend from a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from kube_emulated.harness import Kube

SCRIPTS = Path(__file__).parent / "scripts"
IMAGE = "ghcr.io/example/gagebench:rehearsal"  # ignored by the kubelet (see README)
SMALL = {"requests": {"cpu": "100m", "memory": "256Mi"}}


def kube_settings(kube: Kube, run_id: str | None = None, **options: Any) -> dict[str, Any]:
    """Dotted run settings for the kubernetes backend in the rehearsal namespace."""
    base: dict[str, Any] = {
        "namespace": kube.namespace,
        "image": IMAGE,
        "owner_job": None,
        "n_workers": 1,
        "wait_timeout": 30,
        "idle_timeout": 0,
        "scheduler_resources": SMALL,
        "worker_resources": SMALL,
    }
    base.update(options)
    out: dict[str, Any] = {"cluster.backend": "kubernetes", "output": str(kube.workdir / "out")}
    out.update({f"cluster.kubernetes.{k}": v for k, v in base.items()})
    if run_id:
        out["run_id"] = run_id
    return out


def run_probe(
    kube: Kube,
    settings: dict[str, Any],
    n_tasks: int = 4,
    seconds: float = 0.0,
    timeout: float = 180,
) -> subprocess.CompletedProcess[str]:
    """Run scripts/cluster_probe.py (cluster_client -> compute -> close) as a user would."""
    return subprocess.run(
        [
            sys.executable,
            str(SCRIPTS / "cluster_probe.py"),
            json.dumps(settings),
            str(n_tasks),
            str(seconds),
        ],
        env=kube.env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
