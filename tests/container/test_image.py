"""The runtime image: built with podman on a debootstrap base, then run the way the chart
and the dask-kubernetes operator run it (non-root, read-only root filesystem, /tmp
writable, commands given by the caller, no entrypoint)."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Mapping
from pathlib import Path

import pytest
import yaml
from containerkit import S3, Image, podman, podman_run

from gagebench._version import __version__

# The first test also builds the image (minutes from scratch): a longer timeout.
pytestmark = [pytest.mark.container, pytest.mark.slow, pytest.mark.timeout(1800)]

#: generous ceiling on the image size: fails when a change bloats the image
MAX_IMAGE_BYTES = 1_700_000_000


def test_image_metadata(image: Image) -> None:
    (info,) = json.loads(podman("image", "inspect", image.name).stdout)
    config = info["Config"]
    assert config.get("User") == "10001:10001"
    assert not config.get("Entrypoint"), "an entrypoint would hijack the operator's commands"
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["HOME"] == "/tmp"
    assert env["PATH"].startswith("/opt/gagebench/bin:")
    labels = config["Labels"]
    assert labels["org.opencontainers.image.title"] == "gagebench"
    assert labels["org.opencontainers.image.version"] == __version__
    assert labels["org.opencontainers.image.revision"] == "container-test"
    assert labels["org.opencontainers.image.licenses"] == "MIT"
    assert image.size_bytes < MAX_IMAGE_BYTES, f"image is {image.size_bytes / 1e6:.0f} MB"


def test_runs_as_non_root_with_read_only_root(image: Image) -> None:
    out = podman_run(
        image.name, "sh", "-c", "id -u; id -g; echo $HOME; touch /opt/x 2>&1 || echo read-only"
    ).stdout.split()
    assert out[:3] == ["10001", "10001", "/tmp"]
    assert out[-1] == "read-only"


def test_versions_match_the_package(image: Image) -> None:
    out = podman_run(image.name, "gagebench", "--version").stdout
    assert out.strip() == f"gagebench {__version__}"
    out = podman_run(image.name, "python3", "-c", "import dask_kubernetes, distributed, kr8s")
    assert out.returncode == 0


def test_dask_scheduler_and_worker_start(image: Image) -> None:
    """`dask-scheduler` / `dask-worker` (the commands the operator gives the pods) start,
    a worker joins the scheduler, and a task runs on it."""
    script = textwrap.dedent(
        """
        set -e
        dask-scheduler --version
        dask-worker --version
        dask-scheduler --host 127.0.0.1 --port 0 --no-dashboard \
            --scheduler-file /tmp/scheduler.json > /tmp/scheduler.log 2>&1 &
        for i in $(seq 1 60); do [ -s /tmp/scheduler.json ] && break; sleep 1; done
        dask-worker --scheduler-file /tmp/scheduler.json --nthreads 1 --no-dashboard \
            > /tmp/worker.log 2>&1 &
        python3 - <<'PY'
        from distributed import Client
        with Client(scheduler_file="/tmp/scheduler.json", timeout=60) as client:
            client.wait_for_workers(1, timeout=60)
            print("sum", client.submit(sum, [1, 2, 3]).result())
        PY
        """
    )
    result = podman_run(image.name, "sh", "-c", script, timeout=300, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "sum 6" in result.stdout


def _have_run_and_synth() -> bool:
    from gagebench.cli import build_parser

    try:
        import gagebench.synth  # noqa: F401
    except ImportError:
        return False
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return "run" in sub.choices  # type: ignore[operator]


@pytest.mark.skipif(
    not _have_run_and_synth(), reason="`gagebench run` / gagebench.synth not in this checkout yet"
)
def test_gagebench_run_writes_results_to_s3(image: Image, s3: S3, tmp_path: Path) -> None:
    """`gagebench run --config` in the container (as the chart runs it, local cluster)
    against the host's moto S3 server; the results land in S3."""
    import fsspec
    import pandas as pd

    from gagebench.synth import synthesize

    opts = {"endpoint_url": s3.endpoint}
    stores = synthesize(
        f"s3://{s3.bucket}/synth", n_gages=12, start="2005-01-01", end="2009-12-31",
        models=("nwm",), storage_options=opts,
    )  # fmt: skip
    config = {
        "gagebench": {
            **stores.to_config_dict(),
            "run_id": "container-smoke",
            "output": f"s3://{s3.bucket}/results",
            "batch_size": 4,
            "report": False,
            "progress": False,
            "log_format": "json",
            "cluster": {"backend": "local", "local": {"n_workers": 1, "threads_per_worker": 1}},
        }
    }
    run_yaml = tmp_path / "run.yaml"
    run_yaml.write_text(yaml.safe_dump(config))
    run_yaml.chmod(0o644)
    result = podman_run(
        "--volume", f"{run_yaml}:/etc/gagebench/run.yaml:ro,Z",
        "--env", f"AWS_ENDPOINT_URL={s3.endpoint}",
        "--env", "AWS_ACCESS_KEY_ID=testing", "--env", "AWS_SECRET_ACCESS_KEY=testing",
        "--env", "AWS_DEFAULT_REGION=us-east-1", "--env", "AWS_EC2_METADATA_DISABLED=true",
        image.name, "gagebench", "run", "--config", "/etc/gagebench/run.yaml",
        timeout=900, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]

    fs, root = fsspec.core.url_to_fs(f"s3://{s3.bucket}/results/container-smoke", **opts)
    manifest = json.loads(fs.cat(f"{root}/manifest.json"))
    assert manifest["run_id"] == "container-smoke"
    with fs.open(f"{root}/results.parquet") as f:
        table = pd.read_parquet(f)
    assert len(table) == 12
    assert set(table["model"]) == {"nwm"}
    assert (table["status"] == "ok").sum() >= 8
    assert fs.exists(f"{root}/nwm/standard_suite.csv")


def _helm_test_pod(values: Mapping[str, object]) -> tuple[list[str], str]:
    """The chart's `helm test` pod command and the run.yaml it mounts (real Helm engine)."""
    helm = pytest.importorskip("helm_python")
    root = Path(__file__).resolve().parents[2]
    with helm.Chart.load(root / "helm" / "gagebench") as chart:
        rendered = chart.render(values, name="smoke", namespace="ci")
    pod = yaml.safe_load(rendered["gagebench/templates/tests/test-manifest.yaml"])
    configmap = yaml.safe_load(rendered["gagebench/templates/configmap.yaml"])
    return pod["spec"]["containers"][0]["command"], configmap["data"]["run.yaml"]


@pytest.mark.parametrize("complete", [True, False])
def test_helm_test_hook_checks_the_manifest_in_s3(
    image: Image, s3: S3, tmp_path: Path, complete: bool
) -> None:
    """The chart's `helm test` script, run in the image against S3: passes when the run's
    manifest.json exists, fails with a message when it does not."""
    import boto3

    run_id = f"hook-{'done' if complete else 'pending'}"
    if complete:
        boto3.client("s3", endpoint_url=s3.endpoint).put_object(
            Bucket=s3.bucket, Key=f"hook/{run_id}/manifest.json", Body=b"{}"
        )
    values = {
        "config": {"run_id": run_id, "output": f"s3://{s3.bucket}/hook"},
        "s3": {"endpointUrl": s3.endpoint},
    }
    command, run_yaml = _helm_test_pod(values)
    path = tmp_path / "run.yaml"
    path.write_text(run_yaml)
    path.chmod(0o644)
    result = podman_run(
        "--volume", f"{path}:/etc/gagebench/run.yaml:ro,Z",
        "--env", f"AWS_ENDPOINT_URL={s3.endpoint}",
        "--env", "AWS_ACCESS_KEY_ID=testing", "--env", "AWS_SECRET_ACCESS_KEY=testing",
        "--env", "AWS_DEFAULT_REGION=us-east-1", "--env", "AWS_EC2_METADATA_DISABLED=true",
        image.name, *command, timeout=300, check=False,
    )  # fmt: skip
    if complete:
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"hook/{run_id}/manifest.json" in result.stdout
    else:
        assert result.returncode == 1
        assert "the run has not finished" in result.stderr
