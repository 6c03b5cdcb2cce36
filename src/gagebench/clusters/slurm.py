"""``slurm`` backend: workers as SLURM batch jobs (dask-jobqueue's ``SLURMCluster``).

gagebench runs on a login node (or in a job of its own); the scheduler runs in its
process and ``jobs`` worker jobs are submitted with ``sbatch``. The jobs are cancelled
(``scancel``) when the block exits, however it exits - success, exception, Ctrl-C,
SIGTERM (``scancel`` of the controlling job) - and the job ids are cancelled once more
after dask-jobqueue's own close, so a worker job never outlives the run. ``walltime`` is
the backstop when the controller dies without running any code (SIGKILL, node loss).
"""

from __future__ import annotations

import _thread
import contextlib
import logging
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeAlias

from pydantic import Field, field_validator, model_validator

from gagebench.clusters.base import ClusterBackend
from gagebench.errors import ClusterError
from gagebench.schema import Expect, Section, fail, setting

if TYPE_CHECKING:
    from distributed import Client

log = logging.getLogger("gagebench.clusters.slurm")

#: What sbatch says when it has no configuration or cannot reach slurmctld.
_NO_CONTROLLER = (
    "Unable to contact slurm controller",
    "Could not establish a configuration source",
    "Unable to process configuration file",
)
_WALLTIME = re.compile(r"^(\d+-)?\d{1,3}(:\d{2}){0,2}$")


def _walltime_ok(value: Any) -> Any:
    """A SLURM time limit as text; an unquoted ``1:00:00`` (YAML: seconds) is refused."""
    if isinstance(value, int) and not isinstance(value, bool):
        raise fail(
            "YAML reads an unquoted time like 1:00:00 as a number (of seconds): quote it, "
            f'e.g. walltime: "1:00:00" (got {value!r})'
        )
    if isinstance(value, str) and not _WALLTIME.match(value):
        raise fail(f"expected a time limit like '01:00:00', '90' or '1-00:00:00', got {value!r}")
    return value


def _memory_ok(value: Any) -> Any:
    """A worker job's memory as a size dask reads (``4GiB``)."""
    from dask.utils import parse_bytes

    try:
        ok = isinstance(value, str) and parse_bytes(value) > 0
    except (ValueError, TypeError):
        ok = False
    if not ok:
        raise fail(f"expected a size like '4GiB' or '16GB', got {value!r}")
    return value


_TEXT: TypeAlias = Annotated[str | None, Field(min_length=1), Expect("a non-empty string or null")]


class SlurmSettings(Section):
    """``cluster.slurm``: every key, its type and bounds; defaults and help from
    gagebench.yaml's ``cluster.slurm`` section."""

    queue: _TEXT = setting("cluster.slurm.queue")
    account: _TEXT = setting("cluster.slurm.account")
    walltime: Annotated[str, Expect("a time limit like '01:00:00'")] = setting(
        "cluster.slurm.walltime"
    )
    jobs: int = setting("cluster.slurm.jobs", ge=1)
    cores: int = setting("cluster.slurm.cores", ge=1)
    processes: int = setting("cluster.slurm.processes", ge=1)
    memory: Annotated[str, Expect("a size like '4GiB'")] = setting("cluster.slurm.memory")
    job_extra_directives: Annotated[list[str], Expect("a list of strings")] = setting(
        "cluster.slurm.job_extra_directives"
    )
    job_script_prologue: Annotated[list[str], Expect("a list of strings")] = setting(
        "cluster.slurm.job_script_prologue"
    )
    python: _TEXT = setting("cluster.slurm.python")
    interface: _TEXT = setting("cluster.slurm.interface")
    local_directory: _TEXT = setting("cluster.slurm.local_directory")
    log_directory: _TEXT = setting("cluster.slurm.log_directory")
    scheduler_options: Annotated[dict[str, Any], Expect("a mapping")] = setting(
        "cluster.slurm.scheduler_options"
    )
    wait_timeout: Annotated[float, Expect("a number of seconds > 0")] = setting(
        "cluster.slurm.wait_timeout", gt=0
    )

    _walltime = field_validator("walltime", mode="before")(_walltime_ok)
    _memory = field_validator("memory", mode="before")(_memory_ok)

    @model_validator(mode="after")
    def _threads(self) -> SlurmSettings:
        if self.cores % self.processes:
            raise fail(
                f"cores ({self.cores}) must be a multiple of processes ({self.processes}): "
                "each worker process gets cores / processes threads",
                "cores",
            )
        return self


def _job_name(run_id: str) -> str:
    """``gagebench-<run id>`` as a SLURM job name (what ``squeue -n`` finds)."""
    return re.sub(r"[^A-Za-z0-9._-]", "-", f"gagebench-{run_id}")[:64]


class SlurmBackend(ClusterBackend):
    """Worker jobs through ``sbatch``; every job cancelled when the block exits."""

    name = "slurm"
    started_here = True  # its own worker jobs, cancelled with the run
    memory_key = "memory"
    Settings = SlurmSettings

    def cluster_kwargs(self) -> dict[str, Any]:
        """The keywords of ``SLURMCluster`` for these settings."""
        o = self.options
        return {
            "queue": o["queue"],
            "account": o["account"],
            "walltime": o["walltime"],
            "cores": o["cores"],
            "processes": o["processes"],
            "memory": o["memory"],
            "job_extra_directives": list(o["job_extra_directives"]),
            "job_script_prologue": list(o["job_script_prologue"]),
            "python": o["python"] or sys.executable,
            "interface": o["interface"],
            "local_directory": o["local_directory"],
            "log_directory": o["log_directory"],
            "job_name": _job_name(self.cfg.run_id),
            "scheduler_options": {"dashboard_address": ":0", **o["scheduler_options"]},
        }

    @contextlib.contextmanager
    def client(self) -> Iterator[Client]:
        from distributed import Client

        from gagebench.shutdown import quiet_abandoned_gathers, quiet_worker_logs

        cluster_type = _slurm_cluster_type()
        try:
            cluster = cluster_type(**self.cluster_kwargs())
        except (ValueError, OSError, RuntimeError) as exc:  # e.g. no such interface
            raise ClusterError(
                f"the SLURM cluster's scheduler did not start ({type(exc).__name__}: {exc}); "
                f"check {self.key('interface')} and {self.key('scheduler_options')}"
            ) from exc
        submitted: set[str] = set()
        try:
            self._check_submission(cluster.job_script())
            cluster.scale(jobs=self.options["jobs"])
            with Client(cluster, set_as_default=False) as client:
                timeout = float(self.options["wait_timeout"])
                try:
                    client.wait_for_workers(1, timeout=timeout)
                except TimeoutError as exc:
                    submitted |= _job_ids(cluster)
                    raise ClusterError(
                        f"no SLURM worker job started within {timeout:g} s "
                        f"({_queue_state(submitted)}): the partition may be busy or the "
                        f"job refused; raise {self.key('wait_timeout')}, or check "
                        f"{self.key('queue')}/{self.key('account')} and the jobs' logs "
                        f"({self.key('log_directory')})"
                    ) from exc
                client.run(quiet_worker_logs)
                log.info(
                    "SLURM cluster ready: %d worker(s) in jobs %s",
                    len(client.scheduler_info()["workers"]),
                    ", ".join(sorted(_job_ids(cluster))) or "-",
                )
                watch = _JobsWatch(cluster)
                try:
                    yield client
                except KeyboardInterrupt:
                    if watch.lost is None:
                        raise
                    quiet_abandoned_gathers()
                    raise ClusterError(self._jobs_lost(watch.lost)) from None
                finally:
                    watch.stop()
        finally:
            submitted |= _job_ids(cluster)
            try:
                cluster.close()
            except Exception as exc:  # never hides the error that ended the run
                log.warning("closing the SLURM cluster: %s: %s", type(exc).__name__, exc)
            finally:
                _cancel(submitted)

    def _jobs_lost(self, jobs: set[str]) -> str:
        from gagebench.commandline import command_line, resume_command

        return (
            f"every SLURM worker job ended while the run was computing (jobs "
            f"{', '.join(sorted(jobs)) or '-'} are no longer in the queue): their walltime "
            f"({self.key('walltime')} = {self.options['walltime']}) may be shorter than the "
            "run, or they were cancelled or preempted (the jobs' logs: "
            f"{self.key('log_directory')}); finished batches are saved in {self.cfg.run_url}; "
            f"resume with: {resume_command(self.cfg.run_id, command_line())}"
        )

    def _check_submission(self, script: str) -> None:
        """``sbatch --test-only`` of the worker job: a partition, account or size SLURM
        refuses is one error now, not failed submissions until ``wait_timeout``."""
        with tempfile.TemporaryDirectory(prefix="gagebench-slurm-") as folder:
            path = Path(folder) / "worker-job.sh"
            path.write_text(script)
            try:
                done = subprocess.run(
                    ["sbatch", "--test-only", str(path)],
                    capture_output=True,
                    text=True,
                    timeout=60,
                    check=False,
                )
            except (OSError, subprocess.SubprocessError) as exc:
                raise ClusterError(f"sbatch --test-only of the worker job failed: {exc}") from exc
        if done.returncode != 0:
            lines = [s.strip().removeprefix("sbatch: error: ") for s in done.stderr.splitlines()]
            said = "; ".join(filter(None, lines))
            if any(sign in said for sign in _NO_CONTROLLER):
                raise ClusterError(
                    f"sbatch cannot reach a SLURM controller ({said}): run gagebench on a "
                    "login node of the cluster (its slurm.conf, or SLURM_CONF, names the "
                    "controller), and check that the controller is up (sinfo)"
                )
            raise ClusterError(
                f"SLURM refuses the worker job ({said or f'sbatch exit {done.returncode}'}): "
                f"check {self.key('queue')}, {self.key('account')}, {self.key('cores')}, "
                f"{self.key('memory')}, {self.key('walltime')} and "
                f"{self.key('job_extra_directives')}"
            )


def _slurm_cluster_type() -> Any:
    """dask-jobqueue's SLURMCluster, or a ClusterError saying what is missing."""
    try:
        from dask_jobqueue import SLURMCluster
    except ImportError as exc:
        raise ClusterError(
            f"the slurm backend needs dask-jobqueue ({exc}): pip install 'gagebench[slurm]'"
        ) from exc
    _keep_ctrl_c()
    if shutil.which("sbatch") is None:
        raise ClusterError(
            "the slurm backend submits worker jobs with sbatch, which is not on PATH here: "
            "run gagebench on a SLURM login node (or add SLURM's bin folder to PATH)"
        )
    return SLURMCluster


def _keep_ctrl_c() -> None:
    """Undo dask-jobqueue's SIGINT handler, so Ctrl-C stays a KeyboardInterrupt.

    dask-jobqueue 0.9.0 installs ``lambda *_: sys.exit()`` for SIGINT when it is imported
    (dask/dask-jobqueue#696, fixed after 0.9.0): Ctrl-C would end a run with exit code 0,
    no message and no resume command. Python's own handler is put back.
    """
    handler = signal.getsignal(signal.SIGINT)
    ours = threading.current_thread() is threading.main_thread()
    if ours and getattr(handler, "__module__", None) == "dask_jobqueue.runner":
        signal.signal(signal.SIGINT, signal.default_int_handler)


class _JobsWatch:
    """Stops a run whose worker jobs are all gone (walltime, scancel, preemption).

    dask-jobqueue does not submit new jobs for ended ones, so the run would wait for
    workers for ever. A thread checks every ``interval`` s; when the scheduler (in this
    process) has tasks but no worker and none of the jobs is in ``squeue`` on ``checks``
    checks in a row, it records the jobs in :attr:`lost` and interrupts the main thread,
    whose KeyboardInterrupt the backend turns into a ClusterError saying so.
    """

    def __init__(self, cluster: Any, interval: float = 5.0, checks: int = 3) -> None:
        self.lost: set[str] | None = None
        self._cluster = cluster
        self._interval = interval
        self._checks = checks
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="gagebench-slurm-jobs")
        self._thread.daemon = True
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _watch(self) -> None:
        gone = 0
        jobs: set[str] = set()
        while not self._stop.wait(self._interval):
            scheduler = self._cluster.scheduler
            jobs |= _job_ids(self._cluster)  # an ended job leaves the cluster's list
            stalled = bool(scheduler.tasks) and not scheduler.workers
            gone = gone + 1 if stalled and not _queued(jobs) else 0
            if gone >= self._checks and not self._stop.is_set():
                self.lost = jobs
                _thread.interrupt_main()
                return


def _queued(job_ids: set[str]) -> bool:
    """Whether any of ``job_ids`` is still in the queue (True when squeue fails: unknown)."""
    if not job_ids:
        return False
    try:
        done = subprocess.run(
            ["squeue", "-h", "-j", ",".join(sorted(job_ids)), "-o", "%i"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return True
    # squeue exits 1 ("Invalid job id specified") once every job has left its memory
    return bool(done.stdout.strip()) or (
        done.returncode != 0 and "Invalid job id" not in done.stderr
    )


def _job_ids(cluster: Any) -> set[str]:
    """The ids of the jobs the cluster has submitted so far."""
    jobs = [*getattr(cluster, "workers", {}).values()]
    return {str(job.job_id) for job in jobs if getattr(job, "job_id", None)}


def _queue_state(job_ids: set[str]) -> str:
    """``squeue``'s state and reason of ``job_ids``, for an error message."""
    if not job_ids:
        return "no job was submitted"
    try:
        out = subprocess.run(
            ["squeue", "-h", "-j", ",".join(sorted(job_ids)), "-o", "%i %T %r"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        return f"squeue failed: {exc}"
    return "squeue: " + ("; ".join(out.splitlines()) if out else "the jobs are gone")


def _cancel(job_ids: set[str]) -> None:
    """``scancel`` the jobs once more after the cluster's close (gone ones are no error)."""
    if not job_ids:
        return
    try:
        subprocess.run(["scancel", *sorted(job_ids)], capture_output=True, timeout=60, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        log.error(
            "could not cancel the SLURM worker jobs %s (%s): cancel them by hand (scancel %s)",
            ", ".join(sorted(job_ids)),
            exc,
            " ".join(sorted(job_ids)),
        )
