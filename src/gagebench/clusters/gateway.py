"""``gateway`` backend: a cluster from a dask-gateway server (Pangeo / Nebari hubs).

``dask_gateway.Gateway(...).new_cluster(...)`` with the hub's defaults; our image, env
and worker size are mapped onto the server's cluster options only where the server
offers an option of that name (servers differ: ``image``, ``environment``,
``worker_cores``, ``worker_memory`` are the common ones). Unset = the hub's default.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field, model_validator

from gagebench.clusters.base import ClusterBackend
from gagebench.errors import ClusterError, ConfigError
from gagebench.schema import Expect, GivenMapping, Section, fail, setting

if TYPE_CHECKING:
    from distributed import Client

log = logging.getLogger("gagebench.clusters.gateway")

#: our setting -> the option names gateway servers use for it, first match wins
OPTION_NAMES: dict[str, tuple[str, ...]] = {
    "image": ("image",),
    "env": ("environment", "environment_vars", "env"),
    "worker_cores": ("worker_cores",),
    "worker_memory": ("worker_memory",),
}


def map_options(settings: Mapping[str, Any], offered: Mapping[str, Any]) -> dict[str, Any]:
    """Values for the server's cluster options: ours where offered, unknown ones reported.

    ``offered`` is the server's option set (``Gateway.cluster_options()``, a mapping of
    option name to default). ``cluster_options`` (raw, server-specific) pass through but
    must name options the server offers.
    """
    chosen: dict[str, Any] = {}
    for ours, names in OPTION_NAMES.items():
        value = settings.get(ours)
        if value is None or value == {}:
            continue
        name = next((n for n in names if n in offered), None)
        if name is None:
            log.warning(
                "the dask-gateway server offers no %s option: the hub's default is used",
                " / ".join(names),
            )
            continue
        if ours == "env":
            base = dict(offered.get(name) or {})
            base.update({str(k): str(v) for k, v in value.items()})
            value = base
        chosen[name] = value
    extra = dict(settings.get("cluster_options") or {})
    unknown = sorted(set(extra) - set(offered))
    if unknown:
        raise ConfigError(
            f"gagebench.cluster.gateway.cluster_options: the server offers no option(s) "
            f"{', '.join(unknown)}; it offers {', '.join(sorted(offered)) or 'none'}"
        )
    chosen.update(extra)
    return chosen


def close_gateway(gateway: Any) -> None:
    """Close a ``dask_gateway.Gateway`` for good.

    dask-gateway's ``Gateway.__del__`` calls ``close()`` again, which raises once the
    loop runner has stopped (distributed >= 2025); an exception raised from a finalizer
    during garbage collection can even break CPython 3.11's ``ast`` module state. After
    our close we drop the stopped loop runner, which makes ``__del__`` a no-op.
    """
    gateway.close()
    vars(gateway).pop("_loop_runner", None)


_Text = Annotated[str | None, Field(pattern=r"\S"), Expect("null or a string")]


class GatewayAdapt(Section):
    """Adaptive scaling: both bounds, or neither."""

    minimum: int | None = setting("cluster.gateway.adapt.minimum", ge=0)
    maximum: int | None = setting("cluster.gateway.adapt.maximum", ge=0)

    @model_validator(mode="after")
    def _both(self) -> GatewayAdapt:
        if (self.minimum is None) != (self.maximum is None):
            raise fail("set both minimum and maximum, or neither")
        return self


class GatewaySettings(Section):
    """``cluster.gateway``: a dask-gateway cluster."""

    address: _Text = setting("cluster.gateway.address")
    proxy_address: _Text = setting("cluster.gateway.proxy_address")
    public_address: _Text = setting("cluster.gateway.public_address")
    auth: _Text = setting("cluster.gateway.auth")
    image: _Text = setting("cluster.gateway.image")
    env: GivenMapping = setting("cluster.gateway.env")
    worker_cores: float | None = setting("cluster.gateway.worker_cores", gt=0)
    worker_memory: float | None = setting("cluster.gateway.worker_memory", gt=0)
    cluster_options: GivenMapping = setting("cluster.gateway.cluster_options")
    n_workers: int = setting("cluster.gateway.n_workers", ge=0)
    adapt: GatewayAdapt = setting("cluster.gateway.adapt")
    wait_timeout: Annotated[float, Expect("seconds > 0")] = setting(
        "cluster.gateway.wait_timeout", gt=0
    )


class GatewayBackend(ClusterBackend):
    """A dask-gateway cluster; shut down when the block exits."""

    name = "gateway"
    # new_cluster(): workers of their own, shut down with the run (never a shared cluster)
    started_here = True
    memory_key = "worker_memory"
    Settings = GatewaySettings

    def gateway(self) -> Any:
        """A ``dask_gateway.Gateway`` for the configured (or dask-config/hub) address."""
        try:
            from dask_gateway import Gateway
        except ImportError as exc:
            raise ClusterError(
                "the gateway backend needs dask-gateway: pip install 'gagebench[gateway]'"
            ) from exc
        o = self.options
        try:
            return Gateway(
                address=o["address"],
                proxy_address=o["proxy_address"],
                public_address=o["public_address"],
                auth=o["auth"],
            )
        except ValueError as exc:  # no address in the settings nor in dask's config
            raise ClusterError(
                f"no dask-gateway address: set {self.key('address')} or the "
                f"DASK_GATEWAY__ADDRESS environment variable ({exc})"
            ) from exc

    @contextlib.contextmanager
    def client(self) -> Iterator[Client]:
        gateway = self.gateway()
        try:
            try:
                offered = gateway.cluster_options(use_local_defaults=True)
            except OSError as exc:
                raise ClusterError(
                    f"cannot reach the dask-gateway server at {gateway.address} ({exc})"
                ) from exc
            values = map_options(self.options, dict(offered.items()))
            for key, value in values.items():
                offered[key] = value
            cluster = gateway.new_cluster(cluster_options=offered, shutdown_on_close=True)
            try:
                adapt = self.options["adapt"]
                if adapt.get("minimum") is not None:
                    cluster.adapt(minimum=adapt["minimum"], maximum=adapt["maximum"])
                else:
                    cluster.scale(self.options["n_workers"])
                with cluster.get_client(set_as_default=False) as client:
                    adaptive = adapt.get("minimum") is not None
                    wanted = adapt["minimum"] if adaptive else self.options["n_workers"]
                    first = 1 if wanted > 0 else 0  # adaptive from zero: workers come later
                    if first:
                        try:
                            client.wait_for_workers(first, timeout=self.options["wait_timeout"])
                        except TimeoutError as exc:
                            raise ClusterError(
                                f"no dask-gateway worker joined within "
                                f"{self.options['wait_timeout']} s: the hub may be out of "
                                "capacity or the image cannot start; check the gateway logs"
                            ) from exc
                    yield client
            finally:
                cluster.shutdown()
                close_gateway(cluster.gateway)
        finally:
            close_gateway(gateway)
