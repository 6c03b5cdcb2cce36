"""The one interface every cluster backend implements, and the teardown guard they share.

A backend reads and validates its own settings (``cfg.cluster.backend_options(name)``)
and yields a :class:`distributed.Client` from :meth:`ClusterBackend.client`; whatever
it started, it stops when the context exits - on success, on an exception, on Ctrl-C and
on SIGTERM (see :func:`sigterm_raises`).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, create_model

from gagebench.schema import Section, validated

if TYPE_CHECKING:
    from distributed import Client

    from gagebench.config import RunConfig


class ClusterBackend:
    """Base class of the backends: validated settings in, a client with teardown out.

    Subclasses set :attr:`name` and :attr:`Settings` and implement :meth:`client`.

    :attr:`Settings` is a pydantic model of the backend's section ``cluster.<name>``
    (subclass :class:`gagebench.schema.Section`: unknown keys refused, strict types),
    each field declared with :func:`gagebench.schema.setting` so its default and help
    come from ``gagebench.yaml``'s ``cluster.<name>`` (a plugin backend, whose keys are
    not in that file, gives its fields plain defaults and descriptions; a plugin that
    writes only ``defaults`` gets a model of those keys, of any type). :meth:`settings`
    validates a section through it; the run file's JSON Schema includes it for a built-in
    backend (a plugin's section is let through there, and checked here when it loads).
    """

    name: ClassVar[str] = ""
    #: The backend's settings: one field per key of ``cluster.<name>``.
    Settings: ClassVar[type[BaseModel]] = Section
    #: Every accepted key with its default (derived from :attr:`Settings`).
    defaults: ClassVar[Mapping[str, Any]] = MappingProxyType({})
    #: True when :meth:`client` starts the workers itself (and stops them on exit), so
    #: they run only this run's tasks and may be tuned (:mod:`gagebench.tuning`). False
    #: for clusters someone else runs or shares: nothing process-wide is changed there.
    started_here: ClassVar[bool] = False
    #: The setting (under this backend's section) that sizes a worker's memory, named
    #: when workers run out of memory (:mod:`gagebench.workermemory`); None: not ours.
    memory_key: ClassVar[str | None] = None

    def __init__(self, cfg: RunConfig) -> None:
        self.cfg = cfg
        self.options = self.settings(cfg.cluster.backend_options(self.name))

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = cls.__dict__
        if "defaults" in own and "Settings" not in own:
            # a plugin's shortcut: only ``defaults`` (key -> default) written, so its keys
            # are known (unknown ones refused) but their types are the backend's to check
            fields: dict[str, Any] = {key: (Any, value) for key, value in own["defaults"].items()}
            cls.Settings = create_model(f"{cls.__name__}Settings", __base__=Section, **fields)
        cls.defaults = MappingProxyType(
            {
                key: info.get_default(call_default_factory=True)
                for key, info in cls.Settings.model_fields.items()
            }
        )

    @classmethod
    def settings(cls, raw: Mapping[str, Any]) -> dict[str, Any]:
        """Defaults overlaid by ``raw`` (a mapping default one level deep: ``adapt:
        {minimum: 2}`` keeps ``maximum``), checked by :attr:`Settings`: an unknown key or
        a bad value raises a ConfigError naming ``gagebench.cluster.<name>.<key>``."""
        merged = {k: _copy(v) for k, v in cls.defaults.items()}
        for key, value in raw.items():
            if not isinstance(value, Mapping) or not isinstance(merged.get(key), dict):
                # null, or not a mapping (adapt: true): as given, for Settings to judge
                merged[key] = _copy(value)
            else:
                merged[key] = {**merged[key], **_copy(value)}
        validated(cls.Settings, merged, f"cluster.{cls.name}")
        return merged

    def client(self) -> AbstractContextManager[Client]:
        """Start (or reach) the cluster and yield a connected client; tear down on exit."""
        raise NotImplementedError

    def key(self, sub: str) -> str:
        """The dotted config key of one of this backend's settings, for error messages."""
        return f"gagebench.cluster.{self.name}.{sub}"

    @classmethod
    def memory_setting(cls) -> str | None:
        """The dotted key of :attr:`memory_key` (``gagebench.cluster.local.memory_limit``)."""
        return None if cls.memory_key is None else f"gagebench.cluster.{cls.name}.{cls.memory_key}"


@contextlib.contextmanager
def opened(backend: ClusterBackend) -> Iterator[Client]:
    """``backend.client()``, its workers tuned only when the backend started them.

    The worker tuning (:class:`gagebench.tuning.WorkerTuning`) is opt-in per backend
    (:attr:`ClusterBackend.started_here`): a scheduler given by address may run other
    users' work, whose processes it must not change.
    """
    with backend.client() as client:
        if backend.started_here:
            from gagebench.tuning import tune_workers

            tune_workers(client)
        yield client


def _copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _copy(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_copy(v) for v in value]
    return value


class Terminated(SystemExit):
    """Raised in the main thread when the process receives SIGTERM, so cleanup runs."""

    def __init__(self) -> None:
        super().__init__(128 + signal.SIGTERM)


@contextlib.contextmanager
def sigterm_raises() -> Iterator[None]:
    """Turn SIGTERM into a :class:`Terminated` exception for the duration of the block.

    Kubernetes sends SIGTERM when a Job is deleted or a pod evicted; the default action
    kills the process without running ``finally`` blocks, leaving the cluster behind.
    Raising instead unwinds every context manager. Only the main thread can install
    handlers; elsewhere this is a no-op. The previous handler is restored on exit.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _raise(signum: int, frame: object) -> None:
        # Ignore further SIGTERMs while we tear down, so cleanup is not interrupted twice.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
