"""Sampling uncertainty of NSE and KGE per gage: the resampling plan and the suite's rows.

gumboot's ``bootjack()`` (Clark et al. 2021, doi:10.1029/2020WR029001; CRAN gumboot
1.0.2) resamples water years: a jackknife that leaves out each valid year and a bootstrap
of ``n_samples`` draws of the valid years with replacement. The kernels are in
:mod:`gagebench.metrics.uncertainty_kernels`; this module decides which years each sample holds.

Resampling plan: a gage's draws come from a generator seeded with (seed, site number)
only, so they never depend on batching, workers or resume; they are indices into the
gage's valid years, so every model of a gage with the same valid years gets the same years
(paired comparisons). ``boot_years`` (gumboot's ``bootYearFile`` layout: one row per
water-year slot padded with -9999, one column per sample) replaces the draws of every gage.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from gagebench.defaults import UNCERTAINTY_DEFAULTS, default
from gagebench.errors import InputError
from gagebench.metrics import uncertainty_kernels as kern

#: Result columns of the suite, per statistic, in gumboot's order.
FIELDS = ("score", "seJack", "seBoot", "p05", "p50", "p95", "biasJack", "biasBoot", "seJab")
COLUMNS: tuple[str, ...] = (
    *(f"{stat}_{name}" for stat in kern.GOF_STATS for name in FIELDS),
    "n_years_valid",
)
#: Paired comparison columns (on the rows of every model but the first): the bootstrap
#: distribution of S(model) − S(first model) and the share of samples the first model wins.
PAIRED_COLUMNS: tuple[str, ...] = (
    *(f"d{stat}_{q}" for stat in ("KGE", "NSE") for q in ("p05", "p50", "p95")),
    "KGE_first_wins",
    "NSE_first_wins",
)
#: gumboot's long table, one row per (gage, statistic).
LONG_COLUMNS = (
    "site_no",
    "GOF_stat",
    "seJack",
    "seBoot",
    "p05",
    "p50",
    "p95",
    "score",
    "biasJack",
    "biasBoot",
    "seJab",
)
TOO_FEW_YEARS = "too_few_years"
#: A gage whose suite was computed but some value is undefined (NaN); the note names them.
UNDEFINED = "undefined"
PAD = -9999


@dataclass(frozen=True)
class UncertaintySettings:
    """The suite's settings (config section ``uncertainty``).

    ``seed`` None: a fresh random seed per call (``evaluate``) or one derived from the run
    id (a run, so a resumed run draws the same years). ``boot_years``: a (slot, sample)
    array of water years in gumboot's ``bootYearFile`` layout that replaces the draws.
    """

    n_samples: int = UNCERTAINTY_DEFAULTS["n_samples"]
    seed: int | None = UNCERTAINTY_DEFAULTS["seed"]
    water_year_month: int = UNCERTAINTY_DEFAULTS["water_year_month"]
    min_days: int = UNCERTAINTY_DEFAULTS["min_days"]
    min_years: int = UNCERTAINTY_DEFAULTS["min_years"]
    boot_years: np.ndarray | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        for name, low in (("n_samples", 2), ("min_days", 0), ("min_years", 2)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
                raise InputError(f"uncertainty {name} must be an integer >= {low}, got {value!r}")
        month = self.water_year_month
        if (
            isinstance(month, bool)
            or not isinstance(month, int | np.integer)
            or not 1 <= month <= 13
        ):
            raise InputError(
                f"uncertainty water_year_month must be an integer 1..13 (13: calendar years), "
                f"got {month!r}"
            )
        seed = self.seed
        if seed is not None and (
            isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0
        ):
            raise InputError(
                f"uncertainty seed must be a non-negative integer or None, got {seed!r}"
            )

    def with_seed(self, seed: int) -> UncertaintySettings:
        """The same settings with ``seed`` set (keeps ``boot_years``)."""
        return replace(self, seed=seed)

    def identity(self) -> dict[str, Any]:
        """The settings that decide results, as plain values (run identity, manifest)."""
        out: dict[str, Any] = {
            "n_samples": int(self.n_samples),
            "seed": None if self.seed is None else int(self.seed),
            "water_year_month": int(self.water_year_month),
            "min_days": int(self.min_days),
            "min_years": int(self.min_years),
        }
        if self.boot_years is not None:
            out["boot_years_sha256"] = hashlib.sha256(
                np.ascontiguousarray(self.boot_years, np.int64).tobytes()
            ).hexdigest()[:16]
        return out


def read_boot_years(source: str | Path | npt.ArrayLike) -> np.ndarray:
    """gumboot's ``bootYearFile``: a CSV with no header (or an array) -> (slot, sample) int.

    One row per water-year slot (padded with -9999), one column per bootstrap sample.
    """
    if isinstance(source, str | Path):
        try:
            frame = pd.read_csv(source, header=None)
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot read boot_years file {str(source)!r}: {exc}") from exc
        arr = frame.to_numpy()
    else:
        arr = np.asarray(source)
    if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] < 2:
        raise InputError(
            f"boot_years must be 2-D (water-year slot, sample) with at least 2 samples, got "
            f"shape {arr.shape}"
        )
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise InputError("boot_years must hold whole water years (or -9999 padding)")
    elif arr.dtype.kind not in "iu":
        raise InputError(f"boot_years must hold integer water years, got dtype {arr.dtype}")
    return np.ascontiguousarray(arr.astype(np.int64))


def site_number(site_no: Any) -> int:
    """The integer a gage's stream is seeded with: its USGS number, else a stable hash."""
    text = str(site_no).strip()
    match = re.fullmatch(r"(?:USGS-)?0*(\d{1,18})", text)
    if match:
        return int(match.group(1))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


_MASK64 = (1 << 64) - 1


def stream_key(seed: int, site_no: Any) -> np.uint64:
    """The key of one gage's stream of draws: a function of (seed, site number) only."""
    mixed = int(kern.splitmix64(np.uint64(int(seed) & _MASK64)))
    return np.uint64(int(kern.splitmix64(np.uint64(mixed ^ (site_number(site_no) & _MASK64)))))


def draw_indices(seed: int, site_no: Any, n_valid: int, n_samples: int) -> np.ndarray:
    """(sample, slot) indices into a gage's valid years (ascending): n_valid draws each."""
    return kern.draw_slots(stream_key(seed, site_no), int(n_valid), int(n_samples))


def water_years(
    dates: npt.ArrayLike, month: int = default("uncertainty.water_year_month")
) -> tuple[np.ndarray, np.ndarray]:
    """(water year, calendar year) of each day: water year = year + 1 from ``month`` on."""
    days = np.asarray(dates, dtype="datetime64[D]")
    months = days.astype("datetime64[M]").astype(np.int64)
    year = (months // 12 + 1970).astype(np.int64)
    wy = year + ((months % 12 + 1) >= month).astype(np.int64)
    return wy, year


@dataclass(frozen=True)
class _Axis:
    """The time axis as water-year slots (slot = water year - year0) and calendar years."""

    order: np.ndarray | None  # how to put the days in date order (None: they are)
    year0: int
    slot_of_day: np.ndarray
    slot_on_axis: np.ndarray
    cal_index: np.ndarray
    cal_years: np.ndarray

    @classmethod
    def of(cls, dates: npt.ArrayLike, month: int) -> _Axis:
        days = np.asarray(dates, dtype="datetime64[D]")
        if days.ndim != 1 or days.size == 0:
            raise InputError("the uncertainty suite needs a 1-D, non-empty axis of dates")
        if np.isnat(days).any():
            raise InputError("the dates have missing (NaT) values: drop those days")
        order = None
        if days.size > 1 and not np.all(days[1:] >= days[:-1]):
            order = np.argsort(days, kind="stable")
            days = days[order]
        wy, cy = water_years(days, month)
        year0 = int(wy.min())
        slot = (wy - year0).astype(np.int64)
        on_axis = np.bincount(slot, minlength=int(slot.max()) + 1) > 0
        cal_years = np.unique(cy)
        return cls(order, year0, slot, on_axis, np.searchsorted(cal_years, cy), cal_years)


@dataclass
class GageSamples:
    """One model's suite values for a batch, plus each gage's bootstrap samples."""

    values: np.ndarray  # (G, len(COLUMNS))
    status: list[str]
    note: list[str]
    samples: np.ndarray  # (G, 2, S): NSE and KGE bootstrap values (NaN: none)
    valid: np.ndarray  # (G, K) bool: each gage's valid water-year slots


#: Fewest gages per block handed to a thread.
BLOCK_GAGES = 16


def _kernels_on_threads(
    obs: np.ndarray,
    sim: np.ndarray,
    axis: _Axis,
    settings: UncertaintySettings,
    keys: np.ndarray,
    mode_code: int,
) -> tuple[np.ndarray, ...]:
    """Both kernels over blocks of gages on ``numba.get_num_threads()`` threads."""
    import numba

    n_gages = obs.shape[0]
    n_slots = axis.slot_on_axis.size
    plan = (
        np.zeros((0, 0), np.int64)
        if settings.boot_years is None
        else np.ascontiguousarray(settings.boot_years, np.int64)
    )
    n_samples = plan.shape[1] if plan.size else settings.n_samples
    stats = np.empty((n_gages, n_slots, kern.N_STATS))
    span = np.empty((n_gages, 2), np.int64)
    centre = np.empty((n_gages, 2))
    out = np.empty((n_gages, 2, kern.N_FIELDS))
    samples = np.empty((n_gages, 2, n_samples))
    n_valid = np.zeros(n_gages, np.int64)
    code = np.zeros(n_gages, np.int64)

    def block(start: int, stop: int) -> None:
        kern.year_sums(obs, sim, axis.slot_of_day, stats, span, centre, start, stop)
        kern.gage_block(
            stats, span, centre, axis.slot_of_day, axis.slot_on_axis, axis.cal_index,
            axis.cal_years, axis.year0, keys, plan, n_samples, settings.min_days,
            settings.min_years, mode_code, out, samples, n_valid, code, start, stop,
        )  # fmt: skip

    threads = min(numba.get_num_threads(), -(-n_gages // BLOCK_GAGES))
    if threads <= 1:
        block(0, n_gages)
    else:
        size = max(BLOCK_GAGES, -(-n_gages // (threads * 8)))
        with ThreadPoolExecutor(threads, thread_name_prefix="gagebench-uncertainty") as pool:
            for done in [
                pool.submit(block, lo, min(lo + size, n_gages)) for lo in range(0, n_gages, size)
            ]:
                done.result()
    return stats, span, out, samples, n_valid, code


def evaluate_model(
    obs: np.ndarray,
    sim: np.ndarray,
    dates: npt.ArrayLike,
    site_ids: Sequence[Any],
    settings: UncertaintySettings,
    mode: str,
) -> GageSamples:
    """The suite for one model on a batch of gages (``settings.seed`` must be set)."""
    if settings.seed is None and settings.boot_years is None:
        raise InputError(
            "uncertainty needs a seed here: resolve it first (UncertaintySettings.with_seed)"
        )
    axis = _Axis.of(dates, settings.water_year_month)
    obs = _as_rows("observed", obs, axis)
    sim = _as_rows("modeled", sim, axis)
    if obs.shape != sim.shape:
        raise InputError(f"observed has shape {obs.shape} but modeled has {sim.shape}")
    if len(site_ids) != obs.shape[0]:
        raise InputError(f"{len(site_ids)} gage ids for {obs.shape[0]} gages")
    seed = 0 if settings.seed is None else settings.seed
    keys = np.array([stream_key(seed, site) for site in site_ids], np.uint64)
    mode_code = kern.MODE_HYTEST if mode == "hytest" else kern.MODE_STANDARD
    stats, span, out, samples, n_valid, code = _kernels_on_threads(
        obs, sim, axis, settings, keys, mode_code
    )
    n_gages = obs.shape[0]
    values = np.empty((n_gages, len(COLUMNS)))
    values[:, : len(FIELDS)] = out[:, 0, :]
    values[:, len(FIELDS) : 2 * len(FIELDS)] = out[:, 1, :]
    values[:, -1] = n_valid
    status = ["ok"] * n_gages
    note = [""] * n_gages
    n_rows = 0 if settings.boot_years is None else settings.boot_years.shape[0]
    for g in np.flatnonzero(code != kern.UNC_OK):
        c = int(code[g])
        if c == kern.UNC_NO_DAYS:
            status[g], note[g] = TOO_FEW_YEARS, "uncertainty: no day with both values"
        elif c == kern.UNC_TOO_FEW_YEARS:
            status[g] = TOO_FEW_YEARS
            note[g] = (
                f"uncertainty: {int(n_valid[g])} valid water years (more than "
                f"{settings.min_days} valid days), fewer than min_years={settings.min_years}"
            )
        elif c == kern.UNC_MISSING_CODE:
            status[g] = UNDEFINED
            note[g] = (
                "uncertainty: a score or jackknife value is <= -9998, gumboot's missing-value "
                "code (hytest mode returns NaN, as bootjack() does)"
            )
        else:
            status[g] = "boot_years_too_short"
            note[g] = (
                f"uncertainty: boot_years has {n_rows} year slots, this gage has "
                f"{int(n_valid[g])} valid water years"
            )
    undefined = ~np.isfinite(values[:, :-1])
    for g in np.flatnonzero((code == kern.UNC_OK) & undefined.any(axis=1)):
        status[g] = UNDEFINED
        note[g] = "uncertainty undefined: " + _undefined_names(undefined[g])
    slots = np.arange(axis.slot_on_axis.size)
    has = span[:, 0] >= 0
    k0 = np.where(has, axis.slot_of_day[np.clip(span[:, 0], 0, None)], 1)
    k1 = np.where(has, axis.slot_of_day[np.clip(span[:, 1], 0, None)], 0)
    valid = (
        (slots >= k0[:, None])
        & (slots <= k1[:, None])
        & axis.slot_on_axis[None, :]
        & (stats[:, :, 0] > settings.min_days)
    )
    return GageSamples(values, status, note, samples, valid)


def _undefined_names(undefined: np.ndarray) -> str:
    """The undefined columns of one row, a statistic's all nine as ``KGE_*``."""
    names = []
    for k, stat in enumerate(kern.GOF_STATS):
        part = undefined[k * len(FIELDS) : (k + 1) * len(FIELDS)]
        if part.all():
            names.append(f"{stat}_*")
        else:
            names.extend(f"{stat}_{FIELDS[i]}" for i in np.flatnonzero(part))
    return ", ".join(names)


def _as_rows(name: str, values: npt.ArrayLike, axis: _Axis) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim == 1:
        arr = arr[np.newaxis, :]
    if arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float64)
    if arr.ndim != 2 or arr.shape[1] != axis.slot_of_day.size:
        raise InputError(
            f"{name} must be (gage, day) with {axis.slot_of_day.size} days, got {arr.shape}"
        )
    if axis.order is not None:
        arr = arr[:, axis.order]
    infinite = np.isinf(arr)
    if infinite.any():  # a missing day, as in the other suites (the row's note says so)
        arr = np.where(infinite, np.nan, arr)
    return np.ascontiguousarray(arr)


def paired_columns(first: GageSamples, other: GageSamples) -> np.ndarray:
    """(G, len(PAIRED_COLUMNS)): S(other) − S(first) over shared draws, and first's wins.

    A gage whose two models have different valid years (so different draws) gets NaN.
    """
    n_gages = len(first.samples)
    out = np.full((n_gages, len(PAIRED_COLUMNS)), np.nan)
    for g in range(n_gages):
        a, b = first.samples[g], other.samples[g]
        if first.status[g] != "ok" or other.status[g] != "ok":
            continue
        if not np.array_equal(first.valid[g], other.valid[g]):
            continue
        for k, stat_row in enumerate((1, 0)):  # KGE then NSE
            diff = b[stat_row] - a[stat_row]
            if np.isnan(diff).any():
                continue
            ordered = np.sort(diff)
            n = ordered.size
            out[g, 3 * k : 3 * k + 3] = [ordered[int(np.floor(q * n))] for q in (0.05, 0.5, 0.95)]
            out[g, 6 + k] = float(np.mean(diff < 0))
    return out


def paired_notes(
    first_name: str, first: GageSamples, other: GageSamples, paired: np.ndarray
) -> list[str]:
    """Why a gage of ``other`` has no paired comparison with the first model ('' if it has
    one): the paired columns are NaN then, and the row's note must say so."""
    notes = []
    for g in range(len(other.status)):
        if other.status[g] != "ok" or not np.isnan(paired[g]).any():
            notes.append("")
        elif first.status[g] != "ok":
            notes.append(
                f"no paired comparison with {first_name!r}: it has no uncertainty values here"
            )
        elif not np.array_equal(first.valid[g], other.valid[g]):
            notes.append(
                f"no paired comparison with {first_name!r}: other valid water years "
                f"({int(other.valid[g].sum())} here, {int(first.valid[g].sum())} there), so "
                "no shared draws"
            )
        else:
            undefined = [s for k, s in enumerate(("KGE", "NSE")) if np.isnan(paired[g, 3 * k])]
            notes.append(
                f"no paired {', '.join(undefined)} comparison with {first_name!r}: undefined "
                "in some samples"
            )
    return notes


def evaluate_models(
    obs: np.ndarray,
    sims: Mapping[str, np.ndarray],
    dates: npt.ArrayLike | None,
    site_ids: Sequence[Any],
    settings: UncertaintySettings,
    mode: str,
) -> dict[str, pd.DataFrame]:
    """The suite's columns per model (rows in ``site_ids`` order), with a ``status`` and
    ``note`` column; with two or more models, the paired columns vs the first model."""
    if dates is None:
        raise InputError(
            "the uncertainty suite needs the dates of the days (water years): pass time=... "
            "(or a time-indexed pandas/xarray input)"
        )
    results = {
        name: evaluate_model(obs, sim, dates, site_ids, settings, mode)
        for name, sim in sims.items()
    }
    names = list(results)
    frames = {}
    for name in names:
        res = results[name]
        frame = pd.DataFrame(res.values, columns=list(COLUMNS))
        frame["n_years_valid"] = frame["n_years_valid"].astype("Int64")
        if len(names) > 1:
            paired = (
                np.full((len(site_ids), len(PAIRED_COLUMNS)), np.nan)
                if name == names[0]
                else paired_columns(results[names[0]], res)
            )
            for i, col in enumerate(PAIRED_COLUMNS):
                frame[col] = paired[:, i]
        frame["status"] = res.status
        frame["note"] = res.note
        if len(names) > 1 and name != names[0]:
            why = paired_notes(names[0], results[names[0]], res, paired)
            pairs = zip(res.note, why, strict=True)
            frame["note"] = ["; ".join(x for x in pair if x) for pair in pairs]
        frames[name] = frame
    return frames


def resolve_seed(settings: UncertaintySettings, key: str | None = None) -> UncertaintySettings:
    """Settings with a seed: the given one, else derived from ``key`` (a run id), else fresh."""
    if settings.seed is not None:
        return settings
    if key is not None:
        seed = int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "little")
    else:
        seed = int(np.random.default_rng().integers(0, 2**32))
    return settings.with_seed(seed)


def long_table(results: pd.DataFrame) -> pd.DataFrame:
    """gumboot's long shape from results rows: one row per (gage, statistic)."""
    parts = []
    for stat in kern.GOF_STATS:
        part = pd.DataFrame({"site_no": results["site_no"].to_numpy(), "GOF_stat": stat})
        for name in LONG_COLUMNS[2:]:
            part[name] = results[f"{stat}_{name}"].to_numpy()
        part["_order"] = np.arange(len(results))
        parts.append(part)
    frame = pd.concat(parts, ignore_index=True)
    frame = frame.sort_values(["_order", "GOF_stat"], kind="stable", key=_stat_key)
    return frame.drop(columns="_order").reset_index(drop=True)[list(LONG_COLUMNS)]


def _stat_key(col: pd.Series) -> pd.Series:
    if col.name == "GOF_stat":
        return col.map({s: i for i, s in enumerate(kern.GOF_STATS)})
    return col


def boot_year_table(
    observed: npt.ArrayLike,
    simulated: npt.ArrayLike,
    dates: npt.ArrayLike,
    site_no: Any,
    settings: UncertaintySettings,
) -> np.ndarray:
    """The draws of one gage in gumboot's ``bootYearFile`` layout (slot, sample).

    Rows: one per distinct water year of the record (gumboot's ``nYears``), the first
    n_valid holding the drawn water years, the rest -9999; one column per sample.
    """
    if settings.seed is None:
        raise InputError("boot years need a seed (e.g. seed=1), or they cannot be reproduced")
    axis = _Axis.of(dates, settings.water_year_month)
    obs = _as_rows("observed", np.asarray(observed, dtype=np.float64), axis)
    sim = _as_rows("modeled", np.asarray(simulated, dtype=np.float64), axis)
    stats = np.empty((1, axis.slot_on_axis.size, kern.N_STATS))
    span = np.empty((1, 2), np.int64)
    kern.year_sums(obs, sim, axis.slot_of_day, stats, span, np.empty((1, 2)), 0, 1)
    if span[0, 0] < 0:
        raise InputError(f"gage {site_no}: no day with both observed and simulated values")
    k0, k1 = axis.slot_of_day[span[0, 0]], axis.slot_of_day[span[0, 1]]
    record = np.flatnonzero(axis.slot_on_axis[k0 : k1 + 1]) + k0
    valid_slots = record[stats[0, record, 0] > settings.min_days]
    n_valid = int(valid_slots.size)
    if n_valid < settings.min_years:
        raise InputError(
            f"gage {site_no}: {n_valid} valid water years, fewer than "
            f"min_years={settings.min_years}"
        )
    picks = draw_indices(settings.seed, site_no, n_valid, settings.n_samples)
    out = np.full((record.size, settings.n_samples), PAD, np.int64)
    out[:n_valid] = (valid_slots + axis.year0)[picks].T
    return out


def write_boot_years(path: str | Path, table: np.ndarray) -> None:
    """Write a (slot, sample) table as gumboot reads it: CSV, no header, no index."""
    pd.DataFrame(table).to_csv(path, header=False, index=False)


#: The options besides ``n_samples`` and ``seed`` (which are keywords of their own).
_OPTION_KEYS = tuple(k for k in UNCERTAINTY_DEFAULTS if k not in ("n_samples", "seed"))


def settings_from(
    options: Mapping[str, Any] | None = None,
    *,
    n_samples: int = UNCERTAINTY_DEFAULTS["n_samples"],
    seed: int | None = None,
    boot_years: Any = None,
    key: str | None = None,
) -> UncertaintySettings:
    """Validated settings with a resolved seed (see :func:`resolve_seed`; ``key``: run id).

    ``options`` may set ``water_year_month``, ``min_days`` and ``min_years``.
    """
    options = dict(options or {})
    unknown = sorted(set(options) - set(_OPTION_KEYS))
    if unknown:
        raise InputError(
            f"unknown uncertainty option(s) {unknown}: choose among {list(_OPTION_KEYS)}"
        )
    table = None if boot_years is None else read_boot_years(boot_years)
    if table is not None:
        n_samples = table.shape[1]
    settings = UncertaintySettings(n_samples=n_samples, seed=seed, boot_years=table, **options)
    return resolve_seed(settings, key)
