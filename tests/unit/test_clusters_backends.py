"""The address, gateway and auto backends, ``gagebench cluster-spec`` and the examples."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import dask.config
import pytest
import yaml
from dask_gateway.options import Float, Integer, Mapping, Options, String
from distributed import LocalCluster

import gagebench.clusters.kubernetes as kube
from gagebench.cli import main
from gagebench.clusters import cluster_client, get_backend
from gagebench.clusters.address import AddressBackend
from gagebench.clusters.auto import choose
from gagebench.clusters.gateway import GatewayBackend, map_options
from gagebench.config import load_config
from gagebench.errors import ClusterError, ConfigError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in ("DASK_SCHEDULER_ADDRESS", "KUBERNETES_SERVICE_HOST", "POD_NAMESPACE", "POD_NAME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(kube, "SERVICEACCOUNT_DIR", tmp_path / "no-sa")


def _cfg(tmp_path: Path, **overrides: object):
    return load_config(output=str(tmp_path), overrides=overrides)


# -- address -------------------------------------------------------------------------------
def test_address_backend_connects_and_leaves_the_scheduler_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_env: None
) -> None:
    with LocalCluster(n_workers=1, processes=False, dashboard_address=":0") as cluster:
        monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", cluster.scheduler_address)
        cfg = _cfg(tmp_path, **{"cluster.backend": "address"})
        with cluster_client(cfg) as client:
            assert client.scheduler is not None
            assert client.scheduler.address == cluster.scheduler_address
            assert client.submit(pow, 2, 10).result() == 1024
        assert client.status == "closed"
        # the scheduler is not ours: it must still serve a new client
        assert cluster.scheduler.status.name == "running"
        setting = {"cluster.backend": "address", "cluster.address.address": "tcp://x:8786"}
        cfg = _cfg(tmp_path, **setting)
        assert AddressBackend(cfg).address == "tcp://x:8786"  # the setting wins over the env


def test_address_backend_errors(tmp_path: Path, clean_env: None) -> None:
    with pytest.raises(ConfigError, match=r"DASK_SCHEDULER_ADDRESS is empty"):
        AddressBackend(_cfg(tmp_path)).address  # noqa: B018
    cfg = _cfg(
        tmp_path,
        **{"cluster.address.address": "tcp://127.0.0.1:9", "cluster.address.timeout": 1},
    )
    backend = get_backend(cfg, "address")
    with pytest.raises(ClusterError, match=r"cannot reach the Dask scheduler at tcp://127.0.0.1:9"):
        backend.client().__enter__()
    with pytest.raises(ConfigError, match=r"cluster\.address\.timeout"):
        AddressBackend(_cfg(tmp_path, **{"cluster.address.timeout": 0}))


# -- gateway -------------------------------------------------------------------------------
def _server_options() -> Options:
    """Cluster options as a typical Pangeo/daskhub gateway server declares them."""
    return Options(
        Integer("worker_cores", default=1, min=1, max=8),
        Float("worker_memory", default=2, min=1, max=32),
        String("image", default="pangeo/pangeo-notebook:latest"),
        Mapping("environment", default={"EXISTING": "1"}),
    )


def test_gateway_options_map_onto_what_the_server_offers() -> None:
    offered = _server_options()
    values = map_options(
        {
            "image": "ghcr.io/org/gagebench:1",
            "env": {"AWS_REGION": "us-west-2"},
            "worker_cores": 2,
            "worker_memory": 8,
            "cluster_options": {},
        },
        dict(offered.items()),
    )
    assert values == {
        "image": "ghcr.io/org/gagebench:1",
        "environment": {"EXISTING": "1", "AWS_REGION": "us-west-2"},
        "worker_cores": 2,
        "worker_memory": 8,
    }
    for key, value in values.items():  # the real Options object accepts (validates) them
        offered[key] = value
    assert offered.worker_cores == 2


def test_gateway_unset_or_unoffered_settings_keep_the_hub_defaults(
    caplog: pytest.LogCaptureFixture,
) -> None:
    offered = dict(Options(Integer("worker_cores", default=1)).items())
    assert map_options({"image": None, "env": {}, "worker_cores": None}, offered) == {}
    with caplog.at_level("WARNING"):
        assert map_options({"image": "img:1"}, offered) == {}
    assert "offers no image option" in caplog.text
    with pytest.raises(ConfigError, match=r"offers no option\(s\) profile"):
        map_options({"cluster_options": {"profile": "large"}}, offered)


def test_gateway_without_an_address_says_where_to_set_it(tmp_path: Path) -> None:
    with dask.config.set({"gateway.address": None}):
        backend = get_backend(_cfg(tmp_path), "gateway")
        assert isinstance(backend, GatewayBackend)
        with pytest.raises(ClusterError, match=r"cluster\.gateway\.address or the DASK_GATEWAY"):
            backend.gateway()


def test_gateway_settings_are_validated(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cluster\.gateway\.adapt"):
        GatewayBackend(_cfg(tmp_path, **{"cluster.gateway.adapt": {"minimum": 1}}))
    with pytest.raises(ConfigError, match=r"unknown setting.*cluster\.gateway\.cores"):
        GatewayBackend(_cfg(tmp_path, **{"cluster.gateway.cores": 1}))


# -- auto ----------------------------------------------------------------------------------
def test_auto_order_address_then_gateway_then_local(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_env: None
) -> None:
    cfg = _cfg(tmp_path, **{"cluster.backend": "auto"})
    with dask.config.set({"gateway.address": None}):
        assert choose(cfg) == "local"
        with_gw = _cfg(tmp_path, **{"cluster.gateway.address": "http://127.0.0.1:8000"})
        assert choose(with_gw) == "gateway"
        monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", "tcp://10.0.0.1:8786")
        assert choose(with_gw) == "address"
        monkeypatch.delenv("DASK_SCHEDULER_ADDRESS")
    with dask.config.set({"gateway.address": "http://hub:8000/services/dask-gateway"}):
        assert choose(cfg) == "gateway"  # as DASK_GATEWAY__ADDRESS on a hub


def test_auto_runs_on_the_local_backend_here(
    tmp_path: Path, clean_env: None, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = _cfg(tmp_path, **{"cluster.backend": "auto", "cluster.local.n_workers": 1})
    with (
        caplog.at_level("INFO", logger="gagebench.clusters.auto"),
        dask.config.set({"gateway.address": None}),
        cluster_client(cfg) as client,
    ):
        assert len(client.scheduler_info()["workers"]) == 1
        assert client.submit(len, "abc").result() == 3
    chosen = [r.getMessage() for r in caplog.records if "cluster backend auto" in r.getMessage()]
    assert chosen == [
        "cluster backend auto -> local (no scheduler address, dask-gateway or Kubernetes pod "
        "detected)"
    ]


# -- cluster-spec and examples ---------------------------------------------------------------
def test_cluster_spec_prints_the_manifest_without_a_cluster(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-kubeconfig"))  # nothing to contact
    monkeypatch.setenv("GAGEBENCH_JOB_NAME", "gagebench-nightly")
    monkeypatch.setenv("GAGEBENCH_JOB_UID", "uid-123")
    code = main(
        ["cluster-spec", "--config", str(EXAMPLES / "kubernetes.yaml"), "--set", "run_id=r1"]
    )
    assert code == 0
    manifest = yaml.safe_load(capsys.readouterr().out)
    assert manifest["kind"] == "DaskCluster"
    assert manifest["metadata"]["name"] == "gagebench-r1"
    assert manifest["metadata"]["namespace"] == "hydro"
    assert manifest["metadata"]["ownerReferences"][0]["uid"] == "uid-123"
    worker = manifest["spec"]["worker"]["spec"]["containers"][0]
    assert worker["image"] == "ghcr.io/my-org/gagebench:0.1.0"
    assert {
        "name": "AWS_ACCESS_KEY_ID",
        "valueFrom": {"secretKeyRef": {"name": "s3-credentials", "key": "access-key-id"}},
    } in worker["env"]


def test_cluster_spec_refuses_to_guess_the_namespace(tmp_path: Path, clean_env: None) -> None:
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "gagebench.cli",
            "cluster-spec",
            "--set",
            f"output={tmp_path}",
            "--set",
            "cluster.kubernetes.image=img:1",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert run.returncode == 2
    assert "cluster.kubernetes.namespace is not set" in run.stderr
    assert "'default'" in run.stderr
    assert run.stdout == ""


def test_cluster_spec_masks_env_secrets_and_stays_valid_yaml(tmp_path: Path) -> None:
    """A token in ``cluster.kubernetes.env`` or a password in the gateway address: the
    printed manifest holds neither, and still parses (the stream's bare ``***`` in place
    of a value is a YAML alias: ``kubectl apply`` and ``yaml.safe_load`` refused it)."""
    import os

    run_file = tmp_path / "run.yaml"
    run_file.write_text(
        yaml.safe_dump(
            {
                "gagebench": {
                    "output": str(tmp_path / "out"),
                    "cluster": {
                        "backend": "kubernetes",
                        "kubernetes": {
                            "image": "img:1",
                            "namespace": "hydro",
                            "env": {"HUB_API_TOKEN": "tok-5b0e2d91c4", "PLAIN": "visible"},
                        },
                    },
                }
            }
        )
    )
    env = {**os.environ, "AWS_SESSION_TOKEN": "sess-81f0a3c2e9"}
    done = subprocess.run(
        [sys.executable, "-m", "gagebench.cli", "cluster-spec", "--config", str(run_file)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "tok-5b0e2d91c4" not in done.stdout + done.stderr
    manifest = yaml.safe_load(done.stdout)
    worker = manifest["spec"]["worker"]["spec"]["containers"][0]
    values = {item["name"]: item.get("value") for item in worker["env"]}
    assert values["HUB_API_TOKEN"] == "***"
    assert values["PLAIN"] == "visible"


@pytest.mark.parametrize("name", ["local", "kubernetes", "gateway", "slurm", "address"])
def test_examples_load_and_their_backend_accepts_them(name: str) -> None:
    cfg = load_config(EXAMPLES / f"{name}.yaml")
    cfg.require_stores()
    assert cfg.cluster.backend == name
    backend = get_backend(cfg)
    assert backend.name == name


@pytest.mark.parametrize(
    ("backend", "module", "extra"),
    [("kubernetes", "dask_kubernetes", "kubernetes"), ("gateway", "dask_gateway", "gateway")],
)
def test_a_missing_extra_names_the_pip_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: str, module: str, extra: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # what `import` sees when not installed

    def use() -> None:
        chosen = get_backend(_cfg(tmp_path), backend)  # kubernetes checks on construction
        if isinstance(chosen, GatewayBackend):
            chosen.gateway()  # gateway when it is about to connect

    with pytest.raises(ClusterError, match=rf"pip install 'gagebench\[{extra}\]'"):
        use()


def test_import_gagebench_clusters_stays_light() -> None:
    code = (
        "import sys, gagebench.clusters, gagebench.clusters.kubernetes, "
        "gagebench.clusters.gateway, gagebench.clusters.auto; "
        "print(sorted(m for m in ('dask_kubernetes', 'kr8s', 'dask_gateway', 'kubernetes') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
