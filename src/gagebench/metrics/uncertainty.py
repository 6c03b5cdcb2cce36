"""Compiled kernels of the sampling-uncertainty suite (gumboot's ``bootjack()``, vectorized).

Clark et al. (2021), "The abuse of popular performance metrics in hydrologic modeling",
doi:10.1029/2020WR029001; CRAN gumboot 1.0.2, ``bootjack()``.

One pass per gage accumulates, for each water year of its record, the sufficient
statistics of its valid days (count and the sums of o, s, o², s², o·s, centred on the
gage's mean of valid days for precision). The score, each jackknife sample and each
bootstrap sample are then weighted sums of those year rows: O(years) per sample, never a
resampled series and never a (sample, day) array.

A day is valid when o > -1e-10 and s > -1e-10 (NaN is not); a water year is valid when it
has more than ``min_days`` valid days. The score and the jackknife use every valid day
(also those of water years that are not valid); bootstrap samples are built from valid
years only.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

#: Columns of a year-statistics row: count, sum o, sum s, sum o², sum s², sum o·s.
N_STATS = 6
ZERO_FLOW = -1e-10
#: Row of the output per statistic, and the columns of each row (gumboot's names).
GOF_STATS = ("NSE", "KGE")
OUT_FIELDS = ("score", "seJack", "seBoot", "p05", "p50", "p95", "biasJack", "biasBoot", "seJab")
(SCORE, SE_JACK, SE_BOOT, P05, P50, P95, BIAS_JACK, BIAS_BOOT, SE_JAB) = range(9)
MODE_STANDARD, MODE_HYTEST = 0, 1


@nb.njit(cache=True, nogil=True, error_model="numpy")
def year_table(
    obs: np.ndarray,
    sim: np.ndarray,
    water_year: np.ndarray,
    calendar_year: np.ndarray,
    year_min: int,
    n_year_slots: int,
    stats: np.ndarray,
    years: np.ndarray,
    n_years: np.ndarray,
    jab_years: np.ndarray,
    centre: np.ndarray,
) -> None:
    """Per gage: the water years of its record and their valid-day sufficient statistics.

    The record runs from the gage's first to its last day with both values present. Outputs
    (G gages, K year slots): ``stats`` (G, K, 6) centred sums per record water year (in
    order of appearance), ``years`` (G, K) their water-year numbers, ``n_years`` (G) how
    many, ``jab_years`` (G, K) for t = 1..Y the (t+1)-th distinct calendar year of the
    record (-1 past the end), ``centre`` (G, 2) the means of o and s over valid days.
    """
    n_gages, n_days = obs.shape
    seen = np.empty(n_year_slots, np.int64)
    seen_cal = np.empty(n_year_slots, np.int64)
    cal_list = np.empty(n_year_slots, np.int64)
    for g in range(n_gages):
        first = -1
        last = -1
        co = 0.0
        cs = 0.0
        nv = 0
        for d in range(n_days):
            o = obs[g, d]
            s = sim[g, d]
            if not (math.isnan(o) or math.isnan(s)):
                if first < 0:
                    first = d
                last = d
            if o > ZERO_FLOW and s > ZERO_FLOW:
                co += o
                cs += s
                nv += 1
        if nv > 0:
            co /= nv
            cs /= nv
        centre[g, 0] = co
        centre[g, 1] = cs
        n_years[g] = 0
        stats[g, :, :] = 0.0
        years[g, :] = -1
        jab_years[g, :] = -1
        if first < 0:
            continue
        seen[:] = -1
        seen_cal[:] = 0
        ny = 0
        nc = 0
        for d in range(first, last + 1):
            k = water_year[d] - year_min
            slot = seen[k]
            if slot < 0:
                slot = ny
                seen[k] = ny
                years[g, ny] = water_year[d]
                ny += 1
            kc = calendar_year[d] - year_min
            if seen_cal[kc] == 0:
                seen_cal[kc] = 1
                cal_list[nc] = calendar_year[d]
                nc += 1
            o = obs[g, d]
            s = sim[g, d]
            if o > ZERO_FLOW and s > ZERO_FLOW:
                x = o - co
                y = s - cs
                stats[g, slot, 0] += 1.0
                stats[g, slot, 1] += x
                stats[g, slot, 2] += y
                stats[g, slot, 3] += x * x
                stats[g, slot, 4] += y * y
                stats[g, slot, 5] += x * y
        n_years[g] = ny
        for t in range(1, ny + 1):
            jab_years[g, t - 1] = cal_list[t] if t < nc else -1


@nb.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _scores(acc: np.ndarray, co: float, cs: float, mode: int, out: np.ndarray) -> None:
    """NSE and KGE of a sample from its centred sums ``acc`` (6,) into ``out`` (2,).

    hytest: NSE = 2·α·r − ((ō − s̄)/σo)² − α² with sample (n−1) variances (gumboot);
    standard: NSE = 1 − Σ(s−o)²/Σ(o−ō)². KGE = 1 − sqrt((s̄/ō−1)² + (α−1)² + (r−1)²)
    in both. A sample where a score is undefined (or infinite) gives NaN.
    """
    n = acc[0]
    out[0] = np.nan
    out[1] = np.nan
    if n < 2.0:
        return
    mo = acc[1] / n
    ms = acc[2] / n
    sxx = acc[3] - acc[1] * mo
    syy = acc[4] - acc[2] * ms
    sxy = acc[5] - acc[1] * ms
    if sxx <= 0.0:
        return
    vo = sxx / (n - 1.0)
    vs = max(syy, 0.0) / (n - 1.0)
    alpha = math.sqrt(vs) / math.sqrt(vo)
    r = sxy / math.sqrt(sxx * syy) if syy > 0.0 else np.nan
    mean_o = mo + co
    mean_s = ms + cs
    if mode == MODE_HYTEST:
        y_beta = (mean_o - mean_s) / math.sqrt(vo)
        nse = 2.0 * alpha * r - y_beta * y_beta - alpha * alpha
    else:
        diff = mean_s - mean_o
        nse = 1.0 - ((sxx + syy - 2.0 * sxy) + n * diff * diff) / sxx
    beta = mean_s / mean_o if mean_o != 0.0 else np.nan
    kge = 1.0 - math.sqrt((beta - 1.0) ** 2 + (alpha - 1.0) ** 2 + (r - 1.0) ** 2)
    out[0] = nse if math.isfinite(nse) else np.nan
    out[1] = kge if math.isfinite(kge) else np.nan


@nb.njit(cache=True, nogil=True, error_model="numpy")
def _pick(sorted_idx: np.ndarray, values: np.ndarray, keep: np.ndarray, m: int) -> float:
    """Width sorted[floor(0.95 m)] − sorted[floor(0.05 m)] of the kept samples."""
    lo_rank = math.floor(0.05 * m)
    hi_rank = math.floor(0.95 * m)
    lo = np.nan
    hi = np.nan
    rank = 0
    for j in range(sorted_idx.shape[0]):
        s = sorted_idx[j]
        if keep[s]:
            if rank == lo_rank:
                lo = values[s]
            if rank == hi_rank:
                hi = values[s]
                break
            rank += 1
    return hi - lo


@nb.njit(cache=True, nogil=True, error_model="numpy")
def gage_uncertainty(
    stats: np.ndarray,
    valid: np.ndarray,
    co: float,
    cs: float,
    slots: np.ndarray,
    jab_index: np.ndarray,
    mode: int,
    out: np.ndarray,
    samples: np.ndarray,
) -> None:
    """Score, jackknife, bootstrap and jackknife-after-bootstrap of NSE and KGE, one gage.

    ``stats`` (Y, 6) centred year sums of the record's water years; ``valid`` (Y) the valid
    years; ``slots`` (S, V) each bootstrap sample's years as indices into the Y years (-1:
    an empty slot); ``jab_index`` (T) the year left out by each jackknife-after-bootstrap
    replicate (-1: a year no sample holds, so every sample is kept). Fills ``out`` (2, 9)
    in ``OUT_FIELDS`` order and ``samples`` (2, S) with the bootstrap values.
    """
    n_y = stats.shape[0]
    n_s = slots.shape[0]
    total = np.zeros(N_STATS)
    for y in range(n_y):
        for c in range(N_STATS):
            total[c] += stats[y, c]
    pair = np.empty(2)
    acc = np.empty(N_STATS)
    _scores(total, co, cs, mode, pair)
    score0 = pair[0]
    score1 = pair[1]
    # jackknife: leave out each valid year
    jsum = np.zeros(2)
    jsq = np.zeros(2)
    jn = np.zeros(2)
    jvals = np.empty((2, n_y))
    n_j = 0
    for y in range(n_y):
        if not valid[y]:
            continue
        for c in range(N_STATS):
            acc[c] = total[c] - stats[y, c]
        _scores(acc, co, cs, mode, pair)
        jvals[0, n_j] = pair[0]
        jvals[1, n_j] = pair[1]
        n_j += 1
    for k in range(2):
        for j in range(n_j):
            v = jvals[k, j]
            if not math.isnan(v):
                jsum[k] += v
                jn[k] += 1.0
        mean = jsum[k] / jn[k] if jn[k] > 0 else np.nan
        for j in range(n_j):
            v = jvals[k, j]
            if not math.isnan(v):
                jsq[k] += (mean - v) ** 2
        score = score0 if k == 0 else score1
        out[k, 0] = score
        out[k, 1] = math.sqrt((jn[k] - 1.0) * jsq[k] / jn[k]) if jn[k] > 0 else np.nan
        out[k, 6] = (jn[k] - 1.0) * (mean - score)
    # bootstrap: each sample is a weighted sum of its years' rows
    member = np.zeros((n_s, n_y), np.bool_)
    for s in range(n_s):
        acc[:] = 0.0
        for v in range(slots.shape[1]):
            y = slots[s, v]
            if y < 0:
                continue
            member[s, y] = True
            for c in range(N_STATS):
                acc[c] += stats[y, c]
        _scores(acc, co, cs, mode, pair)
        samples[0, s] = pair[0]
        samples[1, s] = pair[1]
    keep = np.empty(n_s, np.bool_)
    widths = np.empty(jab_index.shape[0])
    for k in range(2):
        vals = samples[k]
        mean = 0.0
        for s in range(n_s):
            mean += vals[s]
        mean /= n_s
        sq = 0.0
        for s in range(n_s):
            sq += (vals[s] - mean) ** 2
        out[k, 2] = math.sqrt(sq / (n_s - 1)) if n_s > 1 else np.nan
        out[k, 7] = mean - out[k, 0]
        order = np.argsort(vals, kind="mergesort")  # NaN last, as R's order()
        out[k, 3] = vals[order[math.floor(0.05 * n_s)]]
        out[k, 4] = vals[order[math.floor(0.50 * n_s)]]
        out[k, 5] = vals[order[math.floor(0.95 * n_s)]]
        n_t = jab_index.shape[0]
        wsum = 0.0
        for t in range(n_t):
            y = jab_index[t]
            m = 0
            for s in range(n_s):
                keep[s] = y < 0 or not member[s, y]
                if keep[s]:
                    m += 1
            widths[t] = _pick(order, vals, keep, m) if m > 0 else np.nan
            wsum += widths[t]
        wmean = wsum / n_t if n_t > 0 else np.nan
        wsq = 0.0
        for t in range(n_t):
            wsq += (wmean - widths[t]) ** 2
        out[k, 8] = math.sqrt((n_t - 1.0) * wsq / n_t) if n_t > 0 else np.nan
