"""Compiled kernels of the sampling-uncertainty suite (gumboot's ``bootjack()``, vectorized).

Clark et al. (2021), "The abuse of popular performance metrics in hydrologic modeling",
doi:10.1029/2020WR029001; CRAN gumboot 1.0.2, ``bootjack()``.

One pass per gage accumulates, for each water year, the sufficient statistics of its valid
days (count and the sums of o, s, o², s², o·s) relative to the gage's first valid day,
then re-centred exactly on the gage's mean of valid days, for precision. The
score, each jackknife sample and each bootstrap sample are then weighted sums of those
year rows: O(years) per sample, never a resampled series and never a (sample, day) array.

A day is valid when o > -1e-10 and s > -1e-10 (NaN is not); a water year is valid when it
has more than ``min_days`` valid days. The score and the jackknife use every valid day of
the record (also those of water years that are not valid); bootstrap samples are built
from the drawn years' valid days.

Water years are "slots": ``water year - first water year of the time axis``, so slot order
is year order (gumboot's sorted ``izUnique``). A gage's record runs from its first to its
last day with both values present.

Draws: sample s, slot v of a gage is valid year ``floor(u · V)`` (gumboot's
``floor(runif · nyValid)``) with u the top 32 bits of SplitMix64(key + s·V + v) / 2^32
(Steele et al. 2014, doi:10.1145/2714064.2660195), ``key`` derived from (seed, site
number): a counter-based stream, so any gage's draws are computed without the others'.
"""

from __future__ import annotations

import math

import numpy as np

from gagebench.jit import njit

#: Columns of a year-statistics row: count, sum o, sum s, sum o², sum s², sum o·s.
N_STATS = 6
ZERO_FLOW = -1e-10
GOF_STATS = ("NSE", "KGE")
N_FIELDS = 9
MODE_STANDARD, MODE_HYTEST = 0, 1
#: Gage status codes of the suite.
UNC_OK, UNC_NO_DAYS, UNC_TOO_FEW_YEARS, UNC_BOOT_YEARS_SHORT, UNC_MISSING_CODE = range(5)
#: gumboot returns NA for every value when a score or jackknife value is <= -9998 (its
#: missing-value code); hytest mode does the same.
MISSING_CODE = -9998.0

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


@njit(nogil=True, inline="always")
def splitmix64(x: np.uint64) -> np.uint64:
    """SplitMix64's output function of state ``x`` (the state advances by the golden ratio)."""
    z = x + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


_LOW32 = np.uint64(0xFFFFFFFF)


@njit(nogil=True)
def _fill_draws(key: np.uint64, n_valid: int, count: int, out: np.ndarray) -> None:
    """Draws 0..count-1 (sample-major) into ``out``: draw i is floor(u · n_valid), u the
    high (i even) or low (i odd) 32 bits of SplitMix64(key + i // 2), over 2^32."""
    n = np.uint64(n_valid)
    thirty_two = np.uint64(32)
    for j in range(count // 2):
        z = splitmix64(key + np.uint64(j))
        out[2 * j] = np.int64(((z >> thirty_two) * n) >> thirty_two)
        out[2 * j + 1] = np.int64(((z & _LOW32) * n) >> thirty_two)
    if count % 2:
        z = splitmix64(key + np.uint64(count // 2))
        out[count - 1] = np.int64(((z >> thirty_two) * n) >> thirty_two)


@njit(nogil=True, error_model="numpy", fastmath={"reassoc"})
def _sample_sums(member: np.ndarray, rows_t: np.ndarray, sums: np.ndarray) -> None:
    """sums[s, c] = Σ_y member[s, y] · rows_t[c, y]: each sample's year counts times the
    year rows, the six statistics in one pass over the years (SIMD partial sums; no BLAS,
    which numba would take from SciPy)."""
    n_s, n_y = member.shape
    r0, r1, r2, r3, r4, r5 = rows_t[0], rows_t[1], rows_t[2], rows_t[3], rows_t[4], rows_t[5]
    for s in range(n_s):
        counts = member[s]
        t0 = t1 = t2 = t3 = t4 = t5 = 0.0
        for y in range(n_y):
            m = counts[y]
            t0 += m * r0[y]
            t1 += m * r1[y]
            t2 += m * r2[y]
            t3 += m * r3[y]
            t4 += m * r4[y]
            t5 += m * r5[y]
        sums[s, 0] = t0
        sums[s, 1] = t1
        sums[s, 2] = t2
        sums[s, 3] = t3
        sums[s, 4] = t4
        sums[s, 5] = t5


@njit(nogil=True, error_model="numpy")
def _draw_sums(
    key: np.uint64, n_valid: int, rows: np.ndarray, member: np.ndarray, sums: np.ndarray
) -> None:
    """The draws of :func:`_fill_draws`, sample by sample: ``member[s, draw] += 1`` and
    ``sums[s] = Σ rows[draw]`` over the sample's draws (two interleaved sums, added in a
    fixed order, so the latency chains are half as long)."""
    n = np.uint64(n_valid)
    thirty_two = np.uint64(32)
    n_samples = member.shape[0]
    pair = np.uint64(0)
    z = splitmix64(key)
    i = 0
    for s in range(n_samples):
        a0 = a1 = a2 = a3 = a4 = a5 = 0.0
        b0 = b1 = b2 = b3 = b4 = b5 = 0.0
        for v in range(n_valid):
            j = np.uint64(i >> 1)
            if j != pair:
                pair = j
                z = splitmix64(key + j)
            u = (z >> thirty_two) if (i & 1) == 0 else (z & _LOW32)
            d = np.int64((u * n) >> thirty_two)
            member[s, d] += 1.0
            if v & 1:
                b0 += rows[d, 0]
                b1 += rows[d, 1]
                b2 += rows[d, 2]
                b3 += rows[d, 3]
                b4 += rows[d, 4]
                b5 += rows[d, 5]
            else:
                a0 += rows[d, 0]
                a1 += rows[d, 1]
                a2 += rows[d, 2]
                a3 += rows[d, 3]
                a4 += rows[d, 4]
                a5 += rows[d, 5]
            i += 1
        sums[s, 0] = a0 + b0
        sums[s, 1] = a1 + b1
        sums[s, 2] = a2 + b2
        sums[s, 3] = a3 + b3
        sums[s, 4] = a4 + b4
        sums[s, 5] = a5 + b5


@njit(nogil=True)
def draw_slots(key: np.uint64, n_valid: int, n_samples: int) -> np.ndarray:
    """(sample, slot) indices into a gage's valid years, as the suite draws them."""
    flat = np.empty(n_samples * n_valid, np.int64)
    _fill_draws(key, n_valid, n_samples * n_valid, flat)
    return flat.reshape((n_samples, n_valid))


_SIGN = np.uint64(1 << 63)
_ALL = np.uint64(0xFFFFFFFFFFFFFFFF)


@njit(nogil=True)
def argsort_floats(vals: np.ndarray, order: np.ndarray, scratch: np.ndarray) -> None:
    """Stable ascending order of float64 ``vals`` into ``order`` (NaN last, as R's order()).

    An LSD radix sort on 8-bit digits of the order-preserving integer image of each value,
    skipping digits that every value shares; ``scratch`` is (3, n) uint64. ~6x faster than
    numba's ``np.argsort`` for the ~1000 bootstrap values of a gage.
    """
    n = vals.shape[0]
    keys = scratch[0]
    tmp_keys = scratch[1]
    tmp_idx = scratch[2]
    bits = vals.view(np.uint64)
    for i in range(n):
        b = bits[i]
        if vals[i] != vals[i]:
            keys[i] = _ALL  # every NaN after +inf
        elif b & _SIGN:
            keys[i] = b ^ _ALL
        else:
            keys[i] = b ^ _SIGN
        order[i] = i
    counts = np.zeros((8, 256), np.int64)  # every digit's histogram in one pass
    for i in range(n):
        k = keys[i]
        for p in range(8):
            counts[p, (k >> np.uint64(8 * p)) & np.uint64(255)] += 1
    src_k, dst_k = keys, tmp_keys
    src_i = order
    dst_i = tmp_idx.view(np.int64)
    swapped = False
    for p in range(8):
        sh = np.uint64(8 * p)
        row = counts[p]
        if row[(src_k[0] >> sh) & np.uint64(255)] == n:
            continue  # every value shares this digit
        total = 0
        for d in range(256):
            c = row[d]
            row[d] = total
            total += c
        for i in range(n):
            d = (src_k[i] >> sh) & np.uint64(255)
            pos = row[d]
            row[d] = pos + 1
            dst_k[pos] = src_k[i]
            dst_i[pos] = src_i[i]
        src_k, dst_k = dst_k, src_k
        src_i, dst_i = dst_i, src_i
        swapped = not swapped
    if swapped:
        for i in range(n):
            order[i] = src_i[i]


@njit(nogil=True, error_model="numpy")
def year_sums(
    obs: np.ndarray,
    sim: np.ndarray,
    slot_of_day: np.ndarray,
    stats: np.ndarray,
    span: np.ndarray,
    centre: np.ndarray,
    start: int,
    stop: int,
) -> None:
    """Gages ``start:stop``: ``stats`` (G, K, 6) valid-day sums per water-year slot centred
    on ``centre`` (G, 2: the means of o and s over valid days), ``span`` (G, 2) the first
    and last day with both values (-1: none)."""
    n_days = obs.shape[1]
    n_slots = stats.shape[1]
    for g in range(start, stop):
        st = stats[g]
        st[:, :] = 0.0
        first = -1
        for d in range(n_days):
            if not (math.isnan(obs[g, d]) or math.isnan(sim[g, d])):
                first = d
                break
        last = -1
        for d in range(n_days - 1, first - 1, -1):
            if not (math.isnan(obs[g, d]) or math.isnan(sim[g, d])):
                last = d
                break
        # sums relative to the first valid day's values, re-centred exactly below
        shift_o = 0.0
        shift_s = 0.0
        for d in range(max(first, 0), n_days if first >= 0 else 0):
            o = np.float64(obs[g, d])
            s = np.float64(sim[g, d])
            if o > ZERO_FLOW and s > ZERO_FLOW:
                shift_o = o
                shift_s = s
                break
        # sums kept in registers while the water year stays the same (days in date
        # order: a year is one run of days), added to its row when the year changes
        cur = slot_of_day[max(first, 0)]
        c0 = c1 = c2 = c3 = c4 = c5 = 0.0
        for d in range(max(first, 0), last + 1):
            k = slot_of_day[d]
            if k != cur:
                st[cur, 0] += c0
                st[cur, 1] += c1
                st[cur, 2] += c2
                st[cur, 3] += c3
                st[cur, 4] += c4
                st[cur, 5] += c5
                c0 = c1 = c2 = c3 = c4 = c5 = 0.0
                cur = k
            o = np.float64(obs[g, d])
            s = np.float64(sim[g, d])
            ok = o > ZERO_FLOW and s > ZERO_FLOW
            x = o - shift_o if ok else 0.0  # selects, not branches
            y = s - shift_s if ok else 0.0
            c0 += 1.0 if ok else 0.0
            c1 += x
            c2 += y
            c3 += x * x
            c4 += y * y
            c5 += x * y
        if first >= 0:
            st[cur, 0] += c0
            st[cur, 1] += c1
            st[cur, 2] += c2
            st[cur, 3] += c3
            st[cur, 4] += c4
            st[cur, 5] += c5
        span[g, 0] = first
        span[g, 1] = last
        # re-centre every year on the gage's mean of valid days (exact shifts)
        n = 0.0
        so = 0.0
        ss = 0.0
        for k in range(n_slots):
            n += st[k, 0]
            so += st[k, 1]
            ss += st[k, 2]
        if n == 0.0:
            centre[g, 0] = 0.0
            centre[g, 1] = 0.0
            continue
        mo = shift_o + so / n
        ms = shift_s + ss / n
        centre[g, 0] = mo
        centre[g, 1] = ms
        for k in range(n_slots):
            c = st[k, 0]
            if c == 0.0:
                continue
            a = shift_o - mo
            b = shift_s - ms
            x1 = st[k, 1]
            y1 = st[k, 2]
            st[k, 3] += 2.0 * a * x1 + c * a * a
            st[k, 4] += 2.0 * b * y1 + c * b * b
            st[k, 5] += a * y1 + b * x1 + c * a * b
            st[k, 1] = x1 + c * a
            st[k, 2] = y1 + c * b


@njit(nogil=True, error_model="numpy", inline="always")
def _scores(acc: np.ndarray, mode: int) -> tuple[float, float]:
    """(NSE, KGE) of a sample from its sums ``acc`` (6,) centred on a common (mo, ms).

    hytest: NSE = 2·α·r − ((ō − s̄)/σo)² − α² with sample (n−1) variances (gumboot);
    standard: NSE = 1 − Σ(s−o)²/Σ(o−ō)². KGE = 1 − sqrt((s̄/ō−1)² + (α−1)² + (r−1)²)
    in both. A score that is undefined (or infinite) is NaN. ``acc[6:8]`` holds the
    centre (the gage's means of o and s over valid days) the sums are relative to.
    """
    n = acc[0]
    if n < 2.0:
        return np.nan, np.nan
    dx = acc[1] / n
    dy = acc[2] / n
    sxx = acc[3] - acc[1] * dx
    syy = acc[4] - acc[2] * dy
    sxy = acc[5] - acc[1] * dy
    if sxx <= 0.0:
        return np.nan, np.nan
    vo = sxx / (n - 1.0)
    vs = max(syy, 0.0) / (n - 1.0)
    alpha = math.sqrt(vs) / math.sqrt(vo)
    r = sxy / math.sqrt(sxx * syy) if syy > 0.0 else np.nan
    mean_o = acc[6] + dx
    mean_s = acc[7] + dy
    if mode == MODE_HYTEST:
        y_beta = (mean_o - mean_s) / math.sqrt(vo)
        nse = 2.0 * alpha * r - y_beta * y_beta - alpha * alpha
    else:
        diff = mean_s - mean_o
        nse = 1.0 - ((sxx + syy - 2.0 * sxy) + n * diff * diff) / sxx
    beta = mean_s / mean_o if mean_o != 0.0 else np.nan
    kge = 1.0 - math.sqrt((beta - 1.0) ** 2 + (alpha - 1.0) ** 2 + (r - 1.0) ** 2)
    return (nse if math.isfinite(nse) else np.nan, kge if math.isfinite(kge) else np.nan)


@njit(nogil=True, error_model="numpy")
def _jackknife(vals: np.ndarray, n: int, score: float, out: np.ndarray) -> None:
    """seJack and biasJack over the non-NaN jackknife values (gumboot's na.rm)."""
    total = 0.0
    count = 0
    for j in range(n):
        if not math.isnan(vals[j]):
            total += vals[j]
            count += 1
    if count == 0:
        out[1] = np.nan
        out[6] = np.nan
        return
    mean = total / count
    sq = 0.0
    for j in range(n):
        if not math.isnan(vals[j]):
            sq += (mean - vals[j]) ** 2
    out[1] = math.sqrt((count - 1.0) * sq / count)
    out[6] = (count - 1.0) * (mean - score)


@njit(nogil=True, error_model="numpy")
def _bootstrap(
    vals: np.ndarray,
    score: float,
    member: np.ndarray,
    n_rec: int,
    holders: np.ndarray,
    targets: np.ndarray,
    n_targets: int,
    scratch: np.ndarray,
    order: np.ndarray,
    sort_scratch: np.ndarray,
    out: np.ndarray,
) -> None:
    """seBoot, p05/p50/p95, biasBoot and seJab of one statistic's bootstrap values.

    ``member`` (S, Y) counts say which of the ``n_rec`` record years each sample holds,
    ``holders`` (Y) how many samples hold each; ``targets[:n_targets]`` the left-out year of
    each jackknife-after-bootstrap replicate (-1: none, every sample kept).
    """
    n_s = vals.shape[0]
    mean = 0.0
    for s in range(n_s):
        mean += vals[s]
    mean /= n_s
    sq = 0.0
    for s in range(n_s):
        sq += (vals[s] - mean) ** 2
    out[2] = math.sqrt(sq / (n_s - 1))
    out[7] = mean - score
    argsort_floats(vals, order, sort_scratch)  # NaN last, as R's order()
    # floor(q · n) (non-negative: int() truncates)
    p05 = vals[order[int(0.05 * n_s)]]
    out[3] = p05
    out[4] = vals[order[int(0.50 * n_s)]]
    p95 = vals[order[int(0.95 * n_s)]]
    out[5] = p95
    # Each replicate's 5 % value is near the start of the sorted samples and its 95 %
    # value near the end: walk in from both ends, keeping a rank per left-out year, only
    # until every year has found its value (~10 % of the samples instead of all of them).
    rank = scratch[0]
    target = scratch[1]
    lo = scratch[2]
    hi = scratch[3]
    todo = 0
    for y in range(n_rec):
        m = n_s - holders[y]
        rank[y] = 0.0
        lo[y] = np.nan
        hi[y] = np.nan
        target[y] = math.floor(0.05 * m) if m > 0 else -1.0
        if m > 0:
            todo += 1
    j = 0
    left = todo
    while left > 0 and j < n_s:
        s = order[j]
        row = member[s]
        for y in range(n_rec):
            if row[y] == 0.0 and rank[y] >= 0.0:
                if rank[y] == target[y]:
                    lo[y] = vals[s]
                    rank[y] = -1.0  # found
                    left -= 1
                else:
                    rank[y] += 1.0
        j += 1
    for y in range(n_rec):
        m = n_s - holders[y]
        rank[y] = 0.0
        # the 0-based rank floor(0.95 m) from the start is m - 1 - floor(0.95 m) from the end
        target[y] = m - 1 - math.floor(0.95 * m) if m > 0 else -1.0
    j = n_s - 1
    left = todo
    while left > 0 and j >= 0:
        s = order[j]
        row = member[s]
        for y in range(n_rec):
            if row[y] == 0.0 and rank[y] >= 0.0:
                if rank[y] == target[y]:
                    hi[y] = vals[s]
                    rank[y] = -1.0
                    left -= 1
                else:
                    rank[y] += 1.0
        j -= 1
    wsum = 0.0
    for t in range(n_targets):
        y = targets[t]
        wsum += (p95 - p05) if y < 0 else (hi[y] - lo[y])
    wmean = wsum / n_targets
    wsq = 0.0
    for t in range(n_targets):
        y = targets[t]
        w = (p95 - p05) if y < 0 else (hi[y] - lo[y])
        wsq += (wmean - w) ** 2
    out[8] = math.sqrt((n_targets - 1.0) * wsq / n_targets)


@njit(nogil=True, error_model="numpy")
def gage_block(
    stats: np.ndarray,
    span: np.ndarray,
    centre: np.ndarray,
    slot_of_day: np.ndarray,
    slot_on_axis: np.ndarray,
    cal_index: np.ndarray,
    cal_years: np.ndarray,
    year0: int,
    keys: np.ndarray,
    plan: np.ndarray,
    n_samples: int,
    min_days: int,
    min_years: int,
    mode: int,
    out: np.ndarray,
    samples: np.ndarray,
    n_valid_out: np.ndarray,
    code: np.ndarray,
    start: int,
    stop: int,
) -> None:
    """Score, jackknife, bootstrap and jackknife-after-bootstrap of NSE and KGE for gages
    ``start:stop``.

    ``slot_of_day`` (D) water-year slot of each day; ``slot_on_axis`` (K) whether a slot
    has days on the time axis; ``cal_index`` (D) index of each day's calendar year in
    ``cal_years`` (the axis' distinct calendar years, ascending); ``year0`` the water year
    of slot 0. ``keys`` (G) each gage's stream key; ``plan`` (rows, S) water years that
    replace the draws (an empty array: draw). Fills ``out`` (G, 2, 9) in the order of
    ``registry.UNCERTAINTY_COLUMNS`` (score, seJack, ..., seJab), ``samples`` (G, 2, S)
    the bootstrap values, ``n_valid_out`` and ``code``.
    """
    n_slots = stats.shape[1]
    use_plan = plan.shape[0] > 0
    rec = np.empty(n_slots, np.int64)  # record years as slots
    valid = np.empty(n_slots, np.int64)  # valid years as positions in rec
    pos_of_slot = np.empty(n_slots, np.int64)
    col_of_pos = np.empty(n_slots, np.int64)
    sums = np.empty((n_samples, N_STATS))
    holders = np.zeros(n_slots, np.int64)
    targets = np.empty(n_slots, np.int64)
    scratch = np.empty((5, n_slots))
    order = np.empty(n_samples, np.int64)
    sort_scratch = np.empty((3, n_samples), np.uint64)
    jvals = np.empty((2, n_slots))
    total = np.zeros(8)
    acc = np.zeros(8)
    for g in range(start, stop):
        out[g, :, :] = np.nan
        samples[g, :, :] = np.nan
        n_valid_out[g] = 0
        first = span[g, 0]
        last = span[g, 1]
        if first < 0:
            code[g] = UNC_NO_DAYS
            continue
        st = stats[g]
        k0 = slot_of_day[first]
        k1 = slot_of_day[last]
        n_rec = 0
        n_val = 0
        pos_of_slot[:] = -1
        total[:] = 0.0
        for k in range(k0, k1 + 1):
            if not slot_on_axis[k]:
                continue
            pos_of_slot[k] = n_rec
            rec[n_rec] = k
            if st[k, 0] > min_days:
                valid[n_val] = n_rec
                n_val += 1
            for c in range(N_STATS):
                total[c] += st[k, c]
            n_rec += 1
        n_valid_out[g] = n_val
        if n_val < min_years:
            code[g] = UNC_TOO_FEW_YEARS
            continue
        if use_plan and plan.shape[0] < n_val:
            code[g] = UNC_BOOT_YEARS_SHORT
            continue
        code[g] = UNC_OK
        total[6] = centre[g, 0]
        total[7] = centre[g, 1]
        acc[6] = centre[g, 0]
        acc[7] = centre[g, 1]
        nse0, kge0 = _scores(total, mode)
        out[g, 0, 0] = nse0
        out[g, 1, 0] = kge0
        for j in range(n_val):
            k = rec[valid[j]]
            for c in range(N_STATS):
                acc[c] = total[c] - st[k, c]
            jvals[0, j], jvals[1, j] = _scores(acc, mode)
        if mode == MODE_HYTEST:
            coded = nse0 <= MISSING_CODE or kge0 <= MISSING_CODE
            for j in range(n_val):
                coded = coded or jvals[0, j] <= MISSING_CODE or jvals[1, j] <= MISSING_CODE
            if coded:
                out[g, :, :] = np.nan
                code[g] = UNC_MISSING_CODE
                continue
        _jackknife(jvals[0], n_val, nse0, out[g, 0])
        _jackknife(jvals[1], n_val, kge0, out[g, 1])
        # bootstrap: each sample is the sum of the rows of the years it drew (drawn years
        # summed as they are drawn; a boot_years table: its (sample, year) counts times
        # the (year, statistic) rows). ``member`` counts how often each sample holds each
        # year. Columns: the valid years first (so a draw is its column), then the others.
        col = 0
        for j in range(n_val):
            col_of_pos[valid[j]] = col
            col += 1
        for p in range(n_rec):
            if st[rec[p], 0] <= min_days:
                col_of_pos[p] = col
                col += 1
        member = np.zeros((n_samples, n_rec))
        rows = np.empty((n_rec, N_STATS))
        rows_t = np.empty((N_STATS, n_rec))
        for p in range(n_rec):
            for c in range(N_STATS):
                rows[col_of_pos[p], c] = st[rec[p], c]
                rows_t[c, col_of_pos[p]] = st[rec[p], c]
        if use_plan:
            for s in range(n_samples):
                for v in range(n_val):
                    k = plan[v, s] - year0
                    if k0 <= k <= k1 and slot_on_axis[k]:
                        member[s, col_of_pos[pos_of_slot[k]]] += 1.0
            _sample_sums(member, rows_t, sums)
        else:
            _draw_sums(keys[g], n_val, rows, member, sums)
        holders[:n_rec] = 0
        for s in range(n_samples):
            for c in range(N_STATS):
                acc[c] = sums[s, c]
            samples[g, 0, s], samples[g, 1, s] = _scores(acc, mode)
            for p in range(n_rec):
                holders[p] += member[s, p] > 0.0
        # jackknife-after-bootstrap replicates: gumboot's calendar years, or valid years
        if mode == MODE_HYTEST:
            c0 = cal_index[first]
            c1 = cal_index[last]
            for t in range(1, n_rec + 1):
                y = -1
                if c0 + t <= c1:
                    k = cal_years[c0 + t] - year0
                    if k0 <= k <= k1 and pos_of_slot[k] >= 0:
                        y = col_of_pos[pos_of_slot[k]]
                targets[t - 1] = y
            n_t = n_rec
        else:
            for j in range(n_val):
                targets[j] = j  # valid year j is column j
            n_t = n_val
        for stat in range(2):
            _bootstrap(
                samples[g, stat], out[g, stat, 0], member, n_rec, holders, targets, n_t,
                scratch, order, sort_scratch, out[g, stat],
            )  # fmt: skip
