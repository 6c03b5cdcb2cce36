"""The worker tuning's parts without a cluster: which backends opt in, the plugin's checks,
and that outside a tuned worker a task changes nothing (tests/integration/test_worker_tuning.py
runs it on real clusters)."""

from __future__ import annotations

import sys

import numba
import pytest

from gagebench.clusters import BACKENDS, backend_class
from gagebench.tuning import PLUGIN_NAME, WorkerTuning, tune_malloc, tune_task, worker_tuning


def test_only_backends_that_start_their_workers_opt_in() -> None:
    started = {name for name in BACKENDS if backend_class(name).started_here}
    # auto delegates: the backend it picks decides, through its own flag; address only
    # reaches a scheduler someone else runs
    assert started == {"local", "kubernetes", "gateway", "slurm"}


def test_outside_a_worker_a_task_keeps_numba_threads() -> None:
    before = numba.get_num_threads()
    assert worker_tuning() is None
    tune_task()
    assert numba.get_num_threads() == before


def test_the_plugin_names_itself_and_checks_its_settings() -> None:
    plugin = WorkerTuning()
    assert (plugin.name, plugin.numba_threads, plugin.malloc_tuned) == (PLUGIN_NAME, 1, False)
    with pytest.raises(ValueError, match="numba_threads must be >= 1"):
        WorkerTuning(numba_threads=0)


def test_malloc_tuning_applies_on_glibc_linux() -> None:
    assert tune_malloc() is sys.platform.startswith("linux")
