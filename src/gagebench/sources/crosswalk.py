"""Which store position holds each gage: gage-id coordinates, or a gage -> feature crosswalk.

A store is indexed either by its own gage ids (a ``gage_id`` coordinate along the gage
dimension, or a gage dimension of string ids), or through a crosswalk from gages to the
store's features (NHM segments, NWM reaches), given per store as:

- ``{url, gage, feature}``: a CSV or Parquet table at any fsspec URL, with a gage column
  (site numbers or ``USGS-`` ids) and a feature column (values of the store's feature
  coordinate, e.g. ``nhm_seg`` ids);
- ``{gage_variable, feature_variable}``: two variables of the store itself on their own
  dimension (NHM's ``poi_gage_id`` / ``poi_gage_segment``).

Several gages may share a feature. A gage listed twice (two store positions, or two
crosswalk rows) keeps its first occurrence; :func:`build_index` reports it so the run can
warn and record which feature is used. An integer feature dimension with neither a
``gage_id`` coordinate nor a crosswalk is refused: its values are reach or segment ids,
and reading them as site numbers (reach 1011000 as gage 01011000) gives wrong pairs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from gagebench.config import Crosswalk
from gagebench.errors import InputError
from gagebench.ids import canonical_id
from gagebench.storage.tables import read_table

if TYPE_CHECKING:
    import xarray as xr


@dataclass(frozen=True)
class Duplicate:
    """A gage found at several store positions: which one is read, which are ignored."""

    gage: str
    used: Any
    ignored: tuple[Any, ...]

    def message(self, label: str, url: str) -> str:
        """The one-line warning of this duplicate."""
        return (
            f"the {label} store {url!r} lists gage {self.gage} {1 + len(self.ignored)} times; "
            f"using feature {self.used} (ignoring {', '.join(map(str, self.ignored))})"
        )


def feature_key(value: Any) -> Any:
    """A feature value comparable across CSV, Parquet and store dtypes (ints stay ints)."""
    if isinstance(value, bytes | np.bytes_):
        value = bytes(value).decode("utf-8", errors="replace").strip().strip("\x00")
    if isinstance(value, np.integer | int) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return int(value)
    text = str(value).strip()
    return int(text) if text.isdigit() else text


def build_index(
    gages: Sequence[str | None], positions: Sequence[int], labels: Sequence[Any]
) -> tuple[dict[str, int], list[Duplicate]]:
    """Gage -> first store position, and the gages that appear more than once."""
    index: dict[str, int] = {}
    used: dict[str, Any] = {}
    extra: dict[str, list[Any]] = {}
    for gage, pos, label in zip(gages, positions, labels, strict=True):
        if gage is None or pos < 0:
            continue
        if gage in index:
            if index[gage] != pos:
                extra.setdefault(gage, []).append(label)
            continue
        index[gage] = pos
        used[gage] = label
    return index, [Duplicate(g, used[g], tuple(extra[g])) for g in sorted(extra)]


def is_integer_dim(ds: xr.Dataset, dim: str) -> bool:
    """True when ``dim`` has a coordinate of integers (reach / segment ids)."""
    return dim in ds.variables and np.issubdtype(ds[dim].dtype, np.integer)


def crosswalk_pairs(
    crosswalk: Crosswalk,
    ds: xr.Dataset,
    gage_dim: str,
    label: str,
    url: str,
) -> tuple[list[str | None], list[int], list[Any]]:
    """``(gage ids, store positions, feature labels)`` of a crosswalk, one per entry.

    Positions are -1 for features the store does not have; gage ids are canonical
    (:func:`gagebench.ids.canonical_id`).
    """
    if crosswalk.url is not None:
        gages_raw, features_raw = _table(crosswalk, label)
    else:
        gages_raw, features_raw = _variables(crosswalk, ds, label, url)
    if gage_dim in ds.variables:
        coordinate = np.asarray(ds[gage_dim].to_numpy())
        where = {feature_key(v): i for i, v in reversed(list(enumerate(coordinate.tolist())))}
    else:
        where = {i: i for i in range(ds.sizes[gage_dim])}
    features = [feature_key(f) for f in features_raw]
    positions = [where.get(f, -1) for f in features]
    gages = [canonical_id(g) for g in gages_raw]
    if gages and all(p < 0 for p in positions):
        raise InputError(
            f"the {label} store {url!r}: none of the crosswalk's {len(features)} features "
            f"(e.g. {features[0]!r}) is a value of its {gage_dim!r} coordinate; check the "
            "crosswalk's feature column or variable"
        )
    return gages, positions, features


def _table(crosswalk: Crosswalk, label: str) -> tuple[list[Any], list[Any]]:
    assert crosswalk.url is not None
    assert crosswalk.gage
    assert crosswalk.feature
    url = crosswalk.url
    frame = read_table(
        url,
        crosswalk.storage_options,
        what="the crosswalk",
        key=f"crosswalk.url of the {label} store",
        dtype={crosswalk.gage: str},
    )
    for role, column in (("gage", crosswalk.gage), ("feature", crosswalk.feature)):
        if column not in frame.columns:
            raise InputError(
                f"the crosswalk {url!r} of the {label} store has no column {column!r} "
                f"(it has: {', '.join(map(str, frame.columns))}); set crosswalk.{role}"
            )
    frame = frame.dropna(subset=[crosswalk.gage, crosswalk.feature])
    return frame[crosswalk.gage].tolist(), frame[crosswalk.feature].tolist()


def _variables(
    crosswalk: Crosswalk, ds: xr.Dataset, label: str, url: str
) -> tuple[list[Any], list[Any]]:
    names = (crosswalk.gage_variable, crosswalk.feature_variable)
    for role, name in zip(("gage_variable", "feature_variable"), names, strict=True):
        if name not in ds.variables:
            raise InputError(
                f"the {label} store {url!r} has no variable {name!r} for its crosswalk "
                f"(it has: {', '.join(map(str, ds.variables))}); set crosswalk.{role}"
            )
    gage_var, feature_var = (ds[str(n)] for n in names)
    if gage_var.ndim != 1 or gage_var.dims != feature_var.dims:
        raise InputError(
            f"the {label} store {url!r}: crosswalk variables {names[0]!r} {gage_var.dims} and "
            f"{names[1]!r} {feature_var.dims} must share one dimension"
        )
    return gage_var.to_numpy().tolist(), feature_var.to_numpy().tolist()
