"""Store engines by name: the built-in ones and those of the ``gagebench.stores`` entry points.

A store's ``engine`` setting names one: ``zarr`` (the default), ``reference`` (kerchunk),
``netcdf`` (h5netcdf), or an engine another package installs, as xarray finds its
backends::

    [project.entry-points."gagebench.stores"]
    mystore = "mypackage.store:MyEngine"

where ``MyEngine`` subclasses :class:`~gagebench.sources.interface.StoreEngine`. A
``reference://`` URL given to the ``zarr`` engine is read as a kerchunk store, as it was
before engines existed.
"""

from __future__ import annotations

import difflib
import threading
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING

from gagebench.errors import ConfigError
from gagebench.sources.interface import StoreEngine

if TYPE_CHECKING:
    from gagebench.config import StoreConfig

#: The entry-point group through which other packages add store engines.
GROUP = "gagebench.stores"

#: The engines gagebench ships: name -> "module:class".
BUILTIN = {
    "zarr": "gagebench.sources.zarrstore:ZarrEngine",
    "reference": "gagebench.sources.zarrstore:ReferenceEngine",
    "netcdf": "gagebench.sources.netcdf:NetCDFEngine",
}

_LOADED: dict[str, StoreEngine] = {}
_LOCK = threading.Lock()


def _entry_points() -> dict[str, EntryPoint]:
    """The installed ``gagebench.stores`` entry points by name (built-in names win)."""
    return {ep.name: ep for ep in entry_points(group=GROUP) if ep.name not in BUILTIN}


def available() -> list[str]:
    """Every engine name a store may give: the built-in ones, then the installed ones."""
    return [*BUILTIN, *sorted(_entry_points())]


def engine(name: str, key: str = "engine") -> StoreEngine:
    """The engine called ``name`` (loaded once per process); ``key`` names the setting.

    Raises :class:`~gagebench.errors.ConfigError` for a name no engine has, listing the
    available ones, and for an entry point that does not load to a StoreEngine.
    """
    with _LOCK:
        found = _LOADED.get(name)
    if found is not None:
        return found
    if name in BUILTIN:
        loaded = EntryPoint(name, BUILTIN[name], GROUP).load()
    else:
        point = _entry_points().get(name)
        if point is None:
            names = available()
            close = difflib.get_close_matches(name, names, n=1)
            guess = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(
                f"gagebench.{key}: unknown store engine {name!r}{guess}; available: "
                f"{', '.join(names)} (more through packages that register a "
                f"{GROUP!r} entry point)"
            )
        try:
            loaded = point.load()
        except Exception as exc:
            raise ConfigError(
                f"gagebench.{key}: the store engine {name!r} ({point.value}) does not load: "
                f"{type(exc).__name__}: {exc}; reinstall the package that provides it"
            ) from exc
    made = loaded() if isinstance(loaded, type) else loaded
    if not isinstance(made, StoreEngine):
        raise ConfigError(
            f"gagebench.{key}: the store engine {name!r} ({BUILTIN.get(name, name)}) is not a "
            "gagebench.sources.interface.StoreEngine; its package must subclass it"
        )
    with _LOCK:
        return _LOADED.setdefault(name, made)


def engine_of(spec: StoreConfig, key: str = "engine") -> StoreEngine:
    """The engine that reads ``spec``: its ``engine`` setting (``zarr`` by default)."""
    return engine(spec.engine or "zarr", key)
