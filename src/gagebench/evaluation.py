"""Metrics for arrays, pandas or xarray objects as a results table (``gagebench.evaluate``).

This is the in-memory door to the metrics engine (the pipeline uses the same row builder),
so a notebook user and a cluster run get the same columns:
``site_no, model, <suite columns>, n_days, first_day, last_day, status, note``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from gagebench.errors import InputError
from gagebench.metrics import METRICS, BatchResult, check_names, evaluate_arrays

ROW_TAIL = ("n_days", "first_day", "last_day", "status", "note")


def result_columns(suites: str | Sequence[str]) -> list[str]:
    """Column order of a results table for the given suites."""
    suites = check_names(suites if isinstance(suites, str) else tuple(suites), "standard")
    return ["site_no", "model", *(m.name for m in METRICS if m.suite in suites), *ROW_TAIL]


def rows_frame(
    result: BatchResult, gage_ids: Sequence[Any], model: str, dates: np.ndarray | None
) -> pd.DataFrame:
    """One model's batch result as table rows (first/last paired day as dates)."""
    frame = pd.DataFrame(result.values, columns=list(result.columns))
    frame.insert(0, "site_no", list(gage_ids))
    frame.insert(1, "model", model)
    frame["n_days"] = result.n_days
    frame["first_day"] = _days(result.first, dates)
    frame["last_day"] = _days(result.last, dates)
    frame["status"] = result.status
    frame["note"] = result.note
    return frame


def missing_rows(
    gage_ids: Sequence[Any], model: str, suites: Sequence[str], status: str, note: str
) -> pd.DataFrame:
    """Rows for gages that could not be evaluated at all (e.g. absent from a store)."""
    columns = result_columns(suites)
    frame = pd.DataFrame(np.nan, index=range(len(gage_ids)), columns=columns)
    frame["site_no"] = list(gage_ids)
    frame["model"] = model
    frame["n_days"] = 0
    frame["first_day"] = pd.NaT
    frame["last_day"] = pd.NaT
    frame["status"] = status
    frame["note"] = note
    return frame.astype({"first_day": "datetime64[ns]", "last_day": "datetime64[ns]"})


def _days(index: np.ndarray, dates: np.ndarray | None) -> pd.Series:
    if dates is None:
        return pd.Series(pd.NaT, index=range(len(index)), dtype="datetime64[ns]")
    values = np.asarray(dates, dtype="datetime64[ns]")
    picked = values[np.clip(index, 0, None)]
    picked[index < 0] = np.datetime64("NaT")
    return pd.Series(picked)


def _unpack(name: str, value: Any) -> tuple[np.ndarray, list[Any] | None, np.ndarray | None]:
    """Return (gage, day) values, gage ids (or None) and dates (or None) of an input."""
    if value is None:
        raise InputError(f"{name} is None: pass an array, pandas or xarray object")
    dims = getattr(value, "dims", None)
    if dims is not None and hasattr(value, "coords") and hasattr(value, "transpose"):
        return _unpack_dataarray(name, value)
    if isinstance(value, pd.Series):
        dates = _dates_of(value.index)
        ids = None if value.name is None else [value.name]
        return value.to_numpy()[np.newaxis, :], ids, dates
    if isinstance(value, pd.DataFrame):
        dates = _dates_of(value.index)
        return value.to_numpy().T, list(value.columns), dates
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name} cannot be read as an array: {exc}") from exc
    if arr.dtype == object:
        raise InputError(f"{name} must be numeric streamflow, got non-numeric values")
    if arr.ndim == 1:
        arr = arr[np.newaxis, :]
    elif arr.ndim != 2:
        raise InputError(f"{name} must be 1-D (days) or 2-D (gages x days), got {arr.ndim}-D")
    return arr, None, None


def _unpack_dataarray(name: str, da: Any) -> tuple[np.ndarray, list[Any] | None, np.ndarray | None]:
    dims = list(da.dims)
    time_dims = [d for d in dims if d == "time" or np.issubdtype(da[d].dtype, np.datetime64)]
    if len(dims) not in (1, 2) or len(time_dims) != 1:
        raise InputError(
            f"{name} must be a DataArray with one time dimension and at most one gage "
            f"dimension, got dims {tuple(dims)}"
        )
    tdim = time_dims[0]
    dates = _dates_of(da[tdim].to_numpy()) if tdim in da.coords else None
    if len(dims) == 1:
        return da.to_numpy()[np.newaxis, :], None, dates
    gdim = next(d for d in dims if d != tdim)
    values = da.transpose(gdim, tdim).to_numpy()
    ids = [_id_text(v) for v in da[gdim].to_numpy()] if gdim in da.coords else None
    return values, ids, dates


def _id_text(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode().strip()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _dates_of(index: Any) -> np.ndarray | None:
    values = np.asarray(index)
    if np.issubdtype(values.dtype, np.datetime64):
        return values.astype("datetime64[D]")
    return None


def _align(name: str, observed: Any, modeled: Any) -> Any:
    """Reindex a pandas ``modeled`` onto ``observed``'s index/columns, as pandas users expect."""
    if isinstance(observed, pd.DataFrame) and isinstance(modeled, pd.DataFrame):
        missing = [c for c in observed.columns if c not in modeled.columns]
        if missing:
            raise InputError(f"{name} has no column for gage(s) {missing[:5]} of observed")
        return modeled.reindex(index=observed.index)[list(observed.columns)]
    if isinstance(observed, pd.Series) and isinstance(modeled, pd.Series):
        return modeled.reindex(observed.index)
    return modeled


def evaluate(
    observed: Any,
    modeled: Any,
    *,
    time: Any = None,
    gages: Sequence[Any] | None = None,
    suites: str | Sequence[str] = ("standard", "dscore"),
    mode: str = "standard",
    min_paired_days: int = 365,
) -> pd.DataFrame:
    """Benchmark statistics of one or several models against observations.

    ``observed``: 1-D (days) or 2-D (gages x days) array, pandas Series/DataFrame (time
    index, DataFrame columns = gages) or xarray DataArray. ``modeled``: the same shape, or
    a dict {model name: array}. ``time``: daily dates when the inputs carry none (needed
    for the seasonal D-score). ``gages``: row ids when the inputs carry none. ``suites``:
    "standard", "dscore" or both. ``min_paired_days``: a gage with fewer days that have
    both values gets status ``too_few_days`` and no metric values (as in a run).
    Returns one row per (gage, model).

    >>> import numpy as np, gagebench
    >>> o = np.array([1.0, 2.0, 3.0, 4.0])
    >>> gagebench.evaluate(o, o, suites="standard", min_paired_days=2)[["NSE", "KGE", "status"]]
       NSE  KGE status
    0  1.0  1.0     ok
    """
    suites = check_names(suites if isinstance(suites, str) else tuple(suites), mode)
    models = dict(modeled) if isinstance(modeled, Mapping) else {"model": modeled}
    if not models:
        raise InputError("modeled is an empty dict: give at least one {name: array}")
    obs, obs_ids, obs_dates = _unpack("observed", observed)
    dates = obs_dates
    if time is not None:
        dates = np.asarray(pd.DatetimeIndex(np.asarray(time)).values, dtype="datetime64[D]")
    frames = []
    for model_name, model_values in models.items():
        label = "modeled" if len(models) == 1 else f"modeled[{model_name!r}]"
        sim, _, _ = _unpack(label, _align(label, observed, model_values))
        if sim.shape != obs.shape:
            raise InputError(
                f"{label} has shape {sim.shape} (gages x days) but observed has {obs.shape}"
            )
        result = evaluate_arrays(
            obs, sim, dates, suites=suites, mode=mode, min_days=min_paired_days
        )
        ids = _gage_ids(gages, obs_ids, obs.shape[0])
        frames.append(rows_frame(result, ids, str(model_name), dates))
    return pd.concat(frames, ignore_index=True)


def _gage_ids(gages: Sequence[Any] | None, found: list[Any] | None, count: int) -> list[Any]:
    if gages is not None:
        ids = list(gages)
        if len(ids) != count:
            raise InputError(f"gages has {len(ids)} ids but the arrays have {count} gages")
        return ids
    return found if found is not None else list(range(count))
