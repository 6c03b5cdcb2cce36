"""Scenarios 1 and 2 of the rehearsal: the whole chart, as ``helm install`` would run it.

The chart is rendered by the real Helm engine (helm-python-sdk) with the kind workflow's
values pointed at this rehearsal and applied to the emulated API; the test kubelet runs
the Job's pod - our controller, ``gagebench run --config /etc/gagebench/run.yaml`` with the
chart's env, the ConfigMap written to a per-pod folder mounted where the chart mounts it
(the kubelet rewrites ``/etc/gagebench`` in the command to that folder); the controller
creates its DaskCluster through KubeCluster; the real operator reconciles it; the kubelet
runs scheduler and workers; results go to moto's S3 server.
"""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from kube_emulated.chartrun import (
    JOB,
    apply,
    assert_matches_evaluate,
    chart_values,
    controller_groups,
    controller_log,
    expected_in_process,
    job_pods,
    job_state,
    render_chart,
    results_frame,
    s3_service,
    synth_stores,
)
from kube_emulated.harness import S3, Kube, Operator

pytestmark = pytest.mark.kube_emulated

DASKCLUSTERS = "kubernetes.dask.org/v1/daskclusters"


def wait_job(kube: Kube, operator: Operator, timeout: float = 240) -> str:
    return kube.wait(
        lambda: job_state(kube), timeout, f"Job {JOB} to finish\n{kube.diagnostics(operator)}"
    )


def assert_nothing_left(kube: Kube) -> None:
    kube.wait(lambda: not kube.leftovers(), 60, f"no leftovers ({kube.leftovers()})")
    kube.wait(lambda: not kube.processes(), 30, "no pod processes")


def test_chart_job_runs_benchmark_on_operator_cluster(
    kube: Kube, operator: Operator, s3: S3
) -> None:
    t0 = time.monotonic()
    endpoint = s3_service(kube, s3)
    stores = synth_stores(s3, n_gages=12, start="2000-01-01", end="2009-12-31")
    values = chart_values(kube, endpoint, stores, run_id="rehearsal-1", batch_size=4)
    objects = render_chart(values, kube.namespace)
    assert {o["kind"] for o in objects} >= {"Job", "ConfigMap", "Role", "RoleBinding", "Secret"}
    apply(kube, objects)
    t_applied = time.monotonic()

    state = wait_job(kube, operator)
    log = controller_log(kube)
    assert state == "Complete", f"{log}\n{kube.diagnostics(operator)}"

    # The controller made its DaskCluster through the operator, owned by the chart's Job.
    job = kube.history("batch/v1/jobs", JOB)[0]
    versions = kube.history(DASKCLUSTERS, "gagebench-rehearsal-1")
    assert versions, f"no DaskCluster was created\n{log}"
    owners = versions[0]["metadata"].get("ownerReferences") or []
    assert [(o["kind"], o["uid"]) for o in owners] == [("Job", job["metadata"]["uid"])]
    assert any(v.get("status", {}).get("phase") == "Running" for v in versions)
    workers = [
        p
        for p in kube.emu.read(lambda api: list(api.objects))
        if p[0].plural == "pods" and "-default-worker-" in p[2]
    ]
    assert len(workers) >= 2, "the operator's worker pods never ran"

    # Results in S3, equal to gagebench.evaluate in this process; the cluster is gone.
    run_url = f"{values['config']['output']}/rehearsal-1"
    keys = s3.keys("results/rehearsal-1/")
    assert "results/rehearsal-1/manifest.json" in keys, keys
    got = results_frame(s3, run_url)
    ids = sorted(got["site_no"].unique())
    assert len(ids) == 12
    assert_matches_evaluate(got, expected_in_process(values, s3, ids))
    assert kube.get(DASKCLUSTERS, "gagebench-rehearsal-1") is None
    assert_nothing_left(kube)
    print(
        f"chart job: {t_applied - t0:.1f}s setup, {time.monotonic() - t_applied:.1f}s "
        "apply -> Job Complete -> nothing left"
    )


def start_long_run(kube: Kube, s3: S3, run_id: str, backoff_limit: int = 0) -> tuple[dict, str]:
    """Apply the chart for a run with enough batches to be interrupted; wait for its first
    finished batch in S3 (the run is in progress); return (values, parts prefix)."""
    endpoint = s3_service(kube, s3)
    stores = synth_stores(s3, n_gages=60, start="1985-01-01", end="2014-12-31")
    values = chart_values(kube, endpoint, stores, run_id=run_id, batch_size=2)
    values["dask"]["nWorkers"] = 1
    values["job"]["backoffLimit"] = backoff_limit
    apply(kube, render_chart(values, kube.namespace))
    parts = f"results/{run_id}/_parts/batch-"
    kube.wait(
        lambda: any(k.startswith(parts) for k in s3.keys(f"results/{run_id}/")),
        180,
        f"the first batch of {run_id} in S3\n{controller_log(kube)}",
    )
    assert f"results/{run_id}/manifest.json" not in s3.keys(f"results/{run_id}/"), (
        "the run finished before it could be interrupted: give it more batches"
    )
    return values, parts


def deletes_of(kube: Kube, name: str) -> list[tuple[str, str]]:
    return [r for r in kube.api_requests() if r[0] == "DELETE" and r[1].endswith(f"/{name}")]


def manifest_of(s3: S3, run_id: str) -> dict:
    body = s3.client().get_object(Bucket=s3.bucket, Key=f"results/{run_id}/manifest.json")
    return dict(json.loads(body["Body"].read()))


def parts_done(s3: S3, run_id: str) -> int:
    return len([k for k in s3.keys(f"results/{run_id}/") if "/_parts/batch-" in k])


def assert_resumed(kube: Kube, operator: Operator, s3: S3, run_id: str, done_before: int) -> dict:
    """The run's next attempt completes reusing the batches finished before (its manifest)."""
    assert wait_job(kube, operator) == "Complete", controller_log(kube)
    manifest = manifest_of(s3, run_id)
    assert manifest["batches"]["reused"] >= done_before > 0, manifest["batches"]
    assert manifest["batches"]["computed"] < manifest["batches"]["total"]
    assert f"resuming run {run_id}" in controller_log(kube)
    assert_nothing_left(kube)
    return manifest


def test_pod_evicted_mid_run_controller_deletes_cluster_and_retry_resumes(
    kube: Kube, operator: Operator, s3: S3
) -> None:
    """SIGTERM alone (the pod evicted, its Job kept): only the controller can delete the
    DaskCluster - its owner Job still exists, so no garbage collection applies."""
    t0 = time.monotonic()
    _, _ = start_long_run(kube, s3, "rehearsal-2", backoff_limit=1)
    cluster = "gagebench-rehearsal-2"
    first = job_pods(kube)
    assert len(first) == 1
    done_before = parts_done(s3, "rehearsal-2")

    kube.delete("v1/pods", first[0]["metadata"]["name"])  # graceful: SIGTERM, then SIGKILL
    kube.wait(
        lambda: kube.get(DASKCLUSTERS, cluster) is None,
        90,
        f"the controller to delete {cluster}\n{controller_log(kube)}",
    )
    assert deletes_of(kube, cluster), "the DaskCluster went away without the controller"
    t_evicted = time.monotonic()

    # The Job's retry (backoffLimit 1) is a new pod with the same run id: it resumes.
    manifest = assert_resumed(kube, operator, s3, "rehearsal-2", done_before)
    print(
        f"eviction: {t_evicted - t0:.1f}s to interrupt; the retry reused "
        f"{manifest['batches']['reused']}/{manifest['batches']['total']} batches in "
        f"{time.monotonic() - t_evicted:.1f}s"
    )


def test_job_deleted_mid_run_tears_down_and_second_job_resumes(
    kube: Kube, operator: Operator, s3: S3
) -> None:
    t0 = time.monotonic()
    values, _ = start_long_run(kube, s3, "rehearsal-3")
    cluster = "gagebench-rehearsal-3"
    assert kube.get(DASKCLUSTERS, cluster) is not None
    done_before = parts_done(s3, "rehearsal-3")

    # kubectl delete job (background propagation): the garbage collector deletes the
    # Job's pod (gracefully: the kubelet sends the controller SIGTERM) and the DaskCluster
    # the Job owns; the controller's own teardown races the collector.
    kube.delete("batch/v1/jobs", JOB, propagationPolicy="Background")
    kube.wait(lambda: not job_pods(kube), 90, f"the controller pod gone\n{controller_log(kube)}")
    log = controller_log(kube)
    tried = deletes_of(kube, cluster) or "looks like it has already been deleted" in log
    assert tried, f"the controller did not tear its cluster down on SIGTERM\n{log}"
    # Deletion is asynchronous (the operator's finalizer, the collector's cascade): the
    # DaskCluster may outlive the controller pod by a moment, never for good.
    kube.wait(
        lambda: kube.get(DASKCLUSTERS, cluster) is None,
        60,
        f"{cluster} to be deleted\n{log}",
    )
    assert "results/rehearsal-3/manifest.json" not in s3.keys("results/rehearsal-3/")
    assert_nothing_left(kube)
    t_deleted = time.monotonic()

    # A second Job with the same run id resumes: the finished batches are reused.
    apply(kube, [o for o in render_chart(values, kube.namespace) if o["kind"] == "Job"])
    manifest = assert_resumed(kube, operator, s3, "rehearsal-3", done_before)
    print(
        f"delete mid-run: {t_deleted - t0:.1f}s to interrupt and clean up; resumed "
        f"{manifest['batches']['reused']}/{manifest['batches']['total']} batches in "
        f"{time.monotonic() - t_deleted:.1f}s"
    )


def test_controller_sigkilled_cluster_is_garbage_collected_with_its_job(
    kube: Kube, operator: Operator, s3: S3
) -> None:
    t0 = time.monotonic()
    start_long_run(kube, s3, "rehearsal-4")
    cluster = "gagebench-rehearsal-4"
    # The controller dies without running any code (OOM kill, node loss).
    groups = controller_groups(kube)
    assert groups, "no running controller process"
    for group in groups:
        os.killpg(group, signal.SIGKILL)
    assert kube.wait(lambda: job_state(kube), 60, "the Job to fail") == "Failed"
    # Nobody deleted the DaskCluster: its scheduler and workers still run.
    assert kube.get(DASKCLUSTERS, cluster) is not None
    assert not deletes_of(kube, cluster)
    # Deleting the Job garbage-collects the DaskCluster through its ownerReference; the
    # operator's objects (owned by the DaskCluster) and their pods follow.
    kube.delete("batch/v1/jobs", JOB, propagationPolicy="Background")
    assert_nothing_left(kube)
    assert not deletes_of(kube, cluster)
    print(f"SIGKILL + GC: {time.monotonic() - t0:.1f}s")
