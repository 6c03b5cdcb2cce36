"""One function per metric for a single pair of series, as hydroeval's objective functions.

``gagebench.metrics.nse(obs, sim)`` and its siblings score one observed and one simulated
series of daily flows with the engine's own kernels (the series become a batch of one
gage), so they give exactly the values of a run or of :func:`gagebench.evaluate`:

>>> from gagebench.metrics import kge, nse
>>> nse([1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 5.0])
0.8
>>> round(kge([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]), 12)
1.0

The series are paired by position (for pandas or xarray objects matched by date and gage,
use :func:`gagebench.evaluate`); a day where either value is NaN (or infinite) is dropped
from both. A series with fewer than 2 paired days, or a metric undefined for the data (NSE
of a constant observed series), gives NaN. ``mode`` is ``"standard"`` or ``"hytest"``
(HyTEST's notebooks, quirks included); only logNSE and the flow-duration-curve biases
differ (docs: Metric definitions).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import numpy as np
import numpy.typing as npt

from gagebench.defaults import default
from gagebench.errors import InputError
from gagebench.metrics.engine import evaluate_arrays
from gagebench.metrics.registry import DSCORE_COLUMNS, HYTEST_SUITES, METRICS, MetricInfo


class MetricFunction(Protocol):
    """A one-series metric function: ``nse(observed, simulated, *, mode="standard")``."""

    __name__: str
    __qualname__: str

    def __call__(
        self, observed: npt.ArrayLike, simulated: npt.ArrayLike, *, mode: str = default("mode")
    ) -> float: ...


class DatedMetricFunction(Protocol):
    """A one-series metric that needs the dates of the days (the benchmark suite's):
    ``kge_bench(observed, simulated, time, *, mode="standard")``."""

    __name__: str
    __qualname__: str

    def __call__(
        self,
        observed: npt.ArrayLike,
        simulated: npt.ArrayLike,
        time: npt.ArrayLike,
        *,
        mode: str = default("mode"),
    ) -> float: ...


# Dates for the D-score metrics that do not depend on the season (mse, e_bias, e_dist,
# e_seq): the engine wants dates whenever it computes the D-score suite.
_ANY_START = np.datetime64("2000-01-01", "D")


def _pair(observed: npt.ArrayLike, simulated: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    obs = np.asarray(observed)
    sim = np.asarray(simulated)
    for label, arr in (("observed", obs), ("simulated", sim)):
        if arr.ndim != 1:
            raise InputError(
                f"{label} must be one series (1-D), got {arr.ndim}-D: for several gages use "
                "gagebench.evaluate"
            )
    if obs.shape != sim.shape:
        raise InputError(
            f"observed has {obs.size} days but simulated has {sim.size}: pass the same days"
        )
    return obs[None, :], sim[None, :]


def _scores(
    observed: npt.ArrayLike,
    simulated: npt.ArrayLike,
    suite: str,
    mode: str,
    time: npt.ArrayLike | None = None,
) -> dict[str, float]:
    obs, sim = _pair(observed, simulated)
    if suite == "dscore" and time is None:
        time = _ANY_START + np.arange(obs.shape[1])
    result = evaluate_arrays(obs, sim, time, suites=(suite,), mode=mode, min_days=2)
    return {name: float(v) for name, v in zip(result.columns, result.values[0], strict=True)}


def dscore(
    observed: npt.ArrayLike,
    simulated: npt.ArrayLike,
    time: npt.ArrayLike,
    *,
    mode: str = default("mode"),
) -> dict[str, float]:
    """Every D-score component (``mse``, ``e_bias``, ``e_dist``, ``e_seq``, the seasons
    ``winter`` .. ``fall`` and the flow quarters ``low`` .. ``high``) of one series.

    ``time``: the daily dates of the days (the seasons need them). With
    ``e = ln max(s, 0.01) - ln max(o, 0.01)``, a season's or quarter's value is
    ``sum(e^2 over its days) / n``: the four seasons, and the four quarters, each sum to
    ``mse``. Hodson et al. (2021), doi:10.1029/2021MS002681.
    """
    scores = _scores(observed, simulated, "dscore", mode, time)
    return {name: scores[name] for name in DSCORE_COLUMNS}


def _interval(info: MetricInfo) -> str:
    low = "(-inf" if info.lower == -np.inf else f"[{info.lower:g}"
    high = "inf)" if info.upper == np.inf else f"{info.upper:g}]"
    return f"{low}, {high}"


def _docstring(info: MetricInfo) -> str:
    """A metric function's docstring, from its registry entry (numpydoc, for the API page)."""
    note = f"\n\n{info.note}" if info.note else ""
    time = (
        "\ntime : array_like\n    The daily dates of the days (the calendar days of the benchmark)."
        if info.dated
        else ""
    )
    mode = (
        'mode : {"standard", "hytest"}\n    ``"hytest"`` reproduces HyTEST\'s notebooks, quirks '
        "included (docs: Metric definitions).\n"
        if info.suite in HYTEST_SUITES
        else 'mode : {"standard"}\n    ``"standard"`` only: HyTEST defines no such metric, so '
        '``"hytest"`` mode refuses it.\n'
    )
    return f"""{info.title} (``{info.name}``): ``{info.formula}``; optimal {info.optimal:g},
range {_interval(info)}.{note}

{info.reference}.

Parameters
----------
observed : array_like
    Daily observed flows of one gage (1-D).
simulated : array_like
    Daily simulated flows on the same days, paired with ``observed`` by position.{time}
{mode}
Returns
-------
float
    The ``{info.name}`` column of :func:`gagebench.evaluate` for this series; NaN when
    fewer than 2 days pair or the metric is undefined for the data.
"""


def metric_function(info: MetricInfo) -> MetricFunction:
    """The one-series function of a registry metric (named ``info.function``)."""
    if info.function is None:
        raise ValueError(f"the registry gives {info.name} no function name")
    suite, name = info.suite, info.name
    if info.dated:

        def dated(
            observed: npt.ArrayLike,
            simulated: npt.ArrayLike,
            time: npt.ArrayLike,
            *,
            mode: str = default("mode"),
        ) -> float:
            return _scores(observed, simulated, suite, mode, time)[name]

        dated.__name__ = dated.__qualname__ = info.function
        dated.__doc__ = _docstring(info)
        return dated  # type: ignore[return-value]

    def function(
        observed: npt.ArrayLike, simulated: npt.ArrayLike, *, mode: str = default("mode")
    ) -> float:
        return _scores(observed, simulated, suite, mode)[name]

    function.__name__ = function.__qualname__ = info.function
    function.__doc__ = _docstring(info)
    return function


#: The function of each registry metric that names one (``MetricInfo.function``), in
#: registry order; the seasonal D-score components come from :func:`dscore`.
FUNCTIONS: dict[str, MetricFunction] = {
    m.function: metric_function(m) for m in METRICS if m.function is not None
}
globals().update(FUNCTIONS)
__all__ = [*FUNCTIONS, "dscore"]

if TYPE_CHECKING:
    # The functions above are made at import, so a type checker cannot see their names:
    # it types this module's other attributes as metric functions (PEP 562). test_metrics_
    # registry.py checks that each registry function is here, typed and documented.
    def __getattr__(name: str) -> MetricFunction: ...

    # the benchmark suite's functions take the dates too (MetricInfo.dated)
    kge_bench: DatedMetricFunction
    nse_bench: DatedMetricFunction
    kge_skill: DatedMetricFunction
    nse_skill: DatedMetricFunction
