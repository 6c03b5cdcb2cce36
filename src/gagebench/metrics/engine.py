"""The vectorized engine: a batch of gages as 2-D arrays (gage, day) in, metric arrays out.

NaN handling happens once, here, pairwise per gage: a day counts only where both the
observed and the simulated value are present. Negative flows are kept as data (tidal and
backwater gages report flow reversals); every logarithm floors flows at 0.01 (the
simulated logNSE floor is HyTEST's 0.1 in ``hytest`` mode).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numba
import numpy as np
import numpy.typing as npt

from gagebench.defaults import default
from gagebench.errors import InputError
from gagebench.metrics import benchmark_kernels, kernels
from gagebench.metrics.registry import METRICS, MODES, SLOTS, SUITES, mode_refusal


def check_kernel_layout(compiled: int, expected: int) -> None:
    """Raise ``RuntimeError`` unless the compiled kernels use the registry's slot layout.

    The kernels' slots come from the registry (``registry.slot``), frozen into the code
    numba compiles; numba refreshes its on-disk cache when ``kernels.py`` changes, not when
    ``registry.py`` does. ``compiled`` is the layout fingerprint the loaded kernels were
    compiled with (``kernels.compiled_layout()``), ``expected`` today's (``kernels.LAYOUT``):
    a registry edited without touching the kernels fails here, at import, instead of
    filling a column with another metric's values.
    """
    if compiled != expected:
        where = _kernel_cache_dir()
        raise RuntimeError(
            "numba's cache of gagebench.metrics.kernels was compiled for another metric "
            "registry (registry.METRICS changed since, kernels.py did not): delete the "
            f"kernels' cache files (kernels.*.nbi and kernels.*.nbc under {where}), then "
            "import gagebench again"
        )


def _kernel_cache_dir() -> str:
    """The folder numba caches the kernels in: ``NUMBA_CACHE_DIR``, beside ``kernels.py``
    or, where the package cannot be written to, the user's cache (``~/.cache/numba/...``)."""
    cache = getattr(kernels.compiled_layout, "_cache", None)
    path = getattr(cache, "_cache_path", None)  # numba's locator, as it chose
    if path:
        return str(path)
    return os.environ.get("NUMBA_CACHE_DIR") or str(Path(kernels.__file__).parent / "__pycache__")


check_kernel_layout(kernels.compiled_layout(), kernels.LAYOUT)

STATUS_NAMES: dict[int, str] = {
    kernels.OK: "ok",
    kernels.NO_OBSERVATIONS: "no_observations",
    kernels.NO_SIMULATION: "no_simulation",
    kernels.TOO_FEW_DAYS: "too_few_days",
    kernels.CONSTANT_OBSERVATIONS: "constant_observations",
}
#: A row whose gage was evaluated but some metric is undefined (NaN); ``note`` says which.
PARTIAL = "partial"
#: Statuses set outside the engine, for gages missing from a store.
NOT_IN_OBSERVED = "not_in_observed"
NOT_IN_MODEL = "not_in_model"


@dataclass(frozen=True)
class BatchResult:
    """Metrics of one model for a batch of gages.

    ``values`` is (gage, metric) float64 in ``columns`` order; ``status`` and ``note`` say
    why a row or a metric is NaN; ``first``/``last`` index the paired days (-1: none).
    """

    columns: tuple[str, ...]
    values: np.ndarray
    n_days: np.ndarray
    first: np.ndarray
    last: np.ndarray
    status: list[str]
    note: list[str]


def check_names(suites: str | tuple[str, ...] | list[str], mode: str) -> tuple[str, ...]:
    """Validate suite and mode names, returning the suites in canonical order.

    One suite may be given as a plain string (``"standard"``).
    """
    if isinstance(suites, str):
        suites = (suites,)
    suites = tuple(suites)
    bad = [s for s in suites if s not in SUITES]
    if bad or not suites:
        raise InputError(
            f"unknown suite(s) {bad or list(suites)}: choose among {list(SUITES)}, "
            'e.g. suites=("standard", "dscore") or suites="standard"'
        )
    if mode not in MODES:
        raise InputError(f"unknown mode {mode!r}: choose one of {list(MODES)}")
    if refusal := mode_refusal(suites, mode):
        raise InputError(refusal)
    return tuple(s for s in SUITES if s in suites)


def season_index(dates: npt.ArrayLike) -> np.ndarray:
    """Season of each day: 0 winter (DJF), 1 spring (MAM), 2 summer (JJA), 3 fall (SON)."""
    days = np.asarray(dates, dtype="datetime64[D]")
    months = days.astype("datetime64[M]").astype(np.int64) % 12 + 1
    return ((months % 12) // 3).astype(np.int8)


def _as_float_2d(name: str, value: npt.ArrayLike) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype.kind not in "fiub":
        raise InputError(f"{name} must be numeric streamflow, got dtype {arr.dtype}")
    if arr.dtype.kind != "f" or arr.dtype.itemsize < 4 or arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float64)
    if arr.ndim != 2:
        raise InputError(f"{name} must be 2-D (gage, day), got {arr.ndim}-D")
    if arr.size == 0:
        raise InputError(f"{name} is empty: it needs at least one gage and one day")
    return np.ascontiguousarray(arr)


def evaluate_arrays(
    observed: npt.ArrayLike,
    simulated: npt.ArrayLike,
    dates: npt.ArrayLike | None = None,
    *,
    suites: str | tuple[str, ...] = tuple(default("suites")),
    mode: str = default("mode"),
    min_days: int = 2,
) -> BatchResult:
    """Evaluate one model for a batch: ``observed`` and ``simulated`` are (gage, day).

    ``dates`` (daily, length = days) is needed for the seasonal D-score components.
    ``min_days``: fewest paired days for a gage to be scored; a gage with fewer gets status
    ``too_few_days`` and NaN metrics (so it never enters medians or rankings). Infinite
    flows are treated as missing days; they and negative flows are named in ``note``.
    """
    suites = check_names(suites, mode)
    obs, sim, season, suspect = _checked_inputs(observed, simulated, dates, suites, min_days)
    columns = tuple(m.name for m in METRICS if m.suite in suites)
    full = np.full((obs.shape[0], len(METRICS)), np.nan)
    info = np.zeros((obs.shape[0], 4), np.int64)
    mode_code = kernels.MODE_HYTEST if mode == "hytest" else kernels.MODE_STANDARD
    _run_blocks(
        obs, sim, season, "standard" in suites, "dscore" in suites, mode_code, full, info,
        do_kge="kge" in suites, do_errors="errors" in suites,
    )  # fmt: skip
    if "benchmark" in suites and dates is not None:  # (refused earlier without dates)
        _benchmark(obs, sim, dates, full)
    return _batch_result(columns, suites, full, info, min_days, suspect)


def _checked_inputs(
    observed: npt.ArrayLike,
    simulated: npt.ArrayLike,
    dates: npt.ArrayLike | None,
    suites: tuple[str, ...],
    min_days: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """The checked (gage, day) arrays (infinite flows as NaN), the season of each day and
    each gage's suspect values (negative, infinite) by series, or an InputError."""
    if isinstance(min_days, bool) or not isinstance(min_days, int) or min_days < 2:
        raise InputError(f"min_days must be an integer of at least 2, got {min_days!r}")
    obs = _as_float_2d("observed", observed)
    sim = _as_float_2d("modeled", simulated)
    if obs.shape != sim.shape:
        raise InputError(
            f"observed has shape {obs.shape} but modeled has {sim.shape}: both must be "
            "(gage, day) on the same gages and days"
        )
    if sim.dtype != obs.dtype:
        sim = sim.astype(np.result_type(obs.dtype, sim.dtype))
        obs = obs.astype(sim.dtype)
    if dates is None and "benchmark" in suites:
        raise InputError(
            "the benchmark suite needs the dates of the days (its day-of-year climatology): "
            "pass time=... (or a time-indexed pandas/xarray input), or leave 'benchmark' "
            "out of suites"
        )
    if dates is None:
        if "dscore" in suites:
            raise InputError(
                "the dscore suite needs the dates of the days (seasonal components): pass "
                "time=... (or a time-indexed pandas/xarray input), or suites=('standard',)"
            )
        season = np.zeros(obs.shape[1], np.int8)
    else:
        if "dscore" in suites or "benchmark" in suites:
            _refuse_nat(dates)  # their seasons and calendar days need every date
        season = season_index(dates)
        if season.shape[0] != obs.shape[1]:
            raise InputError(
                f"time has {season.shape[0]} dates but the arrays have {obs.shape[1]} days"
            )
    suspect = {"observed": _suspect_rows(obs), "modeled": _suspect_rows(sim)}
    obs = _without_inf(obs, suspect["observed"][1])
    sim = _without_inf(sim, suspect["modeled"][1])
    return obs, sim, season, suspect


def _refuse_nat(dates: npt.ArrayLike) -> None:
    """An InputError for numbers given as dates or missing dates (NaT): neither has a
    season or calendar day."""
    kind = np.asarray(dates).dtype.kind
    if kind in "biuf":
        raise InputError(
            f"time must be dates (datetime64, pandas timestamps or 'YYYY-MM-DD' strings), got "
            f"{np.asarray(dates).dtype}: numbers have no calendar day; pass the dates, e.g. "
            "pandas.date_range(start, periods=n)"
        )
    missing = np.flatnonzero(np.isnat(np.asarray(dates, dtype="datetime64[D]")))
    if missing.size:
        raise InputError(
            f"time has {missing.size} missing (NaT) date(s), the first at position "
            f"{missing[0]}: a day without a date has no season or calendar day; give every "
            "day its date or drop those days"
        )


def _batch_result(
    columns: tuple[str, ...],
    suites: tuple[str, ...],
    full: np.ndarray,
    info: np.ndarray,
    min_days: int,
    suspect: dict[str, tuple[np.ndarray, np.ndarray]],
) -> BatchResult:
    """The kernels' output rows (all registry slots) as a BatchResult: the suites'
    columns, statuses (``partial``, ``too_few_days`` under ``min_days``) and notes.
    ``suspect`` is per row (a gage's flags repeated on each of its group rows)."""
    keep = [i for i, m in enumerate(METRICS) if m.suite in suites]
    values = full[:, keep]
    codes = info[:, 0]
    status = [STATUS_NAMES[int(c)] for c in codes]
    note = [_STATUS_NOTES.get(name, "") for name in status]
    # An evaluated row with an undefined (non-finite) metric is "partial" and names them.
    undefined = ~np.isfinite(values) & (codes == kernels.OK)[:, None]
    for g in np.flatnonzero(undefined.any(axis=1)):
        status[g] = PARTIAL
        note[g] = "undefined: " + ", ".join(columns[k] for k in np.flatnonzero(undefined[g]))
        if "benchmark" in suites and full[g, SLOTS["KGE_bench"]] == 1.0:
            note[g] += "; " + benchmark_kernels.PERFECT_NOTE
    n_days = info[:, 1]
    short = np.flatnonzero(
        (n_days < min_days) & ((codes == kernels.OK) | (codes == kernels.TOO_FEW_DAYS))
    )
    values[short] = np.nan
    # constant observations keep their status; under min_days they get no RMSE/MAE either
    for g in np.flatnonzero((codes == kernels.CONSTANT_OBSERVATIONS) & (n_days < min_days)):
        values[g] = np.nan
        note[g] += f"; {int(n_days[g])} paired days, fewer than min_paired_days={min_days}"
    for g in short:
        status[g] = "too_few_days"
        note[g] = (
            f"{int(n_days[g])} days with both observed and simulated values, "
            f"fewer than min_paired_days={min_days}"
        )
    for label, (neg, inf) in suspect.items():
        for g in np.flatnonzero(neg | inf):
            what = []
            if neg[g]:
                what.append(f"negative {label} flows (kept as data)")
            if inf[g]:
                what.append(f"infinite {label} flows (treated as missing)")
            note[g] = "; ".join(x for x in (note[g], *what) if x)
    return BatchResult(
        columns=columns,
        values=values,
        n_days=info[:, 1].copy(),
        first=info[:, 2].copy(),
        last=info[:, 3].copy(),
        status=status,
        note=note,
    )


def _benchmark(
    obs: np.ndarray,
    sim: np.ndarray,
    dates: npt.ArrayLike,
    out: np.ndarray,
    group: np.ndarray | None = None,
    n_groups: int = 1,
) -> None:
    """The benchmark suite's columns of ``out`` (the registry's slots), from the paired
    days the kernels saw (infinite flows already missing). With ``group`` (each day's
    group, 0..n_groups-1), row ``g * n_groups + k`` of ``out`` gets gage ``g``'s scores
    over group ``k``'s days, against the climatology of its FULL paired record."""
    doy = benchmark_kernels.calendar_day_index(dates)
    scores = benchmark_kernels.score_groups(obs, sim, doy, group, n_groups)
    scores = scores.reshape(obs.shape[0] * n_groups, len(benchmark_kernels.SCORES))
    for k, name in enumerate(benchmark_kernels.SCORES):
        if name in SLOTS and METRICS[SLOTS[name]].suite == "benchmark":
            out[:, SLOTS[name]] = scores[:, k]


def _suspect_rows(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per gage: any negative finite value, any infinite value (NaN ignored).

    Two reductions; a row with an infinite value is scanned again for negative finite
    values, which its minimum (-inf) or the +inf would otherwise hide.
    """
    low = np.fmin.reduce(arr, axis=1)
    high = np.fmax.reduce(arr, axis=1)
    infinite = np.isinf(low) | np.isinf(high)
    negative = (low < 0) & ~infinite
    rows = np.flatnonzero(infinite)
    if rows.size:
        block = arr[rows]
        negative[rows] = ((block < 0) & np.isfinite(block)).any(axis=1)
    return negative, infinite


def _without_inf(arr: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """A copy with infinite values of ``rows`` set to NaN (missing), or ``arr`` itself."""
    if not rows.any():
        return arr
    out = arr.copy()
    block = out[rows]
    block[np.isinf(block)] = np.nan
    out[rows] = block
    return np.ascontiguousarray(out)


#: Fewest gages per block handed to a thread (each block allocates its scratch once).
BLOCK_GAGES = 32
#: Blocks per thread for a large batch: enough to balance uneven gages and shares of the
#: CPU, few enough that allocating each block's ~2 MB of scratch (fresh pages, and unmapping
#: them: a TLB shootdown on the other cores) stays negligible.
BLOCKS_PER_THREAD = 8


def _run_blocks(
    obs: np.ndarray,
    sim: np.ndarray,
    season: np.ndarray,
    do_standard: bool,
    do_dscore: bool,
    mode_code: int,
    out: np.ndarray,
    info: np.ndarray,
    *,
    do_kge: bool = False,
    do_errors: bool = False,
) -> None:
    """Run the GIL-free kernel over blocks of gages on ``numba.get_num_threads()`` threads.

    A thread pool hands out blocks as threads free up (dynamic scheduling): gage costs
    differ and, on a shared machine, so does each thread's share of the CPU. Waiting
    threads sleep instead of spinning. ``NUMBA_NUM_THREADS`` (or
    ``numba.set_num_threads``) sets the thread count; 1 runs inline.
    """
    n_gages = obs.shape[0]
    threads = min(numba.get_num_threads(), -(-n_gages // BLOCK_GAGES))
    if threads <= 1:
        kernels.evaluate_rows(
            obs, sim, season, do_standard, do_dscore, do_kge, do_errors, mode_code, out, info,
            0, n_gages,
        )  # fmt: skip
        return
    block = max(BLOCK_GAGES, -(-n_gages // (threads * BLOCKS_PER_THREAD)))
    with ThreadPoolExecutor(threads, thread_name_prefix="gagebench-metrics") as pool:
        blocks = [
            pool.submit(
                kernels.evaluate_rows, obs, sim, season, do_standard, do_dscore, do_kge,
                do_errors, mode_code, out, info, start, min(start + block, n_gages),
            )
            for start in range(0, n_gages, block)
        ]  # fmt: skip
        for block in blocks:
            block.result()


_STATUS_NOTES = {
    "no_observations": "no observed value in the period",
    "no_simulation": "no simulated value in the period",
    "too_few_days": "fewer than 2 days with both observed and simulated values",
    "constant_observations": "observed flow is constant: variance-based metrics undefined",
}
