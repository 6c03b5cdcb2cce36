"""Run-folder guards: the lease (one run at a time), stale temporaries, changed settings,
the deterministic default run id, and the settings checked before anything is written."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import fsspec
import pytest

from gagebench.clusters import check_settings
from gagebench.config import load_config
from gagebench.errors import ConfigError
from gagebench.results.lock import LOCK_FILE, RunLock, RunLockedError, remove_stale_temporaries
from gagebench.results.settings import differences, result_settings


def _lock(root: Path, **kw) -> RunLock:
    fs = fsspec.filesystem("file")
    return RunLock(fs, str(root / LOCK_FILE), str(root), local=True, **kw)


def test_a_second_run_refuses_while_the_first_holds_the_lease(tmp_path: Path) -> None:
    first = _lock(tmp_path)
    with first.held():
        holder = json.loads((tmp_path / LOCK_FILE).read_text())
        assert holder["pid"] == os.getpid()
        assert holder["host"]
        with pytest.raises(RunLockedError, match=r"in use by another gagebench run \(host "):
            _lock(tmp_path).acquire()
    assert not (tmp_path / LOCK_FILE).exists()  # released on exit
    second = _lock(tmp_path)
    second.acquire()
    second.release()


def test_a_stale_lease_is_taken_over(tmp_path: Path) -> None:
    doc = {"token": "old", "host": "elsewhere", "pid": 1, "heartbeat": time.time() - 600}
    (tmp_path / LOCK_FILE).write_text(json.dumps({**doc, "ttl_s": 60}))
    lock = _lock(tmp_path)
    lock.acquire()
    assert json.loads((tmp_path / LOCK_FILE).read_text())["token"] == lock.token
    lock.release()


def test_a_lease_of_a_dead_process_on_this_host_is_taken_over(tmp_path: Path) -> None:
    import socket
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    doc = {"token": "old", "host": socket.gethostname(), "pid": int(dead.stdout)}
    (tmp_path / LOCK_FILE).write_text(json.dumps({**doc, "heartbeat": time.time()}))
    lock = _lock(tmp_path)
    lock.acquire()
    lock.release()


def test_a_fresh_lease_on_another_host_is_respected(tmp_path: Path) -> None:
    doc = {"token": "other", "host": "elsewhere", "pid": 1, "heartbeat": time.time()}
    (tmp_path / LOCK_FILE).write_text(json.dumps({**doc, "ttl_s": 60}))
    with pytest.raises(RunLockedError, match=r"expires [56][0-9] s from now"):
        _lock(tmp_path).acquire()


def test_remote_style_lease_write_then_verify(tmp_path: Path) -> None:
    """The object-store path (no O_EXCL): write, settle, read back the token."""
    fs = fsspec.filesystem("memory")
    root = f"/lease-{time.time_ns()}"
    first = RunLock(fs, f"{root}/{LOCK_FILE}", f"memory://{root}", settle_s=0.01)
    first.acquire()
    second = RunLock(fs, f"{root}/{LOCK_FILE}", f"memory://{root}", settle_s=0.01)
    with pytest.raises(RunLockedError):
        second.acquire()
    first.release()
    second.acquire()
    second.release()


def test_stale_temporaries_are_removed(tmp_path: Path) -> None:
    (tmp_path / "nwm").mkdir()
    stale = tmp_path / "nwm" / f"dscore.csv.tmp-{'a' * 32}"
    stale.write_text("half")
    keep = tmp_path / "nwm" / "dscore.csv"
    keep.write_text("whole")
    removed = remove_stale_temporaries(fsspec.filesystem("file"), str(tmp_path))
    assert [Path(p).name for p in removed] == [stale.name]
    assert keep.exists()
    assert not stale.exists()


def _cfg(tmp_path: Path, **kw):
    base = {"output": str(tmp_path), "observed": "o.zarr", "models": {"nwm": "m.zarr"}}
    return load_config(**{**base, **kw})


def test_default_run_id_is_a_hash_of_the_result_settings(tmp_path: Path) -> None:
    a, b = _cfg(tmp_path), _cfg(tmp_path)
    assert a.run_id == b.run_id
    assert a.run_id.startswith("run-")
    assert _cfg(tmp_path, batch_size=32).run_id != a.run_id
    assert _cfg(tmp_path, models={"nwm": "other.zarr"}).run_id != a.run_id
    # credentials and progress do not decide results: same run
    assert _cfg(tmp_path, storage_options={"anon": True}, progress=False).run_id == a.run_id
    assert _cfg(tmp_path, run_id="nightly-{time}").run_id.startswith("nightly-20")
    assert _cfg(tmp_path, run_id="mine").run_id == "mine"


def test_changed_settings_are_named(tmp_path: Path) -> None:
    before = result_settings(_cfg(tmp_path, run_id="x").to_dict())
    now = result_settings(_cfg(tmp_path, run_id="x", mode="hytest", batch_size=8))
    diffs = differences(before, now)
    assert diffs == ["mode ('standard' before, 'hytest' now)", "batch_size (64 before, 8 now)"]
    assert differences(before, before) == []


def test_min_paired_days_is_validated(tmp_path: Path) -> None:
    assert _cfg(tmp_path).min_paired_days == 365
    with pytest.raises(ConfigError, match=r"gagebench\.min_paired_days: expected an integer"):
        _cfg(tmp_path, min_paired_days=1)


def test_every_cluster_setting_is_checked_up_front(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"gagebench.cluster.local.nworkers"):
        check_settings(_cfg(tmp_path, **{"cluster.local.nworkers": 2}))
    with pytest.raises(ConfigError, match=r"cluster.local.memory_limit: expected 'auto'"):
        check_settings(_cfg(tmp_path, **{"cluster.local.memory_limit": "lots"}))
    with pytest.raises(ConfigError, match=r"gagebench.cluster.kubernetes.imagee"):
        check_settings(_cfg(tmp_path, **{"cluster.kubernetes.imagee": "x"}), cluster=False)
    with pytest.raises(ConfigError, match=r"gagebench.cluster.lcoal: expected a section"):
        _cfg(tmp_path, **{"cluster.lcoal.n_workers": 2})
    bad = {"cluster.backend": "address", "cluster.address.address": "notaurl"}
    with pytest.raises(ConfigError, match=r"expected a scheduler address like tcp://"):
        check_settings(_cfg(tmp_path, **bad))
    check_settings(_cfg(tmp_path, **{"cluster.local.memory_limit": "2GiB"}))


def test_a_retry_pod_waits_out_a_fresh_lease_of_a_killed_attempt(tmp_path: Path) -> None:
    """In a pod, a fresh lease of another host is waited for (up to one TTL) before refusing."""
    doc = {"token": "killed", "host": "pod-a", "pid": 1, "heartbeat": time.time(), "ttl_s": 1}
    (tmp_path / LOCK_FILE).write_text(json.dumps(doc))
    t0 = time.monotonic()
    lock = _lock(tmp_path, wait_s=10)
    lock.acquire()
    assert 0.5 < time.monotonic() - t0 < 9
    lock.release()
    # a live holder (its heartbeat keeps coming) is still refused after the wait
    holder = _lock(tmp_path, ttl_s=4)
    holder.acquire()
    with pytest.raises(RunLockedError):
        _lock(tmp_path, wait_s=0.5).acquire()
    holder.release()


def test_local_lease_racers_exactly_one_wins(tmp_path: Path) -> None:
    """Eight processes' worth of locks race for one folder: the exclusive link lets one in."""
    from lease_race import race

    locks = [_lock(tmp_path) for _ in range(8)]
    outcome, winner = race(locks, 30)
    assert sorted(outcome.values()).count("held") == 1, outcome
    assert winner is not None
    assert json.loads((tmp_path / LOCK_FILE).read_text())["token"] == locks[winner].token
    locks[winner].release()
    assert not (tmp_path / LOCK_FILE).exists()
    assert not [p.name for p in tmp_path.iterdir()]  # no temporary left


def test_a_local_lease_written_over_is_lost_and_left_alone(tmp_path: Path) -> None:
    from gagebench.results.lock import LeaseLostError

    lock = _lock(tmp_path)
    lock.acquire()
    lock.renew()
    lock.verify()
    other = {"token": "other", "host": "node-2", "pid": 5, "heartbeat": time.time()}
    (tmp_path / LOCK_FILE).write_text(json.dumps({**other, "ttl_s": 60}))
    with pytest.raises(LeaseLostError, match=r"taken by another run \(host node-2, pid 5\)"):
        lock.verify()
    with pytest.raises(LeaseLostError, match="stops without committing"):
        lock.renew()
    lock.release()
    assert json.loads((tmp_path / LOCK_FILE).read_text())["token"] == "other"
