"""Worker tuning for the clusters gagebench starts itself, as a ``distributed`` WorkerPlugin.

Two settings make the engine faster on a worker, and both reach past one task: glibc's
mmap threshold is process wide, and a numba thread count outlives the task on its thread.
On a cluster someone else runs (a scheduler given by ``address``, a client handed in)
they would change other users' work, so gagebench applies them only where it started the
workers: :func:`gagebench.clusters.opened` registers :class:`WorkerTuning` when the
backend's ``started_here`` is true (``local``, ``kubernetes``, and the ``gateway`` cluster
gagebench creates for the run, whose workers are its own), never on ``address`` or a
client handed to :func:`gagebench.run`. Register it yourself on a
cluster of your own with :func:`tune_workers`.

``numba.set_num_threads`` is thread-local: called in :meth:`WorkerTuning.setup` it would
hold only for the thread running ``setup``, not for the worker's task threads (and
``NUMBA_NUM_THREADS`` is read once, when numba is imported, which may already have
happened in the worker). So the plugin records the count, and each batch task applies
it on its own thread through :func:`tune_task`, only when the plugin is registered on
the worker running it (``get_worker().plugins``); elsewhere numba keeps its default.
"""

from __future__ import annotations

import ctypes
import sys
from typing import TYPE_CHECKING

from distributed.diagnostics.plugin import WorkerPlugin

if TYPE_CHECKING:
    import distributed

#: The name the plugin is registered under on each worker.
PLUGIN_NAME = "gagebench-tuning"

#: glibc ``mallopt`` parameter number of ``M_MMAP_THRESHOLD``.
_M_MMAP_THRESHOLD = -3


class WorkerTuning(WorkerPlugin):
    """Tunes a worker for the engine: glibc's mmap threshold, one numba thread per task.

    ``setup`` sets the mmap threshold of the worker process (see :func:`tune_malloc` for
    why); tasks read :attr:`numba_threads` through :func:`tune_task`. Dask already runs
    one batch per worker thread; the engine's own threads on top would oversubscribe the
    cores (measured 2-2.5x slower on 2 cores), so like distributed's ``OMP_NUM_THREADS=1``
    for workers, a task gets one numba thread.
    """

    name = PLUGIN_NAME
    idempotent = True

    def __init__(self, numba_threads: int = 1, mmap_threshold: int = 32 * 2**20) -> None:
        if numba_threads < 1 or mmap_threshold < 0:
            raise ValueError(
                f"WorkerTuning: numba_threads must be >= 1 and mmap_threshold >= 0, got "
                f"{numba_threads} and {mmap_threshold}"
            )
        self.numba_threads = numba_threads
        self.mmap_threshold = mmap_threshold
        #: True once ``setup`` set the mmap threshold of this worker's process.
        self.malloc_tuned = False

    def setup(self, worker: distributed.Worker) -> None:
        """Set the worker process's mmap threshold (glibc only; elsewhere nothing)."""
        self.malloc_tuned = tune_malloc(self.mmap_threshold)


def tune_malloc(threshold: int = 32 * 2**20) -> bool:
    """Serve allocations under ``threshold`` (32 MiB) from the heap in this process (glibc).

    Dask's nanny starts workers with ``MALLOC_TRIM_THRESHOLD_=65536``, which also pins
    glibc's mmap threshold at 128 KiB: every per-gage zarr chunk buffer (~1.5 MB for an
    hourly series) is then a fresh mmap, page-faulted in and unmapped again. Measured on a
    batch of 64 hourly gages: 9.0 ms CPU per gage with that setting, 6.0 ms with a 32 MiB
    mmap threshold. Batch-sized arrays (tens of MB and more) still use mmap, so they go
    back to the OS when freed and worker memory stays flat. Returns True when it was set.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (e.g. musl): nothing to tune
        return False
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, threshold))


def worker_tuning() -> WorkerTuning | None:
    """The :class:`WorkerTuning` of the worker running this task, or None (untuned/no worker)."""
    from distributed import get_worker

    try:
        worker = get_worker()
    except ValueError:  # not in a task on a distributed worker
        return None
    plugin = worker.plugins.get(PLUGIN_NAME)
    return plugin if isinstance(plugin, WorkerTuning) else None


def tune_task() -> None:
    """In a task: apply the worker's numba thread count to this thread, if it is tuned.

    On a worker without :class:`WorkerTuning` (a cluster gagebench did not start) this
    does nothing, so numba keeps its default there.
    """
    tuning = worker_tuning()
    if tuning is None:
        return
    import numba

    most = numba.config.NUMBA_NUM_THREADS  # type: ignore[attr-defined]  # the pool's size
    numba.set_num_threads(min(tuning.numba_threads, most))


def tune_workers(client: distributed.Client) -> None:
    """Register :class:`WorkerTuning` on every worker of ``client``'s cluster (and new ones).

    gagebench calls this only on clusters it started; call it on a cluster of your own
    when its workers run nothing but gagebench.

    Parameters
    ----------
    client
        A ``distributed.Client`` of the cluster whose workers to tune.
    """
    client.register_plugin(WorkerTuning(), name=PLUGIN_NAME)
