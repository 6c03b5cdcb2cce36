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

import numpy as np
import numpy.typing as npt

from gagebench.errors import InputError
from gagebench.metrics.engine import evaluate_arrays
from gagebench.metrics.registry import DSCORE_COLUMNS

#: The function of each registry metric that needs no dates (the seasonal D-score
#: components come from :func:`dscore`).
__all__ = [
    "dscore",
    "e_bias",
    "e_dist",
    "e_seq",
    "kge",
    "log_nse",
    "mse",
    "nse",
    "pbias",
    "pbias_fhv",
    "pbias_flv",
    "pbias_fms",
    "pearson",
    "rsd",
    "spearman",
]

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


def nse(observed: npt.ArrayLike, simulated: npt.ArrayLike, *, mode: str = "standard") -> float:
    """Nash-Sutcliffe efficiency: ``1 - mean((s - o)^2) / var(o)``; optimal 1, range (-inf, 1].

    Nash & Sutcliffe (1970), doi:10.1016/0022-1694(70)90255-6.
    """
    return _scores(observed, simulated, "standard", mode)["NSE"]


def kge(observed: npt.ArrayLike, simulated: npt.ArrayLike, *, mode: str = "standard") -> float:
    """Kling-Gupta efficiency: ``1 - sqrt((r - 1)^2 + (sd_s/sd_o - 1)^2 + (sum s/sum o - 1)^2)``
    with ``r`` Pearson's correlation; optimal 1, range (-inf, 1].

    Gupta et al. (2009), doi:10.1016/j.jhydrol.2009.08.003.
    """
    return _scores(observed, simulated, "standard", mode)["KGE"]


def log_nse(observed: npt.ArrayLike, simulated: npt.ArrayLike, *, mode: str = "standard") -> float:
    """NSE of the logs: NSE of ``ln max(o, 0.01)`` and ``ln max(s, c)``, ``c`` 0.01 (standard)
    or 0.1 (hytest); optimal 1, range (-inf, 1].

    Nash & Sutcliffe (1970), doi:10.1016/0022-1694(70)90255-6.
    """
    return _scores(observed, simulated, "standard", mode)["logNSE"]


def pbias(observed: npt.ArrayLike, simulated: npt.ArrayLike, *, mode: str = "standard") -> float:
    """Percent bias: ``100 * sum(s - o) / sum(o)`` (positive: the model over-predicts);
    optimal 0, range [-100, inf).

    Gupta et al. (2009), doi:10.1016/j.jhydrol.2009.08.003.
    """
    return _scores(observed, simulated, "standard", mode)["pbias"]


def rsd(observed: npt.ArrayLike, simulated: npt.ArrayLike, *, mode: str = "standard") -> float:
    """Ratio of standard deviations: ``sd(s) / sd(o)`` (population, ddof=0); optimal 1.

    The variability term of KGE: Gupta et al. (2009), doi:10.1016/j.jhydrol.2009.08.003.
    """
    return _scores(observed, simulated, "standard", mode)["rSD"]


def pearson(observed: npt.ArrayLike, simulated: npt.ArrayLike, *, mode: str = "standard") -> float:
    """Pearson correlation ``cov(o, s) / (sd(o) sd(s))``; optimal 1, range [-1, 1].

    The correlation term of KGE: Gupta et al. (2009), doi:10.1016/j.jhydrol.2009.08.003.
    """
    return _scores(observed, simulated, "standard", mode)["pearson"]


def spearman(observed: npt.ArrayLike, simulated: npt.ArrayLike, *, mode: str = "standard") -> float:
    """Spearman rank correlation: Pearson correlation of the average ranks of ``o`` and
    ``s`` (ties averaged, as ``scipy.stats.rankdata``); optimal 1, range [-1, 1].

    As in HyTEST's standard suite, after Gupta et al. (2009),
    doi:10.1016/j.jhydrol.2009.08.003.
    """
    return _scores(observed, simulated, "standard", mode)["spearman"]


def pbias_fms(
    observed: npt.ArrayLike, simulated: npt.ArrayLike, *, mode: str = "standard"
) -> float:
    """Percent bias of the flow-duration curve's mid-segment slope: ``100 (m - o') / o'``,
    ``m`` the difference of ``ln s`` between exceedance 0.2 and 0.7 on the simulated
    curve and ``o'`` likewise for ``o`` (how each mode reads the curve is in the docs'
    Metric definitions); optimal 0.

    Yilmaz et al. (2008), doi:10.1029/2007WR006716.
    """
    return _scores(observed, simulated, "standard", mode)["pBiasFMS"]


def pbias_flv(
    observed: npt.ArrayLike, simulated: npt.ArrayLike, *, mode: str = "standard"
) -> float:
    """Percent bias of the flow-duration curve's low-flow segment volume:
    ``-100 (m - o') / o'`` with ``m = sum(ln s_(j) - ln s_min)`` over the low segment
    and ``o'`` likewise; optimal 0.

    Yilmaz et al. (2008), doi:10.1029/2007WR006716.
    """
    return _scores(observed, simulated, "standard", mode)["pBiasFLV"]


def pbias_fhv(
    observed: npt.ArrayLike, simulated: npt.ArrayLike, *, mode: str = "standard"
) -> float:
    """Percent bias of the flow-duration curve's high-flow segment volume (top 2 %):
    ``100 * sum(s_(j) - o_(j)) / sum(o_(j))``; optimal 0, range [-100, inf).

    Yilmaz et al. (2008), doi:10.1029/2007WR006716.
    """
    return _scores(observed, simulated, "standard", mode)["pBiasFHV"]


def mse(observed: npt.ArrayLike, simulated: npt.ArrayLike, *, mode: str = "standard") -> float:
    """Mean squared log error: ``mean(e^2)``, ``e = ln max(s, 0.01) - ln max(o, 0.01)``;
    optimal 0. The D-score's total: ``mse = e_bias + e_dist + e_seq``.

    Hodson et al. (2021), doi:10.1029/2021MS002681.
    """
    return _scores(observed, simulated, "dscore", mode)["mse"]


def e_bias(observed: npt.ArrayLike, simulated: npt.ArrayLike, *, mode: str = "standard") -> float:
    """Bias component of the D-score: ``mean(e)^2``, ``e = ln max(s, 0.01) - ln max(o, 0.01)``;
    optimal 0.

    Hodson et al. (2021), doi:10.1029/2021MS002681.
    """
    return _scores(observed, simulated, "dscore", mode)["e_bias"]


def e_dist(observed: npt.ArrayLike, simulated: npt.ArrayLike, *, mode: str = "standard") -> float:
    """Distribution component of the D-score: ``var(sort(ln s) - sort(ln o))`` (logs floored
    at 0.01); optimal 0.

    Hodson et al. (2021), doi:10.1029/2021MS002681.
    """
    return _scores(observed, simulated, "dscore", mode)["e_dist"]


def e_seq(observed: npt.ArrayLike, simulated: npt.ArrayLike, *, mode: str = "standard") -> float:
    """Sequence component of the D-score: ``var(e) - e_dist``,
    ``e = ln max(s, 0.01) - ln max(o, 0.01)``; optimal 0.

    Hodson et al. (2021), doi:10.1029/2021MS002681.
    """
    return _scores(observed, simulated, "dscore", mode)["e_seq"]


def dscore(
    observed: npt.ArrayLike,
    simulated: npt.ArrayLike,
    time: npt.ArrayLike,
    *,
    mode: str = "standard",
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
