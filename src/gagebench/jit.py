"""numba's ``njit`` with its on-disk cache wherever numba can write one, never a failed import.

numba caches compiled code in ``NUMBA_CACHE_DIR``, beside the source file or in the user's
cache folder (``~/.cache/numba``), and refuses to decorate a ``cache=True`` function when
it can write none of them (a read-only install run by a user whose home is read-only too:
a container with a read-only root file system, an arbitrary uid). gagebench then compiles
its kernels at each start instead (slower to start, same results) and says how to cache.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numba as nb

log = logging.getLogger(__name__)

_warned: list[bool] = []


def njit(**options: Any) -> Callable[[Callable[..., Any]], Any]:
    """``numba.njit(cache=True, **options)``, or without the cache where numba finds no
    folder it can write (a warning, once per process, names ``NUMBA_CACHE_DIR``)."""

    def decorate(func: Callable[..., Any]) -> Any:
        try:
            return nb.njit(cache=True, **options)(func)
        except RuntimeError as exc:
            if "no locator available" not in str(exc):
                raise
            if not _warned:
                _warned.append(True)
                log.warning(
                    "numba finds no folder it can write to cache gagebench's compiled "
                    "kernels (%s): they are compiled at each start instead; set "
                    "NUMBA_CACHE_DIR to a writable folder to cache them",
                    exc,
                )
            return nb.njit(**options)(func)

    return decorate
