"""``auto`` backend: pick the cluster the environment offers.

Order: an existing scheduler (``address`` setting or ``DASK_SCHEDULER_ADDRESS``) ->
dask-gateway when configured (``gateway.address`` setting or dask config
``gateway.address``, i.e. ``DASK_GATEWAY__ADDRESS``, as Pangeo/Nebari hubs set) ->
the dask-kubernetes operator when running in a pod whose API has the DaskCluster CRD ->
a LocalCluster.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar

import dask.config

from gagebench.clusters.base import ClusterBackend

if TYPE_CHECKING:
    from distributed import Client

log = logging.getLogger("gagebench.clusters.auto")


def gateway_configured(cfg: Any) -> bool:
    """True when a dask-gateway address is set in our settings or dask's config."""
    if cfg.cluster.backend_options("gateway").get("address"):
        return True
    return bool(dask.config.get("gateway.address", default=None))


def crd_reachable(namespace: str) -> bool:
    """True when the Kubernetes API answers a list of DaskClusters in ``namespace``.

    Any failure to ask (no credentials, no network, CRD not installed: 404, RBAC: 403)
    means "no": auto then falls through to a LocalCluster, and logs why.
    """
    try:
        import kr8s

        from gagebench.clusters.kubernetes import _daskcluster_class

        list(kr8s.api().get(_daskcluster_class(), namespace=namespace))  # a lazy generator
    except Exception as exc:  # the question is "can we use it", not "why not"
        log.warning("not using the kubernetes backend: %s: %s", type(exc).__name__, exc)
        return False
    return True


def choose(cfg: Any) -> str:
    """The backend name auto resolves to in this environment."""
    from gagebench.clusters.address import env_address
    from gagebench.clusters.kubernetes import KubernetesBackend, in_pod

    if cfg.cluster.backend_options("address").get("address") or env_address():
        return "address"
    if gateway_configured(cfg):
        return "gateway"
    if in_pod():
        try:
            import dask_kubernetes  # noqa: F401
        except ImportError:
            log.warning("in a pod, but gagebench[kubernetes] is not installed: local cluster")
            return "local"
        if crd_reachable(KubernetesBackend(cfg).namespace()):
            return "kubernetes"
    return "local"


class AutoBackend(ClusterBackend):
    """Delegates to the backend :func:`choose` picks; that backend owns teardown."""

    name = "auto"
    defaults: ClassVar[dict[str, Any]] = {}

    @contextlib.contextmanager
    def client(self) -> Iterator[Client]:
        from gagebench.clusters import get_backend

        chosen = choose(self.cfg)
        log.info("cluster backend auto -> %s", chosen)
        with get_backend(self.cfg, chosen).client() as client:
            yield client
