"""``address`` backend: connect to a scheduler someone else runs (e.g. a DaskJob's).

The address comes from ``gagebench.cluster.address.address`` or, when that is null, the
``DASK_SCHEDULER_ADDRESS`` environment variable (set by the dask-kubernetes DaskJob).
Teardown closes only our client: the scheduler is not ours to shut down.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import field_validator

from gagebench.clusters.base import ClusterBackend
from gagebench.errors import ClusterError, ConfigError
from gagebench.schema import Expect, Section, fail, setting

if TYPE_CHECKING:
    from distributed import Client

ENV_VAR = "DASK_SCHEDULER_ADDRESS"


def env_address() -> str | None:
    """The scheduler address from the environment, or None when unset or blank."""
    value = os.environ.get(ENV_VAR, "").strip()
    return value or None


def _address_ok(address: Any) -> bool:
    """A scheduler address distributed can dial: ``[scheme://]host:port`` for tcp/tls."""
    from distributed.comm.addressing import parse_address, parse_host_port

    if not isinstance(address, str) or not address.strip():
        return False
    try:
        scheme, location = parse_address(address.strip())
        if scheme in ("tcp", "tls"):
            host, port = parse_host_port(location)
            return bool(host) and 0 < int(port) < 65536
    except (ValueError, TypeError):
        return False
    return True


_ADDRESS = "a scheduler address like tcp://scheduler:8786"


class AddressSettings(Section):
    """``cluster.address``: an existing scheduler."""

    address: Annotated[str | None, Expect(_ADDRESS)] = setting("cluster.address.address")
    timeout: Annotated[float, Expect("seconds > 0")] = setting("cluster.address.timeout", gt=0)

    @field_validator("address", mode="before")
    @classmethod
    def _dialable(cls, value: Any) -> Any:
        if value is not None and not _address_ok(value):
            raise fail(f"expected {_ADDRESS}, got {value!r}")
        return value


class AddressBackend(ClusterBackend):
    """A client of an existing scheduler; never shuts that scheduler down."""

    name = "address"
    started_here = False  # someone else's scheduler and workers: never tuned
    Settings = AddressSettings

    @property
    def address(self) -> str:
        """The configured address, else ``DASK_SCHEDULER_ADDRESS``; raise if neither."""
        address = self.options["address"] or env_address()
        if not address:
            raise ConfigError(
                f"{self.key('address')} is not set and {ENV_VAR} is empty: give the "
                "scheduler address (tcp://host:8786) or choose another cluster backend"
            )
        if not _address_ok(address):
            raise ConfigError(
                f"{ENV_VAR}={address!r} is not a scheduler address like tcp://scheduler:8786"
            )
        return str(address).strip()

    @contextlib.contextmanager
    def client(self) -> Iterator[Client]:
        from distributed import Client

        address = self.address
        try:
            client = Client(address, timeout=self.options["timeout"], set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            raise ClusterError(
                f"cannot reach the Dask scheduler at {address} within "
                f"{self.options['timeout']} s ({exc}); check the address, that the "
                f"scheduler is running and that this machine can reach it "
                f"(set {self.key('address')} or {ENV_VAR})"
            ) from exc
        with client:
            yield client
