"""Which class a ``cluster.backend`` name means: built-ins, entry points, ``module:Class``.

Three ways to name a backend, tried in this order:

- a built-in name (:data:`BUILTIN`: ``local``, ``slurm``, ...), found without any
  package metadata, so an editable or source checkout works as installed;
- a name another package registers in the entry-point group ``gagebench.backends``
  (``[project.entry-points."gagebench.backends"] mine = "pkg.module:MyBackend"``),
  read with :mod:`importlib.metadata`, as xarray finds its engines; a built-in name wins;
- ``module:Class`` written in the setting itself (``cluster.backend: mylab.dask:PBS``),
  for a class on ``sys.path`` that no package registers.

Each resolves to a :class:`~gagebench.clusters.base.ClusterBackend` subclass; its
settings are the section ``cluster.<Class.name>``.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

from gagebench.clusters.base import ClusterBackend
from gagebench.errors import ClusterError, ConfigError

#: The entry-point group other packages register backends in.
ENTRY_POINT_GROUP = "gagebench.backends"

#: The built-in backends: name -> "module:Class" (imported only when used).
BUILTIN: dict[str, str] = {
    "local": "gagebench.clusters.local:LocalBackend",
    "address": "gagebench.clusters.address:AddressBackend",
    "gateway": "gagebench.clusters.gateway:GatewayBackend",
    "kubernetes": "gagebench.clusters.kubernetes:KubernetesBackend",
    "slurm": "gagebench.clusters.slurm:SlurmBackend",
    "auto": "gagebench.clusters.auto:AutoBackend",
}

_KEY = "gagebench.cluster.backend"


def is_target(name: str) -> bool:
    """True for a ``module:Class`` reference (rather than a registered name)."""
    return ":" in name


def registered() -> dict[str, str]:
    """Every backend that has a name: the built-ins, then the entry points' ("module:Class")."""
    found = dict(BUILTIN)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep.value)
    return found


def available() -> str:
    """The names a user can choose, for error messages."""
    return ", ".join(sorted(registered()))


def check_name(name: object) -> None:
    """ConfigError unless ``name`` is a registered backend or looks like ``module:Class``."""
    # built-ins and module:Class first: reading the entry points scans every installed
    # distribution (~20 ms)
    if isinstance(name, str) and (name in BUILTIN or _well_formed(name) or name in registered()):
        return
    raise ConfigError(
        f"{_KEY}: unknown backend {name!r}; choose one of {available()}, or name a backend "
        "class as module:Class (a package can register one in the entry-point group "
        f"{ENTRY_POINT_GROUP!r})"
    )


def _well_formed(target: str) -> bool:
    module, sep, attr = target.partition(":")
    parts = [*module.split("."), *attr.split(".")]
    return bool(sep) and all(p.isidentifier() for p in parts)


def backend_class(name: str) -> type[ClusterBackend]:
    """The class ``name`` means (a registered name or ``module:Class``); raise if none.

    An unknown name lists the available ones; a ``module:Class`` whose module cannot be
    imported names the module and the fix; anything not a ClusterBackend is refused.
    """
    check_name(name)
    if is_target(name):
        cls = _load(name, origin=f"{_KEY} {name!r}", fix=_plugin_fix(name), error=ConfigError)
    elif name in BUILTIN:
        cls = _load(BUILTIN[name], origin=f"cluster backend {name!r}", fix="reinstall gagebench")
    else:
        ep = next(ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name)
        dist = getattr(ep.dist, "name", None) or "the package that registers it"
        cls = _load(
            ep.value,
            origin=f"cluster backend {name!r} (entry point {ENTRY_POINT_GROUP}:{name} of {dist})",
            fix=f"reinstall {dist} or choose another backend",
        )
        if cls.name != name:  # its section is cluster.<name>: the two names must agree
            raise ClusterError(
                f"cluster backend {name!r} (entry point {ENTRY_POINT_GROUP}:{name} of {dist}): "
                f"its class {ep.value} is named {cls.name!r}; the entry point must have the "
                "class's name (its settings section): fix the package's entry point"
            )
    if not cls.name:
        raise ConfigError(
            f"{_KEY}: {name!r} ({cls.__module__}.{cls.__qualname__}) sets no `name`: a backend "
            "class names its settings section cluster.<name> with the class attribute `name`"
        )
    if is_target(name) and cls.name in BUILTIN:
        _check_builtin_section(name, cls)
    return cls


def _check_builtin_section(name: str, cls: type[ClusterBackend]) -> None:
    """A ``module:Class`` named like a built-in gets that built-in's section (with its
    defaults from gagebench.yaml): only a class whose settings accept them may."""
    builtin = _load(
        BUILTIN[cls.name], origin=f"cluster backend {cls.name!r}", fix="reinstall gagebench"
    )
    if not issubclass(cls.Settings, builtin.Settings):
        raise ConfigError(
            f"{_KEY}: {name!r} is named {cls.name!r}, the built-in backend whose section "
            f"cluster.{cls.name} has other settings ({', '.join(builtin.defaults)}): give the "
            "class another `name` (its own section cluster.<name>), or derive its Settings from "
            f"{builtin.Settings.__module__}.{builtin.Settings.__qualname__}"
        )


def _plugin_fix(target: str) -> str:
    module = target.partition(":")[0]
    return (
        f"install the package that provides {module!r} in this environment (and on the "
        "workers), or put its folder on PYTHONPATH"
    )


def _load(
    target: str, origin: str, fix: str, error: type[Exception] = ClusterError
) -> type[ClusterBackend]:
    """Import ``module:Class``; errors (of type ``error``) name ``origin``, the module and
    ``fix``. A user's ``module:Class`` setting is a ConfigError; a broken installation
    (a built-in or an entry point) a ClusterError."""
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise error(
            f"{origin} cannot be imported: module {module_name!r} failed to import "
            f"({type(exc).__name__}: {exc}); {fix}"
        ) from exc
    obj: object = module
    for part in attr.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise error(
                f"{origin}: module {module_name!r} has no attribute {attr!r}; check the "
                "class name after the colon (module:Class)"
            )
    if not (isinstance(obj, type) and issubclass(obj, ClusterBackend)):
        raise error(
            f"{origin}: {target} is not a ClusterBackend (it is {obj!r}); a backend is a "
            "subclass of gagebench.clusters.ClusterBackend"
        )
    return obj
