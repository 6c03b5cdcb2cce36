"""An independent per-gage reference of gumboot's ``bootjack()``: it resamples series.

Written from gumboot 1.0.2's documented behaviour with plain NumPy/pandas, one gage at a
time: every jackknife and bootstrap sample is an actual concatenation of days, and every
statistic is computed from those days (two-pass variances, ``np.corrcoef``). The engine
must equal it to 1e-9 given the same year matrix.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def _nse_kge(o: np.ndarray, s: np.ndarray, mode: str) -> tuple[float, float]:
    if o.size < 2 or np.var(o) == 0:
        return np.nan, np.nan
    mo, ms = o.mean(), s.mean()
    so, ss = o.std(ddof=1), s.std(ddof=1)
    r = np.corrcoef(o, s)[0, 1] if ss > 0 else np.nan
    alpha = ss / so
    if mode == "hytest":
        nse = 2 * alpha * r - ((mo - ms) / so) ** 2 - alpha**2
    else:
        nse = 1 - np.sum((s - o) ** 2) / np.sum((o - mo) ** 2)
    kge = 1 - np.sqrt((ms / mo - 1) ** 2 + (alpha - 1) ** 2 + (r - 1) ** 2)
    return float(nse), float(kge)


def valid_years(frame: pd.DataFrame, month: int = 10, min_days: int = 100) -> np.ndarray:
    """Sorted water years with more than ``min_days`` valid days."""
    wy = frame["date"].dt.year + (frame["date"].dt.month >= month)
    ok = (frame["obs"] > -1e-10) & (frame["sim"] > -1e-10)
    counts = wy[ok].value_counts()
    return np.sort(counts.index[counts > min_days].to_numpy())


def bootjack(
    frame: pd.DataFrame,
    slot_years: np.ndarray,
    mode: str = "hytest",
    month: int = 10,
    min_days: int = 100,
) -> dict[str, dict[str, float]]:
    """{"NSE": {...}, "KGE": {...}} for one gage's (date, obs, sim) days.

    ``slot_years`` is gumboot's (slot, sample) table of water years; the frame is the
    gage's record (its rows from the first to the last day with both values).
    """
    date = frame["date"]
    wy = (date.dt.year + (date.dt.month >= month)).to_numpy()
    cal = date.dt.year.to_numpy()
    obs = frame["obs"].to_numpy(float)
    sim = frame["sim"].to_numpy(float)
    ok = (obs > -1e-10) & (sim > -1e-10)
    years = valid_years(frame, month, min_days)
    n_valid = years.size
    score = _nse_kge(obs[ok], sim[ok], mode)
    jack = [_nse_kge(obs[ok & (wy != y)], sim[ok & (wy != y)], mode) for y in years]
    boot = []
    n_samples = slot_years.shape[1]
    for s in range(n_samples):
        picked = [np.flatnonzero(ok & (wy == y)) for y in slot_years[:n_valid, s]]
        days = np.concatenate(picked)
        boot.append(_nse_kge(obs[days], sim[days], mode))
    record_years = pd.unique(wy)
    calendar = pd.unique(cal)
    if mode == "hytest":
        left_out = [
            calendar[t] if t < calendar.size else None for t in range(1, record_years.size + 1)
        ]
    else:
        left_out = list(years)
    out = {}
    for k, stat in enumerate(("NSE", "KGE")):
        z = np.array([j[k] for j in jack])
        zb = np.array([b[k] for b in boot])
        zj = z[~np.isnan(z)]
        jn = zj.size
        jmean = zj.mean()
        ordered = np.sort(zb)
        widths = []
        for year in left_out:
            keep = [
                year is None or not np.any(slot_years[:n_valid, s] == year)
                for s in range(n_samples)
            ]
            sub = np.sort(zb[np.array(keep)])
            m = sub.size
            widths.append(sub[int(np.floor(0.95 * m))] - sub[int(np.floor(0.05 * m))])
        w = np.array(widths)
        n_t = w.size
        out[stat] = {
            "score": score[k],
            "seJack": float(np.sqrt((jn - 1) / jn * np.sum((jmean - zj) ** 2))),
            "seBoot": float(np.std(zb, ddof=1)),
            "p05": float(ordered[int(np.floor(0.05 * n_samples))]),
            "p50": float(ordered[int(np.floor(0.50 * n_samples))]),
            "p95": float(ordered[int(np.floor(0.95 * n_samples))]),
            "biasJack": float((jn - 1) * (jmean - score[k])),
            "biasBoot": float(zb.mean() - score[k]),
            "seJab": float(np.sqrt((n_t - 1) / n_t * np.sum((w.mean() - w) ** 2))),
        }
    return out
