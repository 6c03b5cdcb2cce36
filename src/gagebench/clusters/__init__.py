"""Dask cluster backends, chosen by name (built-in, entry point or ``module:Class``).

``cluster_client(cfg)`` opens the backend named by ``cfg.cluster.backend`` and yields a
:class:`distributed.Client`; the cluster it started is gone when the block exits, however
it exits (success, exception, Ctrl-C, SIGTERM). Backends import their heavy libraries
(``dask_kubernetes``, ``dask_gateway``) only when used.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from gagebench.clusters.base import ClusterBackend, Terminated, opened, sigterm_raises
from gagebench.clusters.registry import (
    BUILTIN,
    ENTRY_POINT_GROUP,
    backend_class,
    is_target,
    registered,
)
from gagebench.errors import ConfigError

if TYPE_CHECKING:
    from distributed import Client

    from gagebench.config import RunConfig

#: The built-in backends, name -> "module:Class" (:data:`registry.BUILTIN`). Other
#: backends come from the entry-point group ``gagebench.backends`` or a ``module:Class``
#: setting (:mod:`gagebench.clusters.registry`).
BACKENDS: dict[str, str] = BUILTIN

__all__ = [
    "BACKENDS",
    "ENTRY_POINT_GROUP",
    "ClusterBackend",
    "Terminated",
    "backend_class",
    "check_settings",
    "cluster_client",
    "get_backend",
    "opened",
    "registered",
    "sigterm_raises",
]


def get_backend(cfg: RunConfig, name: str | None = None) -> ClusterBackend:
    """An instance of the configured (or named) backend, its settings validated."""
    return backend_class(name or cfg.cluster.backend)(cfg)


def check_settings(cfg: RunConfig, cluster: bool = True) -> None:
    """Validate every backend section of ``cfg`` (unknown keys, bad values) up front.

    Sections of backends not in use are checked for unknown keys (a plugin's section by
    its own class); a section that no backend owns is refused, listing the backends. With
    ``cluster``, the chosen backend is built, so its own checks (sizes, addresses) run
    before a run writes anything.
    """
    chosen = backend_class(cfg.cluster.backend)
    for name in cfg.cluster.options:
        if name == chosen.name:
            continue
        # built-ins first: reading the entry points scans every installed distribution
        owned = name in BUILTIN or name in registered()
        if name == "auto" or not owned:
            backends = sorted(set(registered()) - {"auto"})
            if is_target(cfg.cluster.backend):
                backends.append(f"{chosen.name} ({cfg.cluster.backend})")
            raise ConfigError(
                f"gagebench.cluster.{name}: no backend has a section {name!r}; the backends' "
                f"sections are {', '.join(backends)}"
            )
        backend_class(name).settings(cfg.cluster.backend_options(name))
    if cluster:
        chosen(cfg)
    else:
        chosen.settings(cfg.cluster.backend_options(chosen.name))


@contextlib.contextmanager
def cluster_client(cfg: RunConfig) -> Iterator[Client]:
    """Open the configured cluster, yield a connected client, and always tear it down.

    SIGTERM is turned into an exception while the block runs, so the teardown also
    happens when Kubernetes deletes the Job or evicts the pod. The workers are tuned only
    when the backend started them (:func:`opened`).
    """
    backend = get_backend(cfg)
    with sigterm_raises(), opened(backend) as client:
        yield client
