"""``auto`` backend: pick the cluster the environment offers.

Order: an existing scheduler (``address`` setting or ``DASK_SCHEDULER_ADDRESS``) ->
dask-gateway when configured (``gateway.address`` setting or dask config
``gateway.address``, i.e. ``DASK_GATEWAY__ADDRESS``, as Pangeo/Nebari hubs set) ->
the dask-kubernetes operator when running in a pod whose API has the DaskCluster CRD ->
a LocalCluster, only when none of these is detected. A backend that is detected but
cannot be used (e.g. RBAC forbids listing DaskClusters) is an error that says what to
fix, not a silent fall back to a LocalCluster in the pod. The choice and its reason are
logged.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import dask.config

from gagebench.clusters.base import ClusterBackend
from gagebench.errors import ClusterError

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

    False only when the DaskCluster CRD is not installed (404): no operator, so no
    kubernetes backend here. Any other known failure to ask (RBAC 403, no credentials,
    the API unreachable) raises a ClusterError that says what to fix or which backend to
    set; anything else (a bug) propagates as itself.
    """
    import kr8s

    from gagebench.clusters._kubeerrors import crd_missing, translate
    from gagebench.clusters.kubernetes import _daskcluster_class

    try:
        list(kr8s.api().get(_daskcluster_class(), namespace=namespace))  # a lazy generator
    except Exception as exc:
        if crd_missing(exc):
            return False
        error = translate(exc, namespace=namespace, name="(auto)")
        if error is None:
            raise
        raise ClusterError(
            f"cluster.backend=auto: running in a Kubernetes pod with gagebench[kubernetes], "
            f"but the DaskCluster API cannot be used: {error}. Fix that, or choose the "
            f"backend (e.g. --set cluster.backend=local)"
        ) from exc
    return True


def detect(cfg: Any) -> tuple[str, str]:
    """The backend auto resolves to in this environment, and why."""
    from gagebench.clusters.address import env_address
    from gagebench.clusters.kubernetes import KubernetesBackend, in_pod

    if cfg.cluster.backend_options("address").get("address"):
        return "address", "cluster.address.address is set"
    if env_address():
        return "address", "DASK_SCHEDULER_ADDRESS is set"
    if gateway_configured(cfg):
        return "gateway", "a dask-gateway address is configured"
    if in_pod():
        try:
            import dask_kubernetes  # noqa: F401
        except ImportError:
            return "local", "in a Kubernetes pod, but gagebench[kubernetes] is not installed"
        namespace = KubernetesBackend(cfg).namespace()
        if crd_reachable(namespace):
            return "kubernetes", f"in a Kubernetes pod; DaskClusters can be listed in {namespace!r}"
        return "local", "in a Kubernetes pod, but the DaskCluster CRD is not installed"
    return "local", "no scheduler address, dask-gateway or Kubernetes pod detected"


def choose(cfg: Any) -> str:
    """The backend name auto resolves to in this environment."""
    return detect(cfg)[0]


class AutoBackend(ClusterBackend):
    """Delegates to the backend :func:`choose` picks; that backend owns teardown."""

    name = "auto"
    #: auto starts nothing itself; the chosen backend's own flag decides (see ``opened``).
    started_here = False

    @contextlib.contextmanager
    def client(self) -> Iterator[Client]:
        from gagebench.clusters import get_backend, opened

        chosen, why = detect(self.cfg)
        log.info("cluster backend auto -> %s (%s)", chosen, why)
        with opened(get_backend(self.cfg, chosen)) as client:
            yield client
