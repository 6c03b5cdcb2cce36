"""gagebench.synth writes the same values for the same inputs and seed, release to release.

The hashes were taken from the stores written before ``synthesize`` was split into steps:
a change here changes every synthetic store (demo caches, benchmarks, recorded runs).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr

from gagebench.gages import builtin_gages
from gagebench.sources.stores import clear_cache
from gagebench.synth import SAMPLE_ID, synthesize


@pytest.fixture(autouse=True)
def _fresh_cache():
    clear_cache()
    yield
    clear_cache()


def _digest(values: np.ndarray) -> str:
    if values.dtype.kind == "O":
        data = "\x00".join(map(str, values.ravel())).encode()
    else:
        data = np.ascontiguousarray(values).tobytes()
    head = f"{values.dtype.str}{values.shape}".encode()
    return hashlib.sha256(head + data).hexdigest()[:16]


def _store_hashes(root: Path) -> dict[str, Any]:
    """A digest of every variable, coordinate and attribute of each store under ``root``."""
    out: dict[str, Any] = {}
    for store in sorted(root.glob("*.zarr")):
        ds = xr.open_zarr(store, decode_times=False, mask_and_scale=False)
        names = sorted([*ds.data_vars, *ds.coords])
        out[store.name] = {
            "attrs": json.dumps(ds.attrs, sort_keys=True, default=str),
            **{name: _digest(ds[name].to_numpy()) for name in names},
        }
    return out


def _sample_neighbours() -> Any:
    frame = builtin_gages()
    pos = int(np.flatnonzero(frame["gage_id"] == SAMPLE_ID)[0])
    return frame.iloc[max(0, pos - 3) : pos + 4]


CASES: dict[str, dict[str, Any]] = {
    "daily_gage_id": {
        "n_gages": 12,
        "seed": 3,
        "start": "2001-01-01",
        "end": "2002-12-31",
        "missing_fraction": 0.2,
        "gap_fraction": 0.01,
    },
    "hourly_feature_id_sample_v3": {
        "gages": "sample_neighbours",
        "seed": 7,
        "start": "2010-01-01",
        "end": "2010-12-31",
        "models": ("nwm",),
        "frequency": "hourly",
        "model_index": "feature_id",
        "zarr_format": 3,
    },
}


def _attrs(kind: str, seed: int) -> str:
    attrs = {"kind": kind, "seed": seed, "source": "gagebench.synth"}
    return json.dumps({**attrs, "title": "gagebench synthetic streamflow"}, sort_keys=True)


EXPECTED: dict[str, dict[str, Any]] = {
    "daily_gage_id": {
        "nhm.zarr": {
            "attrs": _attrs("nhm", 3),
            "gage_id": "93c96ba1981c1b0a",
            "streamflow": "f780f00003f335bc",
            "time": "1efa50b430e90b4a",
        },
        "nwm.zarr": {
            "attrs": _attrs("nwm", 3),
            "gage_id": "f8ac6bf151affd64",
            "streamflow": "9b09d7fe1f9e429b",
            "time": "1efa50b430e90b4a",
        },
        "observed.zarr": {
            "attrs": _attrs("observed", 3),
            "gage_id": "873af00c164aae1a",
            "streamflow": "4368ea31d95e4040",
            "time": "1efa50b430e90b4a",
        },
    },
    "hourly_feature_id_sample_v3": {
        "nwm.zarr": {
            "attrs": _attrs("nwm", 7),
            "feature_id": "54abc86d1a4f4e6b",
            "gage_id": "bc7a4e0372e89457",
            "streamflow": "3802e590787a29aa",
            "time": "f054c41b2167849c",
        },
        "observed.zarr": {
            "attrs": _attrs("observed", 7),
            "gage_id": "11dac32178fb5f1d",
            "streamflow": "2fb04e06a24eedd5",
            "time": "c9686c187b6ddd88",
        },
    },
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_same_inputs_and_seed_write_the_same_values(case: str, tmp_path: Path) -> None:
    args = dict(CASES[case])
    if args.get("gages") == "sample_neighbours":
        args["gages"] = _sample_neighbours()
    synthesize(str(tmp_path), **args)
    assert _store_hashes(tmp_path) == EXPECTED[case]
