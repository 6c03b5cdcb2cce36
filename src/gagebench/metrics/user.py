"""User-defined metrics: ``@gagebench.metric("name")`` and ``metrics:`` in run files.

A user metric is a function ``f(obs, sim) -> float`` over the paired days of one gage
(1-D float64 arrays, the days where both values are finite: the engine's pairing), a
numba-jitted function included; or, registered with ``vectorized=True``, a function over
a batch (two ``(gage, day)`` float64 arrays, NaN where a day is not paired) returning
one value per gage. Its column follows the suites' columns. A metric that raises or
returns something other than a finite number for a gage leaves that gage's value NaN,
and the row's note names the metric and why (a bad gage is a row, never a failed run).

In run files a metric is named by its import path, ``package.module:function``: the
workers import the module (the image or environment provides it); its column is the
function's name.
"""

from __future__ import annotations

import importlib
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gagebench.errors import InputError

#: ``package.module:function``: how a run file names a user metric.
PATH_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class UserMetric:
    """A registered user metric: its column name, function and how to rank it.

    ``higher_is_better`` and ``optimal`` let ``compare`` and the report rank it (None:
    unknown, so it is not ranked); ``vectorized`` says ``function`` takes the batch.
    """

    name: str
    function: Callable[..., Any]
    higher_is_better: bool | None = None
    optimal: float | None = None
    vectorized: bool = False
    path: str | None = None


#: Metrics registered in this process, by column name.
REGISTRY: dict[str, UserMetric] = {}
#: Metrics imported by path in this process (run files), by column name.
IMPORTED: dict[str, UserMetric] = {}


def metric(
    name: str,
    *,
    higher_is_better: bool | None = None,
    optimal: float | None = None,
    vectorized: bool = False,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``f(obs, sim) -> float`` as the user metric ``name`` (a decorator).

    Registering a name again replaces the earlier function (a notebook cell run twice).
    See :doc:`/user-guide/user-metrics`.

    Parameters
    ----------
    name
        Its column in the results (letters, digits, ``_``; not a built-in column).
    higher_is_better
        True for a skill score, False for an error; how ``gagebench.compare`` ranks it
        (None: unknown, it cannot be compared).
    optimal
        Its best value (e.g. 1.0 or 0.0), recorded for readers of the results.
    vectorized
        False: ``f`` gets one gage's paired days (1-D float64, no NaN). True: ``f`` gets
        the batch, ``(gage, day)`` float64 with NaN where a day is not paired, and returns
        one value per gage.

    Returns
    -------
    callable
        The decorator; it returns the function as it is (numba-jitted ones too).

    Examples
    --------
    >>> import numpy as np, gagebench
    >>> @gagebench.metric("peak_error", higher_is_better=False, optimal=0.0)
    ... def peak_error(obs, sim):
    ...     return float(abs(sim.max() - obs.max()))
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise InputError(
            f"a user metric's name must be a Python-identifier-like column name "
            f"(letters, digits, _), got {name!r}"
        )
    if higher_is_better is not None and not isinstance(higher_is_better, bool):
        raise InputError(f"higher_is_better must be True, False or None, got {higher_is_better!r}")

    def register(function: Callable[..., Any]) -> Callable[..., Any]:
        if not callable(function):
            raise InputError(f"@gagebench.metric({name!r}) decorates {function!r}: not callable")
        REGISTRY[name] = UserMetric(
            name, function, higher_is_better, None if optimal is None else float(optimal),
            bool(vectorized),
        )  # fmt: skip
        return function

    return register


def import_metric(path: str) -> UserMetric:
    """The metric named by ``package.module:function``, importing its module.

    Its column is the function's name; a function registered with ``@gagebench.metric``
    keeps its options (``higher_is_better``, ``optimal``, ``vectorized``).
    """
    if not isinstance(path, str) or not re.match(PATH_PATTERN, path):
        raise InputError(
            f"user metric {path!r}: name it as package.module:function (an import path)"
        )
    module_name, _, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # an ImportError, or the module itself failing on import
        raise InputError(
            f"user metric {path!r}: cannot import the module {module_name!r} "
            f"({type(exc).__name__}: {exc}); install it in the environment (the image) or "
            "put its folder on PYTHONPATH"
        ) from exc
    function = getattr(module, attr, None)
    if function is None or not callable(function):
        raise InputError(
            f"user metric {path!r}: the module {module_name!r} has no function {attr!r}"
        )
    known = next((m for m in REGISTRY.values() if m.function is function), None)
    if known is None:
        found = UserMetric(attr, function, path=path)
    else:
        found = UserMetric(
            attr, function, known.higher_is_better, known.optimal, known.vectorized, path
        )
    IMPORTED[attr] = found
    return found


def resolve(
    specs: Iterable[str | UserMetric], reserved: Iterable[str] = ()
) -> tuple[UserMetric, ...]:
    """The metrics named by ``specs``: registered names or ``module:function`` paths.

    ``reserved`` (the built-in columns) may not be taken; an unknown name is an
    :class:`~gagebench.InputError` listing the registered ones.
    """
    taken = set(reserved)
    out: list[UserMetric] = []
    for spec in specs:
        if isinstance(spec, str) and spec in taken:
            found = UserMetric(spec, lambda o, s: np.nan)  # refused just below
        elif isinstance(spec, UserMetric):
            found = spec
        elif isinstance(spec, str) and ":" in spec:
            found = import_metric(spec)
        elif isinstance(spec, str) and spec in REGISTRY:
            found = REGISTRY[spec]
        else:
            raise InputError(
                f"unknown user metric {spec!r}: register it with @gagebench.metric({spec!r}) "
                f"or name it as package.module:function; registered: {sorted(REGISTRY) or 'none'}"
            )
        if found.name in taken:
            raise InputError(
                f"user metric {found.name!r} has the name of a built-in column or of another "
                f"metric of this evaluation: register it under another name "
                f"(registered: {sorted(REGISTRY) or 'none'})"
            )
        taken.add(found.name)
        out.append(found)
    return tuple(out)


def higher_is_better(name: str) -> bool | None:
    """How a user metric of this process ranks (registered, or imported by path): True
    or False, None when unknown or not a user metric."""
    found = REGISTRY.get(name) or IMPORTED.get(name)
    return None if found is None else found.higher_is_better


def import_quietly(paths: Iterable[Any]) -> None:
    """Import the run-file metrics ``paths`` that this process can (a run's manifest), so
    their ranking is known; those it cannot are left out."""
    for path in paths:
        try:
            import_metric(str(path))
        except InputError:
            continue


def names_of(paths: Sequence[str]) -> tuple[str, ...]:
    """The columns of run-file metrics (``module:function`` -> ``function``), no import."""
    return tuple(str(p).rpartition(":")[2] for p in paths)


def check_importable(paths: Sequence[str]) -> dict[str, str]:
    """On a worker: ``{path: problem}`` for each metric path it cannot import (empty: all
    import). Run with ``client.run`` once at the start of a run."""
    problems = {}
    for path in paths:
        try:
            import_metric(path)
        except InputError as exc:
            problems[path] = f"{exc} (sys.path: {sys.path[:6]})"
    return problems


def compute(
    metrics: Sequence[UserMetric], obs: np.ndarray, sim: np.ndarray, rows: np.ndarray
) -> tuple[np.ndarray, list[list[str]]]:
    """Each metric on each gage of ``rows``: ``(values (gage, metric), notes per gage)``.

    Gages outside ``rows`` (not scored) are NaN without a note. A day is paired where
    both values are finite (infinite flows are missing, as in the engine).
    """
    n = obs.shape[0]
    values = np.full((n, len(metrics)), np.nan)
    notes: list[list[str]] = [[] for _ in range(n)]
    if not len(metrics) or not rows.size:
        return values, notes
    obs = np.asarray(obs, dtype=np.float64)
    sim = np.asarray(sim, dtype=np.float64)
    paired = np.isfinite(obs) & np.isfinite(sim)
    for k, m in enumerate(metrics):
        if m.vectorized:
            _vectorized(m, obs, sim, paired, rows, values[:, k], notes)
            continue
        for g in rows:
            keep = paired[g]
            try:
                got = m.function(
                    np.ascontiguousarray(obs[g, keep]), np.ascontiguousarray(sim[g, keep])
                )
            except Exception as exc:  # user code: any failure is this gage's note
                notes[g].append(f"metric {m.name!r} raised {type(exc).__name__}: {exc}")
                continue
            values[g, k] = _scalar(m.name, got, notes[g])
    return values, notes


def _scalar(name: str, value: Any, note: list[str]) -> float:
    """A metric's return value as a float, or NaN with a note saying what it was."""
    if np.ndim(value) != 0 or isinstance(value, (str, bytes)):
        note.append(f"metric {name!r} returned {type(value).__name__}, not one number")
        return np.nan
    try:
        number = float(value)
    except (TypeError, ValueError):
        note.append(f"metric {name!r} returned {type(value).__name__}, not a number")
        return np.nan
    if not np.isfinite(number):
        note.append(f"metric {name!r} undefined ({number})")
        return np.nan
    return number


def _vectorized(
    m: UserMetric,
    obs: np.ndarray,
    sim: np.ndarray,
    paired: np.ndarray,
    rows: np.ndarray,
    out: np.ndarray,
    notes: list[list[str]],
) -> None:
    """A vectorized metric over the scored gages at once (NaN where not paired)."""
    o = np.where(paired[rows], obs[rows], np.nan)
    s = np.where(paired[rows], sim[rows], np.nan)
    try:
        got = np.asarray(m.function(o, s), dtype=np.float64)
        if got.shape != (rows.size,):
            raise ValueError(f"returned shape {got.shape}, expected ({rows.size},): one per gage")
    except Exception as exc:  # user code: the batch's gages get the note
        for g in rows:
            notes[g].append(f"metric {m.name!r} raised {type(exc).__name__}: {exc}")
        return
    out[rows] = got
    for g in rows[~np.isfinite(got)]:
        out[g] = np.nan
        notes[g].append(f"metric {m.name!r} undefined")
