"""Synthetic HyTEST-shaped zarr stores for demos, tests and benchmarks.

``synthesize(url)`` writes ``<url>/observed.zarr`` (daily, ``(time, gage_id)``, 05:00 UTC
stamps, one gage per chunk over all time) and one ``<url>/<model>.zarr`` per model
(daily or hourly; indexed by ``gage_id``, or by ``feature_id`` with a space-padded byte
``gage_id`` coordinate as the NWM retrospective).

The series are made to look real, vectorized over gages: rain events whose frequency and
size follow a per-gage seasonal cycle feed a fast (storm) and a slow (base-flow) linear
reservoir; flows scale with drainage area and a per-gage runoff depth; some gages are
intermittent (zero-flow days); observations carry measurement noise, late record starts
and NaN gaps. Model series start from the truth and add what models get wrong: per-gage
bias, amplitude error, damped or lagged storm response (timing error) and persistent
multiplicative noise, tuned so that median NSE ≈ 0.43 and KGE ≈ 0.51 across gages, as
HyTEST's published NWM benchmark. Everything is deterministic for a seed.

The real gage 01104200 (:func:`gagebench.sample.load_sample`) is written into the stores
for its real days (NaN elsewhere) when it is in the gage list.

Layout choices: zarr format 2 with consolidated metadata by default (as HyTEST's public
stores; format 3 on request), float32, Blosc-LZ4 with byte shuffle. Every store is
chunked one gage per chunk over all time, hourly ones included: a chunk is then 60 kB
(daily) or 1.47 MB (367,439 hours) raw, every read is a whole-period read of a batch of
gages, so a batch touches exactly its own chunks, and 1-2 MB is a size object stores
serve efficiently. Hourly values are the daily model value times a small diurnal wave
of mean one, so their 05:00-05:00 daily means equal the daily store's values.
"""

from __future__ import annotations

import contextlib
import functools
import time as _time
import warnings
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from gagebench.errors import InputError
from gagebench.gages import builtin_gages, load_gages
from gagebench.ids import ID_PREFIX
from gagebench.jit import njit
from gagebench.sample import SAMPLE_SITE
from gagebench.sources.cache import clear_cache
from gagebench.sources.zarrio import write_gage_rows
from gagebench.storage.errors import translating
from gagebench.storage.fs import options_for_url

SAMPLE_ID = ID_PREFIX + SAMPLE_SITE
OBS_HOUR = np.timedelta64(5, "h")
# Gages generated at once: fixed so that the series do not depend on memory settings.
_BLOCK = 128
_HOURLY_BLOCK = 16  # gages expanded to hours at once (~47 MB of float64)
_SECONDS_PER_YEAR = 365.25 * 86400.0
# Ecoregions where intermittent (zero-flow) gages are common.
_DRY = {"WestXeric": 0.35, "WestPlains": 0.3, "CntlPlains": 0.15, "SEPlains": 0.08}


@dataclass(frozen=True)
class ModelSkill:
    """How wrong a synthetic model is, as distributions over gages."""

    bias_sd: float = 0.42  # sd of log multiplicative bias
    bias_mean: float = 0.05  # mean of log multiplicative bias
    amp_sd: float = 0.2  # sd of log amplitude error (variability ratio)
    noise_lo: float = 0.05  # per-gage sd of log noise, uniform in [lo, hi]
    noise_hi: float = 0.46
    noise_rho: float = 0.85  # day-to-day correlation of the noise
    lag_p: float = 0.2  # probability of a one-day timing error
    damp_max: float = 0.4  # storm response smoothed by up to this weight


SKILL: dict[str, ModelSkill] = {
    "nwm": ModelSkill(),
    "nhm": ModelSkill(noise_hi=0.5, lag_p=0.3, damp_max=0.5),
}


@dataclass(frozen=True)
class SynthStores:
    """Where :func:`synthesize` wrote the stores, and a config fragment pointing at them."""

    observed_url: str
    model_urls: dict[str, str]
    n_gages: int
    gages: str = "builtin"
    gage_limit: int | None = None
    frequency: str = "daily"
    storage_options: Mapping[str, Any] = field(default_factory=dict)
    timings: Mapping[str, float] = field(default_factory=dict)

    def to_config_dict(self) -> dict[str, Any]:
        """``{"gages", "gage_limit", "observed", "models"}`` for :func:`load_config`."""
        opts = dict(self.storage_options)

        def store(url: str) -> dict[str, Any]:
            spec: dict[str, Any] = {"url": url, "variable": "streamflow"}
            if opts:
                spec["storage_options"] = dict(opts)
            return spec

        return {
            "gages": self.gages,
            "gage_limit": self.gage_limit,
            "observed": store(self.observed_url),
            "models": {name: store(url) for name, url in self.model_urls.items()},
        }


# --- hydrology ----------------------------------------------------------------------------


@njit(nogil=True)
def _generate(
    doy: np.ndarray,
    hydro: np.ndarray,
    skill: np.ndarray,
    uniform: np.ndarray,
    normal: np.ndarray,
    obs: np.ndarray,
    sims: np.ndarray,
) -> None:
    """Fill ``obs`` (gage, day) and ``sims`` (model, gage, day) for a block of gages.

    ``hydro`` rows per gage: mean flow, rain probability, rain seasonality, wet phase,
    wet amplitude, fast and slow recession, fast share, zero-flow share.
    ``skill`` (model, gage, 7): damping weight, smoothing constant, lag (0/1), amplitude,
    noise sd, noise correlation, bias. Random numbers come in as arrays (NumPy's
    generators are several times faster than per-value draws): ``uniform`` (gage, day)
    drives rain (an event when u < p, of size -ln(u/p), exponential), ``normal``
    (1 + model, gage, day) the observation and model noise. One fused pass per gage.
    """
    n_gage, n_day = obs.shape
    truth = np.empty(n_day)
    work = np.empty(n_day)
    two_pi = 2.0 * np.pi / 365.25
    cos_doy = np.cos(two_pi * doy)
    sin_doy = np.sin(two_pi * doy)
    for i in range(n_gage):
        mean_flow, p0, p_amp, phase, wet, kf, ks, share, zero = hydro[i]
        cos_ph = np.cos(two_pi * phase)
        sin_ph = np.sin(two_pi * phase)
        qf = p0  # start the reservoirs near their long-run level (no warm-up drought)
        qs = p0
        total = 0.0
        for t in range(n_day):
            season = cos_doy[t] * cos_ph + sin_doy[t] * sin_ph
            p = p0 * (1.0 + p_amp * season)
            u = uniform[i, t]
            rain = 0.0
            if u < p:
                rain = -np.log(max(u / p, 1e-12)) * (1.0 + wet * season)
            qf = kf * qf + (1.0 - kf) * rain
            qs = ks * qs + (1.0 - ks) * rain
            truth[t] = share * qf + (1.0 - share) * qs
            total += truth[t]
        if zero > 0.0:
            work[:] = np.sort(truth)
            cut = work[min(n_day - 1, int(zero * n_day))]
            total = 0.0
            for t in range(n_day):
                truth[t] = max(truth[t] - cut, 0.0)
                total += truth[t]
        scale = mean_flow * n_day / max(total, 1e-12)
        for t in range(n_day):
            truth[t] *= scale
            obs[i, t] = max(truth[t] * (1.0 + 0.03 * normal[0, i, t]), 0.0)
        for m in range(sims.shape[0]):
            damp, k, lag, amp, sigma, rho, bias = skill[m, i]
            smooth = truth[0]
            total = 0.0
            for t in range(n_day):
                src = truth[t - 1] if (lag > 0.0 and t > 0) else truth[t]
                smooth = k * smooth + (1.0 - k) * src
                work[t] = (1.0 - damp) * src + damp * smooth
                total += work[t]
            mean = total / n_day
            innov = np.sqrt(1.0 - rho * rho)
            shift = 0.5 * sigma * sigma
            noise = 0.0
            for t in range(n_day):
                z = normal[m + 1, i, t]
                noise = z if t == 0 else rho * noise + innov * z
                value = max(mean + amp * (work[t] - mean), 0.0)
                sims[m, i, t] = value * bias * np.exp(sigma * noise - shift)


_HYDRO_FIELDS = 9


class _GageDraws:
    """One random stream per gage, keyed by the seed, a purpose and the gage id.

    A gage's synthetic values then depend only on the seed and its id, never on which
    other gages are synthesized with it (``--gages 500`` gives the first 500 gages of a
    full run exactly). Mimics the few ``numpy.random.Generator`` calls used here, each
    returning one value per gage.
    """

    def __init__(self, seed: int, purpose: Sequence[int], keys: Sequence[int]) -> None:
        self.rngs = [np.random.default_rng([seed, *purpose, key]) for key in keys]

    def normal(self, loc: Any = 0.0, scale: Any = 1.0, size: Any = None) -> np.ndarray:
        z = np.array([r.standard_normal() for r in self.rngs])
        return np.asarray(loc) + np.asarray(scale) * z

    def uniform(self, low: Any = 0.0, high: Any = 1.0, size: Any = None) -> np.ndarray:
        u = np.array([r.random() for r in self.rngs])
        return np.asarray(low) + (np.asarray(high) - np.asarray(low)) * u

    def random(self, size: Any = None) -> np.ndarray:
        return np.array([r.random() for r in self.rngs])


def gage_keys(ids: Sequence[str]) -> list[int]:
    """A stable integer per gage id (CRC-32), the key of its random streams."""
    return [zlib.crc32(str(g).encode()) for g in ids]


def _hydro_params(gages: pd.DataFrame, n_days: int, rng: Any) -> np.ndarray:
    """Per-gage hydrology (gage, 9): see :func:`_generate`; flows scale with drainage area."""
    g = len(gages)
    area_col = gages["drain_sqkm"] if "drain_sqkm" in gages else pd.Series(np.full(g, np.nan))
    area = np.array(pd.to_numeric(area_col, errors="coerce"), dtype=float)
    bad = ~np.isfinite(area) | (area <= 0)
    area[bad] = np.exp(rng.normal(6.5, 1.5, g))[bad]
    region_col = gages["aggecoregion"] if "aggecoregion" in gages else pd.Series([""] * g)
    dry = np.array([_DRY.get(str(r), 0.02) for r in region_col.fillna("")])
    runoff_mm = np.exp(rng.normal(np.log(350.0) - 2.0 * dry, 0.6))  # mm / year
    log_area = np.log(area)
    hydro = np.empty((g, _HYDRO_FIELDS))
    hydro[:, 0] = runoff_mm / 1000.0 * area * 1e6 / _SECONDS_PER_YEAR
    hydro[:, 1] = np.clip(rng.normal(0.28, 0.08, g) - 0.25 * dry, 0.04, 0.6)
    hydro[:, 2] = rng.uniform(0.1, 0.7, g)
    hydro[:, 3] = rng.uniform(0, 365.25, g)
    hydro[:, 4] = rng.uniform(0.2, 0.8, g)
    hydro[:, 5] = np.clip(0.35 + 0.06 * log_area + rng.normal(0, 0.05, g), 0.2, 0.93)
    hydro[:, 6] = np.clip(0.96 + 0.004 * log_area + rng.normal(0, 0.008, g), 0.93, 0.998)
    hydro[:, 7] = np.clip(rng.normal(0.55, 0.15, g) + 0.3 * dry, 0.1, 0.95)
    # Intermittent streams: mostly small basins in dry regions.
    p_dry = dry * np.where(area < 2000.0, 1.0, 0.3)
    hydro[:, 8] = np.where(rng.random(g) < p_dry, rng.uniform(0.05, 0.45, g), 0.0)
    return hydro


def _skill_params(skill: ModelSkill, g: int, rng: Any) -> np.ndarray:
    """Per-gage model errors (gage, 7): see :func:`_generate`."""
    out = np.empty((g, 7))
    out[:, 0] = rng.uniform(0.0, skill.damp_max, g)
    out[:, 1] = rng.uniform(0.4, 0.8, g)
    out[:, 2] = (rng.random(g) < skill.lag_p).astype(float)
    out[:, 3] = np.exp(rng.normal(0.0, skill.amp_sd, g))
    out[:, 4] = rng.uniform(skill.noise_lo, skill.noise_hi, g)
    out[:, 5] = skill.noise_rho
    out[:, 6] = np.exp(rng.normal(skill.bias_mean, skill.bias_sd, g))
    return out


def _record_gaps(
    obs: np.ndarray,
    record_days: np.ndarray,
    gap_fraction: float,
    rngs: Sequence[np.random.Generator],
) -> None:
    """Observed records: a window of each gage's record length, multi-week gaps and
    scattered missing days (``gap_fraction`` of all days); one random stream per gage."""
    d = obs.shape[1]
    for i, rng in enumerate(rngs):
        row = obs[i]
        if gap_fraction > 0:
            row[rng.integers(0, d, rng.binomial(d, gap_fraction))] = np.nan
        length = int(np.clip(record_days[i] + rng.normal(0, 200), 1500, d))
        start = int(rng.random() * (d - length))
        row[:start] = np.nan
        row[start + length :] = np.nan
        for _ in range(int(rng.poisson(1.5))):
            begin = int(rng.integers(0, d))
            row[begin : begin + int(rng.geometric(1 / 40.0))] = np.nan


# --- writing ------------------------------------------------------------------------------


def _join(base: str, name: str) -> str:
    return f"{base.rstrip('/')}/{name}"


def _encoding(chunks: tuple[int, int], zarr_format: int) -> dict[str, Any]:
    enc: dict[str, Any] = {"chunks": chunks, "dtype": "float32", "_FillValue": np.nan}
    if zarr_format == 2:
        from numcodecs import Blosc

        enc["compressors"] = [Blosc(cname="lz4", clevel=5, shuffle=Blosc.SHUFFLE)]
    else:
        from zarr.codecs import BloscCodec

        enc["compressors"] = [BloscCodec(cname="lz4", clevel=5, shuffle="shuffle")]
    return enc


class _StoreWriter:
    """A zarr store written as a metadata template, then gage blocks as regions."""

    def __init__(
        self,
        url: str,
        times: np.ndarray,
        gage_coords: dict[str, tuple[str, np.ndarray]],
        gage_dim: str,
        attrs: dict[str, Any],
        storage_options: Mapping[str, Any] | None,
        zarr_format: int,
    ):
        import dask.array as da
        import xarray as xr

        self.url = url
        self.gage_dim = gage_dim
        self.storage_options = options_for_url(url, storage_options)
        self.zarr_format = zarr_format
        self._zarray: Any = None
        n = len(next(iter(gage_coords.values()))[1])
        shape = (times.size, n)
        chunks = (times.size, 1)
        template = xr.Dataset(
            {
                "streamflow": (
                    ("time", gage_dim),
                    da.zeros(shape, dtype="float32", chunks=(times.size, max(1, min(n, 64)))),
                    {"units": "m3 s-1", "long_name": "streamflow"},
                )
            },
            coords={"time": times, **{k: (dim, v) for k, (dim, v) in gage_coords.items()}},
            attrs=attrs,
        )
        encoding: dict[str, Any] = {"streamflow": _encoding(chunks, zarr_format)}
        if "gage_id" in gage_coords and gage_coords["gage_id"][1].dtype.kind == "S":
            encoding["gage_id"] = {"dtype": gage_coords["gage_id"][1].dtype}
        self._call(
            lambda: template.to_zarr(
                url,
                mode="w",
                compute=False,
                consolidated=True,
                zarr_format=zarr_format,
                encoding=encoding,
                storage_options=self.storage_options,
            )
        )

    def _call(self, fn: Callable[[], Any]) -> Any:
        # zarr raises ValueError for a path that holds something else than a store
        with (
            translating(self.url, "write", "the synthetic store", also=(ValueError,)),
            warnings.catch_warnings(),
        ):
            warnings.filterwarnings("ignore", message=".*[Cc]onsolidated metadata.*")
            warnings.filterwarnings("ignore", message=".*does not have a Zarr V3.*")
            return fn()

    def _array(self) -> Any:
        import zarr

        if self._zarray is None:
            group = self._call(
                lambda: zarr.open_group(self.url, mode="r+", storage_options=self.storage_options)
            )
            self._zarray = group["streamflow"]
        return self._zarray

    def write(self, rows: np.ndarray, values: np.ndarray) -> None:
        """Write ``values`` (gage, time) to the store's gage positions ``rows``."""
        array = self._array()
        self._call(lambda: write_gage_rows(array, rows, values))


def _gage_frame(gages: pd.DataFrame | str | None, n_gages: int | None) -> tuple[pd.DataFrame, str]:
    if gages is None or (isinstance(gages, str) and gages == "builtin"):
        frame, source = builtin_gages(), "builtin"
    elif isinstance(gages, str):
        frame, source = load_gages(gages), gages
    elif isinstance(gages, pd.DataFrame):
        frame, source = gages.reset_index(drop=True), "custom"
        if "gage_id" not in frame.columns:
            raise InputError("gages must be a frame from gagebench.gages.load_gages (gage_id)")
    else:
        raise InputError(f"gages must be None, 'builtin', a URL or a DataFrame, got {gages!r}")
    if n_gages is not None:  # validated by SynthSpec
        frame = frame.iloc[:n_gages].reset_index(drop=True)
    return frame, source


def _feature_ids(gages: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
    if "comid" in gages:
        comid = pd.to_numeric(gages["comid"], errors="coerce")
        if comid.notna().all() and comid.is_unique:
            return comid.to_numpy(dtype=np.int64)
    return np.sort(rng.choice(np.arange(1, 50 * len(gages) + 1), len(gages), replace=False))


def _padded(site_nos: Sequence[str]) -> np.ndarray:
    return np.array([s.rjust(15).encode() for s in site_nos], dtype="S15")


@dataclass(frozen=True)
class SynthSpec:
    """What :func:`synthesize` makes, validated once: gages, period, models, layout, seed.

    See :func:`synthesize` for the meaning of each field. ``models`` is kept as a tuple.
    """

    n_gages: int | None = None
    start: str = "1979-02-01"
    end: str = "2020-12-31"
    models: tuple[str, ...] = ("nwm", "nhm")
    frequency: str = "daily"
    model_index: str = "gage_id"
    seed: int = 0
    include_sample: bool = True
    missing_fraction: float = 0.002
    gap_fraction: float = 0.002
    zarr_format: int = 2

    def __post_init__(self) -> None:
        object.__setattr__(self, "models", tuple(self.models))
        if self.frequency not in ("daily", "hourly"):
            raise InputError(f"frequency must be 'daily' or 'hourly', got {self.frequency!r}")
        if self.model_index not in ("gage_id", "feature_id"):
            raise InputError(
                f"model_index must be 'gage_id' or 'feature_id', got {self.model_index!r}"
            )
        if not self.models or len(set(self.models)) != len(self.models):
            raise InputError(f"models must be distinct names, got {list(self.models)!r}")
        from gagebench.config import NAME  # a run's model names: the same rule

        bad = [name for name in self.models if not NAME.match(name)]
        if bad:
            raise InputError(
                f"model name(s) {bad!r}: use letters, digits, '.', '_' or '-', not starting "
                "with a symbol (each names a store and a folder of the run)"
            )
        # <name>.zarr beside observed.zarr: "observed" would overwrite the observed store
        # (a model scored against itself), "NWM" and "nwm" are one store on macOS/Windows
        folded: dict[str, str] = {"observed": "the observed store"}
        for name in self.models:
            key = name.casefold().rstrip(".")
            if key in folded:
                raise InputError(
                    f"model name {name!r}: its store {name}.zarr would be the same as that "
                    f"of {folded[key]} (on case-insensitive file systems too): rename it"
                )
            folded[key] = f"model {name!r}"
        if not 0.0 <= self.missing_fraction < 1.0 or not 0.0 <= self.gap_fraction < 1.0:
            raise InputError("missing_fraction and gap_fraction must be in [0, 1)")
        if self.zarr_format not in (2, 3):
            raise InputError(f"zarr_format must be 2 or 3, got {self.zarr_format!r}")
        if self.n_gages is not None and self.n_gages < 1:
            raise InputError(f"n_gages must be a positive integer, got {self.n_gages}")
        for name, example in (("start", "1979-02-01"), ("end", "2020-12-31")):
            value = getattr(self, name)
            try:
                np.datetime64(value, "D")
            except (ValueError, TypeError):
                raise InputError(
                    f"{name} {value!r} is not a calendar day: give it as YYYY-MM-DD, e.g. "
                    f"{example} (gagebench synth --{name} {example})"
                ) from None
        if self.days.size < 2:
            raise InputError(f"start {self.start!r} must be before end {self.end!r}")

    @property
    def days(self) -> np.ndarray:
        """The synthesized days, ``start`` through ``end``."""
        return np.arange(np.datetime64(self.start, "D"), np.datetime64(self.end, "D") + 1)

    @property
    def stores(self) -> list[str]:
        """Store names: ``observed``, then the models."""
        return ["observed", *self.models]


def synthesize(
    output_url: str,
    *,
    gages: pd.DataFrame | str | None = None,
    n_gages: int | None = None,
    start: str = "1979-02-01",
    end: str = "2020-12-31",
    models: Sequence[str] = ("nwm", "nhm"),
    frequency: str = "daily",
    model_index: str = "gage_id",
    seed: int = 0,
    storage_options: Mapping[str, Any] | None = None,
    include_sample: bool = True,
    missing_fraction: float = 0.002,
    gap_fraction: float = 0.002,
    zarr_format: int = 2,
    progress: Callable[[str, int, int], None] | None = None,
) -> SynthStores:
    """Write synthetic observed and model stores under ``output_url``; return where.

    The stores have the layout of HyTEST's (``streamflow`` over ``time`` and
    ``gage_id``); the same seed and settings give the same values. The keywords other
    than ``gages``, ``storage_options`` and ``progress`` make a :class:`SynthSpec`.

    Parameters
    ----------
    output_url
        The folder (any fsspec URL) that gets ``observed.zarr`` and ``<model>.zarr``.
    gages
        None or ``"builtin"`` (the 5390-gage list), a gage-list URL or a frame from
        :func:`gagebench.gages.load_gages`.
    n_gages
        Keep the first N gages of the list; None: all.
    start, end
        The first and last day of the stores (``"YYYY-MM-DD"``).
    models
        The model stores to write, one per name.
    frequency
        ``"daily"`` or ``"hourly"`` model stores (observations are always daily at
        05:00 UTC).
    model_index
        ``"gage_id"``, or ``"feature_id"`` (NWM-style: reach ids, a byte ``gage_id``
        coordinate, plus a few features without a gage).
    seed
        The seed every value is drawn from; a gage's series depend only on it and the
        gage id.
    storage_options
        fsspec options for ``output_url`` (and a gage-list URL).
    include_sample
        Write the real sample gage 01104200's flows (:func:`gagebench.sample.load_sample`)
        where it is in the list, so its scores are known ones.
    missing_fraction
        Share of the listed gages left out of each store (drawn per store; never the
        sample gage), so runs exercise ``not_in_observed``/``not_in_model``.
    gap_fraction
        Share of observed days set to NaN at random, on top of record windows and
        multi-week gaps.
    zarr_format
        2 or 3: the zarr format of the stores.
    progress
        Called as ``progress(store_name, gages_done, gages_total)`` while writing.

    Returns
    -------
    SynthStores
        The stores' URLs; ``to_config_dict()`` gives the settings (``gages``,
        ``observed``, ``models``) of a run on them, for :func:`gagebench.load_config`.
    """
    spec = SynthSpec(
        n_gages=n_gages,
        start=start,
        end=end,
        models=tuple(models),
        frequency=frequency,
        model_index=model_index,
        seed=seed,
        include_sample=include_sample,
        missing_fraction=missing_fraction,
        gap_fraction=gap_fraction,
        zarr_format=zarr_format,
    )
    return write_stores(output_url, spec, gages, storage_options, progress)


def write_stores(
    output_url: str,
    spec: SynthSpec,
    gages: pd.DataFrame | str | None = None,
    storage_options: Mapping[str, Any] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> SynthStores:
    """:func:`synthesize` for a ready :class:`SynthSpec`: plan, open the stores, fill them."""
    clock = _time.perf_counter()
    plan = _plan(spec, gages)
    writers, rows = _open_stores(output_url, spec, plan, storage_options)
    timings = {"setup_s": _time.perf_counter() - clock}
    timings.update(_fill(spec, plan, writers, rows, progress))
    timings["total_s"] = _time.perf_counter() - clock
    clear_cache()  # stores opened earlier in this process may have been overwritten
    limit = spec.n_gages if plan.source == "builtin" and spec.n_gages is not None else None
    return SynthStores(
        observed_url=writers["observed"].url,
        model_urls={name: writers[name].url for name in spec.models},
        n_gages=plan.n,
        gages=plan.source if plan.source != "custom" else "builtin",
        gage_limit=limit,
        frequency=spec.frequency,
        storage_options=dict(storage_options or {}),
        timings=timings,
    )


@dataclass(frozen=True)
class _Plan:
    """The gages to synthesize and every per-gage parameter drawn for them."""

    frame: pd.DataFrame
    source: str  # "builtin", the gage-list URL or "custom"
    ids: np.ndarray
    keys: list[int]
    days: np.ndarray
    hydro: np.ndarray  # (gage, 9): see _generate
    skills: np.ndarray  # (model, gage, 7): see _generate
    record_days: np.ndarray
    sample_pos: int  # row of the real sample gage, -1 if not written
    present: dict[str, np.ndarray]  # per store: positions of the gages it holds

    @property
    def n(self) -> int:
        return len(self.frame)

    @functools.cached_property
    def doy(self) -> np.ndarray:
        """Day of the year (0-based) of each day, as float, for the seasonal cycle."""
        return (self.days - self.days.astype("datetime64[Y]")).astype(np.int64).astype(float)

    @functools.cached_property
    def hours(self) -> np.ndarray:
        """The hourly time axis of hourly model stores."""
        return _hourly_axis(self.days)


def _plan(spec: SynthSpec, gages: pd.DataFrame | str | None) -> _Plan:
    """Draw each gage's parameters, from random streams keyed by the seed and its id."""
    frame, source = _gage_frame(gages, spec.n_gages)
    days = spec.days
    n, n_days = len(frame), days.size
    ids = frame["gage_id"].astype(str).to_numpy()
    keys = gage_keys(ids.tolist())
    hydro = _hydro_params(frame, n_days, _GageDraws(spec.seed, (0,), keys))
    skills = np.stack(
        [
            _skill_params(SKILL.get(name, ModelSkill()), n, _GageDraws(spec.seed, (4, k), keys))
            for k, name in enumerate(spec.models)
        ]
    )
    record_col = frame["n_days"] if "n_days" in frame else pd.Series(np.full(n, 12146))
    record_days = np.array(pd.to_numeric(record_col, errors="coerce"), dtype=float)
    record_days = np.nan_to_num(record_days, nan=12146.0) * n_days / 12146.0
    sample_pos = -1
    if spec.include_sample and SAMPLE_ID in set(ids):
        sample_pos = int(np.flatnonzero(ids == SAMPLE_ID)[0])
    present = {}
    for k, name in enumerate(spec.stores):
        keep = _GageDraws(spec.seed, (1, k), keys).random() >= spec.missing_fraction
        if sample_pos >= 0:
            keep[sample_pos] = True
        present[name] = np.flatnonzero(keep)
    return _Plan(frame, source, ids, keys, days, hydro, skills, record_days, sample_pos, present)


def _refuse_foreign(url: str, storage_options: Mapping[str, Any] | None) -> None:
    """InputError when ``url`` holds something synth did not write (a real store, a run,
    any file): writing a store there replaces the whole folder."""
    import json

    import fsspec

    with translating(url, "check", "the synthetic store"):
        fs, path = fsspec.core.url_to_fs(url, **(options_for_url(url, storage_options) or {}))
        if not fs.exists(path):
            return
        for name in (".zattrs", "zarr.json"):
            with contextlib.suppress(FileNotFoundError, NotADirectoryError, ValueError):
                meta = json.loads(fs.cat_file(f"{path.rstrip('/')}/{name}"))
                attrs = meta.get("attributes", meta) if isinstance(meta, dict) else {}
                if isinstance(attrs, dict) and attrs.get("source") == "gagebench.synth":
                    return  # a store synth wrote before: replaced
    raise InputError(
        f"{url} already holds data that gagebench synth did not write: synth replaces the "
        "whole folder there, so choose another OUTPUT_URL (or remove it first)"
    )


def _open_stores(
    output_url: str,
    spec: SynthSpec,
    plan: _Plan,
    storage_options: Mapping[str, Any] | None,
) -> tuple[dict[str, _StoreWriter], dict[str, np.ndarray]]:
    """Write each store's metadata; return its writer and the store row of each listed
    gage (-1 where left out), per store."""
    attrs = {
        "title": "gagebench synthetic streamflow",
        "seed": spec.seed,
        "source": "gagebench.synth",
    }
    obs_times = (plan.days + OBS_HOUR).astype("datetime64[ns]")
    hourly = spec.frequency == "hourly"
    model_times = plan.hours if hourly else obs_times
    writers: dict[str, _StoreWriter] = {}
    rows: dict[str, np.ndarray] = {}
    for name in spec.stores:  # all checked before any is replaced
        _refuse_foreign(_join(output_url, f"{name}.zarr"), storage_options)
    for k, name in enumerate(spec.stores):
        pos = plan.present[name]
        if name != "observed" and spec.model_index == "feature_id":
            rng = np.random.default_rng([spec.seed, 2, k - 1])
            coords, rows[name] = _feature_layout(plan, pos, rng)
            dim = "feature_id"  # NaN filler columns are the template's fill value
        else:
            coords = {"gage_id": ("gage_id", plan.ids[pos].astype(object))}
            rows[name], dim = _rows_of(pos, plan.n), "gage_id"
        writers[name] = _StoreWriter(
            _join(output_url, f"{name}.zarr"),
            obs_times if name == "observed" else model_times,
            coords,
            dim,
            {**attrs, "kind": name},
            storage_options,
            spec.zarr_format,
        )
    return writers, rows


def _feature_layout(
    plan: _Plan, pos: np.ndarray, rng: np.random.Generator
) -> tuple[dict[str, tuple[str, np.ndarray]], np.ndarray]:
    """NWM-style coordinates of a model store (sorted ``feature_id``, byte ``gage_id``,
    a few features without a gage) and the store row of each listed gage."""
    site_nos = plan.frame["site_no"].astype(str).tolist()
    fids = _feature_ids(plan.frame, rng)[pos]
    extra = max(1, len(pos) // 100)
    feature = np.concatenate([fids, fids.max() + 1 + np.arange(extra)])
    padded = np.concatenate([_padded([site_nos[i] for i in pos]), _padded([""] * extra)])
    order = np.argsort(feature, kind="stable")
    row_of_feature = np.empty(order.size, dtype=np.int64)
    row_of_feature[order] = np.arange(order.size)
    store_row = np.full(plan.n, -1, dtype=np.int64)
    store_row[pos] = row_of_feature[: len(pos)]
    coords = {
        "feature_id": ("feature_id", feature[order]),
        "gage_id": ("feature_id", padded[order]),
    }
    return coords, store_row


def _fill(
    spec: SynthSpec,
    plan: _Plan,
    writers: dict[str, _StoreWriter],
    rows: dict[str, np.ndarray],
    progress: Callable[[str, int, int], None] | None,
) -> dict[str, float]:
    """Generate and write the series, ``_BLOCK`` gages at a time; return the timings."""
    sample = _sample_block(plan.days) if plan.sample_pos >= 0 else None
    gen_s = write_s = 0.0
    for b0 in range(0, plan.n, _BLOCK):
        t0 = _time.perf_counter()
        sl = slice(b0, min(plan.n, b0 + _BLOCK))
        series = _block_series(spec, plan, sl, sample)
        gen_s += _time.perf_counter() - t0
        t0 = _time.perf_counter()
        for name, values in series.items():
            expand = spec.frequency == "hourly" and name != "observed"
            _write_rows(writers[name], rows[name][sl], values, expand, plan.days, plan.hours)
            if progress is not None:
                progress(name, sl.stop, plan.n)
        write_s += _time.perf_counter() - t0
    return {"generate_s": gen_s, "write_s": write_s}


def _block_series(
    spec: SynthSpec, plan: _Plan, sl: slice, sample: dict[str, np.ndarray] | None
) -> dict[str, np.ndarray]:
    """The daily series of the gages ``sl``, per store: (gage, day) float32."""
    n_models, n_days = len(spec.models), plan.days.size
    obs = np.empty((sl.stop - sl.start, n_days), dtype=np.float32)
    sims = np.empty((n_models, *obs.shape), dtype=np.float32)
    uniform = np.empty(obs.shape, dtype=np.float32)
    normal = np.empty((1 + n_models, *obs.shape), dtype=np.float32)
    rngs = [np.random.default_rng([spec.seed, 3, plan.keys[i]]) for i in range(sl.start, sl.stop)]
    for j, grng in enumerate(rngs):
        grng.random(out=uniform[j], dtype=np.float32)
        normal[:, j] = grng.standard_normal((1 + n_models, n_days), dtype=np.float32)
    _generate(plan.doy, plan.hydro[sl], plan.skills[:, sl], uniform, normal, obs, sims)
    del uniform, normal
    _record_gaps(obs, plan.record_days[sl], spec.gap_fraction, rngs)
    series = {"observed": obs, **{name: sims[k] for k, name in enumerate(spec.models)}}
    if sample is not None and sl.start <= plan.sample_pos < sl.stop:
        for name, values in sample.items():
            if name in series:
                series[name][plan.sample_pos - sl.start] = values
    return series


def _rows_of(pos: np.ndarray, n: int) -> np.ndarray:
    rows = np.full(n, -1, dtype=np.int64)
    rows[pos] = np.arange(pos.size)
    return rows


def _hourly_axis(days: np.ndarray) -> np.ndarray:
    """NWM-retrospective-like hours: first day 01:00 through the last day 23:00."""
    first = days[0].astype("datetime64[h]") + np.timedelta64(1, "h")
    last = days[-1].astype("datetime64[h]") + np.timedelta64(23, "h")
    return np.arange(first, last + 1).astype("datetime64[ns]")


def _to_hourly(
    daily: np.ndarray, days: np.ndarray, hours: np.ndarray, rng_phase: np.ndarray
) -> np.ndarray:
    """Hourly values whose 05:00-05:00 daily means equal ``daily`` (a diurnal wiggle)."""
    g = daily.shape[0]
    # Each hour belongs to the day that starts at 05:00 before it.
    day0 = (hours[0] - OBS_HOUR).astype("datetime64[D]")
    first = int((day0 - days[0]).astype(np.int64))
    lead = int((hours[0] - OBS_HOUR - day0.astype("datetime64[ns]")) // np.timedelta64(1, "h"))
    n_bins = -(-(lead + hours.size) // 24)
    idx = np.clip(first + np.arange(n_bins), 0, days.size - 1)
    phase = np.arange(24)[None, :] + rng_phase[:, None]
    wiggle = 1.0 + 0.05 * np.sin(2 * np.pi * phase / 24.0)
    grid = daily[:, idx, None] * wiggle[:, None, :]
    return grid.reshape(g, n_bins * 24)[:, lead : lead + hours.size]


def _write_rows(
    writer: _StoreWriter,
    store_rows: np.ndarray,
    values: np.ndarray,
    expand: bool,
    days: np.ndarray,
    hours: np.ndarray,
) -> None:
    """Write the block's gages that the store holds, in runs of consecutive store rows."""
    keep = np.flatnonzero(store_rows >= 0)
    if keep.size == 0:
        return
    targets = store_rows[keep]
    order = np.argsort(targets, kind="stable")
    keep, targets = keep[order], targets[order]
    if not expand:
        writer.write(targets, values[keep])
        return
    # Hourly rows are 24x larger: expand and write a few gages at a time.
    for s in range(0, keep.size, _HOURLY_BLOCK):
        part = slice(s, s + _HOURLY_BLOCK)
        phase = np.asarray(targets[part] % 24, dtype=float)
        writer.write(targets[part], _to_hourly(values[keep[part]], days, hours, phase))


def _sample_block(days: np.ndarray) -> dict[str, np.ndarray]:
    """The real gage's series on ``days`` (NaN outside its 1983-2016 record)."""
    from gagebench.sample import load_sample

    frame = load_sample()
    index = pd.DatetimeIndex(days.astype("datetime64[ns]"))
    aligned = frame.reindex(index)
    names = {"obs": "observed"}
    return {names.get(c, c): aligned[c].to_numpy(dtype=float) for c in aligned.columns}
