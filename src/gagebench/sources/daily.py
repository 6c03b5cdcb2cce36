"""Daily alignment of a store's time axis: calendar days, and hourly values to daily means.

A daily series stamped at any hour is assigned to its date. A sub-daily (e.g. hourly)
series is averaged over days starting at 05:00 UTC (``resample("1D", offset="5h").mean()``
in pandas), each mean labelled by the date its day starts on; a day's mean is the mean of
its available (non-NaN) hours, NaN when it has none, exactly as pandas gives.
"""

from __future__ import annotations

import numpy as np

from gagebench.errors import InputError
from gagebench.jit import njit

DAY_OFFSET = np.timedelta64(5, "h")
_HOUR = np.timedelta64(1, "h")
_DAY = np.timedelta64(1, "D")
# Gages reduced at once when averaging hours to days: bounds the float64 temporaries.
_REDUCE_BLOCK = 16


def daily_days(times: np.ndarray) -> np.ndarray:
    """Calendar days (``datetime64[D]``) of a daily time axis stamped at any hour."""
    return np.asarray(times, dtype="datetime64[ns]").astype("datetime64[D]")


def subdaily_to_daily(values: np.ndarray, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Average a sub-daily ``(gage, time)`` array to days starting at 05:00 UTC.

    Returns ``(days, daily)``: ``days`` as ``datetime64[D]`` (the date each 05:00-05:00
    day starts on) and ``daily`` float64 of shape ``(gage, days)``, the mean of each
    day's non-NaN values (NaN when none), as ``resample("1D", offset="5h").mean()``.
    A regular hourly axis is averaged as ``(gage, day, 24)`` blocks in one compiled
    pass; any other sorted axis is summed per day with ``np.add.reduceat``.
    """
    values = np.asarray(values)
    if values.ndim != 2:
        raise InputError(f"expected a (gage, time) array, got shape {values.shape}")
    t = np.asarray(times, dtype="datetime64[ns]")
    if t.size != values.shape[1]:
        raise InputError(f"time axis has {t.size} steps but the values have {values.shape[1]}")
    if t.size == 0:
        return np.empty(0, dtype="datetime64[D]"), np.empty((values.shape[0], 0))
    if t.size > 1 and not bool(np.all(t[1:] > t[:-1])):
        raise InputError("the time axis of a sub-daily store must be strictly increasing")
    shifted = t - DAY_OFFSET
    first_day = shifted[0].astype("datetime64[D]")
    regular = t.size > 1 and bool(np.all(np.diff(t) == _HOUR))
    if regular:
        lead = int((shifted[0] - first_day.astype("datetime64[ns]")) // _HOUR)
        n_days = -(-(lead + t.size) // 24)
        daily = _hourly_means(values, lead, n_days)
        return first_day + np.arange(n_days) * _DAY, daily
    day_of = shifted.astype("datetime64[D]")
    starts = np.flatnonzero(np.r_[True, day_of[1:] != day_of[:-1]])
    days = day_of[starts]
    daily = np.empty((values.shape[0], starts.size), dtype=np.float64)
    for start in range(0, values.shape[0], _REDUCE_BLOCK):
        block = values[start : start + _REDUCE_BLOCK].astype(np.float64)
        valid = ~np.isnan(block)
        sums = np.add.reduceat(np.where(valid, block, 0.0), starts, axis=1)
        counts = np.add.reduceat(valid, starts, axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            daily[start : start + _REDUCE_BLOCK] = np.where(counts > 0, sums / counts, np.nan)
    # Days with no sample at all are absent from ``days``; reindexing makes them NaN.
    return days, daily


@njit(nogil=True)
def _hourly_means(values: np.ndarray, lead: int, n_days: int) -> np.ndarray:
    """Means of non-NaN hours per day: hour ``k`` of a row falls in day ``(k + lead) // 24``.

    The same as padding the row with ``lead`` NaN hours, reshaping to ``(days, 24)`` and
    taking a NaN-mean, in one pass without temporaries.
    """
    n_gage, n_hour = values.shape
    out = np.empty((n_gage, n_days))
    for i in range(n_gage):
        for d in range(n_days):
            lo = max(d * 24 - lead, 0)
            hi = min((d + 1) * 24 - lead, n_hour)
            total = 0.0
            count = 0
            for k in range(lo, hi):
                v = values[i, k]
                if not np.isnan(v):
                    total += v
                    count += 1
            out[i, d] = total / count if count > 0 else np.nan
    return out


def is_daily(times: np.ndarray) -> bool:
    """True when a time axis has at most one step per calendar day (a daily series)."""
    days = daily_days(times)
    return days.size < 2 or bool(np.all(days[1:] > days[:-1]))


def day_layout(times: np.ndarray, daily: bool, what: str) -> tuple[np.ndarray, np.ndarray]:
    """``(day of each time step, days)``: a store's contiguous daily axis.

    Daily stores: each step's calendar day. Sub-daily: the day (starting 05:00 UTC) each
    step falls in, as :func:`subdaily_to_daily`. ``what`` names the store in errors.
    """
    t = times
    if daily:
        day_of = daily_days(t)
    else:
        if t.size > 1 and not bool(np.all(t[1:] > t[:-1])):
            raise InputError(
                f"{what}: the time axis of a sub-daily store must be strictly increasing"
            )
        day_of = (t - DAY_OFFSET).astype("datetime64[D]")
    first = day_of[0] if day_of.size else np.datetime64("1970-01-01", "D")
    index = (day_of - first).astype(np.int64)
    n_days = int(index[-1]) + 1 if index.size else 0
    return index, first + np.arange(n_days) * _DAY


def day_span(times: np.ndarray, daily: bool) -> np.ndarray:
    """The first and last day ``[first, last]`` of a non-empty time axis."""
    ends = times[[0, -1]]
    return daily_days(ends) if daily else (ends - DAY_OFFSET).astype("datetime64[D]")
