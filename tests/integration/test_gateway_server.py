"""The gateway backend against a real dask-gateway server on 127.0.0.1.

The server (``dask-gateway-server``, with its Go proxy from the wheel) runs the
``UnsafeLocalBackend``: schedulers and workers are local processes, so the whole path -
cluster options, ``new_cluster``, scaling, the client through the gateway proxy and the
shutdown - is the real one; only the hub's Kubernetes backend is swapped for processes.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from gagebench.clusters import cluster_client
from gagebench.config import load_config
from gagebench.tuning import PLUGIN_NAME

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SERVER_CONFIG = """
import os, sys
from dask_gateway_server.options import Options, Integer, Float, Mapping
c.DaskGateway.address = "127.0.0.1:{api_port}"
c.Proxy.address = "127.0.0.1:{proxy_port}"
c.DaskGateway.backend_class = "dask_gateway_server.backends.local.UnsafeLocalBackend"
c.DaskGateway.authenticator_class = "dask_gateway_server.auth.SimpleAuthenticator"
c.LocalBackend.clusters_directory = {clusters!r}
bindir = os.path.dirname(sys.executable)
c.ClusterConfig.scheduler_cmd = [os.path.join(bindir, "dask"), "scheduler"]
c.ClusterConfig.worker_cmd = [os.path.join(bindir, "dask"), "worker"]
c.ClusterConfig.idle_timeout = 120

def handler(options):
    return {{
        "worker_cores": options.worker_cores,
        "worker_memory": f"{{options.worker_memory}}G",
        "environment": options.environment,
    }}

c.Backend.cluster_options = Options(
    Integer("worker_cores", 1, min=1, max=2),
    Float("worker_memory", 1, min=0.5, max=2),
    Mapping("environment", {{"HUB_DEFAULT": "kept"}}),
    handler=handler,
)
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def gateway_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A dask-gateway server (module scope: it takes a few seconds to start)."""
    folder = tmp_path_factory.mktemp("gateway")
    api_port, proxy_port = _free_port(), _free_port()
    config = folder / "config.py"
    config.write_text(
        SERVER_CONFIG.format(
            api_port=api_port, proxy_port=proxy_port, clusters=str(folder / "clusters")
        )
    )
    server_bin = Path(sys.executable).with_name("dask-gateway-server")
    log = (folder / "server.log").open("w")
    proc = subprocess.Popen(
        [str(server_bin), "-f", str(config)], cwd=folder, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{proxy_port}"
    deadline = time.monotonic() + 60
    # ready = the proxy routes the API (a listening port alone is not enough: 404 then)
    while True:
        try:
            with urllib.request.urlopen(f"{url}/api/health", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        assert proc.poll() is None, (folder / "server.log").read_text()
        assert time.monotonic() < deadline, "dask-gateway-server did not start"
        time.sleep(0.2)
    yield url
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log.close()


def _settings(url: str, **extra: object) -> dict[str, object]:
    return {
        "cluster.backend": "gateway",
        "cluster.gateway.address": url,
        "cluster.gateway.auth": "basic",
        "cluster.gateway.worker_cores": 1,
        "cluster.gateway.worker_memory": 1,
        "cluster.gateway.env": {"AWS_REGION": "us-west-2"},
        "cluster.gateway.n_workers": 1,
        "cluster.gateway.wait_timeout": 120,
        **{f"cluster.gateway.{k}": v for k, v in extra.items()},
    }


def _clusters(url: str) -> list[object]:
    from dask_gateway import Gateway

    from gagebench.clusters.gateway import close_gateway

    gateway = Gateway(address=url, auth="basic")
    try:
        return list(gateway.list_clusters())
    finally:
        close_gateway(gateway)


def test_gateway_backend_runs_tasks_with_mapped_options_and_shuts_down(
    gateway_url: str, tmp_path: Path
) -> None:
    cfg = load_config(output=str(tmp_path), overrides=_settings(gateway_url))
    with cluster_client(cfg) as client:
        workers = client.scheduler_info()["workers"]
        assert len(workers) == 1
        assert next(iter(workers.values()))["nthreads"] == 1
        env = client.submit(
            lambda: (os.environ.get("AWS_REGION"), os.environ.get("HUB_DEFAULT")), pure=False
        ).result()
        assert env == ("us-west-2", "kept")  # ours merged over the hub's default environment
        # the cluster was created for this run: its workers are tuned (gagebench.tuning)
        tuned = client.run(lambda dask_worker: PLUGIN_NAME in dask_worker.plugins)
        assert list(tuned.values()) == [True]
        assert len(_clusters(gateway_url)) == 1
    assert _clusters(gateway_url) == []


_HOLDER = textwrap.dedent(
    """
    import sys, time
    from gagebench.config import load_config
    from gagebench.clusters import cluster_client
    cfg = load_config(output=sys.argv[1], overrides={
        "cluster.backend": "gateway", "cluster.gateway.address": sys.argv[2],
        "cluster.gateway.auth": "basic", "cluster.gateway.n_workers": 1})
    with cluster_client(cfg) as client:
        print("READY", flush=True)
        time.sleep(120)
    """
)


def test_sigterm_shuts_the_gateway_cluster_down(gateway_url: str, tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(tmp_path), gateway_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("READY"), proc.communicate()[1]
        assert len(_clusters(gateway_url)) == 1
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
        elapsed = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert code == 128 + signal.SIGTERM
    assert elapsed < 30
    assert _clusters(gateway_url) == []
