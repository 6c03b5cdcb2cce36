"""A run's results for the baseline tests (unit and integration): real site numbers of
HyTEST's published NWM v2.1 table, written bare (``01011000``, no ``USGS-``), plus two gages
HyTEST does not have, scored by :func:`gagebench.evaluate` on synthetic flows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

import gagebench

NWM = Path(__file__).parent / "data" / "published" / "NWM_v2.1_streamflow_example.csv"


def sample_run(n_baseline: int = 12) -> tuple[pd.DataFrame, list[str]]:
    """A run's results for real site numbers (bare, without USGS-) plus two gages HyTEST
    does not have; standard, D-score and uncertainty suites."""
    pub = pd.read_csv(NWM, dtype={"site_no": str})
    sites = [s.removeprefix("USGS-") for s in pub["site_no"][:n_baseline]]
    sites += ["99999990", "99999991"]
    time = pd.date_range("2001-10-01", "2013-09-30", freq="D")
    rng = np.random.default_rng(7)
    obs = pd.DataFrame(rng.gamma(2.0, 5.0, (len(time), len(sites))), index=time, columns=sites)
    noise = rng.uniform(0.05, 1.2, len(sites))
    model = obs * (1 + noise * rng.standard_normal(obs.shape)).clip(0.05)
    results = gagebench.evaluate(
        obs, {"mine": model}, suites=["standard", "dscore", "uncertainty"], n_samples=60, seed=3
    )
    return results, sites
