"""Dask cluster backends, chosen by name from one registry.

``cluster_client(cfg)`` opens the backend named by ``cfg.cluster.backend`` and yields a
:class:`distributed.Client`; the cluster it started is gone when the block exits, however
it exits (success, exception, Ctrl-C, SIGTERM). Backends import their heavy libraries
(``dask_kubernetes``, ``dask_gateway``) only when used.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from gagebench.clusters.base import ClusterBackend, Terminated, opened, sigterm_raises
from gagebench.errors import ClusterError, ConfigError

if TYPE_CHECKING:
    from distributed import Client

    from gagebench.config import RunConfig

#: backend name -> "module:Class". One registry; an unknown name fails loudly.
BACKENDS: dict[str, str] = {
    "local": "gagebench.clusters.local:LocalBackend",
    "address": "gagebench.clusters.address:AddressBackend",
    "gateway": "gagebench.clusters.gateway:GatewayBackend",
    "kubernetes": "gagebench.clusters.kubernetes:KubernetesBackend",
    "auto": "gagebench.clusters.auto:AutoBackend",
}

__all__ = [
    "BACKENDS",
    "ClusterBackend",
    "Terminated",
    "backend_class",
    "check_settings",
    "cluster_client",
    "get_backend",
    "opened",
    "sigterm_raises",
]


def backend_class(name: str) -> type[ClusterBackend]:
    """The backend class registered under ``name``; raise if unknown or not importable."""
    target = BACKENDS.get(name)
    if target is None:
        raise ConfigError(
            f"gagebench.cluster.backend: unknown backend {name!r}; "
            f"choose one of {', '.join(sorted(BACKENDS))}"
        )
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ClusterError(
            f"cluster backend {name!r} cannot be imported ({exc}); reinstall gagebench"
        ) from exc
    cls = getattr(module, attr, None)
    if not (isinstance(cls, type) and issubclass(cls, ClusterBackend)):
        raise ClusterError(f"cluster backend {name!r}: {target} is not a ClusterBackend")
    return cls


def get_backend(cfg: RunConfig, name: str | None = None) -> ClusterBackend:
    """An instance of the configured (or named) backend, its settings validated."""
    return backend_class(name or cfg.cluster.backend)(cfg)


def check_settings(cfg: RunConfig, cluster: bool = True) -> None:
    """Validate every backend section of ``cfg`` (unknown keys, bad values) up front.

    Sections of backends not in use are checked for unknown keys; with ``cluster``, the
    chosen backend is built, so its own checks (sizes, addresses) run before a run writes
    anything.
    """
    for name in cfg.cluster.options:
        if name in BACKENDS and name != cfg.cluster.backend:
            backend_class(name).settings(cfg.cluster.backend_options(name))
    if cluster:
        get_backend(cfg)
    elif cfg.cluster.backend in cfg.cluster.options:
        backend_class(cfg.cluster.backend).settings(cfg.cluster.backend_options())


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
