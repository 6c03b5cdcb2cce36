"""The local backend on real worker processes: results, teardown, SIGTERM and Ctrl-C.

Each test starts a real LocalCluster (worker processes), so they are a few seconds each.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from gagebench.clusters import BACKENDS, backend_class, cluster_client, sigterm_raises
from gagebench.clusters.base import Terminated
from gagebench.clusters.local import LocalBackend
from gagebench.config import load_config
from gagebench.errors import ClusterError, ConfigError


def _cfg(tmp_path: Path, **overrides: object):
    base = {"cluster.backend": "local", "cluster.local.n_workers": 2}
    base.update(overrides)
    return load_config(output=str(tmp_path), overrides=base)


def _children(pid: int | None = None) -> set[int]:
    """Descendant processes, except multiprocessing's resource tracker (a per-parent helper
    that lives as long as its parent and is not part of the cluster)."""
    found = set()
    for proc in psutil.Process(pid).children(recursive=True):
        try:
            if "resource_tracker" not in " ".join(proc.cmdline()):
                found.add(proc.pid)
        except psutil.NoSuchProcess:
            continue
    return found


def _wait_gone(pids: set[int], timeout: float = 20.0) -> set[int]:
    deadline = time.monotonic() + timeout
    alive = set(pids)
    while alive and time.monotonic() < deadline:
        alive = {p for p in alive if psutil.pid_exists(p) and _not_zombie(p)}
        time.sleep(0.1)
    return alive


def _not_zombie(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_registry_names_every_backend() -> None:
    assert set(BACKENDS) == {"local", "kubernetes", "gateway", "slurm", "address", "auto"}
    assert backend_class("local") is LocalBackend


def test_unknown_backend_fails_loudly() -> None:
    with pytest.raises(ConfigError, match=r"unknown backend 'nope'.*address, auto"):
        backend_class("nope")


def test_broken_backend_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(BACKENDS, "broken", "gagebench.clusters.no_such_module:X")
    with pytest.raises(ClusterError, match="cluster backend 'broken' cannot be imported"):
        backend_class("broken")
    monkeypatch.setitem(BACKENDS, "notabackend", "gagebench.clusters.base:Terminated")
    with pytest.raises(ClusterError, match="is not a ClusterBackend"):
        backend_class("notabackend")


def test_local_settings_are_validated(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"gagebench\.cluster\.local\.n_wrokers"):
        LocalBackend(_cfg(tmp_path, **{"cluster.local.n_wrokers": 2}))
    with pytest.raises(ConfigError, match=r"cluster\.local\.n_workers: expected a positive"):
        LocalBackend(_cfg(tmp_path, **{"cluster.local.n_workers": 0}))
    with pytest.raises(ConfigError, match=r"cluster\.local\.threads_per_worker"):
        LocalBackend(_cfg(tmp_path, **{"cluster.local.threads_per_worker": "two"}))


def test_local_runs_tasks_on_worker_processes_and_tears_down(tmp_path: Path) -> None:
    before = _children()
    with cluster_client(_cfg(tmp_path)) as client:
        workers = client.scheduler_info()["workers"]
        assert len(workers) == 2
        pids = set(client.run(os.getpid).values())
        assert os.getpid() not in pids
        assert client.submit(sum, [1, 2, 3]).result() == 6
        started = _children() - before
        assert pids <= started
    assert not _wait_gone(started), "worker processes left after the block"
    assert client.status == "closed"


def test_local_tears_down_on_exception(tmp_path: Path) -> None:
    before = _children()
    started: set[int] = set()

    def fail_inside() -> None:
        with cluster_client(_cfg(tmp_path)) as client:
            started.update(_children() - before)
            assert len(set(client.run(os.getpid).values())) == 2
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail_inside()
    assert started
    assert not _wait_gone(started)


def test_sigterm_handler_installed_and_restored() -> None:
    previous = signal.getsignal(signal.SIGTERM)

    def terminate_inside() -> None:
        with sigterm_raises():
            assert signal.getsignal(signal.SIGTERM) is not previous
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises long before this ends

    with pytest.raises(Terminated) as info:
        terminate_inside()
    assert info.value.code == 128 + signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) is previous


_HOLDER = textwrap.dedent(
    """
    import sys, time
    from gagebench.config import load_config
    from gagebench.clusters import cluster_client
    cfg = load_config(output=sys.argv[1], overrides={"cluster.local.n_workers": 2})
    with cluster_client(cfg) as client:
        print("READY", *sorted(client.run(__import__("os").getpid).values()), flush=True)
        time.sleep(120)
    print("UNREACHABLE", flush=True)
    """
)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "ctrl-c"])
def test_signal_to_a_process_holding_a_cluster_leaves_nothing(
    tmp_path: Path, sig: signal.Signals
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("READY"), proc.stderr.read() if proc.stderr else line
        worker_pids = {int(p) for p in line.split()[1:]}
        tree = _children(proc.pid)
        assert len(worker_pids) == 2
        assert worker_pids <= tree
        t0 = time.monotonic()
        proc.send_signal(sig)
        code = proc.wait(timeout=30)
        elapsed = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert code != 0
    if sig == signal.SIGTERM:
        assert code == 128 + signal.SIGTERM
    assert elapsed < 15, f"took {elapsed:.1f} s to exit"
    assert not _wait_gone(tree, timeout=10), "scheduler/worker processes left behind"
