"""Sampling uncertainty of NSE and KGE per gage: the resampling plan and the suite's rows.

gumboot's ``bootjack()`` (Clark et al. 2021, doi:10.1029/2020WR029001; CRAN gumboot
1.0.2) resamples water years: a jackknife that leaves out each valid year and a bootstrap
of ``n_samples`` draws of the valid years with replacement. The kernels are in
:mod:`gagebench.metrics.uncertainty`; this module decides which years each sample holds.

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from gagebench.errors import InputError
from gagebench.metrics import uncertainty as kern

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
PAD = -9999


@dataclass(frozen=True)
class UncertaintySettings:
    """The suite's settings (config section ``uncertainty``).

    ``seed`` None: a fresh random seed per call (``evaluate``) or one derived from the run
    id (a run, so a resumed run draws the same years). ``boot_years``: a (slot, sample)
    array of water years in gumboot's ``bootYearFile`` layout that replaces the draws.
    """

    n_samples: int = 1000
    seed: int | None = None
    water_year_month: int = 10
    min_days: int = 100
    min_years: int = 10
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
        return UncertaintySettings(
            self.n_samples, seed, self.water_year_month, self.min_days, self.min_years,
            self.boot_years,
        )  # fmt: skip

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


def site_generator(seed: int, site_no: Any) -> np.random.Generator:
    """The generator of one gage's draws: its stream depends on (seed, site number) only."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), site_number(site_no)]))


def draw_indices(seed: int, site_no: Any, n_valid: int, n_samples: int) -> np.ndarray:
    """(sample, slot) indices into a gage's valid years: n_valid draws with replacement."""
    return site_generator(seed, site_no).integers(0, n_valid, size=(n_samples, n_valid))


def water_years(dates: npt.ArrayLike, month: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """(water year, calendar year) of each day: water year = year + 1 from ``month`` on."""
    days = np.asarray(dates, dtype="datetime64[D]")
    months = days.astype("datetime64[M]").astype(np.int64)
    year = (months // 12 + 1970).astype(np.int64)
    wy = year + ((months % 12 + 1) >= month).astype(np.int64)
    return wy, year


@dataclass(frozen=True)
class YearTable:
    """Per gage (G) and record water year (K slots): sufficient statistics and validity."""

    stats: np.ndarray  # (G, K, 6)
    years: np.ndarray  # (G, K) water-year numbers, -1 past n_years
    n_years: np.ndarray  # (G,)
    jab_years: np.ndarray  # (G, K) gumboot's calendar year per JAB replicate, -1 none
    centre: np.ndarray  # (G, 2)
    valid: np.ndarray  # (G, K) bool

    def valid_years(self, g: int) -> np.ndarray:
        """Water-year numbers of gage ``g``'s valid years, ascending (gumboot's order)."""
        ny = int(self.n_years[g])
        years = self.years[g, :ny][self.valid[g, :ny]]
        return np.sort(years)


def year_table(
    obs: np.ndarray, sim: np.ndarray, dates: npt.ArrayLike, settings: UncertaintySettings
) -> YearTable:
    """One pass over a batch: each gage's record water years and their year statistics."""
    wy, cy = water_years(dates, settings.water_year_month)
    if wy.size != obs.shape[1]:
        raise InputError(f"time has {wy.size} dates but the arrays have {obs.shape[1]} days")
    year_min = int(min(wy.min(), cy.min()))
    n_slots = int(max(wy.max(), cy.max())) - year_min + 1
    n_gages = obs.shape[0]
    k = max(int(np.unique(wy).size), 1)
    stats = np.zeros((n_gages, k, kern.N_STATS))
    years = np.full((n_gages, k), -1, np.int64)
    n_years = np.zeros(n_gages, np.int64)
    jab = np.full((n_gages, k), -1, np.int64)
    centre = np.zeros((n_gages, 2))
    kern.year_table(obs, sim, wy, cy, year_min, n_slots, stats, years, n_years, jab, centre)
    valid = stats[:, :, 0] > settings.min_days
    return YearTable(stats, years, n_years, jab, centre, valid)


@dataclass
class GageSamples:
    """One model's suite values for a batch, plus each gage's bootstrap samples."""

    values: np.ndarray  # (G, len(COLUMNS))
    status: list[str]
    note: list[str]
    samples: list[np.ndarray | None]  # per gage (2, S): NSE and KGE bootstrap values
    valid_years: list[np.ndarray]


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
    obs = np.ascontiguousarray(obs, dtype=np.float64)
    sim = np.ascontiguousarray(sim, dtype=np.float64)
    table = year_table(obs, sim, dates, settings)
    mode_code = kern.MODE_HYTEST if mode == "hytest" else kern.MODE_STANDARD
    n_gages = obs.shape[0]
    values = np.full((n_gages, len(COLUMNS)), np.nan)
    status = ["ok"] * n_gages
    note = [""] * n_gages
    samples: list[np.ndarray | None] = [None] * n_gages
    valid_list: list[np.ndarray] = []
    out = np.empty((2, len(FIELDS)))
    for g in range(n_gages):
        ny = int(table.n_years[g])
        valid = table.valid[g, :ny]
        record_years = table.years[g, :ny]
        valid_years = np.sort(record_years[valid])
        valid_list.append(valid_years)
        n_valid = int(valid_years.size)
        values[g, -1] = n_valid
        if n_valid < settings.min_years:
            status[g] = TOO_FEW_YEARS
            note[g] = (
                f"uncertainty: {n_valid} valid water years (more than {settings.min_days} "
                f"valid days), fewer than min_years={settings.min_years}"
            )
            continue
        position = {int(y): i for i, y in enumerate(record_years)}
        if settings.boot_years is not None:
            plan = settings.boot_years
            if plan.shape[0] < n_valid:
                status[g] = "boot_years_too_short"
                note[g] = (
                    f"uncertainty: boot_years has {plan.shape[0]} year slots, this gage "
                    f"has {n_valid} valid water years"
                )
                continue
            slot_years = plan[:n_valid].T
        else:
            assert settings.seed is not None
            picks = draw_indices(settings.seed, site_ids[g], n_valid, settings.n_samples)
            slot_years = valid_years[picks]
        lookup = np.full(int(record_years.max()) - int(record_years.min()) + 1, -1, np.int64)
        lookup[record_years - record_years.min()] = np.arange(ny)
        rel = slot_years - record_years.min()
        inside = (rel >= 0) & (rel < lookup.size)
        slots = np.where(inside, lookup[np.clip(rel, 0, lookup.size - 1)], -1)
        if mode_code == kern.MODE_HYTEST:
            jab = np.array(
                [position.get(int(y), -1) if y >= 0 else -1 for y in table.jab_years[g, :ny]],
                np.int64,
            )
        else:
            jab = np.flatnonzero(valid).astype(np.int64)
        boot = np.empty((2, slots.shape[0]))
        kern.gage_uncertainty(
            np.ascontiguousarray(table.stats[g, :ny]),
            np.ascontiguousarray(valid),
            float(table.centre[g, 0]),
            float(table.centre[g, 1]),
            np.ascontiguousarray(slots, np.int64),
            jab,
            mode_code,
            out,
            boot,
        )
        values[g, : len(FIELDS)] = out[0]
        values[g, len(FIELDS) : 2 * len(FIELDS)] = out[1]
        samples[g] = boot
    return GageSamples(values, status, note, samples, valid_list)


def paired_columns(first: GageSamples, other: GageSamples) -> np.ndarray:
    """(G, len(PAIRED_COLUMNS)): S(other) − S(first) over shared draws, and first's wins.

    A gage whose two models have different valid years (so different draws) gets NaN.
    """
    n_gages = len(first.samples)
    out = np.full((n_gages, len(PAIRED_COLUMNS)), np.nan)
    for g in range(n_gages):
        a, b = first.samples[g], other.samples[g]
        if a is None or b is None or not np.array_equal(first.valid_years[g], other.valid_years[g]):
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
    obs = np.asarray(observed, dtype=np.float64).reshape(1, -1)
    sim = np.asarray(simulated, dtype=np.float64).reshape(1, -1)
    table = year_table(obs, sim, dates, settings)
    valid_years = table.valid_years(0)
    n_valid = int(valid_years.size)
    if n_valid < settings.min_years:
        raise InputError(
            f"gage {site_no}: {n_valid} valid water years, fewer than "
            f"min_years={settings.min_years}"
        )
    picks = draw_indices(settings.seed, site_no, n_valid, settings.n_samples)
    out = np.full((int(table.n_years[0]), settings.n_samples), PAD, np.int64)
    out[:n_valid] = valid_years[picks].T
    return out


def write_boot_years(path: str | Path, table: np.ndarray) -> None:
    """Write a (slot, sample) table as gumboot reads it: CSV, no header, no index."""
    pd.DataFrame(table).to_csv(path, header=False, index=False)


_OPTION_KEYS = ("water_year_month", "min_days", "min_years")


def settings_from(
    options: Mapping[str, Any] | None = None,
    *,
    n_samples: int = 1000,
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
