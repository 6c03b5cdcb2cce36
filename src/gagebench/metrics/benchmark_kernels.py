"""The ``benchmark`` suite: each gage's model scored against its day-of-year climatology.

After Knoben et al. (2019, doi:10.5194/hess-23-4323-2019) and USGS HyMETT's
``benchmark_KGE_DOY``: the benchmark ``b`` of a gage is the mean observed flow of each
calendar day (month-day on a leap calendar, so Feb 29 is its own day) over the gage's paired
days (both observed and simulated present). ``KGE_bench``/``NSE_bench`` score ``b`` against
the observations, ``KGE_skill = (KGE - KGE_bench) / (1 - KGE_bench)`` and ``NSE_skill``
likewise, with the model's KGE and NSE computed as the standard suite does.

Two pieces, so breakdowns (season, month, water year) reuse them: :func:`benchmark_series`
(the benchmark of a (gage, day) batch over the FULL paired record) and :func:`score_groups`
(model and benchmark scored over each group of days, the climatology still taken over the
full record). Both are O(days) per gage (days binned by their calendar day, no sort; a
breakdown's days are put in group order once per batch, each group's paired days then
compacted and scored by one vectorized kernel) and run GIL-free numba kernels on a thread
pool, as the engine does.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import numba
import numpy as np
import numpy.typing as npt

from gagebench.jit import njit

#: Calendar days of the benchmark: month-day on a leap calendar (Feb 29 is day 59).
CALENDAR_DAYS = 366
#: The scores :func:`score_groups` returns, in this order along its last axis.
SCORES = ("KGE", "NSE", "KGE_bench", "NSE_bench", "KGE_skill", "NSE_skill")
_KGE, _NSE, _KGE_B, _NSE_B, _KGE_SKILL, _NSE_SKILL = range(6)
_MONTH_START = np.cumsum([0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30]).astype(np.int16)
#: Fewest gages per block handed to a thread.
_BLOCK_GAGES = 32
#: The note of a row whose benchmark reproduces the observations (skill undefined).
PERFECT_NOTE = (
    "the day-of-year benchmark is perfect (each calendar day has one paired day, so "
    "KGE_bench = NSE_bench = 1)"
)


def calendar_day_index(dates: npt.ArrayLike) -> np.ndarray:
    """Each date's calendar day, 0..365 on a leap calendar (Jan 1 = 0, Feb 29 = 59,
    Mar 1 = 60 in every year, Dec 31 = 365): the benchmark's bins."""
    days = np.asarray(dates, dtype="datetime64[D]")
    months = days.astype("datetime64[M]")
    day_of_month = (days - months.astype("datetime64[D]")).astype(np.int64)
    month = months.astype(np.int64) % 12
    return (_MONTH_START[month] + day_of_month).astype(np.int16)


@njit(nogil=True, error_model="numpy")
def _climatology(
    obs_row: np.ndarray, sim_row: np.ndarray, doy: np.ndarray, means: np.ndarray
) -> None:
    """``means[d]``: the mean observed flow of calendar day ``d`` over the paired days
    (NaN where none pairs)."""
    counts = np.zeros(means.size, np.int64)
    means[:] = 0.0
    for t in range(obs_row.size):
        o = obs_row[t]
        if not math.isnan(o) and not math.isnan(sim_row[t]):
            means[doy[t]] += o
            counts[doy[t]] += 1
    for d in range(means.size):
        means[d] = means[d] / counts[d] if counts[d] else np.nan


@njit(nogil=True, error_model="numpy")
def _series_rows(
    obs: np.ndarray, sim: np.ndarray, doy: np.ndarray, out: np.ndarray, start: int, stop: int
) -> None:
    means = np.empty(CALENDAR_DAYS)
    for g in range(start, stop):
        _climatology(obs[g], sim[g], doy, means)
        for t in range(obs.shape[1]):
            paired = not math.isnan(obs[g, t]) and not math.isnan(sim[g, t])
            out[g, t] = means[doy[t]] if paired else np.nan


@njit(nogil=True, error_model="numpy")
def _skill(model: float, bench: float) -> float:
    """(model - bench) / (1 - bench); NaN when the benchmark is perfect (bench = 1)."""
    if bench == 1.0:
        return np.nan
    return (model - bench) / (1.0 - bench)


@njit(nogil=True, error_model="numpy")
def _kge(sxx: float, syy: float, sxy: float, n: float, sum_o: float, sum_s: float) -> float:
    """Gupta et al. (2009) KGE from centred sums, as the standard suite computes it."""
    r = sxy / math.sqrt(sxx * syy)
    alpha = math.sqrt(syy / n) / math.sqrt(sxx / n)
    beta = sum_s / sum_o if sum_o != 0.0 else np.nan
    return 1.0 - math.sqrt((r - 1.0) ** 2 + (alpha - 1.0) ** 2 + (beta - 1.0) ** 2)


@njit(nogil=True, error_model="numpy")
def _finish(
    n: float,
    sxx: float,
    syy: float,
    sxy: float,
    sse: float,
    sbb: float,
    sxb: float,
    sse_b: float,
    sum_o: float,
    sum_s: float,
    sum_b: float,
    exact: bool,
    row: np.ndarray,
) -> None:
    """The six scores of one group from its centred sums (``x`` observed, ``y`` model,
    ``b`` benchmark); NaN below 2 days or for constant observations; standard mode's NaN
    for any infinite value. ``exact``: the benchmark equals the observations on every day,
    so it scores exactly 1 and the skills are undefined."""
    row[:] = np.nan
    if n < 2 or sxx == 0.0:
        return
    row[_NSE] = 1.0 - (sse / n) / (sxx / n)
    row[_KGE] = _kge(sxx, syy, sxy, n, sum_o, sum_s)
    if exact:
        row[_NSE_B] = 1.0
        row[_KGE_B] = 1.0
    else:
        row[_NSE_B] = 1.0 - (sse_b / n) / (sxx / n)
        row[_KGE_B] = _kge(sxx, sbb, sxb, n, sum_o, sum_b)
    row[_KGE_SKILL] = _skill(row[_KGE], row[_KGE_B])
    row[_NSE_SKILL] = _skill(row[_NSE], row[_NSE_B])
    for j in range(row.size):
        if math.isinf(row[j]):
            row[j] = np.nan


@njit(nogil=True, error_model="numpy")
def _compact(
    obs_row: np.ndarray,
    sim_row: np.ndarray,
    doy: np.ndarray,
    means: np.ndarray,
    days: np.ndarray,
    every: bool,
    o: np.ndarray,
    s: np.ndarray,
    b: np.ndarray,
) -> int:
    """The paired days' observed, model and benchmark values into ``o``, ``s``, ``b``;
    returns their count. ``days``: the days to look at, in order (``every``: all days)."""
    n = 0
    for i in range(obs_row.size if every else days.size):
        t = i if every else days[i]
        ov = obs_row[t]
        sv = sim_row[t]
        if not math.isnan(ov) and not math.isnan(sv):
            o[n] = ov
            s[n] = sv
            b[n] = means[doy[t]]
            n += 1
    return n


@njit(nogil=True, error_model="numpy", fastmath={"reassoc"})
def _moments(o: np.ndarray, s: np.ndarray, b: np.ndarray, row: np.ndarray) -> None:
    """The six scores of one group's compacted paired days, from centred sums in two
    branch-free passes (each series shifted by its first value, so a constant series has
    exactly zero spread), which LLVM vectorizes (``reassoc``: SIMD partial sums,
    differing from left-to-right ones by rounding only)."""
    n = o.size
    if n == 0:
        row[:] = np.nan
        return
    o0 = o[0]
    s0 = s[0]
    b0 = b[0]
    mo = 0.0
    ms = 0.0
    mb = 0.0
    sum_o = 0.0
    sum_s = 0.0
    sum_b = 0.0
    differ = 0
    for i in range(n):
        mo += o[i] - o0
        ms += s[i] - s0
        mb += b[i] - b0
        sum_o += o[i]
        sum_s += s[i]
        sum_b += b[i]
        differ += b[i] != o[i]
    mo /= n
    ms /= n
    mb /= n
    sxx = 0.0
    syy = 0.0
    sxy = 0.0
    sse = 0.0
    sbb = 0.0
    sxb = 0.0
    sse_b = 0.0
    for i in range(n):
        dx = (o[i] - o0) - mo
        dy = (s[i] - s0) - ms
        db = (b[i] - b0) - mb
        sxx += dx * dx
        syy += dy * dy
        sxy += dx * dy
        sbb += db * db
        sxb += dx * db
        d = s[i] - o[i]
        sse += d * d
        e = b[i] - o[i]
        sse_b += e * e
    _finish(float(n), sxx, syy, sxy, sse, sbb, sxb, sse_b, sum_o, sum_s, sum_b, differ == 0, row)


@njit(nogil=True, error_model="numpy")
def _score_rows(
    obs: np.ndarray,
    sim: np.ndarray,
    doy: np.ndarray,
    order: np.ndarray,
    bounds: np.ndarray,
    every: bool,
    out: np.ndarray,
    start: int,
    stop: int,
) -> None:
    """Each gage: its full-record climatology, then each group's paired days (``order``'s
    days ``bounds[k]:bounds[k + 1]``, in date order; ``every``: one group of every day)
    compacted and scored by the vectorized :func:`_moments`."""
    means = np.empty(CALENDAR_DAYS)
    o = np.empty(obs.shape[1])
    s = np.empty(obs.shape[1])
    b = np.empty(obs.shape[1])
    for g in range(start, stop):
        _climatology(obs[g], sim[g], doy, means)
        for k in range(out.shape[1]):
            days = order[bounds[k] : bounds[k + 1]]
            n = _compact(obs[g], sim[g], doy, means, days, every, o, s, b)
            _moments(o[:n], s[:n], b[:n], out[g, k])


def _run_blocks(kernel: Callable[..., None], n_gages: int, *args: Any) -> None:
    """``kernel(*args, start, stop)`` over blocks of gages on ``numba.get_num_threads()``
    threads (the kernels release the GIL); 1 thread runs inline."""
    threads = min(numba.get_num_threads(), -(-n_gages // _BLOCK_GAGES))
    if threads <= 1:
        kernel(*args, 0, n_gages)
        return
    block = max(_BLOCK_GAGES, -(-n_gages // (threads * 8)))
    with ThreadPoolExecutor(threads, thread_name_prefix="gagebench-benchmark") as pool:
        futures = [
            pool.submit(partial(kernel, *args), start, min(start + block, n_gages))
            for start in range(0, n_gages, block)
        ]
        for future in futures:
            future.result()


def _checked(obs: np.ndarray, sim: np.ndarray, doy: np.ndarray) -> np.ndarray:
    if obs.shape != sim.shape or obs.ndim != 2 or doy.shape != (obs.shape[1],):
        raise ValueError(
            f"observed {obs.shape} and simulated {sim.shape} must be the same (gage, day) "
            f"shape and the calendar days {doy.shape} one per day"
        )
    return np.ascontiguousarray(doy, dtype=np.int16)


def benchmark_series(obs: np.ndarray, sim: np.ndarray, doy: np.ndarray) -> np.ndarray:
    """The day-of-year benchmark of each gage of a (gage, day) batch, float64 (gage, day).

    ``doy``: :func:`calendar_day_index` of the days. Each paired day gets the mean observed
    flow of its calendar day over the gage's paired days (all of them: the full record);
    a day that does not pair is NaN. Infinite flows must already be NaN (the engine's
    ``_without_inf``).
    """
    doy = _checked(obs, sim, doy)
    out = np.empty(obs.shape)
    _run_blocks(_series_rows, obs.shape[0], obs, sim, doy, out)
    return out


def score_groups(
    obs: np.ndarray,
    sim: np.ndarray,
    doy: np.ndarray,
    group: np.ndarray | None = None,
    n_groups: int = 1,
) -> np.ndarray:
    """Model and benchmark scores of each gage over each group of days: (gage, group, 6)
    in :data:`SCORES` order.

    ``group``: each day's group, 0..n_groups-1, or -1 to leave the day out (None: every
    day in group 0). The benchmark is always the climatology of the gage's FULL paired
    record; each group scores the paired days it holds. NaN where a group has fewer than 2
    paired days or constant observations; the skills are NaN where the benchmark is
    perfect (``KGE_bench``/``NSE_bench`` exactly 1, see :data:`PERFECT_NOTE`).
    """
    doy = _checked(obs, sim, doy)
    every = group is None  # every day in group 0
    if group is None:
        order, bounds = np.empty(0, np.int64), np.zeros(2, np.int64)
        n_groups = 1
    else:
        group = np.asarray(group, dtype=np.int64)
        if group.shape != (obs.shape[1],) or (group.size and group.max() >= n_groups):
            raise ValueError(f"group must give one of 0..{n_groups - 1} (or -1) for each day")
        # Each group's days together, in date order (a stable sort); days of group -1 last.
        key = np.where(group < 0, n_groups, group)
        order = np.argsort(key, kind="stable")
        bounds = np.searchsorted(key[order], np.arange(n_groups + 1))
    out = np.empty((obs.shape[0], n_groups, len(SCORES)))
    _run_blocks(_score_rows, obs.shape[0], obs, sim, doy, order, bounds, every, out)
    return out
