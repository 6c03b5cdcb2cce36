"""Metrics for arrays, pandas or xarray objects as a results table (``gagebench.evaluate``).

This is the in-memory door to the metrics engine (the pipeline uses the same row builder),
so a notebook user and a cluster run get the same columns:
``site_no, model, <suite columns>, n_days, first_day, last_day, status, note``.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from gagebench.columns import ROW_TAIL, builtin_columns, group_columns, result_columns
from gagebench.defaults import default
from gagebench.errors import InputError
from gagebench.metrics import PARTIAL, BatchResult, check_names, evaluate_arrays
from gagebench.metrics.breakdown import GroupedResult, check_by, evaluate_groups
from gagebench.metrics.user import UserMetric, compute, resolve


def merge_uncertainty(
    rows: pd.DataFrame, suite: pd.DataFrame, suites: Sequence[str]
) -> pd.DataFrame:
    """Rows of one model with the uncertainty suite's columns (same gage order) merged in.

    A row the engine could not evaluate keeps its status and gets NaN uncertainty values;
    an evaluated row whose uncertainty is undefined (e.g. too few valid water years) gets
    that status when uncertainty is the only suite, else ``partial``; the note says why.
    """
    from gagebench.uncertainty_suite import COLUMNS, PAIRED_COLUMNS

    out = rows.copy()
    tail = [c for c in ROW_TAIL if c in out.columns]
    body = out.drop(columns=tail)
    status = out["status"].astype(object).to_numpy().copy()
    note = out["note"].astype(object).to_numpy().copy()
    evaluated = np.isin(status, ["ok", PARTIAL])
    added = {}
    for col in (*COLUMNS, *PAIRED_COLUMNS):
        values = suite[col].to_numpy(dtype=np.float64, na_value=np.nan) if col in suite else None
        if values is None:
            values = np.full(len(out), np.nan)
        added[col] = np.where(evaluated, values, np.nan)
    only = tuple(suites) == ("uncertainty",)
    suite_ok = suite["status"].to_numpy() == "ok"
    for i in np.flatnonzero(evaluated & ~suite_ok):
        status[i] = suite["status"].iloc[i] if only else PARTIAL
        note[i] = "; ".join(x for x in (note[i], suite["note"].iloc[i]) if x)
    for i in np.flatnonzero(evaluated & suite_ok):  # e.g. why there is no paired comparison
        note[i] = "; ".join(x for x in (note[i], suite["note"].iloc[i]) if x)
    merged = pd.concat([body, pd.DataFrame(added, index=out.index), out[tail]], axis=1)
    merged["status"] = status
    merged["note"] = note
    return merged


def add_user_metrics(
    rows: pd.DataFrame, obs: np.ndarray, sim: np.ndarray, metrics: Sequence[UserMetric]
) -> pd.DataFrame:
    """Rows of one model (gages in ``obs``'s order) with the user metrics' columns added
    before the row's tail; computed for the scored rows (``ok``, ``partial``) only.

    A metric that fails for a gage leaves it NaN: the row becomes ``partial`` and its
    note names the metric and the exception.
    """
    if not metrics:
        return rows
    return _with_user_metrics(rows, metrics, ROW_TAIL, [(np.arange(len(rows)), obs, sim)])


def add_group_user_metrics(
    rows: pd.DataFrame,
    obs: np.ndarray,
    sim: np.ndarray,
    gage_ids: Sequence[Any],
    dates: np.ndarray,
    by: str,
    metrics: Sequence[UserMetric],
) -> pd.DataFrame:
    """A breakdown's rows of one model (:func:`group_rows_frame`) with the user metrics'
    columns added before the tail: each metric over the days of each row's group, for the
    scored rows (``ok``, ``partial``) only, with :func:`add_user_metrics`' rules."""
    if not metrics:
        return rows
    from gagebench.columns import GROUP_TAIL
    from gagebench.metrics.breakdown import group_keys, group_label

    position = {gage: i for i, gage in enumerate(gage_ids)}
    keys, day_group = np.unique(group_keys(dates, by), return_inverse=True)
    row_labels = rows[by].to_numpy()
    parts = []
    for k, key in enumerate(keys):
        sel = np.flatnonzero(row_labels == group_label(by, int(key)))
        if sel.size:
            gages = np.array([position[g] for g in rows["site_no"].iloc[sel]], dtype=np.int64)
            outside = day_group != k  # the group's days only: the others count as missing
            parts.append(
                (sel, np.where(outside, np.nan, obs[gages]), np.where(outside, np.nan, sim[gages]))
            )
    return _with_user_metrics(rows, metrics, GROUP_TAIL, parts)


def _with_user_metrics(
    rows: pd.DataFrame,
    metrics: Sequence[UserMetric],
    tail_columns: Sequence[str],
    parts: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
) -> pd.DataFrame:
    """``rows`` with the user metrics' columns before ``tail_columns``: each part
    ``(rows selected, their obs, their sim)`` scored where the row is ``ok``/``partial``;
    a metric that fails makes its row ``partial``, the note naming it."""
    status = rows["status"].astype(object).to_numpy().copy()
    note = rows["note"].astype(object).to_numpy().copy()
    values = np.full((len(rows), len(metrics)), np.nan)
    for sel, obs, sim in parts:
        scored = np.flatnonzero(np.isin(status[sel], ["ok", PARTIAL]))
        got, notes = compute(metrics, obs, sim, scored)
        values[sel] = got
        for q in scored:
            if notes[q]:
                status[sel[q]] = PARTIAL
                note[sel[q]] = "; ".join(x for x in (note[sel[q]], *notes[q]) if x)
    tail = [c for c in tail_columns if c in rows.columns]
    added = pd.DataFrame(values, columns=[m.name for m in metrics], index=rows.index)
    out = pd.concat([rows.drop(columns=tail), added, rows[tail]], axis=1)
    out["status"] = status
    out["note"] = note
    return out


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


def group_rows_frame(grouped: GroupedResult, gage_ids: Sequence[Any], model: str) -> pd.DataFrame:
    """One model's breakdown as long-table rows: one per (gage, group), groups in order."""
    result = grouped.result
    n_seg = len(grouped.labels)
    frame = pd.DataFrame(result.values, columns=list(result.columns))
    frame.insert(0, "site_no", np.repeat(np.asarray(list(gage_ids), dtype=object), n_seg))
    frame.insert(1, "model", model)
    labels = list(grouped.labels) * len(gage_ids)
    dtype = object if grouped.by == "season" else "int64"
    frame.insert(2, grouped.by, pd.Series(labels, dtype=dtype))
    frame["n_days"] = result.n_days
    frame["status"] = result.status
    frame["note"] = result.note
    return frame


def missing_rows(
    gage_ids: Sequence[Any],
    model: str,
    suites: Sequence[str],
    status: str,
    note: str,
    metrics: Sequence[str] = (),
) -> pd.DataFrame:
    """Rows for gages that could not be evaluated at all (e.g. absent from a store);
    ``metrics``: the user metrics' columns (NaN too)."""
    columns = result_columns(suites, metrics)
    frame = pd.DataFrame(np.nan, index=range(len(gage_ids)), columns=columns)
    frame["site_no"] = list(gage_ids)
    frame["model"] = model
    frame["n_days"] = 0
    frame["first_day"] = pd.NaT
    frame["last_day"] = pd.NaT
    frame["status"] = status
    frame["note"] = note
    return frame.astype({"first_day": "datetime64[ns]", "last_day": "datetime64[ns]"})


def missing_group_rows(
    gage_ids: Sequence[Any],
    model: str,
    suites: Sequence[str],
    by: str,
    labels: Sequence[Any],
    status: str,
    note: str,
    metrics: Sequence[str] = (),
) -> pd.DataFrame:
    """Breakdown rows (one per group of ``labels``) for gages that could not be evaluated;
    ``metrics``: the user metrics' columns (NaN too)."""
    columns = group_columns(by, suites, metrics)
    n = len(gage_ids) * len(labels)
    frame = pd.DataFrame(np.nan, index=range(n), columns=columns)
    frame["site_no"] = np.repeat(np.asarray(list(gage_ids), dtype=object), len(labels))
    frame["model"] = model
    dtype = object if by == "season" else "int64"
    frame[by] = pd.Series(list(labels) * len(gage_ids), dtype=dtype)
    frame["n_days"] = 0
    frame["status"] = status
    frame["note"] = note
    return frame


def _days(index: np.ndarray, dates: np.ndarray | None) -> pd.Series:
    if dates is None:
        return pd.Series(pd.NaT, index=range(len(index)), dtype="datetime64[ns]")
    values = np.asarray(dates, dtype="datetime64[ns]")
    picked = values[np.clip(index, 0, None)]
    picked[index < 0] = np.datetime64("NaT")
    return pd.Series(picked)


@dataclass(frozen=True)
class _Labelled:
    """An input as (gage, day) values with the labels it carried, if any.

    ``ids`` are the gage labels of a 2-D labelled input (DataFrame columns, a DataArray's gage
    coordinate); ``days`` the labels of its days (a pandas index or time coordinate: calendar
    days as datetime64[D] for dates, the labels themselves otherwise); ``dates`` the days when
    they are dates. ``order`` is how observed's days were put in increasing order (None when
    they already were), so unlabelled models follow the same order.
    """

    values: np.ndarray
    ids: list[Any] | None
    days: np.ndarray | None
    order: np.ndarray | None = None
    series: bool = False  # a pandas Series: ``ids`` is its name, never matched to a column

    @property
    def dates(self) -> np.ndarray | None:
        """The days as datetime64[D], or None when the input carried no dates."""
        if self.days is not None and np.issubdtype(self.days.dtype, np.datetime64):
            return self.days
        return None


def _unpack(name: str, value: Any, variable: str | None = None) -> _Labelled:
    """Return an input's (gage, day) values with its gage ids and dates (or None)."""
    if value is None:
        raise InputError(f"{name} is None: pass an array, pandas or xarray object")
    if hasattr(value, "data_vars") and hasattr(value, "coords"):
        value = _dataset_variable(name, value, variable)
    dims = getattr(value, "dims", None)
    if dims is not None and hasattr(value, "coords") and hasattr(value, "transpose"):
        return _unpack_dataarray(name, value)
    if isinstance(value, pd.Series):
        ids = None if value.name is None else [_id_text(value.name)]
        days = _day_keys(value.index, name)
        return _Labelled(value.to_numpy()[np.newaxis, :], ids, days, None, True)
    if isinstance(value, pd.DataFrame):
        return _Labelled(value.to_numpy().T, list(value.columns), _day_keys(value.index, name))
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
    return _Labelled(arr, None, None)


def _dataset_variable(name: str, ds: Any, variable: str | None) -> Any:
    """The flow variable of an xarray Dataset: ``variable``, else its only data variable."""
    names = [str(v) for v in ds.data_vars]
    if variable is not None:
        if variable not in ds.data_vars:
            raise InputError(
                f"{name} is a Dataset without the variable {variable!r} (it has: "
                f"{', '.join(names) or 'none'}): pass variable= one of them"
            )
        return ds[variable]
    if len(names) != 1:
        raise InputError(
            f"{name} is a Dataset with {len(names)} data variables ({', '.join(names) or 'none'})"
            ": pass variable='...' to say which holds the flows, or a DataArray "
            "(e.g. ds['streamflow'])"
        )
    return ds[names[0]]


def _is_dates(values: Any) -> bool:
    """True for datetime64 values or a time-zone-aware pandas datetime dtype."""
    dtype = getattr(values, "dtype", None)
    return dtype is not None and bool(pd.api.types.is_datetime64_any_dtype(dtype))


def _unpack_dataarray(name: str, da: Any) -> _Labelled:
    dims = list(da.dims)
    time_dims = [d for d in dims if d == "time" or (d in da.coords and _is_dates(da[d]))]
    if len(dims) not in (1, 2) or len(time_dims) != 1:
        raise InputError(
            f"{name} must be a DataArray with one time dimension and at most one gage "
            f"dimension, got dims {tuple(dims)}"
        )
    tdim = time_dims[0]
    dates = None
    if tdim in da.coords:
        index = da.indexes.get(tdim) if hasattr(da, "indexes") else None
        dates = _day_keys(index if index is not None else da[tdim].to_numpy(), name)
    if len(dims) == 1:
        return _Labelled(da.to_numpy()[np.newaxis, :], None, dates)
    gdim = next(d for d in dims if d != tdim)
    values = da.transpose(gdim, tdim).to_numpy()
    ids = [_id_text(v) for v in da[gdim].to_numpy()] if gdim in da.coords else None
    return _Labelled(values, ids, dates)


def _id_text(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode().strip()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _day_keys(index: Any, name: str = "the input") -> np.ndarray | None:
    """Calendar days of a datetime index; the labels of a pandas index of another kind.

    Time-zone-aware dates are converted to UTC before their day is taken, so inputs in
    different zones pair on the same UTC days; naive dates are taken as they are. Aware
    dates whose UTC day is not their local day (local midnights east of UTC) are a
    warning: local days would be paired and counted one day off without it.
    """
    if isinstance(index, pd.DatetimeIndex):
        if index.tz is None:
            return index.to_numpy().astype("datetime64[D]")
        utc_days = index.tz_convert(None).to_numpy().astype("datetime64[D]")  # aware: UTC
        _warn_other_utc_day(name, index.tz_localize(None), utc_days)
        return utc_days
    values = np.asarray(index)
    if np.issubdtype(values.dtype, np.datetime64):
        return values.astype("datetime64[D]")
    if values.dtype == object and values.size and _all_aware(values):
        utc = pd.to_datetime(values, utc=True)  # Timestamps in several zones
        utc_days = utc.tz_convert(None).to_numpy().astype("datetime64[D]")
        local = pd.DatetimeIndex([v.replace(tzinfo=None) for v in values])
        _warn_other_utc_day(name, local, utc_days)
        return utc_days
    if isinstance(index, pd.Index) and not isinstance(index, pd.RangeIndex):
        return values
    return None


def _warn_other_utc_day(name: str, local: pd.DatetimeIndex, utc_days: np.ndarray) -> None:
    """Warn when aware dates fall on another calendar day in UTC than on their clocks."""
    local_days = local.to_numpy().astype("datetime64[D]")
    shifted = np.flatnonzero(local_days != utc_days)
    if not shifted.size:
        return
    first = int(shifted[0])
    warnings.warn(
        f"{name} has time-zone-aware dates on another calendar day in UTC than on their "
        f"own clock ({shifted.size} of {local_days.size}; e.g. {local[first]} local is "
        f"{utc_days[first]} in UTC): days are paired and counted in UTC (first_day, "
        "seasons, water years), so local days of inputs in different zones may pair one "
        "day apart; if the values are local days, drop the zone first "
        "(.tz_localize(None)) to pair them as they are written",
        UserWarning,
        stacklevel=5,
    )


def _time_days(time: Any) -> np.ndarray:
    """``time=`` as calendar days (time-zone-aware dates on their UTC day)."""
    try:
        index = pd.DatetimeIndex(time)
    except (TypeError, ValueError):
        values = np.asarray(time, dtype=object)
        if values.size and _all_aware(values):  # Timestamps in several time zones
            days = _day_keys(values, "time")
            assert days is not None
            return days
        try:
            index = pd.DatetimeIndex(pd.to_datetime(values, utc=True))
        except (TypeError, ValueError) as exc:
            raise InputError(f"time cannot be read as dates ({exc}): give daily dates") from exc
    days = _day_keys(index, "time")
    assert days is not None
    return days


def _all_aware(values: np.ndarray) -> bool:
    return all(isinstance(v, datetime) and v.tzinfo is not None for v in values)


def _one_value_per_day(name: str, days: np.ndarray) -> None:
    keys = pd.Index(days)
    if keys.isna().any():
        raise InputError(f"{name} has missing (NaT/NaN) time labels: drop those days")
    if not keys.is_unique:
        repeated = keys[keys.duplicated()].unique()[:3].astype(str).tolist()
        raise InputError(
            f"{name} has several values per calendar day (e.g. {repeated}): give daily "
            "values, e.g. .resample(time='1D').mean() for xarray or .resample('1D').mean() "
            "for pandas"
        )


def _observed_by_day(obs: _Labelled) -> _Labelled:
    """Observed with one value per day, days in increasing order when they are dates."""
    if obs.days is None:
        return obs
    _one_value_per_day("observed", obs.days)
    if obs.dates is None:
        return obs
    order = np.argsort(obs.dates, kind="stable")
    if np.all(order[1:] > order[:-1]):
        return obs
    return replace(obs, values=obs.values[:, order], days=obs.dates[order], order=order)


def _align(name: str, obs: _Labelled, sim: _Labelled) -> np.ndarray:
    """``sim``'s values matched to ``obs`` by label, as pandas users expect.

    Days are matched by calendar day when both inputs carry dates (observed days the model
    lacks become NaN, model days outside the observed ones are ignored); gages by id when
    both inputs carry gage ids (every observed gage must be in the model). Inputs without
    labels are matched by position and must have the same shape.
    """
    values = sim.values
    if obs.ids is not None and sim.ids is not None and not (obs.series or sim.series):
        values = values[_gage_positions(name, obs.ids, sim.ids)]
    if obs.days is None or sim.days is None or (obs.dates is None) != (sim.dates is None):
        if obs.order is not None and values.shape[1] == obs.order.size:
            values = values[:, obs.order]  # observed's days were sorted: follow them
        return values
    _one_value_per_day(name, sim.days)
    where = pd.Index(sim.days).get_indexer(pd.Index(obs.days))
    if not (where >= 0).any():
        warnings.warn(
            f"{name} has no day in common with observed (model {_span(sim.days)}, "
            f"observed {_span(obs.days)}): every gage gets status no_simulation",
            UserWarning,
            stacklevel=3,
        )
    if values.dtype.kind != "f":
        values = values.astype(np.float64)
    picked = values[:, np.clip(where, 0, None)]
    picked[:, where < 0] = np.nan
    return picked


def _gage_positions(name: str, wanted: list[Any], have: list[Any]) -> np.ndarray:
    index = pd.Index(have)
    if not index.is_unique:
        repeated = index[index.duplicated()].unique()[:5].tolist()
        raise InputError(f"{name} lists gage(s) {repeated} more than once: keep one of each")
    where = index.get_indexer(pd.Index(wanted))
    if (where < 0).any():
        missing = [g for g, w in zip(wanted, where, strict=True) if w < 0]
        raise InputError(
            f"{name} has no column for gage(s) {missing[:5]} of observed "
            f"({len(missing)} missing; model gages look like {have[:3]}): give the model "
            "the same gage ids, or select observed to the model's gages"
        )
    return where


def _span(days: np.ndarray) -> str:
    return f"{days.min()}..{days.max()}" if days.size else "no days"


def evaluate(
    observed: Any,
    modeled: Any,
    *,
    time: Any = None,
    gages: Sequence[Any] | None = None,
    suites: str | Sequence[str] = tuple(default("suites")),
    mode: str = default("mode"),
    min_paired_days: int = default("min_paired_days"),
    n_samples: int = default("uncertainty.n_samples"),
    seed: int | None = None,
    boot_years: Any = None,
    uncertainty: Mapping[str, Any] | None = None,
    variable: str | None = None,
    by: str | None = None,
    metrics: Sequence[str] = (),
) -> pd.DataFrame:
    """Benchmark statistics of one or several models against observations.

    Labelled inputs (pandas, xarray) are matched by label, never by position: each model is
    matched to observed by calendar day when both carry dates (a left join on observed's
    days: days the model lacks are NaN and dropped pairwise, extra model days are ignored;
    several values per day are refused; time-zone-aware dates count in UTC, so inputs in
    different zones pair on the same UTC days, with a warning for dates whose UTC day is
    not their local day; naive dates as they are) and by gage id
    when both carry gage ids (every observed gage must be in the model, in any order).
    Unlabelled arrays are matched by position and must have observed's shape.

    Parameters
    ----------
    observed
        1-D (days) or 2-D (gages x days) array, pandas Series/DataFrame (time index,
        DataFrame columns = gages), xarray DataArray, or a Dataset with one data variable
        (or the one named ``variable``).
    modeled
        The same shape, or a dict ``{model name: array}`` for several models.
    time
        Daily dates of ``observed`` when the inputs carry none (the seasonal D-score and
        the uncertainty suite need dates).
    gages
        Row ids. By default DataFrame columns, a DataArray's gage coordinate or
        observed's Series name (a modeled Series with another name is still scored
        against it, with a warning), else 0, 1, ...
    suites
        One suite or several: ``"standard"`` (NSE, KGE, logNSE, pbias, rSD,
        Pearson, Spearman and the flow-duration-curve biases), ``"dscore"`` (the
        decomposition of the mean squared error: bias, distribution, sequence, seasonal
        and flow-quarter parts), ``"uncertainty"`` (the sampling uncertainty of NSE and
        KGE, gumboot's ``bootjack()``), ``"kge"`` (KGE2012, KGE2021, KGEnp) ,
        ``"errors"`` (RMSE, MAE, R2) and ``"benchmark"`` (KGE and NSE of each gage's
        day-of-year climatology and the model's skill against it, Knoben et al. 2020;
        needs dates). See :doc:`/metrics` and :doc:`/uncertainty`.
    mode
        ``"standard"`` (textbook definitions, safe on zero flows) or ``"hytest"``
        (reproduces the HyTEST notebooks and gumboot exactly; it computes only the suites
        HyTEST defines: standard, dscore and uncertainty).
    min_paired_days
        A gage with fewer days that have both values gets status ``too_few_days`` and no
        metric values (as in a run).
    n_samples
        Uncertainty suite: bootstrap samples of the valid water years per gage.
    seed
        Uncertainty suite: the draws are seeded per gage from this seed and the gage id
        (None: a fresh seed each call).
    boot_years
        Uncertainty suite: the drawn years given instead, as gumboot's bootYearFile (a CSV
        path or a (year slot, sample) array).
    uncertainty
        Uncertainty suite settings: ``water_year_month`` (10), ``min_days`` (100) and
        ``min_years`` (10).
    variable
        The data variable holding the flows when inputs are xarray Datasets with several.
    by
        A breakdown instead of one row per gage: ``"season"`` (DJF, MAM, JJA, SON),
        ``"month"`` (1-12) or ``"water_year"`` (October-September, the year it ends in).
        The per-day suites are computed per group, in one pass; ``min_paired_days``
        applies per group (fewer paired days: a ``too_few_days`` row); a group without
        any calendar day in the period has no row. The uncertainty suite has no
        breakdown. Needs dates.
    metrics
        User metrics, each a name registered with :func:`gagebench.metric` or an import
        path ``package.module:function``; their columns follow the suites' columns
        (see :doc:`/user-guide/user-metrics`).

    Returns
    -------
    pandas.DataFrame
        One row per (gage, model), gages in observed's order: ``site_no, model``, the
        suites' columns, ``n_days, first_day, last_day, status, note``. With ``by``, one
        row per (gage, model, group): ``site_no, model, <by>``, the per-day suites'
        columns, ``n_days, status, note``. With two or more
        models and the uncertainty suite, each model's rows carry the paired bootstrap
        differences from the first model (``dKGE_p05``...).

    Examples
    --------
    >>> import numpy as np, gagebench
    >>> o = np.array([1.0, 2.0, 3.0, 4.0])
    >>> gagebench.evaluate(o, o, suites="standard", min_paired_days=2)[["NSE", "KGE", "status"]]
       NSE  KGE status
    0  1.0  1.0     ok
    """
    suites = check_names(suites if isinstance(suites, str) else tuple(suites), mode)
    if by is not None:
        check_by(by)
    if isinstance(metrics, str):
        metrics = (metrics,)
    user = resolve(metrics, builtin_columns())
    models = dict(modeled) if isinstance(modeled, Mapping) else {"model": modeled}
    if not models:
        raise InputError("modeled is an empty dict: give at least one {name: array}")
    labelled = _unpack("observed", observed, variable)
    if time is not None:
        given = _time_days(time)
        if len(given) != labelled.values.shape[1]:
            raise InputError(
                f"time has {len(given)} dates but observed has {labelled.values.shape[1]} days"
            )
        labelled = replace(labelled, days=given)
    labelled = _observed_by_day(labelled)
    obs, obs_ids, dates = labelled.values, labelled.ids, labelled.dates
    ids = _gage_ids(gages, obs_ids, obs.shape[0])
    frames = []
    aligned = {}
    renamed = []
    for model_name, model_values in models.items():
        label = f"modeled[{model_name!r}]" if isinstance(modeled, Mapping) else "modeled"
        unpacked = _unpack(label, model_values, variable)
        if _renamed(labelled, unpacked):
            renamed.append(f"{label} {unpacked.ids[0]!r}")  # type: ignore[index]
        sim = _align(label, labelled, unpacked)
        if sim.shape != obs.shape:
            raise InputError(
                f"{label} has shape {sim.shape} (gages x days) but observed has {obs.shape}"
            )
        aligned[str(model_name)] = sim
        if by is not None:
            grouped = evaluate_groups(
                obs, sim, dates, by, suites=suites, mode=mode, min_days=min_paired_days
            )
            frames.append(group_rows_frame(grouped, ids, str(model_name)))
            continue
        result = evaluate_arrays(
            obs, sim, dates, suites=suites, mode=mode, min_days=min_paired_days
        )
        frames.append(rows_frame(result, ids, str(model_name), dates))
    if renamed and gages is None:
        warnings.warn(
            f"observed is named {ids[0]!r} but {', '.join(renamed)}: a Series is "
            f"one gage, scored against observed whatever its name, and the rows' site_no is "
            f"observed's name {ids[0]!r}; pass gages=['<site id>'] to set it",
            UserWarning,
            stacklevel=2,
        )
    if "uncertainty" in suites and by is None:
        from gagebench.uncertainty_suite import evaluate_models, settings_from

        settings = settings_from(uncertainty, n_samples=n_samples, seed=seed, boot_years=boot_years)
        extra = evaluate_models(obs, aligned, dates, ids, settings, mode)
        frames = [
            merge_uncertainty(frame, extra[name], suites)
            for frame, name in zip(frames, aligned, strict=True)
        ]
    if user and by is not None and dates is not None:  # (evaluate_groups needs the dates)
        frames = [
            add_group_user_metrics(frame, obs, sim, ids, dates, by, user)
            for frame, sim in zip(frames, aligned.values(), strict=True)
        ]
    elif user:
        frames = [
            add_user_metrics(frame, obs, sim, user)
            for frame, sim in zip(frames, aligned.values(), strict=True)
        ]
    return pd.concat(frames, ignore_index=True)


def _renamed(obs: _Labelled, sim: _Labelled) -> bool:
    """True when a named Series meets another named one-gage input (a Series, a one-column
    DataFrame) of another name: they are paired as one gage, though they cannot both be it."""
    named = obs.ids is not None and sim.ids is not None
    one_each = named and len(obs.ids or ()) == 1 and len(sim.ids or ()) == 1
    return bool(one_each and (obs.series or sim.series) and obs.ids != sim.ids)


def _gage_ids(gages: Sequence[Any] | None, found: list[Any] | None, count: int) -> list[Any]:
    if gages is not None:
        ids = list(gages)
        if len(ids) != count:
            raise InputError(f"gages has {len(ids)} ids but the arrays have {count} gages")
        return ids
    return found if found is not None else list(range(count))
