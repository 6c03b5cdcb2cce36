"""What the benchmarks share: the repository's paths, realistic test data and the unit
tests' helpers.

Imported as ``from _common import ...``: each benchmark is run as a script
(``python benchmarks/bench_x.py``), so this folder is the first entry of its ``sys.path``.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
UNIT_TESTS = ROOT / "tests" / "unit"


def test_helper(name: str) -> ModuleType:
    """The unit tests' helper module ``tests/unit/<name>.py`` (``_reference``, ``_replicas``).

    Loaded from its file under the name the tests import it by (pytest's ``pythonpath``), so
    there is one module of that name in the process, and classes pickled to Dask workers
    resolve there once a worker has loaded it the same way. ``sys.path`` stays as it is.
    """
    loaded = sys.modules.get(name)
    if loaded is not None:
        return loaded
    path = UNIT_TESTS / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"no test helper {path}: run the benchmark from a checkout")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def make_data(
    gages: int, days: int, nan_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Realistic float32 (gage, day) observed and simulated flows and their dates."""
    import pandas as pd
    from scipy.signal import lfilter

    from gagebench.gages import builtin_gages

    area = builtin_gages()["drain_sqkm"].to_numpy(dtype=float)  # the 5390 gages' areas
    area = np.resize(np.nan_to_num(area, nan=500.0), gages)
    rng = np.random.default_rng(seed)
    dates = pd.date_range("1979-02-01", periods=days, freq="D").values.astype("datetime64[D]")
    doy = (dates - dates.astype("datetime64[Y]")).astype(np.int64).astype(float)
    obs = np.empty((gages, days), np.float32)
    sim = np.empty((gages, days), np.float32)
    chunk = 128
    for lo in range(0, gages, chunk):
        hi = min(gages, lo + chunk)
        g = hi - lo
        phase = rng.uniform(0, 2 * np.pi, (g, 1))
        season = rng.uniform(0.3, 1.2, (g, 1)) * np.sin(2 * np.pi * doy / 365.25 + phase)
        noise = lfilter([1.0], [1.0, -0.95], rng.normal(0, 0.12, (g, days)), axis=1)
        peaks = (rng.random((g, days)) < 0.02) * rng.exponential(4.0, (g, days))
        storms = lfilter([1.0], [1.0, -0.7], peaks, axis=1)
        q = (0.01 * area[lo:hi, None]) * (np.exp(season + noise) + storms)
        dry = rng.random(g) < 0.08  # intermittent gages: flow below a threshold is zero
        if dry.any():
            cut = np.quantile(q[dry], 0.3, axis=1, keepdims=True)
            q[dry] = np.where(q[dry] > cut, q[dry] - cut, 0.0)
        shift = rng.integers(0, 3, g)
        model = np.stack([np.roll(q[k], shift[k]) for k in range(g)])
        model *= rng.lognormal(0, 0.3, (g, 1)) * np.exp(rng.normal(0, 0.35, (g, days)))
        # NaN gaps in the observations: 3 blocks per gage (4/5 of the NaN) plus scattered days.
        gaps = rng.random((g, days)) < nan_fraction * 0.2
        mean_block = max(2, int(0.8 * nan_fraction * days / 3))
        for k in range(g):
            for start in rng.integers(0, days, 3):
                gaps[k, start : start + int(rng.integers(1, 2 * mean_block))] = True
        q[gaps] = np.nan
        obs[lo:hi] = q
        sim[lo:hi] = model
    return obs, sim, dates
