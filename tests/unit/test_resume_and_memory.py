"""The resume command messages give (gagebench.results.resume) and the worker-memory
estimate and warning (gagebench.workermemory), on plain values."""

from __future__ import annotations

import pytest

from gagebench.commandline import command_line, resume_command
from gagebench.results.resume import recorded_resume
from gagebench.workermemory import (
    WORKER_BASELINE_BYTES,
    MemoryWatch,
    batch_need,
    memory_warning,
    smallest_worker,
)


def test_the_command_line_as_typed_with_secrets_masked() -> None:
    argv = [
        "/venv/bin/gagebench", "run", "-c", "run.yaml",
        "--set", "storage_options.secret=hunter2",
        "--set", "observed.url=http://user:pw@host/obs.zarr",
        "--set", "storage_options={key: AKIAXX, secret: s3cr3t, anon: false}",
    ]  # fmt: skip
    words = command_line(argv)
    assert words is not None
    assert words[:4] == ["gagebench", "run", "-c", "run.yaml"]
    assert "hunter2" not in " ".join(words)
    assert "AKIAXX" not in " ".join(words)
    assert "s3cr3t" not in " ".join(words)
    assert '"anon": false' in words[-1]
    assert "user:pw" not in " ".join(words)
    assert command_line(["/home/me/bench.py", "--fast"]) == [
        "python",
        "/home/me/bench.py",
        "--fast",
    ]
    assert command_line(["/x/ipykernel_launcher.py", "-f", "k.json"]) is None


def test_one_word_set_values_of_secret_keys_are_masked_however_short() -> None:
    words = command_line(
        ["gagebench", "run", "--set=storage_options.secret=abc", "--set=headers={Cookie: c=1}"]
    )
    assert words == [
        "gagebench", "run", "--set=storage_options.secret=***", '--set=headers={"Cookie": "***"}',
    ]  # fmt: skip


def test_an_option_and_its_value_in_one_word_are_masked_too() -> None:
    """``--set=storage_options.secret=abc`` (argparse takes it) kept a short secret in
    ``started.json``, and ``--set=storage_options={...}`` was mangled past resuming."""
    words = command_line(
        ["gagebench", "run", "--set=storage_options.secret=abc",
         "--set=storage_options={key: AK, token: tk}", "--config=run.yaml"]
    )  # fmt: skip
    assert words is not None
    assert words[2] == "--set=storage_options.secret=***"
    assert words[3] == '--set=storage_options={"key": "***", "token": "***"}'
    assert words[4] == "--config=run.yaml"


def test_the_resume_command_of_a_forced_run_drops_force() -> None:
    """A ``--force`` run that stopped said "resume with: gagebench run ... --force ...
    (it computes only the missing batches)": --force deletes the saved batches."""
    words = ["gagebench", "run", "-c", "run.yaml", "--force", "-q"]
    assert resume_command("r1", words) == "gagebench run -c run.yaml -q --set run_id=r1"


def test_the_resume_command_sets_the_run_id_once_and_replaces_settings() -> None:
    words = ["gagebench", "run", "-c", "my run.yaml", "--set", "run_id=nightly-{time}",
             "--set", "cluster.local.memory_limit=60MB"]  # fmt: skip
    assert resume_command("nightly-2026", words, sets={"cluster.local.memory_limit": "1GiB"}) == (
        "gagebench run -c 'my run.yaml' --set run_id=nightly-2026 "
        "--set cluster.local.memory_limit=1GiB"
    )
    demo = resume_command("run-1", ["gagebench", "demo", "--output", "x"], cwd="/tmp/a b")
    assert demo == "cd '/tmp/a b' && gagebench demo --output x --set run_id=run-1"
    assert resume_command("r", ["python", "bench.py"]) == "python bench.py (keeping run_id=r)"
    assert resume_command("r", None) == "gagebench.run(config) again with run_id='r'"
    record = {"command": ["gagebench", "run", "-c", "run.yaml"], "cwd": "/w"}
    assert recorded_resume("r", record) == "cd /w && gagebench run -c run.yaml --set run_id=r"
    assert "--set run_id=r" in recorded_resume("r", None)


def test_the_resume_command_drops_force_which_would_delete_the_saved_batches() -> None:
    for force in ("--force", "--forc"):
        words = ["gagebench", "run", force, "-c", "run.yaml", "--set", "run_id=nightly-{time}"]
        assert resume_command("nightly-2026", words) == (
            "gagebench run -c run.yaml --set run_id=nightly-2026"
        )
    started = {"command": ["gagebench", "run", "--force", "-c", "x.yaml"], "cwd": "/w"}
    assert recorded_resume("r", started) == "cd /w && gagebench run -c x.yaml --set run_id=r"


def test_the_estimate_and_the_warning() -> None:
    need = batch_need(64, [15341, 15341, 15341], threads=2)
    assert need.batch_bytes == 64 * 46023 * 8 * 2
    assert need.total_bytes == WORKER_BASELINE_BYTES + 2 * need.batch_bytes
    assert need.suggestion() == "1GiB"
    workers = {
        "tcp://a": {"memory_limit": 8 * 2**30, "nthreads": 1},
        "tcp://b": {"memory_limit": 200 * 10**6, "nthreads": 1},
    }
    assert smallest_worker(workers) == (200 * 10**6, 1)
    warning = memory_warning(workers, 64, [15341] * 3, "gagebench.cluster.local.memory_limit")
    assert warning is not None
    assert "workers have 191 MiB of memory (gagebench.cluster.local.memory_limit)" in warning
    assert "batch_size (64 now)" in warning
    roomy = {"tcp://a": {"memory_limit": 2**30, "nthreads": 1}}
    assert memory_warning(roomy, 64, [15341] * 3, "x") is None
    assert memory_warning({"tcp://a": {"memory_limit": 0, "nthreads": 1}}, 64, [1], "x") is None


@pytest.mark.parametrize("workers", [1, 2, 8])
def test_the_watch_stops_after_more_restarts_than_workers_without_progress(workers: int) -> None:
    watch = MemoryWatch(workers)
    event = (0.0, {"worker": "tcp://w", "pid": 1, "rss": 60 * 2**20})
    limit = max(3, workers + 1)
    for _ in range(limit - 1):
        assert not watch.record(event)
    watch.progress()  # a finished batch: the count starts again
    for _ in range(limit - 1):
        assert not watch.record(event)
    assert watch.record(event)
    assert watch.tripped
    assert watch.total == 2 * limit - 1
    assert watch.last_rss == 60 * 2**20
