"""Compiled per-gage kernels: one pass over each gage's paired days computes every metric.

The engine's floor is order statistics (Spearman ranks, quantiles, flow-duration curves,
sorted D-score series, rank bins). Each series is ordered once with a stable LSD radix
argsort over its IEEE-754 bit pattern (O(n), ties kept in order of appearance) and every
order statistic is derived from that one order. Gages run in parallel (``prange``).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

# Metric slots in the output row; the order is METRICS' order in registry.py.
(
    NSE,
    KGE,
    LOGNSE,
    PBIAS,
    RSD,
    PEARSON,
    SPEARMAN,
    FMS,
    FLV,
    FHV,
    MSE,
    E_BIAS,
    E_DIST,
    E_SEQ,
    WINTER,
    SPRING,
    SUMMER,
    FALL,
    Q_LOW,
    Q_BELOW,
    Q_ABOVE,
    Q_HIGH,
) = range(22)
N_METRICS = 22

# Row status codes; names in engine.STATUS_NAMES.
OK, NO_OBSERVATIONS, NO_SIMULATION, TOO_FEW_DAYS, CONSTANT_OBSERVATIONS = range(5)

MODE_STANDARD, MODE_HYTEST = 0, 1
LOG_FLOOR = 0.01
HYTEST_SIM_LOG_FLOOR = 0.1

_RADIX_BITS = 11
_RADIX_SIZE = 1 << _RADIX_BITS
_RADIX_PASSES = 6  # ceil(64 / 11)


@nb.njit(cache=True, nogil=True, error_model="numpy")
def radix_argsort(values: np.ndarray) -> np.ndarray:
    """Stable argsort of finite float64 values (ties in order of appearance), O(n)."""
    n = values.size
    keys = np.empty(n, np.uint64)
    sign = np.uint64(1) << np.uint64(63)
    ones = ~np.uint64(0)
    bits = (values + 0.0).view(np.uint64)  # + 0.0 turns -0.0 into 0.0: equal values tie
    for i in range(n):
        b = bits[i]
        keys[i] = (b ^ ones) if (b & sign) else (b | sign)
    counts = np.zeros((_RADIX_PASSES, _RADIX_SIZE), np.int64)
    mask = np.uint64(_RADIX_SIZE - 1)
    for i in range(n):
        k = keys[i]
        for d in range(_RADIX_PASSES):
            counts[d, (k >> np.uint64(d * _RADIX_BITS)) & mask] += 1
    order = np.arange(n)
    order_tmp = np.empty(n, np.int64)
    keys_tmp = np.empty(n, np.uint64)
    offsets = np.empty(_RADIX_SIZE, np.int64)
    for d in range(_RADIX_PASSES):
        row = counts[d]
        if row.max() == n:  # every key has the same digit here: nothing to reorder
            continue
        total = 0
        for b in range(_RADIX_SIZE):
            offsets[b] = total
            total += row[b]
        shift = np.uint64(d * _RADIX_BITS)
        for i in range(n):
            k = keys[i]
            b = (k >> shift) & mask
            pos = offsets[b]
            offsets[b] = pos + 1
            keys_tmp[pos] = k
            order_tmp[pos] = order[i]
        keys, keys_tmp = keys_tmp, keys
        order, order_tmp = order_tmp, order
    return order


@nb.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _lerp(a: float, b: float, t: float) -> float:
    """NumPy's linear interpolation (numpy.lib._function_base_impl._lerp)."""
    diff = b - a
    if t >= 0.5:
        return b - diff * (1.0 - t)
    return a + diff * t


@nb.njit(cache=True, nogil=True, error_model="numpy")
def quantile_sorted(sorted_values: np.ndarray, q: float) -> float:
    """``numpy.quantile(x, q)`` (method "linear") of an ascending array."""
    n = sorted_values.size
    virtual = q * (n - 1)
    lo = math.floor(virtual)
    if lo >= n - 1:
        return sorted_values[n - 1]
    return _lerp(sorted_values[lo], sorted_values[lo + 1], virtual - lo)


@nb.njit(cache=True, nogil=True, error_model="numpy")
def _average_ranks(sorted_values: np.ndarray, order: np.ndarray, ranks: np.ndarray) -> None:
    """1-based ranks with ties averaged (scipy.stats.rankdata 'average')."""
    n = sorted_values.size
    start = 0
    while start < n:
        end = start + 1
        while end < n and sorted_values[end] == sorted_values[start]:
            end += 1
        rank = 0.5 * (start + end - 1) + 1.0
        for j in range(start, end):
            ranks[order[j]] = rank
        start = end


@nb.njit(cache=True, nogil=True, error_model="numpy")
def _nse(o: np.ndarray, s: np.ndarray) -> float:
    """1 - mean((s-o)^2) / var(o); var(o) is exactly 0 when o is constant (see _variance)."""
    return 1.0 - _mean_sq_diff(o, s) / _variance(o)


@nb.njit(cache=True, nogil=True, error_model="numpy")
def _mean_sq_diff(o: np.ndarray, s: np.ndarray) -> float:
    n = o.size
    sse = 0.0
    for i in range(n):
        d = s[i] - o[i]
        sse += d * d
    return sse / n


@nb.njit(cache=True, nogil=True, error_model="numpy")
def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson r; a constant series gives 0/0 = NaN exactly (data shifted by its first value)."""
    n = x.size
    x0 = x[0]
    y0 = y[0]
    mx = 0.0
    my = 0.0
    for i in range(n):
        mx += x[i] - x0
        my += y[i] - y0
    mx /= n
    my /= n
    sxy = 0.0
    sxx = 0.0
    syy = 0.0
    for i in range(n):
        dx = (x[i] - x0) - mx
        dy = (y[i] - y0) - my
        sxy += dx * dy
        sxx += dx * dx
        syy += dy * dy
    return sxy / math.sqrt(sxx * syy)


@nb.njit(cache=True, nogil=True, error_model="numpy")
def _variance(x: np.ndarray) -> float:
    """Population variance, two passes over x - x[0].

    The shift makes the variance of a constant series exactly 0 (a plain mean of n equal
    values can be off in the last bit and leave ~1e-33 of noise), so "undefined" metrics
    such as logNSE of an all-floored observed series come out as x/0, not as 1e+27.
    """
    n = x.size
    x0 = x[0]
    m = 0.0
    for i in range(n):
        m += x[i] - x0
    m /= n
    v = 0.0
    for i in range(n):
        c = (x[i] - x0) - m
        v += c * c
    return v / n


@nb.njit(cache=True, nogil=True, error_model="numpy")
def _div(num: float, den: float, safe: bool) -> float:
    """num/den; in standard mode (safe) an undefined ratio is NaN, never +/-inf."""
    if den == 0.0:
        if safe or num == 0.0 or num != num:
            return np.nan
        return math.copysign(np.inf, num) * math.copysign(1.0, den)
    return num / den


@nb.njit(cache=True, nogil=True, error_model="numpy")
def _log(x: float) -> float:
    """ln x with NumPy's conventions: ln 0 = -inf, ln of a negative = NaN."""
    if x > 0.0:
        return math.log(x)
    if x == 0.0:
        return -np.inf
    return np.nan


@nb.njit(cache=True, nogil=True, error_model="numpy")
def _standard_suite(
    o: np.ndarray,
    s: np.ndarray,
    order_o: np.ndarray,
    order_s: np.ndarray,
    mode: int,
    out: np.ndarray,
) -> None:
    n = o.size
    safe = mode == MODE_STANDARD
    sum_o = 0.0
    sum_s = 0.0
    for i in range(n):
        sum_o += o[i]
        sum_s += s[i]
    var_o = _variance(o)
    var_s = _variance(s)
    out[NSE] = _nse(o, s)
    r = _pearson(o, s)
    out[PEARSON] = r
    alpha = math.sqrt(var_s) / math.sqrt(var_o)
    out[RSD] = alpha
    beta = _div(sum_s, sum_o, safe)
    out[KGE] = 1.0 - math.sqrt((r - 1.0) ** 2 + (alpha - 1.0) ** 2 + (beta - 1.0) ** 2)
    diff = 0.0
    for i in range(n):
        diff += s[i] - o[i]
    out[PBIAS] = 100.0 * _div(diff, sum_o, safe)

    sim_floor = HYTEST_SIM_LOG_FLOOR if mode == MODE_HYTEST else LOG_FLOOR
    lo = np.empty(n)
    ls = np.empty(n)
    for i in range(n):
        lo[i] = math.log(max(o[i], LOG_FLOOR))
        ls[i] = math.log(max(s[i], sim_floor))
    out[LOGNSE] = _nse(lo, ls)

    so = np.empty(n)
    ss = np.empty(n)
    for j in range(n):
        so[j] = o[order_o[j]]
        ss[j] = s[order_s[j]]
    rank_o = np.empty(n)
    rank_s = np.empty(n)
    _average_ranks(so, order_o, rank_o)
    _average_ranks(ss, order_s, rank_s)
    out[SPEARMAN] = _pearson(rank_o, rank_s)

    if mode == MODE_HYTEST:
        qo30 = quantile_sorted(so, 0.30)
        qo80 = quantile_sorted(so, 0.80)
        qs30 = quantile_sorted(ss, 0.30)
        qs80 = quantile_sorted(ss, 0.80)
        m = _log(qs30) - _log(qs80)
        ob = _log(qo30) - _log(qo80)
        out[FMS] = 100.0 * _div(m - ob, ob, False)
        # FLV: days with o <= q30(o); sums of logs relative to each series' q30.
        log_qo = _log(qo30)
        log_qs = _log(qs30)
        m = 0.0
        ob = 0.0
        for i in range(n):
            if o[i] <= qo30:
                m += _log(s[i]) - log_qs
                ob += _log(o[i]) - log_qo
        out[FLV] = -100.0 * _div(m - ob, ob, False)
        # FHV: days with o >= q98(o).
        q98 = quantile_sorted(so, 0.98)
        num = 0.0
        den = 0.0
        for i in range(n):
            if o[i] >= q98:
                num += s[i] - o[i]
                den += o[i]
        out[FHV] = 100.0 * _div(num, den, False)
    else:
        # Yilmaz et al. (2008) on each series' own flow-duration curve; the i-th largest
        # of n flows (1-based) has exceedance i/n.
        # FMS: slope between exceedance 0.2 and 0.7 (quantiles 0.8 and 0.3), logs floored.
        qo30 = math.log(max(quantile_sorted(so, 0.30), LOG_FLOOR))
        qo80 = math.log(max(quantile_sorted(so, 0.80), LOG_FLOOR))
        qs30 = math.log(max(quantile_sorted(ss, 0.30), LOG_FLOOR))
        qs80 = math.log(max(quantile_sorted(ss, 0.80), LOG_FLOOR))
        m = qs80 - qs30
        ob = qo80 - qo30
        out[FMS] = 100.0 * _div(m - ob, ob, True)
        # FLV: exceedance 0.7..1.0 = the n - ceil(0.7 n) + 1 smallest flows, logs floored,
        # relative to the segment minimum.
        n_low = n - (7 * n + 9) // 10 + 1
        min_o = math.log(max(so[0], LOG_FLOOR))
        min_s = math.log(max(ss[0], LOG_FLOOR))
        m = 0.0
        ob = 0.0
        for j in range(n_low):
            m += math.log(max(ss[j], LOG_FLOOR)) - min_s
            ob += math.log(max(so[j], LOG_FLOOR)) - min_o
        out[FLV] = -100.0 * _div(m - ob, ob, True)
        # FHV: exceedance <= 0.02 = the max(1, floor(0.02 n)) largest flows.
        n_high = max(1, (2 * n) // 100)
        num = 0.0
        den = 0.0
        for j in range(n - n_high, n):
            num += ss[j] - so[j]
            den += so[j]
        out[FHV] = 100.0 * _div(num, den, True)


@nb.njit(cache=True, nogil=True, error_model="numpy")
def _dscore_suite(
    o: np.ndarray,
    s: np.ndarray,
    order_o: np.ndarray,
    order_s: np.ndarray,
    season: np.ndarray,
    out: np.ndarray,
) -> None:
    n = o.size
    e = np.empty(n)
    mean_e = 0.0
    mse = 0.0
    seasons = np.zeros(4)
    for i in range(n):
        d = math.log(max(s[i], LOG_FLOOR)) - math.log(max(o[i], LOG_FLOOR))
        e[i] = d
        mean_e += d
        mse += d * d
        seasons[season[i]] += d * d
    mean_e /= n
    out[MSE] = mse / n
    out[E_BIAS] = mean_e * mean_e
    # sort(ln max(s, .01)) - sort(ln max(o, .01)): the log and the floor keep the order.
    dist = np.empty(n)
    for j in range(n):
        dist[j] = math.log(max(s[order_s[j]], LOG_FLOOR)) - math.log(max(o[order_o[j]], LOG_FLOOR))
    e_dist = _variance(dist)
    out[E_DIST] = e_dist
    out[E_SEQ] = _variance(e) - e_dist
    for k in range(4):
        out[WINTER + k] = seasons[k] / n
    # Quantile bins: ordinal ranks of ln max(o, .01), ties in order of appearance; all
    # floored values tie, so the floored prefix of o's order is re-sorted by position.
    n_floor = 0
    while n_floor < n and o[order_o[n_floor]] <= LOG_FLOOR:
        n_floor += 1
    order_q = order_o.copy()
    if n_floor > 1:
        order_q[:n_floor] = np.sort(order_q[:n_floor])
    # pandas.qcut of ranks 1..n at quantiles 0/.25/.5/.75/1: rank r is in the first bin
    # k with r <= 1 + q_k (n - 1) (the first bin closed on the left too).
    bins = np.zeros(4)
    k = 0
    edges = np.array([1.0 + 0.25 * (n - 1), 1.0 + 0.5 * (n - 1), 1.0 + 0.75 * (n - 1), n + 0.0])
    for j in range(n):
        r = j + 1.0
        while r > edges[k]:
            k += 1
        d = e[order_q[j]]
        bins[k] += d * d
    for k in range(4):
        out[Q_LOW + k] = bins[k] / n


@nb.njit(cache=True, nogil=True, error_model="numpy")
def _evaluate_gage(
    obs_row: np.ndarray,
    sim_row: np.ndarray,
    season: np.ndarray,
    do_standard: bool,
    do_dscore: bool,
    mode: int,
    out: np.ndarray,
    info: np.ndarray,
) -> None:
    """Evaluate one gage; info = [status, n_days, first index, last index]."""
    t = obs_row.size
    n_obs = 0
    n_sim = 0
    n = 0
    for i in range(t):
        ok_o = not math.isnan(obs_row[i])
        ok_s = not math.isnan(sim_row[i])
        n_obs += ok_o
        n_sim += ok_s
        n += ok_o and ok_s
    info[1] = n
    info[2] = -1
    info[3] = -1
    if n_obs == 0:
        info[0] = NO_OBSERVATIONS
        return
    if n_sim == 0:
        info[0] = NO_SIMULATION
        return
    if n < 2:
        info[0] = TOO_FEW_DAYS
        if n == 1:
            for i in range(t):
                if not math.isnan(obs_row[i]) and not math.isnan(sim_row[i]):
                    info[2] = i
                    info[3] = i
        return
    o = np.empty(n)
    s = np.empty(n)
    sea = np.empty(n, np.int64)
    j = 0
    for i in range(t):
        if not math.isnan(obs_row[i]) and not math.isnan(sim_row[i]):
            if j == 0:
                info[2] = i
            info[3] = i
            o[j] = obs_row[i]
            s[j] = sim_row[i]
            sea[j] = season[i]
            j += 1
    first = o[0]
    constant = True
    for i in range(1, n):
        if o[i] != first:
            constant = False
            break
    if constant:
        info[0] = CONSTANT_OBSERVATIONS
        return
    info[0] = OK
    order_o = radix_argsort(o)
    order_s = radix_argsort(s)
    if do_standard:
        _standard_suite(o, s, order_o, order_s, mode, out)
    if do_dscore:
        _dscore_suite(o, s, order_o, order_s, sea, out)


@nb.njit(cache=True, parallel=True, error_model="numpy")
def evaluate_rows(
    obs: np.ndarray,
    sim: np.ndarray,
    season: np.ndarray,
    do_standard: bool,
    do_dscore: bool,
    mode: int,
    out: np.ndarray,
    info: np.ndarray,
) -> None:
    """Evaluate every gage (row) of ``obs``/``sim`` (gage, day) into ``out``/``info``."""
    for g in nb.prange(obs.shape[0]):
        _evaluate_gage(obs[g], sim[g], season, do_standard, do_dscore, mode, out[g], info[g])
        if mode == MODE_STANDARD:
            for k in range(out.shape[1]):
                if math.isinf(out[g, k]):
                    out[g, k] = np.nan
