"""Scenario helpers: synthetic stores in moto S3, the chart rendered by the real Helm engine
(helm-python-sdk) and its manifests applied to the emulated API, as ``helm install`` would.

The chart's S3 endpoint is a Service of the emulated cluster (``s3.<namespace>.svc``)
pointing at moto's port, so pods reach moto through the emulated cluster DNS, as the
kind workflow's pods reach its in-cluster S3 server.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from kube_emulated.emulator import Obj
from kube_emulated.harness import S3, Kube
from kube_emulated.kubelet import group_alive

ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = ROOT / "helm" / "gagebench"
RELEASE = "bench"
JOB = f"{RELEASE}-gagebench-1"  # <fullname>-<revision>
KIND_VALUES = CHART_DIR / "ci" / "kind-values.yaml"


def s3_service(kube: Kube, s3: S3) -> str:
    """A Service ``s3`` in the rehearsal namespace for moto's port; its in-cluster URL."""
    port = int(s3.endpoint.rsplit(":", 1)[1])
    kube.create(
        "v1/services",
        {"metadata": {"name": "s3"}, "spec": {"ports": [{"name": "http", "port": port}]}},
    )
    return f"http://s3.{kube.namespace}.svc.cluster.local:{port}"


def synth_stores(s3: S3, n_gages: int, start: str, end: str, seed: int = 3) -> dict[str, Any]:
    """Synthetic observed + nwm daily stores in moto S3 (gagebench.synth); config keys."""
    from gagebench.synth import synthesize

    stores = synthesize(
        f"s3://{s3.bucket}/synth",
        n_gages=n_gages,
        start=start,
        end=end,
        models=("nwm",),
        frequency="daily",
        seed=seed,
        storage_options=s3.storage_options(),
    )
    return dict(stores.to_config_dict())


def chart_values(
    kube: Kube, endpoint: str, stores: dict[str, Any], run_id: str, **config: Any
) -> dict[str, Any]:
    """The kind workflow's values (helm/gagebench/ci/kind-values.yaml), pointed at the
    rehearsal's namespace, S3 endpoint and stores."""
    values = yaml.safe_load(KIND_VALUES.read_text())
    values["image"] = {
        "repository": "localhost/gagebench",
        "tag": "rehearsal",
        "pullPolicy": "Never",
    }
    values["s3"]["endpointUrl"] = endpoint
    values["dask"].update(
        nWorkers=2,
        waitTimeout=120,
        schedulerResources={"requests": {"cpu": "100m", "memory": "256Mi"}},
        workerResources={"requests": {"cpu": "200m", "memory": "512Mi"}},
    )
    cfg = values["config"]
    cfg.update(run_id=run_id, output=f"s3://{stores_bucket(stores)}/results", report=False)
    cfg["observed"] = copy.deepcopy(stores["observed"])
    cfg["models"] = copy.deepcopy(stores["models"])
    for store in [cfg["observed"], *cfg["models"].values()]:
        store.pop("storage_options", None)  # the chart's S3 env (endpoint, keys) is what pods use
    cfg["gage_limit"] = stores_gages(stores)
    cfg.update(config)
    return values


def stores_gages(stores: dict[str, Any]) -> int:
    """How many gages the synthetic stores were made for (the run's gage_limit)."""
    return int(stores["gage_limit"])


def stores_bucket(stores: dict[str, Any]) -> str:
    return str(stores["observed"]["url"]).split("/")[2]


def render_chart(values: dict[str, Any], namespace: str) -> list[Obj]:
    """The chart's objects, rendered by the real Helm engine; test hooks left out."""
    import helm_python as helm

    with helm.Chart.load(CHART_DIR) as chart:
        rendered = chart.render(values, name=RELEASE, namespace=namespace, is_install=True)
    objects = []
    for path, text in sorted(rendered.items()):
        if path.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc and "helm.sh/hook" not in (doc.get("metadata", {}).get("annotations") or {}):
                objects.append(doc)
    return objects


APPLY_ORDER = ["ServiceAccount", "Secret", "ConfigMap", "Role", "RoleBinding", "Job", "CronJob"]


def apply(kube: Kube, objects: list[Obj]) -> list[Obj]:
    """Create the objects in the emulated API in install order (like ``helm install``)."""

    def resource_of(obj: Obj) -> str:
        group_version, kind = obj["apiVersion"], obj["kind"]

        def find(api: Any) -> str:
            for res in api.resources:
                gv = f"{res.group}/{res.version}" if res.group else res.version
                if gv == group_version and api.resources[res].kind == kind:
                    return f"{gv}/{res.plural}"
            raise LookupError(f"the emulated API does not serve {group_version} {kind}")

        return str(kube.emu.read(find))

    order = {k: i for i, k in enumerate(APPLY_ORDER)}
    created = []
    for obj in sorted(objects, key=lambda o: order.get(o["kind"], len(order))):
        ns = obj["metadata"].get("namespace", kube.namespace)
        created.append(kube.create(resource_of(obj), obj, ns))
    return created


def job_state(kube: Kube, name: str = JOB) -> str | None:
    """``Complete``/``Failed`` once the Job finished, else None."""
    job = kube.get("batch/v1/jobs", name)
    for cond in (job or {}).get("status", {}).get("conditions", []):
        if cond.get("status") == "True" and cond.get("type") in ("Complete", "Failed"):
            return str(cond["type"])
    return None


def job_pods(kube: Kube, name: str = JOB) -> list[Obj]:
    return kube.list("v1/pods", labels=f"job-name={name}")


def controller_log(kube: Kube, name: str = JOB) -> str:
    """Output of every controller pod the Job ever ran (the kubelet keeps the files)."""
    root = kube.kubelet.workdir / "pods"
    return "\n".join(
        f.read_text(errors="replace") for f in sorted(root.glob(f"*_{name}-*/gagebench.log"))
    )


def controller_groups(kube: Kube, name: str = JOB) -> list[int]:
    """Process groups of the Job's running controller containers."""

    def read(api: Any) -> list[int]:
        return [
            c.proc.pid
            for (ns, pod), rp in kube.kubelet.pods.items()
            if pod.startswith(f"{name}-")
            for c in rp.containers.values()
            if c.proc is not None and group_alive(c.proc.pid)
        ]

    return list(kube.emu.read(read))


def results_frame(s3: S3, run_url: str) -> pd.DataFrame:
    import io

    key = run_url.split("/", 3)[3] + "/results.parquet"
    body = s3.client().get_object(Bucket=s3.bucket, Key=key)["Body"].read()
    return pd.read_parquet(io.BytesIO(body))


def expected_in_process(values: dict[str, Any], s3: S3, gage_ids: list[str]) -> pd.DataFrame:
    """``gagebench.evaluate`` in this process on the same stores (present gages only)."""
    from expected_results import evaluate_in_process
    from gagebench.config import load_config

    cfg_values = copy.deepcopy(values["config"])
    cfg_values["cluster"] = {"backend": "local"}
    cfg_values["storage_options"] = s3.storage_options()
    return evaluate_in_process(load_config(overrides=cfg_values), gage_ids)


def assert_matches_evaluate(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    expected = expected.set_index(["model", "site_no"]).sort_index()
    evaluated = got.set_index(["model", "site_no"]).loc[expected.index]
    cols = [c for c in expected.columns if c not in ("first_day", "last_day", "status", "note")]
    np.testing.assert_allclose(
        evaluated[cols].to_numpy(float), expected[cols].to_numpy(float), rtol=1e-12
    )
    assert (evaluated["status"] == expected["status"]).all()
