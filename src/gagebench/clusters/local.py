"""``local`` backend: a :class:`distributed.LocalCluster` of worker processes."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import field_validator

from gagebench.clusters.base import ClusterBackend
from gagebench.errors import ClusterError
from gagebench.schema import Expect, Section, fail, setting

if TYPE_CHECKING:
    from distributed import Client


def _memory_ok(memory: Any) -> bool:
    """'auto', a positive number of bytes, a fraction of RAM (0-1], or a size like '4GiB'."""
    from dask.utils import parse_bytes

    if isinstance(memory, bool) or not isinstance(memory, str | int | float):
        return False
    if isinstance(memory, str):
        if memory.strip().lower() == "auto":
            return True
        try:
            return parse_bytes(memory) > 0
        except (ValueError, TypeError):
            return False
    return memory > 0


def _start_failure(exc: BaseException) -> str:
    """Why the local workers did not start, with the likely cause when a script started
    the run: the workers import it again, so it must guard its call to gagebench.run()."""
    import os
    import sys

    text = f"the local cluster's worker processes failed to start ({type(exc).__name__}: {exc})"
    script = getattr(sys.modules.get("__main__"), "__file__", None)
    if script and os.path.basename(script) not in ("gagebench", "cli.py", "__main__.py"):
        return (
            f"{text}: {script} started this run, and each worker process imports it again; "
            'put its call to gagebench.run() under if __name__ == "__main__": '
            "(see the Python API in the README)"
        )
    return f"{text}; the worker errors are logged above"


_MEMORY = "'auto', a size like '4GiB' or bytes"


class LocalSettings(Section):
    """``cluster.local``: a LocalCluster of worker processes."""

    n_workers: Annotated[int | None, Expect("a positive integer")] = setting(
        "cluster.local.n_workers", ge=1
    )
    threads_per_worker: Annotated[int, Expect("a positive integer")] = setting(
        "cluster.local.threads_per_worker", ge=1
    )
    memory_limit: Annotated[str | int | float, Expect(_MEMORY)] = setting(
        "cluster.local.memory_limit"
    )

    @field_validator("memory_limit", mode="before")
    @classmethod
    def _memory(cls, value: Any) -> Any:
        if not _memory_ok(value):
            raise fail(f"expected {_MEMORY}, got {value!r}")
        return value


class LocalBackend(ClusterBackend):
    """Worker processes on this machine; closed (processes joined) when the block exits."""

    name = "local"
    started_here = True
    memory_key = "memory_limit"
    Settings = LocalSettings

    @contextlib.contextmanager
    def client(self) -> Iterator[Client]:
        from distributed import Client, LocalCluster

        from gagebench.shutdown import children_ignore_sigint, quiet_close, quiet_worker_logs

        # Ctrl-C reaches every process of the terminal's group: the workers ignore it
        # (no traceback per worker), this process gets it and closes the cluster.
        try:
            with children_ignore_sigint():
                cluster = LocalCluster(
                    n_workers=self.options["n_workers"],
                    threads_per_worker=self.options["threads_per_worker"],
                    memory_limit=self.options["memory_limit"],
                    processes=True,
                    dashboard_address=":0",
                )
        except (RuntimeError, OSError, TimeoutError) as exc:
            raise ClusterError(_start_failure(exc)) from exc
        try:
            with Client(cluster) as client:
                client.run(quiet_worker_logs)
                yield client
        finally:
            with quiet_close():
                cluster.close()
