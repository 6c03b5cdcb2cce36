"""Compiled per-gage kernels: a few fused passes over each gage's paired days compute every metric.

The engine's floor is order statistics (Spearman ranks, quantiles, flow-duration curves,
sorted D-score series, rank bins). Each series is ordered once with a stable LSD radix
argsort over its IEEE-754 bit pattern (O(n), ties kept in order of appearance; for float32
data the 32-bit keys are packed with the day index in one vectorized pass and sorted
relative to the smallest key in 3 passes of ceil(span / 3) bits, and the sorted values are
decoded from the keys) and every order statistic is derived from that one order. The
floored logs ln max(x, 0.01) are computed once per series and shared by logNSE, pBiasFLV
and the D-score. The sums run in small helpers compiled with ``fastmath={"reassoc"}`` (and
nothing else: no NaN/inf assumptions), which lets LLVM keep SIMD partial sums instead of
one latency-bound chain; they differ from left-to-right sums by rounding only (the rank
sums of Spearman are exact either way).
Kernels release the GIL; the engine runs blocks of gages on a thread pool, and each block
allocates its scratch once (none per gage).
"""

from __future__ import annotations

import math
import struct
import zlib

import numpy as np

from gagebench.jit import njit
from gagebench.metrics.registry import METRICS, slot

# Each metric's slot in the output row is its position in registry.METRICS (slot()): plain
# module-level ints, which numba compiles in as constants. A kernel writes its metric with
# ``out[NAME] = ...``; the row is len(METRICS) wide (the engine allocates it).
NSE = slot("NSE")
KGE = slot("KGE")
LOGNSE = slot("logNSE")
PBIAS = slot("pbias")
RSD = slot("rSD")
PEARSON = slot("pearson")
SPEARMAN = slot("spearman")
FMS = slot("pBiasFMS")
FLV = slot("pBiasFLV")
FHV = slot("pBiasFHV")
MSE = slot("mse")
E_BIAS = slot("e_bias")
E_DIST = slot("e_dist")
E_SEQ = slot("e_seq")
WINTER = slot("winter")
SPRING = slot("spring")
SUMMER = slot("summer")
FALL = slot("fall")
Q_LOW = slot("low")
Q_BELOW = slot("below_avg")
Q_ABOVE = slot("above_avg")
Q_HIGH = slot("high")
KGE2012 = slot("KGE2012")
KGE2021 = slot("KGE2021")
KGE_NP = slot("KGEnp")
RMSE = slot("RMSE")
MAE = slot("MAE")
R2 = slot("R2")

#: A fingerprint of the slot layout (the registry's names in order). numba's on-disk cache
#: keeps the constants a kernel was compiled with and is refreshed only when this file's
#: text changes, not when registry.py's does: ``compiled_layout()`` returns the fingerprint the
#: cached kernels were compiled with, and the engine refuses to run when they differ.
LAYOUT = zlib.crc32("\0".join(m.name for m in METRICS).encode())


@njit(nogil=True)
def compiled_layout() -> int:
    """``LAYOUT`` as compiled (or loaded from numba's cache) with these kernels."""
    return LAYOUT


# Row status codes; names in engine.STATUS_NAMES.
OK, NO_OBSERVATIONS, NO_SIMULATION, TOO_FEW_DAYS, CONSTANT_OBSERVATIONS = range(5)

MODE_STANDARD, MODE_HYTEST = 0, 1
LOG_FLOOR = 0.01
HYTEST_SIM_LOG_FLOOR = 0.1

LN_HYTEST_SIM_FLOOR = math.log(HYTEST_SIM_LOG_FLOOR)

# ln(x) as in fdlibm's __ieee754_log (Sun Microsystems, 1993; freely redistributable):
# x = 2^k (1 + f) with 1 + f in [sqrt(2)/2, sqrt(2)), ln(1 + f) = f - f^2/2 + s (f^2/2 + R)
# with s = f / (2 + f) and R a minimax polynomial; error < 1 ulp.
_FLOOR_BITS = struct.unpack("<q", struct.pack("<d", LOG_FLOOR))[0]
_INF_BITS = 0x7FF0000000000000
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_LG1 = 6.666666666666735130e-01
_LG2 = 3.999999999940941908e-01
_LG3 = 2.857142874366239149e-01
_LG4 = 2.222219843214978396e-01
_LG5 = 1.818357216161805012e-01
_LG6 = 1.531383769920937332e-01
_LG7 = 1.479819860511658591e-01

_RADIX_BITS = 11
_RADIX_SIZE = 1 << _RADIX_BITS
_RADIX_MAX_PASSES = (64 + _RADIX_BITS - 1) // _RADIX_BITS
_TIE_BLOCK = 256


@njit(nogil=True, error_model="numpy", inline="always")
def _to_offsets(row: np.ndarray, n: int, size: int = _RADIX_SIZE) -> bool:
    """Turn one digit's ``size`` counts into start offsets in place; True if one bucket
    holds all n."""
    total = 0
    for b in range(size):
        c = row[b]
        if c == n:
            return True
        row[b] = total
        total += c
    return False


@njit(nogil=True, error_model="numpy", inline="always")
def _scatter_by_digit(
    src: np.ndarray, dst: np.ndarray, row: np.ndarray, shift: np.uint64, mask: np.uint64, n: int
) -> None:
    """One stable LSD counting pass: each word of ``src[:n]`` goes to ``dst`` at the next
    free slot of its digit ``(word >> shift) & mask``; ``row`` holds the digits' offsets."""
    for i in range(n):
        k = src[i]
        b = (k >> shift) & mask
        pos = row[b]
        row[b] = pos + 1
        dst[pos] = k


@njit(nogil=True, error_model="numpy")
def _argsort_into(
    values: np.ndarray,
    keys: np.ndarray,
    key_floats: np.ndarray,
    keys_tmp: np.ndarray,
    order: np.ndarray,
    order_tmp: np.ndarray,
    counts: np.ndarray,
) -> np.ndarray:
    """Stable LSD radix argsort of finite float64 ``values`` using caller-owned buffers.

    Keys are the IEEE-754 bits made order-preserving as unsigned integers; only the bit span
    that varies across the series is sorted (float32 data widened to float64 have 29 zero
    mantissa bits, and flows share sign and high exponent bits), so a daily series usually
    needs 3 counting passes of 11 bits. Returns the buffer (``order`` or ``order_tmp``) that
    holds the permutation in its first ``values.size`` slots. ``key_floats`` is ``keys``
    viewed as float64 (the bit cast); all buffers are at least ``values.size`` long.
    """
    n = values.size
    sign = np.uint64(1) << np.uint64(63)
    ones = ~np.uint64(0)
    for i in range(n):
        key_floats[i] = values[i] + 0.0  # + 0.0 turns -0.0 into 0.0: equal values tie
    varying = np.uint64(0)
    first = np.uint64(0)
    for i in range(n):
        b = keys[i]
        k = (b ^ ones) if (b & sign) else (b | sign)
        keys[i] = k
        if i == 0:
            first = k
        varying |= k ^ first
        order[i] = i
    if varying == 0:
        return order
    low = 0
    while not (varying >> np.uint64(low)) & np.uint64(1):
        low += 1
    high = 63
    while not (varying >> np.uint64(high)) & np.uint64(1):
        high -= 1
    span = high - low + 1
    passes = (span - 1) // _RADIX_BITS + 1
    mask = np.uint64(_RADIX_SIZE - 1)
    packed = span <= 32
    base = low
    if packed:
        # The varying key bits fit in 32: pack (key bits, day index) into one word so each
        # pass moves one array; ties stay in day order (LSD passes are stable).
        for i in range(n):
            keys[i] = ((keys[i] >> np.uint64(low)) << np.uint64(32)) | np.uint64(i)
        base = 32
    counts[:passes, :] = 0
    for i in range(n):
        k = keys[i] >> np.uint64(base)
        for d in range(passes):
            counts[d, (k >> np.uint64(d * _RADIX_BITS)) & mask] += 1
    src_k, dst_k, src_o, dst_o = keys, keys_tmp, order, order_tmp
    for d in range(passes):
        row = counts[d]
        if _to_offsets(row, n):  # every key has the same digit here: nothing to reorder
            continue
        shift = np.uint64(base + d * _RADIX_BITS)
        if packed:
            _scatter_by_digit(src_k, dst_k, row, shift, mask, n)
        else:
            for i in range(n):
                k = src_k[i]
                b = (k >> shift) & mask
                pos = row[b]
                row[b] = pos + 1
                dst_k[pos] = k
                dst_o[pos] = src_o[i]
            src_o, dst_o = dst_o, src_o
        src_k, dst_k = dst_k, src_k
    if packed:
        low_word = np.uint64(0xFFFFFFFF)
        for i in range(n):
            order[i] = np.int64(src_k[i] & low_word)
        return order
    return src_o


_SIGN32 = np.uint32(1 << 31)


@njit(nogil=True, error_model="numpy")
def _pack_keys32(
    values: np.ndarray, n: int, key_floats: np.ndarray, packed: np.ndarray
) -> tuple[np.uint64, np.uint64]:
    """Start a float32 argsort: ``packed[j] = key(values[j]) << 32 | j`` for j < n.

    The key is the float32 bit pattern made order-preserving as an unsigned integer
    (negative: all bits flipped; positive: sign bit set), computed branch-free so the loop
    vectorizes. ``values`` are float64 holding float32 values; + 0.0 turns -0.0 into 0.0,
    an equal value with the same key. ``key_floats`` is float32 scratch. Returns the
    smallest and largest key.
    """
    for j in range(n):
        key_floats[j] = np.float32(values[j] + 0.0)
    bits = key_floats.view(np.uint32)
    key_min = np.uint64(0xFFFFFFFF)
    key_max = np.uint64(0)
    for j in range(n):
        b = np.uint64(bits[j])
        k = b ^ (((b >> np.uint64(31)) * np.uint64(0x7FFFFFFF)) | np.uint64(0x80000000))
        packed[j] = (k << np.uint64(32)) | np.uint64(j)
        key_min = min(key_min, k)
        key_max = max(key_max, k)
    return key_min, key_max


@njit(nogil=True, error_model="numpy")
def _radix_passes32(
    packed: np.ndarray,
    packed_tmp: np.ndarray,
    counts: np.ndarray,
    key_min: np.uint64,
    key_max: np.uint64,
    n: int,
    order: np.ndarray,
    sorted_bits: np.ndarray,
) -> None:
    """Finish a stable argsort of float32 values packed as (key << 32 | day) words.

    ``packed[:n]`` holds the words (``_pack_keys32``) and ``key_min``/``key_max`` bound
    their keys. Keys are sorted relative to ``key_min``: a daily flow series spans ~26 of
    the 32 key bits, so three LSD counting passes of ceil(span / 3) bits (9 for most
    gages: 512 buckets, whose write positions stay in L1; at most 11) sort the words, ties
    in day order. The day of the j-th smallest goes to ``order[j]`` and its value, decoded
    from the key, to ``sorted_bits[j]`` (the bits of a float32 array: sequential, no gather
    through the order). ``counts`` has 3 rows of at least 2048.
    """
    key_min = np.uint64(key_min)  # a Python int from outside would type as int64, and
    key_max = np.uint64(key_max)  # int64 mixed with uint64 is float64 in numba
    span = key_max - key_min
    width = 0
    while width < 32 and (span >> np.uint64(width)) != 0:
        width += 1
    bits = max(1, (width + 2) // 3)
    size = 1 << bits
    mask = np.uint64(size - 1)
    shift1 = np.uint64(bits)
    shift2 = np.uint64(2 * bits)
    counts[:3, :size] = 0
    base = key_min << np.uint64(32)
    for i in range(n):
        w = packed[i] - base
        packed[i] = w
        k = w >> np.uint64(32)
        counts[0, k & mask] += 1
        counts[1, (k >> shift1) & mask] += 1
        counts[2, (k >> shift2) & mask] += 1
    src, dst = packed, packed_tmp
    for d in range(3):
        row = counts[d]
        if _to_offsets(row, n, size):  # every key has the same digit here: no reordering
            continue
        _scatter_by_digit(src, dst, row, np.uint64(32 + d * bits), mask, n)
        src, dst = dst, src
    low_word = np.uint64(0xFFFFFFFF)
    for i in range(n):
        w = src[i]
        order[i] = np.int64(w & low_word)
        k = np.uint32((w >> np.uint64(32)) + key_min)
        sorted_bits[i] = (k ^ _SIGN32) if (k & _SIGN32) else ~k  # the key's inverse


@njit(nogil=True, error_model="numpy")
def floored_logs(
    values: np.ndarray,
    n: int,
    scratch_bits: np.ndarray,
    scratch: np.ndarray,
    exponents: np.ndarray,
    out: np.ndarray,
) -> None:
    """``out[:n] = ln(max(values[:n], 0.01))``, within 1 ulp of libm's log, ~3x faster.

    Two branch-free loops the compiler vectorizes (libm's log is a scalar call): integer
    work on the bit patterns (floor, exponent, mantissa scaled into [sqrt(.5), sqrt(2)))
    then fdlibm's polynomial. The floor is applied to the bits: for IEEE doubles, int64
    order is float order on x >= 0 and every negative (or -0.0) is below 0.01's bits.
    ``values`` is contiguous float64; ``scratch`` is ``scratch_bits`` (uint64) viewed as
    float64; ``exponents`` float64. A +inf flow falls back to libm (ln inf = inf).
    """
    bits_in = values.view(np.int64)
    top = 0
    for i in range(n):
        b = max(bits_in[i], _FLOOR_BITS)
        top = max(top, b)
        hx = b >> 32
        k = (hx >> 20) - 1023
        hx &= 0x000FFFFF
        j = (hx + 0x95F64) & 0x100000
        k += j >> 20
        scratch_bits[i] = ((hx | (j ^ 0x3FF00000)) << 32) | (b & 0xFFFFFFFF)
        exponents[i] = k
    for i in range(n):
        f = scratch[i] - 1.0
        hfsq = 0.5 * f * f
        s = f / (2.0 + f)
        z = s * s
        w = z * z
        t1 = w * (_LG2 + w * (_LG4 + w * _LG6))
        t2 = z * (_LG1 + w * (_LG3 + w * (_LG5 + w * _LG7)))
        dk = exponents[i]
        out[i] = s * (hfsq + t2 + t1) + dk * _LN2_LO - hfsq + f + dk * _LN2_HI
    if top >= _INF_BITS:
        for i in range(n):
            out[i] = math.log(max(values[i], LOG_FLOOR))


@njit(nogil=True, error_model="numpy", inline="always")
def _lerp(a: float, b: float, t: float) -> float:
    """NumPy's linear interpolation (numpy.lib._function_base_impl._lerp)."""
    diff = b - a
    if t >= 0.5:
        return b - diff * (1.0 - t)
    return a + diff * t


@njit(nogil=True, error_model="numpy")
def quantile_sorted(sorted_values: np.ndarray, q: float) -> float:
    """``numpy.quantile(x, q)`` (method "linear") of an ascending array, in float64 (also
    for a float32 array)."""
    n = sorted_values.size
    virtual = q * (n - 1)
    lo = math.floor(virtual)
    if lo >= n - 1:
        return np.float64(sorted_values[n - 1])
    return _lerp(np.float64(sorted_values[lo]), np.float64(sorted_values[lo + 1]), virtual - lo)


@njit(nogil=True, error_model="numpy")
def _average_ranks(
    sorted_values: np.ndarray, order: np.ndarray, ranks: np.ndarray, in_day_order: bool = True
) -> None:
    """1-based ranks with ties averaged (scipy.stats.rankdata 'average'): in day order
    (``ranks[order[j]]``) or, with ``in_day_order`` False, in sorted order (``ranks[j]``).

    Every value first gets its ordinal rank (a branch-free scatter); then the tie groups
    get their mean rank. Ties are searched only in blocks of neighbours where a
    vectorized compare counts some (continuous flows have a handful, intermittent ones a
    long run of zeros): O(n) either way.
    """
    n = sorted_values.size
    if in_day_order:
        for j in range(n):
            ranks[order[j]] = j + 1.0
    else:
        for j in range(n):
            ranks[j] = j + 1.0
    j0 = 1
    while j0 < n:
        # A vectorized count of equal neighbours skips the blocks without ties.
        j1 = min(n, j0 + _TIE_BLOCK)
        ties = 0
        for j in range(j0, j1):
            ties += sorted_values[j] == sorted_values[j - 1]
        j = j0
        while ties and j < j1:
            if sorted_values[j] != sorted_values[j - 1]:
                j += 1
                continue
            start = j - 1
            end = j + 1
            while end < n and sorted_values[end] == sorted_values[start]:
                end += 1
            rank = 0.5 * (start + end - 1) + 1.0
            for k in range(start, end):
                ranks[order[k] if in_day_order else k] = rank
            j = end + 1  # sorted_values[end] differs from its left neighbour
        j0 = max(j1, j)


@njit(nogil=True, error_model="numpy", fastmath={"reassoc"})
def _paired_moments(
    o: np.ndarray, s: np.ndarray, lo: np.ndarray, ls: np.ndarray, hytest: bool
) -> tuple[float, float, float, float, float, float, float, float, float]:
    """Sums and centred second moments of one gage's paired series, in two fused passes.

    Returns sum o, sum s, sum (s - o), Sxx, Syy, Sxy, SSE, Sxx of the floored logs and the
    log SSE. Each series is shifted by its first value, so a constant series has exactly
    zero spread (a plain mean of n equal values can be off in the last bit and leave
    ~1e-33 of variance: logNSE of an all-floored observed series would be -1e+27 instead
    of undefined). ``reassoc`` lets LLVM split each sum into SIMD partial sums instead of
    one latency-bound chain: the sums differ from left-to-right ones by rounding only. In
    hytest mode the logNSE sim is ln max(s, 0.1) = max(ln max(s, 0.01), ln 0.1).
    """
    n = o.size
    o0 = o[0]
    s0 = s[0]
    lo0 = lo[0]
    sum_o = 0.0
    sum_s = 0.0
    diff = 0.0
    mo = 0.0
    ms = 0.0
    mlo = 0.0
    for i in range(n):
        sum_o += o[i]
        sum_s += s[i]
        diff += s[i] - o[i]
        mo += o[i] - o0
        ms += s[i] - s0
        mlo += lo[i] - lo0
    mo /= n
    ms /= n
    mlo /= n
    sxx = 0.0
    syy = 0.0
    sxy = 0.0
    sse = 0.0
    lxx = 0.0
    lsse = 0.0
    for i in range(n):
        dx = (o[i] - o0) - mo
        dy = (s[i] - s0) - ms
        sxx += dx * dx
        syy += dy * dy
        sxy += dx * dy
        d = s[i] - o[i]
        sse += d * d
        dl = (lo[i] - lo0) - mlo
        lxx += dl * dl
        lsx = max(ls[i], LN_HYTEST_SIM_FLOOR) if hytest else ls[i]
        dd = lsx - lo[i]
        lsse += dd * dd
    return sum_o, sum_s, diff, sxx, syy, sxy, sse, lxx, lsse


@njit(nogil=True, error_model="numpy", fastmath={"reassoc"})
def _spearman(sorted_rank_o: np.ndarray, order_o: np.ndarray, rank_s: np.ndarray) -> float:
    """Pearson correlation of the average ranks: ``sorted_rank_o`` are the observed ranks in
    the observed order ``order_o``, ``rank_s`` the simulated ones in day order (one scatter
    and one gather instead of two scatters). Ranks are half-integers with mean exactly
    (n + 1) / 2, so every term is a multiple of 1/4 and each sum is exact in any order
    (reassoc only lets LLVM vectorize it)."""
    n = sorted_rank_o.size
    mean_rank = 0.5 * (n + 1)
    rxx = 0.0
    ryy = 0.0
    rxy = 0.0
    for j in range(n):
        dx = sorted_rank_o[j] - mean_rank
        dy = rank_s[order_o[j]] - mean_rank
        rxx += dx * dx
        ryy += dy * dy
        rxy += dx * dy
    return rxy / math.sqrt(rxx * ryy)


@njit(nogil=True, error_model="numpy")
def _div(num: float, den: float, safe: bool) -> float:
    """num/den; in standard mode (safe) an undefined ratio is NaN, never +/-inf."""
    if den == 0.0:
        if safe or num == 0.0 or num != num:
            return np.nan
        return math.copysign(np.inf, num) * math.copysign(1.0, den)
    return num / den


@njit(nogil=True, error_model="numpy")
def _log(x: float) -> float:
    """ln x with NumPy's conventions: ln 0 = -inf, ln of a negative = NaN."""
    if x > 0.0:
        return math.log(x)
    if x == 0.0:
        return -np.inf
    return np.nan


@njit(nogil=True, error_model="numpy")
def _standard_suite(
    o: np.ndarray,
    s: np.ndarray,
    lo: np.ndarray,
    ls: np.ndarray,
    so: np.ndarray,
    ss: np.ndarray,
    order_o: np.ndarray,
    order_s: np.ndarray,
    rank_o: np.ndarray,
    rank_s: np.ndarray,
    mode: int,
    out: np.ndarray,
    moments: tuple[float, float, float, float, float, float, float, float, float],
) -> None:
    """The standard suite of one gage from its paired series, their floored logs ``lo``/``ls``
    (ln max(x, 0.01)), sorted values ``so``/``ss`` (float64, or float32 when the data are)
    and orders; ``rank_*`` are scratch. ``moments``: ``_paired_moments`` of the series
    (computed once, shared with the kge and errors suites)."""
    n = o.size
    safe = mode == MODE_STANDARD
    sum_o, sum_s, diff, sxx, syy, sxy, sse, lxx, lsse = moments
    var_o = sxx / n
    var_s = syy / n
    out[NSE] = 1.0 - (sse / n) / var_o
    r = sxy / math.sqrt(sxx * syy)
    out[PEARSON] = r
    alpha = math.sqrt(var_s) / math.sqrt(var_o)
    out[RSD] = alpha
    beta = _div(sum_s, sum_o, safe)
    out[KGE] = 1.0 - math.sqrt((r - 1.0) ** 2 + (alpha - 1.0) ** 2 + (beta - 1.0) ** 2)
    out[PBIAS] = 100.0 * _div(diff, sum_o, safe)
    out[LOGNSE] = 1.0 - (lsse / n) / (lxx / n)

    # Spearman: Pearson of average ranks.
    _average_ranks(so, order_o, rank_o, False)
    _average_ranks(ss, order_s, rank_s)
    out[SPEARMAN] = _spearman(rank_o, order_o, rank_s)

    if mode == MODE_HYTEST:
        qo30 = quantile_sorted(so, 0.30)
        qo80 = quantile_sorted(so, 0.80)
        qs30 = quantile_sorted(ss, 0.30)
        qs80 = quantile_sorted(ss, 0.80)
        m = _log(qs30) - _log(qs80)
        ob = _log(qo30) - _log(qo80)
        out[FMS] = 100.0 * _div(m - ob, ob, False)
        # FLV: days with o <= q30(o); sums of logs relative to each series' q30. Unfloored
        # logs (HyTEST's): ln 0 = -inf, ln of a negative flow = NaN; above the 0.01 floor
        # the floored log is the log.
        log_qo = _log(qo30)
        log_qs = _log(qs30)
        m = 0.0
        ob = 0.0
        for i in range(n):
            if o[i] <= qo30:
                m += (ls[i] if s[i] > LOG_FLOOR else _log(s[i])) - log_qs
                ob += (lo[i] if o[i] > LOG_FLOOR else _log(o[i])) - log_qo
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
        # FMS: the slope of the curve's middle segment, from exceedance 0.2 to 0.7: the
        # flows where the curve reaches them, the ceil(0.2 n)-th and ceil(0.7 n)-th
        # largest (integer ceilings: 0.7 * 10 is 7.000000000000001), logs floored.
        at_02 = n - (2 * n + 9) // 10  # ascending position of the ceil(0.2 n)-th largest
        at_07 = n - (7 * n + 9) // 10
        m = math.log(max(np.float64(ss[at_02]), LOG_FLOOR)) - math.log(
            max(np.float64(ss[at_07]), LOG_FLOOR)
        )
        ob = math.log(max(np.float64(so[at_02]), LOG_FLOOR)) - math.log(
            max(np.float64(so[at_07]), LOG_FLOOR)
        )
        out[FMS] = 100.0 * _div(m - ob, ob, True)
        # FLV: exceedance 0.7..1.0 = the n - ceil(0.7 n) + 1 smallest flows, logs floored
        # (ln max(sorted x, 0.01) = the sorted floored logs), relative to the segment minimum.
        n_low = n - (7 * n + 9) // 10 + 1
        min_o = lo[order_o[0]]
        min_s = ls[order_s[0]]
        m = 0.0
        ob = 0.0
        for j in range(n_low):
            m += ls[order_s[j]] - min_s
            ob += lo[order_o[j]] - min_o
        out[FLV] = -100.0 * _div(m - ob, ob, True)
        # FHV: exceedance <= 0.02 = the max(1, floor(0.02 n)) largest flows.
        n_high = max(1, (2 * n) // 100)
        num = 0.0
        den = 0.0
        for j in range(n - n_high, n):
            high_o = np.float64(so[j])  # so/ss may be float32: subtract in float64
            num += np.float64(ss[j]) - high_o
            den += high_o
        out[FHV] = 100.0 * _div(num, den, True)


@njit(nogil=True, error_model="numpy", fastmath={"reassoc"})
def _fdc_distance(so: np.ndarray, ss: np.ndarray, total_o: float, total_s: float) -> float:
    """sum_j |ss[j]/total_s - so[j]/total_o| over the sorted series (float64 even for
    float32 ``so``/``ss``): the flow-duration-curve term of KGEnp, each curve divided by
    its volume (n times its mean). Multiplied by the reciprocals (a vectorized multiply,
    not a divide per day): each term within 1 ulp of the quotients."""
    inv_o = 1.0 / total_o
    inv_s = 1.0 / total_s
    total = 0.0
    for j in range(so.size):
        total += abs(np.float64(ss[j]) * inv_s - np.float64(so[j]) * inv_o)
    return total


@njit(nogil=True, error_model="numpy", fastmath={"reassoc"})
def _abs_error_sum(o: np.ndarray, s: np.ndarray) -> float:
    """sum |s - o| (reassoc: SIMD partial sums)."""
    total = 0.0
    for i in range(o.size):
        total += abs(s[i] - o[i])
    return total


@njit(nogil=True, error_model="numpy")
def _kge_suite(
    so: np.ndarray,
    ss: np.ndarray,
    order_o: np.ndarray,
    order_s: np.ndarray,
    rank_o: np.ndarray,
    rank_s: np.ndarray,
    moments: tuple[float, float, float, float, float, float, float, float, float],
    have_spearman: bool,
    out: np.ndarray,
) -> None:
    """KGE2012 (Kling et al. 2012), KGE2021 (Tang et al. 2021) and KGEnp (Pool et al.
    2018) of one gage from the shared ``moments``, the sorted values and orders.

    ``have_spearman``: the standard suite already wrote ``out[SPEARMAN]`` (its ranks are
    reused); else the average ranks are computed here into the scratch ``rank_*``.
    Undefined ratios are NaN (standard mode; hytest mode refuses this suite).
    """
    n = so.size
    sum_o, sum_s, _, sxx, syy, sxy, _, _, _ = moments
    mu_o = sum_o / n
    mu_s = sum_s / n
    sd_o = math.sqrt(sxx / n)
    sd_s = math.sqrt(syy / n)
    r = sxy / math.sqrt(sxx * syy)
    beta = _div(sum_s, sum_o, True)
    gamma = _div(_div(sd_s, mu_s, True), _div(sd_o, mu_o, True), True)
    out[KGE2012] = 1.0 - math.sqrt((r - 1.0) ** 2 + (gamma - 1.0) ** 2 + (beta - 1.0) ** 2)
    alpha = sd_s / sd_o
    bias = (mu_s - mu_o) / sd_o
    out[KGE2021] = 1.0 - math.sqrt((r - 1.0) ** 2 + (alpha - 1.0) ** 2 + bias**2)
    if have_spearman:
        r_s = out[SPEARMAN]
    else:
        _average_ranks(so, order_o, rank_o, False)
        _average_ranks(ss, order_s, rank_s)
        r_s = _spearman(rank_o, order_o, rank_s)
    if sum_o == 0.0 or sum_s == 0.0:
        alpha_np = np.nan
    else:
        alpha_np = 1.0 - 0.5 * _fdc_distance(so, ss, sum_o, sum_s)
    out[KGE_NP] = 1.0 - math.sqrt((r_s - 1.0) ** 2 + (alpha_np - 1.0) ** 2 + (beta - 1.0) ** 2)


@njit(nogil=True, error_model="numpy")
def _errors_suite(
    o: np.ndarray,
    s: np.ndarray,
    moments: tuple[float, float, float, float, float, float, float, float, float],
    out: np.ndarray,
) -> None:
    """RMSE, MAE and R2 (Pearson r squared) of one gage from the shared ``moments``."""
    n = o.size
    _, _, _, sxx, syy, sxy, sse, _, _ = moments
    out[RMSE] = math.sqrt(sse / n)
    out[MAE] = _abs_error_sum(o, s) / n
    r = sxy / math.sqrt(sxx * syy)
    out[R2] = r * r


@njit(nogil=True, error_model="numpy", fastmath={"reassoc"})
def _log_errors(
    lo: np.ndarray, ls: np.ndarray, season: np.ndarray, e: np.ndarray
) -> tuple[float, float, float, float, float, float, float]:
    """Day-order log errors e = ls - lo into ``e``; returns sum e, sum (e - e[0]), sum e^2
    and sum e^2 per season (branch-free selects, so the loop vectorizes: reassoc)."""
    n = lo.size
    e0 = ls[0] - lo[0]
    sum_e = 0.0
    shifted_e = 0.0
    sse = 0.0
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    s3 = 0.0
    for i in range(n):
        d = ls[i] - lo[i]
        e[i] = d
        sum_e += d
        shifted_e += d - e0
        d2 = d * d
        sse += d2
        k = season[i]
        s0 += d2 if k == 0 else 0.0
        s1 += d2 if k == 1 else 0.0
        s2 += d2 if k == 2 else 0.0
        s3 += d2 if k == 3 else 0.0
    return sum_e, shifted_e, sse, s0, s1, s2, s3


@njit(nogil=True, error_model="numpy", fastmath={"reassoc"})
def _sorted_differences(
    lo: np.ndarray, ls: np.ndarray, order_o: np.ndarray, order_s: np.ndarray, dsort: np.ndarray
) -> float:
    """dsort[j] = sort(ls)[j] - sort(lo)[j] (the floored logs in each series' own order:
    the log and the floor keep the order); returns sum (dsort - dsort[0])."""
    n = lo.size
    d0 = ls[order_s[0]] - lo[order_o[0]]
    total = 0.0
    for j in range(n):
        d = ls[order_s[j]] - lo[order_o[j]]
        dsort[j] = d
        total += d - d0
    return total


@njit(nogil=True, error_model="numpy", fastmath={"reassoc"})
def _centred_sse(x: np.ndarray, shifted_mean: float) -> float:
    """sum ((x - x[0]) - shifted_mean)^2: the variance numerator of x shifted by x[0]."""
    x0 = x[0]
    total = 0.0
    for i in range(x.size):
        c = (x[i] - x0) - shifted_mean
        total += c * c
    return total


@njit(nogil=True, error_model="numpy", fastmath={"reassoc"})
def _gathered_sse(e: np.ndarray, order: np.ndarray, start: int, stop: int) -> float:
    """sum of e[order[j]]^2 for j in start:stop."""
    total = 0.0
    for j in range(start, stop):
        d = e[order[j]]
        total += d * d
    return total


@njit(nogil=True, error_model="numpy")
def _dscore_suite(
    o: np.ndarray,
    lo: np.ndarray,
    ls: np.ndarray,
    order_o: np.ndarray,
    order_s: np.ndarray,
    season: np.ndarray,
    e: np.ndarray,
    dsort: np.ndarray,
    order_q: np.ndarray,
    out: np.ndarray,
) -> None:
    """The D-score of one gage from the floored logs; ``e``, ``dsort``, ``order_q`` are
    scratch. Each variance is two-pass over values shifted by their first one."""
    n = lo.size
    sum_e, shifted_e, mse, s0, s1, s2, s3 = _log_errors(lo, ls, season, e)
    mean_e = sum_e / n
    out[MSE] = mse / n
    out[E_BIAS] = mean_e * mean_e
    out[WINTER] = s0 / n
    out[SPRING] = s1 / n
    out[SUMMER] = s2 / n
    out[FALL] = s3 / n
    var_e = _centred_sse(e, shifted_e / n) / n
    e_dist = _centred_sse(dsort, _sorted_differences(lo, ls, order_o, order_s, dsort) / n) / n
    out[E_DIST] = e_dist
    out[E_SEQ] = var_e - e_dist
    # Quantile bins: ordinal ranks of ln max(o, .01), ties in order of appearance. All
    # floored values tie, so the floored prefix of o's order is rebuilt in day order (O(n)).
    n_floor = 0
    while n_floor < n and o[order_o[n_floor]] <= LOG_FLOOR:
        n_floor += 1
    if n_floor > 1:
        j = 0
        for i in range(n):
            if o[i] <= LOG_FLOOR:
                order_q[j] = i
                j += 1
        for j in range(n_floor, n):
            order_q[j] = order_o[j]
    else:
        order_q = order_o
    # pandas.qcut of ranks 1..n at quantiles 0/.25/.5/.75/1 puts rank r in the first bin k
    # with r <= 1 + q_k (n - 1) (the first bin closed on the left too): ranks are integers,
    # so bin k holds ranks up to floor(1 + q_k (n - 1)).
    end0 = math.floor(1.0 + 0.25 * (n - 1))
    end1 = math.floor(1.0 + 0.5 * (n - 1))
    end2 = math.floor(1.0 + 0.75 * (n - 1))
    out[Q_LOW] = _gathered_sse(e, order_q, 0, end0) / n
    out[Q_BELOW] = _gathered_sse(e, order_q, end0, end1) / n
    out[Q_ABOVE] = _gathered_sse(e, order_q, end1, end2) / n
    out[Q_HIGH] = _gathered_sse(e, order_q, end2, n) / n


@njit(nogil=True, error_model="numpy")
def _pair_days(
    obs_row: np.ndarray,
    sim_row: np.ndarray,
    season: np.ndarray,
    o_all: np.ndarray,
    s_all: np.ndarray,
    sea_all: np.ndarray,
) -> tuple[int, int, int, int, int]:
    """Compact the days where both series have a value into ``o_all``/``s_all``/``sea_all``.

    Returns the counts of observed, simulated and paired days and the first/last paired
    day (-1 when none).
    """
    n_obs = 0
    n_sim = 0
    n = 0
    first = -1
    last = -1
    for i in range(obs_row.size):
        ov = obs_row[i]
        sv = sim_row[i]
        ok_o = not math.isnan(ov)
        ok_s = not math.isnan(sv)
        n_obs += ok_o
        n_sim += ok_s
        if ok_o and ok_s:
            o_all[n] = ov
            s_all[n] = sv
            sea_all[n] = season[i]
            if n == 0:
                first = i
            last = i
            n += 1
    return n_obs, n_sim, n, first, last


@njit(nogil=True, error_model="numpy")
def _evaluate_gage(
    obs_row: np.ndarray,
    sim_row: np.ndarray,
    season: np.ndarray,
    do_standard: bool,
    do_dscore: bool,
    do_kge: bool,
    do_errors: bool,
    mode: int,
    out: np.ndarray,
    info: np.ndarray,
    fbuf: np.ndarray,
    ibuf: np.ndarray,
    sea_all: np.ndarray,
    keys: np.ndarray,
    key_floats: np.ndarray,
    keys_tmp: np.ndarray,
    counts: np.ndarray,
    float32_keys: np.ndarray,
) -> None:
    """Evaluate one gage; info = [status, n_days, first index, last index].

    ``fbuf`` (8, T) float64, ``ibuf`` (5, T) int32 (day indices), ``sea_all`` (T,) of the
    season's dtype, ``keys``/``keys_tmp`` (T,) uint64 (and
    ``key_floats``, ``keys`` as float64) and ``counts`` are scratch owned by the calling
    thread, reused from gage to gage: nothing is allocated per gage. ``float32_keys`` is a
    float32 (3, T) scratch when the rows are float32 (32-bit sort keys, then the sorted
    observed and simulated values), else empty.
    """
    o_all = fbuf[0]
    s_all = fbuf[1]
    n_obs, n_sim, n, first, last = _pair_days(obs_row, sim_row, season, o_all, s_all, sea_all)
    info[1] = n
    info[2] = first
    info[3] = last
    if n_obs == 0:
        info[0] = NO_OBSERVATIONS
        info[2] = -1
        info[3] = -1
        return
    if n_sim == 0:
        info[0] = NO_SIMULATION
        info[2] = -1
        info[3] = -1
        return
    if n < 2:
        info[0] = TOO_FEW_DAYS
        return
    o = o_all[:n]
    s = s_all[:n]
    constant = True
    for i in range(1, n):
        if o[i] != o[0]:
            constant = False
            break
    if constant:
        info[0] = CONSTANT_OBSERVATIONS
        if do_errors:
            # RMSE and MAE need no spread of o: defined for a dry (all-zero) gage or group.
            sse = 0.0
            for i in range(n):
                sse += (s[i] - o[i]) * (s[i] - o[i])
            out[RMSE] = math.sqrt(sse / n)
            out[MAE] = _abs_error_sum(o, s) / n
        return
    info[0] = OK
    order_o = ibuf[0, :n]
    order_s = ibuf[2, :n]
    if float32_keys.size:
        # float32 data: sorted values stay float32 (exact), decoded from the sort keys.
        so = float32_keys[1, :n]
        ss = float32_keys[2, :n]
        lo_key, hi_key = _pack_keys32(o, n, float32_keys[0], keys)
        _radix_passes32(keys, keys_tmp, counts, lo_key, hi_key, n, order_o, so.view(np.uint32))
        lo_key, hi_key = _pack_keys32(s, n, float32_keys[0], keys)
        _radix_passes32(keys, keys_tmp, counts, lo_key, hi_key, n, order_s, ss.view(np.uint32))
        _logs_and_suites(
            o, s, so, ss, order_o, order_s, sea_all[:n], do_standard, do_dscore, do_kge, do_errors,
            mode, out,
            fbuf, ibuf[4, :n], keys, key_floats, keys_tmp,
        )  # fmt: skip
    else:
        # The permutation ends in whichever of the two buffers the last pass wrote.
        order_o = _argsort_into(o, keys, key_floats, keys_tmp, ibuf[0], ibuf[1], counts)[:n]
        order_s = _argsort_into(s, keys, key_floats, keys_tmp, ibuf[2], ibuf[3], counts)[:n]
        so = fbuf[4, :n]
        ss = fbuf[5, :n]
        for j in range(n):
            so[j] = o[order_o[j]]
            ss[j] = s[order_s[j]]
        _logs_and_suites(
            o, s, so, ss, order_o, order_s, sea_all[:n], do_standard, do_dscore, do_kge, do_errors,
            mode, out,
            fbuf, ibuf[4, :n], keys, key_floats, keys_tmp,
        )  # fmt: skip


@njit(nogil=True, error_model="numpy")
def _logs_and_suites(
    o: np.ndarray,
    s: np.ndarray,
    so: np.ndarray,
    ss: np.ndarray,
    order_o: np.ndarray,
    order_s: np.ndarray,
    season: np.ndarray,
    do_standard: bool,
    do_dscore: bool,
    do_kge: bool,
    do_errors: bool,
    mode: int,
    out: np.ndarray,
    fbuf: np.ndarray,
    order_q: np.ndarray,
    keys: np.ndarray,
    key_floats: np.ndarray,
    keys_tmp: np.ndarray,
) -> None:
    """The floored logs and the requested suites of one sorted gage. The sort buffers
    (``keys``, its float64 view ``key_floats``, ``keys_tmp``) are free scratch by now."""
    n = o.size
    exponents = keys_tmp.view(np.float64)
    floored_logs(fbuf[0], n, keys, key_floats, exponents, fbuf[2])
    floored_logs(fbuf[1], n, keys, key_floats, exponents, fbuf[3])
    lo = fbuf[2, :n]
    ls = fbuf[3, :n]
    if do_standard or do_kge or do_errors:
        # One pass of moments shared by the suites; kge reuses standard's Spearman and
        # the sorted flows, and runs before the D-score reuses the rank scratch.
        moments = _paired_moments(o, s, lo, ls, mode == MODE_HYTEST)
        if do_standard:
            _standard_suite(
                o, s, lo, ls, so, ss, order_o, order_s, fbuf[6, :n], fbuf[7, :n], mode, out,
                moments,
            )  # fmt: skip
        if do_kge:
            _kge_suite(
                so, ss, order_o, order_s, fbuf[6, :n], fbuf[7, :n], moments, do_standard, out
            )
        if do_errors:
            _errors_suite(o, s, moments, out)
    if do_dscore:
        _dscore_suite(o, lo, ls, order_o, order_s, season, fbuf[6, :n], fbuf[7, :n], order_q, out)


@njit(nogil=True, error_model="numpy")
def evaluate_rows(
    obs: np.ndarray,
    sim: np.ndarray,
    season: np.ndarray,
    do_standard: bool,
    do_dscore: bool,
    do_kge: bool,
    do_errors: bool,
    mode: int,
    out: np.ndarray,
    info: np.ndarray,
    start: int,
    stop: int,
) -> None:
    """Evaluate gages (rows) ``start:stop`` of ``obs``/``sim`` (gage, day) into ``out``/``info``.

    Allocates its scratch once (19 arrays of one row's length) and reuses it for every
    gage. Releases the GIL: the engine runs blocks of rows on a thread pool.
    """
    t = obs.shape[1]
    fbuf = np.empty((8, t))
    ibuf = np.empty((5, t), np.int32)  # day indices: half the bytes of int64
    sea_all = np.empty(t, season.dtype)
    keys = np.empty(t, np.uint64)
    key_floats = keys.view(np.float64)
    keys_tmp = np.empty(t, np.uint64)
    counts = np.empty((_RADIX_MAX_PASSES, _RADIX_SIZE), np.int64)
    float32_keys = np.empty((3, t if obs.itemsize == 4 else 0), np.float32)
    for g in range(start, stop):
        _evaluate_gage(
            obs[g], sim[g], season, do_standard, do_dscore, do_kge, do_errors, mode, out[g],
            info[g],
            fbuf, ibuf, sea_all, keys, key_floats, keys_tmp, counts, float32_keys,
        )  # fmt: skip
        if mode == MODE_STANDARD:
            for k in range(out.shape[1]):
                if math.isinf(out[g, k]):
                    out[g, k] = np.nan


@njit(nogil=True, error_model="numpy")
def evaluate_segments(
    obs: np.ndarray,
    sim: np.ndarray,
    season: np.ndarray,
    bounds: np.ndarray,
    do_standard: bool,
    do_dscore: bool,
    do_kge: bool,
    do_errors: bool,
    mode: int,
    out: np.ndarray,
    info: np.ndarray,
    start: int,
    stop: int,
) -> None:
    """Evaluate each (gage, segment) of rows ``start:stop``: the breakdowns' one pass.

    The days of ``obs``/``sim`` (gage, day) are ordered so that each group's days are
    contiguous: segment ``k`` is days ``bounds[k]:bounds[k + 1]`` (``season`` reordered
    with them). Row ``g * n_segments + k`` of ``out``/``info`` gets gage ``g``'s metrics
    on segment ``k``, from the same per-gage kernel as :func:`evaluate_rows` on that
    slice (first/last index within the segment). Scratch is allocated once, as there.
    """
    t = obs.shape[1]
    n_seg = bounds.size - 1
    fbuf = np.empty((8, t))
    ibuf = np.empty((5, t), np.int32)
    sea_all = np.empty(t, season.dtype)
    keys = np.empty(t, np.uint64)
    key_floats = keys.view(np.float64)
    keys_tmp = np.empty(t, np.uint64)
    counts = np.empty((_RADIX_MAX_PASSES, _RADIX_SIZE), np.int64)
    float32_keys = np.empty((3, t if obs.itemsize == 4 else 0), np.float32)
    for g in range(start, stop):
        for k in range(n_seg):
            a = bounds[k]
            b = bounds[k + 1]
            r = g * n_seg + k
            if b <= a:
                continue
            _evaluate_gage(
                obs[g, a:b], sim[g, a:b], season[a:b], do_standard, do_dscore, do_kge, do_errors,
                mode, out[r],
                info[r], fbuf, ibuf, sea_all, keys, key_floats, keys_tmp, counts, float32_keys,
            )  # fmt: skip
            if mode == MODE_STANDARD:
                for j in range(out.shape[1]):
                    if math.isinf(out[r, j]):
                        out[r, j] = np.nan
