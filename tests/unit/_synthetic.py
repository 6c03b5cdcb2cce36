"""Synthetic gages for the engine-vs-reference tests: realistic flows plus every hard case.

Each gage is built by a named recipe (plain, intermittent, ties, near-floor, negative,
short, large, and one-off special cases) so a failing comparison can say which kind of
gage broke. Deterministic for a given seed.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

Recipe = Callable[[np.random.Generator, np.ndarray], tuple[np.ndarray, np.ndarray]]


def _flows(rng: np.random.Generator, doy: np.ndarray, scale: float) -> np.ndarray:
    """Daily flows: seasonal cycle, AR(1) log noise and decaying storm peaks."""
    n = doy.size
    phase = rng.uniform(0, 2 * np.pi)
    season = rng.uniform(0.3, 1.5) * np.sin(2 * np.pi * doy / 365.25 + phase)
    shocks = rng.normal(0, rng.uniform(0.05, 0.4), n)
    noise = np.empty(n)
    noise[0] = shocks[0]
    for i in range(1, n):
        noise[i] = 0.9 * noise[i - 1] + shocks[i]
    storms = np.zeros(n)
    peaks = rng.random(n) < 0.03
    storms[peaks] = rng.exponential(3.0, peaks.sum())
    for i in range(1, n):
        storms[i] += 0.6 * storms[i - 1]
    return scale * (np.exp(season + noise) + storms)


def _model(rng: np.random.Generator, q: np.ndarray) -> np.ndarray:
    """A model of ``q``: multiplicative bias, noise and a timing error of 0-3 days."""
    shifted = np.roll(q, int(rng.integers(0, 4)))
    return shifted * rng.uniform(0.5, 1.6) * np.exp(rng.normal(0, rng.uniform(0.05, 0.6), q.size))


def _gaps(rng: np.random.Generator, x: np.ndarray, frac: float) -> np.ndarray:
    """NaN blocks covering about ``frac`` of the days plus a few scattered NaNs."""
    x = x.copy()
    n = x.size
    covered = 0
    while covered < frac * n:
        start = int(rng.integers(0, n))
        length = int(rng.integers(1, 60))
        x[start : start + length] = np.nan
        covered += length
    x[rng.random(n) < frac / 5] = np.nan
    return x


def plain(rng: np.random.Generator, doy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    q = _flows(rng, doy, 10 ** rng.uniform(-1, 3))
    return _gaps(rng, q, rng.uniform(0, 0.2)), _gaps(rng, _model(rng, q), 0.02)


def intermittent(rng: np.random.Generator, doy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    q = _flows(rng, doy, 1.0)
    cut = np.quantile(q, rng.uniform(0.1, 0.7))
    o = np.where(q > cut, q - cut, 0.0)
    s = _model(rng, q)
    s = np.where(s > cut * rng.uniform(0.5, 1.5), s - cut, 0.0)
    return _gaps(rng, o, 0.05), s


def ties(rng: np.random.Generator, doy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    q = _flows(rng, doy, 10 ** rng.uniform(0, 2))
    digits = int(rng.integers(-1, 2))
    return _gaps(rng, np.round(q, digits), 0.05), np.round(_model(rng, q), digits)


def near_floor(rng: np.random.Generator, doy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flows around the 0.01 and 0.1 log floors, so the floors and their ties matter."""
    q = _flows(rng, doy, 0.02)
    return _gaps(rng, np.round(q, 3), 0.05), np.round(_model(rng, q), 3)


def negative(rng: np.random.Generator, doy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Tidal/backwater gages: flow reversals (negative values) in both series."""
    q = _flows(rng, doy, 5.0)
    shift = np.quantile(q, rng.uniform(0.05, 0.5))
    return _gaps(rng, q - shift, 0.05), _model(rng, q) - shift * rng.uniform(0.5, 1.5)


def large(rng: np.random.Generator, doy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    q = _flows(rng, doy, 10 ** rng.uniform(3, 5))
    return _gaps(rng, q, 0.05), _model(rng, q)


def short(rng: np.random.Generator, doy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Only a handful of paired days (0, 1, 2, ... 60) somewhere in the period."""
    q = _flows(rng, doy, 3.0)
    o, s = q.copy(), _model(rng, q)
    keep = int(rng.choice([0, 1, 2, 3, 4, 5, 7, 10, 20, 60]))
    days = rng.choice(doy.size, size=keep, replace=False)
    mask = np.zeros(doy.size, bool)
    mask[days] = True
    o[~mask] = np.nan
    if keep == 0:  # both series present, never on the same day
        o[:5] = q[:5]
        s[:5] = np.nan
    else:
        s[~mask & (rng.random(doy.size) < 0.5)] = np.nan
    return o, s


def _specials(n: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """One-off gages, each with a name saying what it probes."""
    rng = np.random.default_rng(7)
    ramp = np.linspace(1.0, 50.0, n)
    wave = 10 + 5 * np.sin(np.arange(n) / 9.0)
    nan = np.full(n, np.nan)
    sparse = np.where(rng.random(n) < 0.6, 0.0, rng.exponential(2.0, n))
    balanced = np.resize([-1.0, 1.0, 0.0, -2.0, 2.0], n)  # sum(o) = 0 for n % 5 == 0
    low_const = np.where(np.arange(n) % 2 == 0, 0.0, 0.005)  # non-constant, all floored
    one_day = nan.copy()
    one_day[n // 2] = 3.0
    mid_tie = np.where(rng.random(n) < 0.6, 4.0, rng.exponential(8.0, n))  # q30 == q80
    signed_zero = np.where(np.arange(n) % 3 == 0, -0.0, np.where(np.arange(n) % 3 == 1, 0.0, ramp))
    two_days = nan.copy()
    two_days[[3, n - 4]] = [1.0, 2.0]
    return [
        ("all_nan_obs", nan, wave),
        ("all_nan_sim", wave, nan),
        ("all_nan_both", nan, nan),
        ("sim_one_day", wave, one_day),
        ("constant_obs", np.full(n, 5.0), wave),
        ("constant_obs_gaps", np.where(rng.random(n) < 0.3, np.nan, 5.0), wave),
        ("dry_gage", np.zeros(n), wave),
        ("all_floored_obs", low_const, wave),
        ("all_floored_both", low_const, low_const[::-1].copy()),
        ("constant_sim", wave, np.full(n, 7.0)),
        ("zero_sim", wave, np.zeros(n)),
        ("balanced_obs", balanced, ramp),
        ("perfect", wave, wave.copy()),
        ("perfect_sparse", sparse, sparse.copy()),
        ("sparse_vs_wave", sparse, wave),
        ("mid_tie_obs", mid_tie, wave),
        ("signed_zero", signed_zero, ramp[::-1].copy()),
        ("two_days", two_days, wave),
        ("ramp_reversed", ramp, ramp[::-1].copy()),
        ("two_values", np.resize([1.0, 2.0], n), wave),
    ]


RECIPES: tuple[tuple[str, Recipe, int], ...] = (
    ("plain", plain, 60),
    ("intermittent", intermittent, 30),
    ("ties", ties, 30),
    ("near_floor", near_floor, 20),
    ("negative", negative, 20),
    ("large", large, 10),
    ("short", short, 20),
)


def synthetic_gages(
    seed: int = 20261126, n_days: int = 900
) -> tuple[np.ndarray, np.ndarray, pd.DatetimeIndex, list[str]]:
    """(obs, sim) float64 (gage, day), the dates and each gage's recipe name."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range("1999-10-01", periods=n_days, freq="D")
    doy = np.asarray(dates.day_of_year, dtype=float)
    obs, sim, kinds = [], [], []
    for name, recipe, count in RECIPES:
        for _ in range(count):
            o, s = recipe(rng, doy)
            obs.append(o)
            sim.append(s)
            kinds.append(name)
    for name, o, s in _specials(n_days):
        obs.append(o)
        sim.append(s)
        kinds.append(name)
    return np.array(obs), np.array(sim), dates, kinds
